/*
 * The one way a trap reaches Rust, shared by the native stubs (entry.S) and classic
 * PV's (pv.S): with the error code (or 0) and the vector already pushed, save the
 * general registers into a `TrapFrame`, call `trap_dispatch(&mut TrapFrame)`, restore
 * them and drop the error code and vector. Each user returns its own way (iretq, or
 * PV's iret hypercall) and purges the macro after its last use, so both files can be
 * assembled into one module.
 */
.macro TRAP_DISPATCH
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
.endm
