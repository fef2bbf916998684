//! One order for the records of all pCPUs: each pCPU's stream, merged by TSC.
//!
//! `record.rs` gives records in file order, window by window; within one pCPU that is the order
//! Xen wrote them, across pCPUs it is only the order `xentrace` read the buffers. `phase.rs`
//! needs one timeline (a vCPU may migrate in the middle of a phase) and `trim.rs` needs each
//! record's time; both come from here.

use super::record::{Record, TRC_TRACE_WRAP_BUFFER};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// The effective TSC of every record, by index: its own, else the last one seen before it on
/// its pCPU (`None` before the first).
pub(super) fn effective_tscs(records: &[Record]) -> Vec<Option<u64>> {
    let mut last_tsc: BTreeMap<u32, u64> = BTreeMap::new();
    records
        .iter()
        .map(|rec| {
            if let Some(t) = rec.tsc {
                last_tsc.insert(rec.cpu, t);
            }
            last_tsc.get(&rec.cpu).copied()
        })
        .collect()
}

/// Merges the per-pCPU streams by effective TSC (ties: lower pCPU first; before its first TSC
/// a record counts as TSC 0), keeping each pCPU's own order. Wrap-buffer padding records are
/// left out. Returns the pCPUs (ascending) and (record index, effective TSC) in merged order.
pub(super) fn merge_by_tsc(records: &[Record]) -> (Vec<u32>, Vec<(usize, Option<u64>)>) {
    let mut streams: BTreeMap<u32, Vec<(usize, Option<u64>)>> = BTreeMap::new();
    for (i, (rec, tsc)) in records.iter().zip(effective_tscs(records)).enumerate() {
        if rec.event != TRC_TRACE_WRAP_BUFFER {
            streams.entry(rec.cpu).or_default().push((i, tsc));
        }
    }
    let cpus: Vec<u32> = streams.keys().copied().collect();
    let streams: Vec<Vec<(usize, Option<u64>)>> = streams.into_values().collect();
    let key = |item: &(usize, Option<u64>)| item.1.unwrap_or(0);
    let mut heap = BinaryHeap::new();
    for (s, items) in streams.iter().enumerate() {
        if let Some(first) = items.first() {
            heap.push(Reverse((key(first), s, 0usize)));
        }
    }
    let mut order = Vec::with_capacity(records.len());
    while let Some(Reverse((_, s, k))) = heap.pop() {
        let Some(items) = streams.get(s) else { continue };
        let Some(&item) = items.get(k) else { continue };
        order.push(item);
        if let Some(next) = items.get(k + 1) {
            heap.push(Reverse((key(next), s, k + 1)));
        }
    }
    (cpus, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cpu: u32, tsc: Option<u64>) -> Record {
        Record::new(cpu, 0x1234, tsc, &[]).unwrap()
    }

    #[test]
    fn streams_are_merged_by_effective_tsc() {
        // File order: pCPU 1's window, then pCPU 0's. Untimed records take their pCPU's last TSC.
        let recs = [
            rec(1, None),
            rec(1, Some(20)),
            rec(1, None),
            rec(0, Some(10)),
            rec(0, Some(20)),
            rec(0, None),
            rec(0, Some(30)),
            Record::new(0, TRC_TRACE_WRAP_BUFFER, None, &[]).unwrap(),
        ];
        assert_eq!(effective_tscs(&recs), [None, Some(20), Some(20), Some(10), Some(20), Some(20), Some(30), Some(30)]);
        let (cpus, order) = merge_by_tsc(&recs);
        assert_eq!(cpus, [0, 1]);
        let idx: Vec<usize> = order.iter().map(|&(i, _)| i).collect();
        // Ties at TSC 20 go to pCPU 0 first; each pCPU keeps its own order; no padding.
        assert_eq!(idx, [0, 3, 4, 5, 1, 2, 6]);
    }
}
