//! Timer benchmarks.
//!
//! - `timer_arm_to_fire`: arm a deadline of "now" and wait for the expiry callback;
//!   programming + delivery + handler.
//! - `timer_lateness`: arm 50 µs ahead, halt, and measure how late the callback ran.
//!   A callback before its deadline would break the `Timer` contract; it is counted and
//!   reported as an error.
//! - `timer_early_fires`: how often, during `timer_lateness`, the hardware fired before
//!   the deadline and the timer armed itself again (Xen's PV timer does, by its slack):
//!   the count keeping the contract took, per deadline.

use super::{emit, per_op, phase};
use crate::platform::{Platform, LAST_EXPIRY_NS, TIMER_EXPIRIES};
use arch::irqflag as interrupts;
use core::sync::atomic::Ordering;

const ARM_TO_FIRE: u64 = 2_000;
const LATENESS: u64 = 200;
const AHEAD_NS: u64 = 50_000;

/// Arms `deadline` and waits (halting if `halt`) for the expiry; returns when it ran.
fn wait_expiry(p: &Platform, deadline: u64, halt: bool) -> u64 {
    let before = TIMER_EXPIRIES.load(Ordering::Acquire);
    p.timer.set_deadline_ns(deadline);
    loop {
        interrupts::disable();
        if TIMER_EXPIRIES.load(Ordering::Acquire) != before {
            interrupts::enable();
            return LAST_EXPIRY_NS.load(Ordering::Acquire);
        }
        if halt {
            arch::cpu::idle();
        } else {
            interrupts::enable();
            core::hint::spin_loop();
        }
    }
}

/// Runs both timer benchmarks.
pub fn run(p: &Platform) {
    let total = phase(p, "timer_arm_to_fire", ARM_TO_FIRE, || {
        let mut total = 0u64;
        for _ in 0..ARM_TO_FIRE {
            let armed = p.clock.now_ns();
            let fired = wait_expiry(p, armed, false);
            total += fired.saturating_sub(armed);
        }
        total
    });
    emit(p, "timer_arm_to_fire", "ns", per_op(0, total, ARM_TO_FIRE), ARM_TO_FIRE);

    let early_before = p.timer.early_fires();
    let (late, early) = phase(p, "timer_lateness", LATENESS, || {
        let (mut late, mut early) = (0u64, 0u64);
        for _ in 0..LATENESS {
            let deadline = p.clock.now_ns() + AHEAD_NS;
            let fired = wait_expiry(p, deadline, true);
            if fired < deadline {
                early += 1;
            }
            late += fired.saturating_sub(deadline);
        }
        (late, early)
    });
    if early > 0 {
        kprintln!("ERROR timer: {early} of {LATENESS} expiries ran before their deadline");
    }
    emit(p, "timer_lateness", "ns", per_op(0, late, LATENESS), LATENESS);
    let refires = p.timer.early_fires() - early_before;
    emit(p, "timer_early_fires", "per_deadline", refires as f64 / LATENESS as f64, LATENESS);
}
