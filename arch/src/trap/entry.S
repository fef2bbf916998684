/*
 * Interrupt and exception entry stubs.
 *
 * 256 stubs, each 16 bytes apart starting at `trap_stubs`, push an error code (0 where
 * the CPU pushes none) and the vector number, then jump to `trap_common`, which saves
 * the general registers into a `TrapFrame` and calls `trap_dispatch(&mut TrapFrame)`.
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
    push    %rax
    push    %rbx
    push    %rcx
    push    %rdx
    push    %rsi
    push    %rdi
    push    %rbp
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, %rdi
    cld
    call    trap_dispatch
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rbp
    pop     %rdi
    pop     %rsi
    pop     %rdx
    pop     %rcx
    pop     %rbx
    pop     %rax
    add     $16, %rsp
    iretq
