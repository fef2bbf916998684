//! Integration tests on the KVM test host: the Xen host's image booted without Xen, whose
//! L1 (Linux 6.1 with `kvm_amd nested=1`) runs the kernel as an L2 KVM guest in hvm mode,
//! in the KVM hybrid mode (kvmclock + PV EOI) and in hybrid with `eoi=lapic`, plus a guest
//! with a switch that does not fit its mode; then hvm, hybrid and the Linux L2 peer serving
//! the network on virtio-net (a tap bridged in L1, driven by the agent there), and the
//! interrupt-load experiment in hvm, hybrid and hybrid `eoi=lapic`; all in one boot (a few
//! minutes).
//!
//! Exits come from L1's trace (`kvm:kvm_exit`, `kvm:kvm_msr`, `kvm:kvm_cpuid`,
//! `kvm:kvm_pv_eoi`), cut into phases at the kernel's CPUID markers; every exit in a phase is
//! its cost. The bounds are two-sided where the mechanism fixes the count, and were taken
//! from real runs (tests/kvm/README.md). Needs root (tests/check.sh runs it).

use harness::kvm::{run_guests, KvmGuest, KvmRun};
use harness::kvmtrace::KvmPhase;
use harness::netbench::{NetPlan, Server};
use harness::paths;
use harness::xen::cost::ExitCost;
use harness::xen::guests::net_plan;
use harness::xentrace::{SVM_EXIT_CPUID as CPUID, SVM_EXIT_IOIO, SVM_EXIT_NPF, X2APIC_EOI_MSR};
use proto::cmdline::{self, BenchSet, Options};
use std::sync::OnceLock;

const BENCH: &str = "bench=cpuid,clock,interrupt,timer,mmu";
/// Rates of the load experiment here: the lowest and the slides' (the host sustains both).
const LOAD_RATES: [u32; 2] = [1000, 12_000];
/// Bytes of each bulk transfer, into the guest and out of it.
const STREAM: u64 = 2 << 20;

struct KvmHost {
    hvm: KvmRun,
    hybrid: KvmRun,
    lapic_eoi: KvmRun,
    misfit: KvmRun,
    net_hvm: KvmRun,
    net_hybrid: KvmRun,
    net_linux: KvmRun,
    load_hvm: KvmRun,
    load_hybrid: KvmRun,
    load_lapic_eoi: KvmRun,
}

fn guest(label: &str, line: &str) -> KvmGuest {
    let opts: Options = cmdline::parse(&format!("{line} {BENCH}")).expect("a valid command line");
    KvmGuest::kernel(label, opts, opts.bench)
}

fn run() -> &'static KvmHost {
    static RUN: OnceLock<Result<KvmHost, String>> = OnceLock::new();
    let r = RUN.get_or_init(|| {
        let mut misfit = guest("misfit", "mode=hvm eoi=pv");
        misfit.opts.bench = BenchSet::NONE.with("cpuid", true);
        misfit.timeout_s = 90;
        let opts = |line: &str| cmdline::parse(line).expect("a valid command line");
        let net = |label, line, host| KvmGuest::kernel_net(label, opts(line), host, 1, net_plan(Server::Hykernel, 200, STREAM, 0));
        let load = |label: &str, line| {
            let plan = NetPlan { load_rates: LOAD_RATES.to_vec(), load_seconds: 3, ..NetPlan::default() };
            let mut g = KvmGuest::kernel_net(label, opts(line), 30, 0, plan);
            g.name = format!("hy-kvm-{label}-load");
            g
        };
        let guests = [
            guest("hvm", "mode=hvm"),
            guest("hybrid", "mode=auto"),
            guest("hybrid-lapic-eoi", "mode=hybrid clock=kvmclock eoi=lapic"),
            misfit,
            net("hvm", "mode=hvm", 2),
            net("hybrid", "mode=auto", 3),
            KvmGuest::linux_net(20, 1, net_plan(Server::Linux, 200, STREAM, 0)),
            load("hvm", "mode=hvm"),
            load("hybrid", "mode=auto"),
            load("hybrid-lapic-eoi", "mode=hybrid eoi=lapic"),
        ];
        let work = paths::logs().join("kvm-test");
        let [hvm, hybrid, lapic_eoi, misfit, net_hvm, net_hybrid, net_linux, load_hvm, load_hybrid, load_lapic_eoi]: [KvmRun;
            10] = run_guests(&work, &paths::kernel(), &guests, 2400)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "one result per guest".to_string())?;
        Ok(KvmHost { hvm, hybrid, lapic_eoi, misfit, net_hvm, net_hybrid, net_linux, load_hvm, load_hybrid, load_lapic_eoi })
    });
    r.as_ref().unwrap_or_else(|e| panic!("KVM host run failed: {e}"))
}

