//! Shrinking a raw `xentrace` file into a small, still valid sample (`hytrace trim`).
//!
//! Test samples (`tests/data/xentrace/`) are real traces with most of their records dropped.
//! This reads the file with `record.rs`, times every record with `merge.rs` and writes the kept
//! records back with [`write_window`]: each input window becomes a window of its kept records,
//! with its size recomputed; empty windows are left out. A file that does not parse completely
//! is refused.
//!
//! By default only the records the analysis uses are kept: `TRC_SCHED_SWITCH`, HVM VM exits
//! (also 64-bit and nested), guest records, `TRC_LOST_RECORDS` and the exit details it decodes
//! (MSR read/write, NPF, emulated MMIO read/write, also 64-bit). Everything else is dropped (VM
//! entries, runstate changes, scheduler internals, other HVM handler records), and so are the
//! switches between dom0 and the idle vCPUs (both sides domid 0 or `0x7fff`): dom0 is a PV
//! domain without VM exits, so the exits are still attributed to the same domains.
//! [`TrimOptions`] cuts further.

use super::merge::effective_tscs;
use super::record::{
    read_records, write_window, Record, TraceError, TRC_64_FLAG, TRC_HVM_IOMEM_READ, TRC_HVM_IOMEM_WRITE,
    TRC_HVM_MSR_READ, TRC_HVM_MSR_WRITE, TRC_HVM_NPF, TRC_LOST_RECORDS, TRC_SCHED_SWITCH,
};
use super::DOMID_IDLE;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use xen_iface::trace::{PhaseEdge, TRC_GUEST};

/// What [`trim()`] keeps besides the default record kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrimOptions {
    /// Keep records of every kind (use with the options below to cut the size).
    pub all_kinds: bool,
    /// Drop the records before the trace's first guest record (by TSC; e.g. an HVM guest's
    /// hvmloader/SeaBIOS boot), except each pCPU's last switch before it, which says what that
    /// pCPU runs when the first marker comes.
    pub from_first_marker: bool,
    /// Drop the records after the trace's last guest record (by TSC).
    pub until_last_marker: bool,
    /// Keep only the first operations of one phase.
    pub cut_phase: Option<CutPhase>,
}

/// Keeps only the first `ops` operations of phase `name` (the first BEGIN marker of that name
/// and the END after it). Operation k starts with the k-th record of id `event` whose first
/// extra word is `word0` (an exit detail, e.g. `0x8200d`, `0x83f` = the x2APIC SELF_IPI write);
/// everything from the exit of the (`ops`+1)-th such record up to the exit that delivers the END
/// marker is dropped, except lost-record reports and each pCPU's last scheduler switch in that
/// range (what it runs when the phase ends), and the BEGIN/END markers' iteration count is
/// rewritten to `ops`. So the sample's phase is a real, shorter run of the same loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutPhase {
    /// Phase name.
    pub name: String,
    /// Operations to keep.
    pub ops: u64,
    /// Event id of the record that starts an operation.
    pub event: u32,
    /// First extra word of that record.
    pub word0: u32,
}

impl CutPhase {
    /// Parses `NAME:OPS:EVENT:WORD0` (numbers decimal or `0x` hex), e.g.
    /// `interrupt:500:0x8200d:0x83f`.
    pub fn parse(spec: &str) -> Option<CutPhase> {
        let mut parts = spec.split(':');
        let name = parts.next()?.to_string();
        let mut number = || -> Option<u64> {
            let s = parts.next()?;
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        };
        let (ops, event, word0) = (number()?, number()?, number()?);
        let cut = CutPhase { name, ops, event: u32::try_from(event).ok()?, word0: u32::try_from(word0).ok()? };
        parts.next().is_none().then_some(cut)
    }
}

/// A trimmed trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    /// The sample, in `xentrace`'s file format.
    pub bytes: Vec<u8>,
    /// Records kept.
    pub kept: usize,
    /// Records in the input.
    pub total: usize,
}

