//! Classic 64-bit PV: the start-of-day structure, the MMU and trap hypercalls' ABI, and
//! the plan for extending Xen's bootstrap page tables over the domain's memory.
//!
//! A PV guest's kernel runs in ring 3 on page tables it may read but not write; Xen
//! checks every update (`mmu_update`, `update_va_mapping`). Xen starts it at the
//! `XEN_ELFNOTE_ENTRY` address with `%rsi` = the [`PvStartInfo`]'s virtual address, on
//! bootstrap tables that map only the image and the bootstrap area (`xen.h`, "start of
//! day memory layout"). With `VIRT_BASE` 0, pseudo-physical frame `pfn` is mapped at
//! virtual `pfn << 12`, as this kernel's identity map expects.
//!
//! [`MapPlan`] decides, without touching memory, which page-table pages to add and which
//! entries to write so that the pseudo-physical range becomes mapped the same way; the
//! `arch` side walks the live tables through [`PageTables`] and applies it. Everything
//! the toolstack or Xen hands over (the frame list, entries of the bootstrap tables) is
//! checked before it is used: a bad value is an error, never an index.

use crate::start_info::until_nul;

/// `__HYPERVISOR_set_trap_table`.
pub const SET_TRAP_TABLE: u32 = 0;
/// `__HYPERVISOR_mmu_update`.
pub const MMU_UPDATE: u32 = 1;
/// `__HYPERVISOR_set_callbacks` (x86_64: event, failsafe, syscall addresses).
pub const SET_CALLBACKS: u32 = 4;
/// `__HYPERVISOR_update_va_mapping`.
pub const UPDATE_VA_MAPPING: u32 = 14;
/// `__HYPERVISOR_iret`: jumped to, never called (see `arch/src/trap/pv.S`).
pub const IRET: u32 = 23;
/// `SCHEDOP_yield`.
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_block`: unmask events and sleep until one is pending.
pub const SCHEDOP_BLOCK: u32 = 1;
/// `MMU_NORMAL_PT_UPDATE`: `*ptr = val`, checked; `ptr` is a machine address.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `UVMF_INVLPG`: flush the one TLB entry (local vCPU).
pub const UVMF_INVLPG: u64 = 2;
/// `FLAT_KERNEL_CS64` (`arch-x86/xen-x86_64.h`): the ring-3 kernel code selector.
pub const FLAT_KERNEL_CS: u16 = 0xe033;
/// `trap_info.flags` bit 2: mask events on entry (an interrupt gate).
pub const TRAP_MASK_EVENTS: u8 = 4;
/// `DOMID_SELF` for `mmu_update`'s domain argument.
pub const DOMID_SELF: u64 = 0x7ff0;

/// Page-table entry bits.
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const WRITABLE: u64 = 1 << 1;
    /// User (Xen sets it on a 64-bit PV kernel's pages anyway).
    pub const USER: u64 = 1 << 2;
    /// Accessed.
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty.
    pub const DIRTY: u64 = 1 << 6;
    /// Large page (refused in PV without superpage support).
    pub const HUGE: u64 = 1 << 7;
    /// The frame-number bits of an entry (bits 12..52).
    pub const FRAME: u64 = 0x000f_ffff_ffff_f000;
    /// A data page: present, writable, accessed, dirty.
    pub const DATA: u64 = PRESENT | WRITABLE | ACCESSED | DIRTY;
    /// A page-table page's entry in its parent: present, writable, user, accessed.
    pub const TABLE: u64 = PRESENT | WRITABLE | USER | ACCESSED;
    /// The frame number an entry points to.
    pub fn frame(entry: u64) -> u64 {
        (entry & FRAME) >> 12
    }
}

/// `struct mmu_update` (`xen.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    /// Machine address of the entry, with the command in bits 1:0.
    pub ptr: u64,
    /// The new entry.
    pub val: u64,
}
const _: () = assert!(core::mem::size_of::<MmuUpdate>() == 16);

/// `struct trap_info` (`arch-x86/xen.h`): one entry of the virtual IDT.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    /// Exception vector.
    pub vector: u8,
    /// Bits 0-1: the lowest privilege that may raise it with `int`; bit 2: mask events.
    pub flags: u8,
    /// Code selector of the handler.
    pub cs: u16,
    /// Handler address; 0 ends the table.
    pub address: u64,
}
const _: () = assert!(core::mem::size_of::<TrapInfo>() == 16);

