//! The interrupt flag and halting as platform operations, chosen once at boot.
//!
//! Natively (hvm, hybrid, pvh, KVM) they are `cli`, `sti`, `sti; hlt`. A classic PV
//! kernel runs in ring 3, where those instructions fault: its interrupt flag is the
//! `evtchn_upcall_mask` byte of its `vcpu_info` and its halt is `SCHEDOP_block`
//! (`xen::pv`). The kernel calls the functions here, never the instructions; the PV
//! entry installs its implementation with [`set`] before anything else runs, and
//! everything else finds the native one.

use spin::Once;

/// Masking, unmasking and waiting for interrupts on this CPU.
pub trait InterruptFlag: Sync {
    /// Interrupts (events) are held off until [`enable`](Self::enable).
    fn disable(&self);
    /// Interrupts are delivered again; one that waited is delivered now.
    fn enable(&self);
    /// Whether interrupts are delivered.
    fn are_enabled(&self) -> bool;
    /// For a caller with interrupts disabled: enables them and sleeps until one arrives,
    /// returning once it has been handled, with interrupts enabled.
    fn idle(&self);
    /// [`idle`](Self::idle), but returns with interrupts disabled (see `cpu::idle_folded`).
    fn idle_folded(&self);
    /// Stops this CPU for good, interrupts off.
    fn halt_forever(&self) -> !;
    /// Name for the log (`native`, `xen-pv`).
    fn name(&self) -> &'static str;
}

/// The instructions themselves.
pub struct Native;

impl InterruptFlag for Native {
    #[inline]
    fn disable(&self) {
        x86_64::instructions::interrupts::disable();
    }
    #[inline]
    fn enable(&self) {
        x86_64::instructions::interrupts::enable();
    }
    #[inline]
    fn are_enabled(&self) -> bool {
        x86_64::instructions::interrupts::are_enabled()
    }
    fn idle(&self) {
        crate::cpu::native_idle();
    }
    fn idle_folded(&self) {
        crate::cpu::native_idle_folded();
    }
    fn halt_forever(&self) -> ! {
        loop {
            x86_64::instructions::interrupts::disable();
            x86_64::instructions::hlt();
        }
    }
    fn name(&self) -> &'static str {
        "native"
    }
}

static FLAG: Once<&'static dyn InterruptFlag> = Once::new();

/// Chooses the implementation; only the first call counts (the PV entry's, before any
/// other code asks).
pub fn set(flag: &'static dyn InterruptFlag) {
    FLAG.call_once(|| flag);
}

/// The implementation in use.
#[inline]
pub fn current() -> &'static dyn InterruptFlag {
    match FLAG.get() {
        Some(f) => *f,
        None => &Native,
    }
}

/// Holds interrupts off.
#[inline]
pub fn disable() {
    current().disable()
}

/// Delivers interrupts again.
#[inline]
pub fn enable() {
    current().enable()
}

/// Whether interrupts are delivered.
#[inline]
pub fn are_enabled() -> bool {
    current().are_enabled()
}

/// Runs `f` with interrupts held off, restoring the previous state after.
#[inline]
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let flag = current();
    let were = flag.are_enabled();
    if were {
        flag.disable();
    }
    let r = f();
    if were {
        flag.enable();
    }
    r
}
