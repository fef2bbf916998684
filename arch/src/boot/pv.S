/*
 * Classic 64-bit PV entry, beside the PVH one (pvh.S) in the same image.
 *
 * Xen's PV domain builder reads the notes below: the image is a generic "xen-3.0"
 * kernel whose virtual addresses are its pseudo-physical ones (VIRT_BASE and
 * PADDR_OFFSET 0: frame n at n << 12, the identity map the rest of the kernel
 * expects), it fills `hypercall_page` (xen/hypercall.rs) with its stubs, and it starts
 * the kernel at pv_start64 in 64-bit mode, in ring 3, on its bootstrap page tables, with
 * %rsi = the start_info's virtual address and %rsp = the top of its bootstrap stack,
 * the last bootstrap element. .bss is already zero (the builder clears it).
 *
 * The stub moves to the kernel's boot stack and calls
 * kernel_entry_pv(start_info, bootstrap_end). Everything after that is Rust (boot/pv.rs).
 */

    .section .note.Xen, "a", @note
    .macro xen_note type, desc_start, desc_end
    .p2align 2
    .long 4
    .long \desc_end - \desc_start
    .long \type
    .asciz "Xen"
    .p2align 2
    .endm

    xen_note 6, 1f, 2f                  /* XEN_ELFNOTE_GUEST_OS */
1:  .asciz "hykernel"
2:  xen_note 5, 1f, 2f                  /* XEN_ELFNOTE_XEN_VERSION */
1:  .asciz "xen-3.0"
2:  xen_note 8, 1f, 2f                  /* XEN_ELFNOTE_LOADER */
1:  .asciz "generic"
2:  xen_note 3, 1f, 2f                  /* XEN_ELFNOTE_VIRT_BASE */
1:  .quad 0
2:  xen_note 4, 1f, 2f                  /* XEN_ELFNOTE_PADDR_OFFSET */
1:  .quad 0
2:  xen_note 1, 1f, 2f                  /* XEN_ELFNOTE_ENTRY */
1:  .quad pv_start64
2:  xen_note 2, 1f, 2f                  /* XEN_ELFNOTE_HYPERCALL_PAGE */
1:  .quad hypercall_page
2:  .p2align 2

    .section .text.boot, "ax"
    .code64
    .global pv_start64
pv_start64:
    cld
    mov     %rsi, %rdi                  /* arg 0: start_info (virtual) */
    mov     %rsp, %rsi                  /* arg 1: end of the bootstrap area's elements */
    lea     boot_stack_top(%rip), %rsp
    xor     %ebp, %ebp
    call    kernel_entry_pv
3:  ud2
    jmp     3b
