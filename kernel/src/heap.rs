//! The kernel heap: all RAM from the end of the kernel image to the end of its region
//! (below 4 GiB, which is what the boot page tables map), managed by
//! `linked_list_allocator`.

use arch::boot::BootInfo;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Bytes of the loaded image (text, data and bss).
pub fn image_bytes() -> u64 {
    (&raw const __kernel_end) as u64 - (&raw const __kernel_start) as u64
}

/// Why the heap could not be set up.
pub enum HeapError {
    /// No RAM range in the memory map holds the kernel's end.
    NoRegion,
    /// The range after the kernel is too small to be useful.
    TooSmall(u64),
}

impl core::fmt::Display for HeapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HeapError::NoRegion => write!(f, "no RAM region holds the end of the kernel image"),
            HeapError::TooSmall(n) => {
                write!(f, "only {} KiB of RAM after the kernel image", n / 1024)
            }
        }
    }
}

/// Hands the RAM after the kernel to the allocator. Returns the heap's size in bytes.
pub fn init(boot: &BootInfo) -> Result<u64, HeapError> {
    const FOUR_GIB: u64 = 1 << 32;
    const MIN_HEAP: u64 = 1 << 20;
    let start = ((&raw const __kernel_end) as u64).next_multiple_of(4096);
    let region = boot.ram().iter().find(|r| r.start <= start && start < r.end).ok_or(HeapError::NoRegion)?;
    let end = region.end.min(FOUR_GIB) & !0xfff;
    let size = end.saturating_sub(start);
    if size < MIN_HEAP {
        return Err(HeapError::TooSmall(size));
    }
    // The boot info was copied out of loader memory before this call, so nothing else uses it.
    // SAFETY: [start, end) is RAM per the memory map, after the kernel image, identity-mapped.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
    Ok(size)
}

/// Bytes currently free in the heap.
pub fn free_bytes() -> usize {
    HEAP.lock().free()
}
