//! The guests the harness runs on the Xen host, as types: which kernel configuration
//! (a [`Variant`]), the Linux peer, and what each becomes in the agent's [`GuestPlan`].
//!
//! Command lines come from `proto::cmdline::Options` (rendered, never written by hand),
//! domain names from the variant's label, and every guest of ours is recognised by the
//! kernel's own `READY`/`DONE` lines.

use super::plan::{ConsoleKind, GuestNet, GuestPlan, LineMatch, TRACE_CLASS_PV};
use crate::netbench::{NetPlan, Server};
use proto::cmdline::{
    BenchSet, CallbackChoice, ClockChoice, Fault, Mode, MsiChoice, MsiMask, NetLever, NetLevers, NicChoice, Options,
    TimerChoice,
};
use std::net::Ipv4Addr;

/// A kernel configuration compared on the Xen host: a mode and its switches, and what
/// the domain's xl config must add for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Short label, unique in a run: the domain is `hy-<label>`.
    pub label: &'static str,
    /// Mode and switches (`bench=` is set per guest).
    pub opts: Options,
    /// xl config lines added to the mode's config for this variant only (`key=value`).
    pub xl: &'static [&'static str],
}

/// Viridian with its APIC assist (`tests/xen/hvm-viridian.cfg` says the same).
pub const XL_VIRIDIAN_ASSIST: &str = "viridian=[\"base\",\"apic_assist\"]";

impl Variant {
    const fn new(label: &'static str, mode: Mode) -> Variant {
        Variant {
            label,
            opts: Options {
                mode,
                bench: BenchSet::ALL,
                ip: None,
                apic: proto::cmdline::ApicChoice::Auto,
                timer: TimerChoice::Auto,
                clock: ClockChoice::Auto,
                eoi: proto::cmdline::EoiChoice::Auto,
                callback: None,
                nic: proto::cmdline::NicChoice::Auto,
                msi: proto::cmdline::MsiChoice::Auto,
                msimask: proto::cmdline::MsiMask::Off,
                hvm_pirqs: proto::cmdline::PirqFeature::Auto,
                irqmod_us: 0,
                net: NetLevers::DEFAULT,
                netwait_s: 120,
                fault: Fault::None,
            },
            xl: &[],
        }
    }

    /// Plain HVM.
    pub const HVM: Variant = Variant::new("hvm", Mode::Hvm);
    /// Hybrid with the global callback vector.
    pub const HYBRID: Variant = Variant::new("hybrid", Mode::Hybrid);
    /// Hybrid with the per-vCPU upcall vector.
    pub const HYBRID_PERCPU: Variant = {
        let mut v = Variant::new("hybrid-percpu", Mode::Hybrid);
        v.opts.callback = Some(CallbackChoice::PerCpu);
        v
    };
    /// Hybrid with the per-vCPU upcall vector and Viridian's APIC assist: events end
    /// without an EOI exit. Xen offers the assist only to a domain with Viridian on.
    pub const HYBRID_ASSIST: Variant = {
        let mut v = Variant::new("hybrid-assist", Mode::Hybrid);
        v.opts.callback = Some(CallbackChoice::PerCpuAssist);
        v.xl = &[XL_VIRIDIAN_ASSIST];
        v
    };
    /// Hybrid with the TSC clock and the LAPIC timer: the events alone.
    pub const HYBRID_MIXED: Variant = {
        let mut v = Variant::new("hybrid-mixed", Mode::Hybrid);
        v.opts.clock = ClockChoice::Tsc;
        v.opts.timer = TimerChoice::Lapic;
        v
    };
    /// PVH.
    pub const PVH: Variant = Variant::new("pvh", Mode::Pvh);
    /// Classic 64-bit PV (`tests/xen/pv.cfg`): no VM exits, page tables by hypercall.
    pub const PV: Variant = Variant::new("pv", Mode::Pv);
    /// Plain HVM whose virtio-net masks its MSI-X vector around every interrupt, the
    /// pattern the hybrid HVM slides measured (`msimask=on`), beside the default that
    /// suppresses interrupts in the queue.
    pub const HVM_MSIMASK: Variant = {
        let mut v = Variant::new("hvm-msimask", Mode::Hvm);
        v.opts.msimask = MsiMask::On;
        v
    };
    /// Plain HVM whose virtio-net holds its interrupt off for 250 µs after each one
    /// (`irqmod=250`): interrupt moderation, the other way a NIC driver sheds interrupts.
    pub const HVM_IRQMOD: Variant = {
        let mut v = Variant::new("hvm-irqmod", Mode::Hvm);
        v.opts.irqmod_us = 250;
        v
    };
    /// Hybrid keeping qemu-xen's virtio-net, its MSI through the local APIC (`msi=lapic`).
    pub const HYBRID_VIRTIO_LAPIC: Variant = Variant::hybrid_virtio("hybrid-virtio-lapic", MsiChoice::Lapic);
    /// Hybrid keeping qemu-xen's virtio-net, its MSI over a PIRQ and an event channel.
    pub const HYBRID_PIRQ: Variant = Variant::hybrid_virtio("hybrid-pirq", MsiChoice::Pirq);
    /// [`Variant::HYBRID_PIRQ`] on the per-vCPU upcall vector with Viridian's APIC assist.
    pub const HYBRID_PIRQ_ASSIST: Variant = {
        let mut v = Variant::hybrid_virtio("hybrid-pirq-assist", MsiChoice::Pirq);
        v.opts.callback = Some(CallbackChoice::PerCpuAssist);
        v.xl = &[XL_VIRIDIAN_ASSIST];
        v
    };

