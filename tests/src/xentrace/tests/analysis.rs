//! Attribution, phases, exit details, markers, lost records and warnings, on synthetic traces.

use super::*;

#[test]
fn counts_exits_per_domain_and_phase() {
    let t = parse(&simple_trace()).unwrap();
    let by_dom = t.exits_by_domain();
    assert_eq!(by_dom.len(), 1);
    let d3 = &by_dom[&3];
    assert_eq!(d3[&0x72], 3);
    assert_eq!(d3[&0x7b], 1);
    assert_eq!(d3[&SVM_EXIT_VMMCALL], 2);
    assert_eq!(d3[&0x60], 2);
    assert_eq!(t.exit_totals()[&3], 8);

    let phases = t.phases(3);
    assert_eq!(phases.len(), 1);
    let p = phases[0];
    assert_eq!(p.name, "cpuid");
    assert_eq!(p.iterations, 3);
    assert!(p.complete);
    // 3 CPUIDs and 1 interrupt; neither marker's own VMMCALL counts.
    assert_eq!(p.exits_of(0x72), 3);
    assert_eq!(p.exits_of(0x60), 1);
    assert_eq!(p.exits_of(SVM_EXIT_VMMCALL), 0);
    assert!(!p.exits.contains_key("VMMCALL"));
    assert_eq!(p.total_exits, 4);
    assert_eq!(p.exits_per_op()["CPUID"], 1.0);
    assert!((p.total_exits_per_op().unwrap() - 4.0 / 3.0).abs() < 1e-12);
    assert_eq!(p.tsc_ticks(), Some(81 - 31));
    assert!(t.phases(0).is_empty());
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    assert!(t.summary().contains("phase \"cpuid\" domain 3 iterations 3"));
}

#[test]
fn exits_before_the_first_switch_belong_to_its_prev_domain() {
    let bytes = Builder::default().window(1, &[exit(5, 0x78), switch(10, (7, 1), (0, 0)), exit(20, 0x72)]).bytes;
    let t = parse(&bytes).unwrap();
    assert_eq!(t.exits()[0].domain, 7);
    assert_eq!(t.exits()[0].vcpu, 1);
    assert_eq!(t.exits()[1].domain, 0);
}

#[test]
fn unattributed_exits_and_markers_use_domid_unknown() {
    let mut recs = vec![marker(Some(1), GUEST_PHASE_BEGIN, 1, "x"), exit(2, 0x72)];
    recs.push(marker(Some(3), GUEST_PHASE_END, 1, "x"));
    let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
    assert_eq!(t.exits()[0].domain, DOMID_UNKNOWN);
    assert_eq!(t.phases(DOMID_UNKNOWN)[0].exits_of(0x72), 1);
    assert!(!t.warnings().is_empty());
}

#[test]
fn vcpu_migrating_between_pcpus_is_merged_by_tsc() {
    // Dom 5 begins a phase on pCPU 0, moves to pCPU 1, ends there. xentrace wrote pCPU 1's
    // window first, so file order alone would see the END before the BEGIN.
    let cpu0 = [
        switch(10, (0, 0), (5, 0)),
        exit(20, SVM_EXIT_VMMCALL),
        marker(Some(21), GUEST_PHASE_BEGIN, 2, "mig"),
        exit(30, 0x72),
        switch(40, (5, 0), (DOMID_IDLE as u32, 0)),
        exit(45, 0x72), // idle vCPUs don't exit; pretend it's unknown noise
    ];
    let cpu1 = [
        switch(50, (DOMID_IDLE as u32, 1), (5, 0)),
        exit(60, 0x72),
        exit(70, SVM_EXIT_VMMCALL),
        marker(None, GUEST_PHASE_END, 2, "mig"), // no TSC: takes 70
    ];
    let bytes = Builder::default().window(1, &cpu1).window(0, &cpu0).bytes;
    let t = parse(&bytes).unwrap();
    assert_eq!(t.cpus(), &[0, 1]);
    let p = t.phases(5)[0];
    assert!(p.complete);
    assert_eq!(p.exits_of(0x72), 2);
    assert_eq!(p.total_exits, 2);
    assert_eq!(t.exits_by_domain()[&DOMID_IDLE][&0x72], 1);
    let tscs: Vec<u64> = t.exits().iter().map(|e| e.tsc.unwrap()).collect();
    assert!(tscs.windows(2).all(|w| w[0] <= w[1]), "{tscs:?}");
}

