//! Integration tests on the project's Xen test host: the kernel as HVM, hybrid and PVH
//! domUs (hybrid also with its switches), a Linux PVH domU as the boot-time peer, and a
//! domU with a bad option, all in one boot of the host (a few minutes; building the host
//! the first time takes ~3 more).
//!
//! The run is shared by the tests below; each checks one claim against the guests'
//! consoles, timings and the host's xentrace records. Needs root (tests/check.sh runs it).

use harness::paths;
use harness::xenhost::{self, Guest, GuestRun};
use harness::xentrace::{
    Phase, SVM_EXIT_CPUID as CPUID, SVM_EXIT_MSR as MSR, SVM_EXIT_NPF as NPF, SVM_EXIT_VMMCALL as VMMCALL,
};
use std::sync::OnceLock;

const BENCH: &str = "cpuid,hypercall,clock,interrupt,evtchn,timer";

struct XenRun {
    hvm: GuestRun,
    hybrid: GuestRun,
    percpu: GuestRun,
    mixed: GuestRun,
    pvh: GuestRun,
    linux: GuestRun,
    bad: GuestRun,
}

fn run() -> &'static XenRun {
    static RUN: OnceLock<Result<XenRun, String>> = OnceLock::new();
    let r = RUN.get_or_init(|| {
        let mut bad = Guest::hykernel("badopt", "pvh", "cpuid", "colour=blue");
        bad.ready = "^ERROR ".into();
        bad.timeout_s = 120;
        let guests = [
            Guest::hykernel("hvm", "hvm", BENCH, ""),
            Guest::hykernel("hybrid", "hybrid", BENCH, ""),
            Guest::hykernel("percpu", "hybrid", BENCH, "callback=percpu"),
            Guest::hykernel("mixed", "hybrid", BENCH, "clock=tsc timer=lapic"),
            Guest::hykernel("pvh", "pvh", BENCH, ""),
            Guest::linux_pvh(),
            bad,
        ];
        let work = paths::logs().join("xen-test");
        let [hvm, hybrid, percpu, mixed, pvh, linux, bad]: [GuestRun; 7] =
            xenhost::run_guests(&work, &paths::kernel(), &guests, 2400)
                .map_err(|e| e.to_string())?
                .try_into()
                .map_err(|_| "one result per guest".to_string())?;
        Ok(XenRun { hvm, hybrid, percpu, mixed, pvh, linux, bad })
    });
    r.as_ref().unwrap_or_else(|e| panic!("Xen host run failed: {e}"))
}

fn ours() -> [&'static GuestRun; 5] {
    let r = run();
    [&r.hvm, &r.hybrid, &r.percpu, &r.mixed, &r.pvh]
}

fn phase<'a>(g: &'a GuestRun, name: &str) -> &'a Phase {
    g.phase(name).unwrap_or_else(|| panic!("{}: no complete trace phase '{name}'", g.name))
}

fn per_op(p: &Phase, code: u32) -> f64 {
    p.exits_of(code) as f64 / p.iterations as f64
}

/// Checks the mode report, keys given as (key, accepted values).
fn check_report(g: &GuestRun, want: &[(&str, &[&str])]) {
    let s = &g.summary;
    let m = s.mode.as_ref().unwrap_or_else(|| panic!("{}: no mode report in {:?}", g.name, g.lines));
    assert_eq!(m.get("hypervisor"), "xen-4.17", "{}", g.name);
    for (key, ok) in want {
        assert!(ok.contains(&m.get(key)), "{}: {key}={} (expected one of {ok:?})", g.name, m.get(key));
    }
    assert!(s.done && s.errors.is_empty() && s.panics.is_empty() && s.malformed.is_empty(), "{}: {s:?}", g.name);
    assert!(g.ended_ok(), "{}: {:?}", g.name, g.times);
}

#[test]
fn mode_reports_follow_mode_and_switches() {
    let r = run();
    let lapic_eoi: &[&str] = &["x2apic-msr", "lapic-mmio"];
    let lapic_timer: &[&str] = &["tsc-deadline", "lapic-oneshot"];
    check_report(&r.hvm, &[("mode", &["hvm"]), ("irq", &["x2apic", "xapic"]), ("eoi", lapic_eoi), ("clock", &["tsc"])]);
    check_report(&r.hvm, &[("timer", lapic_timer)]);
    let pv = [
        ("irq", &["evtchn"][..]),
        ("eoi", &["none"][..]),
        ("clock", &["pvclock"][..]),
        ("timer", &["xen-oneshot"][..]),
    ];
    check_report(&r.hybrid, &[&[("mode", &["hybrid"][..])][..], &pv[..]].concat());
    check_report(&r.pvh, &[&[("mode", &["pvh"][..]), ("nic", &["none"][..])][..], &pv[..]].concat());
    check_report(
        &r.percpu,
        &[("mode", &["hybrid"]), ("irq", &["evtchn"]), ("eoi", lapic_eoi), ("clock", &["pvclock"])],
    );
    check_report(&r.mixed, &[("mode", &["hybrid"]), ("irq", &["evtchn"]), ("eoi", &["none"]), ("clock", &["tsc"])]);
    check_report(&r.mixed, &[("timer", lapic_timer)]);
}

