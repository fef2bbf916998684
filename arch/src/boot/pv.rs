//! The classic PV start of day: from `pv.S`'s call to a kernel with a console, traps and
//! all of its memory mapped.
//!
//! Xen starts a PV kernel in ring 3 on bootstrap page tables that map only the image and
//! the bootstrap elements (the frame list, the start info, the xenstore and console
//! rings, the tables, a stack, then at least 512 KiB of spare frames). [`start`], in
//! this order: takes the hypercall page; copies and checks the start info; maps
//! `shared_info` so that the interrupt flag (`evtchn_upcall_mask`, [`crate::irqflag`])
//! works before anything can print; installs the virtual IDT, so a fault from here on is
//! a report, not a silent death; maps the console ring; and extends the mapping over the
//! domain's memory with batched `mmu_update`s (`xen_iface::pv::plan_map` decides, new L1
//! tables come from the spare frames), and maps the xenstore ring (start info's
//! `store_mfn`) for the platform's xenstore client. What is left after the spare frames is
//! the heap.

use super::BootInfo;
use crate::irqflag;
use crate::trap;
use crate::xen::events;
use crate::xen::pv::{MmuError, PvInterruptFlag};
use crate::xen::shared::SharedPage;
use crate::xen::Xen;
use spin::Once;
use xen_iface::pv::{
    plan_map, pte, FrameList, MapPlanError, MapStep, MmuUpdate, PageTables, PvStartError, PvStartInfo,
};

#[cfg(target_os = "none")]
core::arch::global_asm!(include_str!("pv.S"), options(att_syntax));

/// Spare frames after the bootstrap stack reserved for new L1 tables: Xen guarantees 512
/// KiB of mapped frames there; 128 tables map 256 MiB.
const TABLE_POOL: u64 = 128;
/// Entries per `mmu_update` batch.
const BATCH: usize = 256;
/// Offset of `vcpu_info.arch.cr2` in vCPU 0's `vcpu_info` (`xen.h`, `arch-x86/xen.h`).
const VCPU_INFO_CR2: usize = 16;

/// Why the PV start failed.
#[derive(Clone, Copy, Debug)]
pub enum PvBootError {
    /// The start info is not one this kernel can use.
    StartInfo(PvStartError),
    /// The bootstrap layout is not Xen's (the stack below the page tables, ...).
    Layout(&'static str),
    /// `shared_info` could not be mapped.
    SharedInfo(events::EventError),
    /// Xen refused the trap table (its error code).
    Traps(i64),
    /// The console ring could not be mapped (Xen's error code).
    Console(i64),
    /// The page tables could not be planned.
    Plan(MapPlanError),
    /// Xen refused a page-table update.
    Mmu(MmuError),
    /// Xen refused to make a new L1 table's own mapping read-only.
    Protect(u64, i64),
}

/// What the PV start hands the kernel.
pub struct PvBoot {
    /// The hypercalls.
    pub xen: Xen,
    /// The command line and the heap's RAM.
    pub boot: BootInfo,
    /// `shared_info`, mapped.
    pub shared_info: u64,
    /// The xenstore ring (start info's `store_mfn`, mapped) and its event channel
    /// (`store_evtchn`), or Xen's error code if the ring could not be mapped.
    pub store: Result<(SharedPage, u32), i64>,
    /// Pages of the domain.
    pub nr_pages: u64,
    /// The TSC rate the pvclock's scale implies.
    pub tsc_hz: Option<u64>,
    /// Pages mapped beyond the bootstrap area.
    pub pages_mapped: u64,
    /// Pages mapped in all (the heap ends there): the domain's, up to 256 MiB.
    pub pages_usable: u64,
    /// New L1 tables made for them.
    pub tables_added: u64,
    /// The live page tables, for the MMU benchmarks and the fault test.
    pub mmu: PvMmu,
}

/// The live page tables of a PV guest, by pseudo-physical frame.
#[derive(Clone, Copy)]
pub struct PvMmu {
    frames: &'static [u64],
    l4_pfn: u64,
}

impl PageTables for PvMmu {
    fn entry(&self, pfn: u64, index: usize) -> u64 {
        if pfn >= self.frames.len() as u64 || index >= 512 {
            return 0;
        }
        // SAFETY: frame `pfn` of the domain, mapped at pfn << 12 (the identity map; page
        // tables read-only); `index` is inside the page.
        unsafe { core::ptr::read_volatile(((pfn << 12) as *const u64).add(index)) }
    }
}

impl PvMmu {
    /// The machine address of the L1 entry that maps virtual `va`, if it has one
    /// (below 1 GiB, through the kernel's L2).
    pub fn l1_entry_maddr(&self, va: u64) -> Option<u64> {
        let frames = self.frames;
        let next = |pfn: u64, i: usize| {
            let e = self.entry(pfn, i);
            (e & pte::PRESENT != 0 && e & pte::HUGE == 0).then(|| frames.pfn_of(pte::frame(e))).flatten()
        };
        let l3 = next(self.l4_pfn, 0)?;
        let l2 = next(l3, 0)?;
        let l1 = next(l2, (va >> 21) as usize & 511)?;
        Some((frames.mfn(l1) << 12) + 8 * ((va >> 12) & 511))
    }

