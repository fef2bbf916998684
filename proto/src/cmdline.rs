//! The kernel command line: `key=value` words separated by spaces.
//!
//! | option    | values                                         | default |
//! |-----------|------------------------------------------------|---------|
//! | `mode`    | `auto`, `hvm`, `hybrid`, `pvh`, `pv`            | `auto`  |
//! | `bench`   | `all`, `none`, or a comma list of [`BENCHMARKS`] | `all`   |
//! | `ip`      | `A.B.C.D/PREFIX`                                | the toolstack's, else `10.0.2.15/24` |
//! | `apic`    | `auto`, `xapic`, `x2apic`                       | `auto`  |
//! | `timer`   | `auto`, `pv`, `lapic`, `tsc-deadline`, `lapic-oneshot` | `auto` |
//! | `clock`   | `auto`, `pvclock`, `kvmclock`, `tsc`, `hpet`    | `auto`  |
//! | `eoi`     | `auto`, `pv`, `lapic` (KVM hybrid: KVM's PV EOI or the LAPIC's EOI write) | `auto` |
//! | `callback`| `global`, `percpu`, `percpu-assist` (Xen modes: how events arrive) | the cheapest offered |
//! | `nic`     | `auto`, `virtio`, `netfront` (hybrid: the emulated NIC or the PV one) | `auto` |
//! | `msi`     | `auto`, `lapic`, `pirq` (how a device's MSI arrives) | `auto`  |
//! | `msimask` | `off`, `on` (mask and unmask the MSI-X vector around every interrupt) | `off` |
//! | `hvm_pirqs` | `auto`, `off` (`off`: behave as if Xen did not offer MSI over event channels) | `auto` |
//! | `irqmod`  | microseconds a device's interrupt stays off after one (0: one per packet) | `0` |
//! | `net`     | `default`, or a comma list of [`NetLever`]s, each turned off by a `no-` prefix | `default` (all on but `lazy-timer`) |
//! | `netwait` | seconds to wait for the host's benchmark driver | `120`   |
//! | `fault`   | `none`, `panic-after-mode`, `netfront-stall`, `pv-bad-pte` (tests of the harness) | `none`  |
//!
//! [`Options`] also renders back to a command line (`Display`), which is how the host
//! harness writes the kernel's command lines.
//!
//! `timer`, `clock`, `eoi` and `callback` change one enlightenment at a time; whether a value
//! fits the mode in use (`timer=pv` needs a Xen mode, say) is checked when the platform
//! is chosen.
//!
//! Anything else is an error that names the offending word and what is accepted; the
//! kernel prints it and shuts down with a failure status.

use core::fmt;

/// Benchmarks `bench=` can name, in the order they run.
pub const BENCHMARKS: [&str; 10] =
    ["cpuid", "hypercall", "clock", "interrupt", "evtchn", "timer", "mem_lat", "mem_bw", "mmu", "net"];

/// The option names, in the order [`Options`] writes them.
pub const OPTION_NAMES: [&str; 16] = [
    "mode",
    "bench",
    "ip",
    "apic",
    "timer",
    "clock",
    "eoi",
    "callback",
    "nic",
    "msi",
    "msimask",
    "hvm_pirqs",
    "irqmod",
    "net",
    "netwait",
    "fault",
];

const OPTIONS: &str =
    "mode, bench, ip, apic, timer, clock, eoi, callback, nic, msi, msimask, hvm_pirqs, irqmod, net, netwait, fault";

/// An option whose value is one word of a fixed set.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every value with its word, in the order they are listed.
    const TABLE: &'static [(&'static str, Self)];
    /// The words, comma-separated (for error messages).
    const ACCEPTED: &'static str;

    /// The word naming this value.
    fn name(self) -> &'static str {
        Self::TABLE.iter().find(|(_, v)| *v == self).map_or("?", |(n, _)| n)
    }

    /// The value a word names.
    fn from_name(word: &str) -> Option<Self> {
        Self::TABLE.iter().find(|(n, _)| *n == word).map(|&(_, v)| v)
    }
}