/// `struct start_info` for x86_64 (`xen.h`), the fields this kernel reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvStartInfo {
    /// The magic's bytes before its NUL, e.g. `xen-3.0-x86_64`.
    pub magic: [u8; 32],
    /// Pages allocated to the domain.
    pub nr_pages: u64,
    /// Machine address of `shared_info`.
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Machine frame of the xenstore ring.
    pub store_mfn: u64,
    /// Event channel of the xenstore ring.
    pub store_evtchn: u32,
    /// Machine frame of the console ring.
    pub console_mfn: u64,
    /// Event channel of the console ring.
    pub console_evtchn: u32,
    /// Virtual address of the bootstrap L4 table.
    pub pt_base: u64,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// Virtual address of the pseudo-physical to machine frame list.
    pub mfn_list: u64,
    /// The command line, up to its NUL.
    pub cmd_line: [u8; CMDLINE_MAX],
}

impl Default for PvStartInfo {
    fn default() -> Self {
        PvStartInfo {
            magic: [0; 32],
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            store_mfn: 0,
            store_evtchn: 0,
            console_mfn: 0,
            console_evtchn: 0,
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            cmd_line: [0; CMDLINE_MAX],
        }
    }
}

/// `MAX_GUEST_CMDLINE`.
pub const CMDLINE_MAX: usize = 1024;

/// Why a PV start of day was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvStartError {
    /// The magic does not start with `xen-3.0-x86_64`: not a 64-bit PV start.
    BadMagic,
    /// No pages, or more than the kernel's map reaches.
    BadPageCount(u64),
    /// A bootstrap element lies outside the pseudo-physical memory.
    OutOfRange(&'static str, u64),
}

/// The highest pseudo-physical memory the kernel maps: one L3 entry's worth (1 GiB),
/// below the kernel's 4 GiB heap limit.
pub const MAX_MAPPED: u64 = 1 << 30;

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.iter_mut().zip(b.iter().skip(at)).for_each(|(d, s)| *d = *s);
    u64::from_le_bytes(w)
}

impl PvStartInfo {
    /// Bytes of the structure (up to and including `cmd_line`).
    pub const SIZE: usize = 128 + CMDLINE_MAX;

    /// Decodes the structure from its bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        let mut magic = [0u8; 32];
        magic.copy_from_slice(&b[..32]);
        let mut cmd_line = [0u8; CMDLINE_MAX];
        cmd_line.copy_from_slice(&b[128..]);
        PvStartInfo {
            magic,
            nr_pages: u64_at(b, 32),
            shared_info: u64_at(b, 40),
            flags: u64_at(b, 48) as u32,
            store_mfn: u64_at(b, 56),
            store_evtchn: u64_at(b, 64) as u32,
            console_mfn: u64_at(b, 72),
            console_evtchn: u64_at(b, 80) as u32,
            pt_base: u64_at(b, 88),
            nr_pt_frames: u64_at(b, 96),
            mfn_list: u64_at(b, 104),
            cmd_line,
        }
    }

    /// Checks what the kernel relies on: a 64-bit PV magic, a page count it can map, and
    /// the page tables and frame list inside the domain's pseudo-physical memory.
    pub fn validate(&self) -> Result<(), PvStartError> {
        if !self.magic.starts_with(b"xen-3.0-x86_64") {
            return Err(PvStartError::BadMagic);
        }
        if self.nr_pages == 0 || self.nr_pages > MAX_MAPPED >> 12 {
            return Err(PvStartError::BadPageCount(self.nr_pages));
        }
        let end = self.nr_pages << 12;
        let pt_end = self.nr_pt_frames.checked_mul(4096).and_then(|n| n.checked_add(self.pt_base));
        if self.nr_pt_frames == 0 || pt_end.is_none_or(|e| e > end) {
            return Err(PvStartError::OutOfRange("page tables", self.pt_base));
        }
        let list_end = self.mfn_list.checked_add(self.nr_pages * 8);
        if list_end.is_none_or(|e| e > end) || !self.mfn_list.is_multiple_of(8) {
            return Err(PvStartError::OutOfRange("frame list", self.mfn_list));
        }
        Ok(())
    }

    /// The command line (bytes before the NUL).
    pub fn cmdline(&self) -> &[u8] {
        until_nul(&self.cmd_line)
    }

    /// The first pseudo-physical frame after the bootstrap page tables.
    pub fn first_free_pfn(&self) -> u64 {
        self.pt_base.div_ceil(4096) + self.nr_pt_frames
    }
}

