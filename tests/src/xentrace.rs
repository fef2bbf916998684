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
//!   Exits that cannot be attributed get [`DOMID_UNKNOWN`].
//! * **Phases**: a guest marks benchmark phases with `HVMOP_xentrace`, which Xen logs as record
//!   `TRC_GUEST | event` (`0x0800f000 | event`). Event [`GUEST_PHASE_BEGIN`] (`0x100`) opens and
//!   [`GUEST_PHASE_END`] (`0x101`) closes a phase of the domain that issued it; the 28 extra bytes
//!   are `u32 iterations_lo, u32 iterations_hi, char name[20]` (NUL padded). All exits of that
//!   domain between the two markers are counted for the phase. The hypercall that delivers the END
//!   marker itself causes a VMMCALL exit inside the window; it is not counted, so a loop of N
//!   CPUIDs shows exactly N exits.
//!
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
//!
//! To put exits and markers of different pCPUs in one order (a vCPU may migrate), the per-pCPU
//! streams are merged by TSC; a record without a TSC (Xen 4.17 writes guest records without
//! one) takes the last TSC seen on its pCPU. This assumes the pCPUs' TSCs are synchronised, as
//! they are on current hardware; under QEMU TCG they can drift apart by a little, so exits right
//! at a phase boundary of a vCPU that just migrated may land on the wrong side of it.
//!
//! Malformed input (truncated files, window sizes that overrun the file, records that overrun
//! their window, unknown window headers) is reported as a [`TraceError`]; the parser never
//! panics. [`parse_lenient`] keeps what could be read before the first error.
//!
//! ```no_run
//! let bytes = std::fs::read("results/xtg-pvh.trace").unwrap();
//! let trace = harness::xentrace::parse(&bytes).unwrap();
//! for phase in trace.phases(1) {
//!     println!("{} {:?}", phase.name, phase.exits_per_op());
//! }
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;

/// `TRC_LOST_RECORDS`: Xen dropped records because a trace buffer was full.
pub const TRC_LOST_RECORDS: u32 = 0x0001_f001;
/// `TRC_TRACE_WRAP_BUFFER`: padding record at the end of a wrapped buffer.
pub const TRC_TRACE_WRAP_BUFFER: u32 = 0x0001_f002;
/// `TRC_TRACE_CPU_CHANGE`: written by `xentrace` at the start of each window.
pub const TRC_TRACE_CPU_CHANGE: u32 = 0x0001_f003;
/// `TRC_SCHED_SWITCH`: extra words prev domid, prev vcpu, next domid, next vcpu.
pub const TRC_SCHED_SWITCH: u32 = 0x0002_800a;
/// `TRC_HVM_VMENTRY` (not an exit).
pub const TRC_HVM_VMENTRY: u32 = 0x0008_1001;
/// `TRC_HVM_VMEXIT` (guest not in long mode): extra words exit code, eip.
pub const TRC_HVM_VMEXIT: u32 = 0x0008_1002;
/// `TRC_HVM_VMEXIT64` (guest in long mode): extra words exit code, rip low, rip high.
pub const TRC_HVM_VMEXIT64: u32 = TRC_HVM_VMEXIT | TRC_64_FLAG;
/// `TRC_64_FLAG`: the record is the 64-bit variant of an HVM event.
pub const TRC_64_FLAG: u32 = 0x100;
/// `TRC_HVM_NESTEDFLAG`: the event happened while the vCPU ran a nested (L2) guest.
pub const TRC_HVM_NESTEDFLAG: u32 = 0x400;
/// `TRC_GUEST`: class of records a guest writes with `HVMOP_xentrace` (`TRC_GUEST | event`).
pub const TRC_GUEST: u32 = 0x0800_f000;
/// Guest event that opens a phase (record id `0x0800f100`).
pub const GUEST_PHASE_BEGIN: u32 = 0x100;
/// Guest event that closes a phase (record id `0x0800f101`).
pub const GUEST_PHASE_END: u32 = 0x101;
/// `TRC_HVM_CPUID`: extra words leaf, subleaf, then the four result registers.
pub const TRC_HVM_CPUID: u32 = 0x0008_200e;
/// CPUID leaves used as phase markers by guests that cannot make hypercalls where they
/// measure (the Linux peer's userspace): `CPUID_MARK_BEGIN + id` opens phase `id` of
/// [`CPUID_MARK_NAMES`], `CPUID_MARK_END + id` closes it with the iteration count in the
/// subleaf. Xen answers these leaves with zeros; the exit and its record are the marker.
pub const CPUID_MARK_BEGIN: u32 = 0x4fff_f100;
/// See [`CPUID_MARK_BEGIN`].
pub const CPUID_MARK_END: u32 = 0x4fff_f200;
/// Phase names by CPUID marker id.
pub const CPUID_MARK_NAMES: [&str; 3] = ["udp_rr", "tcp_rr", "tcp_stream"];
/// SVM exit code of CPUID.
pub const SVM_EXIT_CPUID: u32 = 0x72;
/// SVM exit code of RDMSR/WRMSR (x2APIC accesses among them).
pub const SVM_EXIT_MSR: u32 = 0x7c;
/// SVM exit code of a nested page fault (MMIO emulation, xAPIC accesses among them).
pub const SVM_EXIT_NPF: u32 = 0x400;

/// Domain id of Xen's idle vCPUs.
pub const DOMID_IDLE: u16 = 0x7fff;
/// Domain id used for exits and markers that could not be attributed to a domain.
pub const DOMID_UNKNOWN: u16 = 0xffff;
/// SVM exit code of VMMCALL (hypercalls from HVM/PVH guests).
pub const SVM_EXIT_VMMCALL: u32 = 0x81;
/// `TRC_HVM_MSR_READ`: extra words MSR index, value low, value high (after an MSR exit).
pub const TRC_HVM_MSR_READ: u32 = 0x0008_200c;
/// `TRC_HVM_MSR_WRITE`: extra words MSR index, value low, value high (after an MSR exit).
pub const TRC_HVM_MSR_WRITE: u32 = 0x0008_200d;
/// `TRC_HVM_NPF`: extra words gpa low, gpa high, mfn low, mfn high, qualification, p2m type.
pub const TRC_HVM_NPF: u32 = 0x0008_2021;
/// `TRC_HVM_IOMEM_READ`: an emulated MMIO read; extra words address [, data]
/// (`| TRC_64_FLAG`: address low, address high [, data]).
pub const TRC_HVM_IOMEM_READ: u32 = 0x0008_2017;
/// `TRC_HVM_IOMEM_WRITE`: an emulated MMIO write; words as [`TRC_HVM_IOMEM_READ`].
pub const TRC_HVM_IOMEM_WRITE: u32 = 0x0008_2217;
/// x2APIC EOI register (MSR `0x800 + 0xb0 / 16`).
pub const X2APIC_EOI_MSR: u32 = 0x80b;
/// xAPIC EOI register at the default APIC base `0xfee00000`.
pub const XAPIC_EOI_GPA: u64 = 0xfee0_00b0;

/// Header of the window records `xentrace` writes: `TRC_TRACE_CPU_CHANGE` with 2 extra words.
const CPU_CHANGE_HEADER: u32 = TRC_TRACE_CPU_CHANGE | (2 << 28);
/// Most extra words a record can have.
const MAX_EXTRA: usize = 7;

/// Why a trace file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// The file ends inside a window header, a window or a record.
    Truncated {
        /// Byte offset of the structure that is cut short.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// A window does not start with the `TRC_TRACE_CPU_CHANGE` record `xentrace` writes.
    BadWindowHeader {
        /// Byte offset of the window.
        offset: usize,
        /// The header word found there.
        header: u32,
    },
    /// A record inside a window extends past the window's end (bogus sizes or counts).
    RecordOverrunsWindow {
        /// Byte offset of the record.
        offset: usize,
        /// Size of the record in bytes.
        record_size: usize,
        /// Byte offset where the window ends.
        window_end: usize,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Truncated { offset, what, needed, available } => {
                write!(f, "trace truncated at byte {offset}: {what} needs {needed} bytes, {available} left")
            }
            TraceError::BadWindowHeader { offset, header } => write!(
                f,
                "no xentrace window header at byte {offset} (found {header:#010x}, \
                 expected {CPU_CHANGE_HEADER:#010x})"
            ),
            TraceError::RecordOverrunsWindow { offset, record_size, window_end } => write!(
                f,
                "record at byte {offset} ({record_size} bytes) overruns its window, \
                 which ends at byte {window_end}"
            ),
        }
    }
}

impl std::error::Error for TraceError {}

