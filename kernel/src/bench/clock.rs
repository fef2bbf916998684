//! `clock_read`: the cost of one `Clock::now_ns()`.

use super::{emit, per_op, phase};
use crate::platform::Platform;
use core::hint::black_box;

const READS: u64 = 200_000;

/// Times a tight loop of clock reads.
pub fn run(p: &Platform) {
    let clock = p.clock;
    let (start, end) = phase(p, "clock_read", READS, || {
        let start = clock.now_ns();
        for _ in 0..READS {
            black_box(clock.now_ns());
        }
        (start, clock.now_ns())
    });
    emit(p, "clock_read", "ns", per_op(start, end, READS), READS);
}