    /// Hybrid with one network lever of issue 14 flipped from its default (`net=no-LEVER`,
    /// or `net=lazy-timer` for the opt-in one).
    pub const fn hybrid_lever(label: &'static str, lever: NetLever) -> Variant {
        let mut v = Variant::new(label, Mode::Hybrid);
        v.opts.net = NetLevers::DEFAULT.with(lever, !lever.default_on());
        v
    }

    /// The network lever guests: hybrid with each lever of issue 14 flipped, one at a
    /// time, so the network table shows what each bought against [`Variant::HYBRID`].
    pub const LEVERS: [Variant; 5] = [
        Variant::hybrid_lever("hybrid-no-offload", NetLever::Offload),
        Variant::hybrid_lever("hybrid-no-batch", NetLever::Batch),
        Variant::hybrid_lever("hybrid-no-suppress", NetLever::Suppress),
        Variant::hybrid_lever("hybrid-no-wscale", NetLever::Wscale),
        Variant::hybrid_lever("hybrid-lazy-timer", NetLever::LazyTimer),
    ];

    /// Hybrid with qemu-xen's emulated virtio-net kept (`nic=virtio`) and its MSI as `msi`.
    pub const fn hybrid_virtio(label: &'static str, msi: MsiChoice) -> Variant {
        let mut v = Variant::new(label, Mode::Hybrid);
        v.opts.nic = NicChoice::Virtio;
        v.opts.msi = msi;
        v
    }

    /// The variants `--mode M` compares: `all` is hvm, hybrid (global callback), hybrid
    /// with the per-vCPU vector, without and with the APIC assist, pvh and pv. A comma
    /// list of single modes (`pv,pvh`) runs just those, in one boot of the host.
    pub fn for_mode(mode: &str) -> Option<Vec<Variant>> {
        if mode.contains(',') {
            let mut out: Vec<Variant> = Vec::new();
            for m in mode.split(',') {
                match Variant::for_mode(m)?.as_slice() {
                    [v] if !out.contains(v) => out.push(*v),
                    _ => return None, // `all` in a list, or a mode twice
                }
            }
            return Some(out);
        }
        Some(match mode {
            "hvm" => vec![Variant::HVM],
            "hybrid" => vec![Variant::HYBRID],
            "pvh" => vec![Variant::PVH],
            "pv" => vec![Variant::PV],
            "all" => vec![
                Variant::HVM,
                Variant::HYBRID,
                Variant::HYBRID_PERCPU,
                Variant::HYBRID_ASSIST,
                Variant::PVH,
                Variant::PV,
            ],
            _ => return None,
        })
    }

    /// The domain name.
    pub fn domain(&self) -> String {
        format!("hy-{}", self.label)
    }

    /// Whether Xen builds it as `type="hvm"` (an emulated PC: hvm and hybrid).
    pub fn hvm_type(&self) -> bool {
        matches!(self.opts.mode, Mode::Hvm | Mode::Hybrid)
    }

    /// The xl config the variant starts from.
    pub fn config(&self) -> &'static str {
        match self.opts.mode {
            Mode::Hvm | Mode::Hybrid => "hvm.cfg",
            Mode::Pv => "pv.cfg",
            _ => "pvh.cfg",
        }
    }
}

/// What the run is about a guest: ours (which variant) or the Linux peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// hykernel in a variant.
    Ours(Variant),
    /// Debian's Linux as a PVH domU.
    Linux,
}

/// One guest of a run: its role and its plan for the agent.
#[derive(Clone, Debug, PartialEq)]
pub struct Guest {
    /// Ours or the peer.
    pub role: Role,
    /// What the agent runs.
    pub plan: GuestPlan,
}