/// The domain's pseudo-physical to machine frame list, checked on every lookup.
pub trait FrameList {
    /// Number of pseudo-physical frames.
    fn len(&self) -> u64;
    /// Whether the domain has no frames at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The machine frame of `pfn` (`pfn < len()`).
    fn mfn(&self, pfn: u64) -> u64;

    /// The pseudo-physical frame backed by machine frame `mfn`, if the domain has one
    /// (a linear search: used for the few bootstrap tables only).
    fn pfn_of(&self, mfn: u64) -> Option<u64> {
        (0..self.len()).find(|&p| self.mfn(p) == mfn)
    }

    /// Whether this is a frame list at all: non-empty and no entry repeated among the
    /// first ones (a cheap check against a list that is all zeros).
    fn plausible(&self) -> bool {
        let n = self.len().min(64);
        self.len() > 0 && (0..n).all(|a| (a + 1..n).all(|b| self.mfn(a) != self.mfn(b)))
    }
}

impl FrameList for &[u64] {
    fn len(&self) -> u64 {
        <[u64]>::len(self) as u64
    }
    fn mfn(&self, pfn: u64) -> u64 {
        self.get(pfn as usize).copied().unwrap_or(u64::MAX)
    }
}

/// Why the mapping could not be extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapPlanError {
    /// An entry of the bootstrap tables points at a frame the domain does not own.
    ForeignTable(u64),
    /// An L4 or L3 entry on the way to the range is missing (beyond the bootstrap L2).
    NoL2,
    /// A present L2 entry is a large page.
    LargePage(u64),
    /// No free frame left for a page-table page.
    OutOfFrames,
}

/// Reads the live page tables, by pseudo-physical frame of the table.
pub trait PageTables {
    /// Entry `index` of the table in pseudo-physical frame `pfn`.
    fn entry(&self, pfn: u64, index: usize) -> u64;
}

/// One step of extending the map, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapStep {
    /// Frame `pfn` becomes an L1 table: zero it, map it read-only, then link it with
    /// `update` (an L2 entry).
    NewL1 {
        /// Its pseudo-physical frame.
        pfn: u64,
        /// The L2 entry to write.
        update: MmuUpdate,
    },
    /// Write an L1 entry mapping a data page.
    Map(MmuUpdate),
}

