//! Real traces captured on the Xen test host (`tests/data/xentrace/README.md`).

use super::*;

const PVH_1000: &[u8] = include_bytes!("../../../data/xentrace/pvh-1000.trace");
const HVM_1000: &[u8] = include_bytes!("../../../data/xentrace/hvm-1000.trace");
const PVH_100_ALL: &[u8] = include_bytes!("../../../data/xentrace/pvh-100-allkinds.trace");

/// Checks the three xtguest phases: one CPUID resp. one VMMCALL exit per iteration, nothing
/// else but a few timer interrupts, and an empty loop without exits of its own.
fn check_xtguest_phases(t: &Trace, domid: u16, loops: u64) {
    assert_eq!(t.phase_domains(), vec![domid]);
    let phases = t.phases(domid);
    let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["cpuid", "xen_version", "empty"]);
    for p in &phases {
        assert!(p.complete, "{}", p.name);
        assert_eq!(p.iterations, loops);
        assert_eq!(p.lost_records, 0);
        assert!(p.tsc_ticks().unwrap() > 0);
        let other: u64 = p.exit_codes.iter().filter(|(c, _)| **c != 0x60).map(|(_, n)| n).sum();
        let main = match p.name.as_str() {
            "cpuid" => 0x72,
            "xen_version" => SVM_EXIT_VMMCALL,
            _ => 0,
        };
        if main != 0 {
            assert_eq!(p.exits_of(main), loops, "{}", p.name);
            assert_eq!(p.exits_per_op()[&svm_exit_name(main)], 1.0);
            assert_eq!(other, loops, "only INTR besides the main exit: {:?}", p.exits);
            // Timer interrupts: a few per thousand iterations at most.
            assert!(p.total_exits_per_op().unwrap() < 1.05, "{:?}", p.exits);
        } else {
            assert_eq!(other, 0, "{:?}", p.exits);
        }
    }
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    assert_eq!(t.lost_records(), 0);
}

#[test]
fn real_pvh_trace() {
    // Whole run of a type="pvh" xtguest (domid 1), loops=1000; only switch/exit/guest records.
    let t = parse(PVH_1000).unwrap();
    check_xtguest_phases(&t, 1, 1000);
    let d1 = &t.exits_by_domain()[&1];
    // 1000 in the phase + 2 to find the Xen leaves; 1000 + 6 markers + the shutdown call.
    assert_eq!(d1[&0x72], 1002);
    assert_eq!(d1[&SVM_EXIT_VMMCALL], 1007);
    assert!(d1[&0x7b] > 300, "IOIO for the 0xe9 console output");
    assert_eq!(t.exits_by_domain().keys().copied().collect::<Vec<_>>(), vec![1]);
    assert!(t.exits().iter().all(|e| !e.long_mode && !e.nested && e.rip >= 0x40_0000));
}

#[test]
fn real_hvm_trace() {
    // type="hvm" kernel= xtguest (domid 2), loops=1000, cut to start at the first marker.
    let t = parse(HVM_1000).unwrap();
    check_xtguest_phases(&t, 2, 1000);
    assert_eq!(t.exits_by_domain()[&2][&0x72], 1000);
}

#[test]
fn real_trace_with_all_record_kinds() {
    // Full xentrace mask (HVM handlers, credit2, runstate records...), loops=100.
    let t = parse(PVH_100_ALL).unwrap();
    check_xtguest_phases(&t, 1, 100);
    let kinds: std::collections::BTreeSet<u32> = t.records().iter().map(|r| r.event).collect();
    assert!(kinds.contains(&TRC_HVM_VMENTRY) && kinds.contains(&0x8200e), "{kinds:x?}");
    assert!(kinds.len() > 15, "{kinds:x?}");
    // TRC_HVM_CPUID (0x8200e) records the leaf: all phase CPUIDs ask for leaf 0.
    let leaf0 = t.records().iter().filter(|r| r.event == 0x8200e && r.extra()[0] == 0).count();
    assert_eq!(leaf0, 100);
    let (partial, err) = parse_lenient(&PVH_100_ALL[..PVH_100_ALL.len() / 2]);
    assert!(matches!(err, Some(TraceError::Truncated { .. })));
    assert!(!partial.records().is_empty());
}