    /// The domain's frame list (pseudo-physical to machine), for what must name machine
    /// frames to Xen or a peer (grant entries).
    pub fn frames(&self) -> &'static [u64] {
        self.frames
    }

    /// The bootstrap L4 table's pseudo-physical frame and machine frame.
    pub fn l4(&self) -> (u64, u64) {
        (self.l4_pfn, self.frames.mfn(self.l4_pfn))
    }

    /// The machine frame of pseudo-physical frame `pfn` (`u64::MAX` outside the domain).
    pub fn mfn(&self, pfn: u64) -> u64 {
        self.frames.mfn(pfn)
    }

    /// The MMU benchmarks' window (`crate::pagemap`): a page of the image, remapped by
    /// hypercall. Only the first call gets it.
    pub fn page_mapper(&self, xen: Xen) -> Option<&'static crate::xen::pv::PvMapper> {
        static WINDOW: Page = Page([0; 4096]);
        static MAPPER: Once<crate::xen::pv::PvMapper> = Once::new();
        if MAPPER.is_completed() {
            return None;
        }
        let window = (&raw const WINDOW) as u64;
        // SAFETY: WINDOW is this function's own page, mapped by the bootstrap tables and
        // used by nothing else.
        Some(MAPPER.call_once(|| unsafe { crate::xen::pv::PvMapper::new(xen, window, self.frames) }))
    }
}

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The virtual page the console ring is mapped at (its own frame given up).
static mut CONSOLE_WINDOW: Page = Page([0; 4096]);
/// The virtual page the xenstore ring is mapped at (its own frame given up).
static mut STORE_WINDOW: Page = Page([0; 4096]);
static FLAG: Once<PvInterruptFlag> = Once::new();

/// Maps machine frame `mfn` writable at the static page `window`.
///
/// # Safety
/// `window` must be a page-aligned static page nothing else uses, mapped by the
/// bootstrap tables.
unsafe fn map_window(xen: Xen, window: u64, mfn: u64) -> Result<SharedPage, i64> {
    // SAFETY: the window is used by nothing else (the caller's word); only it changes.
    unsafe { xen.pv().update_va_mapping(window, mfn << 12 | pte::DATA)? };
    // SAFETY: now mapped to the frame Xen named, page-sized, used only through this.
    Ok(unsafe { SharedPage::new(window, 4096) })
}

/// The PV start before the kernel has events, traps or memory: the start info checked
/// and the console ring mapped. [`PvEarly::traps`] and [`PvEarly::map_memory`] follow.
pub struct PvEarly {
    xen: Xen,
    si: PvStartInfo,
    bootstrap_end: u64,
    shared_info: u64,
    /// The console ring and its event channel, for the kernel to take.
    pub console: Option<(SharedPage, u32)>,
}

