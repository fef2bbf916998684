//! Benchmark phases cut out of the trace's events at the kernel's CPUID markers.
//!
//! A BEGIN marker's CPUID exit comes before its `kvm_cpuid` event, so it stays outside the
//! phase; the END marker's exit lands inside and is taken back, as the Xen side does with
//! its markers' own exits. Every other exit between the two is the phase's cost.

use super::event::{event, Event};
use super::Phase;
use crate::xentrace::{ExitDetail, SVM_EXIT_CPUID};
use std::fmt;
use xen_iface::trace::{decode_cpuid_marker, PhaseEdge};

/// One benchmark phase on KVM.
#[derive(Clone, Debug, PartialEq)]
pub struct KvmPhase {
    /// Exits and MSR writes, as on Xen (domain 0: L1 runs one guest at a time).
    pub phase: Phase,
    /// EOIs KVM completed for the guest (`kvm_pv_eoi`): interrupts the guest ended with no exit.
    pub pv_eois: u64,
    /// Interrupts KVM injected (`kvm_inj_virq`).
    pub injections: u64,
    /// Seconds between the markers (L1's clock).
    pub seconds: f64,
}

impl KvmPhase {
    /// PV EOIs per iteration; `None` for 0 iterations.
    pub fn pv_eois_per_op(&self) -> Option<f64> {
        (self.phase.iterations != 0).then(|| self.pv_eois as f64 / self.phase.iterations as f64)
    }
}

/// What the trace of one guest holds.
#[derive(Clone, Debug, PartialEq)]
pub struct KvmTrace {
    /// The phases, complete ones and any the trace cut off (`phase.complete` false).
    pub phases: Vec<KvmPhase>,
    /// Exits in the whole trace.
    pub exits: u64,
}

impl KvmTrace {
    /// The complete phase named `name`.
    pub fn phase(&self, name: &str) -> Option<&KvmPhase> {
        self.phases.iter().find(|p| p.phase.name == name && p.phase.complete)
    }

    /// Every complete phase named `name`, in order (the load experiment's rates).
    pub fn phases_named(&self, name: &str) -> Vec<&KvmPhase> {
        self.phases.iter().filter(|p| p.phase.name == name && p.phase.complete).collect()
    }
}

/// Why a trace cannot be used.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceError {
    /// The ring overwrote events (`entries-in-buffer` below `entries-written`): counts
    /// would be low.
    Lost {
        /// Events kept.
        kept: u64,
        /// Events written.
        written: u64,
    },
    /// A line of a known event did not parse.
    Unreadable(String),
    /// No event at all: tracing was off or the guest never ran.
    Empty,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Lost { kept, written } => {
                write!(f, "L1's trace ring lost events: {kept} kept of {written} written (raise buffer_size_kb)")
            }
            TraceError::Unreadable(line) => f.write_str(line),
            TraceError::Empty => f.write_str("the trace holds no KVM event (was tracing on, did the guest run?)"),
        }
    }
}

/// The `entries-in-buffer/entries-written: K/W` header, if the text has it.
fn counts(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.contains("entries-in-buffer/entries-written:"))?;
    let (_, nums) = line.split_once(": ")?;
    let (k, w) = nums.split_whitespace().next()?.split_once('/')?;
    Some((k.parse().ok()?, w.parse().ok()?))
}

/// Cuts the trace text into phases.
pub fn phases(text: &str) -> Result<KvmTrace, TraceError> {
    if let Some((kept, written)) = counts(text) {
        if kept < written {
            return Err(TraceError::Lost { kept, written });
        }
    }
    let mut out = KvmTrace { phases: Vec::new(), exits: 0 };
    let mut open: Option<(KvmPhase, f64)> = None;
    let mut any = false;
    for line in text.lines() {
        let Some(ev) = event(line) else { continue };
        let ev = ev.map_err(TraceError::Unreadable)?;
        any = true;
        match ev {
            Event::Exit { code, .. } => {
                out.exits += 1;
                if let Some((p, _)) = open.as_mut() {
                    p.phase.add(code, 1);
                }
            }
            Event::Msr { write: true, msr, value } => {
                if let Some((p, _)) = open.as_mut() {
                    p.phase.add_detail(&ExitDetail::MsrWrite { msr, value });
                }
            }
            Event::Msr { .. } => {}
            Event::PvEoi => open.iter_mut().for_each(|(p, _)| p.pv_eois += 1),
            Event::Inject => open.iter_mut().for_each(|(p, _)| p.injections += 1),
            Event::Cpuid { t, function, index } => {
                let Some(m) = decode_cpuid_marker(function, index) else { continue };
                match m.edge {
                    PhaseEdge::Begin => {
                        if let Some((p, _)) = open.take() {
                            out.phases.push(p); // cut off by a new BEGIN: stays incomplete
                        }
                        let phase = Phase::new(m.name.to_string(), 0, 0, None);
                        open = Some((KvmPhase { phase, pv_eois: 0, injections: 0, seconds: 0.0 }, t));
                    }
                    PhaseEdge::End => {
                        let Some((mut p, t0)) = open.take() else { continue };
                        if p.phase.name != m.name {
                            out.phases.push(p);
                            continue;
                        }
                        p.phase.add(SVM_EXIT_CPUID, -1); // the END marker's own exit
                        p.phase.iterations = m.value as u64;
                        p.phase.complete = true;
                        p.seconds = t - t0;
                        out.phases.push(p);
                    }
                }
            }
        }
    }
    if let Some((p, _)) = open {
        out.phases.push(p);
    }
    if !any {
        return Err(TraceError::Empty);
    }
    Ok(out)
}