/// Why a trace could not be trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrimError {
    /// The input does not parse completely.
    Parse(TraceError),
    /// [`CutPhase::name`] has no BEGIN marker followed by an END marker.
    NoPhase(String),
    /// The phase has no more than [`CutPhase::ops`] operation starts: nothing to cut.
    TooFewOps {
        /// Phase name.
        name: String,
        /// Operation starts found in the phase.
        found: usize,
        /// Operations asked for.
        ops: u64,
    },
    /// A marker whose iteration count is to be rewritten has no room for one.
    MarkerWithoutCount {
        /// Byte offset of the marker in the input.
        offset: usize,
    },
    /// A window of kept records would not fit in `xentrace`'s 32-bit window size.
    WindowTooLarge,
}

impl fmt::Display for TrimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrimError::Parse(e) => write!(f, "{e}"),
            TrimError::NoPhase(name) => write!(f, "--cut-phase: no complete phase {name:?} in the trace"),
            TrimError::TooFewOps { name, found, ops } => {
                write!(f, "--cut-phase: phase {name:?} has only {found} operation starts, not more than {ops}")
            }
            TrimError::MarkerWithoutCount { offset } => {
                write!(f, "marker record at byte {offset} has no iteration count to rewrite")
            }
            TrimError::WindowTooLarge => write!(f, "a window of kept records is larger than 4 GiB"),
        }
    }
}

impl std::error::Error for TrimError {}

/// The part of a phase [`CutPhase`] drops: effective TSCs `lo..hi`, and the record indices of
/// the phase's BEGIN and END markers.
struct Cut {
    lo: u64,
    hi: u64,
    markers: [usize; 2],
}

/// Whether the record is a hypercall phase marker `edge` of phase `name`.
fn is_marker(rec: &Record, edge: PhaseEdge, name: &str) -> bool {
    rec.event == TRC_GUEST | u32::from(edge.event()) && rec.phase_marker().is_some_and(|m| m.name == name)
}

/// Finds what [`CutPhase`] drops: from the (`ops`+1)-th operation start to the END marker.
fn cut_range(records: &[Record], eff: &[u64], c: &CutPhase) -> Result<Cut, TrimError> {
    // Records in effective-TSC order; the sort is stable, so ties keep file order.
    let mut order: Vec<(u64, usize, &Record)> =
        records.iter().enumerate().map(|(i, r)| (eff.get(i).copied().unwrap_or(0), i, r)).collect();
    order.sort_by_key(|&(t, ..)| t);
    let no_phase = || TrimError::NoPhase(c.name.clone());
    let mut it = order.iter();
    let &(begin_tsc, begin, _) = it.find(|(_, _, r)| is_marker(r, PhaseEdge::Begin, &c.name)).ok_or_else(no_phase)?;
    let &(end_tsc, end, _) = it.find(|(_, _, r)| is_marker(r, PhaseEdge::End, &c.name)).ok_or_else(no_phase)?;
    let starts: Vec<u64> = order
        .iter()
        .filter(|(t, _, r)| (begin_tsc..end_tsc).contains(t) && r.event == c.event)
        .filter(|(_, _, r)| r.extra().first() == Some(&c.word0))
        .map(|&(t, ..)| t)
        .collect();
    let too_few = || TrimError::TooFewOps { name: c.name.clone(), found: starts.len(), ops: c.ops };
    let lo = usize::try_from(c.ops).ok().and_then(|k| starts.get(k)).ok_or_else(too_few)?;
    Ok(Cut { lo: *lo, hi: end_tsc, markers: [begin, end] })
}

