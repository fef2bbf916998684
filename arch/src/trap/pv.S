/*
 * Trap and event entry for classic PV, where the kernel runs in ring 3 and Xen bounces
 * exceptions and event upcalls to the addresses given with set_trap_table and
 * set_callbacks (trap/pv.rs).
 *
 * Xen's bounce frame is the hardware's with %rcx and %r11 pushed below it:
 *   rcx, r11, [error code], rip, cs, rflags, rsp, ss
 * Each stub restores %rcx and %r11 from it, drops them, and then builds the same
 * TrapFrame as entry.S (error code or 0, vector), so trap_dispatch serves both. The
 * way back is the iret hypercall (hypercall_page + 23 * 32, jumped to with one flags
 * word pushed): Xen restores the event mask from the frame's RFLAGS.IF, which it set
 * to the inverse of the mask when it bounced.
 *
 * Exceptions 0-31 each have a 32-byte stub from pv_trap_stubs (restoring %rcx and %r11
 * makes them longer than entry.S's 16); the event upcall pushes
 * the vector the event channels were given (PV_UPCALL_VECTOR); the failsafe callback
 * (Xen could not load a segment on the way back to us) reports as vector 256.
 */
/* Restores %rcx and %r11 from Xen's bounce frame and drops `bytes` of it. */
.macro PV_BOUNCE_POP bytes
    mov     (%rsp), %rcx
    mov     8(%rsp), %r11
    lea     \bytes(%rsp), %rsp
.endm

    .section .text.trap, "ax"
    .code64
    .p2align 5
    .global pv_trap_stubs
pv_trap_stubs:
    .set vec, 0
    .rept 32
    .p2align 5
    PV_BOUNCE_POP 16
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq   $0
    .endif
    pushq   $vec
    jmp     pv_trap_common
    .set vec, vec + 1
    .endr
    .p2align 5
    .global pv_trap_stubs_end
pv_trap_stubs_end:

    .p2align 4
    .global pv_upcall_entry
pv_upcall_entry:
    PV_BOUNCE_POP 16
    pushq   $0
    pushq   PV_UPCALL_VECTOR(%rip)
    jmp     pv_trap_common

    .p2align 4
    .global pv_failsafe_entry
pv_failsafe_entry:
    /* rcx, r11, ds, es, fs, gs, rip, cs, rflags, rsp, ss */
    PV_BOUNCE_POP 48
    pushq   $0
    pushq   $256
    jmp     pv_trap_common

pv_trap_common:
    TRAP_DISPATCH
    pushq   $0                          /* iret flags: not from a syscall */
    jmp     hypercall_page + 23 * 32
    .purgem TRAP_DISPATCH
    .purgem PV_BOUNCE_POP
