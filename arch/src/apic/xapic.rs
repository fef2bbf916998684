//! xAPIC register access: the 4 KiB MMIO page at the APIC base.

use crate::mmio::Mmio;
use crate::platform::Vector;

/// The memory-mapped APIC.
#[derive(Debug)]
pub(super) struct XApic {
    base: usize,
}

impl XApic {
    /// # Safety
    /// `base` must be the APIC's page, mapped uncached at that address.
    pub(super) unsafe fn new(base: usize) -> Self {
        XApic { base }
    }

    fn reg(&self, offset: u32) -> Mmio<u32> {
        // SAFETY: offsets come from `super::reg`, all aligned 32-bit registers inside the
        // mapped APIC page (see `new`).
        unsafe { Mmio::at(self.base + offset as usize) }
    }

    pub(super) fn read(&self, offset: u32) -> u32 {
        self.reg(offset).read()
    }

    pub(super) fn write(&self, offset: u32, value: u32) {
        self.reg(offset).write(value);
    }

    /// Fixed delivery, "self" destination shorthand (ICR bits 19:18 = 01).
    pub(super) fn send_self_ipi(&self, vector: Vector) {
        self.write(super::reg::ICR_HIGH, 0);
        self.write(super::reg::ICR_LOW, (1 << 18) | vector as u32);
    }
}
