//! The local APIC timer as a [`Timer`]: TSC-deadline mode where the CPU offers it,
//! else one-shot mode counting the APIC's bus clock.
//!
//! Deadlines are in the platform clock's nanoseconds (the TSC, or a pvclock or HPET in
//! the modes that choose those). In TSC-deadline mode the time left is converted to a TSC
//! value and written to `IA32_TSC_DEADLINE`; in one-shot mode to APIC timer ticks (rounded
//! up). Either way the timer is its own interrupt handler: it checks the clock and re-arms
//! if it ran early, so the callback never does.

use super::{reg, Lapic, LVT_MASKED};
use crate::cpu;
use crate::platform::{Clock, Irq, IrqError, IrqHandler, Timer};
use crate::tsc::TscClock;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};

const IA32_TSC_DEADLINE: u32 = 0x6e0;
const LVT_TSC_DEADLINE: u32 = 0b10 << 17;
/// Divide configuration value for "divide by 16".
const DIVIDE_BY_16: u32 = 0b0011;
const NO_DEADLINE: u64 = u64::MAX;

#[derive(Clone, Copy, Debug)]
enum Mode {
    TscDeadline,
    /// One-shot with the timer's ticks per nanosecond (after the divider), in 32.32 fixed point.
    OneShot {
        ticks_per_ns_fp: u64,
    },
}

/// The APIC timer; also the handler of its vector.
pub struct LapicTimer {
    lapic: &'static Lapic,
    clock: &'static dyn Clock,
    tsc: &'static TscClock,
    mode: Mode,
    deadline: AtomicU64,
    early: AtomicU64,
    callback: fn(),
}

impl LapicTimer {
    /// Sets up the timer; `callback` runs in interrupt context when a deadline (in
    /// `clock`'s time) passes. `tsc` converts time to TSC values and calibrates the APIC
    /// timer. `prefer_deadline` chooses TSC-deadline mode when the CPU has it.
    pub fn init(
        lapic: &'static Lapic,
        clock: &'static dyn Clock,
        tsc: &'static TscClock,
        features: &cpu::Features,
        prefer_deadline: bool,
        callback: fn(),
    ) -> Result<&'static LapicTimer, IrqError> {
        let mode = if prefer_deadline && features.tsc_deadline {
            Mode::TscDeadline
        } else {
            Mode::OneShot { ticks_per_ns_fp: calibrate(lapic, tsc) }
        };
        let timer: &'static LapicTimer = Box::leak(Box::new(LapicTimer {
            lapic,
            clock,
            tsc,
            mode,
            deadline: AtomicU64::new(NO_DEADLINE),
            early: AtomicU64::new(0),
            callback,
        }));
        let vector = crate::trap::alloc_vector(timer)?;
        match mode {
            Mode::TscDeadline => lapic.write(reg::LVT_TIMER, vector as u32 | LVT_TSC_DEADLINE),
            Mode::OneShot { .. } => {
                lapic.write(reg::TIMER_DIVIDE, DIVIDE_BY_16);
                lapic.write(reg::LVT_TIMER, vector as u32);
            }
        }
        Ok(timer)
    }

    fn program(&self, deadline_ns: u64) {
        match self.mode {
            Mode::TscDeadline => {
                // A TSC value of 0 disarms, so never write 0.
                let left = deadline_ns.saturating_sub(self.clock.now_ns());
                let tsc = self.tsc.tsc_at(self.tsc.now_ns().saturating_add(left)).max(1);
                // SAFETY: the CPU has TSC-deadline mode and the LVT is in that mode.
                unsafe { cpu::wrmsr(IA32_TSC_DEADLINE, tsc) };
            }
            Mode::OneShot { ticks_per_ns_fp } => {
                let left = deadline_ns.saturating_sub(self.clock.now_ns());
                let ticks = ((left as u128 * ticks_per_ns_fp as u128) >> 32) as u64 + 1;
                self.lapic.write(reg::TIMER_INITIAL, ticks.min(u32::MAX as u64) as u32);
            }
        }
    }
}

/// Measures the APIC timer's rate against the TSC clock (divide by 16, ~10 ms).
fn calibrate(lapic: &Lapic, clock: &TscClock) -> u64 {
    lapic.write(reg::TIMER_DIVIDE, DIVIDE_BY_16);
    lapic.write(reg::LVT_TIMER, LVT_MASKED);
    lapic.write(reg::TIMER_INITIAL, u32::MAX);
    let start = clock.now_ns();
    while clock.now_ns().saturating_sub(start) < 10_000_000 {
        core::hint::spin_loop();
    }
    let ticks = u32::MAX - lapic.read(reg::TIMER_CURRENT);
    let elapsed = clock.now_ns().saturating_sub(start).max(1);
    lapic.write(reg::TIMER_INITIAL, 0);
    ((ticks as u128) << 32).checked_div(elapsed as u128).unwrap_or(1 << 32) as u64
}

impl IrqHandler for LapicTimer {
    fn handle(&self, _vector: Irq) {
        let deadline = self.deadline.load(Ordering::Acquire);
        if deadline == NO_DEADLINE {
            return;
        }
        if self.clock.now_ns() < deadline {
            self.early.fetch_add(1, Ordering::Relaxed);
            self.program(deadline); // early: try again, never run the callback early
            return;
        }
        self.deadline.store(NO_DEADLINE, Ordering::Release);
        (self.callback)();
    }
}

impl Timer for LapicTimer {
    fn set_deadline_ns(&self, deadline_ns: u64) {
        self.deadline.store(deadline_ns, Ordering::Release);
        self.program(deadline_ns);
    }

    fn cancel(&self) {
        self.deadline.store(NO_DEADLINE, Ordering::Release);
        match self.mode {
            // SAFETY: writing 0 to IA32_TSC_DEADLINE disarms the timer.
            Mode::TscDeadline => unsafe { cpu::wrmsr(IA32_TSC_DEADLINE, 0) },
            Mode::OneShot { .. } => self.lapic.write(reg::TIMER_INITIAL, 0),
        }
    }

    fn early_fires(&self) -> u64 {
        self.early.load(Ordering::Relaxed)
    }

    fn name(&self) -> &'static str {
        match self.mode {
            Mode::TscDeadline => "tsc-deadline",
            Mode::OneShot { .. } => "lapic-oneshot",
        }
    }
}