/// Declares a [`Choice`] enum: each variant with its doc and its word.
macro_rules! choice {
    ($(#[$m:meta])* pub enum $t:ident {
        $(#[doc = $fd:literal])* $fv:ident = $fw:literal
        $(, $(#[doc = $d:literal])* $v:ident = $w:literal)* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $t {
            $(#[doc = $fd])* $fv,
            $($(#[doc = $d])* $v,)*
        }
        impl Choice for $t {
            const TABLE: &'static [(&'static str, Self)] = &[($fw, $t::$fv) $(, ($w, $t::$v))*];
            const ACCEPTED: &'static str = concat!($fw $(, ", ", $w)*);
        }
    };
}

mod net;
use net::parse_net;
pub use net::{NetLever, NetLevers, OnList};

choice! {
    /// The guest mode: which interfaces the platform uses.
    pub enum Mode {
        /// Pick from what the hypervisor offers.
        Auto = "auto",
        /// Plain hardware virtualization: emulated LAPIC, IO-APIC, MSI-X, NIC.
        Hvm = "hvm",
        /// HVM with Xen's PV interrupts, timers, clock and network.
        Hybrid = "hybrid",
        /// Xen PVH: no emulated devices.
        Pvh = "pvh",
        /// Classic Xen PV.
        Pv = "pv",
    }
}

choice! {
    /// Local APIC access mode.
    pub enum ApicChoice {
        /// x2APIC if available.
        Auto = "auto",
        /// Memory-mapped xAPIC.
        XApic = "xapic",
        /// MSR-based x2APIC.
        X2Apic = "x2apic",
    }
}

choice! {
    /// Which timer hardware backs the `Timer`.
    pub enum TimerChoice {
        /// The mode's best.
        Auto = "auto",
        /// Xen's one-shot timer (`VCPUOP_set_singleshot_timer`).
        Pv = "pv",
        /// The LAPIC timer, TSC-deadline mode where the CPU has it.
        Lapic = "lapic",
        /// LAPIC timer in TSC-deadline mode.
        TscDeadline = "tsc-deadline",
        /// LAPIC timer in one-shot count mode.
        LapicOneShot = "lapic-oneshot",
    }
}

impl TimerChoice {
    /// True for the LAPIC timer in any of its modes.
    pub fn is_lapic(self) -> bool {
        matches!(self, TimerChoice::Lapic | TimerChoice::TscDeadline | TimerChoice::LapicOneShot)
    }
}

choice! {
    /// Which counter backs the `Clock`.
    pub enum ClockChoice {
        /// The mode's best.
        Auto = "auto",
        /// Xen's pvclock.
        Pvclock = "pvclock",
        /// KVM's kvmclock (the same pvclock ABI, registered by MSR).
        Kvmclock = "kvmclock",
        /// The raw TSC.
        Tsc = "tsc",
        /// The HPET main counter.
        Hpet = "hpet",
    }
}

choice! {
    /// How an interrupt through the local APIC ends.
    pub enum EoiChoice {
        /// The mode's best: KVM's PV EOI in the KVM hybrid mode, the EOI write elsewhere.
        Auto = "auto",
        /// KVM's PV EOI (`MSR_KVM_PV_EOI_EN`): the EOI write is skipped when KVM flagged
        /// the interrupt in the shared word.
        Pv = "pv",
        /// The LAPIC's EOI register write (a VM exit without a virtualized APIC).
        Lapic = "lapic",
    }
}

choice! {
    /// How Xen delivers event upcalls.
    pub enum CallbackChoice {
        /// The global callback vector (no LAPIC, no EOI).
        Global = "global",
        /// The per-vCPU upcall vector (through the LAPIC, with an EOI).
        PerCpu = "percpu",
        /// The per-vCPU upcall vector with Viridian's APIC assist: the EOI is skipped when
        /// the assist bit can be cleared, and Xen completes it (needs `viridian =
        /// ["base", "apic_assist"]` in the domain's config).
        PerCpuAssist = "percpu-assist",
    }
}

choice! {
    /// Which network device a mode uses where it could use either.
    pub enum NicChoice {
        /// The mode's own: netfront in the Xen modes, virtio-net in hvm.
        Auto = "auto",
        /// The emulated virtio-net (hybrid keeps it instead of unplugging it).
        Virtio = "virtio",
        /// Xen's netfront.
        Netfront = "netfront",
    }
}

choice! {
    /// How an emulated device's MSI reaches the kernel.
    pub enum MsiChoice {
        /// The cheapest the platform offers: over an event channel (a PIRQ) where Xen
        /// offers it, else the local APIC.
        Auto = "auto",
        /// Through the local APIC, with its EOI.
        Lapic = "lapic",
        /// Bound to a PIRQ and delivered on an event channel: no EOI, and masking is the
        /// event channel's mask bit (`XENFEAT_hvm_pirqs`).
        Pirq = "pirq",
    }
}

choice! {
    /// Whether a device's MSI-X vector is masked and unmasked around every interrupt (the
    /// pattern the hybrid HVM slides measured; a good driver suppresses interrupts in the
    /// queue instead).
    pub enum MsiMask {
        /// Interrupts are suppressed through the virtqueue; no table writes.
        Off = "off",
        /// Mask in the handler, unmask after polling: two MSI-X table writes per interrupt.
        On = "on",
    }
}

choice! {
    /// Whether to use Xen's `XENFEAT_hvm_pirqs` where offered (`off` tests the fallback).
    pub enum PirqFeature {
        /// Use it where Xen offers it.
        Auto = "auto",
        /// Behave as if Xen did not offer it.
        Off = "off",
    }
}

choice! {
    /// A fault injected on purpose, for the harness's own tests (that a crashing kernel
    /// is reported and never retried).
    pub enum Fault {
        /// None: the normal run.
        None = "none",
        /// Panic right after the mode report.
        PanicAfterMode = "panic-after-mode",
        /// Let the netfront wait 5 s between granting its rings and publishing them, so
        /// that the host can take the back end away mid-init at a known point.
        NetfrontStall = "netfront-stall",
        /// In pv mode: ask Xen for a page-table update it must refuse (a page table mapped
        /// writable), then write a read-only page table directly: both end in a report.
        PvBadPte = "pv-bad-pte",
    }
}

/// Which benchmarks to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchSet(u32);

impl BenchSet {
    /// Every benchmark.
    pub const ALL: BenchSet = BenchSet((1 << BENCHMARKS.len()) - 1);
    /// None: boot, report, serve the network.
    pub const NONE: BenchSet = BenchSet(0);

    /// True if benchmark `name` (one of [`BENCHMARKS`]) is selected.
    pub fn contains(self, name: &str) -> bool {
        BENCHMARKS.iter().position(|&b| b == name).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// True if nothing is selected.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The selected names, in [`BENCHMARKS`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        BENCHMARKS.iter().enumerate().filter(move |(i, _)| self.0 & (1 << i) != 0).map(|(_, b)| *b)
    }

    /// This set with `name` (one of [`BENCHMARKS`]) added or removed.
    pub fn with(self, name: &str, selected: bool) -> BenchSet {
        match BENCHMARKS.iter().position(|&b| b == name) {
            Some(i) if selected => BenchSet(self.0 | 1 << i),
            Some(i) => BenchSet(self.0 & !(1 << i)),
            None => self,
        }
    }
}

impl fmt::Display for BenchSet {
    /// `all`, `none`, or the comma list [`parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BenchSet::ALL => f.write_str("all"),
            BenchSet::NONE => f.write_str("none"),
            set => {
                for (i, name) in set.names().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(name)?;
                }
                Ok(())
            }
        }
    }
}

/// An IPv4 address with prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// Address octets.
    pub addr: [u8; 4],
    /// Prefix length, 0–32.
    pub prefix: u8,
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.addr;
        write!(f, "{a}.{b}.{c}.{d}/{}", self.prefix)
    }
}