/// Plans the entries that map pseudo-physical frames `[from, to)` at virtual
/// `pfn << 12`, taking new L1 tables from `free` upward (frames that are mapped,
/// writable, and used by nothing). Frames already mapped are left alone. Returns the
/// steps through `out` and the first frame not taken for tables.
pub fn plan_map(
    tables: &impl PageTables,
    frames: &impl FrameList,
    l4_pfn: u64,
    range: core::ops::Range<u64>,
    mut free: u64,
    mut out: impl FnMut(MapStep),
) -> Result<u64, MapPlanError> {
    let table_pfn = |entry: u64| {
        if entry & pte::PRESENT == 0 {
            return Ok(None);
        }
        frames.pfn_of(pte::frame(entry)).map(Some).ok_or(MapPlanError::ForeignTable(pte::frame(entry)))
    };
    let l3 = table_pfn(tables.entry(l4_pfn, 0))?.ok_or(MapPlanError::NoL2)?;
    let l2 = table_pfn(tables.entry(l3, 0))?.ok_or(MapPlanError::NoL2)?;
    let l2_mfn = frames.mfn(l2);
    let end = range.end.min(MAX_MAPPED >> 12).min(frames.len());
    let mut pfn = range.start;
    while pfn < end {
        let l2_index = (pfn >> 9) as usize & 511;
        let l2_entry = tables.entry(l2, l2_index);
        if l2_entry & pte::PRESENT != 0 && l2_entry & pte::HUGE != 0 {
            return Err(MapPlanError::LargePage(pfn << 12));
        }
        let (l1_mfn, existing) = match table_pfn(l2_entry)? {
            Some(l1) => (frames.mfn(l1), Some(l1)),
            None => {
                // New tables come from the mapped free frames, below the range.
                if free >= range.start || free >= frames.len() {
                    return Err(MapPlanError::OutOfFrames);
                }
                let l1 = free;
                free += 1;
                let mfn = frames.mfn(l1);
                let update = MmuUpdate {
                    ptr: ((l2_mfn << 12) + 8 * l2_index as u64) | MMU_NORMAL_PT_UPDATE,
                    val: mfn << 12 | pte::TABLE,
                };
                out(MapStep::NewL1 { pfn: l1, update });
                (mfn, None)
            }
        };
        let chunk_end = ((pfn | 511) + 1).min(end);
        for p in pfn..chunk_end {
            let i = (p & 511) as usize;
            if existing.is_some_and(|l1| tables.entry(l1, i) & pte::PRESENT != 0) {
                continue;
            }
            out(MapStep::Map(MmuUpdate {
                ptr: ((l1_mfn << 12) + 8 * i as u64) | MMU_NORMAL_PT_UPDATE,
                val: frames.mfn(p) << 12 | pte::DATA,
            }));
        }
        pfn = chunk_end;
    }
    Ok(free)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn start_info_bytes(si: &PvStartInfo) -> [u8; PvStartInfo::SIZE] {
        let mut b = [0u8; PvStartInfo::SIZE];
        b[..32].copy_from_slice(&si.magic);
        let words = [
            (32, si.nr_pages),
            (40, si.shared_info),
            (48, si.flags as u64),
            (56, si.store_mfn),
            (64, si.store_evtchn as u64),
            (72, si.console_mfn),
            (80, si.console_evtchn as u64),
            (88, si.pt_base),
            (96, si.nr_pt_frames),
            (104, si.mfn_list),
        ];
        for (at, w) in words {
            b[at..at + 8].copy_from_slice(&w.to_le_bytes());
        }
        b[128..].copy_from_slice(&si.cmd_line);
        b
    }

    fn good() -> PvStartInfo {
        let mut magic = [0u8; 32];
        magic[..14].copy_from_slice(b"xen-3.0-x86_64");
        let mut cmd_line = [0u8; CMDLINE_MAX];
        cmd_line[..7].copy_from_slice(b"mode=pv");
        PvStartInfo {
            magic,
            nr_pages: 8192,
            shared_info: 0x1234_5000,
            console_mfn: 0x777,
            console_evtchn: 2,
            pt_base: 0x50_0000,
            nr_pt_frames: 6,
            mfn_list: 0x48_0000,
            cmd_line,
            ..Default::default()
        }
    }

    #[test]
    fn decodes_the_header_layout() {
        let si = good();
        assert_eq!(PvStartInfo::from_bytes(&start_info_bytes(&si)), si);
        assert_eq!(si.cmdline(), b"mode=pv");
        assert_eq!(si.first_free_pfn(), 0x500 + 6);
        assert_eq!(si.validate(), Ok(()));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let mut si = good();
        si.magic[4] = b'2';
        assert_eq!(si.validate(), Err(PvStartError::BadMagic));
        let si2 = PvStartInfo { nr_pages: 0, ..good() };
        assert_eq!(si2.validate(), Err(PvStartError::BadPageCount(0)));
        let si3 = PvStartInfo { nr_pages: 1 << 40, ..good() };
        assert_eq!(si3.validate(), Err(PvStartError::BadPageCount(1 << 40)));
        let si4 = PvStartInfo { pt_base: u64::MAX - 10, ..good() };
        assert!(matches!(si4.validate(), Err(PvStartError::OutOfRange("page tables", _))));
        let si5 = PvStartInfo { mfn_list: 8192 * 4096 - 8, ..good() };
        assert!(matches!(si5.validate(), Err(PvStartError::OutOfRange("frame list", _))));
    }

    /// Fake tables: entries by (pfn, index); frames: mfn = pfn + 0x1000.
    struct Fake(HashMap<(u64, usize), u64>);
    impl PageTables for Fake {
        fn entry(&self, pfn: u64, index: usize) -> u64 {
            self.0.get(&(pfn, index)).copied().unwrap_or(0)
        }
    }

    fn frames(n: u64) -> Vec<u64> {
        (0..n).map(|p| p + 0x1000).collect()
    }

    /// L4 at pfn 10 -> L3 at 11 -> L2 at 12 -> L1 at 13 mapping pfns 0..4.
    fn bootstrap() -> Fake {
        let mut t = HashMap::new();
        t.insert((10, 0), (11 + 0x1000) << 12 | pte::TABLE);
        t.insert((11, 0), (12 + 0x1000) << 12 | pte::TABLE);
        t.insert((12, 0), (13 + 0x1000) << 12 | pte::TABLE);
        for i in 0..4 {
            t.insert((13, i), (i as u64 + 0x1000) << 12 | pte::DATA);
        }
        Fake(t)
    }

    #[test]
    fn maps_the_rest_with_new_l1_tables_from_the_free_frames() {
        let f = frames(1200);
        let mut steps = vec![];
        let next = plan_map(&bootstrap(), &f.as_slice(), 10, 30..1200, 20, |s| steps.push(s)).unwrap();
        assert_eq!(next, 22, "pfns 512..1024 and 1024..1200 need one new L1 each");
        let maps: Vec<_> = steps.iter().filter_map(|s| if let MapStep::Map(u) = s { Some(*u) } else { None }).collect();
        assert_eq!(maps.len(), 1200 - 30);
        // From 0: the 4 mapped pages are left alone; tables only from below the range.
        let mut again = vec![];
        plan_map(&bootstrap(), &f.as_slice(), 10, 0..8, 20, |s| again.push(s)).unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(plan_map(&bootstrap(), &f.as_slice(), 10, 30..1200, 30, |_| {}), Err(MapPlanError::OutOfFrames));
        assert_eq!(maps[0], MmuUpdate { ptr: ((13 + 0x1000) << 12) | (30 * 8), val: (30 + 0x1000) << 12 | pte::DATA });
        let MapStep::NewL1 { pfn, update } = steps.iter().find(|s| matches!(s, MapStep::NewL1 { .. })).unwrap() else {
            unreachable!()
        };
        assert_eq!(*pfn, 20);
        assert_eq!(*update, MmuUpdate { ptr: (12 + 0x1000) << 12 | 8, val: (20 + 0x1000) << 12 | pte::TABLE });
        // Every new table is announced before its first entry.
        let first_new = steps.iter().position(|s| matches!(s, MapStep::NewL1 { .. })).unwrap();
        assert!(matches!(steps[first_new + 1], MapStep::Map(u) if u.ptr >> 12 == 20 + 0x1000));
    }

    #[test]
    fn refuses_foreign_tables_and_large_pages() {
        let f = frames(600);
        let mut t = bootstrap();
        t.0.insert((11, 0), 0xdead_0000 | pte::TABLE);
        assert_eq!(plan_map(&t, &f.as_slice(), 10, 30..600, 20, |_| {}), Err(MapPlanError::ForeignTable(0xdead0)));
        let mut t = bootstrap();
        t.0.insert((12, 1), 0x20_0000 | pte::PRESENT | pte::HUGE);
        assert_eq!(plan_map(&t, &f.as_slice(), 10, 30..600, 20, |_| {}), Err(MapPlanError::LargePage(512 << 12)));
        let mut t = bootstrap();
        t.0.remove(&(10, 0));
        assert_eq!(plan_map(&t, &f.as_slice(), 10, 30..600, 20, |_| {}), Err(MapPlanError::NoL2));
    }

    #[test]
    fn frame_list_lookups_are_bounded() {
        let f = frames(8);
        let l = f.as_slice();
        assert_eq!(l.mfn(100), u64::MAX);
        assert_eq!(l.pfn_of(0x1003), Some(3));
        assert_eq!(l.pfn_of(0x9999), None);
        assert!(l.plausible());
        let zeros = [0u64; 8];
        assert!(!zeros.as_slice().plausible());
    }
}
