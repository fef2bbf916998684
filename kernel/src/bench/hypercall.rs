//! `null_hypercall`: `xen_version(XENVER_version)`, the cheapest call into Xen: one VM
//! exit (VMMCALL/VMCALL) and return. Runs on any Xen guest.

use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use core::hint::black_box;

const ITERATIONS: u64 = 10_000;

/// Times a loop of null hypercalls.
pub fn run(p: &Platform) {
    let Some(xen) = p.xen else {
        return skip("null_hypercall", format_args!("reason=not-xen"));
    };
    let (start, end) = phase(p, "null_hypercall", ITERATIONS, || {
        let start = p.clock.now_ns();
        for _ in 0..ITERATIONS {
            black_box(xen.version());
        }
        (start, p.clock.now_ns())
    });
    emit(p, "null_hypercall", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
}