fn finished(r: &KvmRun) -> &KvmRun {
    if let Some(p) = r.problem() {
        panic!("{p}");
    }
    r
}

fn phase<'a>(r: &'a KvmRun, name: &str) -> &'a KvmPhase {
    let t = finished(r).trace.as_ref().expect("a trace");
    t.phase(name).unwrap_or_else(|| panic!("{}: no complete {name} phase in the trace", r.guest.name))
}

fn mode(r: &KvmRun, key: &str) -> String {
    finished(r).console.mode.as_ref().map(|m| m.get(key).to_string()).unwrap_or_default()
}

fn per_op(p: &KvmPhase) -> f64 {
    p.phase.total_exits_per_op().expect("iterations")
}

fn within(what: &str, v: f64, lo: f64, hi: f64) {
    assert!((lo..=hi).contains(&v), "{what}: {v:.4} not within [{lo}, {hi}]");
}

#[test]
fn mode_reports_name_kvm_and_its_enlightenments() {
    let h = run();
    for (r, m, eoi, clock) in [
        (&h.hvm, "hvm", "x2apic-msr", "tsc"),
        (&h.hybrid, "hybrid", "pv", "kvmclock"),
        (&h.lapic_eoi, "hybrid", "x2apic-msr", "kvmclock"),
    ] {
        assert_eq!(
            (mode(r, "hypervisor"), mode(r, "mode"), mode(r, "eoi"), mode(r, "clock"), mode(r, "timer")),
            ("kvm".into(), m.into(), eoi.into(), clock.into(), "tsc-deadline".into()),
            "{}",
            r.guest.name
        );
    }
}

#[test]
fn a_switch_that_does_not_fit_is_refused_by_name() {
    let r = &run().misfit;
    assert_eq!(r.exit, Some(3), "{}: QEMU's exit status (3 = the kernel's failure)", r.guest.name);
    let e = r.console.errors.join("\n");
    assert!(e.contains("eoi=pv") && e.contains("mode=hybrid on KVM"), "errors: {e}");
}

#[test]
fn cpuid_is_one_exit() {
    let h = run();
    for r in [&h.hvm, &h.hybrid] {
        let p = phase(r, "cpuid");
        within(&format!("{} cpuid exits/op", r.guest.name), per_op(p), 1.0, 1.02);
        within("CPUID exits/op", p.phase.exits_of(CPUID) as f64 / p.phase.iterations as f64, 0.999, 1.001);
    }
}

#[test]
fn page_table_work_costs_no_exit_under_nested_paging() {
    // Under NPT, KVM traps neither page-table writes, nor the guest's own page faults, nor
    // INVLPG: what the phases hold are host interrupts (INTR), a handful per 10,000 ops.
    let h = run();
    for r in [&h.hvm, &h.hybrid] {
        for name in ["mmu_map", "page_fault", "tlb_flush"] {
            let p = phase(r, name);
            assert!(p.phase.iterations >= 1000, "{}: {name}: {} operations", r.guest.name, p.phase.iterations);
            within(&format!("{} {name} exits/op", r.guest.name), per_op(p), 0.0, 0.01);
        }
    }
}

#[test]
fn kvmclock_reads_cost_no_exit() {
    let h = run();
    for r in [&h.hybrid, &h.lapic_eoi] {
        let p = phase(r, "clock_read");
        let cost = ExitCost::of(&p.phase).expect("iterations");
        // Measured: 9-10 host interrupts (INTR) in 200,000 reads, none caused by a read.
        assert_eq!(cost.guest_caused, 0.0, "{}: kvmclock reads caused exits: {}", r.guest.name, cost.describe());
        assert!(cost.total <= 0.0002, "{}: clock_read {}", r.guest.name, cost.describe());
    }
}

