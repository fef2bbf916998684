//! Buffers shared with devices.
//!
//! The kernel is identity-mapped, so a heap allocation's address is its physical address
//! and can be handed to a device as is. [`DmaBuffer`] is such an allocation: page-aligned,
//! zeroed, owned, freed on drop. Host tests use the same type; there the "physical"
//! address is the host pointer, which a fake device dereferences.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::ptr::NonNull;

/// A zeroed, page-aligned buffer a device may read and write.
pub struct DmaBuffer {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the buffer is plain memory owned by this value; moving it between contexts is
// fine, and shared access goes through raw pointers with volatile accesses.
unsafe impl Send for DmaBuffer {}

impl DmaBuffer {
    /// Allocates `len` bytes (at least 1), aligned to 4 KiB. `None` if memory is short.
    pub fn new(len: usize) -> Option<Self> {
        let layout = Layout::from_size_align(len.max(1), 4096).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(DmaBuffer { ptr, layout })
    }

    /// The device-visible address.
    pub fn phys(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Pointer for the CPU side.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// True if empty (never: at least one byte is allocated).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes, for the CPU. The caller must not hold this while the device writes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr/len describe this live allocation.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }

    /// The bytes, mutable. The caller must not hold this while the device accesses them.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr/len describe this live allocation, borrowed mutably through self.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}