#[test]
fn decodes_64bit_and_nested_exits() {
    let recs = [
        switch(1, (0, 0), (2, 0)),
        rec(TRC_HVM_VMEXIT64, Some(2), &[0x400, 0x8100_0000, 0xffff_ffff]),
        rec(TRC_HVM_VMEXIT | TRC_HVM_NESTEDFLAG, Some(3), &[0x7c, 0x1234]),
        rec(TRC_HVM_VMENTRY, Some(4), &[]),
    ];
    let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
    assert_eq!(t.exits().len(), 2);
    let e = t.exits()[0];
    assert!(e.long_mode && !e.nested);
    assert_eq!(e.rip, 0xffff_ffff_8100_0000);
    assert_eq!(e.code, 0x400);
    assert!(t.exits()[1].nested);
    assert_eq!(t.exits()[1].rip, 0x1234);
}

#[test]
fn exit_details_are_decoded_and_counted_per_phase() {
    let mut recs = vec![switch(10, (0, 0), (3, 0))];
    // Before the phase: an EOI that must not count for it.
    recs.extend([exit(15, 0x7c), msr_write(X2APIC_EOI_MSR, 0)]);
    recs.extend(hypercall_marker(20, GUEST_PHASE_BEGIN, 2, "irq"));
    for k in 0..2u64 {
        let t = 30 + 10 * k;
        recs.extend([exit(t, 0x7c), msr_write(0x83f, 0x31), entry(t + 1)]);
        recs.extend([exit(t + 2, 0x7c), msr_write(X2APIC_EOI_MSR, 0), entry(t + 3)]);
    }
    // An xAPIC EOI: NPF exit, the emulated write, then the NPF record.
    recs.extend([exit(60, 0x400), rec(TRC_HVM_IOMEM_WRITE, None, &[0xfee0_00b0, 0]), npf(XAPIC_EOI_GPA)]);
    // A 64-bit MMIO write, a string write without data, a read, an MSR read.
    recs.extend([
        exit(62, 0x400),
        rec(TRC_HVM_IOMEM_WRITE | TRC_64_FLAG, None, &[0x10, 0x1, 7]),
        rec(TRC_HVM_IOMEM_WRITE, None, &[0xfee0_0300]),
        rec(TRC_HVM_IOMEM_READ, None, &[0xfee0_0020, 5]),
        exit(64, 0x7c),
        rec(TRC_HVM_MSR_READ, None, &[0x1b, 0xfee0_0900, 0]),
    ]);
    // Records too short to say anything are not details.
    recs.extend([
        exit(66, 0x7c),
        rec(TRC_HVM_MSR_WRITE, None, &[]),
        rec(TRC_HVM_NPF, None, &[0xfee0_00b0]),
        rec(TRC_HVM_IOMEM_WRITE | TRC_64_FLAG, None, &[0xfee0_00b0]),
    ]);
    recs.extend(hypercall_marker(70, GUEST_PHASE_END, 2, "irq"));
    recs.extend([exit(80, 0x7c), msr_write(X2APIC_EOI_MSR, 0)]);
    // pCPU 1: a detail with no exit before it, then one after a switch.
    let cpu1 = [
        switch(5, (DOMID_IDLE as u32, 1), (3, 1)),
        msr_write(0x80b, 0),
        exit(50, 0x7c),
        switch(51, (3, 1), (4, 0)),
        msr_write(0x80b, 0),
    ];
    let bytes = Builder::default().window(0, &recs).window(1, &cpu1).bytes;
    let t = parse(&bytes).unwrap();
    let p = t.phases(3)[0];
    assert!(p.complete);
    assert_eq!(p.msr_writes, BTreeMap::from([(0x80b, 2), (0x83f, 2)]));
    assert_eq!(p.msr_writes_of(0x83f), 2);
    assert_eq!(p.total_msr_writes(), 4);
    assert_eq!(p.msr_writes_per_op()[&0x80b], 1.0);
    assert_eq!(p.mmio_writes, BTreeMap::from([(XAPIC_EOI_GPA, 1), (0xfee0_0300, 1), (0x1_0000_0010, 1)]));
    assert_eq!(p.npf_gpas, BTreeMap::from([(XAPIC_EOI_GPA, 1)]));
    assert_eq!(p.eoi_exits(), 3);
    assert_eq!(p.eoi_exits_per_op(), Some(1.5));
    assert_eq!(p.exits_of(0x7c), 7, "pCPU 1 runs vCPU 1 of the same domain");
    assert_eq!(p.exits_of(0x400), 2);
    // The whole trace: dom 3 has 2 more EOIs outside the phase (pCPU 0) plus 1 on pCPU 1;
    // the detail after pCPU 1's switch belongs to dom 4, with no exit of its own.
    assert_eq!(t.eoi_exits_by_domain(), BTreeMap::from([(3, 6), (4, 1)]));
    assert_eq!(t.msr_writes_by_domain()[&3][&0x80b], 5);
    assert_eq!(t.mmio_writes_by_domain()[&3][&XAPIC_EOI_GPA], 1);
    let d = t.details();
    assert_eq!(d.len(), 14);
    let first_cpu1 = d.iter().find(|d| d.cpu == 1).unwrap();
    assert_eq!((first_cpu1.domain, first_cpu1.vcpu), (3, 1));
    assert_eq!(first_cpu1.exit_code, None);
    let last = d.iter().rev().find(|d| d.cpu == 1).unwrap();
    assert_eq!((last.domain, last.exit_code), (4, None));
    // Ordered by (effective) TSC: pCPU 1's first detail (TSC 5) comes first.
    assert_eq!((d[0].cpu, d[0].tsc), (1, Some(5)));
    assert_eq!((d[1].cpu, d[1].tsc, d[1].exit_code), (0, Some(15), Some(0x7c)));
    assert!(d.iter().any(|d| d.detail == ExitDetail::MmioWrite { addr: 0xfee0_0300, data: None }));
    assert!(d.iter().any(|d| d.detail == ExitDetail::MsrRead { msr: 0x1b, value: 0xfee0_0900 }));
    assert!(d.iter().any(|d| d.detail == ExitDetail::MmioRead { addr: 0xfee0_0020, data: Some(5) }));
    let s = t.summary();
    assert!(s.contains("EOI exits"), "{s}");
    assert!(s.contains("wrmsr 0x80b"), "{s}");
}

