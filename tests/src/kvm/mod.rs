//! The KVM test host from the harness: the Xen host's cached image booted without Xen
//! (`tests/xen/run-host.sh --no-xen`), whose L1 runs our kernel as an L2 KVM guest for
//! each [`KvmGuest`] (`tests/kvm/payload/run.sh`) while its tracefs records KVM's events.
//! [`run_guests`] returns a [`KvmRun`] per guest: its console read by
//! [`BootSummary`](crate::console::BootSummary) and its trace cut into phases by
//! [`crate::kvmtrace`]. A guest with a [`GuestNet`] gets virtio-net on a tap bridged in L1
//! (10.0.0.1/24), and the agent (`hy-agent drive`) runs the Xen host's network client
//! against it there; the Linux peer ([`KvmGuest::linux_net`]) is Debian's kernel with the
//! Xen peer's initramfs (`tests/xen/peer/`) and virtio-net's modules.

mod host;

pub use host::{boot, make_payload, read_run, run_guests};

use crate::console::BootSummary;
use crate::kvmtrace::{KvmTrace, TraceError};
use crate::netbench::{NetPlan, NetReport};
use crate::xen::plan::{GuestNet, LineMatch};
use proto::cmdline::{BenchSet, ClockChoice, EoiChoice, Ipv4Cidr, Mode, Options};
use std::net::Ipv4Addr;

/// Which kernel an L2 guest boots.
#[derive(Clone, Debug, PartialEq)]
pub enum GuestKind {
    /// hykernel with its options.
    Hykernel,
    /// Debian's Linux (the image's kernel) with the peer's initramfs and this command line.
    Linux(String),
}

/// One L2 guest: a name (its result files' stem) and the kernel's command line.
#[derive(Clone, Debug, PartialEq)]
pub struct KvmGuest {
    /// Name, `[a-z0-9-]+`.
    pub name: String,
    /// Which kernel.
    pub kind: GuestKind,
    /// The kernel's options (hykernel).
    pub opts: Options,
    /// Seconds L1 gives the guest before it is stopped.
    pub timeout_s: u32,
    /// Its network and how the agent drives it in L1, if it serves one.
    pub net: Option<GuestNet>,
}

/// The line after which hykernel's network services listen.
const KERNEL_SERVING: &str = "NET ready";
/// The line after which the Linux peer's services listen (`tests/xen/peer/init`).
const PEER_SERVING: &str = "HY-DOMU: peer up";

impl KvmGuest {
    /// Our kernel as `label` with `opts`, running `bench`.
    pub fn kernel(label: &str, opts: Options, bench: BenchSet) -> KvmGuest {
        KvmGuest {
            name: format!("hy-kvm-{label}"),
            kind: GuestKind::Hykernel,
            opts: Options { bench, ..opts },
            timeout_s: 240,
            net: None,
        }
    }

    /// Our kernel as `label` serving the network at `10.0.0.<host>` (virtio-net) until the
    /// agent's `QUIT`; `round` tells interleaved rounds apart (`hy-kvm-<label>-net<round>`).
    pub fn kernel_net(label: &str, opts: Options, host: u8, round: u32, plan: NetPlan) -> KvmGuest {
        let ip = Ipv4Addr::new(10, 0, 0, host);
        let opts = Options { ip: Some(Ipv4Cidr { addr: ip.octets(), prefix: 24 }), ..opts };
        let mut g = KvmGuest::kernel(label, opts, BenchSet::NONE);
        g.name = format!("hy-kvm-{label}-net{round}");
        g.timeout_s = 400;
        g.net = Some(GuestNet { ip, serving: LineMatch::Prefix(KERNEL_SERVING.into()), plan });
        g
    }

    /// The Linux peer serving the same services (`tests/xen/peer/hyecho.c`) at
    /// `10.0.0.<host>`, driven by the same client (`linux-kvm-net<round>`).
    pub fn linux_net(host: u8, round: u32, plan: NetPlan) -> KvmGuest {
        let ip = Ipv4Addr::new(10, 0, 0, host);
        KvmGuest {
            name: format!("linux-kvm-net{round}"),
            kind: GuestKind::Linux(format!("console=ttyS0 quiet hy.ip={ip}/24")),
            opts: Options::default(),
            timeout_s: 400,
            net: Some(GuestNet { ip, serving: LineMatch::Prefix(PEER_SERVING.into()), plan }),
        }
    }

    /// Its line of `guests.txt`: name, timeout, kind, MAC (`-` without a NIC), command line.
    pub fn line(&self) -> String {
        let mac = self.net.as_ref().map_or("-".to_string(), |n| format!("52:54:00:00:00:{:02x}", n.ip.octets()[3]));
        match &self.kind {
            GuestKind::Hykernel => format!("{} {} hykernel {mac} {}", self.name, self.timeout_s, self.opts),
            GuestKind::Linux(cmdline) => format!("{} {} linux {mac} {cmdline}", self.name, self.timeout_s),
        }
    }

    /// The kind's label in tables: the variant (`hvm`, `hybrid`, ...) or `linux`, without
    /// the round or the load experiment's suffix.
    pub fn label(&self) -> String {
        match self.kind {
            GuestKind::Linux(_) => "linux".into(),
            GuestKind::Hykernel => {
                let l = self.name.trim_start_matches("hy-kvm-");
                let l = l.strip_suffix("-load").unwrap_or(l);
                l.rsplit_once("-net").filter(|(_, r)| r.parse::<u32>().is_ok()).map_or(l, |(v, _)| v).to_string()
            }
        }
    }
}

