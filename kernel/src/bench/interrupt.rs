//! `interrupt`: one self-interrupt raised, taken and acknowledged, round trip; and
//! `interrupt_raise`: the raise alone.
//!
//! Each `interrupt` iteration raises an interrupt on this CPU through the interrupt
//! controller and spins until its handler has run; the dispatcher then ends it with the
//! controller's end-of-interrupt (a LAPIC EOI write in hvm mode, bits cleared in shared
//! memory on Xen's global callback). The mean time per iteration is raise + delivery +
//! handler + acknowledgement.
//!
//! `interrupt_raise` raises the same interrupt as often with interrupts disabled, so the
//! raises coalesce into one pending interrupt (a LAPIC IRR bit, an event channel's pending
//! bit) taken once at the end. Its exits per operation are what raising costs; the host
//! subtracts them from `interrupt`'s to get what delivery and acknowledgement cost, each
//! side counted in its own trace phase.

use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::interrupts;

const ITERATIONS: u64 = 20_000;
const WARMUP: u64 = 100;

static TAKEN: AtomicU64 = AtomicU64::new(0);

fn on_ipi(_irq: u32) {
    TAKEN.fetch_add(1, Ordering::Release);
}

fn wait_taken(target: u64) {
    while TAKEN.load(Ordering::Acquire) < target {
        core::hint::spin_loop();
    }
}

fn round_trips(p: &Platform, irq: u32, n: u64) {
    for _ in 0..n {
        let target = TAKEN.load(Ordering::Acquire) + 1;
        p.irq.send_self_ipi(irq);
        wait_taken(target);
    }
}

/// Raises `irq` `n` times with interrupts off, then takes the one coalesced interrupt.
fn coalesced_raises(p: &Platform, irq: u32, n: u64) {
    let target = TAKEN.load(Ordering::Acquire) + 1;
    interrupts::without_interrupts(|| {
        for _ in 0..n {
            p.irq.send_self_ipi(irq);
        }
    });
    wait_taken(target);
}

/// Runs the benchmark.
pub fn run(p: &Platform) {
    let irq = match p.irq.alloc_ipi(on_ipi) {
        Ok(v) => v,
        Err(e) => return skip("interrupt", format_args!("reason=no-irq ({e:?})")),
    };
    round_trips(p, irq, WARMUP);
    let (start, end) = phase(p, "interrupt", ITERATIONS, || {
        let start = p.clock.now_ns();
        round_trips(p, irq, ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "interrupt", "ns", per_op(start, end, ITERATIONS), ITERATIONS);

    let (start, end) = phase(p, "interrupt_raise", ITERATIONS, || {
        let start = p.clock.now_ns();
        coalesced_raises(p, irq, ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "interrupt_raise", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
}
