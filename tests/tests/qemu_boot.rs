//! Integration tests: boot the real kernel image under QEMU TCG and check what it does.
//!
//! They need the kernel built first (`tests/check.sh` does it) and run one VM at a time
//! (the harness serialises on a lock file). As root they use a tap device, so ping works
//! too; otherwise QEMU's user-mode network.

use harness::console::BootSummary;
use harness::hostnet::HostNet;
use harness::netbench;
use harness::qemu::{EmulatorLock, Exit, Qemu, QemuConfig};
use harness::session::{self, SessionConfig};
use harness::{elf, paths};
use std::time::Duration;

fn kernel() -> std::path::PathBuf {
    let k = paths::kernel();
    assert!(k.exists(), "kernel image {} missing: run tests/check.sh (it builds the kernel first)", k.display());
    k
}

/// Boots with `append` on the standard machine and waits for the end.
fn boot(append: &str, name: &str) -> (BootSummary, Exit) {
    let cfg = QemuConfig::standard(&kernel(), append, name);
    let mut vm = Qemu::start(&cfg, EmulatorLock::acquire().unwrap()).unwrap();
    let exit = vm.wait_exit(Duration::from_secs(120)).unwrap();
    (vm.summary(), exit)
}

#[test]
fn image_carries_the_pvh_note() {
    let image = std::fs::read(kernel()).unwrap();
    let notes = elf::notes(&image).unwrap();
    let pvh = notes.iter().find(|n| n.name == "Xen" && n.kind == 18).expect("XEN_ELFNOTE_PHYS32_ENTRY note");
    let entry = u64::from_le_bytes(image[0x18..0x20].try_into().unwrap());
    let mut desc = [0u8; 8];
    desc[..pvh.desc.len().min(8)].copy_from_slice(&pvh.desc[..pvh.desc.len().min(8)]);
    assert_eq!(u64::from_le_bytes(desc), entry, "the PVH entry is the ELF entry point");
    let lowest = elf::segments(&image).unwrap().iter().filter(|s| s.kind == elf::PT_LOAD).map(|s| s.paddr).min();
    assert_eq!(lowest, Some(0x40_0000), "linked at 4 MiB, above hvmloader");
}

#[test]
fn boots_with_qemu_kernel_alone() {
    // What a user types: QEMU's default machine and CPU (qemu64: xAPIC, no x2APIC).
    let cfg = QemuConfig::bare(&kernel(), "bench=clock", "bare");
    let mut vm = Qemu::start(&cfg, EmulatorLock::acquire().unwrap()).unwrap();
    let exit = vm.wait_exit(Duration::from_secs(120)).unwrap();
    let s = vm.summary();
    let mode = s.mode.as_ref().expect("mode report");
    assert_eq!((mode.get("hypervisor"), mode.get("mode"), mode.get("nic")), ("none", "hvm", "none"));
    assert_eq!(mode.get("irq"), "xapic");
    assert!(s.bench("clock_read").is_some_and(|b| b.value > 0.0));
    assert!(s.done, "no DONE in {}", vm.log_path().display());
    assert_eq!(exit, Exit::PoweredOff, "ACPI power-off ends plain QEMU with status 0");
}

#[test]
fn bogus_mode_fails_cleanly() {
    let (s, exit) = boot("mode=bogus", "bogus-mode");
    assert_eq!(exit, Exit::Failure);
    assert_eq!(s.errors, ["cmdline: invalid value 'bogus' for mode= (accepted: auto, hvm, hybrid, pvh, pv)"]);
    assert!(s.panics.is_empty() && s.mode.is_none() && !s.done);
}

#[test]
fn unknown_option_fails_cleanly() {
    let (s, exit) = boot("bench=clock colour=blue", "bogus-option");
    assert_eq!(exit, Exit::Failure);
    assert_eq!(s.errors.len(), 1);
    assert!(
        s.errors[0].contains("unknown option 'colour=blue'") && s.errors[0].contains("mode, bench, ip"),
        "{:?}",
        s.errors
    );
    assert!(s.panics.is_empty() && s.benches.is_empty());
}

#[test]
fn xen_modes_need_xen() {
    let (s, exit) = boot("mode=hybrid", "hybrid-on-qemu");
    assert_eq!(exit, Exit::Failure);
    assert_eq!(s.errors, ["mode: mode=hybrid needs Xen, and this is not a Xen guest"]);
}

#[test]
fn switches_change_the_mode_report() {
    let (s, exit) = boot("apic=xapic timer=lapic-oneshot bench=interrupt,timer", "switches");
    assert_eq!(exit, Exit::Success, "{:?}", s.errors);
    let m = s.mode.as_ref().expect("mode report");
    assert_eq!((m.get("irq"), m.get("eoi"), m.get("timer")), ("xapic", "lapic-mmio", "lapic-oneshot"));
    for name in ["interrupt", "timer_arm_to_fire", "timer_lateness"] {
        assert!(s.bench(name).is_some_and(|b| b.value > 0.0 && b.iterations > 0), "{name}");
    }
    assert!(s.errors.is_empty(), "a timer expiry ran early: {:?}", s.errors);
}