const PVH_IRQ_X2APIC: &[u8] = include_bytes!("../../../data/xentrace/pvh-irq500-x2apic.trace");
const HVM_IRQ_X2APIC: &[u8] = include_bytes!("../../../data/xentrace/hvm-irq500-x2apic.trace");
const PVH_IRQ_XAPIC: &[u8] = include_bytes!("../../../data/xentrace/pvh-irq500-xapic.trace");

/// The hykernel's `interrupt` phase (cut to 500 self-IPIs): each op is one self-IPI send
/// and one EOI, each an exit; nothing else but a few host interrupts.
fn check_interrupt_phase(t: &Trace, domid: u16) -> &Phase {
    assert_eq!(t.phase_domains(), vec![domid]);
    let phases = t.phases(domid);
    assert_eq!(phases.len(), 1);
    let p = phases[0];
    assert_eq!(p.name, "interrupt");
    assert!(p.complete);
    assert_eq!(p.iterations, 500);
    assert_eq!(p.lost_records, 0);
    assert_eq!(p.eoi_exits(), 500);
    assert_eq!(p.eoi_exits_per_op(), Some(1.0));
    let other: u64 =
        p.exit_codes.iter().filter(|(c, _)| **c != 0x7c && **c != 0x400 && **c != 0x60).map(|(_, n)| n).sum();
    assert_eq!(other, 0, "{:?}", p.exits);
    assert!(p.exits_of(0x60) < 25, "{:?}", p.exits);
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    p
}

fn check_x2apic_interrupt_phase(t: &Trace, domid: u16) {
    let p = check_interrupt_phase(t, domid);
    // SELF_IPI (0x83f) + EOI (0x80b) MSR writes, one MSR exit each.
    assert_eq!(p.msr_writes, BTreeMap::from([(0x80b, 500), (0x83f, 500)]));
    assert_eq!(p.total_msr_writes() as f64 / p.iterations as f64, 2.0);
    assert_eq!(p.msr_writes_per_op()[&X2APIC_EOI_MSR], 1.0);
    assert_eq!(p.exits_of(0x7c), 1000);
    assert!(p.mmio_writes.is_empty() && p.npf_gpas.is_empty());
    assert_eq!(t.eoi_exits_by_domain()[&domid], 500);
    // Every MSR write follows an MSR exit of the same domain.
    assert!(t.details().iter().all(|d| d.exit_code == Some(0x7c) && d.domain == domid));
}

#[test]
fn real_pvh_interrupt_phase_x2apic() {
    // type="pvh" hykernel (domid 1), bench=interrupt, x2APIC, full trace mask.
    check_x2apic_interrupt_phase(&parse(PVH_IRQ_X2APIC).unwrap(), 1);
}

#[test]
fn real_hvm_interrupt_phase_x2apic() {
    // type="hvm" hykernel (domid 2), bench=interrupt, x2APIC, full trace mask.
    check_x2apic_interrupt_phase(&parse(HVM_IRQ_X2APIC).unwrap(), 2);
}

#[test]
fn real_pvh_interrupt_phase_xapic() {
    // type="pvh" hykernel (domid 3), bench=interrupt apic=xapic: the APIC page is emulated
    // MMIO, so each op is 3 NPF exits: ICR high, ICR low (sends the IPI), EOI.
    let t = parse(PVH_IRQ_XAPIC).unwrap();
    let p = check_interrupt_phase(&t, 3);
    let apic = |off: u64| 0xfee0_0000 + off;
    let each = BTreeMap::from([(apic(0xb0), 500), (apic(0x300), 500), (apic(0x310), 500)]);
    assert_eq!(p.mmio_writes, each);
    assert_eq!(p.npf_gpas, each);
    assert_eq!(p.exits_of(0x400), 1500);
    assert!(p.msr_writes.is_empty());
    assert_eq!(t.mmio_writes_by_domain()[&3][&XAPIC_EOI_GPA], 500);
    // Self-IPI vector 0x31 (ICR low = fixed, self shorthand), EOI writes 0.
    assert!(t.details().iter().any(|d| d.detail == ExitDetail::MmioWrite { addr: apic(0x300), data: Some(0x40031) }));
    assert!(t.details().iter().all(|d| d.exit_code == Some(0x400)));
}
