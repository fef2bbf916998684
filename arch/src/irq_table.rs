//! The slots that connect an interrupt number to its handler: one per vector in the trap
//! dispatcher (`trap`), one per port in the event channels (`xen::events`).
//!
//! A handler is a `&'static dyn IrqHandler`, a fat pointer (the device's state and its
//! vtable), too wide for one atomic. A [`HandlerSlot`] therefore holds an `AtomicPtr` to
//! a copy of that reference leaked on registration: publishing is one compare-exchange,
//! dispatching one load and an indirect call. The interrupt path takes no lock and
//! allocates nothing, so it cannot deadlock against a registration it interrupted, on
//! this CPU or another. A copy is never freed once published, because an interrupt may
//! still be reading it: a cleared slot leaks its 16 bytes, as the handler it pointed to
//! lives for ever too.

use crate::platform::{Irq, IrqHandler};
use alloc::boxed::Box;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A published handler: a leaked copy of the reference.
type Published = &'static dyn IrqHandler;

/// One interrupt's handler, or none.
pub struct HandlerSlot(AtomicPtr<Published>);

impl HandlerSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        HandlerSlot(AtomicPtr::new(ptr::null_mut()))
    }

    /// Connects `handler` if the slot is empty; false if another handler holds it.
    pub fn claim(&self, handler: &'static dyn IrqHandler) -> bool {
        Self::claim_first(core::slice::from_ref(self), handler).is_some()
    }

    /// Connects `handler` to the first empty slot of `slots` and returns its index, or
    /// `None` if every slot holds a handler.
    pub fn claim_first(slots: &[HandlerSlot], handler: &'static dyn IrqHandler) -> Option<usize> {
        let copy: *mut Published = Box::into_raw(Box::new(handler));
        let found = slots.iter().position(|slot| {
            slot.0.load(Ordering::Relaxed).is_null()
                && slot.0.compare_exchange(ptr::null_mut(), copy, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        });
        if found.is_none() {
            // SAFETY: `copy` came from `Box::into_raw` above and no slot took it, so
            // nothing else can reach it.
            drop(unsafe { Box::from_raw(copy) });
        }
        found
    }

    /// Disconnects the handler, if any. An interrupt already in it finishes; the next
    /// finds the slot empty.
    pub fn clear(&self) {
        self.0.store(ptr::null_mut(), Ordering::Release);
    }

    /// The handler, if one is connected.
    #[inline]
    pub fn get(&self) -> Option<&'static dyn IrqHandler> {
        let copy = self.0.load(Ordering::Acquire);
        // SAFETY: non-null only as stored by `claim_first`: a `Box::into_raw` pointer, published
        // with release ordering (its contents visible after this acquire load), never freed.
        unsafe { copy.as_ref() }.copied()
    }

    /// Runs the handler for `irq`; false if the slot is empty.
    #[inline]
    pub fn dispatch(&self, irq: Irq) -> bool {
        match self.get() {
            Some(handler) => {
                handler.handle(irq);
                true
            }
            None => false,
        }
    }
}

impl Default for HandlerSlot {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU32, AtomicU64};

    /// A device's state: counts its interrupts and remembers the last number.
    struct Device {
        hits: AtomicU64,
        last: AtomicU32,
    }

    impl Device {
        fn leak() -> &'static Device {
            Box::leak(Box::new(Device { hits: AtomicU64::new(0), last: AtomicU32::new(u32::MAX) }))
        }

        fn hits(&self) -> u64 {
            self.hits.load(Ordering::Relaxed)
        }
    }

    impl IrqHandler for Device {
        fn handle(&self, irq: Irq) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.last.store(irq, Ordering::Relaxed);
        }
    }

    fn table(n: usize) -> Box<[HandlerSlot]> {
        (0..n).map(|_| HandlerSlot::new()).collect()
    }

    #[test]
    fn empty_slot_dispatches_nothing() {
        let slot = HandlerSlot::new();
        assert!(slot.get().is_none());
        assert!(!slot.dispatch(7));
    }

    #[test]
    fn dispatch_reaches_the_right_context() {
        let slots = table(4);
        let (a, b) = (Device::leak(), Device::leak());
        assert_eq!(HandlerSlot::claim_first(&slots, a), Some(0));
        assert_eq!(HandlerSlot::claim_first(&slots, b), Some(1));
        assert!(slots[1].dispatch(0x31));
        assert!(slots[1].dispatch(0x31));
        assert!(slots[0].dispatch(0x30));
        assert!(!slots[2].dispatch(0x32));
        assert_eq!((a.hits(), a.last.load(Ordering::Relaxed)), (1, 0x30));
        assert_eq!((b.hits(), b.last.load(Ordering::Relaxed)), (2, 0x31));
    }

    #[test]
    fn two_devices_of_a_kind_coexist_on_one_table() {
        let slots = table(8);
        let devices: [&'static Device; 3] = [Device::leak(), Device::leak(), Device::leak()];
        for (i, d) in devices.iter().enumerate() {
            assert!(slots[i * 3].claim(*d));
        }
        for _ in 0..5 {
            slots[3].dispatch(3);
        }
        assert_eq!(devices.map(|d| d.hits()), [0, 5, 0]);
    }

    #[test]
    fn full_table_refuses() {
        let slots = table(2);
        let d = Device::leak();
        assert_eq!(HandlerSlot::claim_first(&slots, d), Some(0));
        assert_eq!(HandlerSlot::claim_first(&slots, d), Some(1));
        assert_eq!(HandlerSlot::claim_first(&slots, d), None);
        assert_eq!(HandlerSlot::claim_first(&[], d), None);
    }

    #[test]
    fn claimed_slot_refuses_another_handler() {
        let slot = HandlerSlot::new();
        let (a, b) = (Device::leak(), Device::leak());
        assert!(slot.claim(a));
        assert!(!slot.claim(b));
        slot.dispatch(1);
        assert_eq!((a.hits(), b.hits()), (1, 0));
    }

    #[test]
    fn cleared_slot_can_be_claimed_again() {
        let slot = HandlerSlot::new();
        let (a, b) = (Device::leak(), Device::leak());
        assert!(slot.claim(a));
        slot.clear();
        assert!(!slot.dispatch(1));
        assert!(slot.claim(b));
        slot.dispatch(1);
        assert_eq!((a.hits(), b.hits()), (0, 1));
    }

    static PLAIN_HITS: AtomicU64 = AtomicU64::new(0);

    fn plain(_irq: Irq) {
        PLAIN_HITS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn a_plain_fn_is_a_handler() {
        let slot = HandlerSlot::new();
        assert!(slot.claim(&plain));
        assert!(slot.dispatch(0));
        assert_eq!(PLAIN_HITS.load(Ordering::Relaxed), 1);
    }
}