/// The network services of hykernel and the Linux peer listen after this line.
const KERNEL_SERVING: &str = "NET ready";
const PEER_SERVING: &str = "HY-DOMU: peer up";

impl Guest {
    /// hykernel as `variant`, running `bench`, with `raw` appended verbatim to its command
    /// line (for tests of bad options; normally empty).
    pub fn kernel(variant: Variant, bench: BenchSet, raw: &str) -> Guest {
        let opts = Options { bench, ..variant.opts };
        let cmdline = format!("{opts} {raw}").trim().to_string();
        let mut overrides = vec![format!("cmdline=\"{cmdline}\"")];
        // qemu-xen is qemu-system-i386, whose ELF loader refuses ELF64: HVM-type guests
        // get the ELF32 copy.
        if variant.hvm_type() {
            overrides.push("kernel=\"/mnt/hykernel32.elf\"".into());
        }
        overrides.extend(variant.xl.iter().map(|line| line.to_string()));
        Guest {
            role: Role::Ours(variant),
            plan: GuestPlan {
                name: variant.domain(),
                config: variant.config().into(),
                overrides,
                // hvm mode has only COM1; the Xen modes move to the PV console at once.
                console: if variant.opts.mode == Mode::Hvm { ConsoleKind::Serial } else { ConsoleKind::Pv },
                ready: LineMatch::Prefix("READY ".into()),
                done: LineMatch::Exact("DONE".into()),
                timeout_s: 600,
                net: None,
                actions: vec![],
                // A PV guest takes no VM exits: its cost is hypercalls, in the PV class.
                trace_classes: if variant.opts.mode == Mode::Pv { TRACE_CLASS_PV } else { 0 },
            },
        }
    }

    /// A guest expected to stop with its command-line error (the error is its done line).
    pub fn kernel_refusing(variant: Variant, bad_word: &str) -> Guest {
        let mut g = Guest::kernel(variant, BenchSet::NONE.with("cpuid", true), bad_word);
        g.plan.name = format!("hy-{}-badopt", variant.label);
        g.plan.done = LineMatch::Prefix("ERROR cmdline:".into());
        g.plan.timeout_s = 120;
        g
    }

    /// hykernel as `variant` serving the network at `10.0.0.<host>` until dom0's client
    /// sends `QUIT`. hvm mode, and hybrid with `nic=virtio`, get qemu-xen's emulated
    /// virtio-net (its address on the command line); the Xen modes otherwise the PV vif
    /// (address from xenstore).
    pub fn kernel_net(variant: Variant, host: u8, plan: NetPlan) -> Guest {
        let ip = Ipv4Addr::new(10, 0, 0, host);
        let mut v = variant;
        let emulated_nic = variant.opts.mode == Mode::Hvm
            || (variant.opts.mode == Mode::Hybrid && variant.opts.nic == NicChoice::Virtio);
        if emulated_nic {
            v.opts.ip = Some(proto::cmdline::Ipv4Cidr { addr: ip.octets(), prefix: 24 });
        }
        let mut g = Guest::kernel(v, BenchSet::NONE, "");
        g.plan.name = format!("hy-{}-net", variant.label);
        g.plan.timeout_s = 400;
        let model = if emulated_nic { ",model=virtio-net-pci" } else { "" };
        g.plan.overrides.push(format!("vif=[\"bridge=xenbr0,mac=00:16:3e:00:00:{host:02x},ip={ip}{model}\"]"));
        g.plan.net = Some(GuestNet { ip, serving: LineMatch::Prefix(KERNEL_SERVING.into()), plan });
        g
    }

    /// Debian's Linux as a PVH domU with a busybox userland: the boot-time peer.
    pub fn linux() -> Guest {
        Guest {
            role: Role::Linux,
            plan: GuestPlan {
                name: "linux-pvh".into(),
                config: "linux-pvh.cfg".into(),
                overrides: vec![],
                console: ConsoleKind::Pv,
                ready: LineMatch::Prefix("HY-DOMU: Linux up".into()),
                done: LineMatch::Prefix("HY-DOMU: Linux up".into()),
                timeout_s: 300,
                net: None,
                actions: vec![],
                trace_classes: 0,
            },
        }
    }

