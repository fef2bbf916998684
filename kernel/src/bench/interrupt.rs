//! `interrupt`: one self-interrupt raised, taken and acknowledged, round trip;
//! `interrupt_raise`: the raise alone; and `interrupt_idle`: raised, then waited for
//! halted.
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
//!
//! `interrupt_idle` raises the interrupt with interrupts disabled and waits for it in the
//! idle `STI; HLT` that returns with interrupts still off ([`arch::cpu::idle_folded`]), as a kernel with nothing to do waits for its
//! next event; interrupts stay disabled between iterations. Its exits show what waiting
//! halted adds or saves: the HLT exit, and whether Xen's interrupt window (the VINTR exit
//! the global callback costs after each injection) still fires.

use super::arrivals::Arrivals;
use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use arch::irqflag as interrupts;
use arch::platform::Irq;

const ITERATIONS: u64 = 20_000;
const WARMUP: u64 = 100;

fn round_trips(p: &Platform, taken: &Arrivals, irq: Irq, n: u64) {
    for _ in 0..n {
        let target = taken.count() + 1;
        p.irq.send_self_ipi(irq);
        taken.wait_for(target);
    }
}

/// Raises `irq` `n` times with interrupts off, then takes the one coalesced interrupt.
fn coalesced_raises(p: &Platform, taken: &Arrivals, irq: Irq, n: u64) {
    let target = taken.count() + 1;
    interrupts::without_interrupts(|| {
        for _ in 0..n {
            p.irq.send_self_ipi(irq);
        }
    });
    taken.wait_for(target);
}

/// `n` times: raises `irq` with interrupts off and halts until it was taken. Interrupts
/// are on only in the idle `STI; HLT` (and after the last iteration).
fn idle_round_trips(p: &Platform, taken: &Arrivals, irq: Irq, n: u64) {
    interrupts::disable();
    for _ in 0..n {
        let target = taken.count() + 1;
        p.irq.send_self_ipi(irq);
        while taken.count() < target {
            arch::cpu::idle_folded();
        }
    }
    interrupts::enable();
}

/// Runs the benchmark.
pub fn run(p: &Platform) {
    let taken = Arrivals::leak();
    let irq = match p.irq.alloc_ipi(taken) {
        Ok(v) => v,
        Err(e) => return skip("interrupt", format_args!("reason=no-irq ({e:?})")),
    };
    round_trips(p, taken, irq, WARMUP);
    let (start, end) = phase(p, "interrupt", ITERATIONS, || {
        let start = p.clock.now_ns();
        round_trips(p, taken, irq, ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "interrupt", "ns", per_op(start, end, ITERATIONS), ITERATIONS);

    let (start, end) = phase(p, "interrupt_raise", ITERATIONS, || {
        let start = p.clock.now_ns();
        coalesced_raises(p, taken, irq, ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "interrupt_raise", "ns", per_op(start, end, ITERATIONS), ITERATIONS);

    idle_round_trips(p, taken, irq, WARMUP);
    let (start, end) = phase(p, "interrupt_idle", ITERATIONS, || {
        let start = p.clock.now_ns();
        idle_round_trips(p, taken, irq, ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "interrupt_idle", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
}
