//! The view over small fixtures: the Xen run whose host froze in its last boot
//! ([`fixture::replay`]; its `hy-hvm` given a real `interrupt` trace,
//! `tests/data/xentrace/hvm-irq500-x2apic.*`) and a few KVM runs whose L1 trace is written
//! here, event by event, so that every exit count is known.

use super::render::{json, notes, reasons, totals};
use super::*;
use crate::fixture;
use crate::xen::XenEnd;
use harness::kvm::KvmGuest;
use harness::kvmtrace::phases;
use harness::netbench::NetPlan;
use harness::xentrace;
use proto::cmdline;
use xen_iface::trace::{cpuid_marker_leaf, PhaseEdge};

/// One phase of a KVM trace: its name, its iterations, the exits of each operation (`msr
/// 83f`: an MSR exit writing 0x83f; else the reason alone) and whether KVM completed a PV
/// EOI in each.
struct Spec<'s>(&'s str, u64, &'s [&'s str], bool);

/// L1's trace text of `specs`, as `kvm:*` tracepoints print it.
fn kvm_trace(specs: &[Spec<'_>]) -> String {
    let mut out = String::new();
    let mut t = 10.0;
    let mut line = |event: String| {
        t += 0.000_01;
        out.push_str(&format!(" qemu-system-x86-152     [000] .....    {t:.6}: {event}\n"));
    };
    let exit = |reason: &str| {
        format!("kvm_exit: vcpu 0 reason {reason} rip 0x43332c info1 0x0 info2 0x0 intr_info 0x00000000 error_code 0x0")
    };
    let marker = |edge, name, n: u64| {
        let leaf = cpuid_marker_leaf(edge, name).unwrap();
        format!("kvm_cpuid: func {leaf:x} idx {n:x} rax 0 rbx 0 rcx 0 rdx 0, cpuid entry not found")
    };
    for Spec(name, n, exits, pv_eoi) in specs {
        line(exit("cpuid"));
        line(marker(PhaseEdge::Begin, name, 0));
        for _ in 0..*n {
            for e in *exits {
                match e.strip_prefix("msr ") {
                    Some(msr) => {
                        line(exit("msr"));
                        line(format!("kvm_msr: msr_write {msr} = 0x1"));
                    }
                    None => line(exit(e)),
                }
            }
            if *pv_eoi {
                line("kvm_pv_eoi: apicid 0 vector 48".into());
            }
        }
        line(exit("cpuid"));
        line(marker(PhaseEdge::End, name, *n));
    }
    out
}

/// A KVM guest of ours that ran `benches` (name, value) in `mode`, printed `skips` and
/// left the trace of `specs`.
fn kvm_local(mode: &str, eoi: &str, benches: &[(&str, f64)], skips: &[&str], specs: &[Spec<'_>]) -> KvmRun {
    let opts = cmdline::parse(&format!("mode={mode}")).unwrap();
    let mut lines = vec![format!(
        "MODE hypervisor=kvm mode={mode} irq=x2apic eoi={eoi} clock=tsc timer=tsc-deadline nic=none msi=lapic"
    )];
    for (name, value) in benches {
        lines
            .push(format!(r#"BENCH {{"name":"{name}","mode":"{mode}","unit":"ns","value":{value},"iterations":100}}"#));
    }
    lines.extend(skips.iter().map(|s| format!("SKIP {s}")));
    lines.push("DONE".into());
    KvmRun {
        guest: KvmGuest::kernel(mode, opts, opts.bench),
        exit: Some(1),
        console: BootSummary::from_lines(&lines),
        trace: phases(&kvm_trace(specs)),
        net: None,
        boot: 1,
        frozen: vec![],
    }
}

/// The KVM host's runs: hvm and hybrid with their local benchmarks, and one network round
/// of hvm whose drive is the Xen fixture's `hy-hvm-net-r1`'s.
fn kvm_runs(xen: &XenEnd) -> Vec<KvmRun> {
    let skips = ["evtchn_rr reason=no-event-channels (mode hvm)", "null_hypercall reason=not-xen"];
    let hvm = kvm_local(
        "hvm",
        "x2apic-msr",
        &[("cpuid", 3000.0), ("interrupt", 9000.0), ("clock_read", 40.0)],
        &skips,
        &[
            Spec("cpuid", 100, &["cpuid"], false),
            Spec("interrupt", 100, &["msr 83f", "msr 80b"], false),
            Spec("clock_read", 100, &[], false),
        ],
    );
    let hybrid = kvm_local(
        "hybrid",
        "pv",
        &[("cpuid", 3100.0), ("interrupt", 6000.0), ("clock_read", 45.0)],
        &skips,
        &[
            Spec("cpuid", 100, &["cpuid"], false),
            Spec("interrupt", 100, &["msr 83f"], true),
            Spec("clock_read", 100, &[], false),
        ],
    );
    let drive = xen.runs.iter().find(|g| g.name() == "hy-hvm-net-r1").and_then(|g| g.last()?.net.clone());
    let opts = cmdline::parse("mode=hvm").unwrap();
    let net = KvmRun {
        guest: KvmGuest::kernel_net("hvm", opts, 2, 1, NetPlan::default()),
        exit: Some(1),
        console: BootSummary::from_lines(&["NET ready", "DONE"]),
        trace: phases(&kvm_trace(&[Spec("udp_rr", 50, &["msr 83f", "msr 80b"], false)])),
        net: drive,
        boot: 1,
        frozen: vec![],
    };
    vec![hvm, hybrid, net]
}

/// The Xen fixture, its `hy-hvm` with a real `interrupt` phase and a SKIP line, its
/// `hy-hybrid` with an `evtchn_rr` result (untraced in the fixture).
fn xen_end(scratch: &str) -> XenEnd {
    let work = fixture::scratch(scratch);
    let (mut runs, incomplete) = fixture::replay(&work.0, None).into_parts();
    let hvm = runs.iter_mut().find(|g| g.name() == "hy-hvm").unwrap();
    hvm.trace = Some(xentrace::parse(include_bytes!("../../../../data/xentrace/hvm-irq500-x2apic.trace")).unwrap());
    hvm.result.attempts.last_mut().unwrap().domid = Some(2);
    hvm.summary = BootSummary::from_lines(&[
        "MODE hypervisor=xen-4.17 mode=hvm irq=x2apic eoi=x2apic-msr clock=tsc timer=lapic-oneshot nic=none msi=lapic",
        r#"BENCH {"name":"interrupt","mode":"hvm","unit":"ns","value":244173.347,"iterations":20000}"#,
        "SKIP evtchn_rr reason=no-event-channels (mode hvm)",
        "DONE",
    ]);
    let hybrid = runs.iter_mut().find(|g| g.name() == "hy-hybrid").unwrap();
    hybrid.summary.benches.push(
        harness::console::BenchLine::parse(
            r#"BENCH {"name":"evtchn_rr","mode":"hybrid","unit":"ns","value":150000.0,"iterations":100}"#,
        )
        .unwrap()
        .unwrap(),
    );
    XenEnd { runs, incomplete }
}

fn row<'r>(rows: &'r [Row], name: &str) -> &'r Row {
    rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
}

fn per_op(c: &Cell) -> Option<f64> {
    match c {
        Cell::Have { cost: Ok(c), .. } => Some(c.per_op),
        _ => None,
    }
}

fn absent(c: &Cell) -> &str {
    match c {
        Cell::Absent(why) => why,
        other => panic!("not absent: {other:?}"),
    }
}

const MODES: [&str; 2] = ["hvm", "hybrid"];

#[test]
fn columns_go_xen_then_kvm_each_cell_a_value_and_its_total_or_why_not() {
    let xen = Ok(xen_end("side-columns"));
    let kvm = Ok(kvm_runs(xen.as_ref().unwrap()));
    let mut cols = columns::xen(&MODES, &xen);
    cols.extend(columns::kvm(&MODES, &kvm));
    let titles: Vec<String> = cols.iter().map(Column::title).collect();
    assert_eq!(titles, ["Xen hvm (INCOMPLETE)", "Xen hybrid (INCOMPLETE)", "KVM hvm", "KVM hybrid"]);
    let rows = rows(&cols);
    assert!(rows.iter().all(|r| r.cells.len() == 4));

    // The interrupt: hvm's self-IPI and EOI on both hosts, hybrid's PV EOI on KVM.
    let irq = row(&rows, "interrupt");
    let xen_hvm = per_op(&irq.cells[0]).unwrap();
    assert!((2.0..2.1).contains(&xen_hvm), "{irq:?}");
    assert_eq!((per_op(&irq.cells[2]), per_op(&irq.cells[3])), (Some(2.0), Some(1.0)));
    assert_eq!(absent(&irq.cells[1]), "not printed by this guest");
    // Cells a host lacks say why: the host's nature first, then the kernel's SKIP.
    let ev = row(&rows, "evtchn_rr");
    assert_eq!(absent(&ev.cells[0]), "skipped: no-event-channels (mode hvm)");
    assert!(matches!(&ev.cells[1], Cell::Have { value, cost: Err(why) } if *value == 150000.0 && why == "NO TRACE"));
    assert_eq!((absent(&ev.cells[2]), absent(&ev.cells[3])), ("no event channels on KVM", "no event channels on KVM"));
    assert_eq!(per_op(&row(&rows, "clock_read").cells[3]), Some(0.0), "kvmclock reads take no exit");

    // The network: Xen's rounds (untraced), KVM hvm's traced, KVM hybrid never planned.
    let udp = rows.iter().find(|r| r.section == Section::Network && r.name == "udp_rr").unwrap();
    assert!(matches!(&udp.cells[0], Cell::Have { cost: Err(why), .. } if why == "no exit counts in its 5 round(s)"));
    assert_eq!(per_op(&udp.cells[2]), Some(2.0));
    assert_eq!(absent(&udp.cells[3]), "not in this host's plan");
    // The load experiment: Xen hybrid's guest never ended.
    let load = row(&rows, "load 12000/s");
    assert!(matches!(load.cells[0], Cell::Have { .. }), "{load:?}");
    assert!(absent(&load.cells[1]).starts_with("missing: not run: the host froze while hy-hybrid-pirq-load ran"));

    // Totals lead: each split starts with the total the first table shows.
    for cell in rows.iter().flat_map(|r| &r.cells) {
        if let Cell::Have { cost: Ok(c), .. } = cell {
            assert!(c.split.starts_with(&rate(c.per_op)), "{c:?}");
        }
    }
    let first = totals(&cols, &rows);
    let cells = |name: &str| -> Vec<String> {
        let line = first.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap();
        line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect()
    };
    assert_eq!(
        cells("interrupt"),
        ["interrupt", "ns", "244173.3", "2.01", "not printed by this guest", "n/a", "9000.0", "2.00", "6000.0", "1.00"]
    );
    assert_eq!(cells("evtchn_rr")[6..], ["no event channels on KVM", "n/a", "no event channels on KVM", "n/a"]);
    let second = reasons(&cols, &rows);
    let line = second.lines().find(|l| l.starts_with("interrupt ")).unwrap();
    assert!(line.contains("2.00 = MSR 2.00 [wrmsr 0x80b (EOI) 1.00, wrmsr 0x83f (self-IPI) 1.00]"), "{second}");
    assert!(line.contains("1.00 = MSR 1.00 [wrmsr 0x83f (self-IPI) 1.00]; pv-eoi 1.00/op"), "{second}");
    let notes = notes(&cols);
    assert_eq!(notes.matches("Xen: THE RUN IS INCOMPLETE").count(), 1, "{notes}");
    assert!(notes.contains("KVM hybrid: hypervisor=kvm mode=hybrid"), "{notes}");

    // The JSON: the same columns and rows.
    let doc = json(&cols, &rows);
    let cols_json = doc["columns"].as_array().unwrap();
    let hosts: Vec<(&str, &str, &str)> = cols_json
        .iter()
        .map(|c| (c["host"].as_str().unwrap(), c["mode"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("xen", "hvm", "incomplete"),
            ("xen", "hybrid", "incomplete"),
            ("kvm", "hvm", "ran"),
            ("kvm", "hybrid", "ran")
        ]
    );
    assert_eq!(doc["complete"], false);
    let rows_json = doc["rows"].as_array().unwrap();
    assert_eq!(rows_json.len(), rows.len());
    let irq = rows_json.iter().find(|r| r["name"] == "interrupt").unwrap();
    assert_eq!((&irq["section"], &irq["unit"]), (&serde_json::json!("local"), &serde_json::json!("ns")));
    assert_eq!(irq["cells"][3]["exits_per_op"]["total"], 1.0);
    assert_eq!(irq["cells"][3]["exits_per_op"]["unit"], "exits");
    assert_eq!(irq["cells"][3]["exits_per_op"]["by_reason"]["reasons"][0]["name"], "MSR");
    assert_eq!(irq["cells"][1]["absent"], "not printed by this guest");
    let ev = rows_json.iter().find(|r| r["name"] == "evtchn_rr").unwrap();
    assert_eq!(
        (&ev["cells"][1]["no_exits"], &ev["cells"][2]["absent"]),
        (&"NO TRACE".into(), &"no event channels on KVM".into())
    );
}

#[test]
fn a_failed_host_keeps_the_other_s_columns_and_marks_its_own() {
    let xen = Ok(xen_end("side-failed"));
    const FAILURE: &str = "the KVM host run failed (exit status: 1)";
    let kvm: Result<Vec<KvmRun>, String> = Err(FAILURE.into());
    let mut cols = columns::xen(&MODES, &xen);
    cols.extend(columns::kvm(&MODES, &kvm));
    assert_eq!(cols[3].title(), "KVM hybrid (FAILED)");
    let rows = rows(&cols);
    let irq = row(&rows, "interrupt");
    assert!(per_op(&irq.cells[0]).is_some(), "Xen's columns stay");
    assert_eq!(absent(&irq.cells[2]), "KVM host run failed (see below)");
    assert!(rows.iter().any(|r| r.section == Section::Network), "Xen's network rows stay");
    assert!(notes(&cols).contains(&format!("KVM: THE HOST RUN FAILED: {FAILURE}")));
    let doc = json(&cols, &rows);
    assert_eq!((&doc["columns"][2]["status"], &doc["columns"][2]["why"]), (&"failed".into(), &FAILURE.into()));
}
