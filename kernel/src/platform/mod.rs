//! Platform selection: the one place that decides which mode the kernel runs in.
//!
//! [`init`] takes the detected hypervisor, what the firmware tables describe and the
//! command line's `mode=`, picks the mode, and builds one [`Platform`] of trait objects
//! (interrupt controller, clock, timer, NIC, consoles, phase marker). Nothing outside
//! this module asks which mode it is in; everything else programs against the traits.

mod common;
mod hvm;
mod kvm;
pub mod pv;
mod xenpv;

use alloc::boxed::Box;
use arch::acpi::AcpiInfo;
use arch::hypervisor::Hypervisor;
use arch::platform::{Clock, Console, InterruptController, PhaseMarker, PowerControl, Timer};
use arch::tsc::TscClock;
use arch::xen::events::EventChannels;
use arch::xen::{Xen, XenPower};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use drivers::nic::Nic;
use drivers::xen::console::{XenConsole, XenConsoleError};
use proto::cmdline::{Choice, Ipv4Cidr, Mode, Options};
use spin::{Mutex, Once};

/// The implementations chosen at boot.
pub struct Platform {
    /// The hypervisor found.
    pub hypervisor: Hypervisor,
    /// The mode in use (never `Auto`).
    pub mode: Mode,
    /// Interrupt delivery and EOI.
    pub irq: &'static dyn InterruptController,
    /// Monotonic clock.
    pub clock: &'static dyn Clock,
    /// The TSC at its known rate (also when `clock` is another counter): converts raw
    /// TSC spans, such as the boot time from the entry point, to nanoseconds.
    pub tsc: &'static TscClock,
    /// One-shot timer; its expiry calls [`timer_expired`].
    pub timer: &'static dyn Timer,
    /// Where the console output goes in this mode.
    pub consoles: &'static [&'static dyn Console],
    /// Benchmark phase markers for the host's trace.
    pub marker: &'static dyn PhaseMarker,
    /// Hypercalls, on any Xen guest.
    pub xen: Option<Xen>,
    /// Event channels, in the modes that take interrupts through them.
    pub events: Option<&'static EventChannels>,
    /// The network device, if the platform has one.
    pub nic: Mutex<Option<Box<dyn Nic>>>,
    /// Name of the NIC for the mode report.
    pub nic_name: &'static str,
    /// The address the toolstack configured for the NIC, if it did.
    pub nic_ip: Option<Ipv4Cidr>,
}

/// Why the platform could not be built.
#[derive(Debug)]
pub enum PlatformError {
    /// The mode exists but this build cannot run it yet.
    Unsupported(Mode),
    /// The mode cannot run on this hypervisor.
    WrongHypervisor(Mode),
    /// The mode needs a kind of guest this is not (`what` says which).
    WrongGuest(Mode, &'static str),
    /// Something the mode needs is missing or broken.
    Setup(&'static str, alloc::string::String),
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Unsupported(m) => {
                write!(
                    f,
                    "mode={} is not supported by this build yet (supported: auto, hvm, hybrid, pvh, pv)",
                    m.name()
                )
            }
            PlatformError::WrongHypervisor(Mode::Hybrid) => {
                f.write_str("mode=hybrid needs Xen or KVM, and this guest runs on neither (hypervisor=none)")
            }
            PlatformError::WrongHypervisor(m) => write!(f, "mode={} needs Xen, and this is not a Xen guest", m.name()),
            PlatformError::WrongGuest(m, what) => write!(f, "mode={} {what}", m.name()),
            PlatformError::Setup(what, why) => write!(f, "{what}: {why}"),
        }
    }
}

static PLATFORM: Once<Platform> = Once::new();

/// The platform, if [`init`] has run.
pub fn try_get() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// Installs Xen's hypercall page if this is a Xen guest.
pub fn xen(hv: &Hypervisor) -> Option<Xen> {
    match hv {
        Hypervisor::Xen(info) => Some(Xen::init(info)),
        _ => None,
    }
}

/// The Xen PV console, if this domain has one.
pub fn xen_console(xen: Xen) -> Result<&'static dyn Console, XenConsoleError> {
    Ok(Box::leak(Box::new(XenConsole::new(xen)?)))
}

/// Picks the power control for this machine. Called before the command line is parsed,
/// so that even a bad option ends in a clean shutdown.
pub fn power_control(xen: Option<Xen>, acpi: Option<&AcpiInfo>) -> &'static dyn PowerControl {
    match xen {
        Some(x) => Box::leak(Box::new(XenPower(x))),
        None => Box::leak(Box::new(arch::power::AcpiPower {
            pm1: acpi.map_or((None, None), |a| (a.pm1a_control, a.pm1b_control)),
            s5: acpi.and_then(|a| a.s5),
        })),
    }
}

/// Which hypervisor's paravirtual interfaces this guest can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    /// Xen, as a classic PV guest (started at the PV entry).
    XenPv,
    /// Xen: the hypercall page is up.
    Xen,
    /// KVM.
    Kvm,
    /// Neither (bare metal, QEMU TCG, another hypervisor).
    Plain,
}

