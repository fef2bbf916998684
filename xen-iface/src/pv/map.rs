//! Extending Xen's bootstrap map over the domain's memory: which L1 tables to add and which
//! entries to write, planned against the live tables without touching memory.

use super::{pte, MmuUpdate, MAX_MAPPED, MMU_NORMAL_PT_UPDATE};

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
