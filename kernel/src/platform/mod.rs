//! Platform selection: the one place that decides which mode the kernel runs in.
//!
//! [`init`] detects the hypervisor, applies the command line's `mode=` override and
//! builds one [`Platform`] of trait objects (interrupt controller, clock, timer, NIC).
//! Nothing outside this module asks which mode it is in; everything else programs
//! against the traits.

mod hvm;

use alloc::boxed::Box;
use arch::acpi::AcpiInfo;
use arch::boot::BootInfo;
use arch::hypervisor::Hypervisor;
use arch::platform::{Clock, InterruptController, PowerControl, Timer};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use drivers::nic::Nic;
use hykernel::cmdline::{Mode, Options};
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
    /// One-shot timer; its expiry calls [`timer_expired`].
    pub timer: &'static dyn Timer,
    /// The network device, if the platform has one.
    pub nic: Mutex<Option<Box<dyn Nic>>>,
    /// Name of the NIC for the mode report.
    pub nic_name: &'static str,
}

/// Why the platform could not be built.
#[derive(Debug)]
pub enum PlatformError {
    /// The mode exists but this build cannot run it yet.
    Unsupported(Mode),
    /// The mode cannot run on this hypervisor.
    WrongHypervisor(Mode),
    /// Something the mode needs is missing or broken.
    Setup(&'static str, alloc::string::String),
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Unsupported(m) => {
                write!(
                    f,
                    "mode={} is not supported by this build yet (supported: auto, hvm)",
                    m.name()
                )
            }
            PlatformError::WrongHypervisor(m) => write!(
                f,
                "mode={} needs Xen, and this is not a Xen guest",
                m.name()
            ),
            PlatformError::Setup(what, why) => write!(f, "{what}: {why}"),
        }
    }
}

static PLATFORM: Once<Platform> = Once::new();

/// The platform, if [`init`] has run.
pub fn try_get() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// Picks the power control for this machine. Called before the command line is parsed.
pub fn power_control(hv: &Hypervisor, acpi: Option<&AcpiInfo>) -> &'static dyn PowerControl {
    let _ = hv; // Xen's SCHEDOP_shutdown joins here with the hypercall page.
    let power = arch::power::AcpiPower {
        pm1: acpi.map_or((None, None), |a| (a.pm1a_control, a.pm1b_control)),
        s5: acpi.and_then(|a| a.s5),
    };
    Box::leak(Box::new(power))
}

/// Chooses the mode and builds the platform.
pub fn init(
    opts: &Options,
    boot: &BootInfo,
    hv: Hypervisor,
    acpi: Option<AcpiInfo>,
) -> Result<&'static Platform, PlatformError> {
    let mode = match opts.mode {
        // Hybrid joins `auto` on Xen once its pieces exist; until then Xen guests run hvm.
        Mode::Auto => Mode::Hvm,
        Mode::Hvm => Mode::Hvm,
        m @ (Mode::Hybrid | Mode::Pvh | Mode::Pv) => {
            if !matches!(hv, Hypervisor::Xen(_)) {
                return Err(PlatformError::WrongHypervisor(m));
            }
            return Err(PlatformError::Unsupported(m));
        }
    };
    let _ = boot;
    let platform = match mode {
        Mode::Hvm => hvm::build(opts, hv, acpi)?,
        _ => return Err(PlatformError::Unsupported(mode)),
    };
    Ok(PLATFORM.call_once(|| platform))
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