/// The variants of the KVM host, by label: `hvm` (the emulated PC, LAPIC EOI, TSC),
/// `hybrid` (kvmclock + PV EOI), `hybrid-lapic-eoi` (hybrid with the EOI write back).
pub fn variants(mode: &str) -> Result<Vec<(&'static str, Options)>, String> {
    let hvm = ("hvm", Options { mode: Mode::Hvm, ..Options::default() });
    let hybrid = ("hybrid", Options { mode: Mode::Hybrid, ..Options::default() });
    let lapic_eoi = (
        "hybrid-lapic-eoi",
        Options { mode: Mode::Hybrid, clock: ClockChoice::Kvmclock, eoi: EoiChoice::Lapic, ..Options::default() },
    );
    Ok(match mode {
        "hvm" => vec![hvm],
        "hybrid" => vec![hybrid],
        "all" => vec![hvm, hybrid, lapic_eoi],
        m => return Err(format!("--mode {m}: the KVM host runs hvm, hybrid or all")),
    })
}

/// What one guest left.
#[derive(Debug)]
pub struct KvmRun {
    /// The guest.
    pub guest: KvmGuest,
    /// QEMU's exit status in L1 (`isa-debug-exit`: 1 success, 3 failure; 124 timed out),
    /// `None` if L1 never ran it.
    pub exit: Option<i32>,
    /// Its COM1 console.
    pub console: BootSummary,
    /// Its trace, in phases.
    pub trace: Result<KvmTrace, TraceError>,
    /// The agent's drive of its network, if it serves one and the agent wrote a report.
    pub net: Option<NetReport>,
    /// The boot of the host (1 the first) these results come from.
    pub boot: u32,
    /// Every earlier boot that froze before this guest ended, and how it was cut: shown
    /// with its results, never hidden.
    pub frozen: Vec<String>,
}

impl KvmRun {
    /// A guest that no boot allowed ended: no results, only the boots that froze.
    pub fn lost(guest: &KvmGuest, frozen: Vec<String>) -> KvmRun {
        KvmRun {
            guest: guest.clone(),
            exit: None,
            console: BootSummary::from_lines::<&str>(&[]),
            trace: Err(TraceError::Empty),
            net: None,
            boot: frozen.len() as u32,
            frozen,
        }
    }

    /// Why this guest's results cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let name = &self.guest.name;
        let linux = matches!(self.guest.kind, GuestKind::Linux(_));
        match self.exit {
            None if !self.frozen.is_empty() => {
                return Some(format!("{name}: lost: the host froze in every boot allowed ({})", self.frozen.join("; ")))
            }
            None => return Some(format!("{name}: L1 never ran it (no {name}.exit)")),
            Some(1) if !linux => {}
            Some(0) if linux => {}
            Some(124) => return Some(format!("{name}: still running after {} s; stopped", self.guest.timeout_s)),
            Some(s) => return Some(format!("{name}: QEMU exited with status {s} (1 = success)")),
        }
        if self.guest.net.is_some() {
            match &self.net {
                None => return Some(format!("{name}: no report of its network drive ({name}.net.json)")),
                Some(r) if !r.ok() => {
                    return Some(format!("{name}: its network drive failed: {}", r.errors.join("; ")))
                }
                Some(_) => {}
            }
        }
        if linux {
            return self.trace.as_ref().err().map(|e| format!("{name}: trace: {e}"));
        }
        if let Some(f) = self.console.failures().first() {
            return Some(format!("{name}: the kernel failed: {f}"));
        }
        if !self.console.done {
            return Some(format!("{name}: no DONE line"));
        }
        self.trace.as_ref().err().map(|e| format!("{name}: trace: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_lines_and_labels() {
        let hvm = Options { mode: Mode::Hvm, ..Options::default() };
        let plan = NetPlan::default();
        let n = KvmGuest::kernel_net("hvm", hvm, 2, 3, plan.clone());
        assert_eq!(n.line(), "hy-kvm-hvm-net3 400 hykernel 52:54:00:00:00:02 mode=hvm bench=none ip=10.0.0.2/24");
        assert_eq!(n.label(), "hvm");
        let mut load = KvmGuest::kernel_net("hybrid-lapic-eoi", hvm, 30, 0, plan.clone());
        load.name = "hy-kvm-hybrid-lapic-eoi-load".into();
        assert_eq!(load.label(), "hybrid-lapic-eoi");
        let l = KvmGuest::linux_net(20, 1, plan);
        assert_eq!(l.line(), "linux-kvm-net1 400 linux 52:54:00:00:00:14 console=ttyS0 quiet hy.ip=10.0.0.20/24");
        assert_eq!(l.label(), "linux");
        let local = KvmGuest::kernel("hvm", hvm, BenchSet::NONE.with("cpuid", true));
        assert_eq!(local.line(), "hy-kvm-hvm 240 hykernel - mode=hvm bench=cpuid");
    }

    #[test]
    fn a_linux_guest_succeeds_by_powering_off() {
        let l = KvmGuest::linux_net(20, 1, NetPlan::default());
        let run = |exit| KvmRun {
            guest: l.clone(),
            exit: Some(exit),
            console: BootSummary::from_lines(&["HY-DOMU: peer up ip=10.0.0.20/24"]),
            trace: Err(TraceError::Empty),
            net: Some(NetReport { quit: Some(proto::netctl::BYE.into()), ..NetReport::default() }),
            boot: 1,
            frozen: vec![],
        };
        assert!(run(1).problem().unwrap().contains("status 1"));
        assert!(run(0).problem().unwrap().contains("trace"), "exit 0 passes, the missing trace does not");
        let mut no_drive = run(0);
        no_drive.net = None;
        assert!(no_drive.problem().unwrap().contains("net.json"));
    }
}
