//! `hytrace trim`: which records a sample keeps, on synthetic traces and on the real samples.

use super::*;

fn opts() -> TrimOptions {
    TrimOptions::default()
}

#[test]
fn default_kinds_keep_what_the_analysis_uses() {
    let idle = DOMID_IDLE as u32;
    let kept = [
        switch(2, (idle, 0), (3, 0)),
        exit(3, 0x7c),
        msr_write(0x80b, 0),
        rec(TRC_LOST_RECORDS, Some(6), &[1, 0, 5, 0]),
        rec(TRC_HVM_IOMEM_WRITE | TRC_64_FLAG, None, &[1, 2, 3]),
        rec(TRC_HVM_IOMEM_READ, None, &[]),
        npf(0xfee0_00b0),
        rec(TRC_HVM_VMEXIT64 | TRC_HVM_NESTEDFLAG, Some(7), &[0x72, 0, 0]),
        exit(10, SVM_EXIT_VMMCALL),
        marker(None, GUEST_PHASE_BEGIN, 1, "x"),
        rec(TRC_GUEST | 0x123, None, &[]),
    ];
    let dropped = [
        switch(1, (0, 0), (idle, 0)), // dom0 <-> idle
        entry(4),
        rec(0x0002_0101, Some(5), &[1]),
        rec(TRC_HVM_MSR_READ | TRC_64_FLAG, None, &[1]),
        rec(TRC_HVM_CPUID, None, &[0, 0, 0, 0, 0, 0]),
    ];
    let mut cpu0: Vec<Vec<u8>> = kept.to_vec();
    for (k, d) in dropped.iter().enumerate() {
        cpu0.insert(2 * k, d.clone());
    }
    let cpu1 = [entry(8), switch(9, (0, 1), (idle, 1))];
    let bytes = Builder::default().window(0, &cpu0).window(1, &cpu1).window(0, &[exit(11, 0x60)]).bytes;
    let out = trim(&bytes, &opts()).unwrap();
    let expected = Builder::default().window(0, &kept).window(0, &[exit(11, 0x60)]).bytes;
    assert_eq!(out.bytes, expected, "pCPU 1's window is left out, pCPU 0's second one stays");
    assert_eq!((out.kept, out.total), (kept.len() + 1, cpu0.len() + 3));
    let all = trim(&bytes, &TrimOptions { all_kinds: true, ..opts() }).unwrap();
    assert_eq!((all.bytes, all.kept), (bytes, all.total));
}

#[test]
fn marker_bounds_keep_the_switches_that_say_who_runs() {
    let cpu0 = [
        switch(1, (0, 0), (3, 0)),
        exit(2, 0x7b),
        switch(3, (3, 0), (4, 0)), // pCPU 0's last switch before the first marker
        exit(9, SVM_EXIT_VMMCALL),
        marker(None, GUEST_PHASE_BEGIN, 1, "m"), // no TSC, as Xen 4.17 writes them: at 9
        exit(11, 0x72),
        exit(19, SVM_EXIT_VMMCALL),
        marker(None, GUEST_PHASE_END, 1, "m"),
        exit(21, 0x60),
    ];
    let cpu1 = [switch(5, (DOMID_IDLE as u32, 1), (4, 1)), exit(6, 0x60), exit(15, 0x72), exit(25, 0x72)];
    let bytes = Builder::default().window(0, &cpu0).window(1, &cpu1).bytes;
    let from = TrimOptions { from_first_marker: true, ..opts() };
    let both = TrimOptions { until_last_marker: true, ..from.clone() };
    let out = trim(&bytes, &both).unwrap();
    let expected = Builder::default().window(0, &[&cpu0[2..8]].concat()).window(1, &[cpu1[0].clone(), cpu1[2].clone()]);
    assert_eq!(out.bytes, expected.bytes);
    let (before, after) = (parse(&bytes).unwrap(), parse(&out.bytes).unwrap());
    assert_eq!(after.phases(4), before.phases(4));
    assert_eq!(after.exits_by_domain()[&4][&0x72], 2);
    assert_eq!(trim(&bytes, &from).unwrap().kept, 10);
    let until = TrimOptions { until_last_marker: true, ..opts() };
    assert_eq!(trim(&bytes, &until).unwrap().kept, cpu0.len() - 1 + 3);
}

/// Dom 3 runs phase "irq" of 4 ops (SELF_IPI write, EOI write) on pCPU 0; pCPU 1 switches.
fn irq_phase() -> Vec<u8> {
    let mut cpu0 = vec![switch(1, (0, 0), (3, 0))];
    cpu0.extend(hypercall_marker(10, GUEST_PHASE_BEGIN, 4, "irq"));
    for k in 0..4 {
        let t = 20 + 10 * k;
        cpu0.extend([exit(t, 0x7c), msr_write(0x83f, k), exit(t + 5, 0x7c), msr_write(X2APIC_EOI_MSR, 0)]);
    }
    cpu0.push(rec(TRC_LOST_RECORDS, Some(60), &[1, 3, 55, 0]));
    cpu0.extend([exit(80, SVM_EXIT_VMMCALL), marker(None, GUEST_PHASE_END, 4, "irq"), entry(81)]);
    let cpu1 = [
        switch(5, (DOMID_IDLE as u32, 1), (0, 1)),
        switch(42, (0, 1), (6, 1)),
        switch(44, (6, 1), (0, 1)), // pCPU 1's last switch inside the cut: kept
        switch(90, (0, 1), (6, 1)),
    ];
    Builder::default().window(0, &cpu0).window(1, &cpu1).bytes
}