#[test]
fn pv_eoi_ends_interrupts_without_the_eoi_exit() {
    let h = run();
    let pv = phase(&h.hybrid, "interrupt");
    let eoi = pv.phase.eoi_exits_per_op().unwrap();
    assert!(eoi <= 0.02, "PV EOI: {eoi:.4} EOI exits per delivered interrupt");
    within("PV EOIs KVM completed per interrupt", pv.pv_eois_per_op().unwrap(), 0.98, 1.02);
    for r in [&h.lapic_eoi, &h.hvm] {
        let p = phase(r, "interrupt");
        within(&format!("{} EOI exits per interrupt", r.guest.name), p.phase.eoi_exits_per_op().unwrap(), 0.98, 1.02);
        assert_eq!(p.pv_eois, 0, "{}: no PV EOI without eoi=pv", r.guest.name);
    }
    // The EOI was the only difference: one exit fewer per interrupt.
    let lapic = phase(&h.lapic_eoi, "interrupt");
    within("exits saved per interrupt", per_op(lapic) - per_op(pv), 0.95, 1.05);
    within("PV EOI: interrupt exits/op", per_op(pv), 1.0, 1.03);
    within("eoi=lapic: interrupt exits/op", per_op(lapic), 2.0, 2.03);
    let eoi_writes = lapic.phase.msr_writes_of(X2APIC_EOI_MSR) as f64 / lapic.phase.iterations as f64;
    within("eoi=lapic: EOI MSR writes per interrupt", eoi_writes, 0.99, 1.01);
}

#[test]
fn the_timer_costs_what_it_did() {
    let h = run();
    for r in [&h.hvm, &h.hybrid, &h.lapic_eoi] {
        let p = phase(r, "timer_arm_to_fire");
        // Arming (a TSC_DEADLINE write) and the EOI: two exits; one with PV EOI (measured
        // 2.01, 1.01 and 2.01).
        let (lo, hi) = if mode(r, "eoi") == "pv" { (1.0, 1.1) } else { (2.0, 2.1) };
        within(&format!("{} timer_arm_to_fire exits/op", r.guest.name), per_op(p), lo, hi);
    }
}

#[test]
fn the_network_is_served_exactly_by_ours_and_by_linux() {
    let h = run();
    for r in [&h.net_hvm, &h.net_hybrid, &h.net_linux] {
        let report = finished(r).net.as_ref().expect("a drive report");
        assert!(report.ok(), "{}: {:?}", r.guest.name, report.errors);
        assert!(
            report.ping.is_some_and(|p| p.sent > 0 && p.received == p.sent),
            "{}: ping {:?}",
            r.guest.name,
            report.ping
        );
        assert!(!report.echoes.is_empty(), "{}: no echo checked", r.guest.name);
        for b in ["udp_rr", "tcp_rr", "tcp_stream", "tcp_maerts"] {
            assert!(report.driven(b).is_some(), "{}: no {b}", r.guest.name);
            phase(r, b);
        }
    }
    for r in [&h.net_hvm, &h.net_hybrid] {
        assert_eq!(mode(r, "nic"), "virtio-net", "{}", r.guest.name);
    }
}

#[test]
fn pv_eoi_removes_the_eoi_exit_of_every_nic_interrupt_it_flags() {
    let h = run();
    for b in ["udp_rr", "tcp_rr", "tcp_stream"] {
        // hvm: every interrupt KVM injects ends with one EOI write.
        let p = phase(&h.net_hvm, b);
        let ratio = p.phase.eoi_exits() as f64 / p.injections as f64;
        within(&format!("hvm {b}: EOI exits per injected interrupt"), ratio, 0.98, 1.02);
        assert_eq!(p.pv_eois, 0, "hvm {b}: no PV EOI");
        // hybrid: KVM flags nearly all of them (none pending behind), and the guest skips those.
        let p = phase(&h.net_hybrid, b);
        let flagged = p.pv_eois as f64 / p.injections as f64;
        within(&format!("hybrid {b}: PV EOIs per injected interrupt"), flagged, 0.95, 1.0);
        let eoi = p.phase.eoi_exits() as f64 / p.injections as f64;
        assert!(eoi <= 0.05, "hybrid {b}: {eoi:.3} EOI exits per injected interrupt");
        within(&format!("hybrid {b}: flagged + written EOIs per interrupt"), flagged + eoi, 0.98, 1.02);
    }
}

