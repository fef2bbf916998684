//! Parser for the binary trace files written by Xen's `xentrace`, with VM exit accounting.
//!
//! # File format
//!
//! `xentrace` copies Xen's per-pCPU trace buffers to the file in *windows*. Each window starts
//! with a `TRC_TRACE_CPU_CHANGE` record (`0x0001f003`, two extra words: the pCPU number and the
//! size in bytes of the window that follows), followed by that many bytes of records taken from
//! that pCPU's buffer, oldest first. Windows of different pCPUs are interleaved in the order
//! `xentrace` read them, so records are ordered within one pCPU, not across pCPUs.
//!
//! Every record (`xen/include/public/trace.h`) is little endian:
//!
//! ```text
//! u32 header   bits 0-27: event id, bits 28-30: number of extra words (0-7),
//!              bit 31: a 64-bit TSC follows
//! [u64 tsc]    only if bit 31 is set (written as two u32 words, low word first)
//! u32 extra[n]
//! ```
//!
//! # What is extracted
//!
//! * **VM exits** (SVM): `TRC_HVM_VMEXIT` `0x81002` (extra: exit code, eip) and
//!   `TRC_HVM_VMEXIT64` `0x81102` (extra: exit code, rip low, rip high), optionally with
//!   `TRC_HVM_NESTEDFLAG` `0x400`. `0x81001` is VM*ENTRY* and is not an exit. The exit code is
//!   AMD's `EXITCODE` (see [`svm_exit_name`]); on Intel hosts it would be a VMX basic exit reason.
//! * **Domains**: exit records carry no domain. Each exit is attributed to the vCPU that was last
//!   switched in on its pCPU by `TRC_SCHED_SWITCH` `0x2800a` (extra: prev domid, prev vcpu,
//!   next domid, next vcpu), so trace with the SCHED class (e.g. `xentrace -e 0x080af000`).
//!   Before a pCPU's first switch record, its exits go to the *prev* side of that first switch.
//!   Exits that cannot be attributed get [`DOMID_UNKNOWN`] (and a trace without any switch record
//!   gets a warning).
//! * **Phases**: a guest marks benchmark phases with `HVMOP_xentrace`, which Xen logs as record
//!   `TRC_GUEST | event` (`0x0800f000 | event`). Event [`GUEST_PHASE_BEGIN`] (`0x100`) opens and
//!   [`GUEST_PHASE_END`] (`0x101`) closes a phase of the domain that issued it; the 28 extra bytes
//!   are `u32 iterations_lo, u32 iterations_hi, char name[20]` (NUL padded). All exits of that
//!   domain between the two markers are counted for the phase. The hypercall that delivers the END
//!   marker itself causes a VMMCALL exit inside the window; it is not counted, so a loop of N
//!   CPUIDs shows exactly N exits. A guest that cannot make hypercalls marks phases with CPUIDs
//!   of reserved leaves instead ([`CPUID_MARK_BEGIN`], traced as `TRC_HVM_CPUID`). Both kinds of
//!   marker are decoded by [`xen_iface::trace`], the specification the guests encode them with.
//! * **Exit details** (the HVM handler records of the default mask `0x080af000`; not in
//!   `0x080a9000`): right after an exit, on the same pCPU and without a TSC of their own, Xen
//!   writes what the exit handler did. Decoded here ([`ExitDetail`]):
//!   `TRC_HVM_MSR_READ` `0x8200c` / `TRC_HVM_MSR_WRITE` `0x8200d` (extra: MSR index, value low,
//!   value high; from `hvm_msr_{read,write}_intercept`), `TRC_HVM_NPF` `0x82021` (extra: u64 guest
//!   physical address, u64 mfn, u32 qualification (always 0 on SVM), u32 p2m type; written after
//!   the fault was handled) and `TRC_HVM_IOMEM_READ` `0x82017` / `TRC_HVM_IOMEM_WRITE` `0x82217`
//!   (extra: u32 address, u32 data; `| 0x100`: u64 address, u32 data; no data word for
//!   string accesses): each access Xen emulates for an MMIO exit (an NPF), also those it handles
//!   itself (the local APIC page). A detail belongs to the exit before it on its pCPU, and counts
//!   for the phase that exit counted for. An xAPIC write is seen as an NPF exit, then
//!   `IOMEM_WRITE` (address, value), then `NPF` (address); an x2APIC write as an MSR exit
//!   (`0x7c`), then `MSR_WRITE`. [`Phase::eoi_exits`] counts the local APIC EOI writes among them:
//!   x2APIC MSR [`X2APIC_EOI_MSR`] writes plus MMIO writes to [`XAPIC_EOI_GPA`] (the xAPIC at its
//!   default base).
//! * **Lost records**: when a pCPU's buffer is full Xen drops records, and once it can write
//!   again it writes `TRC_LOST_RECORDS` (`0x1f001`, with a TSC; extra: `u32 count; u16 domid,
//!   u16 vcpu; u64 first_tsc`, see `insert_lost_records` in Xen's `common/trace.c`). The loss
//!   covers the [`LostInterval`] from `first_tsc` to the report's own TSC. A phase counts the
//!   records reported lost while it was open ([`Phase::lost_records`]) and is marked when any
//!   lost interval overlaps it ([`Phase::overlaps_lost`]): its counts may be low.
//!
//! To put exits and markers of different pCPUs in one order (a vCPU may migrate), the per-pCPU
//! streams are merged by TSC; a record without a TSC (Xen 4.17 writes guest records without
//! one) takes the last TSC seen on its pCPU. This assumes the pCPUs' TSCs are synchronised, as
//! they are on current hardware; under QEMU TCG they can drift apart by a little, so exits right
//! at a phase boundary of a vCPU that just migrated may land on the wrong side of it.
//!
//! Malformed input (truncated files, window sizes that overrun the file, records that overrun
//! their window, unknown window headers) is reported as a [`TraceError`]; the parser never
//! panics. [`parse_lenient`] keeps what could be read before the first error. Malformed or
//! unmatched markers, lost records and unattributable records are reported by
//! [`Trace::warnings`].
//!
//! # Modules
//!
//! `record` (the file format: [`read_records`], [`write_window`]), `decode` (what one record
//! says), `merge` (one timeline across pCPUs), `analyse` (attribution and phase accounting into
//! a [`Trace`]), `phase` ([`Phase`]), `svm` (exit codes), `report` ([`Trace::summary`]) and
//! `trim` ([`trim()`], shrinking a trace into a test sample; `hytrace trim`).
//!
//! ```no_run
//! let bytes = std::fs::read("results/xtg-pvh.trace").unwrap();
//! let trace = harness::xentrace::parse(&bytes).unwrap();
//! for phase in trace.phases(1) {
//!     println!("{} {:?}", phase.name, phase.exits_per_op());
//! }
//! ```