#[test]
fn cpuid_markers_open_and_close_phases() {
    let cpuid_mark =
        |t: u64, leaf: u32, sub: u32| vec![exit(t, 0x72), rec(TRC_HVM_CPUID, None, &[leaf, sub, 0, 0, 0, 0])];
    let mut recs = vec![switch(1, (0, 0), (5, 0))];
    recs.extend(cpuid_mark(10, CPUID_MARK_BEGIN + 2, 0));
    recs.extend([exit(20, 0x81), exit(30, 0x78), exit(40, 0x81)]);
    recs.extend(cpuid_mark(50, CPUID_MARK_END + 2, 4));
    recs.extend(cpuid_mark(60, 0x4000_0000, 0)); // an ordinary CPUID is no marker
    let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
    let ph = t.phases(5);
    assert_eq!(ph.len(), 1);
    let p = ph[0];
    assert_eq!((p.name.as_str(), p.iterations, p.complete), ("tcp_stream", 4, true));
    // Two hypercalls and a HLT; neither marker's own CPUID exit.
    assert_eq!(p.total_exits, 3);
    assert_eq!(p.exits_of(0x72), 0);
    assert_eq!(p.total_exits_per_op(), Some(0.75));
}

#[test]
fn lost_records_and_unterminated_phases_are_flagged() {
    let recs = [
        switch(1, (0, 0), (4, 0)),
        marker(Some(2), GUEST_PHASE_BEGIN, 10, "a"),
        rec(TRC_LOST_RECORDS, Some(3), &[17, 0, 0, 0]),
        exit(4, 0x72),
        marker(Some(5), GUEST_PHASE_BEGIN, 10, "b"),
        marker(Some(6), GUEST_PHASE_END, 0, "zzz"),
        marker(Some(7), GUEST_PHASE_END, 0, "c"),
        marker(Some(8), GUEST_PHASE_BEGIN, 1, "d"),
    ];
    let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
    assert_eq!(t.lost_records(), 17);
    let ph = t.phases(4);
    assert_eq!(ph.len(), 3);
    assert_eq!((ph[0].name.as_str(), ph[0].complete, ph[0].lost_records), ("a", false, 17));
    assert_eq!(ph[0].exits_of(0x72), 1);
    assert_eq!((ph[1].name.as_str(), ph[1].complete, ph[1].iterations), ("b", true, 10));
    assert!(!ph[2].complete);
    // new BEGIN before END, name mismatch, stray END, missing END at the end of the trace, and
    // (since lost records are warned about too) the 17 lost records
    assert_eq!(t.warnings().len(), 5, "{:?}", t.warnings());
}

