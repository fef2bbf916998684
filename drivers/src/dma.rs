//! Memory shared with devices, and how drivers get it.
//!
//! The kernel is identity-mapped, so a heap allocation's address is its physical address
//! and can be handed to a device as is. [`DmaBuffer`] is such an allocation: page-aligned,
//! zeroed, owned, freed on drop. Drivers that treat the device as untrusted reach it only
//! through `xen_iface`'s [`SharedMem`] (one volatile load or store per access, never a
//! Rust reference over memory the device may write) and move frames between it and their
//! own memory with `SharedMem::read_bytes`/`write_bytes`, which `DmaBuffer` does a
//! 64-bit word at a time.
//!
//! [`DmaAlloc`] is where such memory comes from (virtio-drivers' `Hal::dma_alloc`): the
//! kernel's [`HeapDma`] gives `DmaBuffer`s, host tests give fake memory that a fake
//! device reads and writes by address (`virtio::fake`).

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use xen_iface::shared::SharedMem;

/// Allocates memory a device can reach.
pub trait DmaAlloc {
    /// The memory, accessed only through [`SharedMem`].
    type Mem: SharedMem;
    /// `len` zeroed bytes (at least 1) aligned to 4 KiB, and the address the device uses
    /// for the first of them; `None` if memory is short.
    fn alloc(&self, len: usize) -> Option<(Self::Mem, u64)>;
}

/// The kernel's DMA memory: [`DmaBuffer`]s from the (identity-mapped) heap.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapDma;

impl DmaAlloc for HeapDma {
    type Mem = DmaBuffer;

    fn alloc(&self, len: usize) -> Option<(DmaBuffer, u64)> {
        let buf = DmaBuffer::new(len)?;
        let phys = buf.phys();
        Some((buf, phys))
    }
}

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

    /// The bytes, for the CPU. The caller must not hold this while the device writes
    /// (drivers of untrusted devices use [`SharedMem::read_bytes`] instead).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr/len describe this live allocation.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }

    /// The bytes, mutable. The caller must not hold this while the device accesses them.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr/len describe this live allocation, borrowed mutably through self.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }

    /// The address of `size` bytes at `offset`, if they lie inside the buffer at their
    /// natural alignment (the buffer itself is page-aligned).
    #[inline]
    fn at(&self, offset: usize, size: usize) -> Option<*mut u8> {
        let fits = offset.is_multiple_of(size) && offset.checked_add(size).is_some_and(|end| end <= self.len());
        // SAFETY: offset + size <= len, so the pointer stays inside the allocation.
        fits.then(|| unsafe { self.ptr.as_ptr().add(offset) })
    }
}

/// Every access is one volatile load or store (the read-modify-writes are atomic), so
/// the compiler neither merges, splits nor caches what the device may change; accesses
/// outside the buffer or off their alignment read 0 and write nothing.
impl SharedMem for DmaBuffer {
    fn len(&self) -> usize {
        self.layout.size()
    }

    #[inline]
    fn read_u8(&self, offset: usize) -> u8 {
        // SAFETY: `at` checked bounds; the memory is owned by this buffer.
        self.at(offset, 1).map_or(0, |p| unsafe { core::ptr::read_volatile(p) })
    }

    #[inline]
    fn write_u8(&self, offset: usize, value: u8) {
        if let Some(p) = self.at(offset, 1) {
            // SAFETY: as in read_u8.
            unsafe { core::ptr::write_volatile(p, value) }
        }
    }