    /// The Linux peer with netfront, serving the same services (`peer/hyecho.c`) at
    /// `10.0.0.<host>`, driven by the same client.
    pub fn linux_net(host: u8, plan: NetPlan) -> Guest {
        let ip = Ipv4Addr::new(10, 0, 0, host);
        let mut g = Guest::linux();
        g.plan.name = "linux-net".into();
        g.plan.overrides = vec![
            format!("vif=[\"bridge=xenbr0,mac=00:16:3e:00:00:{host:02x},ip={ip}\"]"),
            "ramdisk=\"/mnt/domu/initrd-peer.cpio.gz\"".into(),
            format!("cmdline=\"console=hvc0 quiet hy.ip={ip}/24\""),
        ];
        g.plan.ready = LineMatch::Prefix(PEER_SERVING.into());
        g.plan.done = LineMatch::Prefix("HY-DOMU: hyecho exited".into());
        g.plan.net = Some(GuestNet { ip, serving: LineMatch::Prefix(PEER_SERVING.into()), plan });
        g
    }

    /// The variant, for a guest of ours.
    pub fn variant(&self) -> Option<Variant> {
        match self.role {
            Role::Ours(v) => Some(v),
            Role::Linux => None,
        }
    }

    /// Whether it needs the Linux peer's files on the payload disk.
    pub fn needs_linux(&self) -> bool {
        self.role == Role::Linux
    }

    /// Whether it needs the peer's network initramfs.
    pub fn needs_peer_initrd(&self) -> bool {
        self.role == Role::Linux && self.plan.net.is_some()
    }
}

/// The drive dom0 gives a guest's network: everything, with `rr` round trips, a
/// `stream_bytes` transfer and a `flood` of that many datagrams.
pub fn net_plan(server: Server, rr: u32, stream_bytes: u64, flood: u64) -> NetPlan {
    NetPlan { server, ping: 5, echo: true, rr, stream_bytes, flood, load_rates: vec![], load_seconds: 0 }
}