/// One trace record, as read from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the record's header in the file.
    pub offset: usize,
    /// pCPU whose buffer held the record (from the enclosing window).
    pub cpu: u32,
    /// Event id (the header's low 28 bits).
    pub event: u32,
    /// TSC of the record, if it carries one.
    pub tsc: Option<u64>,
    n_extra: u8,
    extra: [u32; MAX_EXTRA],
}

impl Record {
    /// The record's extra data words.
    pub fn extra(&self) -> &[u32] {
        &self.extra[..usize::from(self.n_extra)]
    }

    /// Extra word `i`, or 0 if the record has fewer words.
    fn word(&self, i: usize) -> u32 {
        self.extra().get(i).copied().unwrap_or(0)
    }

    /// For a guest (`HVMOP_xentrace`) record, its event number (`id & 0xfff`).
    pub fn guest_event(&self) -> Option<u32> {
        (self.event & 0x0fff_f000 == TRC_GUEST).then_some(self.event & 0xfff)
    }

    /// Whether the record is an HVM VM exit (32- or 64-bit form, nested or not).
    pub fn is_vmexit(&self) -> bool {
        self.event & !(TRC_64_FLAG | TRC_HVM_NESTEDFLAG) == TRC_HVM_VMEXIT
    }

    /// Decodes an exit handler detail record (MSR access, NPF, emulated MMIO access); `None`
    /// for other records and for detail records too short to say what they are about.
    pub fn exit_detail(&self) -> Option<ExitDetail> {
        let n = self.extra().len();
        let u64_at = |i: usize| u64::from(self.word(i + 1)) << 32 | u64::from(self.word(i));
        match self.event {
            TRC_HVM_MSR_READ | TRC_HVM_MSR_WRITE if n >= 1 => {
                let (msr, value) = (self.word(0), u64_at(1));
                Some(if self.event == TRC_HVM_MSR_WRITE {
                    ExitDetail::MsrWrite { msr, value }
                } else {
                    ExitDetail::MsrRead { msr, value }
                })
            }
            TRC_HVM_NPF if n >= 2 => Some(ExitDetail::Npf { gpa: u64_at(0), mfn: u64_at(2), p2m_type: self.word(5) }),
            ev if ev & !TRC_64_FLAG == TRC_HVM_IOMEM_READ || ev & !TRC_64_FLAG == TRC_HVM_IOMEM_WRITE => {
                let wide = ev & TRC_64_FLAG != 0;
                let addr_words = if wide { 2 } else { 1 };
                if n < addr_words {
                    return None;
                }
                let addr = if wide { u64_at(0) } else { u64::from(self.word(0)) };
                let data = (n > addr_words).then(|| self.word(addr_words));
                Some(if ev & !TRC_64_FLAG == TRC_HVM_IOMEM_WRITE {
                    ExitDetail::MmioWrite { addr, data }
                } else {
                    ExitDetail::MmioRead { addr, data }
                })
            }
            _ => None,
        }
    }
}

/// What an exit handler detail record says (see [`Record::exit_detail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDetail {
    /// `TRC_HVM_MSR_READ`: the guest read `msr` and got `value`.
    MsrRead {
        /// MSR index.
        msr: u32,
        /// Value returned.
        value: u64,
    },
    /// `TRC_HVM_MSR_WRITE`: the guest wrote `value` to `msr`.
    MsrWrite {
        /// MSR index.
        msr: u32,
        /// Value written.
        value: u64,
    },
    /// `TRC_HVM_NPF`: a nested page fault at guest physical address `gpa`.
    Npf {
        /// Faulting guest physical address (exact, not page aligned).
        gpa: u64,
        /// Machine frame it maps to (`u64::MAX`: none, e.g. emulated MMIO).
        mfn: u64,
        /// Xen's p2m type of the page (4 = `p2m_mmio_dm`).
        p2m_type: u32,
    },
    /// `TRC_HVM_IOMEM_READ`: Xen emulated an MMIO read at `addr`.
    MmioRead {
        /// Guest physical address.
        addr: u64,
        /// Value read (low 32 bits), unless it went straight to guest memory.
        data: Option<u32>,
    },
    /// `TRC_HVM_IOMEM_WRITE`: Xen emulated an MMIO write to `addr`.
    MmioWrite {
        /// Guest physical address.
        addr: u64,
        /// Value written (low 32 bits), unless it came straight from guest memory.
        data: Option<u32>,
    },
}

impl ExitDetail {
    /// Whether this is a local APIC end-of-interrupt write: x2APIC MSR [`X2APIC_EOI_MSR`] or an
    /// MMIO write to [`XAPIC_EOI_GPA`].
    pub fn is_eoi(&self) -> bool {
        matches!(
            *self,
            ExitDetail::MsrWrite { msr: X2APIC_EOI_MSR, .. } | ExitDetail::MmioWrite { addr: XAPIC_EOI_GPA, .. }
        )
    }
}

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

/// Exits of one domain between a phase BEGIN and END marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Phase name from the BEGIN marker (at most 20 bytes).
    pub name: String,
    /// Domain that issued the markers.
    pub domain: u16,
    /// Iterations the guest reported (END marker's value, or BEGIN's if END has 0).
    pub iterations: u64,
    /// Exit counts by exit reason name ([`svm_exit_name`]).
    pub exits: BTreeMap<String, u64>,
    /// Exit counts by raw SVM exit code.
    pub exit_codes: BTreeMap<u32, u64>,
    /// Total exits in the phase.
    pub total_exits: u64,
    /// Whether the END marker was seen (false: the trace ended, or a new BEGIN came first).
    pub complete: bool,
    /// Records Xen reported lost (on any pCPU) while the phase was open; counts may be low.
    pub lost_records: u64,
    /// TSC of the BEGIN marker. Xen 4.17 writes guest records without a TSC, so this is the TSC
    /// of the record before it on its pCPU: the VMMCALL exit that delivered the marker.
    pub begin_tsc: Option<u64>,
    /// TSC of the END marker (same rule as `begin_tsc`).
    pub end_tsc: Option<u64>,
    /// MSR writes by MSR index (`TRC_HVM_MSR_WRITE` details of the phase's exits).
    pub msr_writes: BTreeMap<u32, u64>,
    /// Emulated MMIO writes by guest physical address (`TRC_HVM_IOMEM_WRITE` details).
    pub mmio_writes: BTreeMap<u64, u64>,
    /// NPF exits by faulting guest physical address (`TRC_HVM_NPF` details).
    pub npf_gpas: BTreeMap<u64, u64>,
}

impl Phase {
    /// An open phase without exits yet, as a BEGIN marker starts it.
    pub fn new(name: String, domain: u16, iterations: u64, begin_tsc: Option<u64>) -> Self {
        Phase {
            name,
            domain,
            iterations,
            exits: BTreeMap::new(),
            exit_codes: BTreeMap::new(),
            total_exits: 0,
            complete: false,
            lost_records: 0,
            begin_tsc,
            end_tsc: None,
            msr_writes: BTreeMap::new(),
            mmio_writes: BTreeMap::new(),
            npf_gpas: BTreeMap::new(),
        }
    }

    fn add_detail(&mut self, d: &ExitDetail) {
        match *d {
            ExitDetail::MsrWrite { msr, .. } => *self.msr_writes.entry(msr).or_insert(0) += 1,
            ExitDetail::MmioWrite { addr, .. } => *self.mmio_writes.entry(addr).or_insert(0) += 1,
            ExitDetail::Npf { gpa, .. } => *self.npf_gpas.entry(gpa).or_insert(0) += 1,
            ExitDetail::MsrRead { .. } | ExitDetail::MmioRead { .. } => {}
        }
    }

    /// Writes to one MSR in this phase.
    pub fn msr_writes_of(&self, msr: u32) -> u64 {
        self.msr_writes.get(&msr).copied().unwrap_or(0)
    }

    /// All MSR writes in this phase.
    pub fn total_msr_writes(&self) -> u64 {
        self.msr_writes.values().sum()
    }

    /// MSR writes per iteration, by MSR index; empty if the phase reported 0 iterations.
    pub fn msr_writes_per_op(&self) -> BTreeMap<u32, f64> {
        if self.iterations == 0 {
            return BTreeMap::new();
        }
        let n = self.iterations as f64;
        self.msr_writes.iter().map(|(&k, &v)| (k, v as f64 / n)).collect()
    }

    /// Local APIC EOI writes, each one an exit: x2APIC EOI MSR ([`X2APIC_EOI_MSR`]) writes plus
    /// emulated MMIO writes to the xAPIC EOI register ([`XAPIC_EOI_GPA`]). Needs the HVM handler
    /// records (the default trace mask); 0 without them.
    pub fn eoi_exits(&self) -> u64 {
        self.msr_writes_of(X2APIC_EOI_MSR) + self.mmio_writes.get(&XAPIC_EOI_GPA).copied().unwrap_or(0)
    }

