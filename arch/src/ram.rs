//! The RAM the kernel image occupies, and the free RAM after it that becomes the heap.
//!
//! The image's extent comes from the linker script's `__kernel_start`/`__kernel_end`;
//! the heap is the rest of the memory-map range that holds the image's end, below 4 GiB
//! (what the boot page tables map). [`take_heap`] hands that range out once, as a
//! `&'static mut` slice the allocator can take without `unsafe`: the choice of range is
//! pure and tested on the host ([`heap_range`]), the one raw step is here.

use crate::boot::RamRange;
use core::fmt;
use core::ops::Range;

/// Why there is no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapError {
    /// No RAM range in the memory map holds the kernel's end.
    NoRegion,
    /// The range after the kernel is too small to be useful.
    TooSmall(u64),
    /// The heap was handed out already.
    Taken,
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapError::NoRegion => write!(f, "no RAM region holds the end of the kernel image"),
            HeapError::TooSmall(n) => write!(f, "only {} KiB of RAM after the kernel image", n / 1024),
            HeapError::Taken => write!(f, "the heap was already set up"),
        }
    }
}

/// The boot page tables map the low 4 GiB.
const FOUR_GIB: u64 = 1 << 32;
/// Less is not worth running with.
const MIN_HEAP: u64 = 1 << 20;

/// The heap: from `image_end` (rounded up to a page) to the end of the RAM range that
/// holds it, cut at 4 GiB and to whole pages.
pub fn heap_range(ram: &[RamRange], image_end: u64) -> Result<Range<u64>, HeapError> {
    let start = image_end.checked_next_multiple_of(4096).ok_or(HeapError::NoRegion)?;
    let region = ram.iter().find(|r| r.start <= start && start < r.end).ok_or(HeapError::NoRegion)?;
    let end = region.end.min(FOUR_GIB) & !0xfff;
    let size = end.saturating_sub(start);
    if size < MIN_HEAP {
        return Err(HeapError::TooSmall(size));
    }
    Ok(start..end)
}

#[cfg(target_os = "none")]
mod image {
    use super::{heap_range, HeapError};
    use crate::boot::BootInfo;
    use core::mem::MaybeUninit;
    use core::sync::atomic::{AtomicBool, Ordering};

    extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }

    fn end() -> u64 {
        (&raw const __kernel_end) as u64
    }

    /// Bytes of the loaded image (text, data and bss).
    pub fn image_bytes() -> u64 {
        end() - (&raw const __kernel_start) as u64
    }

    /// The RAM after the kernel image, for the heap; only the first call gets it.
    pub fn take_heap(boot: &BootInfo) -> Result<&'static mut [MaybeUninit<u8>], HeapError> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        let range = heap_range(boot.ram(), end().max(boot.heap_floor))?;
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(HeapError::Taken);
        }
        // SAFETY: RAM per the loader's map, after the image, identity-mapped below 4 GiB, unused
        // (boot info copied out before this); the flag makes this the only slice over it, for good.
        Ok(unsafe {
            core::slice::from_raw_parts_mut(range.start as *mut MaybeUninit<u8>, (range.end - range.start) as usize)
        })
    }
}

#[cfg(target_os = "none")]
pub use image::{image_bytes, take_heap};

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: [RamRange; 2] = [RamRange { start: 0, end: 0x9fc00 }, RamRange { start: 0x10_0000, end: 0x7fe_0000 }];

    #[test]
    fn heap_follows_the_image_in_its_range() {
        assert_eq!(heap_range(&MAP, 0x60_0123), Ok(0x60_1000..0x7fe_0000));
        assert_eq!(heap_range(&MAP, 0x60_0000), Ok(0x60_0000..0x7fe_0000));
    }

    #[test]
    fn heap_stops_at_four_gib_and_page_ends() {
        let big = [RamRange { start: 0x10_0000, end: 0x2_0000_0fff }];
        assert_eq!(heap_range(&big, 0x60_0000), Ok(0x60_0000..1 << 32));
        let odd = [RamRange { start: 0x10_0000, end: 0x40_0fff }];
        assert_eq!(heap_range(&odd, 0x20_0000), Ok(0x20_0000..0x40_0000));
    }

    #[test]
    fn no_heap_without_room() {
        assert_eq!(heap_range(&MAP, 0x8000_0000), Err(HeapError::NoRegion));
        assert_eq!(heap_range(&[], 0x60_0000), Err(HeapError::NoRegion));
        assert_eq!(heap_range(&MAP, 0x7f0_0000), Err(HeapError::TooSmall(0xe_0000)));
        assert_eq!(heap_range(&MAP, u64::MAX), Err(HeapError::NoRegion));
    }
}
