//! One line of L1's trace text: `<task>-<pid> [cpu] <flags> <seconds>: <event>: <fields>`,
//! the fields as Linux 6.1's `arch/x86/kvm/trace.h` prints them.

use crate::xentrace::{SVM_EXIT_CPUID, SVM_EXIT_HLT, SVM_EXIT_INTR, SVM_EXIT_IOIO, SVM_EXIT_MSR, SVM_EXIT_NPF};

/// An event of the trace.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `kvm_exit`: a VM exit with its SVM exit code.
    Exit {
        /// Seconds since L1 booted.
        t: f64,
        /// SVM exit code ([`exit_code`] of the printed reason).
        code: u32,
    },
    /// `kvm_msr`: the exit was an MSR access.
    Msr {
        /// A write (else a read).
        write: bool,
        /// MSR index.
        msr: u32,
        /// Value written or read.
        value: u64,
    },
    /// `kvm_cpuid`: the exit was a CPUID (a phase marker, for the marker leaves).
    Cpuid {
        /// Seconds since L1 booted.
        t: f64,
        /// Leaf (EAX in).
        function: u32,
        /// Subleaf (ECX in).
        index: u32,
    },
    /// `kvm_pv_eoi`: KVM completed an EOI the guest skipped with PV EOI.
    PvEoi,
    /// `kvm_inj_virq`: KVM injected an interrupt.
    Inject,
}

/// The SVM exit code of a reason as `kvm_exit` prints it on AMD (`SVM_EXIT_REASONS`):
/// `msr`, `cpuid`, `PF excp`, or `0x...` for a code the kernel has no name for. `None`
/// for a word that is neither.
pub fn exit_code(reason: &str) -> Option<u32> {
    const NAMES: [(&str, u32); 47] = [
        ("read_cr0", 0x00),
        ("read_cr3", 0x03),
        ("read_cr4", 0x04),
        ("read_cr8", 0x08),
        ("write_cr0", 0x10),
        ("write_cr3", 0x13),
        ("write_cr4", 0x14),
        ("write_cr8", 0x18),
        ("interrupt", SVM_EXIT_INTR),
        ("nmi", 0x61),
        ("smi", 0x62),
        ("init", 0x63),
        ("vintr", 0x64),
        ("cr0_sel_write", 0x65),
        ("rdtsc", 0x6e),
        ("rdpmc", 0x6f),
        ("cpuid", SVM_EXIT_CPUID),
        ("rsm", 0x73),
        ("iret", 0x74),
        ("invd", 0x76),
        ("pause", 0x77),
        ("hlt", SVM_EXIT_HLT),
        ("invlpg", 0x79),
        ("invlpga", 0x7a),
        ("io", SVM_EXIT_IOIO),
        ("msr", SVM_EXIT_MSR),
        ("task_switch", 0x7d),
        ("shutdown", 0x7f),
        ("vmrun", 0x80),
        ("hypercall", 0x81),
        ("vmload", 0x82),
        ("vmsave", 0x83),
        ("stgi", 0x84),
        ("clgi", 0x85),
        ("skinit", 0x86),
        ("rdtscp", 0x87),
        ("wbinvd", 0x89),
        ("monitor", 0x8a),
        ("mwait", 0x8b),
        ("xsetbv", 0x8d),
        ("rdpru", 0x8e),
        ("write_efer_trap", 0x8f),
        ("npf", SVM_EXIT_NPF),
        ("avic_incomplete_ipi", 0x401),
        ("avic_unaccelerated_access", 0x402),
        ("invalid", u32::MAX),
        ("invalid_guest_state", u32::MAX),
    ];
    const EXCEPTIONS: [&str; 20] = [
        "DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "09", "TS", "NP", "SS", "GP", "PF", "15", "MF", "AC",
        "MC", "XM",
    ];
    if let Some(&(_, code)) = NAMES.iter().find(|(n, _)| *n == reason) {
        return Some(code);
    }
    // Debug registers: read_dr0..7 are 0x20.., write_dr0..7 0x30.. (a Linux guest's
    // context switches touch them; ours never does).
    for (prefix, base) in [("read_dr", 0x20), ("write_dr", 0x30)] {
        if let Some(n) = reason.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok()).filter(|&n| n < 8) {
            return Some(base + n);
        }
    }
    if let Some(v) = reason.strip_suffix(" excp") {
        return EXCEPTIONS.iter().position(|&e| e == v).map(|i| 0x40 + i as u32);
    }
    u32::from_str_radix(reason.strip_prefix("0x")?, 16).ok()
}

/// The value after `key ` in `fields` (up to the next space or comma).
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let at = fields.find(&format!("{key} "))? + key.len() + 1;
    fields[at..].split([' ', ',']).next()
}

fn hex<T: TryFrom<u64>>(s: &str) -> Option<T> {
    T::try_from(u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()?).ok()
}

/// Reads one line of the trace; `None` for comments and events this module does not use.
/// `Some(Err)` names a line of a known event that does not parse.
pub fn event(line: &str) -> Option<Result<Event, String>> {
    if line.starts_with('#') {
        return None;
    }
    let at = line.find(": kvm_")?;
    let t = line[..at].rsplit(' ').next().and_then(|s| s.parse::<f64>().ok());
    let rest = &line[at + 2..];
    let (name, fields) = rest.split_once(": ").unwrap_or((rest, ""));
    let bad = || format!("unreadable {name} event: {}", line.trim());
    let ev = match name {
        "kvm_exit" => {
            let reason = fields.split_once("reason ").and_then(|(_, r)| r.split_once(" rip ")).map(|(r, _)| r);
            match (t, reason.and_then(exit_code)) {
                (Some(t), Some(code)) => Event::Exit { t, code },
                _ => return Some(Err(bad())),
            }
        }
        "kvm_msr" => {
            let mut w = fields.split_whitespace();
            let (Some(kind), Some(msr), Some("="), Some(value)) = (w.next(), w.next(), w.next(), w.next()) else {
                return Some(Err(bad()));
            };
            match (kind, hex(msr), hex(value)) {
                ("msr_write" | "msr_read", Some(msr), Some(value)) => {
                    Event::Msr { write: kind == "msr_write", msr, value }
                }
                _ => return Some(Err(bad())),
            }
        }
        "kvm_cpuid" => match (t, field(fields, "func").and_then(hex), field(fields, "idx").and_then(hex)) {
            (Some(t), Some(function), Some(index)) => Event::Cpuid { t, function, index },
            _ => return Some(Err(bad())),
        },
        "kvm_pv_eoi" => Event::PvEoi,
        "kvm_inj_virq" => Event::Inject,
        _ => return None,
    };
    Some(Ok(ev))
}
