//! Xen PV drivers: the shared-page adapter for `xen_iface`'s protocols and the PV console.
//!
//! The protocol logic (ring indexes, layouts) lives in `xen_iface`, pure and host-tested;
//! this module gives it real memory ([`SharedPage`]) and real notifications.

pub mod console;

use xen_iface::shared::SharedMem;

/// A guest page shared with another domain, accessed with volatile loads and stores.
pub struct SharedPage {
    base: usize,
    len: usize,
}

impl SharedPage {
    /// The shared memory at physical `addr`, `len` bytes, identity-mapped.
    ///
    /// # Safety
    /// `[addr, addr + len)` must be mapped, shared with the peer, and used by nothing
    /// else in this kernel for as long as the value lives.
    pub unsafe fn new(addr: u64, len: usize) -> Self {
        SharedPage {
            base: addr as usize,
            len,
        }
    }
}

impl SharedMem for SharedPage {
    fn len(&self) -> usize {
        self.len
    }

    fn read_u8(&self, offset: usize) -> u8 {
        if offset >= self.len {
            return 0;
        }
        // SAFETY: offset < len keeps the access inside the page `new` vouched for.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u8) }
    }

    fn write_u8(&self, offset: usize, value: u8) {
        if offset < self.len {
            // SAFETY: as in read_u8.
            unsafe { core::ptr::write_volatile((self.base + offset) as *mut u8, value) }
        }
    }

    fn read_u32(&self, offset: usize) -> u32 {
        if offset % 4 != 0 || offset + 4 > self.len {
            return 0;
        }
        // SAFETY: aligned and inside the page.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write_u32(&self, offset: usize, value: u32) {
        if offset % 4 == 0 && offset + 4 <= self.len {
            // SAFETY: aligned and inside the page.
            unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
        }
    }
}