#[test]
fn long_and_odd_phase_names_are_sanitised() {
    let mut m = marker(Some(1), GUEST_PHASE_BEGIN, 1, "abcdefghijklmnopqrst");
    let last = m.len() - 1;
    m[last - 3] = 0xff; // name byte 16 ('q')
    let t = parse(&Builder::default().window(0, &[switch(0, (0, 0), (1, 0)), m]).bytes).unwrap();
    assert_eq!(t.phases(1)[0].name, "abcdefghijklmnop?rst");
    // A marker with fewer extra words still parses.
    let short = rec(TRC_GUEST | GUEST_PHASE_BEGIN, Some(1), &[5]);
    let t = parse(&Builder::default().window(0, &[short]).bytes).unwrap();
    assert_eq!((t.all_phases()[0].iterations, t.all_phases()[0].name.as_str()), (5, ""));
}

/// A `TRC_LOST_RECORDS` report as Xen 4.17 writes it: its own TSC `at`, `count` records lost
/// since `first_tsc`, written while d5v1 ran.
fn lost(at: Option<u64>, count: u32, first_tsc: u64) -> Vec<u8> {
    rec(TRC_LOST_RECORDS, at, &[count, 0x0001_0005, first_tsc as u32, (first_tsc >> 32) as u32])
}

/// Dom 3 runs phase "p" on pCPU 0 (BEGIN at TSC 21, END at 61); pCPU 1 reports `loss`.
fn phase_and_loss(loss: &[Vec<u8>]) -> Trace {
    let mut cpu0 = vec![switch(10, (0, 0), (3, 0))];
    cpu0.extend(hypercall_marker(20, GUEST_PHASE_BEGIN, 1, "p"));
    cpu0.push(exit(40, 0x72));
    cpu0.extend(hypercall_marker(60, GUEST_PHASE_END, 1, "p"));
    cpu0.push(switch(100, (3, 0), (DOMID_IDLE as u32, 0)));
    let mut cpu1 = vec![switch(5, (DOMID_IDLE as u32, 1), (0, 0))];
    cpu1.extend_from_slice(loss);
    parse(&Builder::default().window(0, &cpu0).window(1, &cpu1).bytes).unwrap()
}

