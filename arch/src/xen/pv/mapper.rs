//! The MMU benchmarks' window in a classic PV guest (`crate::pagemap`): remapped with
//! `update_va_mapping`, the TLB flushed with `mmuext_op`.

use super::Xen;
use xen_iface::pv;

/// The MMU benchmarks' window in a PV guest: a page of the image whose L1 entry Xen's
/// bootstrap tables hold, mapped and unmapped with `update_va_mapping` (one hypercall
/// each, checked by Xen); the TLB flushed with `mmuext_op`.
pub struct PvMapper {
    xen: Xen,
    window: u64,
    frames: &'static [u64],
}

impl PvMapper {
    /// The mapper over `window`, machine frames from `frames` (the domain's frame list).
    ///
    /// # Safety
    /// `window` must be a page of the image nothing else uses (its own frame is given up).
    pub unsafe fn new(xen: Xen, window: u64, frames: &'static [u64]) -> Self {
        let m = PvMapper { xen, window, frames };
        crate::platform::PageMapper::unmap(&m);
        m
    }
}

impl crate::platform::PageMapper for PvMapper {
    fn window(&self) -> u64 {
        self.window
    }

    fn map(&self, page: u64) {
        let Some(&mfn) = self.frames.get((page >> 12) as usize) else { return };
        // SAFETY: only the window's mapping changes (`new`'s contract); Xen checks the
        // entry (a data page of this domain, not a page table).
        let _ = unsafe { self.xen.pv().update_va_mapping(self.window, (mfn << 12) | pv::pte::DATA) };
    }

    fn unmap(&self) {
        // SAFETY: as in map.
        let _ = unsafe { self.xen.pv().update_va_mapping(self.window, 0) };
    }

    fn flush_tlb(&self) {
        let _ = self.xen.pv().flush_tlb_local();
    }

    fn name(&self) -> &'static str {
        "update_va_mapping"
    }
}