mod analyse;
mod decode;
mod merge;
mod phase;
mod record;
mod report;
mod svm;
#[cfg(test)]
mod tests;
mod trim;

pub use decode::{ExitDetail, X2APIC_EOI_MSR, XAPIC_EOI_GPA};
pub use phase::Phase;
pub use record::{
    read_records, write_window, Record, TraceError, TRC_64_FLAG, TRC_HVM_CPUID, TRC_HVM_IOMEM_READ,
    TRC_HVM_IOMEM_WRITE, TRC_HVM_MSR_READ, TRC_HVM_MSR_WRITE, TRC_HVM_NESTEDFLAG, TRC_HVM_NPF, TRC_HVM_VMENTRY,
    TRC_HVM_VMEXIT, TRC_HVM_VMEXIT64, TRC_LOST_RECORDS, TRC_PV_HYPERCALL_V2, TRC_SCHED_SWITCH, TRC_TRACE_CPU_CHANGE,
    TRC_TRACE_WRAP_BUFFER,
};
pub use svm::{
    svm_exit_name, SVM_EXIT_CPUID, SVM_EXIT_HLT, SVM_EXIT_INTR, SVM_EXIT_IOIO, SVM_EXIT_MSR, SVM_EXIT_NPF,
    SVM_EXIT_VINTR, SVM_EXIT_VMMCALL,
};
pub use trim::{trim, CutPhase, TrimError, TrimOptions, Trimmed};
pub use xen_iface::trace::{CPUID_MARK_BEGIN, CPUID_MARK_END, CPUID_MARK_NAMES, TRC_GUEST};

