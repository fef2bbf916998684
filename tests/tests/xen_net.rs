//! Integration tests of PV I/O on the project's Xen test host: the kernel's netfront in
//! hybrid mode and its virtio-net on qemu-xen's emulated NIC in hvm mode, against a Linux
//! PVH domU with netfront, all on one dom0 bridge and driven by the dom0 agent with the
//! same network client the QEMU host uses: ping, echoes of every size that must come back
//! byte for byte (never retried), request-response, bulk, and a flood that must leave the
//! netfront's live-grant count where it started.

use harness::netbench::{NetReport, Server};
use harness::paths;
use harness::xen::cost::ExitCost;
use harness::xen::guests::{net_plan, Guest, Variant};
use harness::xen::plan::{Action, LineMatch};
use harness::xen::results::Outcome;
use harness::xen::run::{run_guests, GuestRun};
use harness::xentrace::{SVM_EXIT_MSR, SVM_EXIT_NPF};
use proto::cmdline::{BenchSet, Fault};
use std::sync::OnceLock;

/// Datagrams of the flood through the netfront (100,000 packets, with margin for
/// datagrams the guest may drop).
const FLOOD: u64 = 110_000;
/// How far the kernel's own request-response figure may be from dom0's: both time the
/// same transactions (the kernel from the first request's arrival to the last one's,
/// dom0 from the first send to the last reply), so they differ by one transaction's
/// edges and the jitter of the two clocks' reads.
const RR_AGREEMENT: f64 = 0.15;

struct NetRun {
    hybrid: GuestRun,
    hvm: GuestRun,
    linux: GuestRun,
    detached: GuestRun,
}

/// A hybrid guest whose vif is taken away mid-init: its netfront, told to stall 5 s
/// between granting its rings and publishing them (`fault=netfront-stall`), says so, and
/// dom0 detaches the vif meanwhile.
fn detached_mid_init() -> Guest {
    let mut v = Variant::HYBRID;
    v.opts.fault = Fault::NetfrontStall;
    let mut g = Guest::kernel(v, BenchSet::NONE.with("cpuid", true).with("net", true), "");
    g.plan.name = "hy-hybrid-detach".into();
    g.plan.overrides.push("vif=[\"bridge=xenbr0,mac=00:16:3e:00:00:04,ip=10.0.0.4\"]".into());
    g.plan.actions = vec![Action {
        on: LineMatch::Contains("netfront: stalling".into()),
        xl: vec![["network-detach", "{name}", "0"].iter().map(|a| a.to_string()).collect()],
    }];
    g
}

fn run() -> &'static NetRun {
    static RUN: OnceLock<Result<NetRun, String>> = OnceLock::new();
    let r = RUN.get_or_init(|| {
        let (rr, stream) = (300, 4 << 20);
        let guests = [
            Guest::kernel_net(Variant::HYBRID, 2, net_plan(Server::Hykernel, rr, stream, FLOOD)),
            Guest::kernel_net(Variant::HVM, 3, net_plan(Server::Hykernel, rr, stream, 0)),
            Guest::linux_net(20, net_plan(Server::Linux, rr, stream, 0)),
            detached_mid_init(),
        ];
        let work = paths::logs().join("xen-net-test");
        let [hybrid, hvm, linux, detached]: [GuestRun; 4] = run_guests(&work, &paths::kernel(), &guests, 2400)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "one result per guest".to_string())?;
        Ok(NetRun { hybrid, hvm, linux, detached })
    });
    r.as_ref().unwrap_or_else(|e| panic!("Xen host run failed: {e}"))
}

fn drive(g: &GuestRun) -> &NetReport {
    g.last().and_then(|a| a.net.as_ref()).unwrap_or_else(|| panic!("{}: no network results; {:?}", g.name(), g.result))
}

fn check_exact(g: &GuestRun) {
    assert!(g.problem().is_none(), "{}: {:?}", g.name(), g.problem());
    let r = drive(g);
    assert!(r.errors.is_empty(), "{}: {:?}", g.name(), r.errors);
    assert_eq!(r.echoes.len(), 12, "{}: every echo size was tried", g.name());
    for e in &r.echoes {
        assert!(e.exact(), "{}: {} echo of {} bytes: {:?} {:?}", g.name(), e.proto, e.bytes, e.mismatch, e.error);
    }
    let p = r.ping.expect("ping ran");
    assert_eq!((p.sent, p.received), (5, 5), "{}: ping", g.name());
    assert_eq!(r.quit.as_deref(), Some("BYE"), "{}", g.name());
}

#[test]
fn hybrid_netfront_serves_dom0_exactly() {
    let g = &run().hybrid;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!((m.get("mode"), m.get("nic"), m.get("irq")), ("hybrid", "netfront", "evtchn"));
    let ready = g.summary.net_ready.as_deref().unwrap_or("");
    assert!(ready.starts_with("ip=10.0.0.2/24 "), "address from xenstore: {ready}");
    check_exact(g);
}

#[test]
fn hvm_virtio_on_qemu_xen_serves_dom0_exactly() {
    let g = &run().hvm;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!((m.get("mode"), m.get("nic")), ("hvm", "virtio-net"));
    check_exact(g);
}

#[test]
fn linux_peer_serves_dom0_exactly() {
    check_exact(&run().linux);
}