#[test]
fn the_load_experiment_counts_exits_per_interrupt_at_each_rate() {
    let h = run();
    let eoi_per_interrupt = |r: &KvmRun| -> Vec<f64> {
        let report = finished(r).net.as_ref().expect("a drive report");
        assert_eq!(report.load.iter().map(|p| p.rate).collect::<Vec<_>>(), LOAD_RATES, "{}", r.guest.name);
        let phases = r.trace.as_ref().unwrap().phases_named("load");
        assert_eq!(phases.len(), LOAD_RATES.len(), "{}: one load phase per rate", r.guest.name);
        phases.iter().map(|p| p.phase.eoi_exits_per_op().expect("interrupts")).collect()
    };
    for r in [&h.load_hvm, &h.load_lapic_eoi] {
        for (rate, e) in LOAD_RATES.iter().zip(eoi_per_interrupt(r)) {
            // One EOI per NIC interrupt; the timer's own interrupts add a little.
            within(&format!("{} at {rate}/s: EOI exits per interrupt", r.guest.name), e, 0.98, 1.15);
        }
    }
    for (rate, e) in LOAD_RATES.iter().zip(eoi_per_interrupt(&h.load_hybrid)) {
        // An interrupt KVM injects while another is pending cannot be flagged (measured 0.00-0.11).
        assert!(e <= 0.2, "hybrid at {rate}/s: {e:.3} EOI exits per interrupt");
    }
}

/// With receive offloads (the default `offload` lever), L1's TCP segments reach the
/// kernel unsplit (`GUEST_TSO4`, gathered from merged buffers): the stream's phase counts
/// NIC frames in and out, and without them it would take one frame in per 1,460 bytes
/// (and about one ACK out per two). Measured: 0.09 frames per 1,460 B.
#[test]
fn the_stream_arrives_in_large_segments() {
    let h = run();
    for r in [&h.net_hvm, &h.net_hybrid] {
        let p = phase(r, "tcp_stream");
        let frames = p.phase.iterations as f64 / (STREAM / 1460) as f64;
        assert!(frames < 0.5, "{}: {frames:.3} NIC frames per 1460 B of the stream", r.guest.name);
    }
}

#[test]
fn tcp_maerts_carries_every_byte_out_and_hvm_pays_for_its_kicks() {
    let h = run();
    for r in [&h.net_hvm, &h.net_hybrid, &h.net_linux] {
        let d = finished(r).net.as_ref().and_then(|n| n.driven("tcp_maerts")).expect("a tcp_maerts figure");
        // The client read exactly the planned bytes, each as the source's pattern has it.
        assert_eq!(d.bytes, Some(STREAM), "{}: {d:?}", r.guest.name);
        let p = phase(r, "tcp_maerts");
        let exits = p.phase.total_exits as f64 / (STREAM / 1460) as f64;
        eprintln!(
            "{}: tcp_maerts {:.0} Mbit/s at L1, the kernel's own {:?}, {exits:.4} exits per 1460 B ({:?})",
            r.guest.name,
            d.host_value,
            d.kernel.as_ref().map(|k| k.value),
            p.phase.exits
        );
        if r.guest.name != h.net_linux.guest.name {
            assert!(d.kernel.as_ref().is_some_and(|k| k.iterations >= STREAM), "{}: {d:?}", r.guest.name);
        }
    }
    // virtio-net's transmit kick is a trapped write to its notify register.
    let p = &phase(&h.net_hvm, "tcp_maerts").phase;
    assert!(
        p.exits_of(SVM_EXIT_NPF) + p.exits_of(SVM_EXIT_IOIO) > 0,
        "hvm tcp_maerts: no NPF or IO exit: {:?}",
        p.exits
    );
}
