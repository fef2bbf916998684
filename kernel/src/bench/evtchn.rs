//! `evtchn_rr`: an event-channel round trip through an interdomain loopback to itself.
//!
//! Two ports are connected to each other (`EVTCHNOP_alloc_unbound` for ourselves, then
//! `EVTCHNOP_bind_interdomain` to it). Each iteration sends on B and waits until A's
//! handler ran, then sends back on A and waits until B's handler ran: two sends (two
//! hypercalls), two upcalls, acknowledgements in shared memory.
//!
//! The handlers only count; the loop sends, after the upcall has been acknowledged. A
//! send from inside the upcall would make its own vector pending again while it is in
//! service: on the per-vCPU vector Xen then drops the APIC assist (an EOI exit per round
//! trip), and on the global one the two events fold into one upcall. From the loop, every
//! variant pays for exactly two sends and two deliveries.

use super::arrivals::Arrivals;
use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use arch::xen::events::EventChannels;
use proto::cmdline::Choice;
use xen_iface::hypercall::DOMID_SELF;

const ITERATIONS: u64 = 5_000;
const WARMUP: u64 = 50;

/// Sends on `port` and waits until the event was handled at its other end, which `at`
/// counts.
fn send_and_wait(ev: &EventChannels, at: &Arrivals, port: u32) {
    let target = at.count() + 1;
    ev.notify(port);
    at.wait_for(target);
}

/// `n` round trips: B to A, then A to B.
fn round_trips(ev: &EventChannels, at_a: &Arrivals, at_b: &Arrivals, (a, b): (u32, u32), n: u64) {
    for _ in 0..n {
        send_and_wait(ev, at_a, b);
        send_and_wait(ev, at_b, a);
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
    let (at_a, at_b) = (Arrivals::leak(), Arrivals::leak());
    if ev.bind(a, at_a).and_then(|_| ev.bind(b, at_b)).is_err() {
        let _ = ev.close(a);
        let _ = ev.close(b);
        return skip("evtchn_rr", format_args!("reason=bad-port ({a}, {b})"));
    }
    round_trips(ev, at_a, at_b, (a, b), WARMUP);
    let (start, end) = phase(p, "evtchn_rr", ITERATIONS, || {
        let start = p.clock.now_ns();
        round_trips(ev, at_a, at_b, (a, b), ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "evtchn_rr", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
    let _ = ev.close(a);
    let _ = ev.close(b);
}