/// Runs the first steps of the PV start of day (see the module header): the hypercall
/// page, the start info, the console ring. Without a start info or a console there is no
/// way to report, so on an error here the caller can only crash the domain (with the
/// [`Xen`] returned beside it), which the toolstack logs.
///
/// # Safety
/// Only from `kernel_entry_pv`, once, with `pv.S`'s arguments: the start info's virtual
/// address and Xen's initial stack pointer.
pub unsafe fn start(start_info: u64, bootstrap_end: u64) -> (Xen, Result<PvEarly, PvBootError>) {
    // SAFETY: this is the PV entry; the builder filled the hypercall page.
    let xen = unsafe { Xen::pv_entry() };
    let mut raw = [0u8; PvStartInfo::SIZE];
    for (i, b) in raw.iter_mut().enumerate() {
        // SAFETY: the start info is a bootstrap element, mapped, at least this long.
        *b = unsafe { core::ptr::read_volatile((start_info as *const u8).add(i)) };
    }
    let si = PvStartInfo::from_bytes(&raw);
    let early = (|| {
        si.validate().map_err(PvBootError::StartInfo)?;
        let end = si.pt_base + si.nr_pt_frames * 4096; // checked by validate()
        if !(start_info < bootstrap_end && si.mfn_list < bootstrap_end && end <= bootstrap_end) {
            return Err(PvBootError::Layout("the bootstrap stack must be the last bootstrap element"));
        }
        // SAFETY: the window is this module's, in .bss (mapped by the bootstrap tables).
        let ring = unsafe { map_window(xen, (&raw const CONSOLE_WINDOW) as u64, si.console_mfn) }
            .map_err(PvBootError::Console)?;
        Ok(PvEarly { xen, si, bootstrap_end, shared_info: 0, console: Some((ring, si.console_evtchn)) })
    })();
    (xen, early)
}

impl PvEarly {
    /// Maps `shared_info`, makes its `evtchn_upcall_mask` the interrupt flag (masked), and
    /// installs the virtual IDT: from here on a fault is a report.
    pub fn traps(&mut self) -> Result<(), PvBootError> {
        let xen = self.xen;
        let shared_info = events::map_pv_shared_info(xen, self.si.shared_info).map_err(PvBootError::SharedInfo)?;
        // SAFETY: vCPU 0's vcpu_info is the start of shared_info, mapped for good.
        let flag = FLAG.call_once(|| unsafe { PvInterruptFlag::new(xen, shared_info as usize) });
        irqflag::set(flag);
        irqflag::disable();
        trap::pv::use_pv_cr2(shared_info as usize + VCPU_INFO_CR2);
        trap::pv::init_traps(xen).map_err(PvBootError::Traps)?;
        self.shared_info = shared_info;
        Ok(())
    }

    /// Extends the mapping over the domain's memory (after [`traps`](Self::traps)).
    pub fn map_memory(self) -> Result<PvBoot, PvBootError> {
        let si = &self.si;
        let (list, len) = (si.mfn_list as *const u64, si.nr_pages as usize);
        // SAFETY: validated to lie in the domain's memory before the page tables: a
        // bootstrap element, mapped, nr_pages entries, left alone for good.
        let frames: &'static [u64] = unsafe { core::slice::from_raw_parts(list, len) };
        let mmu = PvMmu { frames, l4_pfn: si.pt_base >> 12 };
        let pool = self.bootstrap_end.div_ceil(4096);
        let (pages_mapped, tables_added, heap_floor, end) = extend_map(self.xen, mmu, pool, si.nr_pages)?;
        // SAFETY: shared_info is mapped at this page for good (traps() ran).
        let shared = unsafe { SharedPage::new(self.shared_info, 4096) };
        let tsc_hz =
            xen_iface::pvclock::read(&shared, xen_iface::events::VCPU_TIME, 1000).ok().and_then(|t| t.tsc_hz());
        Ok(PvBoot {
            tsc_hz,
            xen: self.xen,
            boot: BootInfo::for_pv(si.cmdline(), end << 12, heap_floor << 12),
            shared_info: self.shared_info,
            // SAFETY: the window is this module's, in .bss, and mapped only here.
            store: unsafe { map_window(self.xen, (&raw const STORE_WINDOW) as u64, si.store_mfn) }
                .map(|ring| (ring, si.store_evtchn)),
            nr_pages: si.nr_pages,
            pages_mapped,
            pages_usable: end,
            tables_added,
            mmu,
        })
    }
}