    /// [`Phase::eoi_exits`] per iteration; `None` if the phase reported 0 iterations.
    pub fn eoi_exits_per_op(&self) -> Option<f64> {
        (self.iterations != 0).then(|| self.eoi_exits() as f64 / self.iterations as f64)
    }

    fn add(&mut self, code: u32, delta: i64) {
        let apply = |v: &mut u64| *v = v.saturating_add_signed(delta);
        apply(self.exit_codes.entry(code).or_insert(0));
        apply(self.exits.entry(svm_exit_name(code)).or_insert(0));
        apply(&mut self.total_exits);
        if self.exit_codes.get(&code) == Some(&0) {
            self.exit_codes.remove(&code);
            self.exits.remove(&svm_exit_name(code));
        }
    }

    /// Exits of one SVM exit code in this phase.
    pub fn exits_of(&self, code: u32) -> u64 {
        self.exit_codes.get(&code).copied().unwrap_or(0)
    }

    /// Exits per iteration, by exit reason name; empty if the phase reported 0 iterations.
    pub fn exits_per_op(&self) -> BTreeMap<String, f64> {
        if self.iterations == 0 {
            return BTreeMap::new();
        }
        let n = self.iterations as f64;
        self.exits.iter().map(|(k, &v)| (k.clone(), v as f64 / n)).collect()
    }

    /// All exits per iteration; `None` if the phase reported 0 iterations.
    pub fn total_exits_per_op(&self) -> Option<f64> {
        (self.iterations != 0).then(|| self.total_exits as f64 / self.iterations as f64)
    }