/// The mode `asked` for, given what this guest is: `auto` takes the hybrid mode on a
/// Xen HVM guest and on KVM, pvh on a Xen PVH guest, pv on a classic PV guest, hvm
/// elsewhere.
fn choose_mode(asked: Mode, host: Host, emulated_pc: bool) -> Result<Mode, PlatformError> {
    match (asked, host, emulated_pc) {
        (Mode::Auto | Mode::Pv, Host::XenPv, _) => Ok(Mode::Pv),
        (m, Host::XenPv, _) => Err(PlatformError::WrongGuest(
            m,
            "cannot run in a classic PV guest (ring 3, no local APIC, no emulated devices): use mode=pv",
        )),
        (Mode::Auto | Mode::Hybrid, Host::Xen | Host::Kvm, true) => Ok(Mode::Hybrid),
        (Mode::Auto | Mode::Pvh, Host::Xen, false) => Ok(Mode::Pvh),
        (Mode::Auto | Mode::Hvm, _, true) => Ok(Mode::Hvm),
        (m @ (Mode::Auto | Mode::Hvm), _, false) | (m @ Mode::Hybrid, Host::Kvm, false) => {
            Err(PlatformError::WrongGuest(
                if m == Mode::Auto { Mode::Hvm } else { m },
                "needs an emulated PC (IO-APIC, ACPI hardware); this guest has none (a Xen PVH guest?)",
            ))
        }
        (m @ (Mode::Hybrid | Mode::Pvh | Mode::Pv), Host::Plain, _) | (m @ (Mode::Pvh | Mode::Pv), Host::Kvm, _) => {
            Err(PlatformError::WrongHypervisor(m))
        }
        (Mode::Hybrid, Host::Xen, false) => Err(PlatformError::WrongGuest(
            Mode::Hybrid,
            "needs an HVM guest; this is a PVH guest (boot it with type=\"hvm\", or use mode=pvh)",
        )),
        (Mode::Pvh, Host::Xen, true) => Err(PlatformError::WrongGuest(
            Mode::Pvh,
            "needs a PVH guest; this is an HVM guest (boot it with type=\"pvh\")",
        )),
        (Mode::Pv, Host::Xen, _) => Err(PlatformError::WrongGuest(
            Mode::Pv,
            "needs a classic PV guest: boot it with type=\"pv\" (this is an HVM or PVH guest)",
        )),
    }
}

/// Chooses the mode and builds the platform.
pub fn init(
    opts: &Options,
    hv: Hypervisor,
    xen: Option<Xen>,
    xen_console: Option<&'static dyn Console>,
    acpi: Option<AcpiInfo>,
    pv_guest: Option<&pv::PvGuest>,
) -> Result<&'static Platform, PlatformError> {
    let emulated_pc = acpi.as_ref().is_some_and(AcpiInfo::emulated_pc);
    let host = match (xen, &hv) {
        _ if pv_guest.is_some() => Host::XenPv,
        (Some(_), _) => Host::Xen,
        (None, Hypervisor::Kvm { .. }) => Host::Kvm,
        (None, _) => Host::Plain,
    };
    let mode = choose_mode(opts.mode, host, emulated_pc)?;
    install_page_mapper(pv_guest);
    let platform = match (mode, host, xen) {
        (Mode::Pv, Host::XenPv, _) => match pv_guest {
            Some(g) => pv::build(opts, g)?,
            None => return Err(PlatformError::WrongHypervisor(Mode::Pv)),
        },
        (Mode::Hvm, _, _) => hvm::build(opts, hv, xen, acpi)?,
        (Mode::Hybrid, Host::Kvm, _) => kvm::build(opts, hv, acpi)?,
        (Mode::Hybrid | Mode::Pvh, _, Some(x)) => xenpv::build(mode, opts, hv, x, xen_console, acpi)?,
        (m, _, _) => return Err(PlatformError::Unsupported(m)),
    };
    Ok(PLATFORM.call_once(|| platform))
}

/// Chooses the MMU benchmarks' page mapper once: `update_va_mapping` in a classic PV
/// guest, the PTE and `invlpg` elsewhere. Without one the MMU benchmarks say why they
/// skip.
fn install_page_mapper(pv_guest: Option<&pv::PvGuest>) {
    let mapper: Option<&'static dyn arch::platform::PageMapper> = match pv_guest {
        Some(g) => g.mmu.page_mapper(g.xen).map(|m| m as _),
        None => match arch::paging::NativeMapper::new() {
            Ok(m) => Some(Box::leak(Box::new(m))),
            Err(e) => {
                log::warn!("no page window for the MMU benchmarks: {e:?}");
                None
            }
        },
    };
    if let Some(m) = mapper {
        arch::pagemap::install(m);
    }
}

/// Number of timer expiries so far.
pub static TIMER_EXPIRIES: AtomicU64 = AtomicU64::new(0);
/// Clock reading taken in the most recent expiry.
pub static LAST_EXPIRY_NS: AtomicU64 = AtomicU64::new(0);

/// The callback every [`Timer`] runs on expiry: records when it ran.
pub fn timer_expired() {
    if let Some(p) = try_get() {
        LAST_EXPIRY_NS.store(p.clock.now_ns(), Ordering::Release);
    }
    TIMER_EXPIRIES.fetch_add(1, Ordering::AcqRel);
}