/// Whether a record is of a kind kept by default (see the module documentation).
fn default_kind(rec: &Record) -> bool {
    let detail = matches!(rec.event, TRC_HVM_MSR_READ | TRC_HVM_MSR_WRITE | TRC_HVM_NPF)
        || matches!(rec.event & !TRC_64_FLAG, TRC_HVM_IOMEM_READ | TRC_HVM_IOMEM_WRITE);
    let dom0_or_idle = |w: u32| w == 0 || w == u32::from(DOMID_IDLE);
    let dom0_idle_switch = rec.event == TRC_SCHED_SWITCH
        && rec.extra().len() >= 4
        && dom0_or_idle(rec.word(0))
        && dom0_or_idle(rec.word(2));
    let kind = rec.event == TRC_SCHED_SWITCH
        || rec.event == TRC_LOST_RECORDS
        || detail
        || rec.guest_event().is_some()
        || rec.is_vmexit();
    kind && !dom0_idle_switch
}

/// For each pCPU, the index of its last switch record among those `within` accepts.
fn last_switches(records: &[Record], within: impl Fn(usize) -> bool) -> BTreeMap<u32, usize> {
    let mut last = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.event == TRC_SCHED_SWITCH && within(i) {
            last.insert(r.cpu, i);
        }
    }
    last
}

/// Trims a trace file (see the module documentation and [`TrimOptions`]).
pub fn trim(bytes: &[u8], opts: &TrimOptions) -> Result<Trimmed, TrimError> {
    let (records, err) = read_records(bytes);
    if let Some(e) = err {
        return Err(TrimError::Parse(e));
    }
    // Effective TSC of each record: its own, else the last one seen on its pCPU, else 0.
    let eff: Vec<u64> = effective_tscs(&records).into_iter().map(|t| t.unwrap_or(0)).collect();
    let tsc = |i: usize| eff.get(i).copied().unwrap_or(0);
    let markers = || records.iter().enumerate().filter(|(_, r)| r.guest_event().is_some()).map(|(i, _)| tsc(i));
    let lo = if opts.from_first_marker { markers().min() } else { None };
    let hi = if opts.until_last_marker { markers().max() } else { None };
    let cut = opts.cut_phase.as_ref().map(|c| cut_range(&records, &eff, c)).transpose()?;
    let cut_switch = match &cut {
        Some(c) => last_switches(&records, |i| c.lo <= tsc(i) && tsc(i) < c.hi),
        None => BTreeMap::new(),
    };
    let lo_switch = match lo {
        Some(lo) => last_switches(&records, |i| tsc(i) < lo),
        None => BTreeMap::new(),
    };
    let rewrite: BTreeSet<usize> = cut.as_ref().map(|c| c.markers.into_iter().collect()).unwrap_or_default();
    let ops = opts.cut_phase.as_ref().map_or(0, |c| c.ops);

    let mut out = Vec::new();
    let mut kept = 0;
    let mut base = 0;
    for window in records.chunk_by(|a, b| a.window == b.window) {
        let mut body = Vec::with_capacity(window.len());
        for (i, rec) in (base..).zip(window) {
            let t = tsc(i);
            let mut keep = opts.all_kinds || default_kind(rec);
            keep &= lo.is_none_or(|lo| t >= lo || lo_switch.get(&rec.cpu) == Some(&i));
            keep &= hi.is_none_or(|hi| t <= hi);
            if let Some(c) = &cut {
                let spared = rec.event == TRC_LOST_RECORDS || cut_switch.get(&rec.cpu) == Some(&i);
                keep &= !(c.lo..c.hi).contains(&t) || spared;
            }
            if !keep {
                continue;
            }
            let rec = if rewrite.contains(&i) {
                let missing = TrimError::MarkerWithoutCount { offset: rec.offset };
                rec.with_word(0, ops as u32).and_then(|r| r.with_word(1, (ops >> 32) as u32)).ok_or(missing)?
            } else {
                *rec
            };
            body.push(rec);
        }
        base += window.len();
        kept += body.len();
        if let Some(first) = window.first() {
            write_window(&mut out, first.cpu, &body).ok_or(TrimError::WindowTooLarge)?;
        }
    }
    Ok(Trimmed { bytes: out, kept, total: records.len() })
}
