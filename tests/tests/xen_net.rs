//! Integration tests of PV I/O on the project's Xen test host: the kernel's netfront in
//! hybrid mode and its virtio-net on qemu-xen's emulated NIC in hvm mode, against a Linux
//! PVH domU with netfront, all on one dom0 bridge and driven by the dom0 agent with the
//! same network client the QEMU host uses: ping, echoes of every size that must come back
//! byte for byte (never retried), request-response, bulk, and a flood that must leave the
//! netfront's live-grant count where it started. The same netfront runs in pvh and in
//! classic PV (whose grant entries name machine frames), each passing the same exact
//! echoes; the PV guest's flood checks its live grants too.
//!
//! The emulated NIC's interrupt path is measured too (issue 13): hybrid with qemu-xen's
//! virtio-net and its MSI over a PIRQ and an event channel (no MSI-X table write, no EOI
//! per packet), the same without `XENFEAT_hvm_pirqs` (`hvm_pirqs=off`: LAPIC MSI, and the
//! log says why), and hvm with and without `msimask=on` (the MSI-X table written around
//! every interrupt, or never). MSI-X table writes are the NPF exits inside the table the
//! driver logs; a `load` phase (datagrams at a low fixed rate) counts per interrupt.
//!
//! A vif taken away is survived twice: mid-init (the handshake fails and every page comes
//! back) and while the guest serves, in hybrid, PVH and classic PV (`xl network-detach`:
//! the netfront answers the xenbus close protocol before libxl's timeout, gives its pages
//! back, and the boot ends with `NET down` and `DONE`).

use harness::netbench::{NetReport, Server};
use harness::paths;
use harness::xen::cost::ExitCost;
use harness::xen::guests::{net_plan, Guest, Variant};
use harness::xen::plan::{Action, LineMatch};
use harness::xen::results::Outcome;
use harness::xen::run::{run_guests, GuestRun, RunEnd};
use harness::xentrace::{Phase, SVM_EXIT_IOIO, SVM_EXIT_MSR, SVM_EXIT_NPF, SVM_EXIT_VMMCALL};
use proto::cmdline::{BenchSet, Fault, PirqFeature};
use std::sync::OnceLock;

/// Datagrams of the flood through the netfront (100,000 packets, with margin for
/// datagrams the guest may drop).
const FLOOD: u64 = 110_000;
/// How far the kernel's own request-response figure may be from dom0's: both time the
/// same transactions (the kernel from the first request's arrival to the last one's,
/// dom0 from the first send to the last reply), so they differ by one transaction's
/// edges and the jitter of the two clocks' reads.
const RR_AGREEMENT: f64 = 0.15;
/// Datagrams per second of the first `load` phase that counts exits per interrupt: low
/// enough that every datagram is its own interrupt on the nested host.
const LOAD_RATE: u32 = 200;
/// The second `load` phase: the 2009 slides' ~12,000 NIC interrupts/s per vCPU (the nested
/// host delivers what it can of it).
const SLIDES_RATE: u32 = 12_000;
/// Round trips per request-response benchmark.
const RR: u32 = 300;
/// Bytes of each bulk transfer, into the guest (`tcp_stream`) and out of it (`tcp_maerts`).
const STREAM: u64 = 4 << 20;
/// A full-size TCP segment's payload on a 1500-byte MTU.
const MSS: u64 = 1460;

struct NetRun {
    hybrid: GuestRun,
    hvm: GuestRun,
    linux: GuestRun,
    detached: GuestRun,
    /// Hybrid, its vif detached while it serves.
    unplugged: GuestRun,
    /// Classic PV, its vif detached while it serves.
    pv_unplugged: GuestRun,
    /// PVH, its vif detached while it serves.
    pvh_unplugged: GuestRun,
    /// Hybrid, qemu-xen's virtio-net, MSI over a PIRQ, events on the per-vCPU vector with
    /// Viridian's APIC assist: the best hybrid.
    pirq: GuestRun,
    /// Hybrid, qemu-xen's virtio-net, `msi=pirq` but `hvm_pirqs=off`.
    no_pirqs: GuestRun,
    /// hvm with `msimask=on`.
    msimask: GuestRun,
    /// Classic PV's netfront, with the flood.
    pv: GuestRun,
    /// PVH's netfront.
    pvh: GuestRun,
}

