//! `evtchn_rr`: an event-channel round trip through an interdomain loopback to itself.
//!
//! Two ports are connected to each other (`EVTCHNOP_alloc_unbound` for ourselves, then
//! `EVTCHNOP_bind_interdomain` to it). Each iteration sends on B; the handler of A sends
//! back on A; the handler of B completes the iteration: two sends (two hypercalls), two
//! upcalls, and acknowledgements in shared memory only.

use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use arch::xen::events::EventChannels;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use proto::cmdline::Choice;
use spin::Once;
use xen_iface::hypercall::DOMID_SELF;

const ITERATIONS: u64 = 5_000;
const WARMUP: u64 = 50;

static EVENTS: Once<&'static EventChannels> = Once::new();
static PORT_A: AtomicU32 = AtomicU32::new(0);
static RETURNED: AtomicU64 = AtomicU64::new(0);

fn on_a(port: u32) {
    if let Some(ev) = EVENTS.get() {
        ev.notify(port); // bounce it back to B
    }
}

fn on_b(_port: u32) {
    RETURNED.fetch_add(1, Ordering::Release);
}

fn round_trips(ev: &EventChannels, port_b: u32, n: u64) {
    for _ in 0..n {
        let target = RETURNED.load(Ordering::Acquire) + 1;
        ev.notify(port_b);
        while RETURNED.load(Ordering::Acquire) < target {
            core::hint::spin_loop();
        }
    }
}

/// Sets up the loopback and times round trips.
pub fn run(p: &Platform) {
    let Some(ev) = p.events else {
        return skip("evtchn_rr", format_args!("reason=no-event-channels (mode {})", p.mode.name()));
    };
    let xen = ev.xen();
    let own = match p.hypervisor {
        arch::hypervisor::Hypervisor::Xen(info) => info.domid.unwrap_or(DOMID_SELF),
        _ => DOMID_SELF,
    };
    let ports = xen.alloc_unbound(own).and_then(|a| xen.bind_interdomain(own, a).map(|b| (a, b)));
    let (a, b) = match ports {
        Ok(ab) => ab,
        Err(e) => return skip("evtchn_rr", format_args!("reason=loopback-refused (Xen error {e})")),
    };
    EVENTS.call_once(|| ev);
    PORT_A.store(a, Ordering::Release);
    if ev.bind(a, on_a).and_then(|_| ev.bind(b, on_b)).is_err() {
        return skip("evtchn_rr", format_args!("reason=bad-port ({a}, {b})"));
    }
    round_trips(ev, b, WARMUP);
    let (start, end) = phase(p, "evtchn_rr", ITERATIONS, || {
        let start = p.clock.now_ns();
        round_trips(ev, b, ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "evtchn_rr", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
    let _ = xen.close(a);
    let _ = xen.close(b);
}