/// Maps frames `[pool + TABLE_POOL, nr_pages)` at their identity addresses, new L1 tables
/// taken from `[pool, pool + TABLE_POOL)`, as far as the pool's tables reach (256 MiB).
/// Returns the pages mapped, the tables added, the first frame the heap may use and the
/// end of the mapped memory (a frame number).
fn extend_map(xen: Xen, mmu: PvMmu, pool: u64, nr_pages: u64) -> Result<(u64, u64, u64, u64), PvBootError> {
    let first = pool + TABLE_POOL;
    let nr_pages = nr_pages.min(TABLE_POOL * 512);
    let mut batch = [MmuUpdate::default(); BATCH];
    let mut n = 0;
    let mut mapped = 0u64;
    let mut tables = 0u64;
    let mut failed: Option<PvBootError> = None;
    let flush = |batch: &[MmuUpdate]| {
        // SAFETY: the entries map frames of the domain that nothing uses yet at their
        // identity addresses (the heap comes later), or link fresh, zeroed, read-only L1s.
        unsafe { xen.pv().mmu_update(batch) }.map_err(PvBootError::Mmu)
    };
    plan_map(&mmu, &mmu.frames, mmu.l4_pfn, first..nr_pages, pool, |step| {
        if failed.is_some() {
            return;
        }
        let r = match step {
            MapStep::Map(u) => {
                batch[n] = u;
                n += 1;
                mapped += 1;
                if n == BATCH {
                    n = 0;
                    flush(&batch)
                } else {
                    Ok(())
                }
            }
            MapStep::NewL1 { pfn, update } => {
                tables += 1;
                let pending = core::mem::take(&mut n);
                flush(&batch[..pending]).and_then(|()| {
                    // SAFETY: a spare bootstrap frame, mapped writable, used by nothing:
                    // zeroed, then mapped read-only as Xen requires of a page table.
                    unsafe { core::ptr::write_bytes((pfn << 12) as *mut u8, 0, 4096) };
                    // SAFETY: as above; only this frame's own mapping changes.
                    unsafe { xen.pv().update_va_mapping(pfn << 12, mmu.frames.mfn(pfn) << 12 | pte::PRESENT) }
                        .map_err(|e| PvBootError::Protect(pfn, e))?;
                    flush(&[update])
                })
            }
        };
        if let Err(e) = r {
            failed = Some(e);
        }
    })
    .map_err(PvBootError::Plan)?;
    if let Some(e) = failed {
        return Err(e);
    }
    flush(&batch[..n])?;
    Ok((mapped, tables, first, nr_pages))
}

/// Asks Xen for `update`, which the caller means to be refused (`fault=pv-bad-pte`): Xen
/// checks every entry, so nothing changes unless it accepts.
pub fn bad_update(xen: Xen, update: MmuUpdate) -> Result<(), MmuError> {
    // SAFETY: the caller's update is one Xen refuses (a page table mapped writable); were
    // it accepted, it would change one probe page's mapping only (the caller's choice).
    unsafe { xen.pv().mmu_update(&[update]) }
}

/// Writes to page-table frame `pfn`, which Xen maps read-only: the page fault's report
/// ends the run (`fault=pv-bad-pte`).
pub fn write_page_table(pfn: u64) -> ! {
    // SAFETY: the write faults (a PV guest's page tables are read-only) into a report that never
    // returns; were it writable, Xen would still check the entry, which is written unchanged.
    unsafe {
        let p = (pfn << 12) as *mut u64;
        core::ptr::write_volatile(p, core::ptr::read_volatile(p));
    }
    panic!("pv: a write to the read-only page table at frame {pfn:#x} did not fault")
}