#[test]
fn every_benchmark_reports_a_positive_value() {
    for g in ours() {
        let mut names = vec![
            "cpuid",
            "null_hypercall",
            "clock_read",
            "interrupt",
            "interrupt_raise",
            "timer_arm_to_fire",
            "timer_lateness",
        ];
        if g.name != "hy-hvm" {
            names.push("evtchn_rr");
        }
        for name in names {
            let b = g.summary.bench(name).unwrap_or_else(|| panic!("{}: no BENCH {name}", g.name));
            assert!(b.value > 0.0 && b.iterations > 0, "{}: {b:?}", g.name);
        }
    }
    assert_eq!(run().hvm.summary.skips, ["evtchn_rr reason=no-event-channels (mode hvm)"]);
}

#[test]
fn a_cpuid_costs_one_cpuid_exit_and_a_hypercall_one_vmmcall() {
    for g in ours() {
        let p = phase(g, "cpuid");
        assert_eq!(p.iterations, 10_000, "{}", g.name);
        assert_eq!(p.exits_of(CPUID), p.iterations, "{}: CPUID exits in the cpuid phase", g.name);
        let h = phase(g, "null_hypercall");
        assert_eq!(h.exits_of(VMMCALL), h.iterations, "{}: VMMCALL exits in the hypercall phase", g.name);
        // Nothing else of the guest's making.
        assert!(xenhost::guest_exits_per_op(p).unwrap() < 1.001, "{}: {:?}", g.name, p.exits);
    }
}

#[test]
fn reading_the_clock_costs_no_exit() {
    for g in ours() {
        let p = phase(g, "clock_read");
        let per = p.total_exits_per_op().unwrap_or(f64::MAX);
        assert!(per < 0.001, "{}: {per} exits per clock read ({:?})", g.name, p.exits);
    }
}

fn interrupt_cost(g: &GuestRun) -> xenhost::InterruptCost {
    xenhost::interrupt_cost(phase(g, "interrupt"), phase(g, "interrupt_raise"))
        .unwrap_or_else(|| panic!("{}: empty interrupt phases", g.name))
}

#[test]
fn an_hvm_interrupt_costs_an_eoi_exit() {
    let p = phase(&run().hvm, "interrupt");
    // Raising the self-IPI and the EOI are both APIC writes: MSR exits in x2APIC mode,
    // nested page faults on the APIC page in xAPIC mode.
    let apic = per_op(p, MSR) + per_op(p, NPF);
    assert!(apic >= 2.0, "{apic} APIC exits per interrupt: {:?}", p.exits);
    let eoi = p.eoi_exits_per_op().unwrap();
    assert!(eoi >= 1.0, "{eoi} EOI exits per interrupt: {:?}", p.msr_writes);
    let c = interrupt_cost(&run().hvm);
    assert!((c.raise - 1.0).abs() < 0.01, "raise alone: {c:?}");
    assert!(c.deliver_ack >= 0.99, "delivery + EOI: {c:?}");
}

#[test]
fn a_hybrid_event_is_delivered_and_acknowledged_without_guest_exits() {
    for g in [&run().hybrid, &run().pvh] {
        let p = phase(g, "interrupt");
        // The only guest-caused exit is raising the event (EVTCHNOP_send); delivery on the
        // global callback and the acknowledgement in shared memory cost the guest none.
        assert_eq!(p.exits_of(VMMCALL), p.iterations, "{}: {:?}", g.name, p.exits);
        assert_eq!(p.exits_of(MSR) + p.exits_of(NPF), 0, "{}: {:?}", g.name, p.exits);
        assert_eq!(p.eoi_exits(), 0, "{}: EOI writes on the global callback", g.name);
        // Measured the other way round: the raises alone cost as many guest exits.
        let c = interrupt_cost(g);
        assert!((c.guest - 1.0).abs() < 0.001 && (c.raise - 1.0).abs() < 0.01, "{}: {c:?}", g.name);
        assert!(c.deliver_ack.abs() < 0.01, "{}: delivery + acknowledgement: {c:?}", g.name);
    }
}

#[test]
fn the_per_vcpu_upcall_vector_costs_its_eoi() {
    let p = phase(&run().percpu, "interrupt");
    assert_eq!(p.exits_of(VMMCALL), p.iterations, "{:?}", p.exits);
    let eoi = p.eoi_exits_per_op().unwrap();
    assert!(eoi >= 1.0, "{eoi} EOI exits per event: {:?}", p.msr_writes);
    let c = interrupt_cost(&run().percpu);
    assert!(c.deliver_ack >= 0.99, "delivery + EOI: {c:?}");
}

#[test]
fn boot_times_are_measured_against_linux() {
    let r = run();
    for g in [&r.hvm, &r.hybrid, &r.pvh, &r.linux] {
        let first =
            g.seconds("first_line_seconds").unwrap_or_else(|| panic!("{}: no first line {:?}", g.name, g.times));
        let ready = g.seconds("ready_seconds").unwrap_or_else(|| panic!("{}: no ready time {:?}", g.name, g.times));
        assert!(first > 0.0 && ready >= first, "{}: first {first} ready {ready}", g.name);
    }
    assert!(r.linux.lines.iter().any(|l| l.contains("HY-DOMU: Linux up")), "{:?}", r.linux.lines);
}

#[test]
fn a_bad_option_ends_the_domain_with_a_clear_error() {
    let g = &run().bad;
    assert_eq!(g.summary.errors.len(), 1, "{:?}", g.lines);
    assert!(g.summary.errors[0].starts_with("cmdline: unknown option 'colour=blue'"), "{:?}", g.summary.errors);
    assert!(g.summary.mode.is_none() && g.summary.panics.is_empty());
    assert!(g.seconds("gone_seconds").is_some_and(|s| s < 100.0), "{:?}", g.times);
}
