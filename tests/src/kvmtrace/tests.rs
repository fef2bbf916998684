//! The parser on hand-written lines in Linux 6.1's format, and on a trace recorded on the
//! KVM test host (`tests/data/kvmtrace/`).

use super::*;
use crate::xentrace::{SVM_EXIT_CPUID, SVM_EXIT_MSR, X2APIC_EOI_MSR};

const HEADER: &str = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 14/14   #P:1\n#\n";

fn line(t: &str, ev: &str) -> String {
    format!(" qemu-system-x86-301     [000] d..2.   {t}: {ev}\n")
}

/// A two-iteration `interrupt` phase: the first interrupt ended by PV EOI, the second by
/// the EOI write; and a `clock_read` phase without exits.
fn sample() -> String {
    let exit = |r: &str| {
        format!("kvm_exit: vcpu 0 reason {r} rip 0xffffffff81000000 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000")
    };
    let cpuid =
        |f: u32, i: u32| format!("kvm_cpuid: func {f:x} idx {i:x} rax 0 rbx 0 rcx 0 rdx 0, cpuid entry not found");
    let mut s = HEADER.to_string();
    for (t, ev) in [
        ("10.000100", exit("cpuid")),
        ("10.000101", cpuid(0x4fff_f105, 0)),
        ("10.000200", exit("msr")),
        ("10.000201", "kvm_msr: msr_write 83f = 0x40".into()),
        ("10.000202", "kvm_inj_virq: IRQ 0x40".into()),
        ("10.000300", "kvm_pv_eoi: apicid 0 vector 64".into()),
        ("10.000400", exit("msr")),
        ("10.000401", "kvm_msr: msr_write 83f = 0x40".into()),
        ("10.000402", exit("msr")),
        ("10.000403", "kvm_msr: msr_write 80b = 0x0".into()),
        ("10.000500", exit("cpuid")),
        ("10.000501", cpuid(0x4fff_f205, 2)),
        ("10.000600", exit("cpuid")),
        ("10.000601", cpuid(0x4fff_f104, 0)),
        ("10.000700", exit("cpuid")),
        ("10.000701", cpuid(0x4fff_f204, 1000)),
    ] {
        s += &line(t, &ev);
    }
    s
}

#[test]
fn reasons_map_to_svm_codes() {
    assert_eq!(exit_code("msr"), Some(SVM_EXIT_MSR));
    assert_eq!(exit_code("cpuid"), Some(SVM_EXIT_CPUID));
    assert_eq!(exit_code("PF excp"), Some(0x4e));
    assert_eq!(exit_code("0x401"), Some(0x401));
    assert_eq!(exit_code("write_dr0"), Some(0x30));
    assert_eq!(exit_code("read_dr7"), Some(0x27));
    assert_eq!(exit_code("write_dr8"), None);
    assert_eq!(exit_code("vmmcall"), None, "Linux names VMMCALL 'hypercall'");
    assert_eq!(exit_code("hypercall"), Some(0x81));
    assert_eq!(exit_code("bogus"), None);
}

#[test]
fn events_parse() {
    let e = event(&line("5.5", "kvm_msr: msr_write 80b = 0x0")).unwrap().unwrap();
    assert_eq!(e, Event::Msr { write: true, msr: 0x80b, value: 0 });
    let e = event(&line("5.5", "kvm_cpuid: func 4ffff203 idx 2710 rax 0 rbx 0 rcx 0 rdx 0, cpuid entry not found"));
    assert_eq!(e.unwrap().unwrap(), Event::Cpuid { t: 5.5, function: 0x4fff_f203, index: 10_000 });
    assert_eq!(event("# tracer: nop"), None);
    assert_eq!(event(&line("5.5", "kvm_entry: vcpu 0, rip 0x1")), None);
    assert!(event(&line("5.5", "kvm_msr: msr_write zz = 0x0")).unwrap().is_err());
    assert!(event(&line("5.5", "kvm_exit: vcpu 0 reason warp rip 0x1")).unwrap().is_err());
}

#[test]
fn phases_count_between_markers() {
    let t = phases(&sample()).unwrap();
    assert_eq!(t.exits, 7);
    let p = t.phase("interrupt").unwrap();
    assert_eq!(p.phase.iterations, 2);
    // Three MSR exits (two SELF_IPIs, one EOI); the END marker's CPUID exit taken back.
    assert_eq!((p.phase.total_exits, p.phase.exits_of(SVM_EXIT_MSR), p.phase.exits_of(SVM_EXIT_CPUID)), (3, 3, 0));
    assert_eq!(p.phase.msr_writes_of(X2APIC_EOI_MSR), 1);
    assert_eq!(p.phase.eoi_exits_per_op(), Some(0.5));
    assert_eq!((p.pv_eois, p.injections), (1, 1));
    assert_eq!(p.pv_eois_per_op(), Some(0.5));
    assert!((p.seconds - 0.0004).abs() < 1e-9);
    let c = t.phase("clock_read").unwrap();
    assert_eq!((c.phase.iterations, c.phase.total_exits), (1000, 0));
}

#[test]
fn lost_events_and_empty_traces_are_errors() {
    let lost = sample().replace("14/14", "14/20");
    assert_eq!(phases(&lost), Err(TraceError::Lost { kept: 14, written: 20 }));
    assert!(phases(&lost).unwrap_err().to_string().contains("buffer_size_kb"));
    assert_eq!(phases(HEADER), Err(TraceError::Empty));
}

#[test]
fn a_phase_cut_off_stays_incomplete() {
    let text: String = sample().lines().take(10).map(|l| format!("{l}\n")).collect();
    let t = phases(&text).unwrap();
    assert_eq!(t.phases.len(), 1);
    assert!(!t.phases[0].phase.complete);
    assert!(t.phase("interrupt").is_none());
}

/// `timer_lateness` of the KVM hybrid mode (PV EOI), recorded on the KVM test host: L1's
/// trace from the phase's BEGIN marker to its END marker.
#[test]
fn recorded_hybrid_phase() {
    let t = phases(include_str!("../../data/kvmtrace/hybrid-timer-lateness.txt")).unwrap();
    assert_eq!(t.phases.len(), 1);
    let p = t.phase("timer_lateness").unwrap();
    assert_eq!(p.phase.iterations, 200);
    // One TSC-deadline write per deadline; PV EOI ended all but two of the timer interrupts.
    assert_eq!(p.phase.msr_writes_of(0x6e0), 200);
    assert_eq!((p.pv_eois, p.phase.eoi_exits()), (198, 2));
    assert_eq!(p.phase.total_exits, 205);
    assert_eq!(p.phase.exits_of(SVM_EXIT_CPUID), 0);
}
