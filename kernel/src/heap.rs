//! The kernel heap: all RAM from the end of the kernel image to the end of its region
//! (below 4 GiB, which is what the boot page tables map), managed by
//! `linked_list_allocator`. `arch::ram` picks that range and hands it over once.

use arch::boot::BootInfo;
use arch::ram::HeapError;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Bytes of the loaded image (text, data and bss).
pub fn image_bytes() -> u64 {
    arch::ram::image_bytes()
}

/// Hands the RAM after the kernel to the allocator. Returns the heap's size in bytes.
/// The boot info must have been copied out of loader memory already (it is, by value).
pub fn init(boot: &BootInfo) -> Result<u64, HeapError> {
    let ram = arch::ram::take_heap(boot)?;
    let size = ram.len() as u64;
    HEAP.lock().init_from_slice(ram);
    Ok(size)
}

/// Bytes currently free in the heap.
pub fn free_bytes() -> usize {
    HEAP.lock().free()
}
