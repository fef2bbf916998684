//! Pieces the modes share: the local APIC with its timer, the TSC clock, the phase
//! marker, and small helpers for building `'static` trait objects.

use super::{timer_expired, PlatformError};
use alloc::boxed::Box;
use alloc::format;
use arch::apic::timer::LapicTimer;
use arch::apic::{ApicMode, Lapic, LapicController};
use arch::cpu::Features;
use arch::platform::{NoMarker, PhaseMarker};
use arch::tsc::TscClock;
use arch::xen::{Xen, XenTraceMarker};
use hykernel::cmdline::{ApicChoice, Options, TimerChoice};

/// Moves `v` to the heap for the rest of the kernel's life.
pub fn leak<T>(v: T) -> &'static mut T {
    Box::leak(Box::new(v))
}

/// Maps a setup error of `what` into a [`PlatformError`].
pub fn setup<E: core::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> PlatformError {
    move |e| PlatformError::Setup(what, format!("{e:?}"))
}

/// The local APIC as interrupt controller, the TSC at `tsc_hz` as clock, and the APIC
/// timer, as the command line's `apic=` and `timer=` ask.
pub fn lapic_platform(
    opts: &Options,
    features: &Features,
    tsc_hz: u64,
) -> Result<
    (
        &'static LapicController,
        &'static TscClock,
        &'static LapicTimer,
    ),
    PlatformError,
> {
    let apic_mode = match opts.apic {
        ApicChoice::Auto => ApicMode::Auto,
        ApicChoice::XApic => ApicMode::XApic,
        ApicChoice::X2Apic => ApicMode::X2Apic,
    };
    let lapic: &'static Lapic =
        leak(Lapic::init(apic_mode, features).map_err(setup("local APIC"))?);
    let controller: &'static LapicController = leak(LapicController::new(lapic));
    arch::trap::set_controller(controller);
    let clock: &'static TscClock = leak(TscClock::starting_now(tsc_hz));
    if opts.timer == TimerChoice::TscDeadline && !features.tsc_deadline {
        return Err(PlatformError::Setup(
            "timer",
            "timer=tsc-deadline: this CPU has no TSC-deadline mode".into(),
        ));
    }
    let prefer_deadline = opts.timer != TimerChoice::LapicOneShot;
    let timer = LapicTimer::init(lapic, clock, features, prefer_deadline, timer_expired)
        .map_err(setup("LAPIC timer"))?;
    Ok((controller, clock, timer))
}

/// Xen's trace records where the hypercall page is up, else nothing.
pub fn marker(xen: Option<Xen>) -> &'static dyn PhaseMarker {
    match xen {
        Some(x) => leak(XenTraceMarker(x)),
        None => &NoMarker,
    }
}
