//! `cpuid`: one CPUID instruction, which every hypervisor intercepts: the cost of the
//! cheapest VM exit and return (on bare hardware or under TCG, just the instruction).

use super::{emit, per_op, phase};
use crate::platform::Platform;
use core::hint::black_box;

const ITERATIONS: u64 = 10_000;

/// Times a loop of CPUID leaf 0.
pub fn run(p: &Platform) {
    let (start, end) = phase(p, "cpuid", ITERATIONS, || {
        let start = p.clock.now_ns();
        for _ in 0..ITERATIONS {
            black_box(arch::cpu::cpuid(0, 0));
        }
        (start, p.clock.now_ns())
    });
    emit(p, "cpuid", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
}
