; xtguest.asm - tiny Xen test guest: a PVH-note ELF that runs a few exit-counting phases, each one
; bracketed by HVMOP_xentrace phase markers, then powers the domain off.
;
; Build:  nasm -f bin -o xtguest.elf tests/xen/guest/xtguest.asm      (or tests/xen/guest/build.sh)
;         -DORG=<addr>    load/link address (default 0x400000 = 4 MiB)
;         -DLOOPS=<n>     iterations per phase when the cmdline has no loops= (default 10000)
;
; Boots as  type="pvh" kernel="xtguest.elf"                     (Xen's PVH loader), and as
;           type="hvm" kernel="xtguest.elf" + machine xenfv-4.2 (qemu-xen's PVH loader via SeaBIOS).
; For type="hvm" the ELF must not be linked at 1 MiB: hvmloader lives there when qemu copies the
; ELF into guest RAM. 4 MiB works for both types, so there is one image.
;
; What it does (32-bit protected mode, paging off, all memory it uses is inside the image):
;   1. prints to the Xen debug port 0xe9 (seen as "(dN) ..." in `xl dmesg` with guest_loglvl=all)
;      and, if a UART answers at 0x3f8 (HVM with qemu), to COM1 as well;
;   2. reads "loops=<decimal>" from the PVH start_info command line;
;   3. finds the Xen CPUID leaves and installs the hypercall page (wrmsr);
;   4. runs three phases of <loops> iterations each, between phase markers:
;        cpuid        one CPUID (leaf 0) per iteration       -> 1 CPUID exit per op
;        xen_version  one HYPERVISOR_xen_version hypercall   -> 1 VMMCALL exit per op
;        empty        an empty counted loop                  -> ~0 exits per op
;      A phase marker is HVMOP_xentrace (hvm_op 34, op 11) with event 0x100 (BEGIN) or 0x101 (END),
;      i.e. trace record 0x0800f100 / 0x0800f101, and 28 extra bytes:
;        u32 iterations_lo, u32 iterations_hi, char name[20] (NUL padded)
;      (the format tests/src/xentrace.rs parses);
;   5. SCHEDOP_shutdown(SHUTDOWN_poweroff).

%ifndef ORG
%define ORG 0x400000
%endif
%ifndef LOOPS
%define LOOPS 10000
%endif

HVMOP_xentrace      equ 11
HC_xen_version      equ 17
HC_sched_op         equ 29
HC_hvm_op           equ 34
SCHEDOP_shutdown    equ 2
SHUTDOWN_poweroff   equ 0
EV_PHASE_BEGIN      equ 0x100
EV_PHASE_END        equ 0x101
START_INFO_MAGIC    equ 0x336ec578
XEN_ELFNOTE_PHYS32_ENTRY equ 18

        bits 32
        org ORG

; ---------------------------------------------------------------------------------------------
; ELF32 header, one PT_LOAD for the whole image and a PT_NOTE with the PVH entry point
; ---------------------------------------------------------------------------------------------
elf_header:
        db 0x7f, 'ELF', 1, 1, 1, 0          ; ELFCLASS32, little endian, version 1, SysV ABI
        times 8 db 0
        dw 2                                ; e_type = ET_EXEC
        dw 3                                ; e_machine = EM_386
        dd 1                                ; e_version
        dd pvh_entry                        ; e_entry (PVH loaders use the note below)
        dd program_headers - $$             ; e_phoff
        dd 0                                ; e_shoff: no sections
        dd 0                                ; e_flags
        dw 52                               ; e_ehsize
        dw 32                               ; e_phentsize
        dw 2                                ; e_phnum
        dw 40, 0, 0                         ; e_shentsize, e_shnum, e_shstrndx
program_headers:
        ; PT_LOAD: p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags (RWX), p_align
        dd 1, 0, $$, $$, image_end - $$, image_end - $$, 7, 0x1000
        ; PT_NOTE
        dd 4, xen_notes - $$, xen_notes, xen_notes, xen_notes_end - xen_notes, xen_notes_end - xen_notes, 4, 4
xen_notes:
        dd 4, 4, XEN_ELFNOTE_PHYS32_ENTRY   ; namesz, descsz, type
        db 'Xen', 0
        dd pvh_entry
xen_notes_end:

; ---------------------------------------------------------------------------------------------
; Entry: 32-bit protected mode, paging off, flat CS/DS, ebx = physical address of hvm_start_info
; ---------------------------------------------------------------------------------------------
pvh_entry:
        cld
        mov esp, stack_top
        mov [start_info], ebx
        call detect_uart
        mov esi, s_hello
        call puts

        ; --- command line: loops=<n>
        mov dword [loops], LOOPS
        mov ebx, [start_info]
        test ebx, ebx
        jz .no_cmdline
        cmp dword [ebx], START_INFO_MAGIC
        jne .no_cmdline
        mov esi, [ebx + 24]                 ; cmdline_paddr (low half; the guest has < 4 GiB)
        test esi, esi
        jz .no_cmdline
        push esi
        mov esi, s_cmdline
        call puts
        mov esi, [esp]
        call puts
        mov esi, s_nl
        call puts
        pop esi
        call parse_loops
.no_cmdline:

        ; --- Xen CPUID leaves and hypercall page
        call setup_hypercalls
        jc halt

        mov esi, s_loops
        call puts
        mov eax, [loops]
        call putdec
        mov esi, s_nl
        call puts

        ; --- phase 1: CPUID
        mov esi, n_cpuid
        call phase_begin
        mov ebp, [loops]
        test ebp, ebp
        jz .cpuid_done
.cpuid_loop:
        xor eax, eax
        xor ecx, ecx
        cpuid
        dec ebp
        jnz .cpuid_loop
.cpuid_done:
        call phase_end

        ; --- phase 2: xen_version hypercall (XENVER_version, no argument)
        mov esi, n_xenver
        call phase_begin
        mov ebp, [loops]
        test ebp, ebp
        jz .xv_done
.xv_loop:
        push ebp                            ; ebp is the 6th hypercall argument register
        xor ebx, ebx                        ; XENVER_version
        xor ecx, ecx
        call hypercall_page + HC_xen_version * 32
        pop ebp
        dec ebp
        jnz .xv_loop
.xv_done:
        call phase_end

        ; --- phase 3: empty loop (baseline: timer interrupts etc. only)
        mov esi, n_empty
        call phase_begin
        mov ecx, [loops]
        test ecx, ecx
        jz .empty_done
.empty_loop:
        nop
        dec ecx
        jnz .empty_loop
.empty_done:
        call phase_end

        ; --- power off
        mov esi, s_bye
        call puts
        mov ebx, SCHEDOP_shutdown
        mov ecx, shutdown_arg
        call hypercall_page + HC_sched_op * 32
        mov esi, s_hcfail
        call puts
halt:   cli
        hlt
        jmp halt

; ---------------------------------------------------------------------------------------------
; setup_hypercalls: find the "XenVMMXenVMM" CPUID base, write the hypercall page MSR.
; CF set on failure.
; ---------------------------------------------------------------------------------------------
setup_hypercalls:
        mov edi, 0x40000000
.find:  mov eax, edi
        cpuid
        cmp ebx, 0x566e6558                 ; "XenV"
        jne .next
        cmp ecx, 0x65584d4d                 ; "MMXe"
        jne .next
        cmp edx, 0x4d4d566e                 ; "nVMM"
        je .found
.next:  add edi, 0x100
        cmp edi, 0x40010000
        jb .find
        mov esi, s_noxen
        call puts
        stc
        ret
.found: lea eax, [edi + 2]
        cpuid                               ; eax = number of hypercall pages, ebx = MSR index
        mov ecx, ebx
        mov eax, hypercall_page
        xor edx, edx
        wrmsr
        mov esi, s_xenbase
        call puts
        mov eax, edi
        call puthex
        mov esi, s_nl
        call puts
        clc
        ret

; ---------------------------------------------------------------------------------------------
; Phase markers. phase_begin: esi = phase name (NUL-terminated, at most 20 bytes used); it is
; remembered for phase_end. Both report [loops] as the iteration count. The TSC is read outside
; the marked window, so RDTSC exits (Xen's default tsc_mode emulates the TSC) are not counted.
; ---------------------------------------------------------------------------------------------
phase_begin:
        mov [phase_name], esi
        mov esi, s_phase
        call puts
        mov esi, [phase_name]
        call puts
        mov esi, s_nl
        call puts
        rdtsc
        mov [tsc_start], eax
        mov [tsc_start + 4], edx
        mov eax, EV_PHASE_BEGIN
        jmp xentrace_marker

phase_end:
        mov eax, EV_PHASE_END
        call xentrace_marker
        rdtsc
        sub eax, [tsc_start]
        sbb edx, [tsc_start + 4]
        push eax
        mov esi, s_phase
        call puts
        mov esi, [phase_name]
        call puts
        mov esi, s_done
        call puts
        mov eax, [loops]
        call putdec
        mov esi, s_tsc
        call puts
        pop eax
        call putdec
        mov esi, s_marker_rc
        call puts
        mov eax, [marker_rc]
        call puthex
        mov esi, s_nl
        call puts
        ret

; xentrace_marker: eax = event; fills xt_rec from [loops] and [phase_name], issues HVMOP_xentrace.
xentrace_marker:
        pushad
        mov [xt_rec], ax                    ; event (< 0x1000)
        mov word [xt_rec + 2], 28           ; extra_bytes
        mov eax, [loops]
        mov [xt_rec + 4], eax               ; iterations_lo
        mov dword [xt_rec + 8], 0           ; iterations_hi
        mov edi, xt_rec + 12                ; name[20], NUL padded
        mov esi, [phase_name]
        mov ecx, 20
.copy:  lodsb
        test al, al
        jz .pad
        stosb
        loop .copy
        jmp .call
.pad:   xor al, al
        rep stosb
.call:  mov ebx, HVMOP_xentrace
        mov ecx, xt_rec
        call hypercall_page + HC_hvm_op * 32
        mov [marker_rc], eax
        popad
        ret

; ---------------------------------------------------------------------------------------------
; parse_loops: esi = NUL-terminated command line; sets [loops] from the first "loops=<decimal>".
; ---------------------------------------------------------------------------------------------
parse_loops:
.scan:  cmp byte [esi], 0
        je .out
        push esi
        mov edi, k_loops
        mov ecx, k_loops_len
        repe cmpsb
        pop esi
        je .digits
        inc esi
        jmp .scan
.digits:
        add esi, k_loops_len
        xor eax, eax
.d:     movzx edx, byte [esi]
        sub edx, '0'
        cmp edx, 9
        ja .set
        imul eax, eax, 10
        add eax, edx
        inc esi
        jmp .d
.set:   mov [loops], eax
.out:   ret

; ---------------------------------------------------------------------------------------------
; Console output: 0xe9 always, COM1 too when a UART is present.
; ---------------------------------------------------------------------------------------------
detect_uart:                                ; no UART (PVH): port reads return 0xff
        mov dx, 0x3fd                       ; line status register
        in al, dx
        cmp al, 0xff
        setne [have_uart]
        ret

putc:                                       ; al = character
        out 0xe9, al
        cmp byte [have_uart], 0
        je .r
        push edx
        push eax
        mov dx, 0x3fd
.wait:  in al, dx
        test al, 0x20                       ; THR empty
        jz .wait
        pop eax
        mov dx, 0x3f8
        out dx, al
        pop edx
.r:     ret

puts:                                       ; esi = NUL-terminated string
        push eax
.l:     lodsb
        test al, al
        jz .d
        call putc
        jmp .l
.d:     pop eax
        ret

puthex:                                     ; eax, as 8 hex digits
        pushad
        mov ecx, 8
        mov edx, eax
.h:     rol edx, 4
        mov eax, edx
        and eax, 0xf
        mov al, [hex_digits + eax]
        call putc
        loop .h
        popad
        ret

putdec:                                     ; eax, unsigned decimal
        pushad
        mov ebx, 10
        xor ecx, ecx
.div:   xor edx, edx
        div ebx
        push edx
        inc ecx
        test eax, eax
        jnz .div
.out:   pop eax
        add al, '0'
        call putc
        loop .out
        popad
        ret

; ---------------------------------------------------------------------------------------------
; Data
; ---------------------------------------------------------------------------------------------
hex_digits: db '0123456789abcdef'
s_hello:    db 'XTG: hello from the hykernel xtguest (32-bit PVH entry)', 10, 0
s_cmdline:  db 'XTG: cmdline: ', 0
s_loops:    db 'XTG: loops per phase: ', 0
s_xenbase:  db 'XTG: Xen CPUID base 0x', 0
s_noxen:    db 'XTG: no Xen CPUID leaves, halting', 10, 0
s_phase:    db 'XTG: phase ', 0
s_done:     db ' done: loops=', 0
s_tsc:      db ' tsc_delta=', 0
s_marker_rc: db ' marker_rc=0x', 0
s_bye:      db 'XTG: SCHEDOP_shutdown(poweroff)', 10, 0
s_hcfail:   db 'XTG: shutdown hypercall returned', 10, 0
s_nl:       db 10, 0
k_loops:    db 'loops='
k_loops_len equ $ - k_loops
n_cpuid:    db 'cpuid', 0
n_xenver:   db 'xen_version', 0
n_empty:    db 'empty', 0

        align 4
start_info: dd 0
loops:      dd 0
phase_name: dd 0
marker_rc:  dd 0
have_uart:  db 0
        align 8
tsc_start:  dq 0
shutdown_arg: dd SHUTDOWN_poweroff
        align 4
xt_rec:     times 32 db 0                   ; struct xen_hvm_xentrace { u16 event, extra_bytes; u8 extra[28]; }

        align 16
stack:      times 4096 db 0
stack_top:

        align 4096
hypercall_page: times 4096 db 0             ; filled by Xen after the wrmsr
image_end:
