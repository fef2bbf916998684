//! Classic PV's interrupt flag: the `evtchn_upcall_mask` byte of vCPU 0's `vcpu_info`,
//! and `SCHEDOP_block` as the halt (the [`crate::irqflag`] the PV entry installs).

use super::Xen;
use crate::irqflag::InterruptFlag;
use core::sync::atomic::{compiler_fence, AtomicU8, Ordering};

/// Byte offsets in `struct vcpu_info` (`xen.h`).
const UPCALL_PENDING: usize = 0;
const UPCALL_MASK: usize = 1;

/// PV's interrupt flag: the `evtchn_upcall_mask` of vCPU 0's `vcpu_info`; halting is
/// `SCHEDOP_block`.
pub struct PvInterruptFlag {
    xen: Xen,
    vcpu_info: usize,
}

impl PvInterruptFlag {
    /// The flag of the `vcpu_info` at `addr`.
    ///
    /// # Safety
    /// `addr` must be vCPU 0's `vcpu_info`, mapped for good (in the mapped `shared_info`).
    pub unsafe fn new(xen: Xen, addr: usize) -> Self {
        PvInterruptFlag { xen, vcpu_info: addr }
    }

    fn byte(&self, offset: usize) -> &AtomicU8 {
        // SAFETY: inside the vcpu_info `new` vouched for; Xen changes these bytes
        // concurrently, so they are only ever accessed atomically.
        unsafe { AtomicU8::from_ptr((self.vcpu_info + offset) as *mut u8) }
    }
}

impl InterruptFlag for PvInterruptFlag {
    #[inline]
    fn disable(&self) {
        self.byte(UPCALL_MASK).store(1, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    #[inline]
    fn enable(&self) {
        compiler_fence(Ordering::SeqCst);
        self.byte(UPCALL_MASK).store(0, Ordering::SeqCst);
        // An event that arrived while masked is delivered on the next return from Xen:
        // make one (the null hypercall) so it does not wait.
        if self.byte(UPCALL_PENDING).load(Ordering::SeqCst) != 0 {
            self.xen.version();
        }
    }

    #[inline]
    fn are_enabled(&self) -> bool {
        self.byte(UPCALL_MASK).load(Ordering::Relaxed) == 0
    }

    fn idle(&self) {
        // Blocking unmasks events, and returns at once if one is pending.
        self.xen.pv().block();
        self.byte(UPCALL_MASK).store(0, Ordering::SeqCst);
    }

    fn idle_folded(&self) {
        self.xen.pv().block();
        self.disable();
    }

    fn halt_forever(&self) -> ! {
        loop {
            self.disable();
            self.xen.pv().yield_now();
        }
    }

    fn name(&self) -> &'static str {
        "xen-pv"
    }
}
