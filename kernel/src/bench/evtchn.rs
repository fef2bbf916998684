//! `evtchn_rr`: an event-channel round trip through an interdomain loopback to itself.
//!
//! Two ports are connected to each other (`EVTCHNOP_alloc_unbound` for ourselves, then
//! `EVTCHNOP_bind_interdomain` to it). Each iteration sends on B; the handler of A sends
//! back on A; the handler of B completes the iteration: two sends (two hypercalls), two
//! upcalls, and acknowledgements in shared memory only.

use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use alloc::boxed::Box;
use arch::platform::{Irq, IrqHandler};
use arch::xen::events::EventChannels;
use core::sync::atomic::{AtomicU64, Ordering};
use proto::cmdline::Choice;
use xen_iface::hypercall::DOMID_SELF;

const ITERATIONS: u64 = 5_000;
const WARMUP: u64 = 50;

/// Port A's handler: sends every event back on its own port, to B.
struct Bounce(&'static EventChannels);

impl IrqHandler for Bounce {
    fn handle(&self, port: Irq) {
        self.0.notify(port);
    }
}

/// Port B's handler: counts the round trips that came back.
struct Returned(AtomicU64);

impl IrqHandler for Returned {
    fn handle(&self, _port: Irq) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

fn round_trips(ev: &EventChannels, returned: &Returned, port_b: u32, n: u64) {
    for _ in 0..n {
        let target = returned.0.load(Ordering::Acquire) + 1;
        ev.notify(port_b);
        while returned.0.load(Ordering::Acquire) < target {
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
    let returned: &'static Returned = Box::leak(Box::new(Returned(AtomicU64::new(0))));
    if ev.bind(a, Box::leak(Box::new(Bounce(ev)))).and_then(|_| ev.bind(b, returned)).is_err() {
        let _ = ev.close(a);
        let _ = ev.close(b);
        return skip("evtchn_rr", format_args!("reason=bad-port ({a}, {b})"));
    }
    round_trips(ev, returned, b, WARMUP);
    let (start, end) = phase(p, "evtchn_rr", ITERATIONS, || {
        let start = p.clock.now_ns();
        round_trips(ev, returned, b, ITERATIONS);
        (start, p.clock.now_ns())
    });
    emit(p, "evtchn_rr", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
    let _ = ev.close(a);
    let _ = ev.close(b);
}