fn cut(spec: &str) -> TrimOptions {
    TrimOptions { cut_phase: CutPhase::parse(spec), ..opts() }
}

#[test]
fn cut_phase_keeps_the_first_ops_of_a_phase() {
    let bytes = irq_phase();
    let out = trim(&bytes, &cut("irq:2:0x8200d:0x83f")).unwrap();
    let t = parse(&out.bytes).unwrap();
    let p = t.phases(3)[0];
    assert!(p.complete);
    assert_eq!(p.iterations, 2);
    assert_eq!(p.msr_writes, BTreeMap::from([(0x80b, 2), (0x83f, 2)]));
    assert_eq!((p.exits_of(0x7c), p.total_exits, p.lost_records), (4, 4, 1));
    // Dropped: 2 ops (4 exits, 4 details), pCPU 1's switch at 42 inside the cut, and by kind
    // the two VM entries and pCPU 1's switch from idle to dom0.
    assert_eq!(out.total - out.kept, 12);
    let switches: Vec<u64> = t.records().iter().filter(|r| r.cpu == 1).filter_map(|r| r.tsc).collect();
    assert_eq!(switches, [44, 90]);
    assert!(t.records().iter().all(|r| r.guest_event().is_none() || r.extra()[..2] == [2, 0]));

    let err = |spec: &str, bytes: &[u8]| trim(bytes, &cut(spec)).unwrap_err();
    assert_eq!(err("irq:4:0x8200d:0x83f", &bytes), TrimError::TooFewOps { name: "irq".into(), found: 4, ops: 4 });
    assert_eq!(err("nope:1:0x8200d:0x83f", &bytes), TrimError::NoPhase("nope".into()));
    let begin_only = Builder::default().window(0, &[marker(Some(1), GUEST_PHASE_BEGIN, 1, "b")]).bytes;
    assert_eq!(err("b:0:1:1", &begin_only), TrimError::NoPhase("b".into()));
    let short = [
        rec(TRC_GUEST | GUEST_PHASE_BEGIN, Some(1), &[4]),
        exit(2, 0x72),
        exit(3, SVM_EXIT_VMMCALL),
        marker(None, GUEST_PHASE_END, 4, ""),
    ];
    let short = Builder::default().window(0, &short).bytes;
    assert_eq!(err(":0:0x81002:0x72", &short), TrimError::MarkerWithoutCount { offset: 12 });
    assert!(matches!(err("irq:1:1:1", &bytes[..bytes.len() - 1]), TrimError::Parse(TraceError::Truncated { .. })));
    assert!(err("irq:4:0x8200d:0x83f", &bytes).to_string().contains("only 4 operation starts"));
}

#[test]
fn cut_phase_specs() {
    let c = CutPhase::parse("interrupt:500:0x8200d:0x83f").unwrap();
    assert_eq!(c, CutPhase { name: "interrupt".into(), ops: 500, event: 0x8200d, word0: 0x83f });
    assert_eq!(CutPhase::parse("a:1:2:0XfF").map(|c| c.word0), Some(255));
    for bad in ["a:1:2", "a:1:2:3:4", "a:x:1:1", "a:1:0x1_0000:1", "a:1:0x100000000:1", "a:-1:1:1", ""] {
        assert_eq!(CutPhase::parse(bad), None, "{bad}");
    }
}

#[test]
fn trimming_a_sample_again_changes_nothing() {
    let from = TrimOptions { from_first_marker: true, ..opts() };
    let both = TrimOptions { until_last_marker: true, ..from.clone() };
    let samples: [(&[u8], &TrimOptions); 3] = [
        (include_bytes!("../../../data/xentrace/pvh-1000.trace"), &opts()),
        (include_bytes!("../../../data/xentrace/hvm-1000.trace"), &from),
        (include_bytes!("../../../data/xentrace/pvh-irq500-xapic.trace"), &both),
    ];
    for (bytes, o) in samples {
        let out = trim(bytes, o).unwrap();
        assert_eq!((out.kept, out.bytes.as_slice()), (out.total, bytes));
    }
}

#[test]
fn cutting_a_real_interrupt_phase_shorter() {
    let bytes = include_bytes!("../../../data/xentrace/pvh-irq500-x2apic.trace");
    let out = trim(bytes, &cut("interrupt:100:0x8200d:0x83f")).unwrap();
    let t = parse(&out.bytes).unwrap();
    let p = t.phases(1)[0];
    assert_eq!((p.iterations, p.eoi_exits(), p.exits_of(0x7c)), (100, 100, 200));
    assert_eq!(p.msr_writes, BTreeMap::from([(0x80b, 100), (0x83f, 100)]));
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    let e = trim(bytes, &cut("interrupt:500:0x8200d:0x83f")).unwrap_err();
    assert_eq!(e, TrimError::TooFewOps { name: "interrupt".into(), found: 500, ops: 500 });
}
