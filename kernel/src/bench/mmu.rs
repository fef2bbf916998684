//! The MMU benchmarks (issue 16), lmbench's `lat_pagefault`/`lat_mmap` without files: what
//! changing a mapping costs the way this platform changes page tables.
//!
//! - `mmu_map`: ns per map + unmap of one page at the window: two PTE writes and two
//!   `invlpg`s natively (no exit under HAP), two `update_va_mapping` hypercalls in PV.
//! - `page_fault`: ns per unmap, then a read of the unmapped window whose page fault the
//!   fixup resolves by mapping the page, and the read again: natively a guest-only fault
//!   under HAP, in PV the fault bounced through Xen, the map a hypercall and the return
//!   the iret hypercall.
//! - `tlb_flush`: ns per whole-TLB flush and the window's refill read (CR3 reload
//!   natively, `mmuext_op` in PV).
//!
//! The mapper is the platform's, chosen once at boot (`platform::install_page_mapper`).

use super::{emit, per_op, phase, skip};
use crate::platform::Platform;
use alloc::boxed::Box;
use arch::pagemap;
use core::hint::black_box;

const ITERATIONS: u64 = 10_000;

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// Runs the three MMU benchmarks.
pub fn run(p: &Platform) {
    let Some(m) = pagemap::mapper() else {
        for name in ["mmu_map", "page_fault", "tlb_flush"] {
            skip(name, format_args!("reason=no-page-window"));
        }
        return;
    };
    let page = Box::leak(Box::new(Page([0x5a; 4096]))).0.as_ptr() as u64;
    log::info!("mmu: window {:#x} mapped by {}", m.window(), m.name());

    let (start, end) = phase(p, "mmu_map", ITERATIONS, || {
        let start = p.clock.now_ns();
        for _ in 0..ITERATIONS {
            m.map(page);
            m.unmap();
        }
        (start, p.clock.now_ns())
    });
    emit(p, "mmu_map", "ns", per_op(start, end, ITERATIONS), ITERATIONS);

    pagemap::arm_fault_fixup(page);
    let before = pagemap::fixups();
    let (start, end) = phase(p, "page_fault", ITERATIONS, || {
        let start = p.clock.now_ns();
        for _ in 0..ITERATIONS {
            m.unmap();
            black_box(pagemap::touch());
        }
        (start, p.clock.now_ns())
    });
    pagemap::disarm_fault_fixup();
    let faults = pagemap::fixups() - before;
    if faults != ITERATIONS || pagemap::touch() != 0x5a {
        kprintln!("ERROR page_fault: {faults} faults resolved for {ITERATIONS} reads of the unmapped window");
    }
    emit(p, "page_fault", "ns", per_op(start, end, ITERATIONS), ITERATIONS);

    let (start, end) = phase(p, "tlb_flush", ITERATIONS, || {
        let start = p.clock.now_ns();
        for _ in 0..ITERATIONS {
            m.flush_tlb();
            black_box(pagemap::touch());
        }
        (start, p.clock.now_ns())
    });
    m.unmap();
    emit(p, "tlb_flush", "ns", per_op(start, end, ITERATIONS), ITERATIONS);
}
