//! [`SharedPage`]: memory shared with Xen or another domain, for `xen_iface`'s protocols.
//!
//! Plain loads and stores are volatile; the read-modify-write operations are atomic
//! (`lock`-prefixed), because the peer changes bits in the same words concurrently.

use core::sync::atomic::{AtomicU64, Ordering};
use xen_iface::shared::SharedMem;

/// Shared memory at a fixed, identity-mapped address.
pub struct SharedPage {
    base: usize,
    len: usize,
}

impl SharedPage {
    /// The shared memory at physical `addr`, `len` bytes.
    ///
    /// # Safety
    /// `[addr, addr + len)` must be mapped, shared with the peer, and used by nothing
    /// else in this kernel for as long as the value lives.
    pub unsafe fn new(addr: u64, len: usize) -> Self {
        SharedPage { base: addr as usize, len }
    }

    /// Its address.
    pub fn addr(&self) -> u64 {
        self.base as u64
    }

    fn fits(&self, offset: usize, size: usize) -> bool {
        offset.is_multiple_of(size) && offset.checked_add(size).is_some_and(|end| end <= self.len)
    }

    fn atomic(&self, offset: usize) -> Option<&AtomicU64> {
        // SAFETY: checked aligned and in bounds of the memory `new` vouched for; the peer
        // only ever accesses it atomically or with single stores.
        self.fits(offset, 8).then(|| unsafe { AtomicU64::from_ptr((self.base + offset) as *mut u64) })
    }
}

impl SharedMem for SharedPage {
    fn len(&self) -> usize {
        self.len
    }

    fn read_u8(&self, offset: usize) -> u8 {
        if !self.fits(offset, 1) {
            return 0;
        }
        // SAFETY: in bounds of the memory `new` vouched for.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u8) }
    }

    fn write_u8(&self, offset: usize, value: u8) {
        if self.fits(offset, 1) {
            // SAFETY: as in read_u8.
            unsafe { core::ptr::write_volatile((self.base + offset) as *mut u8, value) }
        }
    }

    fn read_u32(&self, offset: usize) -> u32 {
        if !self.fits(offset, 4) {
            return 0;
        }
        // SAFETY: aligned and in bounds.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write_u32(&self, offset: usize, value: u32) {
        if self.fits(offset, 4) {
            // SAFETY: aligned and in bounds.
            unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
        }
    }

    fn read_u64(&self, offset: usize) -> u64 {
        self.atomic(offset).map_or(0, |a| a.load(Ordering::Acquire))
    }

    fn write_u64(&self, offset: usize, value: u64) {
        if let Some(a) = self.atomic(offset) {
            a.store(value, Ordering::Release);
        }
    }

    fn swap_u64(&self, offset: usize, value: u64) -> u64 {
        self.atomic(offset).map_or(0, |a| a.swap(value, Ordering::AcqRel))
    }

    fn fetch_and_u64(&self, offset: usize, mask: u64) -> u64 {
        self.atomic(offset).map_or(0, |a| a.fetch_and(mask, Ordering::AcqRel))
    }

    fn fetch_or_u64(&self, offset: usize, bits: u64) -> u64 {
        self.atomic(offset).map_or(0, |a| a.fetch_or(bits, Ordering::AcqRel))
    }
}