#[test]
fn lost_intervals_mark_the_phases_they_overlap() {
    // (loss, records counted for the phase, phase marked)
    let cases = [
        (vec![lost(Some(50), 3, 30)], 3, true),                 // inside
        (vec![lost(Some(15), 3, 12)], 0, false),                // entirely before
        (vec![lost(Some(90), 3, 70)], 0, false),                // entirely after
        (vec![lost(Some(30), 3, 12)], 3, true),                 // begins before, ends inside
        (vec![lost(Some(80), 3, 50)], 0, true),                 // begins inside, reported after
        (vec![lost(Some(90), 3, 12)], 0, true),                 // spans the whole phase
        (vec![lost(None, 3, 30), exit(70, 0x78)], 0, true),     // no TSC: ends at the next one
        (vec![lost(None, 3, 62)], 0, false),                    // no TSC and none after: to the end
        (vec![rec(TRC_LOST_RECORDS, Some(80), &[3])], 0, true), // too short: may begin any time
    ];
    for (k, (loss, counted, marked)) in cases.iter().enumerate() {
        let t = phase_and_loss(loss);
        let p = t.phases(3)[0];
        assert!(p.complete);
        assert_eq!((p.lost_records, p.lost_overlap, p.overlaps_lost()), (*counted, *marked, *marked), "case {k}");
        assert_eq!(p.exits_of(0x72), 1, "case {k}");
        assert_eq!(t.lost_records(), 3);
        assert_eq!(t.lost_intervals().len(), 1);
        let w: Vec<&String> = t.warnings().iter().filter(|w| w.contains("records lost")).collect();
        assert_eq!(w.len(), 1, "case {k}: {:?}", t.warnings());
        assert_eq!(w[0].contains("overlaps phase \"p\" of domain 3"), *marked, "case {k}: {}", w[0]);
        assert_eq!(t.summary().contains("phase \"p\" domain 3 iterations 1 ("), *marked, "case {k}");
    }
    let l = phase_and_loss(&[lost(Some(50), 3, 30)]).lost_intervals()[0];
    let cpu0_body = 28 + 72 + 20 + 72 + 28; // switch, marker hypercall, exit, marker hypercall, switch
    let offset = 12 + cpu0_body + 12 + 28; // second window, after its switch
    assert_eq!(l, LostInterval { cpu: 1, first_tsc: 30, end_tsc: Some(50), count: 3, domain: 5, vcpu: 1, offset });
    let l = phase_and_loss(&[lost(None, 3, 30), exit(70, 0x78)]).lost_intervals()[0];
    assert_eq!((l.first_tsc, l.end_tsc), (30, Some(70)));
    assert_eq!(phase_and_loss(&[lost(None, 3, 62)]).lost_intervals()[0].end_tsc, None);
    assert!(phase_and_loss(&[]).warnings().is_empty());
}

#[test]
fn an_open_phase_is_marked_by_a_later_loss() {
    let mut recs = vec![switch(10, (0, 0), (3, 0))];
    recs.extend(hypercall_marker(20, GUEST_PHASE_BEGIN, 1, "open"));
    recs.push(lost(Some(500), 1, 400));
    let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
    let p = t.phases(3)[0];
    assert!(!p.complete && p.overlaps_lost() && p.lost_records == 1);
    assert!(t.summary().contains("(no END marker) (1 records lost while open)"), "{}", t.summary());
}

/// Byte offset of record `k` of a trace whose first window holds `recs`.
fn offset_of(recs: &[Vec<u8>], k: usize) -> usize {
    12 + recs[..k].iter().map(Vec::len).sum::<usize>()
}

