//! Integration tests of PV I/O on the project's Xen test host: the kernel's netfront in
//! hybrid mode and its virtio-net on qemu-xen's emulated NIC in hvm mode, against a Linux
//! PVH domU with netfront, all on one dom0 bridge and driven by the same dom0 client
//! (`tests/xen/payload/netclient.py`): ping, echo of every size, request-response, bulk,
//! and a flood that must leave the netfront's live-grant count where it started.

use harness::paths;
use harness::xenhost::{self, Guest, GuestRun};
use harness::xentrace::{Phase, SVM_EXIT_MSR, SVM_EXIT_NPF};
use serde_json::Value;
use std::sync::OnceLock;

/// Datagrams of the flood through the netfront (the 100,000 packets, with margin
/// for datagrams the guest may drop).
const FLOOD: u64 = 110_000;

struct NetRun {
    hybrid: GuestRun,
    hvm: GuestRun,
    linux: GuestRun,
}

fn run() -> &'static NetRun {
    static RUN: OnceLock<Result<NetRun, String>> = OnceLock::new();
    let r = RUN.get_or_init(|| {
        let common = "--rr 300 --stream 4194304";
        let guests = [
            Guest::hykernel_net("hybrid-net", "hybrid", 2, &format!("{common} --flood {FLOOD}")),
            Guest::hykernel_net("hvm-net", "hvm", 3, common),
            Guest::linux_net(20, common),
        ];
        let work = paths::logs().join("xen-net-test");
        let [hybrid, hvm, linux]: [GuestRun; 3] = xenhost::run_guests(&work, &paths::kernel(), &guests, 2400)
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "one result per guest".to_string())?;
        Ok(NetRun { hybrid, hvm, linux })
    });
    r.as_ref().unwrap_or_else(|e| panic!("Xen host run failed: {e}"))
}

fn client(g: &GuestRun) -> &Value {
    g.client.as_ref().unwrap_or_else(|| panic!("{}: no client results; times {:?}", g.name, g.times))
}

fn phase<'a>(g: &'a GuestRun, name: &str) -> &'a Phase {
    g.phase(name).unwrap_or_else(|| panic!("{}: no complete trace phase '{name}'", g.name))
}

fn check_echo(g: &GuestRun) {
    let c = client(g);
    assert_eq!(c["errors"], Value::Array(vec![]), "{}", g.name);
    assert_eq!(c["udp_echo_exact"], true, "{}: UDP echo 1..1472 bytes", g.name);
    assert_eq!(c["tcp_echo_exact"], true, "{}: TCP echo 1 B..64 KiB", g.name);
    assert_eq!((&c["ping"]["sent"], &c["ping"]["received"]), (&Value::from(5), &Value::from(5)), "{}: ping", g.name);
    assert_eq!(c["quit"], "BYE", "{}", g.name);
    assert_eq!(g.times.get("client_status").map(String::as_str), Some("0"), "{}", g.name);
    if let Some(r) = c["echo_retries"].as_array().filter(|r| !r.is_empty()) {
        eprintln!("note: {}: echoes that differed once and then came back exactly: {r:?}", g.name);
    }
}

#[test]
fn hybrid_netfront_serves_dom0_exactly() {
    let g = &run().hybrid;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!((m.get("mode"), m.get("nic"), m.get("irq")), ("hybrid", "netfront", "evtchn"));
    assert!(g.lines.iter().any(|l| l.starts_with("NET ready ip=10.0.0.2/24")), "address from xenstore: {:?}", g.lines);
    check_echo(g);
    assert!(g.summary.done && g.summary.errors.is_empty() && g.ended_ok(), "{:?}", g.summary);
}

#[test]
fn hvm_virtio_on_qemu_xen_serves_dom0_exactly() {
    let g = &run().hvm;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!((m.get("mode"), m.get("nic")), ("hvm", "virtio-net"));
    check_echo(g);
    assert!(g.summary.done && g.ended_ok());
}

#[test]
fn linux_peer_serves_dom0_exactly() {
    check_echo(&run().linux);
}

#[test]
fn live_grants_return_to_baseline_after_a_flood() {
    let c = client(&run().hybrid);
    let rx = c["flood_rx"].as_u64().unwrap_or(0);
    assert!(rx >= 100_000, "the netfront received {rx} of {FLOOD} flood datagrams");
    let (before, after) = (c["grants_before"].as_u64(), c["grants_after"].as_u64());
    assert!(before.is_some_and(|b| b > 0), "{before:?}");
    assert_eq!(before, after, "live grants before and after the flood");
    assert_eq!(c["stats_after"]["bad"], 0, "the back end sent nothing invalid");
}

#[test]
fn driven_benchmarks_are_measured_on_both_sides() {
    for g in [&run().hybrid, &run().hvm] {
        for name in ["udp_rr", "tcp_rr", "tcp_stream"] {
            let b = &client(g)["bench"][name];
            let kernel = b["kernel"]["value"].as_f64().unwrap_or(0.0);
            let host = b["host"].as_f64().unwrap_or(0.0);
            assert!(kernel > 0.0 && host > 0.0, "{}: {name}: {b}", g.name);
            let p = phase(g, name);
            assert!(p.iterations > 0 && p.total_exits_per_op().is_some(), "{}: {name} packets", g.name);
        }
    }
    for name in ["udp_rr", "tcp_rr", "tcp_stream"] {
        let linux = &run().linux;
        assert!(client(linux)["bench"][name]["host"].as_f64().unwrap_or(0.0) > 0.0, "linux {name}");
        // hyecho marks the benchmark with CPUID markers: Linux's exits per packet too.
        let p = phase(linux, name);
        assert!(p.iterations > 0 && p.total_exits_per_op().is_some_and(|e| e > 0.0), "linux {name}: {p:?}");
    }
}

#[test]
fn netfront_interrupts_cost_no_apic_exits() {
    // hybrid: events on the callback vector, masked and unmasked in shared memory; hvm:
    // MSI-X masking and LAPIC EOIs are trapped writes.
    let hy = phase(&run().hybrid, "udp_rr");
    assert_eq!(hy.exits_of(SVM_EXIT_MSR) + hy.exits_of(SVM_EXIT_NPF), 0, "hybrid MSR/NPF exits: {:?}", hy.exits);
    assert_eq!(hy.eoi_exits(), 0);
    let hvm = phase(&run().hvm, "udp_rr");
    assert!(hvm.eoi_exits() > 0, "hvm EOI exits: {:?}", hvm.msr_writes);
}
