//! AMD SVM exit codes: the `EXITCODE` a VM exit record carries, and their names.
//!
//! `phase.rs` counts exits by code and needs a few by constant (the markers' own exits);
//! `report.rs` and [`super::Phase::exits`] show them by [`svm_exit_name`]. On an Intel host
//! the codes would be VMX basic exit reasons, which this module does not name.

/// SVM exit code of a physical interrupt (the host's timer, among others).
pub const SVM_EXIT_INTR: u32 = 0x60;
/// SVM exit code of a virtual interrupt window (Xen asked to be told when it can inject).
pub const SVM_EXIT_VINTR: u32 = 0x64;
/// SVM exit code of CPUID.
pub const SVM_EXIT_CPUID: u32 = 0x72;
/// SVM exit code of HLT.
pub const SVM_EXIT_HLT: u32 = 0x78;
/// SVM exit code of IN/OUT (port I/O, e.g. the `0xe9` debug console).
pub const SVM_EXIT_IOIO: u32 = 0x7b;
/// SVM exit code of RDMSR/WRMSR (x2APIC accesses among them).
pub const SVM_EXIT_MSR: u32 = 0x7c;
/// SVM exit code of VMMCALL (hypercalls from HVM/PVH guests).
pub const SVM_EXIT_VMMCALL: u32 = 0x81;
/// SVM exit code of a nested page fault (MMIO emulation, xAPIC accesses among them).
pub const SVM_EXIT_NPF: u32 = 0x400;

/// Name of an AMD SVM exit code (`EXITCODE` in the VMCB), e.g. `0x72` → `"CPUID"`.
/// Unknown codes are returned as hex (`"0x1234"`).
pub fn svm_exit_name(code: u32) -> String {
    const EXCEPTIONS: [&str; 32] = [
        "DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "09", "TS", "NP", "SS", "GP", "PF", "15", "MF", "AC",
        "MC", "XM", "VE", "CP", "22", "23", "24", "25", "26", "27", "HV", "VC", "SX", "31",
    ];
    let fixed = match code {
        0x60 => "INTR",
        0x61 => "NMI",
        0x62 => "SMI",
        0x63 => "INIT",
        0x64 => "VINTR",
        0x65 => "CR0_SEL_WRITE",
        0x66 => "IDTR_READ",
        0x67 => "GDTR_READ",
        0x68 => "LDTR_READ",
        0x69 => "TR_READ",
        0x6a => "IDTR_WRITE",
        0x6b => "GDTR_WRITE",
        0x6c => "LDTR_WRITE",
        0x6d => "TR_WRITE",
        0x6e => "RDTSC",
        0x6f => "RDPMC",
        0x70 => "PUSHF",
        0x71 => "POPF",
        0x72 => "CPUID",
        0x73 => "RSM",
        0x74 => "IRET",
        0x75 => "SWINT",
        0x76 => "INVD",
        0x77 => "PAUSE",
        0x78 => "HLT",
        0x79 => "INVLPG",
        0x7a => "INVLPGA",
        0x7b => "IOIO",
        0x7c => "MSR",
        0x7d => "TASK_SWITCH",
        0x7e => "FERR_FREEZE",
        0x7f => "SHUTDOWN",
        0x80 => "VMRUN",
        0x81 => "VMMCALL",
        0x82 => "VMLOAD",
        0x83 => "VMSAVE",
        0x84 => "STGI",
        0x85 => "CLGI",
        0x86 => "SKINIT",
        0x87 => "RDTSCP",
        0x88 => "ICEBP",
        0x89 => "WBINVD",
        0x8a => "MONITOR",
        0x8b => "MWAIT",
        0x8c => "MWAIT_CONDITIONAL",
        0x8d => "XSETBV",
        0x8e => "RDPRU",
        0x8f => "EFER_WRITE_TRAP",
        0xa0 => "INVLPGB",
        0xa1 => "INVLPGB_ILLEGAL",
        0xa2 => "INVPCID",
        0xa3 => "MCOMMIT",
        0xa4 => "TLBSYNC",
        0x400 => "NPF",
        0x401 => "AVIC_INCOMPLETE_IPI",
        0x402 => "AVIC_NOACCEL",
        0x403 => "VMGEXIT",
        0xffff_ffff => "INVALID",
        0xffff_fffe => "BUSY",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    match code {
        0x00..=0x0f => format!("CR{}_READ", code),
        0x10..=0x1f => format!("CR{}_WRITE", code - 0x10),
        0x20..=0x2f => format!("DR{}_READ", code - 0x20),
        0x30..=0x3f => format!("DR{}_WRITE", code - 0x30),
        0x40..=0x5f => format!("EXCP_{}", EXCEPTIONS[(code - 0x40) as usize]),
        0x90..=0x9f => format!("CR{}_WRITE_TRAP", code - 0x90),
        _ => format!("{code:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_names() {
        assert_eq!(svm_exit_name(0x72), "CPUID");
        assert_eq!(svm_exit_name(0x7b), "IOIO");
        assert_eq!(svm_exit_name(0x7c), "MSR");
        assert_eq!(svm_exit_name(0x400), "NPF");
        assert_eq!(svm_exit_name(0x81), "VMMCALL");
        assert_eq!(svm_exit_name(0x78), "HLT");
        assert_eq!(svm_exit_name(0x60), "INTR");
        assert_eq!(svm_exit_name(0x64), "VINTR");
        assert_eq!(svm_exit_name(0x00), "CR0_READ");
        assert_eq!(svm_exit_name(0x13), "CR3_WRITE");
        assert_eq!(svm_exit_name(0x14), "CR4_WRITE");
        assert_eq!(svm_exit_name(0x27), "DR7_READ");
        assert_eq!(svm_exit_name(0x4e), "EXCP_PF");
        assert_eq!(svm_exit_name(0x8d), "XSETBV");
        assert_eq!(svm_exit_name(0x98), "CR8_WRITE_TRAP");
        assert_eq!(svm_exit_name(0xffff_ffff), "INVALID");
        assert_eq!(svm_exit_name(0x1234), "0x1234");
    }

    #[test]
    fn constants_have_their_names() {
        let named = [
            (SVM_EXIT_INTR, "INTR"),
            (SVM_EXIT_VINTR, "VINTR"),
            (SVM_EXIT_CPUID, "CPUID"),
            (SVM_EXIT_HLT, "HLT"),
            (SVM_EXIT_IOIO, "IOIO"),
            (SVM_EXIT_MSR, "MSR"),
            (SVM_EXIT_VMMCALL, "VMMCALL"),
            (SVM_EXIT_NPF, "NPF"),
        ];
        for (code, name) in named {
            assert_eq!(svm_exit_name(code), name);
        }
    }
}