    /// TSC ticks between the BEGIN and END markers, if both carry a TSC.
    pub fn tsc_ticks(&self) -> Option<u64> {
        self.end_tsc?.checked_sub(self.begin_tsc?)
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

    /// Oddities met while analysing (stray END markers, unattributed markers, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A human-readable report: exits per domain and code, then every phase with exits per op.
    pub fn summary(&self) -> String {
        use fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} records on pCPUs {:?}, {} VM exits, {} lost records",
            self.records.len(),
            self.cpus,
            self.exits.len(),
            self.lost_records
        );
        for (dom, codes) in self.exits_by_domain() {
            let total: u64 = codes.values().sum();
            let _ = writeln!(s, "domain {}: {} exits", domain_label(dom), total);
            let mut sorted: Vec<(&u32, &u64)> = codes.iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (code, n) in sorted {
                let _ = writeln!(s, "  {:#06x} {:<16} {:>10}", code, svm_exit_name(*code), n);
            }
        }
        for (dom, msrs) in self.msr_writes_by_domain() {
            let _ = writeln!(s, "domain {}: MSR writes {}", domain_label(dom), top(&msrs));
        }
        for (dom, addrs) in self.mmio_writes_by_domain() {
            let _ = writeln!(s, "domain {}: MMIO writes {}", domain_label(dom), top(&addrs));
        }
        for (dom, n) in self.eoi_exits_by_domain() {
            let _ = writeln!(s, "domain {}: EOI exits {n}", domain_label(dom));
        }
        for p in &self.phases {
            let _ = writeln!(
                s,
                "phase {:?} domain {} iterations {}{}: {} exits, {} per op",
                p.name,
                domain_label(p.domain),
                p.iterations,
                if p.complete { "" } else { " (no END marker)" },
                p.total_exits,
                p.total_exits_per_op().map_or("-".to_string(), |v| format!("{v:.4}"))
            );
            let per_op = p.exits_per_op();
            for (name, n) in &p.exits {
                let rate = per_op.get(name).map_or("-".to_string(), |v| format!("{v:.4}"));
                let _ = writeln!(s, "  {name:<16} {n:>10} {rate:>10}/op");
            }
            let per_op = |n: u64| {
                if p.iterations == 0 {
                    "-".to_string()
                } else {
                    format!("{:.4}", n as f64 / p.iterations as f64)
                }
            };
            for (msr, &n) in &p.msr_writes {
                let label = format!("wrmsr {msr:#x}");
                let _ = writeln!(s, "  {label:<16} {n:>10} {:>10}/op", per_op(n));
            }
            for (addr, &n) in &p.mmio_writes {
                let label = format!("mmio-w {addr:#x}");
                let _ = writeln!(s, "  {label:<16} {n:>10} {:>10}/op", per_op(n));
            }
            if !p.msr_writes.is_empty() || !p.mmio_writes.is_empty() {
                let n = p.eoi_exits();
                let _ = writeln!(s, "  {:<16} {n:>10} {:>10}/op", "EOI exits", per_op(n));
            }
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// The most frequent keys of a count map, as `key:count` (hex keys), for the summary.
fn top<K: Copy + Ord + fmt::LowerHex>(counts: &BTreeMap<K, u64>) -> String {
    const SHOWN: usize = 12;
    let mut v: Vec<(K, u64)> = counts.iter().map(|(&k, &n)| (k, n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<String> = v.iter().take(SHOWN).map(|(k, n)| format!("{k:#x}:{n}")).collect();
    if v.len() > SHOWN {
        out.push(format!("(+{} more)", v.len() - SHOWN));
    }
    out.join(" ")
}

fn domain_label(dom: u16) -> String {
    match dom {
        DOMID_UNKNOWN => "?".to_string(),
        DOMID_IDLE => "idle".to_string(),
        d => d.to_string(),
    }
}

/// Parses a whole `xentrace` file; any malformed or truncated part is an error.
pub fn parse(bytes: &[u8]) -> Result<Trace, TraceError> {
    let (records, err) = read_records(bytes);
    match err {
        Some(e) => Err(e),
        None => Ok(analyse(records)),
    }
}

/// Parses as much of a `xentrace` file as possible: every complete record before the first
/// error is kept and analysed. Returns the error too, if there was one (e.g. a file cut short
/// because `xentrace` was killed).
pub fn parse_lenient(bytes: &[u8]) -> (Trace, Option<TraceError>) {
    let (records, err) = read_records(bytes);
    (analyse(records), err)
}

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let b = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Splits the file into windows and records. Stops at the first error.
fn read_records(bytes: &[u8]) -> (Vec<Record>, Option<TraceError>) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let left = bytes.len() - pos;
        if left < 12 {
            let e = TraceError::Truncated { offset: pos, what: "window header", needed: 12, available: left };
            return (records, Some(e));
        }
        // In bounds (left >= 12); unwrap_or keeps this free of panics anyway.
        let word = |o: usize| read_u32(bytes, o).unwrap_or(0);
        let (header, cpu, size) = (word(pos), word(pos + 4), word(pos + 8));
        if header != CPU_CHANGE_HEADER {
            return (records, Some(TraceError::BadWindowHeader { offset: pos, header }));
        }
        let start = pos + 12;
        let size = size as usize;
        let available = bytes.len() - start;
        // A window cut short is still read up to its last complete record (for parse_lenient).
        let end = start + size.min(available);
        let mut r = start;
        while r < end {
            match read_record(bytes, r, end, cpu) {
                Ok(rec) => {
                    r += record_size(&rec);
                    records.push(rec);
                }
                Err(e) => {
                    // If the window itself is cut short, report the truncation, not the record.
                    if size > available {
                        break;
                    }
                    return (records, Some(e));
                }
            }
        }
        if size > available {
            let e = TraceError::Truncated { offset: pos, what: "window", needed: size + 12, available: left };
            return (records, Some(e));
        }
        pos = start + size;
    }
    (records, None)
}

fn record_size(rec: &Record) -> usize {
    4 + if rec.tsc.is_some() { 8 } else { 0 } + 4 * usize::from(rec.n_extra)
}

fn read_record(bytes: &[u8], offset: usize, window_end: usize, cpu: u32) -> Result<Record, TraceError> {
    let window = &bytes[..window_end];
    let overrun = |record_size| TraceError::RecordOverrunsWindow { offset, record_size, window_end };
    let header = read_u32(window, offset).ok_or_else(|| overrun(4))?;
    let n_extra = ((header >> 28) & 7) as u8;
    let has_tsc = header & 0x8000_0000 != 0;
    let size = 4 + if has_tsc { 8 } else { 0 } + 4 * usize::from(n_extra);
    if offset + size > window_end {
        return Err(overrun(size));
    }
    let mut p = offset + 4;
    let tsc = if has_tsc {
        let lo = read_u32(window, p).ok_or_else(|| overrun(size))?;
        let hi = read_u32(window, p + 4).ok_or_else(|| overrun(size))?;
        p += 8;
        Some(u64::from(hi) << 32 | u64::from(lo))
    } else {
        None
    };
    let mut extra = [0u32; MAX_EXTRA];
    for (i, slot) in extra.iter_mut().take(usize::from(n_extra)).enumerate() {
        *slot = read_u32(window, p + 4 * i).ok_or_else(|| overrun(size))?;
    }
    Ok(Record { offset, cpu, event: header & 0x0fff_ffff, tsc, n_extra, extra })
}

/// Merges the per-pCPU streams by effective TSC (ties: lower pCPU first), keeping each pCPU's
/// own order. The effective TSC of a record is its own, else the last one seen on its pCPU
/// (`None` before the first). Returns the pCPUs and (record index, effective TSC) in merged order.
fn merge_by_tsc(records: &[Record]) -> (Vec<u32>, Vec<(usize, Option<u64>)>) {
    let mut streams: BTreeMap<u32, Vec<(usize, Option<u64>)>> = BTreeMap::new();
    let mut last_tsc: BTreeMap<u32, Option<u64>> = BTreeMap::new();
    for (i, rec) in records.iter().enumerate() {
        if rec.event == TRC_TRACE_WRAP_BUFFER {
            continue;
        }
        let t = last_tsc.entry(rec.cpu).or_insert(None);
        if rec.tsc.is_some() {
            *t = rec.tsc;
        }
        let t = *t;
        streams.entry(rec.cpu).or_default().push((i, t));
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
        let items = &streams[s];
        order.push(items[k]);
        if let Some(next) = items.get(k + 1) {
            heap.push(Reverse((key(next), s, k + 1)));
        }
    }
    (cpus, order)
}

/// Decodes a phase marker's extra words: iterations (u64) and the NUL-padded name.
fn decode_marker(rec: &Record) -> (u64, String) {
    let iterations = u64::from(rec.word(1)) << 32 | u64::from(rec.word(0));
    let mut name = Vec::new();
    'words: for w in rec.extra().iter().skip(2) {
        for b in w.to_le_bytes() {
            if b == 0 {
                break 'words;
            }
            name.push(if b.is_ascii_graphic() || b == b' ' { b } else { b'?' });
        }
    }
    (iterations, String::from_utf8_lossy(&name).into_owned())
}

/// A CPUID phase marker (see [`CPUID_MARK_BEGIN`]): (is BEGIN, iterations, name).
fn cpuid_marker(rec: &Record) -> Option<(bool, u64, String)> {
    if rec.event != TRC_HVM_CPUID || rec.extra().is_empty() {
        return None;
    }
    let leaf = rec.word(0);
    let (begin, id) = match leaf {
        l if l.wrapping_sub(CPUID_MARK_BEGIN) < CPUID_MARK_NAMES.len() as u32 => (true, l - CPUID_MARK_BEGIN),
        l if l.wrapping_sub(CPUID_MARK_END) < CPUID_MARK_NAMES.len() as u32 => (false, l - CPUID_MARK_END),
        _ => return None,
    };
    let name = CPUID_MARK_NAMES.get(id as usize)?.to_string();
    Some((begin, u64::from(rec.word(1)), name))
}

/// Opens a phase of `domain`, closing (with a warning) one left open.
fn open_phase(
    trace: &mut Trace,
    open: &mut BTreeMap<u16, usize>,
    domain: u16,
    name: String,
    iterations: u64,
    tsc: Option<u64>,
) {
    if let Some(p) = open.remove(&domain) {
        trace.warnings.push(format!(
            "phase {:?} of domain {} has no END marker before the next BEGIN",
            trace.phases[p].name, domain
        ));
    }
    open.insert(domain, trace.phases.len());
    trace.phases.push(Phase::new(name, domain, iterations, tsc));
}

/// Completes phase `p` of `domain` (already taken out of the open set).
fn close_phase(trace: &mut Trace, p: usize, domain: u16, iterations: u64, name: &str, tsc: Option<u64>) {
    let phase = &mut trace.phases[p];
    if iterations != 0 {
        phase.iterations = iterations;
    }
    if !name.is_empty() && name != phase.name {
        let msg = format!("phase {:?} of domain {} ended by a marker named {:?}", phase.name, domain, name);
        trace.warnings.push(msg);
    }
    phase.complete = true;
    phase.end_tsc = tsc;
}

/// Per-pCPU analysis state.
#[derive(Clone, Copy)]
struct CpuState {
    domain: u16,
    vcpu: u16,
    /// The last exit seen on this pCPU since its last switch: (domain, code, index of the
    /// phase it was counted in).
    last_exit: Option<(u16, u32, Option<usize>)>,
}

fn analyse(records: Vec<Record>) -> Trace {
    let (cpus, order) = merge_by_tsc(&records);
    let mut trace = Trace { cpus, ..Trace::default() };

    // Before its first switch record, a pCPU runs the "prev" side of that switch.
    let mut state: BTreeMap<u32, CpuState> = BTreeMap::new();
    for &(i, _) in &order {
        let rec = &records[i];
        if rec.event == TRC_SCHED_SWITCH && !state.contains_key(&rec.cpu) {
            state.insert(rec.cpu, CpuState { domain: rec.word(0) as u16, vcpu: rec.word(1) as u16, last_exit: None });
        }
    }
    let unknown = CpuState { domain: DOMID_UNKNOWN, vcpu: 0xffff, last_exit: None };

    let mut open: BTreeMap<u16, usize> = BTreeMap::new(); // domain -> index into trace.phases
    for &(i, tsc) in &order {
        let rec = &records[i];
        let cpu = state.entry(rec.cpu).or_insert(unknown);
        if rec.event == TRC_SCHED_SWITCH {
            cpu.domain = rec.word(2) as u16;
            cpu.vcpu = rec.word(3) as u16;
            cpu.last_exit = None;
        } else if rec.event == TRC_LOST_RECORDS {
            let lost = u64::from(rec.word(0));
            trace.lost_records += lost;
            for &p in open.values() {
                trace.phases[p].lost_records += lost;
            }
        } else if rec.is_vmexit() {
            let long_mode = rec.event & TRC_64_FLAG != 0;
            let rip =
                if long_mode { u64::from(rec.word(2)) << 32 | u64::from(rec.word(1)) } else { u64::from(rec.word(1)) };
            let exit = VmExit {
                cpu: rec.cpu,
                tsc: rec.tsc,
                domain: cpu.domain,
                vcpu: cpu.vcpu,
                code: rec.word(0),
                rip,
                long_mode,
                nested: rec.event & TRC_HVM_NESTEDFLAG != 0,
            };
            let counted = open.get(&exit.domain).copied();
            if let Some(p) = counted {
                trace.phases[p].add(exit.code, 1);
            }
            cpu.last_exit = Some((exit.domain, exit.code, counted));
            trace.exits.push(exit);
        } else if let Some((begin, iterations, name)) = cpuid_marker(rec) {
            // The CPUID exit that carried the marker is the last exit on this pCPU: it
            // belongs to neither phase.
            let domain = cpu.domain;
            let carrier = cpu.last_exit;
            if begin {
                open_phase(&mut trace, &mut open, domain, name, 0, tsc);
            } else if let Some(p) = open.remove(&domain) {
                if let Some((d, SVM_EXIT_CPUID, Some(q))) = carrier {
                    if d == domain && q == p {
                        trace.phases[p].add(SVM_EXIT_CPUID, -1);
                    }
                }
                close_phase(&mut trace, p, domain, iterations, &name, tsc);
            } else {
                trace.warnings.push(format!("CPUID END marker {name:?} of domain {domain} without a BEGIN"));
            }
        } else if let Some(detail) = rec.exit_detail() {
            // Written while Xen handles the exit before it on this pCPU: same domain, same phase.
            let (exit_code, phase) = match cpu.last_exit {
                Some((_, code, phase)) => (Some(code), phase),
                None => (None, None),
            };
            if let Some(p) = phase {
                trace.phases[p].add_detail(&detail);
            }
            trace.details.push(DetailEvent {
                cpu: rec.cpu,
                tsc,
                domain: cpu.domain,
                vcpu: cpu.vcpu,
                exit_code,
                detail,
            });
        } else if let Some(ev) = rec.guest_event() {
            let domain = cpu.domain;
            if ev != GUEST_PHASE_BEGIN && ev != GUEST_PHASE_END {
                continue;
            }
            if domain == DOMID_UNKNOWN {
                trace.warnings.push(format!(
                    "phase marker at byte {} on pCPU {} has no known domain (trace without the SCHED class?)",
                    rec.offset, rec.cpu
                ));
            }
            let (iterations, name) = decode_marker(rec);
            if ev == GUEST_PHASE_BEGIN {
                open_phase(&mut trace, &mut open, domain, name, iterations, tsc);
            } else if let Some(p) = open.remove(&domain) {
                // The VMMCALL that delivered this END marker is the last exit on this pCPU.
                if let Some((d, SVM_EXIT_VMMCALL, Some(q))) = cpu.last_exit {
                    if d == domain && q == p {
                        trace.phases[p].add(SVM_EXIT_VMMCALL, -1);
                    }
                }
                close_phase(&mut trace, p, domain, iterations, &name, tsc);
            } else {
                trace
                    .warnings
                    .push(format!("END marker {:?} of domain {} at byte {} without a BEGIN", name, domain, rec.offset));
            }
        }
    }
    for &p in open.values() {
        let ph = &trace.phases[p];
        trace.warnings.push(format!("phase {:?} of domain {} has no END marker", ph.name, ph.domain));
    }
    trace.records = records;
    trace
}

/// Name of an AMD SVM exit code (`EXITCODE` in the VMCB), e.g. `0x72` → `"CPUID"`.
/// Unknown codes are returned as hex (`"0x1234"`).
pub fn svm_exit_name(code: u32) -> String {
    const EXCEPTIONS: [&str; 32] = [
        "DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "09", "TS", "NP", "SS", "GP", "PF", "15", "MF", "AC",
        "MC", "XM", "VE", "CP", "22", "23", "24", "25", "26", "27", "HV", "VC", "SX", "31",
    ];
    let fixed = match code {
        0x60 => "INTR",
        0x61 => "NMI",
        0x62 => "SMI",
        0x63 => "INIT",
        0x64 => "VINTR",
        0x65 => "CR0_SEL_WRITE",
        0x66 => "IDTR_READ",
        0x67 => "GDTR_READ",
        0x68 => "LDTR_READ",
        0x69 => "TR_READ",
        0x6a => "IDTR_WRITE",
        0x6b => "GDTR_WRITE",
        0x6c => "LDTR_WRITE",
        0x6d => "TR_WRITE",
        0x6e => "RDTSC",
        0x6f => "RDPMC",
        0x70 => "PUSHF",
        0x71 => "POPF",
        0x72 => "CPUID",
        0x73 => "RSM",
        0x74 => "IRET",
        0x75 => "SWINT",
        0x76 => "INVD",
        0x77 => "PAUSE",
        0x78 => "HLT",
        0x79 => "INVLPG",
        0x7a => "INVLPGA",
        0x7b => "IOIO",
        0x7c => "MSR",
        0x7d => "TASK_SWITCH",
        0x7e => "FERR_FREEZE",
        0x7f => "SHUTDOWN",
        0x80 => "VMRUN",
        0x81 => "VMMCALL",
        0x82 => "VMLOAD",
        0x83 => "VMSAVE",
        0x84 => "STGI",
        0x85 => "CLGI",
        0x86 => "SKINIT",
        0x87 => "RDTSCP",
        0x88 => "ICEBP",
        0x89 => "WBINVD",
        0x8a => "MONITOR",
        0x8b => "MWAIT",
        0x8c => "MWAIT_CONDITIONAL",
        0x8d => "XSETBV",
        0x8e => "RDPRU",
        0x8f => "EFER_WRITE_TRAP",
        0xa0 => "INVLPGB",
        0xa1 => "INVLPGB_ILLEGAL",
        0xa2 => "INVPCID",
        0xa3 => "MCOMMIT",
        0xa4 => "TLBSYNC",
        0x400 => "NPF",
        0x401 => "AVIC_INCOMPLETE_IPI",
        0x402 => "AVIC_NOACCEL",
        0x403 => "VMGEXIT",
        0xffff_ffff => "INVALID",
        0xffff_fffe => "BUSY",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    match code {
        0x00..=0x0f => format!("CR{}_READ", code),
        0x10..=0x1f => format!("CR{}_WRITE", code - 0x10),
        0x20..=0x2f => format!("DR{}_READ", code - 0x20),
        0x30..=0x3f => format!("DR{}_WRITE", code - 0x30),
        0x40..=0x5f => format!("EXCP_{}", EXCEPTIONS[(code - 0x40) as usize]),
        0x90..=0x9f => format!("CR{}_WRITE_TRAP", code - 0x90),
        _ => format!("{code:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds xentrace files: windows of records.
    #[derive(Default)]
    struct Builder {
        bytes: Vec<u8>,
    }

    fn rec(event: u32, tsc: Option<u64>, extra: &[u32]) -> Vec<u8> {
        assert!(extra.len() <= MAX_EXTRA);
        let mut h = event | ((extra.len() as u32) << 28);
        if tsc.is_some() {
            h |= 0x8000_0000;
        }
        let mut v = h.to_le_bytes().to_vec();
        if let Some(t) = tsc {
            v.extend_from_slice(&(t as u32).to_le_bytes());
            v.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
        }
        for w in extra {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v
    }

    fn switch(tsc: u64, prev: (u32, u32), next: (u32, u32)) -> Vec<u8> {
        rec(TRC_SCHED_SWITCH, Some(tsc), &[prev.0, prev.1, next.0, next.1])
    }

    fn exit(tsc: u64, code: u32) -> Vec<u8> {
        rec(TRC_HVM_VMEXIT, Some(tsc), &[code, 0x1000])
    }

    fn entry(tsc: u64) -> Vec<u8> {
        rec(TRC_HVM_VMENTRY, Some(tsc), &[])
    }

    fn marker(tsc: Option<u64>, ev: u32, iterations: u64, name: &str) -> Vec<u8> {
        let mut b = [0u8; 28];
        b[..4].copy_from_slice(&(iterations as u32).to_le_bytes());
        b[4..8].copy_from_slice(&((iterations >> 32) as u32).to_le_bytes());
        b[8..8 + name.len()].copy_from_slice(name.as_bytes());
        let words: Vec<u32> = b.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        rec(TRC_GUEST | ev, tsc, &words)
    }

    impl Builder {
        fn window(mut self, cpu: u32, recs: &[Vec<u8>]) -> Self {
            let body: Vec<u8> = recs.concat();
            self.bytes.extend_from_slice(&CPU_CHANGE_HEADER.to_le_bytes());
            self.bytes.extend_from_slice(&cpu.to_le_bytes());
            self.bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
            self.bytes.extend_from_slice(&body);
            self
        }
    }

    /// Marker hypercall: VMMCALL exit, the marker record, VM entry.
    fn hypercall_marker(t: u64, ev: u32, iterations: u64, name: &str) -> Vec<Vec<u8>> {
        vec![exit(t, SVM_EXIT_VMMCALL), marker(Some(t + 1), ev, iterations, name), entry(t + 2)]
    }

    /// One pCPU: dom0 -> dom 3, a 3-iteration CPUID phase, then an INTR outside it.
    fn simple_trace() -> Vec<u8> {
        let mut recs = vec![switch(10, (0, 0), (3, 0)), exit(20, 0x7b), entry(21)];
        recs.extend(hypercall_marker(30, GUEST_PHASE_BEGIN, 3, "cpuid"));
        for k in 0..3 {
            recs.push(exit(40 + 10 * k, 0x72));
            recs.push(entry(41 + 10 * k));
        }
        recs.push(exit(70, 0x60));
        recs.push(entry(71));
        recs.extend(hypercall_marker(80, GUEST_PHASE_END, 3, "cpuid"));
        recs.push(exit(90, 0x60));
        recs.push(switch(100, (3, 0), (DOMID_IDLE as u32, 0)));
        Builder::default().window(0, &recs).bytes
    }

    #[test]
    fn empty_file_is_an_empty_trace() {
        let t = parse(&[]).unwrap();
        assert!(t.records().is_empty());
        assert!(t.exits().is_empty());
        assert!(t.all_phases().is_empty());
    }

    #[test]
    fn counts_exits_per_domain_and_phase() {
        let t = parse(&simple_trace()).unwrap();
        let by_dom = t.exits_by_domain();
        assert_eq!(by_dom.len(), 1);
        let d3 = &by_dom[&3];
        assert_eq!(d3[&0x72], 3);
        assert_eq!(d3[&0x7b], 1);
        assert_eq!(d3[&SVM_EXIT_VMMCALL], 2);
        assert_eq!(d3[&0x60], 2);
        assert_eq!(t.exit_totals()[&3], 8);

        let phases = t.phases(3);
        assert_eq!(phases.len(), 1);
        let p = phases[0];
        assert_eq!(p.name, "cpuid");
        assert_eq!(p.iterations, 3);
        assert!(p.complete);
        // 3 CPUIDs and 1 interrupt; neither marker's own VMMCALL counts.
        assert_eq!(p.exits_of(0x72), 3);
        assert_eq!(p.exits_of(0x60), 1);
        assert_eq!(p.exits_of(SVM_EXIT_VMMCALL), 0);
        assert!(!p.exits.contains_key("VMMCALL"));
        assert_eq!(p.total_exits, 4);
        assert_eq!(p.exits_per_op()["CPUID"], 1.0);
        assert!((p.total_exits_per_op().unwrap() - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(p.tsc_ticks(), Some(81 - 31));
        assert!(t.phases(0).is_empty());
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
        assert!(t.summary().contains("phase \"cpuid\" domain 3 iterations 3"));
    }

    #[test]
    fn exits_before_the_first_switch_belong_to_its_prev_domain() {
        let bytes = Builder::default().window(1, &[exit(5, 0x78), switch(10, (7, 1), (0, 0)), exit(20, 0x72)]).bytes;
        let t = parse(&bytes).unwrap();
        assert_eq!(t.exits()[0].domain, 7);
        assert_eq!(t.exits()[0].vcpu, 1);
        assert_eq!(t.exits()[1].domain, 0);
    }

    #[test]
    fn unattributed_exits_and_markers_use_domid_unknown() {
        let mut recs = vec![marker(Some(1), GUEST_PHASE_BEGIN, 1, "x"), exit(2, 0x72)];
        recs.push(marker(Some(3), GUEST_PHASE_END, 1, "x"));
        let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
        assert_eq!(t.exits()[0].domain, DOMID_UNKNOWN);
        assert_eq!(t.phases(DOMID_UNKNOWN)[0].exits_of(0x72), 1);
        assert!(!t.warnings().is_empty());
    }

    #[test]
    fn vcpu_migrating_between_pcpus_is_merged_by_tsc() {
        // Dom 5 begins a phase on pCPU 0, moves to pCPU 1, ends there. xentrace wrote pCPU 1's
        // window first, so file order alone would see the END before the BEGIN.
        let cpu0 = [
            switch(10, (0, 0), (5, 0)),
            exit(20, SVM_EXIT_VMMCALL),
            marker(Some(21), GUEST_PHASE_BEGIN, 2, "mig"),
            exit(30, 0x72),
            switch(40, (5, 0), (DOMID_IDLE as u32, 0)),
            exit(45, 0x72), // idle vCPUs don't exit; pretend it's unknown noise
        ];
        let cpu1 = [
            switch(50, (DOMID_IDLE as u32, 1), (5, 0)),
            exit(60, 0x72),
            exit(70, SVM_EXIT_VMMCALL),
            marker(None, GUEST_PHASE_END, 2, "mig"), // no TSC: takes 70
        ];
        let bytes = Builder::default().window(1, &cpu1).window(0, &cpu0).bytes;
        let t = parse(&bytes).unwrap();
        assert_eq!(t.cpus(), &[0, 1]);
        let p = t.phases(5)[0];
        assert!(p.complete);
        assert_eq!(p.exits_of(0x72), 2);
        assert_eq!(p.total_exits, 2);
        assert_eq!(t.exits_by_domain()[&DOMID_IDLE][&0x72], 1);
        let tscs: Vec<u64> = t.exits().iter().map(|e| e.tsc.unwrap()).collect();
        assert!(tscs.windows(2).all(|w| w[0] <= w[1]), "{tscs:?}");
    }

    #[test]
    fn decodes_64bit_and_nested_exits() {
        let recs = [
            switch(1, (0, 0), (2, 0)),
            rec(TRC_HVM_VMEXIT64, Some(2), &[0x400, 0x8100_0000, 0xffff_ffff]),
            rec(TRC_HVM_VMEXIT | TRC_HVM_NESTEDFLAG, Some(3), &[0x7c, 0x1234]),
            rec(TRC_HVM_VMENTRY, Some(4), &[]),
        ];
        let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
        assert_eq!(t.exits().len(), 2);
        let e = t.exits()[0];
        assert!(e.long_mode && !e.nested);
        assert_eq!(e.rip, 0xffff_ffff_8100_0000);
        assert_eq!(e.code, 0x400);
        assert!(t.exits()[1].nested);
        assert_eq!(t.exits()[1].rip, 0x1234);
    }

    fn msr_write(msr: u32, value: u64) -> Vec<u8> {
        rec(TRC_HVM_MSR_WRITE, None, &[msr, value as u32, (value >> 32) as u32])
    }

    fn npf(gpa: u64) -> Vec<u8> {
        let (lo, hi) = (gpa as u32, (gpa >> 32) as u32);
        rec(TRC_HVM_NPF, None, &[lo, hi, !0, !0, 0, 4])
    }

    #[test]
    fn exit_details_are_decoded_and_counted_per_phase() {
        let mut recs = vec![switch(10, (0, 0), (3, 0))];
        // Before the phase: an EOI that must not count for it.
        recs.extend([exit(15, 0x7c), msr_write(X2APIC_EOI_MSR, 0)]);
        recs.extend(hypercall_marker(20, GUEST_PHASE_BEGIN, 2, "irq"));
        for k in 0..2u64 {
            let t = 30 + 10 * k;
            recs.extend([exit(t, 0x7c), msr_write(0x83f, 0x31), entry(t + 1)]);
            recs.extend([exit(t + 2, 0x7c), msr_write(X2APIC_EOI_MSR, 0), entry(t + 3)]);
        }
        // An xAPIC EOI: NPF exit, the emulated write, then the NPF record.
        recs.extend([exit(60, 0x400), rec(TRC_HVM_IOMEM_WRITE, None, &[0xfee0_00b0, 0]), npf(XAPIC_EOI_GPA)]);
        // A 64-bit MMIO write, a string write without data, a read, an MSR read.
        recs.extend([
            exit(62, 0x400),
            rec(TRC_HVM_IOMEM_WRITE | TRC_64_FLAG, None, &[0x10, 0x1, 7]),
            rec(TRC_HVM_IOMEM_WRITE, None, &[0xfee0_0300]),
            rec(TRC_HVM_IOMEM_READ, None, &[0xfee0_0020, 5]),
            exit(64, 0x7c),
            rec(TRC_HVM_MSR_READ, None, &[0x1b, 0xfee0_0900, 0]),
        ]);
        // Records too short to say anything are not details.
        recs.extend([
            exit(66, 0x7c),
            rec(TRC_HVM_MSR_WRITE, None, &[]),
            rec(TRC_HVM_NPF, None, &[0xfee0_00b0]),
            rec(TRC_HVM_IOMEM_WRITE | TRC_64_FLAG, None, &[0xfee0_00b0]),
        ]);
        recs.extend(hypercall_marker(70, GUEST_PHASE_END, 2, "irq"));
        recs.extend([exit(80, 0x7c), msr_write(X2APIC_EOI_MSR, 0)]);
        // pCPU 1: a detail with no exit before it, then one after a switch.
        let cpu1 = [
            switch(5, (DOMID_IDLE as u32, 1), (3, 1)),
            msr_write(0x80b, 0),
            exit(50, 0x7c),
            switch(51, (3, 1), (4, 0)),
            msr_write(0x80b, 0),
        ];
        let bytes = Builder::default().window(0, &recs).window(1, &cpu1).bytes;
        let t = parse(&bytes).unwrap();
        let p = t.phases(3)[0];
        assert!(p.complete);
        assert_eq!(p.msr_writes, BTreeMap::from([(0x80b, 2), (0x83f, 2)]));
        assert_eq!(p.msr_writes_of(0x83f), 2);
        assert_eq!(p.total_msr_writes(), 4);
        assert_eq!(p.msr_writes_per_op()[&0x80b], 1.0);
        assert_eq!(p.mmio_writes, BTreeMap::from([(XAPIC_EOI_GPA, 1), (0xfee0_0300, 1), (0x1_0000_0010, 1)]));
        assert_eq!(p.npf_gpas, BTreeMap::from([(XAPIC_EOI_GPA, 1)]));
        assert_eq!(p.eoi_exits(), 3);
        assert_eq!(p.eoi_exits_per_op(), Some(1.5));
        assert_eq!(p.exits_of(0x7c), 7, "pCPU 1 runs vCPU 1 of the same domain");
        assert_eq!(p.exits_of(0x400), 2);
        // The whole trace: dom 3 has 2 more EOIs outside the phase (pCPU 0) plus 1 on pCPU 1;
        // the detail after pCPU 1's switch belongs to dom 4, with no exit of its own.
        assert_eq!(t.eoi_exits_by_domain(), BTreeMap::from([(3, 6), (4, 1)]));
        assert_eq!(t.msr_writes_by_domain()[&3][&0x80b], 5);
        assert_eq!(t.mmio_writes_by_domain()[&3][&XAPIC_EOI_GPA], 1);
        let d = t.details();
        assert_eq!(d.len(), 14);
        let first_cpu1 = d.iter().find(|d| d.cpu == 1).unwrap();
        assert_eq!((first_cpu1.domain, first_cpu1.vcpu), (3, 1));
        assert_eq!(first_cpu1.exit_code, None);
        let last = d.iter().rev().find(|d| d.cpu == 1).unwrap();
        assert_eq!((last.domain, last.exit_code), (4, None));
        // Ordered by (effective) TSC: pCPU 1's first detail (TSC 5) comes first.
        assert_eq!((d[0].cpu, d[0].tsc), (1, Some(5)));
        assert_eq!((d[1].cpu, d[1].tsc, d[1].exit_code), (0, Some(15), Some(0x7c)));
        assert!(d.iter().any(|d| d.detail == ExitDetail::MmioWrite { addr: 0xfee0_0300, data: None }));
        assert!(d.iter().any(|d| d.detail == ExitDetail::MsrRead { msr: 0x1b, value: 0xfee0_0900 }));
        assert!(d.iter().any(|d| d.detail == ExitDetail::MmioRead { addr: 0xfee0_0020, data: Some(5) }));
        let s = t.summary();
        assert!(s.contains("EOI exits"), "{s}");
        assert!(s.contains("wrmsr 0x80b"), "{s}");
    }

    #[test]
    fn cpuid_markers_open_and_close_phases() {
        let cpuid_mark =
            |t: u64, leaf: u32, sub: u32| vec![exit(t, 0x72), rec(TRC_HVM_CPUID, None, &[leaf, sub, 0, 0, 0, 0])];
        let mut recs = vec![switch(1, (0, 0), (5, 0))];
        recs.extend(cpuid_mark(10, CPUID_MARK_BEGIN + 2, 0));
        recs.extend([exit(20, 0x81), exit(30, 0x78), exit(40, 0x81)]);
        recs.extend(cpuid_mark(50, CPUID_MARK_END + 2, 4));
        recs.extend(cpuid_mark(60, 0x4000_0000, 0)); // an ordinary CPUID is no marker
        let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
        let ph = t.phases(5);
        assert_eq!(ph.len(), 1);
        let p = ph[0];
        assert_eq!((p.name.as_str(), p.iterations, p.complete), ("tcp_stream", 4, true));
        // Two hypercalls and a HLT; neither marker's own CPUID exit.
        assert_eq!(p.total_exits, 3);
        assert_eq!(p.exits_of(0x72), 0);
        assert_eq!(p.total_exits_per_op(), Some(0.75));
    }

    #[test]
    fn lost_records_and_unterminated_phases_are_flagged() {
        let recs = [
            switch(1, (0, 0), (4, 0)),
            marker(Some(2), GUEST_PHASE_BEGIN, 10, "a"),
            rec(TRC_LOST_RECORDS, Some(3), &[17, 0, 0, 0]),
            exit(4, 0x72),
            marker(Some(5), GUEST_PHASE_BEGIN, 10, "b"),
            marker(Some(6), GUEST_PHASE_END, 0, "zzz"),
            marker(Some(7), GUEST_PHASE_END, 0, "c"),
            marker(Some(8), GUEST_PHASE_BEGIN, 1, "d"),
        ];
        let t = parse(&Builder::default().window(0, &recs).bytes).unwrap();
        assert_eq!(t.lost_records(), 17);
        let ph = t.phases(4);
        assert_eq!(ph.len(), 3);
        assert_eq!((ph[0].name.as_str(), ph[0].complete, ph[0].lost_records), ("a", false, 17));
        assert_eq!(ph[0].exits_of(0x72), 1);
        assert_eq!((ph[1].name.as_str(), ph[1].complete, ph[1].iterations), ("b", true, 10));
        assert!(!ph[2].complete);
        // new BEGIN before END, name mismatch, stray END, missing END at the end of the trace
        assert_eq!(t.warnings().len(), 4, "{:?}", t.warnings());
    }

    #[test]
    fn long_and_odd_phase_names_are_sanitised() {
        let mut m = marker(Some(1), GUEST_PHASE_BEGIN, 1, "abcdefghijklmnopqrst");
        let last = m.len() - 1;
        m[last - 3] = 0xff; // name byte 16 ('q')
        let t = parse(&Builder::default().window(0, &[switch(0, (0, 0), (1, 0)), m]).bytes).unwrap();
        assert_eq!(t.phases(1)[0].name, "abcdefghijklmnop?rst");
        // A marker with fewer extra words still parses.
        let short = rec(TRC_GUEST | GUEST_PHASE_BEGIN, Some(1), &[5]);
        let t = parse(&Builder::default().window(0, &[short]).bytes).unwrap();
        assert_eq!((t.all_phases()[0].iterations, t.all_phases()[0].name.as_str()), (5, ""));
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        let bytes = simple_trace();
        for len in 1..bytes.len() {
            let cut = &bytes[..len];
            let err = parse(cut).unwrap_err();
            assert!(matches!(err, TraceError::Truncated { .. }), "len {len}: {err}");
            let (partial, e) = parse_lenient(cut);
            assert_eq!(e, Some(err));
            assert!(partial.records().len() <= 19);
        }
        // parse_lenient keeps the complete records of a cut window.
        let (partial, _) = parse_lenient(&bytes[..bytes.len() - 3]);
        assert_eq!(partial.records().len(), 18);
        assert_eq!(partial.exits_by_domain()[&3][&0x72], 3);
    }

    #[test]
    fn bogus_sizes_and_headers_are_errors() {
        // Window header that is not TRC_TRACE_CPU_CHANGE.
        let mut b = simple_trace();
        b[0] ^= 1;
        assert!(matches!(parse(&b), Err(TraceError::BadWindowHeader { offset: 0, .. })));
        // Window size larger than the file.
        let mut b = simple_trace();
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse(&b), Err(TraceError::Truncated { what: "window", .. })));
        // Window size that cuts a record in half, followed by more data.
        let mut b = Builder::default().window(0, &[exit(1, 0x72), exit(2, 0x72)]).bytes;
        b[8..12].copy_from_slice(&30u32.to_le_bytes());
        assert!(matches!(parse(&b), Err(TraceError::RecordOverrunsWindow { offset: 32, .. })));
        // A record claiming 7 extra words + TSC at the end of its window.
        let mut b = Builder::default().window(0, &[rec(0x1234, None, &[1])]).bytes;
        b[12..16].copy_from_slice(&0xf000_1234u32.to_le_bytes());
        let e = parse(&b).unwrap_err();
        assert!(matches!(e, TraceError::RecordOverrunsWindow { record_size: 40, .. }));
        assert!(e.to_string().contains("overruns"));
        // Huge pCPU numbers are just numbers.
        let b = Builder::default().window(u32::MAX, &[exit(1, 0x72)]).bytes;
        assert_eq!(parse(&b).unwrap().cpus(), &[u32::MAX]);
    }

    #[test]
    fn random_garbage_never_panics() {
        let base = simple_trace();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let mut b = base.clone();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            let len = (next() as usize) % (b.len() + 1);
            let _ = parse(&b[..len]);
            let _ = parse_lenient(&b);
            let junk: Vec<u8> = (0..(next() % 200)).map(|_| next() as u8).collect();
            let _ = parse_lenient(&junk);
        }
    }

    // ---- Real traces captured on the Xen test host (tests/data/xentrace/README.md) -----------

    const PVH_1000: &[u8] = include_bytes!("../data/xentrace/pvh-1000.trace");
    const HVM_1000: &[u8] = include_bytes!("../data/xentrace/hvm-1000.trace");
    const PVH_100_ALL: &[u8] = include_bytes!("../data/xentrace/pvh-100-allkinds.trace");

    /// Checks the three xtguest phases: one CPUID resp. one VMMCALL exit per iteration, nothing
    /// else but a few timer interrupts, and an empty loop without exits of its own.
    fn check_xtguest_phases(t: &Trace, domid: u16, loops: u64) {
        assert_eq!(t.phase_domains(), vec![domid]);
        let phases = t.phases(domid);
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["cpuid", "xen_version", "empty"]);
        for p in &phases {
            assert!(p.complete, "{}", p.name);
            assert_eq!(p.iterations, loops);
            assert_eq!(p.lost_records, 0);
            assert!(p.tsc_ticks().unwrap() > 0);
            let other: u64 = p.exit_codes.iter().filter(|(c, _)| **c != 0x60).map(|(_, n)| n).sum();
            let main = match p.name.as_str() {
                "cpuid" => 0x72,
                "xen_version" => SVM_EXIT_VMMCALL,
                _ => 0,
            };
            if main != 0 {
                assert_eq!(p.exits_of(main), loops, "{}", p.name);
                assert_eq!(p.exits_per_op()[&svm_exit_name(main)], 1.0);
                assert_eq!(other, loops, "only INTR besides the main exit: {:?}", p.exits);
                // Timer interrupts: a few per thousand iterations at most.
                assert!(p.total_exits_per_op().unwrap() < 1.05, "{:?}", p.exits);
            } else {
                assert_eq!(other, 0, "{:?}", p.exits);
            }
        }
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
        assert_eq!(t.lost_records(), 0);
    }

    #[test]
    fn real_pvh_trace() {
        // Whole run of a type="pvh" xtguest (domid 1), loops=1000; only switch/exit/guest records.
        let t = parse(PVH_1000).unwrap();
        check_xtguest_phases(&t, 1, 1000);
        let d1 = &t.exits_by_domain()[&1];
        // 1000 in the phase + 2 to find the Xen leaves; 1000 + 6 markers + the shutdown call.
        assert_eq!(d1[&0x72], 1002);
        assert_eq!(d1[&SVM_EXIT_VMMCALL], 1007);
        assert!(d1[&0x7b] > 300, "IOIO for the 0xe9 console output");
        assert_eq!(t.exits_by_domain().keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(t.exits().iter().all(|e| !e.long_mode && !e.nested && e.rip >= 0x40_0000));
    }

    #[test]
    fn real_hvm_trace() {
        // type="hvm" kernel= xtguest (domid 2), loops=1000, cut to start at the first marker.
        let t = parse(HVM_1000).unwrap();
        check_xtguest_phases(&t, 2, 1000);
        assert_eq!(t.exits_by_domain()[&2][&0x72], 1000);
    }

    #[test]
    fn real_trace_with_all_record_kinds() {
        // Full xentrace mask (HVM handlers, credit2, runstate records...), loops=100.
        let t = parse(PVH_100_ALL).unwrap();
        check_xtguest_phases(&t, 1, 100);
        let kinds: std::collections::BTreeSet<u32> = t.records().iter().map(|r| r.event).collect();
        assert!(kinds.contains(&TRC_HVM_VMENTRY) && kinds.contains(&0x8200e), "{kinds:x?}");
        assert!(kinds.len() > 15, "{kinds:x?}");
        // TRC_HVM_CPUID (0x8200e) records the leaf: all phase CPUIDs ask for leaf 0.
        let leaf0 = t.records().iter().filter(|r| r.event == 0x8200e && r.extra()[0] == 0).count();
        assert_eq!(leaf0, 100);
        let (partial, err) = parse_lenient(&PVH_100_ALL[..PVH_100_ALL.len() / 2]);
        assert!(matches!(err, Some(TraceError::Truncated { .. })));
        assert!(!partial.records().is_empty());
    }

    const PVH_IRQ_X2APIC: &[u8] = include_bytes!("../data/xentrace/pvh-irq500-x2apic.trace");
    const HVM_IRQ_X2APIC: &[u8] = include_bytes!("../data/xentrace/hvm-irq500-x2apic.trace");
    const PVH_IRQ_XAPIC: &[u8] = include_bytes!("../data/xentrace/pvh-irq500-xapic.trace");

    /// The hykernel's `interrupt` phase (cut to 500 self-IPIs): each op is one self-IPI send
    /// and one EOI, each an exit; nothing else but a few host interrupts.
    fn check_interrupt_phase(t: &Trace, domid: u16) -> &Phase {
        assert_eq!(t.phase_domains(), vec![domid]);
        let phases = t.phases(domid);
        assert_eq!(phases.len(), 1);
        let p = phases[0];
        assert_eq!(p.name, "interrupt");
        assert!(p.complete);
        assert_eq!(p.iterations, 500);
        assert_eq!(p.lost_records, 0);
        assert_eq!(p.eoi_exits(), 500);
        assert_eq!(p.eoi_exits_per_op(), Some(1.0));
        let other: u64 =
            p.exit_codes.iter().filter(|(c, _)| **c != 0x7c && **c != 0x400 && **c != 0x60).map(|(_, n)| n).sum();
        assert_eq!(other, 0, "{:?}", p.exits);
        assert!(p.exits_of(0x60) < 25, "{:?}", p.exits);
        assert!(t.warnings().is_empty(), "{:?}", t.warnings());
        p
    }

    fn check_x2apic_interrupt_phase(t: &Trace, domid: u16) {
        let p = check_interrupt_phase(t, domid);
        // SELF_IPI (0x83f) + EOI (0x80b) MSR writes, one MSR exit each.
        assert_eq!(p.msr_writes, BTreeMap::from([(0x80b, 500), (0x83f, 500)]));
        assert_eq!(p.total_msr_writes() as f64 / p.iterations as f64, 2.0);
        assert_eq!(p.msr_writes_per_op()[&X2APIC_EOI_MSR], 1.0);
        assert_eq!(p.exits_of(0x7c), 1000);
        assert!(p.mmio_writes.is_empty() && p.npf_gpas.is_empty());
        assert_eq!(t.eoi_exits_by_domain()[&domid], 500);
        // Every MSR write follows an MSR exit of the same domain.
        assert!(t.details().iter().all(|d| d.exit_code == Some(0x7c) && d.domain == domid));
    }

    #[test]
    fn real_pvh_interrupt_phase_x2apic() {
        // type="pvh" hykernel (domid 1), bench=interrupt, x2APIC, full trace mask.
        check_x2apic_interrupt_phase(&parse(PVH_IRQ_X2APIC).unwrap(), 1);
    }

    #[test]
    fn real_hvm_interrupt_phase_x2apic() {
        // type="hvm" hykernel (domid 2), bench=interrupt, x2APIC, full trace mask.
        check_x2apic_interrupt_phase(&parse(HVM_IRQ_X2APIC).unwrap(), 2);
    }

    #[test]
    fn real_pvh_interrupt_phase_xapic() {
        // type="pvh" hykernel (domid 3), bench=interrupt apic=xapic: the APIC page is emulated
        // MMIO, so each op is 3 NPF exits: ICR high, ICR low (sends the IPI), EOI.
        let t = parse(PVH_IRQ_XAPIC).unwrap();
        let p = check_interrupt_phase(&t, 3);
        let apic = |off: u64| 0xfee0_0000 + off;
        let each = BTreeMap::from([(apic(0xb0), 500), (apic(0x300), 500), (apic(0x310), 500)]);
        assert_eq!(p.mmio_writes, each);
        assert_eq!(p.npf_gpas, each);
        assert_eq!(p.exits_of(0x400), 1500);
        assert!(p.msr_writes.is_empty());
        assert_eq!(t.mmio_writes_by_domain()[&3][&XAPIC_EOI_GPA], 500);
        // Self-IPI vector 0x31 (ICR low = fixed, self shorthand), EOI writes 0.
        assert!(t
            .details()
            .iter()
            .any(|d| d.detail == ExitDetail::MmioWrite { addr: apic(0x300), data: Some(0x40031) }));
        assert!(t.details().iter().all(|d| d.exit_code == Some(0x400)));
    }

    #[test]
    fn exit_names() {
        assert_eq!(svm_exit_name(0x72), "CPUID");
        assert_eq!(svm_exit_name(0x7b), "IOIO");
        assert_eq!(svm_exit_name(0x7c), "MSR");
        assert_eq!(svm_exit_name(0x400), "NPF");
        assert_eq!(svm_exit_name(0x81), "VMMCALL");
        assert_eq!(svm_exit_name(0x78), "HLT");
        assert_eq!(svm_exit_name(0x60), "INTR");
        assert_eq!(svm_exit_name(0x64), "VINTR");
        assert_eq!(svm_exit_name(0x00), "CR0_READ");
        assert_eq!(svm_exit_name(0x13), "CR3_WRITE");
        assert_eq!(svm_exit_name(0x14), "CR4_WRITE");
        assert_eq!(svm_exit_name(0x27), "DR7_READ");
        assert_eq!(svm_exit_name(0x4e), "EXCP_PF");
        assert_eq!(svm_exit_name(0x8d), "XSETBV");
        assert_eq!(svm_exit_name(0x98), "CR8_WRITE_TRAP");
        assert_eq!(svm_exit_name(0xffff_ffff), "INVALID");
        assert_eq!(svm_exit_name(0x1234), "0x1234");
    }
}
