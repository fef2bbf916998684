//! `mem_lat_<size>`: load-to-use latency by working-set size (lmbench's `lat_mem_rd`).
//!
//! The buffer is split into 64-byte lines linked in one random cycle (Sattolo's
//! shuffle), so each load depends on the previous one and hardware prefetchers cannot
//! guess the next line. The result is nanoseconds per load in the fastest of [`REPS`]
//! equal runs: nothing makes a dependent chase faster than its memory allows, while a
//! timer interrupt or the host preempting the vCPU makes one run slower, so the minimum
//! is the estimate of the memory, the others of the noise. The links and the chase are
//! `arch::membench::Chain`'s; the shuffle is here.

use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use alloc::vec::Vec;
use arch::membench::Chain;
use core::hint::black_box;

const LINE: usize = Chain::LINE;
const SIZES: [(usize, &str); 8] = [
    (4 << 10, "mem_lat_4k"),
    (16 << 10, "mem_lat_16k"),
    (64 << 10, "mem_lat_64k"),
    (256 << 10, "mem_lat_256k"),
    (1 << 20, "mem_lat_1m"),
    (4 << 20, "mem_lat_4m"),
    (16 << 20, "mem_lat_16m"),
    (64 << 20, "mem_lat_64m"),
];
/// Fewest loads measured per size, over all runs.
const MIN_LOADS: usize = 200_000;
/// Equal runs per size; the fastest is reported.
const REPS: usize = 5;

/// A small xorshift generator: enough randomness for a shuffle.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A random single cycle over `lines` lines (Sattolo's shuffle); `None` if memory is short.
fn cycle(lines: usize, rng: &mut XorShift) -> Option<Vec<u32>> {
    let mut order: Vec<u32> = Vec::new();
    order.try_reserve_exact(lines).ok()?;
    order.extend(0..lines as u32);
    for i in (1..lines).rev() {
        let j = (rng.next() % i as u64) as usize; // Sattolo: j < i gives a single cycle
        order.swap(i, j);
    }
    Some(order)
}

/// Runs every size that fits in the heap.
pub fn run(p: &Platform) {
    let mut rng = XorShift(arch::cpu::rdtsc() | 1);
    for (size, name) in SIZES {
        let words = size / core::mem::size_of::<usize>();
        let mut buf: Vec<usize> = Vec::new();
        if buf.try_reserve_exact(words).is_err() {
            skip(name, format_args!("reason=heap ({} MiB free)", crate::heap::free_bytes() >> 20));
            continue;
        }
        buf.resize(words, 0);
        let Some(chain) = cycle(size / LINE, &mut rng).and_then(|order| Chain::link(buf, &order)) else {
            skip(name, format_args!("reason=heap"));
            continue;
        };
        // Each run walks the whole cycle at least once, so each sees the full working set.
        let loads = (size / LINE).max(MIN_LOADS / REPS);
        black_box(chain.chase(size / LINE)); // warm caches and TLBs
        let best = phase(p, name, (loads * REPS) as u64, || {
            (0..REPS)
                .map(|_| {
                    let t0 = p.clock.now_ns();
                    black_box(chain.chase(loads));
                    per_op(t0, p.clock.now_ns(), loads as u64)
                })
                .fold(f64::INFINITY, f64::min)
        });
        emit(p, name, "ns", best, (loads * REPS) as u64);
    }
}
