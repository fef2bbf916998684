//! `interrupt`: one self-IPI taken and acknowledged, round trip.
//!
//! Each iteration raises an interrupt on this CPU through the interrupt controller and
//! spins until its handler has run; the dispatcher then ends it with the controller's
//! end-of-interrupt (a LAPIC EOI write in hvm mode). The mean time per iteration is
//! delivery + handler + EOI.

use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use core::sync::atomic::{AtomicU64, Ordering};

const ITERATIONS: u64 = 20_000;
const WARMUP: u64 = 100;

static TAKEN: AtomicU64 = AtomicU64::new(0);

fn on_ipi(_irq: u32) {
    TAKEN.fetch_add(1, Ordering::Release);
}

fn round_trips(p: &Platform, irq: u32, n: u64) {
    for _ in 0..n {
        let target = TAKEN.load(Ordering::Acquire) + 1;
        p.irq.send_self_ipi(irq);
        while TAKEN.load(Ordering::Acquire) < target {
            core::hint::spin_loop();
        }
    }
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
}
