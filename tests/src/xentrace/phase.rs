//! [`Phase`]: the exits of one domain between a BEGIN and an END marker, and its per-op rates.
//!
//! `analyse.rs` opens, fills and closes phases while it walks the merged records; this module
//! only holds the counts and derives numbers from them. `report.rs` prints them.

use super::decode::{ExitDetail, X2APIC_EOI_MSR, XAPIC_EOI_GPA};
use super::svm::svm_exit_name;
use std::collections::BTreeMap;

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
    /// Whether a lost interval (see [`super::LostInterval`]) on any pCPU overlaps the phase's
    /// window from `begin_tsc` to `end_tsc` (to the end of the trace if it has no END), even if
    /// Xen reported the loss after the phase ended. See [`Phase::overlaps_lost`].
    pub lost_overlap: bool,
    /// TSC of the BEGIN marker. Xen 4.17 writes guest records without a TSC, so this is the TSC
    /// of the record before it on its pCPU: the VMMCALL exit that delivered the marker.
    pub begin_tsc: Option<u64>,
    /// TSC of the END marker (same rule as `begin_tsc`).
    pub end_tsc: Option<u64>,
    /// MSR writes by MSR index (`TRC_HVM_MSR_WRITE` details of the phase's exits).
    pub msr_writes: BTreeMap<u32, u64>,
    /// A PV guest's hypercalls by number (`TRC_PV_HYPERCALL_V2`, with the PV class in the
    /// trace mask), without the `hvm_op` that carries the phase markers: a PV guest takes
    /// no VM exits, so these are what its operations cost Xen.
    pub hypercalls: BTreeMap<u32, u64>,
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
            lost_overlap: false,
            begin_tsc,
            end_tsc: None,
            msr_writes: BTreeMap::new(),
            hypercalls: BTreeMap::new(),
            mmio_writes: BTreeMap::new(),
            npf_gpas: BTreeMap::new(),
        }
    }

    /// Counts an exit detail of one of the phase's exits.
    pub(crate) fn add_detail(&mut self, d: &ExitDetail) {
        match *d {
            ExitDetail::MsrWrite { msr, .. } => *self.msr_writes.entry(msr).or_insert(0) += 1,
            ExitDetail::MmioWrite { addr, .. } => *self.mmio_writes.entry(addr).or_insert(0) += 1,
            ExitDetail::Npf { gpa, .. } => *self.npf_gpas.entry(gpa).or_insert(0) += 1,
            ExitDetail::MsrRead { .. } | ExitDetail::MmioRead { .. } => {}
        }
    }

    /// All hypercalls of a PV guest in this phase.
    pub fn total_hypercalls(&self) -> u64 {
        self.hypercalls.values().sum()
    }

    /// [`Phase::total_hypercalls`] per iteration; `None` if the phase reported 0 iterations.
    pub fn hypercalls_per_op(&self) -> Option<f64> {
        (self.iterations != 0).then(|| self.total_hypercalls() as f64 / self.iterations as f64)
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

    /// Adds `delta` exits of `code` (-1: takes back a marker's own exit).
    pub(crate) fn add(&mut self, code: u32, delta: i64) {
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

    /// Whether records may be missing from this phase's counts: Xen reported records lost while
    /// it was open, or a lost interval overlaps its window ([`Phase::lost_overlap`]).
    pub fn overlaps_lost(&self) -> bool {
        self.lost_overlap || self.lost_records != 0
    }

    /// TSC ticks between the BEGIN and END markers, if both carry a TSC.
    pub fn tsc_ticks(&self) -> Option<u64> {
        self.end_tsc?.checked_sub(self.begin_tsc?)
    }
}