#[test]
fn malformed_markers_are_warned_about_with_their_place() {
    let recs = vec![
        switch(1, (0, 0), (3, 0)),
        marker(Some(2), GUEST_PHASE_END, 0, "stray"),
        marker(Some(3), GUEST_PHASE_BEGIN, 1, "a"),
        marker(Some(4), GUEST_PHASE_BEGIN, 1, "b"),
        rec(TRC_GUEST | GUEST_PHASE_END, Some(5), &[7]),
        rec(TRC_HVM_CPUID, Some(6), &[CPUID_MARK_END + 1, 9]),
        rec(TRC_HVM_CPUID, Some(7), &[CPUID_MARK_BEGIN, 0]),
    ];
    let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
    let w = t.warnings();
    let has = |parts: &[String]| w.iter().any(|w| parts.iter().all(|p| w.contains(p.as_str())));
    let at = |k: usize| format!("at byte {}", offset_of(&recs, k));
    assert!(has(&["\"stray\" of domain 3".into(), at(1), "without a BEGIN".into()]), "{w:?}");
    assert!(has(&[format!("phase \"a\" of domain 3 (BEGIN {})", at(2)), "before the next BEGIN".into()]), "{w:?}");
    assert!(has(&["4 extra bytes".into(), at(4)]), "{w:?}");
    assert!(has(&["END CPUID phase marker \"tcp_rr\" of domain 3".into(), at(5)]), "{w:?}");
    assert!(has(&[format!("phase \"udp_rr\" of domain 3 (BEGIN {})", at(6)), "the trace ends first".into()]));
    assert_eq!(w.len(), 5, "{w:?}");
    // The short END still closed "b", with its iteration count 7.
    assert_eq!((t.phases(3)[1].name.as_str(), t.phases(3)[1].iterations), ("b", 7));

    // Markers of no known domain: the trace has no switch at all, which is a warning too.
    let recs = vec![exit(1, 0x72), rec(TRC_HVM_CPUID, Some(2), &[CPUID_MARK_BEGIN + 2, 0])];
    let t = parse(&Builder::default().window(4, &recs).bytes).unwrap();
    let w = t.warnings();
    assert!(w.iter().any(|w| w.contains("no known domain") && w.contains(&at_byte(&recs, 1))), "{w:?}");
    assert!(w.iter().any(|w| w.contains("no TRC_SCHED_SWITCH")), "{w:?}");
    assert_eq!(t.phases(DOMID_UNKNOWN)[0].name, "tcp_stream");
}

fn at_byte(recs: &[Vec<u8>], k: usize) -> String {
    format!("at byte {} on pCPU", offset_of(recs, k))
}

#[test]
fn a_trace_without_switches_is_warned_about_once() {
    let t = parse(&Builder::default().window(0, &[exit(1, 0x72), exit(2, 0x7c)]).bytes).unwrap();
    assert_eq!(t.warnings().len(), 1, "{:?}", t.warnings());
    assert!(t.warnings()[0].contains("no TRC_SCHED_SWITCH"));
    // Nothing to attribute, nothing to warn about.
    assert!(parse(&Builder::default().window(0, &[entry(1)]).bytes).unwrap().warnings().is_empty());
    assert!(parse(&[]).unwrap().warnings().is_empty());
    assert!(parse(&simple_trace()).unwrap().warnings().is_empty());
}

/// A PV guest's hypercall record: op in bits 19:0, argument flags above.
fn pv_hypercall(tsc: u64, op: u32) -> Vec<u8> {
    rec(TRC_PV_HYPERCALL_V2, Some(tsc), &[op | 0x0010_0000, 7])
}

#[test]
fn counts_a_pv_guests_hypercalls_per_phase_without_the_markers() {
    // dom 4 (PV): the marker's hvm_op (34), 2 event sends (32) and an iret (23) per op, the
    // closing marker's hvm_op; dom0's hypercall meanwhile on another pCPU is not counted.
    let mut recs =
        vec![switch(10, (0, 0), (4, 0)), pv_hypercall(20, 34), marker(None, GUEST_PHASE_BEGIN, 2, "evtchn_rr")];
    for k in 0..2 {
        recs.push(pv_hypercall(30 + 10 * k, 32));
        recs.push(pv_hypercall(31 + 10 * k, 23));
        recs.push(pv_hypercall(32 + 10 * k, 32));
    }
    recs.push(pv_hypercall(60, 34));
    recs.push(marker(None, GUEST_PHASE_END, 2, "evtchn_rr"));
    recs.push(pv_hypercall(70, 29));
    let other = [switch(11, (0, 0), (0, 0)), pv_hypercall(35, 32)];
    let t = parse(&Builder::default().window(0, &recs).window(1, &other).bytes).unwrap();
    let p = t.phases(4)[0];
    assert!(p.complete);
    assert_eq!(p.hypercalls, BTreeMap::from([(23, 2), (32, 4)]));
    assert_eq!(p.total_hypercalls(), 6);
    assert_eq!(p.hypercalls_per_op(), Some(3.0));
    assert_eq!(p.total_exits, 0);
}