/// Every benchmark of the suite, with the unit it must carry.
const EXPECTED: [(&str, &str); 20] = [
    ("cpuid", "ns"),
    ("clock_read", "ns"),
    ("interrupt", "ns"),
    ("interrupt_raise", "ns"),
    ("timer_arm_to_fire", "ns"),
    ("timer_lateness", "ns"),
    ("mem_lat_4k", "ns"),
    ("mem_lat_16k", "ns"),
    ("mem_lat_64k", "ns"),
    ("mem_lat_256k", "ns"),
    ("mem_lat_1m", "ns"),
    ("mem_lat_4m", "ns"),
    ("mem_lat_16m", "ns"),
    ("mem_lat_64m", "ns"),
    ("mem_bw_read", "MB/s"),
    ("mem_bw_write", "MB/s"),
    ("mem_bw_copy", "MB/s"),
    ("udp_rr", "ns"),
    ("tcp_rr", "ns"),
    ("tcp_stream", "Mbit/s"),
];

#[test]
fn full_run_reports_every_benchmark() {
    let cfg = SessionConfig {
        kernel: kernel(),
        mode: "auto".into(),
        bench: "all".into(),
        name: "full-run".into(),
        rr_count: 500,
        stream_bytes: 4 << 20,
    };
    let r = session::run(&cfg).unwrap();
    let s = &r.summary;
    let m = s.mode.as_ref().expect("mode report");
    assert_eq!((m.get("hypervisor"), m.get("mode"), m.get("nic")), ("none", "hvm", "virtio-net"));
    assert!(
        s.malformed.is_empty() && s.errors.is_empty() && s.panics.is_empty(),
        "malformed {:?} errors {:?} panics {:?}",
        s.malformed,
        s.errors,
        s.panics
    );
    // Only the Xen benchmarks stand aside on QEMU, each saying why.
    assert_eq!(s.skips, ["null_hypercall reason=not-xen", "evtchn_rr reason=no-event-channels (mode hvm)"]);
    for (name, unit) in EXPECTED {
        let b = s.bench(name).unwrap_or_else(|| panic!("no BENCH line for {name}; log {}", r.log.display()));
        assert_eq!(b.unit, unit, "{name}");
        assert_eq!(b.mode, "hvm", "{name}");
        assert!(b.value > 0.0 && b.value.is_finite(), "{name} = {}", b.value);
        assert!(b.iterations > 0, "{name}");
    }
    assert_eq!(s.benches.len(), EXPECTED.len(), "unexpected extra results");
    assert_eq!(r.driven.len(), 3);
    assert!(r.driven.iter().all(|d| d.host_value > 0.0));
    assert_eq!(s.bench("tcp_stream").map(|b| b.iterations), Some(4 << 20), "every byte sent was counted");
    assert!(s.done);
    assert_eq!(r.exit, Exit::Success);
}

/// Deterministic, position-dependent bytes, so reordering or loss shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_right(seed as u32 % 32) as u8 ^ seed).collect()
}

#[test]
fn echo_services_return_exactly_what_was_sent() {
    let lock = EmulatorLock::acquire().unwrap();
    let net = HostNet::setup().unwrap();
    let mut cfg = QemuConfig::standard(&kernel(), &format!("bench=none {}", net.guest_cmdline()), "echo");
    cfg.extra = net.qemu_args();
    let mut vm = Qemu::start(&cfg, lock).unwrap();
    vm.wait_for("network ready", Duration::from_secs(120), |l| l.starts_with("NET ready")).unwrap();
    let t = Duration::from_secs(10);

    for (i, size) in [1usize, 2, 64, 512, 1400, 1472].into_iter().enumerate() {
        let sent = pattern(size, i as u8);
        let got = netbench::udp_echo(net.udp_echo(), &sent, t).unwrap_or_else(|e| panic!("udp {size}: {e}"));
        assert_eq!(got, sent, "UDP echo of {size} bytes");
    }
    for (i, size) in [1usize, 7, 1460, 4096, 16384, 65536].into_iter().enumerate() {
        let sent = pattern(size, 100 + i as u8);
        let got = netbench::tcp_echo(net.tcp_echo(), &sent, t).unwrap_or_else(|e| panic!("tcp {size}: {e}"));
        assert_eq!(got.len(), sent.len(), "TCP echo of {size} bytes: length");
        assert!(got == sent, "TCP echo of {size} bytes: content differs");
    }
    if let Some(ip) = net.guest_ip() {
        let p = netbench::ping(ip, 5).unwrap();
        assert_eq!((p.sent, p.received), (5, 5), "ICMP echo");
    } else {
        eprintln!("note: QEMU user networking carries no ICMP; ping not checked (run as root for a tap device)");
    }
    let mut ctl = netbench::Control::connect(net.control(), t).unwrap();
    assert!(ctl.command("HELLO").unwrap().starts_with("ERR unknown command 'HELLO'"));
    let stats = ctl.command("STATS").unwrap();
    assert!(stats.starts_with("STATS rx="), "{stats}");
    assert_eq!(ctl.command("QUIT").unwrap(), "BYE");
    assert_eq!(vm.wait_exit(Duration::from_secs(30)).unwrap(), Exit::Success);
    let s = vm.summary();
    assert!(s.done && s.errors.is_empty() && s.panics.is_empty() && s.benches.is_empty());
}
