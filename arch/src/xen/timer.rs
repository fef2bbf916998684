//! Xen's one-shot timer (`VCPUOP_set_singleshot_timer`, delivered as `VIRQ_TIMER` on an
//! event channel) as the kernel's [`Timer`].
//!
//! Xen programs deadlines in its system time; the platform [`Clock`] may be another (the
//! TSC, the HPET), so deadlines are translated through the pvclock. Xen's timer can fire
//! early (it rounds to its own timer slack and fires on other timer events too), so the
//! timer, the handler of its own port, checks the clock and re-arms: the callback never
//! runs early.

use super::events::EventChannels;
use super::pvclock::PvClock;
use crate::platform::{Clock, Irq, IrqError, IrqHandler, Timer};
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};
use xen_iface::hypercall::VIRQ_TIMER;

const NO_DEADLINE: u64 = u64::MAX;

/// The PV timer; also the handler of its `VIRQ_TIMER` port.
pub struct XenTimer {
    events: &'static EventChannels,
    clock: &'static dyn Clock,
    pvclock: &'static PvClock,
    same_base: bool,
    deadline: AtomicU64,
    early: AtomicU64,
    callback: fn(),
}

impl IrqHandler for XenTimer {
    fn handle(&self, _port: Irq) {
        let deadline = self.deadline.load(Ordering::Acquire);
        if deadline == NO_DEADLINE {
            return;
        }
        if self.clock.now_ns() < deadline {
            self.early.fetch_add(1, Ordering::Relaxed);
            self.program(deadline); // early: re-arm
            return;
        }
        self.deadline.store(NO_DEADLINE, Ordering::Release);
        (self.callback)();
    }
}

impl XenTimer {
    /// Binds `VIRQ_TIMER`, stops Xen's periodic tick, and returns the timer. Deadlines
    /// are in `clock`'s time; `same_base` says `clock` is `pvclock` itself.
    pub fn init(
        events: &'static EventChannels,
        clock: &'static dyn Clock,
        pvclock: &'static PvClock,
        same_base: bool,
        callback: fn(),
    ) -> Result<&'static XenTimer, IrqError> {
        let _ = events.xen().stop_periodic_timer(0);
        let t: &'static XenTimer = Box::leak(Box::new(XenTimer {
            events,
            clock,
            pvclock,
            same_base,
            deadline: AtomicU64::new(NO_DEADLINE),
            early: AtomicU64::new(0),
            callback,
        }));
        events.bind_virq(VIRQ_TIMER, t)?;
        Ok(t)
    }

    fn program(&self, deadline: u64) {
        let xen_ns = if self.same_base {
            deadline
        } else {
            self.pvclock.now_ns().saturating_add(deadline.saturating_sub(self.clock.now_ns()))
        };
        let _ = self.events.xen().set_singleshot_timer(0, xen_ns);
    }
}

impl Timer for XenTimer {
    fn set_deadline_ns(&self, deadline_ns: u64) {
        self.deadline.store(deadline_ns, Ordering::Release);
        self.program(deadline_ns);
    }

    fn cancel(&self) {
        self.deadline.store(NO_DEADLINE, Ordering::Release);
        let _ = self.events.xen().stop_singleshot_timer(0);
    }

    fn early_fires(&self) -> u64 {
        self.early.load(Ordering::Relaxed)
    }

    fn name(&self) -> &'static str {
        "xen-oneshot"
    }
}
