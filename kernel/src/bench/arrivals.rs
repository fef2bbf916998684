//! The benchmarks' interrupt handler: counts the interrupts (or events) that arrived, so a
//! benchmark loop can raise one and wait until it has been handled.

use alloc::boxed::Box;
use arch::platform::{Irq, IrqHandler};
use core::sync::atomic::{AtomicU64, Ordering};

/// Interrupts handled so far.
pub struct Arrivals(AtomicU64);

impl IrqHandler for Arrivals {
    fn handle(&self, _irq: Irq) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

impl Arrivals {
    /// A fresh counter that lives as long as the kernel (handlers are `'static`).
    pub fn leak() -> &'static Arrivals {
        Box::leak(Box::new(Arrivals(AtomicU64::new(0))))
    }

    /// Interrupts handled so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Spins until `target` interrupts have been handled.
    pub fn wait_for(&self, target: u64) {
        while self.count() < target {
            core::hint::spin_loop();
        }
    }
}
