//! One run of guests on the Xen host, and what each left: its attempts (from the agent's
//! results), its console and its trace (of the attempt that counts, the last).

use super::guests::Guest;
use super::host::{self, RunOptions};
use super::results::{Attempt, GuestResult, Outcome, RunResults};
use crate::agent::RESULTS_FILE;
use crate::console::BootSummary;
use crate::qemu::HarnessError;
use crate::xentrace::{self, Phase, Trace};
use std::path::Path;

/// A guest after the run.
#[derive(Debug)]
pub struct GuestRun {
    /// What it was.
    pub guest: Guest,
    /// Every attempt.
    pub result: GuestResult,
    /// Its console lines (last attempt).
    pub lines: Vec<String>,
    /// The kernel's machine lines among them.
    pub summary: BootSummary,
    /// The host's trace of the last attempt, if it has a complete one.
    pub trace: Option<Trace>,
    /// Why there is no usable trace, if there is none.
    pub trace_problem: Option<String>,
}

impl GuestRun {
    /// Its domain name.
    pub fn name(&self) -> &str {
        &self.guest.plan.name
    }

    /// The attempt that counts.
    pub fn last(&self) -> Option<&Attempt> {
        self.result.last()
    }

    /// How the attempt that counts ended.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.last().map(|a| &a.outcome)
    }

    /// Whether it finished.
    pub fn finished(&self) -> bool {
        self.outcome() == Some(&Outcome::Finished)
    }

    /// Attempts it needed beyond the first.
    pub fn retries(&self) -> usize {
        self.result.attempts.len().saturating_sub(1)
    }

    /// The complete trace phase `name` of its domain.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        let dom = u16::try_from(self.last()?.domid?).ok()?;
        self.trace.as_ref()?.phases(dom).into_iter().find(|p| p.name == name && p.complete)
    }

    /// Every complete trace phase `name` of its domain, in the order they ran (a benchmark
    /// run several times, such as `load` once per rate).
    pub fn phases(&self, name: &str) -> Vec<&Phase> {
        let Some(dom) = self.last().and_then(|a| u16::try_from(a.domid?).ok()) else { return Vec::new() };
        self.trace
            .as_ref()
            .map_or(Vec::new(), |t| t.phases(dom).into_iter().filter(|p| p.name == name && p.complete).collect())
    }

    /// Why it did not finish cleanly, with its failure lines: `None` if it finished and
    /// printed no failure.
    pub fn problem(&self) -> Option<String> {
        let Some(a) = self.last() else { return Some("never ran".into()) };
        let failures = self.summary.failures();
        if a.outcome == Outcome::Finished && failures.is_empty() {
            return None;
        }
        Some(format!("{} (attempt {}); its failure lines: {failures:?}", a.outcome.describe(), a.number))
    }
}

fn read(out: &Path, guest: &Guest, result: GuestResult) -> GuestRun {
    let last = result.last();
    let lines: Vec<String> = last
        .and_then(|a| std::fs::read_to_string(out.join(&a.console_file)).ok())
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let summary = BootSummary::from_lines(&lines);
    let (trace, trace_problem) = match last.map(|a| (&a.trace_file, a.trace_complete)) {
        Some((Some(f), true)) => match std::fs::read(out.join(f)) {
            Ok(bytes) => match xentrace::parse(&bytes) {
                Ok(t) => (Some(t), None),
                Err(e) => (None, Some(format!("{f}: {e}"))),
            },
            Err(e) => (None, Some(format!("{f}: {e}"))),
        },
        Some(_) => (None, Some("xentrace did not cover the attempt".to_string())),
        None => (None, Some("no attempt".to_string())),
    };
    GuestRun { guest: guest.clone(), result, lines, summary, trace, trace_problem }
}

/// Runs `guests` in one boot of the host (built or reused) under `work`, with `timeout_s`
/// for the whole boot and the default attempts and trace; returns every guest's run, in
/// order.
pub fn run_guests(work: &Path, kernel: &Path, guests: &[Guest], timeout_s: u32) -> Result<Vec<GuestRun>, HarnessError> {
    run_plan(work, kernel, guests, &RunOptions::new(timeout_s))
}

/// [`run_guests`] with other options (attempts, trace settings).
pub fn run_plan(
    work: &Path,
    kernel: &Path,
    guests: &[Guest],
    opts: &RunOptions,
) -> Result<Vec<GuestRun>, HarnessError> {
    if !kernel.exists() {
        return Err(HarnessError(format!(
            "kernel image {} missing: build it first (tests/check.sh does)",
            kernel.display()
        )));
    }
    let host = host::build()?;
    let (payload, out) = (work.join("payload"), work.join("out"));
    host::make_payload(&payload, kernel, &host, guests, opts)?;
    host::boot(&payload, &out, opts.timeout_s, guests.len())?;
    let text = std::fs::read_to_string(out.join(RESULTS_FILE))
        .map_err(|e| HarnessError(format!("{}: {e} (the agent wrote no results)", out.join(RESULTS_FILE).display())))?;
    let results: RunResults = serde_json::from_str(&text).map_err(|e| HarnessError(format!("{RESULTS_FILE}: {e}")))?;
    for n in &results.notes {
        eprintln!("note (dom0 agent): {n}");
    }
    guests
        .iter()
        .map(|g| {
            let r = results.guests.iter().find(|r| r.name == g.plan.name).cloned().ok_or_else(|| {
                HarnessError(format!("{}: the agent has no results for it; see {}", g.plan.name, out.display()))
            })?;
            Ok(read(&out, g, r))
        })
        .collect()
}