    /// Single-byte loads up to an 8-byte boundary, then one 64-bit load per word.
    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        if !self.holds(offset, out.len()) {
            out.iter_mut().enumerate().for_each(|(i, b)| *b = offset.checked_add(i).map_or(0, |at| self.read_u8(at)));
            return;
        }
        let head = (offset.next_multiple_of(8) - offset).min(out.len());
        let (head_bytes, rest) = out.split_at_mut(head);
        head_bytes.iter_mut().enumerate().for_each(|(i, b)| *b = self.read_u8(offset + i));
        let at = offset + head;
        let tail_at = at + rest.len() / 8 * 8;
        let mut words = rest.chunks_exact_mut(8);
        for (i, w) in (&mut words).enumerate() {
            w.copy_from_slice(&self.read_u64(at + 8 * i).to_le_bytes());
        }
        let tail = words.into_remainder();
        tail.iter_mut().enumerate().for_each(|(i, b)| *b = self.read_u8(tail_at + i));
    }

    /// The counterpart of `read_bytes`: bytes to a word boundary, then 64-bit stores.
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        if !self.holds(offset, bytes.len()) {
            for (i, &b) in bytes.iter().enumerate() {
                if let Some(at) = offset.checked_add(i) {
                    self.write_u8(at, b);
                }
            }
            return;
        }
        let head = (offset.next_multiple_of(8) - offset).min(bytes.len());
        let (head_bytes, rest) = bytes.split_at(head);
        head_bytes.iter().enumerate().for_each(|(i, &b)| self.write_u8(offset + i, b));
        let at = offset + head;
        let tail_at = at + rest.len() / 8 * 8;
        let words = rest.chunks_exact(8);
        let tail = words.remainder();
        for (i, w) in words.enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            self.write_u64(at + 8 * i, u64::from_le_bytes(word));
        }
        tail.iter().enumerate().for_each(|(i, &b)| self.write_u8(tail_at + i, b));
    }

    #[inline]
    fn read_u32(&self, offset: usize) -> u32 {
        // SAFETY: `at` checked bounds and alignment.
        self.at(offset, 4).map_or(0, |p| unsafe { core::ptr::read_volatile(p as *const u32) })
    }

    #[inline]
    fn write_u32(&self, offset: usize, value: u32) {
        if let Some(p) = self.at(offset, 4) {
            // SAFETY: as in read_u32.
            unsafe { core::ptr::write_volatile(p as *mut u32, value) }
        }
    }

    #[inline]
    fn read_u64(&self, offset: usize) -> u64 {
        // SAFETY: `at` checked bounds and alignment.
        self.at(offset, 8).map_or(0, |p| unsafe { core::ptr::read_volatile(p as *const u64) })
    }

    #[inline]
    fn write_u64(&self, offset: usize, value: u64) {
        if let Some(p) = self.at(offset, 8) {
            // SAFETY: as in read_u64.
            unsafe { core::ptr::write_volatile(p as *mut u64, value) }
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

impl DmaBuffer {
    /// True if `[offset, offset + len)` lies inside the buffer.
    fn holds(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len())
    }

    fn atomic(&self, offset: usize) -> Option<&AtomicU64> {
        // SAFETY: `at` checked bounds and 8-byte alignment; the word lives as long as
        // `self`, and the CPU side only ever accesses it with single loads and stores.
        self.at(offset, 8).map(|p| unsafe { AtomicU64::from_ptr(p as *mut u64) })
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_accesses_are_bounded_and_aligned() {
        let b = DmaBuffer::new(64).unwrap();
        assert_eq!(b.phys() % 4096, 0);
        b.write_u64(8, 0x1122_3344_5566_7788);
        assert_eq!(b.read_u32(8), 0x5566_7788);
        assert_eq!(b.read_u8(15), 0x11);
        assert_eq!(b.read_u64(4), 0, "misaligned");
        assert_eq!(b.read_u64(64), 0, "past the end");
        b.write_u32(62, 7); // misaligned and past the end: dropped
        b.write_u8(64, 7);
        assert_eq!(b.fetch_or_u64(8, 0xff00_0000_0000_0000), 0x1122_3344_5566_7788);
        assert_eq!(b.read_u64(8), 0xff22_3344_5566_7788);
        assert_eq!(b.swap_u64(usize::MAX - 3, 1), 0, "an offset that overflows");
    }

    #[test]
    fn copies_at_any_offset_and_length() {
        let b = DmaBuffer::new(96).unwrap();
        let src: Vec<u8> = (0..96u8).collect();
        for offset in 0..20 {
            for len in [0, 1, 7, 8, 9, 23, 60, 96 - offset] {
                b.write_bytes(0, &[0; 96]);
                b.write_bytes(offset, &src[..len]);
                let mut all = [0u8; 96];
                b.read_bytes(0, &mut all);
                assert_eq!(&all[offset..offset + len], &src[..len]);
                assert!(all[..offset].iter().chain(&all[offset + len..]).all(|&x| x == 0));
                let mut back = vec![0u8; len];
                b.read_bytes(offset, &mut back);
                assert_eq!(back, &src[..len]);
            }
        }
    }

    #[test]
    fn copies_past_the_end_keep_what_fits() {
        let b = DmaBuffer::new(16).unwrap();
        b.write_bytes(12, &[1; 7]);
        assert_eq!(b.read_u32(12), 0x0101_0101);
        let mut dst = [9u8; 6];
        b.read_bytes(13, &mut dst);
        assert_eq!(dst, [1, 1, 1, 0, 0, 0]);
        b.read_bytes(usize::MAX - 1, &mut dst);
        assert_eq!(dst, [0; 6]);
    }
}
