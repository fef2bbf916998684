//! Xen's paravirtual clock as the kernel's [`Clock`]: the TSC scaled by the
//! `vcpu_time_info` Xen keeps in the vCPU's `vcpu_info`. Reading it costs no exit.
//!
//! The result is Xen's system time (ns since the host booted), the time base of Xen's
//! timers. Unless Xen flags the TSC as stable, readings are made monotonic across its
//! updates of the record (an atomic maximum, as Linux's pvclock does).

use super::shared::SharedPage;
use crate::platform::Clock;
use core::sync::atomic::{AtomicU64, Ordering};
use xen_iface::pvclock;

/// Attempts at a consistent read per call of the version protocol's reader.
const READ_TRIES: u32 = 1000;

/// The pvclock.
pub struct PvClock {
    page: &'static SharedPage,
    offset: usize,
    last: AtomicU64,
}

impl PvClock {
    /// The clock whose `vcpu_time_info` is at `offset` of `page`.
    pub fn new(page: &'static SharedPage, offset: usize) -> Self {
        PvClock { page, offset, last: AtomicU64::new(0) }
    }
}

impl Clock for PvClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        // Xen writes the record in a few stores, so a consistent copy always comes; like
        // Linux, wait for it rather than answer with an older reading (under
        // `FLAG_TSC_STABLE` there is none kept).
        let info = loop {
            if let Ok(info) = pvclock::read(self.page, self.offset, READ_TRIES) {
                break info;
            }
        };
        let ns = info.ns_at(crate::cpu::rdtsc());
        if info.flags & pvclock::FLAG_TSC_STABLE != 0 {
            return ns; // one TSC for all vCPUs: each record continues the last
        }
        let prev = self.last.fetch_max(ns, Ordering::Relaxed);
        prev.max(ns)
    }

    fn name(&self) -> &'static str {
        "pvclock"
    }
}
