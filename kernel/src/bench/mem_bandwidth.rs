//! `mem_bw_read`, `mem_bw_write`, `mem_bw_copy`: sustained bandwidth over a buffer much
//! larger than the caches (lmbench's `bw_mem rd/wr/cp`), in MB/s (10^6 bytes); and
//! `mem_bw_buffer`, the buffer size they ran on (32 MiB, less only if the heap is small).
//!
//! All three are loops of 64-bit loads and stores, as lmbench's are. The copy is such a
//! loop too, not `memcpy`: the kernel's `memcpy` is `rep movs`, which hardware runs
//! fast but an emulator such as QEMU's TCG runs one element per step. The write and
//! copy loops are `arch::membench`'s, whose volatile stores keep them loops.

use super::{emit, skip};
use crate::platform::Platform;
use alloc::vec::Vec;
use arch::membench::{copy_volatile, fill_volatile};
use core::hint::black_box;

const BUFFER: usize = 32 << 20;
/// The copy's destination starts this many words past a page boundary relative to the
/// source, so source and destination never share cache sets or TLB slots at the same
/// offset (STREAM's OFFSET; the 4 KiB aliasing costs real CPUs and emulators alike).
const COPY_SKEW_WORDS: usize = 640;
const MIN_BUFFER: usize = 1 << 20;
/// Passes are repeated until at least this much time has been measured.
const MIN_SPAN_NS: u64 = 100_000_000;

fn alloc(words: usize) -> Option<Vec<u64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(words).ok()?;
    v.resize(words, 1);
    Some(v)
}

fn read_pass(buf: &[u64]) -> u64 {
    let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
    for chunk in buf.chunks_exact(4) {
        a = a.wrapping_add(chunk[0]);
        b = b.wrapping_add(chunk[1]);
        c = c.wrapping_add(chunk[2]);
        d = d.wrapping_add(chunk[3]);
    }
    a ^ b ^ c ^ d
}

/// Repeats `pass` until MIN_SPAN_NS elapsed, as phase `name`; returns MB/s for
/// `bytes_per_pass` and the passes made. The phase reports one operation per byte.
fn measure(p: &Platform, name: &str, bytes_per_pass: usize, mut pass: impl FnMut(u64)) -> (f64, u64) {
    pass(0); // warm-up: fills caches and TLBs
    p.marker.begin(name, 0);
    let start = p.clock.now_ns();
    let mut passes = 0u64;
    while p.clock.now_ns().saturating_sub(start) < MIN_SPAN_NS {
        pass(passes);
        passes += 1;
    }
    let span = p.clock.now_ns().saturating_sub(start).max(1);
    p.marker.end(name, passes * bytes_per_pass as u64);
    (bytes_per_pass as f64 * passes as f64 * 1000.0 / span as f64, passes)
}

/// Runs the three bandwidth benchmarks.
pub fn run(p: &Platform) {
    // The largest power of two that fits both the stated size and a quarter of the heap.
    let room = BUFFER.min(crate::heap::free_bytes() / 4).max(1);
    let bytes = (1usize << (usize::BITS - 1 - room.leading_zeros())).clamp(MIN_BUFFER, BUFFER);
    let words = bytes / 8;
    let (Some(mut src), Some(mut dst_buf)) = (alloc(words), alloc(words + COPY_SKEW_WORDS)) else {
        return skip("mem_bw", format_args!("reason=heap ({} MiB free)", crate::heap::free_bytes() >> 20));
    };
    let (mbs, passes) = measure(p, "mem_bw_read", bytes, |_| {
        black_box(read_pass(&src));
    });
    emit(p, "mem_bw_read", "MB/s", mbs, passes);
    let (mbs, passes) = measure(p, "mem_bw_write", bytes, |i| fill_volatile(&mut src, i));
    emit(p, "mem_bw_write", "MB/s", mbs, passes);
    let dst = &mut dst_buf[COPY_SKEW_WORDS..];
    let (mbs, passes) = measure(p, "mem_bw_copy", bytes, |_| {
        copy_volatile(dst, &src);
        black_box(&mut *dst);
    });
    emit(p, "mem_bw_copy", "MB/s", mbs, passes);
    emit(p, "mem_bw_buffer", "KiB", (bytes >> 10) as f64, 1);
}