/// The parsed command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `mode=`.
    pub mode: Mode,
    /// `bench=`.
    pub bench: BenchSet,
    /// `ip=`, if given (else the platform's configured address, else [`DEFAULT_IP`]).
    pub ip: Option<Ipv4Cidr>,
    /// `apic=`.
    pub apic: ApicChoice,
    /// `timer=`.
    pub timer: TimerChoice,
    /// `clock=`.
    pub clock: ClockChoice,
    /// `eoi=`.
    pub eoi: EoiChoice,
    /// `callback=`, if given.
    pub callback: Option<CallbackChoice>,
    /// `nic=`.
    pub nic: NicChoice,
    /// `msi=`.
    pub msi: MsiChoice,
    /// `msimask=`.
    pub msimask: MsiMask,
    /// `hvm_pirqs=`.
    pub hvm_pirqs: PirqFeature,
    /// `irqmod=`: microseconds a device's interrupt stays off after it fired (0: none).
    pub irqmod_us: u32,
    /// `net=`: the network levers that are on.
    pub net: NetLevers,
    /// `netwait=`: seconds the network benchmarks wait for the host's driver.
    pub netwait_s: u32,
    /// `fault=`: a fault to inject (tests of the harness only).
    pub fault: Fault,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Auto,
            bench: BenchSet::ALL,
            ip: None,
            apic: ApicChoice::Auto,
            timer: TimerChoice::Auto,
            clock: ClockChoice::Auto,
            eoi: EoiChoice::Auto,
            callback: None,
            nic: NicChoice::Auto,
            msi: MsiChoice::Auto,
            msimask: MsiMask::Off,
            hvm_pirqs: PirqFeature::Auto,
            irqmod_us: 0,
            net: NetLevers::DEFAULT,
            netwait_s: 120,
            fault: Fault::None,
        }
    }
}