#[test]
fn live_grants_return_to_baseline_after_a_flood() {
    let f = drive(&run().hybrid).flood.expect("the flood ran");
    assert!(f.rx >= 100_000, "the netfront received {} of {} flood datagrams", f.rx, f.sent);
    assert!(f.grants.0.is_some_and(|b| b > 0), "{f:?}");
    assert_eq!(f.grants.0, f.grants.1, "live grants before and after the flood");
    assert_eq!(f.bad, Some(0), "the back end sent nothing invalid");
}

#[test]
fn the_kernels_and_dom0s_figures_agree() {
    for g in [&run().hybrid, &run().hvm] {
        for name in ["udp_rr", "tcp_rr"] {
            let d = drive(g).driven(name).unwrap_or_else(|| panic!("{}: no {name}", g.name()));
            let k = d.kernel.as_ref().unwrap_or_else(|| panic!("{}: {name} without the kernel's figure", g.name()));
            let off = (k.value - d.host_value).abs() / d.host_value;
            assert!(
                off <= RR_AGREEMENT,
                "{}: {name}: kernel {:.0} ns, dom0 {:.0} ns ({:.0} % apart)",
                g.name(),
                k.value,
                d.host_value,
                off * 100.0
            );
        }
        let s = drive(g).driven("tcp_stream").expect("tcp_stream");
        assert!(s.host_value > 0.0 && s.kernel.as_ref().is_some_and(|k| k.value > 0.0), "{}: {s:?}", g.name());
    }
}

#[test]
fn every_packet_exchange_has_its_exits_counted() {
    for g in [&run().hybrid, &run().hvm, &run().linux] {
        for name in ["udp_rr", "tcp_rr", "tcp_stream"] {
            let p =
                g.phase(name).unwrap_or_else(|| panic!("{}: no trace phase {name}: {:?}", g.name(), g.trace_problem));
            assert!(!p.overlaps_lost(), "{}: {name} overlaps lost trace records", g.name());
            let c = ExitCost::of(p).unwrap_or_else(|| panic!("{}: {name}: no packets", g.name()));
            assert!(c.total > 0.0, "{}: {name}: {}", g.name(), c.describe());
        }
    }
}

#[test]
fn netfront_interrupts_cost_no_apic_exits() {
    // hybrid: events on the callback vector, masked and unmasked in shared memory; hvm:
    // LAPIC EOIs are trapped writes.
    let hy = run().hybrid.phase("udp_rr").expect("hybrid udp_rr phase");
    assert_eq!(hy.exits_of(SVM_EXIT_MSR) + hy.exits_of(SVM_EXIT_NPF), 0, "hybrid MSR/NPF exits: {:?}", hy.exits);
    assert_eq!(hy.eoi_exits(), 0);
    let hvm = run().hvm.phase("udp_rr").expect("hvm udp_rr phase");
    assert!(hvm.eoi_exits() > 0, "hvm EOI exits: {:?}", hvm.msr_writes);
}

#[test]
fn a_back_end_taken_away_mid_init_is_survived_without_a_granted_page_in_the_heap() {
    let g = &run().detached;
    let a = g.last().expect("it ran");
    assert_eq!(a.outcome, Outcome::Finished, "{:?}", g.lines);
    assert_eq!(a.actions.len(), 1, "dom0 detached the vif while the netfront stalled: {:?}", a.actions);
    assert!(a.actions.iter().all(|x| x.ends_with(": ok")), "{:?}", a.actions);
    // One line says what failed and what was taken back: "netfront: <why>; N grants
    // revoked, M pages leaked (still mapped by the back end); continuing without network
    // (K grants live)". Every grant still live is a leaked page: none went back to the heap.
    let line = g.lines.iter().find(|l| l.contains("netfront: ") && l.contains("continuing without network"));
    let line = line.unwrap_or_else(|| panic!("no failure line: {:?}", g.lines));
    let number_before = |word: &str| -> u64 {
        let i = line.find(word).unwrap_or_else(|| panic!("{word:?} in {line}"));
        line[..i].split(|c: char| !c.is_ascii_digit()).rfind(|w| !w.is_empty()).and_then(|n| n.parse().ok()).unwrap()
    };
    let (revoked, leaked, live) =
        (number_before(" grants revoked"), number_before(" pages leaked"), number_before(" grants live"));
    assert!(revoked + leaked > 0, "the rings and buffers had been granted: {line}");
    assert_eq!(live, leaked, "a live grant that is not a leaked page: {line}");
    // The other benchmarks ran, and the network one says why it did not.
    assert!(g.summary.bench("cpuid").is_some(), "{:?}", g.lines);
    assert!(g.summary.skips.iter().any(|s| s == "net reason=no-nic"), "{:?}", g.summary.skips);
    assert!(g.summary.done && g.problem().is_none(), "{:?}", g.problem());
}

#[test]
fn no_guest_needed_a_retry_the_linux_peer_did_not() {
    let r = run();
    for g in [&r.hybrid, &r.hvm, &r.detached] {
        assert!(g.retries() <= r.linux.retries(), "{}: {:?}", g.name(), g.result.retry_reasons());
    }
    let total = r.hybrid.retries() + r.hvm.retries() + r.linux.retries() + r.detached.retries();
    assert!(total <= 1, "{total} retries in one run");
}
