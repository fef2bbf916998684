/*
 * Interrupt and exception entry stubs.
 *
 * 256 stubs, each 16 bytes apart starting at `trap_stubs`, push an error code (0 where
 * the CPU pushes none) and the vector number, then jump to `trap_common`, which saves
 * the general registers into a `TrapFrame` and calls `trap_dispatch(&mut TrapFrame)`
 * (frame.S, shared with classic PV's pv.S).
 */
    .section .text.trap, "ax"
    .code64
    .p2align 4
    .global trap_stubs
trap_stubs:
    .set vec, 0
    .rept 256
    .p2align 4
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq   $0
    .endif
    pushq   $vec
    jmp     trap_common
    .set vec, vec + 1
    .endr
    .global trap_stubs_end
trap_stubs_end:

trap_common:
    TRAP_DISPATCH
    iretq
    .purgem TRAP_DISPATCH
