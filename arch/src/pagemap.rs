//! The MMU benchmarks' window: reading it, and the page-fault fixup that maps it.
//!
//! A [`PageMapper`] (natively `paging::NativeMapper`, in classic PV `xen::pv::PvMapper`)
//! owns one virtual page. [`touch`] reads it; with the fixup armed ([`arm_fault_fixup`]),
//! a page fault on the unmapped window is resolved by mapping the armed page there and
//! returning to the faulting read, which is lmbench's `lat_pagefault` round trip without
//! a file behind it. Any other page fault is still a fatal report.

use crate::platform::PageMapper;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;

static MAPPER: Once<&'static dyn PageMapper> = Once::new();
/// The page the fixup maps at the window; 0 when disarmed.
static FIXUP_PAGE: AtomicU64 = AtomicU64::new(0);
/// Faults resolved so far.
static FIXUPS: AtomicU64 = AtomicU64::new(0);

/// Makes `mapper` the one whose window the fault fixup serves (the first call counts).
pub fn install(mapper: &'static dyn PageMapper) -> &'static dyn PageMapper {
    *MAPPER.call_once(|| mapper)
}

/// The installed mapper.
pub fn mapper() -> Option<&'static dyn PageMapper> {
    MAPPER.get().copied()
}

/// From now on a fault on the window maps `page` there (an identity-mapped kernel page).
pub fn arm_fault_fixup(page: u64) {
    FIXUP_PAGE.store(page & !0xfff, Ordering::Release);
}

/// Faults on the window are fatal again.
pub fn disarm_fault_fixup() {
    FIXUP_PAGE.store(0, Ordering::Release);
}

/// Faults the fixup resolved so far.
pub fn fixups() -> u64 {
    FIXUPS.load(Ordering::Relaxed)
}

/// Reads the window's first byte. Unmapped, it faults: into the fixup if armed, else into
/// the fatal report.
pub fn touch() -> u8 {
    let Some(m) = mapper() else { return 0 };
    // SAFETY: the window is a page only the mapper maps, never given out as a reference: a
    // volatile read of a mapped heap page, or a fault that the fixup or the report handles.
    unsafe { core::ptr::read_volatile(m.window() as *const u8) }
}

/// Called for every page fault at `addr`: true if it was the armed window's and is mapped
/// now, so the faulting read can run again.
pub(crate) fn page_fault(addr: u64) -> bool {
    let page = FIXUP_PAGE.load(Ordering::Acquire);
    match mapper() {
        Some(m) if page != 0 && addr & !0xfff == m.window() => {
            m.map(page);
            FIXUPS.fetch_add(1, Ordering::Relaxed);
            true
        }
        _ => false,
    }
}