use std::collections::BTreeMap;

/// Guest event that opens a phase (record id `0x0800f100`; `xen_iface::trace::EVENT_PHASE_BEGIN`).
pub const GUEST_PHASE_BEGIN: u32 = xen_iface::trace::EVENT_PHASE_BEGIN as u32;
/// Guest event that closes a phase (record id `0x0800f101`; `xen_iface::trace::EVENT_PHASE_END`).
pub const GUEST_PHASE_END: u32 = xen_iface::trace::EVENT_PHASE_END as u32;
/// Domain id of Xen's idle vCPUs.
pub const DOMID_IDLE: u16 = 0x7fff;
/// Domain id used for exits and markers that could not be attributed to a domain.
pub const DOMID_UNKNOWN: u16 = 0xffff;

/// One exit handler detail, attributed like the exit it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailEvent {
    /// pCPU of the record.
    pub cpu: u32,
    /// TSC of the exit it belongs to (detail records carry none of their own).
    pub tsc: Option<u64>,
    /// Domain ([`DOMID_UNKNOWN`] if unknown).
    pub domain: u16,
    /// vCPU (0xffff if unknown).
    pub vcpu: u16,
    /// SVM exit code of the exit it belongs to (`None`: no exit seen before it on its pCPU).
    pub exit_code: Option<u32>,
    /// What it says.
    pub detail: ExitDetail,
}

/// One VM exit, attributed to a domain and vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExit {
    /// pCPU the exit happened on.
    pub cpu: u32,
    /// TSC of the exit record (or the last TSC seen on its pCPU).
    pub tsc: Option<u64>,
    /// Domain the exit belongs to ([`DOMID_UNKNOWN`] if unknown).
    pub domain: u16,
    /// vCPU (scheduling unit) the exit belongs to (0xffff if unknown).
    pub vcpu: u16,
    /// SVM exit code (see [`svm_exit_name`]).
    pub code: u32,
    /// Guest instruction pointer at the exit.
    pub rip: u64,
    /// Whether this was the 64-bit record form (guest in long mode).
    pub long_mode: bool,
    /// Whether the vCPU was running a nested (L2) guest.
    pub nested: bool,
}

/// Records Xen lost on one pCPU, from one `TRC_LOST_RECORDS` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostInterval {
    /// pCPU whose buffer was full.
    pub cpu: u32,
    /// TSC of the first record lost (0 if the report is too short to say: it may be any time).
    pub first_tsc: u64,
    /// TSC from which Xen could write again: the report's own TSC (Xen 4.17 gives it one), else
    /// that of the next record on its pCPU that has one; `None`: the loss may last to the end.
    pub end_tsc: Option<u64>,
    /// Records lost.
    pub count: u32,
    /// Domain running on the pCPU when Xen wrote the report (not necessarily the one whose
    /// records were lost).
    pub domain: u16,
    /// vCPU running on the pCPU when Xen wrote the report.
    pub vcpu: u16,
    /// Byte offset of the report in the file.
    pub offset: usize,
}

impl LostInterval {
    /// Whether the loss overlaps the TSC window `from..=to` (both ends included).
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        let end = self.end_tsc.unwrap_or(u64::MAX);
        self.first_tsc.min(end) <= to && end >= from
    }
}

/// A parsed trace: the raw records plus VM exits and phases derived from them.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    records: Vec<Record>,
    exits: Vec<VmExit>,
    details: Vec<DetailEvent>,
    phases: Vec<Phase>,
    cpus: Vec<u32>,
    lost_records: u64,
    lost: Vec<LostInterval>,
    warnings: Vec<String>,
}

impl Trace {
    /// All records in file order (window by window).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// All VM exits, ordered by TSC across pCPUs.
    pub fn exits(&self) -> &[VmExit] {
        &self.exits
    }