impl fmt::Display for Options {
    /// The command line that [`parse`]s back to these options: `mode=` and `bench=`
    /// always, every other option only where it differs from its default. Options that
    /// `parse` cannot produce (`netwait_s` 0, a prefix above 32) are written as they are,
    /// and the line is then refused by `parse` naming that option: never silently changed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = Options::default();
        write!(f, "mode={} bench={}", self.mode.name(), self.bench)?;
        if let Some(ip) = self.ip {
            write!(f, " ip={ip}")?;
        }
        if self.apic != d.apic {
            write!(f, " apic={}", self.apic.name())?;
        }
        if self.timer != d.timer {
            write!(f, " timer={}", self.timer.name())?;
        }
        if self.clock != d.clock {
            write!(f, " clock={}", self.clock.name())?;
        }
        if self.eoi != d.eoi {
            write!(f, " eoi={}", self.eoi.name())?;
        }
        if let Some(c) = self.callback {
            write!(f, " callback={}", c.name())?;
        }
        if self.nic != d.nic {
            write!(f, " nic={}", self.nic.name())?;
        }
        if self.msi != d.msi {
            write!(f, " msi={}", self.msi.name())?;
        }
        if self.msimask != d.msimask {
            write!(f, " msimask={}", self.msimask.name())?;
        }
        if self.hvm_pirqs != d.hvm_pirqs {
            write!(f, " hvm_pirqs={}", self.hvm_pirqs.name())?;
        }
        if self.irqmod_us != d.irqmod_us {
            write!(f, " irqmod={}", self.irqmod_us)?;
        }
        if self.net != d.net {
            write!(f, " net={}", self.net)?;
        }
        if self.netwait_s != d.netwait_s {
            write!(f, " netwait={}", self.netwait_s)?;
        }
        if self.fault != d.fault {
            write!(f, " fault={}", self.fault.name())?;
        }
        Ok(())
    }
}

/// A command-line error; its `Display` is the one line the kernel prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// A word that is not `key=value` with a known key.
    UnknownOption(&'a str),
    /// A known key with a value it does not take.
    BadValue {
        /// The key.
        option: &'a str,
        /// The value given.
        value: &'a str,
        /// What the key accepts.
        accepted: &'static str,
    },
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::UnknownOption(word) => {
                write!(f, "unknown option '{word}' (accepted options: {OPTIONS})")
            }
            CmdlineError::BadValue { option, value, accepted } => {
                write!(f, "invalid value '{value}' for {option}= (accepted: {accepted})")
            }
        }
    }
}

fn choose<'a, T: Choice>(option: &'a str, value: &'a str) -> Result<T, CmdlineError<'a>> {
    T::from_name(value).ok_or(CmdlineError::BadValue { option, value, accepted: T::ACCEPTED })
}

fn parse_bench(value: &str) -> Result<BenchSet, CmdlineError<'_>> {
    const ACCEPTED: &str =
        "all, none, or a comma list of cpuid, hypercall, clock, interrupt, evtchn, timer, mem_lat, mem_bw, net";
    match value {
        "all" => return Ok(BenchSet::ALL),
        "none" => return Ok(BenchSet::NONE),
        _ => {}
    }
    let mut set = 0u32;
    for item in value.split(',') {
        let i = BENCHMARKS.iter().position(|&b| b == item).ok_or(CmdlineError::BadValue {
            option: "bench",
            value: item,
            accepted: ACCEPTED,
        })?;
        set |= 1 << i;
    }
    Ok(BenchSet(set))
}

/// The address QEMU's user network expects, used when neither the command line nor the
/// platform gives one.
pub const DEFAULT_IP: Ipv4Cidr = Ipv4Cidr { addr: [10, 0, 2, 15], prefix: 24 };

/// Parses `A.B.C.D/PREFIX`, or a bare `A.B.C.D` (as Xen's toolstack writes a vif's
/// `ip`) when a `default_prefix` is given.
pub fn parse_address(value: &str, default_prefix: Option<u8>) -> Option<Ipv4Cidr> {
    let value = value.trim();
    if value.contains('/') {
        return parse_ip(value);
    }
    Some(Ipv4Cidr { addr: parse_octets(value)?, prefix: default_prefix? })
}