/// [`Variant::HYBRID_PIRQ`] on a kernel told to behave as if Xen did not offer
/// `XENFEAT_hvm_pirqs` (`hvm_pirqs=off`): LAPIC MSI instead, and the log says why.
fn without_pirqs() -> Variant {
    let mut v = Variant::HYBRID_PIRQ;
    v.label = "hybrid-nopirq";
    v.opts.hvm_pirqs = PirqFeature::Off;
    v
}

/// The network plan, with one low-rate `load` phase whose trace counts per interrupt.
fn plan_with_load(flood: u64) -> harness::netbench::NetPlan {
    let mut p = net_plan(Server::Hykernel, RR, STREAM, flood);
    p.load_rates = vec![LOAD_RATE, SLIDES_RATE];
    p.load_seconds = 2;
    p
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

/// Pages a netfront lends: two rings, one page per transmit and per receive id.
const NETFRONT_PAGES: u64 = 2 + 256 + 256;

/// A guest (`v`, named `hy-<label>-unplug`, at 10.0.0.`host`) serving the network (no
/// benchmark, no driver in dom0) whose vif dom0 detaches as soon as it says it serves:
/// its netfront must answer the close protocol, give its pages back, and its network loop
/// must say `NET down` and let the boot end.
fn detached_while_serving(v: Variant, label: &str, host: u8) -> Guest {
    let mut g = Guest::kernel(v, BenchSet::NONE.with("net", true), "");
    g.plan.name = format!("hy-{label}-unplug");
    g.plan.overrides.push(format!("vif=[\"bridge=xenbr0,mac=00:16:3e:00:00:{host:02x},ip=10.0.0.{host}\"]"));
    g.plan.actions = vec![Action {
        on: LineMatch::Prefix("NET ready".into()),
        xl: vec![["network-detach", "{name}", "0"].iter().map(|a| a.to_string()).collect()],
    }];
    g
}

fn run() -> &'static NetRun {
    static RUN: OnceLock<Result<NetRun, String>> = OnceLock::new();
    let r = RUN.get_or_init(|| {
        let (rr, stream) = (RR, STREAM);
        let guests = [
            Guest::kernel_net(Variant::HYBRID, 2, net_plan(Server::Hykernel, rr, stream, FLOOD)),
            Guest::kernel_net(Variant::HVM, 3, plan_with_load(0)),
            Guest::linux_net(20, net_plan(Server::Linux, rr, stream, 0)),
            detached_mid_init(),
            detached_while_serving(Variant::HYBRID, "hybrid", 10),
            Guest::kernel_net(Variant::HYBRID_PIRQ_ASSIST, 5, plan_with_load(0)),
            Guest::kernel_net(without_pirqs(), 6, net_plan(Server::Hykernel, rr, stream, 0)),
            Guest::kernel_net(Variant::HVM_MSIMASK, 7, plan_with_load(0)),
            Guest::kernel_net(Variant::PV, 8, net_plan(Server::Hykernel, rr, stream, FLOOD)),
            Guest::kernel_net(Variant::PVH, 9, net_plan(Server::Hykernel, rr, stream, 0)),
            detached_while_serving(Variant::PV, "pv", 11),
            detached_while_serving(Variant::PVH, "pvh", 12),
        ];
        let work = paths::logs().join("xen-net-test");
        let [hybrid, hvm, linux, detached, unplugged, pirq, no_pirqs, msimask, pv, pvh, pv_unplugged, pvh_unplugged]: [GuestRun;
            12] =
            run_guests(&work, &paths::kernel(), &guests, 3600)
                .and_then(RunEnd::complete)
                .map_err(|e| e.to_string())?
                .try_into()
                .map_err(|_| "one result per guest".to_string())?;
        Ok(NetRun { hybrid, hvm, linux, detached, unplugged, pv_unplugged, pvh_unplugged, pirq, no_pirqs, msimask, pv, pvh })
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

/// Where the guest's virtio-net said its MSI-X table is: (address, bytes).
fn msix_table(g: &GuestRun) -> (u64, u64) {
    let line = g.lines.iter().find(|l| l.contains("virtio-net") && l.contains("MSI-X table at "));
    let line = line.unwrap_or_else(|| panic!("{}: no MSI-X table line: {:?}", g.name(), g.lines));
    let after = &line[line.find("MSI-X table at 0x").unwrap() + "MSI-X table at 0x".len()..];
    let address = u64::from_str_radix(after.split(',').next().unwrap(), 16).expect("hex address");
    let entries: u64 = after.split(", ").nth(1).and_then(|w| w.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    (address, entries * 16)
}

/// MSI-X table writes in phase `p`: its NPF exits inside the table (the driver never reads it).
fn table_writes(p: &Phase, (address, len): (u64, u64)) -> u64 {
    p.npf_gpas.range(address..address + len).map(|(_, &n)| n).sum()
}

/// The `load` phase of the datagrams sent at `rate`, with its exits printed for the record.
fn load_phase(g: &GuestRun, rate: u32) -> &Phase {
    let at = drive(g).load.iter().position(|l| l.rate == rate);
    let at = at.unwrap_or_else(|| panic!("{}: no load point at {rate}/s: {:?}", g.name(), drive(g).load));
    let p = *g.phases("load").get(at).unwrap_or_else(|| panic!("{}: no trace phase for load point {at}", g.name()));
    let cost = ExitCost::of(p).map_or("no interrupts".into(), |c| c.describe());
    eprintln!("{}: load at {rate}/s: {} interrupts, exits per interrupt {cost}", g.name(), p.iterations);
    assert!(!p.overlaps_lost(), "{}: load at {rate}/s overlaps lost trace records", g.name());
    assert!(p.iterations > 0, "{}: no interrupts at {rate}/s", g.name());
    p
}

/// The complete phase `name`, with its exits by reason printed for the record.
fn phase<'a>(g: &'a GuestRun, name: &str) -> &'a Phase {
    let p = g.phase(name).unwrap_or_else(|| panic!("{}: no trace phase {name}: {:?}", g.name(), g.trace_problem));
    let cost = ExitCost::of(p).map_or("no operations".into(), |c| c.describe());
    eprintln!("{}: {name}: {} operations, exits per operation {cost}", g.name(), p.iterations);
    p
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
    for g in [&run().hybrid, &run().hvm, &run().pirq] {
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
    let r = run();
    for g in [&r.hybrid, &r.hvm, &r.linux, &r.pirq, &r.no_pirqs, &r.msimask] {
        for name in ["udp_rr", "tcp_rr", "tcp_stream", "tcp_maerts"] {
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

/// `xl network-detach` of a guest that serves: netback goes Closed only once the front
/// end has, so the detach ends before libxl's timeout only if the netfront answered.
#[test]
fn a_back_end_detached_while_serving_is_closed_and_every_page_given_back() {
    let r = run();
    // Hybrid, classic PV and PVH: the same driver, its pages found and granted each mode's way.
    for g in [&r.unplugged, &r.pv_unplugged, &r.pvh_unplugged] {
        detached_while_serving_is_closed(g);
    }
}

fn detached_while_serving_is_closed(g: &GuestRun) {
    let a = g.last().expect("it ran");
    assert_eq!(a.outcome, Outcome::Finished, "{:?}", g.lines);
    assert_eq!(a.actions.len(), 1, "dom0 detached the vif once it served: {:?}", a.actions);
    let action = &a.actions[0];
    assert!(action.ends_with(": ok"), "{action}");
    // xl says ok even when libxl gave up waiting for netback (LIBXL_DESTROY_TIMEOUT, 10 s)
    // and removed the device by force; its time ("(6.6 s)") is printed, not bounded: the
    // hotplug script's share of it varies with the host's load. The guest's line below is
    // the evidence: netback went Closed (or libxl removed its node, which it does only once
    // netback is Closed or after 10 s) within the guest's bounded wait of 2 s after our
    // Closed, so no timeout forced it.
    // One line: "netfront: the back end went away (backend-closing, state <path>); front end
    // Closed, the back end Closed after N ms; R grants revoked, L pages leaked (still mapped
    // by the back end); event channel P closed; interface gone (K grants live)".
    let line = g.lines.iter().find(|l| l.contains("netfront: the back end went away"));
    let line = line.unwrap_or_else(|| panic!("no detach line: {:?}", g.lines));
    assert!(line.contains("(backend-closing,"), "libxl writes Closing first: {line}");
    // netback reached Closed (libxl removes its node only after that, and may already
    // have when the netfront looks).
    assert!(
        line.contains("front end Closed, the back end Closed after")
            || line.contains("front end Closed, the back end removed after"),
        "{line}"
    );
    let number_before = |word: &str| -> u64 {
        let i = line.find(word).unwrap_or_else(|| panic!("{word:?} in {line}"));
        line[..i].split(|c: char| !c.is_ascii_digit()).rfind(|w| !w.is_empty()).and_then(|n| n.parse().ok()).unwrap()
    };
    let (revoked, leaked, live) =
        (number_before(" grants revoked"), number_before(" pages leaked"), number_before(" grants live"));
    assert!(revoked > 0, "{line}");
    assert_eq!(revoked + leaked, NETFRONT_PAGES, "every page lent came back or was counted: {line}");
    assert_eq!(live, leaked, "a live grant that is not a leaked page: {line}");
    // The loop noticed, said so, and the boot went on.
    assert_eq!(g.summary.net_down.as_deref(), Some("backend-closing"), "{:?}", g.lines);
    assert!(g.summary.done && g.problem().is_none(), "{:?}", g.problem());
}

#[test]
fn no_guest_needed_a_retry_the_linux_peer_did_not() {
    let r = run();
    let ours = [
        &r.hybrid,
        &r.hvm,
        &r.detached,
        &r.unplugged,
        &r.pv_unplugged,
        &r.pvh_unplugged,
        &r.pirq,
        &r.no_pirqs,
        &r.msimask,
        &r.pv,
        &r.pvh,
    ];
    for g in ours {
        assert!(g.retries() <= r.linux.retries(), "{}: {:?}", g.name(), g.result.retry_reasons());
    }
    let total = ours.iter().map(|g| g.retries()).sum::<usize>() + r.linux.retries();
    assert!(total <= 1, "{total} retries in one run");
}

#[test]
fn hybrid_virtio_with_msi_over_a_pirq_serves_dom0_exactly() {
    let g = &run().pirq;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!(
        (m.get("mode"), m.get("nic"), m.get("irq"), m.get("msi")),
        ("hybrid", "virtio-net", "evtchn", "pirq"),
        "{:?}",
        g.lines
    );
    assert!(g.lines.iter().any(|l| l.contains("MSI over PIRQ ") && l.contains("event channel")), "{:?}", g.lines);
    assert!(!g.lines.iter().any(|l| l.contains("unplugged")), "the emulated NIC stays: {:?}", g.lines);
    let ready = g.summary.net_ready.as_deref().unwrap_or("");
    assert!(ready.starts_with("ip=10.0.0.5/24 "), "address from the command line: {ready}");
    check_exact(g);
}

#[test]
fn msi_over_a_pirq_costs_no_msix_table_write_and_no_eoi() {
    let g = &run().pirq;
    let table = msix_table(g);
    for name in ["udp_rr", "load"] {
        let p = phase(g, name);
        assert!(!p.overlaps_lost(), "{}: {name} overlaps lost trace records", g.name());
        assert_eq!(table_writes(p, table), 0, "{}: {name}: MSI-X table writes: {:?}", g.name(), p.npf_gpas);
        // The assist saves the EOI where Xen set it: on a delivery with nothing else in
        // service (one stray EOI write was seen in one run); at most 1 in 100.
        let eoi = p.eoi_exits() as f64 / p.iterations.max(1) as f64;
        assert!(eoi <= 0.01, "{}: {name}: {eoi:.3} EOI exits per op: {:?}", g.name(), p.msr_writes);
    }
    let load = &drive(g).load;
    assert!(load.first().is_some_and(|l| l.interrupts > 0), "{}: interrupts arrived: {load:?}", g.name());
}

#[test]
fn at_the_slides_rate_msi_over_a_pirq_removes_the_msix_writes_and_the_eoi() {
    // Under ~12,000 datagrams/s: hybrid's PIRQ MSI writes no MSI-X entry and no EOI;
    // hvm with the slides' masking writes the table around every interrupt; hvm's own
    // baseline ends each interrupt with a trapped EOI; and the PIRQ route on the assisted
    // per-vCPU vector takes, all exits counted, at least one exit per interrupt fewer than
    // the best plain HVM guest: its EOIs and windows (both pay the halt and the timer's
    // re-arm). On the global callback the PIRQ route pays the interrupt window instead of
    // the EOI: no gain (the load experiment shows it).
    let r = run();
    let (pirq, hvm, masked) =
        (load_phase(&r.pirq, SLIDES_RATE), load_phase(&r.hvm, SLIDES_RATE), load_phase(&r.msimask, SLIDES_RATE));
    assert_eq!(table_writes(pirq, msix_table(&r.pirq)), 0, "{}: MSI-X table writes", r.pirq.name());
    let pirq_eoi = pirq.eoi_exits_per_op().unwrap_or(f64::NAN);
    assert!(pirq_eoi <= 0.01, "{}: {pirq_eoi:.3} EOI exits per interrupt", r.pirq.name());
    let masked_writes = table_writes(masked, msix_table(&r.msimask)) as f64 / masked.iterations as f64;
    assert!((1.5..=2.5).contains(&masked_writes), "hvm-msimask: {masked_writes:.2} MSI-X table writes per interrupt");
    let hvm_eoi = hvm.eoi_exits_per_op().unwrap_or(f64::NAN);
    // One per NIC interrupt, and the timer's interrupts' (0.13 per NIC interrupt measured).
    assert!((0.95..=1.5).contains(&hvm_eoi), "hvm: {hvm_eoi:.2} EOI exits per interrupt");
    let total = |p: &Phase| ExitCost::of(p).map_or(f64::NAN, |c| c.total);
    let (t_pirq, t_hvm) = (total(pirq), total(hvm));
    let vintr = ExitCost::of(pirq).map_or(f64::NAN, |c| c.of_reason("VINTR"));
    assert!(vintr <= 0.02, "{}: {vintr:.2} VINTR exits per interrupt", r.pirq.name());
    // What the best hybrid saves is hvm's EOIs (the timer's interrupts' too) and its
    // interrupt windows; the halt and the timer's re-arm both pay alike.
    let hvm_window = ExitCost::of(hvm).map_or(f64::NAN, |c| c.of_reason("VINTR"));
    let (saved, expected) = (t_hvm - t_pirq, hvm_eoi + hvm_window);
    assert!(
        saved >= 0.85 && (saved - expected).abs() <= 0.15,
        "exits per interrupt: hybrid-pirq-assist {t_pirq:.2} against hvm {t_hvm:.2}: {saved:.2} saved, \
         hvm's EOI + VINTR {expected:.2}"
    );
    eprintln!(
        "at {SLIDES_RATE}/s hybrid-pirq-assist removes {:.0} % of hvm's exits per interrupt",
        100.0 * (1.0 - t_pirq / t_hvm)
    );
}

#[test]
fn without_hvm_pirqs_the_kernel_says_why_and_runs_on_lapic_msi() {
    let g = &run().no_pirqs;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!((m.get("mode"), m.get("nic"), m.get("msi")), ("hybrid", "virtio-net", "lapic"), "{:?}", g.lines);
    // Its events need no EOI (global callback), its NIC's interrupts do: the report says both.
    assert!(matches!(m.get("eoi"), "none+x2apic-msr" | "none+lapic-mmio"), "eoi={}", m.get("eoi"));
    let why = g.lines.iter().find(|l| l.contains("msi: lapic") && l.contains("hvm_pirqs=off"));
    assert!(why.is_some_and(|l| l.contains("local APIC")), "the log says why: {:?}", g.lines);
    check_exact(g);
}

#[test]
fn hvm_with_msimask_writes_the_msix_table_around_every_interrupt() {
    let g = &run().msimask;
    let table = msix_table(g);
    let load = phase(g, "load");
    let per_irq = table_writes(load, table) as f64 / load.iterations.max(1) as f64;
    assert!(load.iterations > 0, "{}: no interrupts in the load phase", g.name());
    assert!((1.5..=2.5).contains(&per_irq), "{}: {per_irq:.2} MSI-X table writes per interrupt", g.name());
    assert!(table_writes(phase(g, "udp_rr"), table) > 0, "{}: udp_rr", g.name());
    check_exact(g);
}

#[test]
fn hvm_by_default_writes_no_msix_table_entry_per_packet() {
    let g = &run().hvm;
    let table = msix_table(g);
    for name in ["udp_rr", "load"] {
        let p = phase(g, name);
        assert_eq!(table_writes(p, table), 0, "{}: {name}: MSI-X table writes: {:?}", g.name(), p.npf_gpas);
    }
    assert!(phase(g, "load").eoi_exits() > 0, "hvm still ends each interrupt with a trapped EOI");
}

/// Issue 14: the netfront takes large segments in (`feature-sg`, `feature-gso-tcpv4`,
/// checksum offload), so the hybrid guest's bulk transfer (4 MiB, see `run`) arrives in
/// far fewer frames, its ACKs counted too, than it has MSS-sized segments.
#[test]
fn hybrid_netfront_takes_large_segments_in() {
    let g = &run().hybrid;
    let p = phase(g, "tcp_stream");
    let segments = (4u64 << 20) / 1448;
    assert!(p.iterations * 2 < segments, "{}: {} frames in and out for {segments} segments", g.name(), p.iterations);
    check_exact(g);
}

/// Issue 16: classic PV's netfront (xenstore from the start info, grant frames from
/// `GNTTABOP_setup_table`, entries naming machine frames) passes hybrid's exact echoes.
#[test]
fn pv_netfront_serves_dom0_exactly() {
    let g = &run().pv;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!((m.get("mode"), m.get("nic"), m.get("irq")), ("pv", "netfront", "evtchn"), "{:?}", g.lines);
    let ready = g.summary.net_ready.as_deref().unwrap_or("");
    assert!(ready.starts_with("ip=10.0.0.8/24 "), "address from xenstore: {ready}");
    let naming = g.lines.iter().find(|l| l.contains("grant table: ") && l.contains("entries name"));
    assert!(naming.is_some_and(|l| l.contains("machine frames")), "{:?}", g.lines);
    check_exact(g);
}

/// A PV guest's flood ends with its live grants where they started, like hybrid's; and
/// its packets cost hypercalls, never a VM exit.
#[test]
fn pv_netfront_keeps_its_grants_through_a_flood_and_takes_no_exits() {
    let g = &run().pv;
    let f = drive(g).flood.expect("the flood ran");
    assert!(f.rx >= 100_000, "the pv netfront received {} of {} flood datagrams", f.rx, f.sent);
    assert!(f.grants.0.is_some_and(|b| b > 0), "{f:?}");
    assert_eq!(f.grants.0, f.grants.1, "live grants before and after the flood");
    assert_eq!(f.bad, Some(0), "the back end sent nothing invalid");
    for name in ["udp_rr", "tcp_rr", "tcp_stream"] {
        let p = g.phase(name).unwrap_or_else(|| panic!("{}: no trace phase {name}: {:?}", g.name(), g.trace_problem));
        assert!(!p.overlaps_lost(), "{}: {name} overlaps lost trace records", g.name());
        assert_eq!(p.total_exits, 0, "{}: {name}: a PV guest takes no VM exits", g.name());
        let hc = p.hypercalls_per_op().unwrap_or(0.0);
        eprintln!("{}: {name}: {} packets, {hc:.2} hypercalls per packet {:?}", g.name(), p.iterations, p.hypercalls);
        assert!(hc > 0.0, "{}: {name}: its events and notifications are hypercalls", g.name());
    }
}

/// pvh's netfront, on the vif pvh.cfg now takes, passes the same exact echoes.
#[test]
fn pvh_netfront_serves_dom0_exactly() {
    let g = &run().pvh;
    let m = g.summary.mode.as_ref().expect("mode report");
    assert_eq!((m.get("mode"), m.get("nic"), m.get("irq")), ("pvh", "netfront", "evtchn"), "{:?}", g.lines);
    let ready = g.summary.net_ready.as_deref().unwrap_or("");
    assert!(ready.starts_with("ip=10.0.0.9/24 "), "address from xenstore: {ready}");
    check_exact(g);
}

/// `p`'s exits of the reasons `codes` per 1460 bytes of a `STREAM`-byte transfer.
fn per_mss(p: &Phase, codes: &[u32]) -> f64 {
    let exits: u64 = if codes.is_empty() { p.total_exits } else { codes.iter().map(|&c| p.exits_of(c)).sum() };
    exits as f64 / (STREAM / MSS) as f64
}

#[test]
fn tcp_maerts_carries_every_byte_out_of_every_guest() {
    let r = run();
    for g in [&r.hybrid, &r.hvm, &r.linux, &r.pirq, &r.no_pirqs, &r.msimask, &r.pv, &r.pvh] {
        let d = drive(g)
            .driven("tcp_maerts")
            .unwrap_or_else(|| panic!("{}: no tcp_maerts: {:?}", g.name(), drive(g).errors));
        // The client read exactly the planned bytes, each as the source's pattern has it.
        assert_eq!(d.bytes, Some(STREAM), "{}: {d:?}", g.name());
        assert!(d.host_value > 0.0, "{}: {d:?}", g.name());
        let own = d.kernel.as_ref().map(|k| (k.value, k.iterations));
        eprintln!("{}: tcp_maerts {:.0} Mbit/s at dom0, the kernel's own {own:?}", g.name(), d.host_value);
        if g.guest.variant().is_some() {
            // The kernel cannot have handed TCP fewer bytes than dom0 read.
            let (value, handed) = own.unwrap_or_else(|| panic!("{}: no figure of the kernel's own", g.name()));
            assert!(value > 0.0 && handed >= STREAM, "{}: {d:?}", g.name());
        }
    }
}

#[test]
fn tcp_maerts_costs_hybrid_netfront_few_exits_and_hvm_its_kicks() {
    let r = run();
    let hy = phase(&r.hybrid, "tcp_maerts");
    assert!(!hy.overlaps_lost(), "hybrid tcp_maerts overlaps lost trace records");
    let linux = phase(&r.linux, "tcp_maerts");
    eprintln!(
        "tcp_maerts exits per 1460 B: hybrid {:.4} (VMMCALL {:.4}), hvm {:.4}, linux {:.4}",
        per_mss(hy, &[]),
        per_mss(hy, &[SVM_EXIT_VMMCALL]),
        per_mss(phase(&r.hvm, "tcp_maerts"), &[]),
        per_mss(linux, &[]),
    );
    // netfront: requests go on the shared ring, and netback's event index asks for a
    // notification only when it is about to sleep, so one hypercall serves a batch.
    let total = per_mss(hy, &[]);
    assert!(total < 0.1, "hybrid tcp_maerts: {total:.4} exits per 1460 B: {}", ExitCost::of(hy).unwrap().describe());
    // No APIC on the path: events on the callback vector.
    assert_eq!(hy.exits_of(SVM_EXIT_MSR) + hy.exits_of(SVM_EXIT_NPF), 0, "hybrid MSR/NPF exits: {:?}", hy.exits);
    // virtio-net on qemu-xen: each transmit kick is a trapped write to the notify register.
    let hvm = phase(&r.hvm, "tcp_maerts");
    let kicks = hvm.exits_of(SVM_EXIT_NPF) + hvm.exits_of(SVM_EXIT_IOIO);
    assert!(kicks > 0, "hvm tcp_maerts: no NPF or IO exit: {:?}", hvm.exits);
}