    /// All decoded exit details (MSR accesses, NPFs, emulated MMIO), ordered like the exits.
    pub fn details(&self) -> &[DetailEvent] {
        &self.details
    }

    /// MSR write counts per domain and MSR index.
    pub fn msr_writes_by_domain(&self) -> BTreeMap<u16, BTreeMap<u32, u64>> {
        let mut out: BTreeMap<u16, BTreeMap<u32, u64>> = BTreeMap::new();
        for d in &self.details {
            if let ExitDetail::MsrWrite { msr, .. } = d.detail {
                *out.entry(d.domain).or_default().entry(msr).or_insert(0) += 1;
            }
        }
        out
    }

    /// Emulated MMIO write counts per domain and guest physical address.
    pub fn mmio_writes_by_domain(&self) -> BTreeMap<u16, BTreeMap<u64, u64>> {
        let mut out: BTreeMap<u16, BTreeMap<u64, u64>> = BTreeMap::new();
        for d in &self.details {
            if let ExitDetail::MmioWrite { addr, .. } = d.detail {
                *out.entry(d.domain).or_default().entry(addr).or_insert(0) += 1;
            }
        }
        out
    }

    /// Local APIC EOI writes per domain (see [`Phase::eoi_exits`]); domains without any are
    /// left out.
    pub fn eoi_exits_by_domain(&self) -> BTreeMap<u16, u64> {
        let mut out = BTreeMap::new();
        for d in self.details.iter().filter(|d| d.detail.is_eoi()) {
            *out.entry(d.domain).or_insert(0) += 1;
        }
        out
    }

    /// pCPUs that have at least one window in the file, ascending.
    pub fn cpus(&self) -> &[u32] {
        &self.cpus
    }

    /// Exit counts per domain and SVM exit code.
    pub fn exits_by_domain(&self) -> BTreeMap<u16, BTreeMap<u32, u64>> {
        let mut out: BTreeMap<u16, BTreeMap<u32, u64>> = BTreeMap::new();
        for e in &self.exits {
            *out.entry(e.domain).or_default().entry(e.code).or_insert(0) += 1;
        }
        out
    }

    /// Total exits per domain.
    pub fn exit_totals(&self) -> BTreeMap<u16, u64> {
        let mut out = BTreeMap::new();
        for e in &self.exits {
            *out.entry(e.domain).or_insert(0) += 1;
        }
        out
    }

    /// The phases of one domain, in the order they began.
    pub fn phases(&self, domid: u16) -> Vec<&Phase> {
        self.phases.iter().filter(|p| p.domain == domid).collect()
    }

    /// All phases of all domains, in the order they began.
    pub fn all_phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Domains that issued phase markers, ascending.
    pub fn phase_domains(&self) -> Vec<u16> {
        let mut d: Vec<u16> = self.phases.iter().map(|p| p.domain).collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// Records Xen reported as lost (`TRC_LOST_RECORDS`), all pCPUs together.
    pub fn lost_records(&self) -> u64 {
        self.lost_records
    }

    /// Every `TRC_LOST_RECORDS` report as the interval it covers, in the order they were met
    /// (by TSC across pCPUs).
    pub fn lost_intervals(&self) -> &[LostInterval] {
        &self.lost
    }

    /// Oddities met while analysing, each with enough context to find it in the file: END
    /// markers without a BEGIN, BEGIN markers without an END, markers of no known domain or with
    /// a short payload, phase names that do not match, lost records, and a trace without any
    /// `TRC_SCHED_SWITCH` record.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Parses a whole `xentrace` file; any malformed or truncated part is an error.
pub fn parse(bytes: &[u8]) -> Result<Trace, TraceError> {
    let (records, err) = read_records(bytes);
    match err {
        Some(e) => Err(e),
        None => Ok(analyse::analyse(records)),
    }
}

/// Parses as much of a `xentrace` file as possible: every complete record before the first
/// error is kept and analysed. Returns the error too, if there was one (e.g. a file cut short
/// because `xentrace` was killed).
pub fn parse_lenient(bytes: &[u8]) -> (Trace, Option<TraceError>) {
    let (records, err) = read_records(bytes);
    (analyse::analyse(records), err)
}