fn parse_octets(addr: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = addr.split('.');
    for o in octets.iter_mut() {
        *o = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(octets)
}

fn parse_ip(value: &str) -> Option<Ipv4Cidr> {
    let (addr, prefix) = value.split_once('/')?;
    let prefix: u8 = prefix.parse().ok().filter(|&p| p <= 32)?;
    Some(Ipv4Cidr { addr: parse_octets(addr)?, prefix })
}

/// Parses a command line.
pub fn parse(line: &str) -> Result<Options, CmdlineError<'_>> {
    let mut o = Options::default();
    for word in line.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            return Err(CmdlineError::UnknownOption(word));
        };
        match key {
            "mode" => o.mode = choose(key, value)?,
            "bench" => o.bench = parse_bench(value)?,
            "ip" => {
                o.ip = Some(parse_ip(value).ok_or(CmdlineError::BadValue {
                    option: key,
                    value,
                    accepted: "A.B.C.D/PREFIX",
                })?)
            }
            "apic" => o.apic = choose(key, value)?,
            "timer" => o.timer = choose(key, value)?,
            "clock" => o.clock = choose(key, value)?,
            "eoi" => o.eoi = choose(key, value)?,
            "callback" => o.callback = Some(choose(key, value)?),
            "nic" => o.nic = choose(key, value)?,
            "msi" => o.msi = choose(key, value)?,
            "msimask" => o.msimask = choose(key, value)?,
            "hvm_pirqs" => o.hvm_pirqs = choose(key, value)?,
            "irqmod" => {
                o.irqmod_us = value.parse().ok().filter(|&us| us <= 1_000_000).ok_or(CmdlineError::BadValue {
                    option: key,
                    value,
                    accepted: "microseconds, 0 to 1000000",
                })?
            }
            "net" => o.net = parse_net(value)?,
            "fault" => o.fault = choose(key, value)?,
            "netwait" => {
                o.netwait_s = value.parse().ok().filter(|&s| s > 0).ok_or(CmdlineError::BadValue {
                    option: key,
                    value,
                    accepted: "seconds, 1 or more",
                })?
            }
            _ => return Err(CmdlineError::UnknownOption(word)),
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let o = parse("").unwrap();
        assert_eq!(o, Options::default());
        assert!(o.bench.contains("net") && o.bench.contains("clock"));
    }

    #[test]
    fn full_line() {
        let o = parse("mode=hvm  bench=clock,net ip=192.168.7.2/16 apic=xapic timer=lapic-oneshot netwait=5").unwrap();
        assert_eq!(o.mode, Mode::Hvm);
        assert!(o.bench.contains("clock") && o.bench.contains("net") && !o.bench.contains("timer"));
        assert_eq!(o.ip, Some(Ipv4Cidr { addr: [192, 168, 7, 2], prefix: 16 }));
        assert_eq!(o.apic, ApicChoice::XApic);
        assert_eq!(o.timer, TimerChoice::LapicOneShot);
        assert_eq!(o.netwait_s, 5);
        assert!(parse("bench=none").unwrap().bench.is_empty());
        let x = parse("mode=hybrid timer=pv clock=hpet callback=percpu").unwrap();
        assert_eq!((x.timer, x.clock, x.callback), (TimerChoice::Pv, ClockChoice::Hpet, Some(CallbackChoice::PerCpu)));
        assert!(TimerChoice::Lapic.is_lapic() && !TimerChoice::Pv.is_lapic());
        assert_eq!(Options::default().callback, None);
        assert_eq!(parse_address("10.0.0.2\n", Some(24)), Some(Ipv4Cidr { addr: [10, 0, 0, 2], prefix: 24 }));
        assert_eq!(parse_address("10.0.0.2/16", Some(24)), Some(Ipv4Cidr { addr: [10, 0, 0, 2], prefix: 16 }));
        assert_eq!(parse_address("10.0.0.2", None), None);
        assert_eq!(parse_address("10.0.0", Some(24)), None);
        assert_eq!(Mode::Hybrid.name(), "hybrid");
        assert_eq!(parse("fault=panic-after-mode").unwrap().fault, Fault::PanicAfterMode);
    }

    #[test]
    fn options_render_to_what_parses_back() {
        assert_eq!(Options::default().to_string(), "mode=auto bench=all");
        let o = Options {
            mode: Mode::Hybrid,
            bench: BenchSet::NONE.with("cpuid", true).with("net", true),
            ip: Some(Ipv4Cidr { addr: [10, 0, 0, 2], prefix: 24 }),
            apic: ApicChoice::XApic,
            timer: TimerChoice::Pv,
            clock: ClockChoice::Tsc,
            eoi: EoiChoice::Lapic,
            callback: Some(CallbackChoice::PerCpu),
            nic: NicChoice::Virtio,
            msi: MsiChoice::Pirq,
            msimask: MsiMask::On,
            hvm_pirqs: PirqFeature::Off,
            irqmod_us: 125,
            net: NetLevers::DEFAULT.with(NetLever::Batch, false).with(NetLever::LazyTimer, true),
            netwait_s: 30,
            fault: Fault::PanicAfterMode,
        };
        let line = o.to_string();
        assert_eq!(
            line,
            "mode=hybrid bench=cpuid,net ip=10.0.0.2/24 apic=xapic timer=pv clock=tsc eoi=lapic callback=percpu \
             nic=virtio msi=pirq msimask=on hvm_pirqs=off irqmod=125 net=no-batch,lazy-timer netwait=30 \
             fault=panic-after-mode"
        );
        assert_eq!(parse(&line), Ok(o));
        assert_eq!(
            BenchSet::ALL.with("net", false).to_string(),
            "cpuid,hypercall,clock,interrupt,evtchn,timer,mem_lat,mem_bw,mmu"
        );
        assert_eq!(Mode::from_name("pvh"), Some(Mode::Pvh));
        assert_eq!(Mode::ACCEPTED, "auto, hvm, hybrid, pvh, pv");
        assert_eq!(OPTION_NAMES.join(", "), OPTIONS);
        assert_eq!(parse("callback=percpu-assist").unwrap().callback, Some(CallbackChoice::PerCpuAssist));
    }

    #[test]
    fn kvm_switches_parse_and_render() {
        let o = parse("mode=hybrid clock=kvmclock eoi=pv").unwrap();
        assert_eq!((o.mode, o.clock, o.eoi), (Mode::Hybrid, ClockChoice::Kvmclock, EoiChoice::Pv));
        assert_eq!(o.to_string(), "mode=hybrid bench=all clock=kvmclock eoi=pv");
        assert_eq!(parse("eoi=lapic").unwrap().eoi, EoiChoice::Lapic);
        assert_eq!(parse("mode=hvm").unwrap().eoi, EoiChoice::Auto);
        assert_eq!(
            parse("eoi=msr").unwrap_err().to_string(),
            "invalid value 'msr' for eoi= (accepted: auto, pv, lapic)"
        );
        assert_eq!(ClockChoice::ACCEPTED, "auto, pvclock, kvmclock, tsc, hpet");
    }

    #[test]
    fn bad_mode_names_value_and_choices() {
        let e = parse("bench=all mode=bogus").unwrap_err();
        assert_eq!(e.to_string(), "invalid value 'bogus' for mode= (accepted: auto, hvm, hybrid, pvh, pv)");
    }

    #[test]
    fn unknown_options() {
        assert_eq!(parse("colour=blue").unwrap_err(), CmdlineError::UnknownOption("colour=blue"));
        assert_eq!(
            parse("quiet").unwrap_err().to_string(),
            "unknown option 'quiet' (accepted options: mode, bench, ip, apic, timer, clock, eoi, callback, nic, msi, \
             msimask, hvm_pirqs, irqmod, net, netwait, fault)"
        );
    }

    #[test]
    fn bad_values() {
        for line in [
            "bench=clock,warp",
            "ip=10.0.0.1",
            "ip=10.0.0.300/24",
            "ip=10.0.0.1/33",
            "ip=1.2.3.4.5/8",
            "apic=x3apic",
            "timer=hpet",
            "clock=rtc",
            "eoi=x2apic",
            "eoi=",
            "callback=lapic",
            "nic=e1000",
            "msi=ioapic",
            "msimask=yes",
            "hvm_pirqs=on",
            "irqmod=-1",
            "irqmod=2000000",
            "netwait=0",
            "netwait=soon",
            "net=",
            "net=gso",
            "net=no-",
            "net=offload,,batch",
            "net=no-default",
            "mode=",
        ] {
            assert!(matches!(parse(line), Err(CmdlineError::BadValue { .. })), "{line}");
        }
        let e = parse("bench=clock,warp").unwrap_err();
        assert!(e.to_string().starts_with("invalid value 'warp' for bench="));
    }
}
