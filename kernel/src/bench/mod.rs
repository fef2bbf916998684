//! Built-in microbenchmarks, one file each. Every benchmark prints one `BENCH {json}`
//! line per result through [`emit`]; the host only parses and compares.
//!
//! The local benchmarks run here in a fixed order; the network ones are driven by the
//! host through `net` and measured there.

mod arrivals;
mod clock;
mod cpuid;
mod evtchn;
mod hypercall;
mod interrupt;
mod mem_bandwidth;
mod mem_latency;
mod mmu;
mod timer;

use crate::platform::Platform;
use proto::cmdline::{Choice, Options};
use proto::lines::BenchRecord;

/// Prints one result line.
pub fn emit(p: &Platform, name: &str, unit: &str, value: f64, iterations: u64) {
    kprintln!("{}", BenchRecord::new(name, p.mode.name(), unit, value, iterations));
}

/// Prints that a benchmark could not run, and why (not a result line).
pub fn skip(name: &str, reason: core::fmt::Arguments<'_>) {
    kprintln!("SKIP {name} {reason}");
}

/// Runs `f`, the measured part of benchmark `name` (`iterations` operations), between
/// the platform's phase markers, so the host can attribute exits to it.
pub fn phase<R>(p: &Platform, name: &str, iterations: u64, f: impl FnOnce() -> R) -> R {
    p.marker.begin(name, iterations);
    let r = f();
    p.marker.end(name, iterations);
    r
}

/// Nanoseconds per operation from a clock span.
pub fn per_op(start_ns: u64, end_ns: u64, ops: u64) -> f64 {
    end_ns.saturating_sub(start_ns) as f64 / ops.max(1) as f64
}

/// Runs the selected local benchmarks.
pub fn run_local(opts: &Options, p: &'static Platform) {
    if opts.bench.contains("cpuid") {
        cpuid::run(p);
    }
    if opts.bench.contains("hypercall") {
        hypercall::run(p);
    }
    if opts.bench.contains("clock") {
        clock::run(p);
    }
    if opts.bench.contains("interrupt") {
        interrupt::run(p);
    }
    if opts.bench.contains("evtchn") {
        evtchn::run(p);
    }
    if opts.bench.contains("timer") {
        timer::run(p);
    }
    if opts.bench.contains("mem_lat") {
        mem_latency::run(p);
    }
    if opts.bench.contains("mem_bw") {
        mem_bandwidth::run(p);
    }
    if opts.bench.contains("mmu") {
        mmu::run(p);
    }
}