/// The drive of a lever guest: ping and the driven benchmarks only (no echo check of
/// every size, no flood), to keep a run with every lever short.
pub fn lever_plan(rr: u32, stream_bytes: u64) -> NetPlan {
    NetPlan { echo: false, ..net_plan(Server::Hykernel, rr, stream_bytes, 0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::cmdline::Choice;

    #[test]
    fn kernel_guests() {
        let g = Guest::kernel(Variant::HVM, BenchSet::NONE.with("cpuid", true).with("interrupt", true), "");
        assert_eq!(g.plan.name, "hy-hvm");
        assert_eq!(g.plan.config, "hvm.cfg");
        assert_eq!(g.plan.console, ConsoleKind::Serial);
        assert_eq!(g.plan.overrides, ["cmdline=\"mode=hvm bench=cpuid,interrupt\"", "kernel=\"/mnt/hykernel32.elf\""]);
        let p = Guest::kernel(Variant::HYBRID_PERCPU, BenchSet::ALL, "");
        assert_eq!((p.plan.name.as_str(), p.plan.console), ("hy-hybrid-percpu", ConsoleKind::Pv));
        assert!(p.plan.overrides[0].contains("mode=hybrid bench=all callback=percpu"));
        assert_eq!(Guest::kernel(Variant::PVH, BenchSet::ALL, "").plan.config, "pvh.cfg");
        assert_eq!(Guest::kernel(Variant::PV, BenchSet::ALL, "").plan.config, "pv.cfg");
        let bad = Guest::kernel_refusing(Variant::PVH, "colour=blue");
        assert!(bad.plan.overrides[0].ends_with("bench=cpuid colour=blue\""), "{:?}", bad.plan.overrides);
        assert!(bad.plan.done.matches("ERROR cmdline: unknown option 'colour=blue'"));
        assert_eq!(Variant::for_mode("all").unwrap().len(), 6);
        let a = Guest::kernel(Variant::HYBRID_ASSIST, BenchSet::ALL, "");
        assert!(a.plan.overrides[0].contains("callback=percpu-assist"), "{:?}", a.plan.overrides);
        assert_eq!(a.plan.overrides.last().map(String::as_str), Some("viridian=[\"base\",\"apic_assist\"]"));
        assert!(!p.plan.overrides.iter().any(|o| o.starts_with("viridian")), "Viridian for hybrid-assist only");
        assert_eq!(Variant::for_mode("pv"), Some(vec![Variant::PV]));
        assert!(Variant::for_mode("pv-on-hvm").is_none());
        assert_eq!(Variant::for_mode("pv,pvh"), Some(vec![Variant::PV, Variant::PVH]));
        for bad in ["pv,all", "pv,pv", "pv,", "pv,kvm"] {
            assert!(Variant::for_mode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_shipped_viridian_config_asks_for_what_the_variant_does() {
        let cfg = std::fs::read_to_string(crate::paths::workspace().join("tests/xen/hvm-viridian.cfg")).unwrap();
        let line = cfg.lines().find(|l| l.starts_with("viridian")).expect("a viridian line");
        let squeezed: String = line.split('#').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(squeezed, XL_VIRIDIAN_ASSIST);
        assert!(cfg.lines().any(|l| l.starts_with("type = \"hvm\"")), "Viridian is for HVM guests");
    }

    #[test]
    fn network_guests() {
        let plan = net_plan(Server::Hykernel, 300, 1 << 20, 0);
        let hvm = Guest::kernel_net(Variant::HVM, 3, plan.clone());
        assert!(hvm.plan.overrides[0].contains("mode=hvm bench=none ip=10.0.0.3/24"), "{:?}", hvm.plan.overrides);
        assert!(hvm.plan.overrides.iter().any(|o| o.contains("model=virtio-net-pci")));
        let hy = Guest::kernel_net(Variant::HYBRID, 2, plan.clone());
        assert!(!hy.plan.overrides[0].contains("ip="), "the PV vif's address comes from xenstore");
        assert!(!hy.plan.overrides.iter().any(|o| o.contains("model=")));
        let mut v = Variant::HYBRID;
        v.opts.nic = proto::cmdline::NicChoice::Virtio;
        let hv = Guest::kernel_net(v, 5, plan);
        assert!(hv.plan.overrides[0].contains("mode=hybrid bench=none ip=10.0.0.5/24 nic=virtio"), "{:?}", hv.plan);
        assert!(hv.plan.overrides.iter().any(|o| o.contains("model=virtio-net-pci")));
        assert_eq!(hy.plan.net.as_ref().unwrap().ip, Ipv4Addr::new(10, 0, 0, 2));
        // pv and pvh: netfront on a plain vif like hybrid's, in their own configs; pv's
        // trace counts its hypercalls.
        for (v, cfg) in [(Variant::PV, "pv.cfg"), (Variant::PVH, "pvh.cfg")] {
            let g = Guest::kernel_net(v, 8, net_plan(Server::Hykernel, 300, 1 << 20, 0));
            assert_eq!(g.plan.config, cfg);
            assert!(!g.plan.overrides[0].contains("ip="), "the PV vif's address comes from xenstore: {:?}", g.plan);
            assert_eq!(
                g.plan.overrides.last().map(String::as_str),
                Some("vif=[\"bridge=xenbr0,mac=00:16:3e:00:00:08,ip=10.0.0.8\"]")
            );
            assert_eq!(g.plan.trace_classes != 0, v.opts.mode == Mode::Pv, "{:?}", g.plan);
        }
        let l = Guest::linux_net(20, net_plan(Server::Linux, 300, 1 << 20, 0));
        assert!(l.needs_peer_initrd() && l.needs_linux() && l.variant().is_none());
    }

    #[test]
    fn lever_guests_flip_one_lever_each() {
        let lines: Vec<String> = Variant::LEVERS
            .iter()
            .map(|v| Guest::kernel_net(*v, 40, lever_plan(100, 1 << 20)).plan.overrides[0].clone())
            .collect();
        assert_eq!(
            lines,
            [
                "cmdline=\"mode=hybrid bench=none net=no-offload\"",
                "cmdline=\"mode=hybrid bench=none net=no-batch\"",
                "cmdline=\"mode=hybrid bench=none net=no-suppress\"",
                "cmdline=\"mode=hybrid bench=none net=no-wscale\"",
                "cmdline=\"mode=hybrid bench=none net=lazy-timer\"",
            ]
        );
        let hy = Guest::kernel_net(Variant::HYBRID, 2, net_plan(Server::Hykernel, 100, 1 << 20, 0));
        assert!(!hy.plan.overrides[0].contains("net="), "every lever on is the default: {:?}", hy.plan.overrides);
        let plan = lever_plan(100, 1 << 20);
        assert!(!plan.echo && plan.flood == 0 && plan.ping > 0 && plan.rr == 100 && plan.stream_bytes == 1 << 20);
        let labels: std::collections::BTreeSet<&str> = Variant::LEVERS.iter().map(|v| v.label).collect();
        assert_eq!(labels.len(), Variant::LEVERS.len(), "labels unique");
        for v in Variant::LEVERS {
            assert_eq!(v.label, format!("hybrid-{}", v.opts.net), "the label names the lever flipped");
        }
        let flipped: Vec<NetLever> = Variant::LEVERS
            .iter()
            .flat_map(|v| NetLever::TABLE.iter().map(|&(_, l)| l).filter(|&l| v.opts.net.on(l) != l.default_on()))
            .collect();
        let every: Vec<NetLever> = NetLever::TABLE.iter().map(|&(_, l)| l).collect();
        assert_eq!(flipped, every, "each lever flipped once, alone, in lever order");
    }
}
