//! Readable reports of fatal exceptions.
//!
//! A CPU exception in this kernel is a bug or a hostile environment; there is nothing to
//! resume. The report names the exception, decodes the error code and CR2 for page
//! faults, lists the registers, and panics, so the panic handler shuts down with failure.

use super::TrapFrame;
use core::fmt;

const NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack-segment fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 floating point",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating point",
    "#VE virtualization",
    "#CP control protection",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved 31",
];

/// Name of exception `vector` (< 32).
pub fn exception_name(vector: u8) -> &'static str {
    NAMES.get(vector as usize).copied().unwrap_or("not an exception")
}

struct Report<'a> {
    frame: &'a TrapFrame,
    cr2: u64,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.frame;
        let v = t.vector as u8;
        write!(
            f,
            "EXCEPTION {} (vector {}) error={:#x} rip={:#018x} cs={:#x} rflags={:#x} rsp={:#018x}",
            exception_name(v),
            v,
            t.error_code,
            t.rip,
            t.cs,
            t.rflags,
            t.rsp
        )?;
        if v == 14 {
            let e = t.error_code;
            write!(
                f,
                "\n  cr2={:#018x} ({}, {}, {}{})",
                self.cr2,
                if e & 1 != 0 { "protection violation" } else { "not present" },
                if e & 2 != 0 { "write" } else { "read" },
                if e & 4 != 0 { "user" } else { "kernel" },
                if e & 16 != 0 { ", instruction fetch" } else { "" }
            )?;
        }
        write!(f, "\n  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}", t.rax, t.rbx, t.rcx, t.rdx)?;
        write!(f, "\n  rsi={:#018x} rdi={:#018x} rbp={:#018x} r8 ={:#018x}", t.rsi, t.rdi, t.rbp, t.r8)?;
        write!(f, "\n  r9 ={:#018x} r10={:#018x} r11={:#018x} r12={:#018x}", t.r9, t.r10, t.r11, t.r12)?;
        write!(f, "\n  r13={:#018x} r14={:#018x} r15={:#018x}", t.r13, t.r14, t.r15)
    }
}

/// Reports an exception and panics.
pub(super) fn fatal_exception(frame: &TrapFrame) -> ! {
    let cr2 = if frame.vector == 14 { super::pv::cr2() } else { 0 };
    panic!("{}", Report { frame, cr2 })
}

/// Reports Xen's failsafe callback (it could not load a segment register on the way back
/// into this PV guest) and panics.
pub(super) fn fatal_failsafe(frame: &TrapFrame) -> ! {
    panic!(
        "PV failsafe callback: Xen could not return to rip={:#018x} cs={:#x} rsp={:#018x} ss={:#x}",
        frame.rip, frame.cs, frame.rsp, frame.ss
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_report_decodes_error_code() {
        let mut frame: TrapFrame = unsafe_free_zeroed();
        frame.vector = 14;
        frame.error_code = 0x2;
        frame.rip = 0x40_1234;
        let text = format!("{}", Report { frame: &frame, cr2: 0xdead_b000 });
        assert!(text.starts_with("EXCEPTION #PF page fault (vector 14) error=0x2 rip=0x0000000000401234"));
        assert!(text.contains("cr2=0x00000000deadb000 (not present, write, kernel)"));
    }

    fn unsafe_free_zeroed() -> TrapFrame {
        TrapFrame {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error_code: 0,
            rip: 0,
            cs: 8,
            rflags: 0,
            rsp: 0,
            ss: 0,
        }
    }

    #[test]
    fn names() {
        assert_eq!(exception_name(13), "#GP general protection");
        assert_eq!(exception_name(40), "not an exception");
    }
}
