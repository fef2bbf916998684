//! Page tables: the identity map and device-memory mappings.
//!
//! The kernel runs in one address space where virtual equals physical. The boot stub maps
//! the low 4 GiB with 2 MiB write-back pages; this module takes those tables over through
//! the `x86_64` crate's [`OffsetPageTable`] (offset 0) and lets drivers make ranges of
//! device memory uncached, mapping them first if they lie above 4 GiB (64-bit BARs).
//! Page-table pages come from the kernel heap, which is itself identity-mapped.

use alloc::alloc::{alloc_zeroed, Layout};
use spin::{Mutex, Once};
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::mapper::{MapToError, MappedFrame, TranslateResult};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size2MiB, Size4KiB,
    Translate,
};
use x86_64::{PhysAddr, VirtAddr};

static TABLES: Once<Mutex<OffsetPageTable<'static>>> = Once::new();

/// Why a range could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// [`init`] has not run.
    NotInitialised,
    /// No memory for a page-table page.
    OutOfMemory,
    /// The range is mapped, but not as the identity map this kernel relies on.
    NotIdentity(u64),
    /// The range wraps around the address space.
    BadRange,
}

/// Takes over the boot page tables. Call once, after the heap is up.
pub fn init() {
    TABLES.call_once(|| {
        let (frame, _) = Cr3::read();
        let l4 = frame.start_address().as_u64() as *mut PageTable;
        // SAFETY: CR3 holds the boot stub's PML4, identity-mapped and used only through
        // this mapper from now on; offset 0 is right for an identity map.
        Mutex::new(unsafe { OffsetPageTable::new(&mut *l4, VirtAddr::new(0)) })
    });
}

/// Page-table pages from the heap (identity-mapped, so their address is physical).
struct HeapFrames;

// SAFETY: every frame returned is a fresh, zeroed, 4 KiB-aligned heap allocation that is
// never freed, so it is unused by anything else.
unsafe impl FrameAllocator<Size4KiB> for HeapFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let layout = Layout::from_size_align(4096, 4096).ok()?;
        // SAFETY: the layout has a non-zero size.
        let page = unsafe { alloc_zeroed(layout) };
        (!page.is_null()).then(|| PhysFrame::containing_address(PhysAddr::new(page as u64)))
    }
}

/// Makes `[phys, phys + len)` uncached device memory at the same virtual address,
/// mapping it if needed. Whole 2 MiB pages are affected, so the range must not share a
/// 2 MiB page with RAM (true of the PC's MMIO holes and of BARs).
pub fn map_mmio(phys: u64, len: u64) -> Result<(), MapError> {
    let tables = TABLES.get().ok_or(MapError::NotInitialised)?;
    let end = phys.checked_add(len.max(1)).ok_or(MapError::BadRange)?;
    let mut mapper = tables.lock();
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_CACHE | Flags::WRITE_THROUGH | Flags::NO_EXECUTE;
    let first = Page::<Size2MiB>::containing_address(VirtAddr::new(phys));
    let last = Page::<Size2MiB>::containing_address(VirtAddr::new(end - 1));
    for page in Page::range_inclusive(first, last) {
        let addr = page.start_address();
        match mapper.translate(addr) {
            TranslateResult::Mapped { frame: MappedFrame::Size2MiB(f), .. } => {
                if f.start_address().as_u64() != addr.as_u64() {
                    return Err(MapError::NotIdentity(addr.as_u64()));
                }
                // SAFETY: only the caching attributes of an identity mapping change.
                let flush =
                    unsafe { mapper.update_flags(page, flags) }.map_err(|_| MapError::NotIdentity(addr.as_u64()))?;
                flush.flush();
            }
            TranslateResult::Mapped { .. } => return Err(MapError::NotIdentity(addr.as_u64())),
            TranslateResult::NotMapped | TranslateResult::InvalidFrameAddress(_) => {
                let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(addr.as_u64()));
                // SAFETY: the page was unmapped; mapping device memory at its own address
                // creates no alias of any memory the kernel uses.
                let flush = unsafe { mapper.map_to(page, frame, flags, &mut HeapFrames) }.map_err(|e| match e {
                    MapToError::FrameAllocationFailed => MapError::OutOfMemory,
                    _ => MapError::NotIdentity(addr.as_u64()),
                })?;
                flush.flush();
            }
        }
    }
    Ok(())
}

/// The MMU benchmarks' window on native page tables (hvm, hybrid, pvh, KVM): one 4 KiB
/// page far above the identity map, mapped and unmapped by writing its PTE and `invlpg`,
/// which under HAP never leave the guest.
pub struct NativeMapper {
    window: u64,
    pte: *mut u64,
}

// SAFETY: the PTE pointer is only written by the one CPU this kernel runs on, from the
// benchmark and from its page-fault fixup, which never run at the same time.
unsafe impl Sync for NativeMapper {}
// SAFETY: as for Sync: one CPU.
unsafe impl Send for NativeMapper {}

/// Where the native window lives: its own L4 slot, away from the identity map and BARs.
const NATIVE_WINDOW: u64 = 0x7f80_0000_0000;

impl NativeMapper {
    /// Builds the page tables down to the window's PTE (from the heap) and leaves the
    /// window unmapped. Needs [`init`].
    pub fn new() -> Result<NativeMapper, MapError> {
        let tables = TABLES.get().ok_or(MapError::NotInitialised)?;
        let mut mapper = tables.lock();
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(NATIVE_WINDOW));
        let scratch = HeapFrames.allocate_frame().ok_or(MapError::OutOfMemory)?;
        let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE;
        // SAFETY: the window's address is used by nothing else; mapping a fresh, unused
        // heap frame there creates the tables and aliases nothing in use.
        unsafe { mapper.map_to(page, scratch, flags, &mut HeapFrames) }
            .map_err(|_| MapError::NotIdentity(NATIVE_WINDOW))?
            .flush();
        // Walk to the PTE: every table is an identity-mapped heap frame (or the boot L4).
        let mut table = Cr3::read().0.start_address().as_u64() as *mut u64;
        for shift in [39u64, 30, 21] {
            let index = (NATIVE_WINDOW >> shift) as usize & 511;
            // SAFETY: `table` is a live page table (the L4, then what its present entries
            // name), identity-mapped; map_to just made the entries present.
            let entry = unsafe { core::ptr::read_volatile(table.add(index)) };
            table = (entry & 0x000f_ffff_ffff_f000) as *mut u64;
        }
        // SAFETY: inside the L1 table holding the window's entry, as above.
        let pte = unsafe { table.add((NATIVE_WINDOW >> 12) as usize & 511) };
        let m = NativeMapper { window: NATIVE_WINDOW, pte };
        crate::platform::PageMapper::unmap(&m);
        Ok(m)
    }
}

impl crate::platform::PageMapper for NativeMapper {
    fn window(&self) -> u64 {
        self.window
    }

    fn map(&self, page: u64) {
        let entry = (page & !0xfff) | (Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE).bits();
        // SAFETY: the window's own PTE (see `new`); only the window changes.
        unsafe { core::ptr::write_volatile(self.pte, entry) };
        x86_64::instructions::tlb::flush(VirtAddr::new(self.window));
    }

    fn unmap(&self) {
        // SAFETY: as in map.
        unsafe { core::ptr::write_volatile(self.pte, 0) };
        x86_64::instructions::tlb::flush(VirtAddr::new(self.window));
    }

    fn flush_tlb(&self) {
        x86_64::instructions::tlb::flush_all();
    }

    fn name(&self) -> &'static str {
        "pte-invlpg"
    }
}
