/*
 * PVH entry: the first instructions of the kernel.
 *
 * Xen's PVH domain builder and QEMU's `-kernel` PVH loader both jump to the address in
 * the XEN_ELFNOTE_PHYS32_ENTRY note in 32-bit protected mode, paging off, interrupts
 * off, with %ebx = physical address of struct hvm_start_info and no stack.
 *
 * This stub clears .bss, builds an identity map of the low 4 GiB with 2 MiB pages,
 * enters long mode and calls `kernel_entry(start_info_paddr)` on the boot stack.
 * Everything after that is Rust.
 */

    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                     /* namesz: "Xen\0" */
    .long 8                     /* descsz */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32
    .p2align 2

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov     %ebx, %esi                  /* keep start_info; rep stos uses edi/ecx/eax */

    /* Zero .bss (the page tables and the boot stack live there). */
    mov     $__bss_start, %edi
    mov     $__bss_end, %ecx
    sub     %edi, %ecx
    xor     %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT, PDPT[0..3] -> boot_pd[0..3]. */
    mov     $boot_pdpt, %eax
    or      $0x3, %eax                  /* present | writable */
    mov     %eax, boot_pml4
    mov     $boot_pd, %eax
    or      $0x3, %eax
    xor     %ecx, %ecx
1:  mov     %eax, boot_pdpt(,%ecx,8)
    add     $0x1000, %eax
    inc     %ecx
    cmp     $4, %ecx
    jne     1b

    /* 2048 PD entries: entry i maps i * 2 MiB, present | writable | huge. */
    xor     %ecx, %ecx
2:  mov     %ecx, %eax
    shl     $21, %eax
    or      $0x83, %eax
    mov     %eax, boot_pd(,%ecx,8)
    mov     %ecx, %eax
    shr     $11, %eax                   /* bits 63:32 of i * 2 MiB: always 0 below 4 GiB */
    mov     %eax, boot_pd+4(,%ecx,8)
    inc     %ecx
    cmp     $2048, %ecx
    jne     2b

    /* CR4.PAE, CR3, EFER.LME | EFER.NXE, then CR0.PG | WP | NE | ET | PE. */
    mov     %cr4, %eax
    or      $0x20, %eax
    mov     %eax, %cr4
    mov     $boot_pml4, %eax
    mov     %eax, %cr3
    mov     $0xc0000080, %ecx
    rdmsr
    or      $0x900, %eax
    wrmsr
    mov     $0x80010031, %eax
    mov     %eax, %cr0

    lgdt    boot_gdt_ptr
    ljmp    $0x08, $long_mode

    .code64
long_mode:
    mov     $0x10, %eax
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    xor     %eax, %eax
    mov     %eax, %fs
    mov     %eax, %gs
    lea     boot_stack_top(%rip), %rsp
    xor     %ebp, %ebp
    mov     %esi, %edi                  /* arg 0: start_info physical address */
    call    kernel_entry
3:  cli
    hlt
    jmp     3b

    .section .rodata.boot, "a"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot, "aw", @nobits
    .p2align 12
    .global boot_pml4
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4 * 4096
    .p2align 4
boot_stack: .skip 64 * 1024
    .global boot_stack_top
boot_stack_top:
