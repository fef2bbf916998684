//! The accounting pass: from records to a [`Trace`] of attributed exits, details and phases.
//!
//! It walks the records in the order `merge.rs` gives them and keeps, per pCPU, the vCPU that
//! `TRC_SCHED_SWITCH` last put there (exits carry no domain). Phase markers (decoded in
//! `decode.rs`) open and close [`Phase`]s of the domain that wrote them; exits and exit details
//! of that domain count for its open phase. Lost-record reports become [`LostInterval`]s and
//! mark the phases they overlap. Anything odd on the way becomes one of [`Trace::warnings`].

use super::decode::{Marker, MarkerKind};
use super::merge::merge_by_tsc;
use super::phase::Phase;
use super::record::{Record, TRC_64_FLAG, TRC_HVM_NESTEDFLAG, TRC_LOST_RECORDS, TRC_SCHED_SWITCH};
use super::svm::{SVM_EXIT_CPUID, SVM_EXIT_VMMCALL};
use super::{DetailEvent, LostInterval, Trace, VmExit, DOMID_UNKNOWN};
use std::collections::BTreeMap;
use xen_iface::trace::PhaseEdge;

/// Per-pCPU state of the pass.
#[derive(Clone, Copy)]
struct CpuState {
    domain: u16,
    vcpu: u16,
    /// The last exit seen on this pCPU since its last switch: (domain, code, index of the
    /// phase it was counted in).
    last_exit: Option<(u16, u32, Option<usize>)>,
}

/// The pass's state besides the [`Trace`] it fills.
struct Pass {
    trace: Trace,
    /// Open phase of each domain: index into `trace.phases`.
    open: BTreeMap<u16, usize>,
    /// Byte offset of each phase's BEGIN marker, by index into `trace.phases`.
    begin_offsets: Vec<usize>,
}

/// Analyses records (in file order, as `record.rs` reads them) into a [`Trace`].
pub(super) fn analyse(records: Vec<Record>) -> Trace {
    let (cpus, order) = merge_by_tsc(&records);
    let mut pass = Pass { trace: Trace { cpus, ..Trace::default() }, open: BTreeMap::new(), begin_offsets: Vec::new() };

    // Before its first switch record, a pCPU runs the "prev" side of that switch.
    let mut state: BTreeMap<u32, CpuState> = BTreeMap::new();
    for &(i, _) in &order {
        let Some(rec) = records.get(i) else { continue };
        if rec.event == TRC_SCHED_SWITCH && !state.contains_key(&rec.cpu) {
            state.insert(rec.cpu, CpuState { domain: rec.word(0) as u16, vcpu: rec.word(1) as u16, last_exit: None });
        }
    }
    let have_switches = !state.is_empty();
    let unknown = CpuState { domain: DOMID_UNKNOWN, vcpu: 0xffff, last_exit: None };

    for &(i, tsc) in &order {
        let Some(rec) = records.get(i) else { continue };
        let cpu = state.entry(rec.cpu).or_insert(unknown);
        if rec.event == TRC_SCHED_SWITCH {
            cpu.domain = rec.word(2) as u16;
            cpu.vcpu = rec.word(3) as u16;
            cpu.last_exit = None;
        } else if rec.event == TRC_LOST_RECORDS {
            pass.lost(rec, cpu);
            // The exit before the next detail or marker on this pCPU may have been lost.
            cpu.last_exit = None;
        } else if rec.is_vmexit() {
            let exit = VmExit {
                cpu: rec.cpu,
                tsc: rec.tsc,
                domain: cpu.domain,
                vcpu: cpu.vcpu,
                code: rec.word(0),
                rip: rec.exit_rip(),
                long_mode: rec.event & TRC_64_FLAG != 0,
                nested: rec.event & TRC_HVM_NESTEDFLAG != 0,
            };
            let counted = pass.open.get(&exit.domain).copied();
            if let Some(p) = counted.and_then(|p| pass.trace.phases.get_mut(p)) {
                p.add(exit.code, 1);
            }
            cpu.last_exit = Some((exit.domain, exit.code, counted));
            pass.trace.exits.push(exit);
        } else if let Some(op) = rec.pv_hypercall() {
            // The markers' own hvm_op is not the phase's cost (as a marker's VMMCALL is not).
            if op != xen_iface::hypercall::HVM_OP {
                let counted = pass.open.get(&cpu.domain).copied();
                if let Some(p) = counted.and_then(|p| pass.trace.phases.get_mut(p)) {
                    *p.hypercalls.entry(op).or_insert(0) += 1;
                }
            }
        } else if let Some(marker) = rec.phase_marker() {
            pass.marker(rec, marker, cpu, tsc);
        } else if let Some(detail) = rec.exit_detail() {
            // Written while Xen handles the exit before it on this pCPU: same domain, same phase.
            let (exit_code, phase) = match cpu.last_exit {
                Some((_, code, phase)) => (Some(code), phase),
                None => (None, None),
            };
            if let Some(p) = phase.and_then(|p| pass.trace.phases.get_mut(p)) {
                p.add_detail(&detail);
            }
            let (domain, vcpu) = (cpu.domain, cpu.vcpu);
            pass.trace.details.push(DetailEvent { cpu: rec.cpu, tsc, domain, vcpu, exit_code, detail });
        }
    }
    let mut trace = pass.finish();
    let attributable = !trace.exits.is_empty() || !trace.phases.is_empty() || !trace.details.is_empty();
    if !have_switches && attributable {
        trace.warnings.push(
            "no TRC_SCHED_SWITCH record in the trace: exits, details and markers cannot be attributed to \
             domains (trace with the SCHED class, e.g. xentrace -e 0x080af000)"
                .to_string(),
        );
    }
    set_lost_ends(&mut trace.lost, &records);
    mark_lost_overlaps(&mut trace);
    trace.records = records;
    trace
}

impl Pass {
    /// A `TRC_LOST_RECORDS` report: counted for every open phase, kept as a [`LostInterval`].
    fn lost(&mut self, rec: &Record, cpu: &CpuState) {
        let count = rec.word(0);
        self.trace.lost_records += u64::from(count);
        for &p in self.open.values() {
            if let Some(phase) = self.trace.phases.get_mut(p) {
                phase.lost_records += u64::from(count);
            }
        }
        // Too short to say when the loss began: it may have begun at any time before.
        let first_tsc = if rec.extra().len() >= 4 { rec.u64_at(2) } else { 0 };
        let (domain, vcpu) = if rec.extra().len() >= 2 {
            (rec.word(1) as u16, (rec.word(1) >> 16) as u16)
        } else {
            (cpu.domain, cpu.vcpu)
        };
        let offset = rec.offset;
        self.trace.lost.push(LostInterval { cpu: rec.cpu, first_tsc, end_tsc: rec.tsc, count, domain, vcpu, offset });
    }

    /// A phase marker of the domain running on `cpu`.
    fn marker(&mut self, rec: &Record, m: Marker, cpu: &CpuState, tsc: Option<u64>) {
        let domain = cpu.domain;
        let what = if m.kind == MarkerKind::Cpuid { "CPUID phase marker" } else { "phase marker" };
        if domain == DOMID_UNKNOWN {
            self.trace.warnings.push(format!(
                "{what} {:?} at byte {} on pCPU {} has no known domain (trace without the SCHED class?)",
                m.name, rec.offset, rec.cpu
            ));
        }
        if let Some(len) = m.short_payload {
            self.trace.warnings.push(format!(
                "{what} {:?} of domain {domain} at byte {} has {len} extra bytes, too few for its iteration \
                 count (read as 0)",
                m.name, rec.offset
            ));
        }
        if m.edge == PhaseEdge::Begin {
            self.open_phase(domain, m, rec.offset, tsc);
            return;
        }
        let Some(p) = self.open.remove(&domain) else {
            self.trace
                .warnings
                .push(format!("END {what} {:?} of domain {domain} at byte {} without a BEGIN", m.name, rec.offset));
            return;
        };
        let Some(phase) = self.trace.phases.get_mut(p) else { return };
        // The exit that delivered this END marker (the hypercall, or the CPUID itself) is the
        // last exit on this pCPU; it belongs to neither phase.
        let carrier = if m.kind == MarkerKind::Cpuid { SVM_EXIT_CPUID } else { SVM_EXIT_VMMCALL };
        if cpu.last_exit == Some((domain, carrier, Some(p))) {
            phase.add(carrier, -1);
        }
        if m.iterations != 0 {
            phase.iterations = m.iterations;
        }
        if !m.name.is_empty() && m.name != phase.name {
            let msg = format!(
                "phase {:?} of domain {domain} ended by a marker named {:?} at byte {}",
                phase.name, m.name, rec.offset
            );
            self.trace.warnings.push(msg);
        }
        phase.complete = true;
        phase.end_tsc = tsc;
    }

    /// Opens a phase of `domain`, closing (with a warning) one left open.
    fn open_phase(&mut self, domain: u16, m: Marker, offset: usize, tsc: Option<u64>) {
        if let Some(p) = self.open.remove(&domain) {
            let msg = format!(
                "{} has no END marker before the next BEGIN ({:?}, at byte {offset})",
                self.describe(p),
                m.name
            );
            self.trace.warnings.push(msg);
        }
        self.open.insert(domain, self.trace.phases.len());
        self.trace.phases.push(Phase::new(m.name, domain, m.iterations, tsc));
        self.begin_offsets.push(offset);
    }

    /// `phase "name" of domain D (BEGIN at byte X)`, for warnings.
    fn describe(&self, p: usize) -> String {
        match (self.trace.phases.get(p), self.begin_offsets.get(p)) {
            (Some(ph), Some(off)) => format!("phase {:?} of domain {} (BEGIN at byte {off})", ph.name, ph.domain),
            _ => format!("phase #{p}"),
        }
    }

    /// Warns about the phases still open at the end of the trace.
    fn finish(mut self) -> Trace {
        for &p in self.open.values() {
            let msg = format!("{} has no END marker (the trace ends first)", self.describe(p));
            self.trace.warnings.push(msg);
        }
        self.trace
    }
}

/// Gives each lost interval without an end (a report without a TSC of its own) the TSC of the
/// next record on its pCPU that has one.
fn set_lost_ends(lost: &mut [LostInterval], records: &[Record]) {
    if lost.iter().all(|l| l.end_tsc.is_some()) {
        return;
    }
    let mut next_tsc: BTreeMap<u32, u64> = BTreeMap::new();
    let mut ends: BTreeMap<usize, Option<u64>> = BTreeMap::new();
    for rec in records.iter().rev() {
        if rec.event == TRC_LOST_RECORDS {
            ends.insert(rec.offset, next_tsc.get(&rec.cpu).copied());
        }
        if let Some(t) = rec.tsc {
            next_tsc.insert(rec.cpu, t);
        }
    }
    for l in lost.iter_mut().filter(|l| l.end_tsc.is_none()) {
        l.end_tsc = ends.get(&l.offset).copied().flatten();
    }
}

/// Marks every phase that a lost interval overlaps and warns once per lost interval.
fn mark_lost_overlaps(trace: &mut Trace) {
    for l in &trace.lost {
        let mut hit = Vec::new();
        for p in trace.phases.iter_mut() {
            let from = p.begin_tsc.unwrap_or(0);
            let to = if p.complete { p.end_tsc.unwrap_or(from) } else { u64::MAX };
            if l.overlaps(from, to) {
                p.lost_overlap = true;
                hit.push(format!("{:?} of domain {}", p.name, p.domain));
            }
        }
        let end = l.end_tsc.map_or("the end of the trace".to_string(), |t| t.to_string());
        let phases = if hit.is_empty() { "no phase".to_string() } else { format!("phase {}", hit.join(", ")) };
        trace.warnings.push(format!(
            "{} records lost on pCPU {} from TSC {} to {end} (report at byte {}, written while domain {} vCPU {} \
             ran); overlaps {phases}",
            l.count, l.cpu, l.first_tsc, l.offset, l.domain, l.vcpu
        ));
    }
}
