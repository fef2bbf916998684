//! How a run of guests on the Xen host ended: every guest's attempts ended
//! ([`RunEnd::Complete`]), or the nested host froze in the last boot allowed and some
//! guests never ended ([`RunEnd::Incomplete`]).
//!
//! An incomplete run keeps the [`GuestRun`]s of the guests that ended (in that boot or an
//! earlier one) beside the [`Missing`] ones, so that a report can show what there is; it is
//! a different variant, never a shorter list of runs, so a caller cannot take it for a
//! complete run: [`RunEnd::complete`] turns it into the error that names the freeze.

use super::{FrozenBoot, GuestRun};
use crate::hostfreeze::Froze;
use crate::qemu::HarnessError;
use crate::xen::guests::Guest;
use std::path::PathBuf;

/// How a run ended.
#[derive(Debug)]
#[must_use = "an incomplete run must be reported as one (RunEnd::complete turns it into the error)"]
pub enum RunEnd {
    /// Every guest's attempts ended: one run per guest, in the plan's order.
    Complete(Vec<GuestRun>),
    /// The host froze in the last boot allowed, before every guest had ended.
    Incomplete(Incomplete),
}

impl RunEnd {
    /// Every guest's run, or, for an incomplete run, the error that names the freeze and
    /// the guests that never ended.
    pub fn complete(self) -> Result<Vec<GuestRun>, HarnessError> {
        match self {
            RunEnd::Complete(runs) => Ok(runs),
            RunEnd::Incomplete(i) => Err(i.error()),
        }
    }

    /// The runs of the guests that ended, in the plan's order, and what is missing if the
    /// run is incomplete.
    pub fn into_parts(self) -> (Vec<GuestRun>, Option<Incomplete>) {
        match self {
            RunEnd::Complete(runs) => (runs, None),
            RunEnd::Incomplete(mut i) => (std::mem::take(&mut i.ended), Some(i)),
        }
    }
}

/// A run that the nested host's freeze cut short in its last boot allowed.
#[derive(Debug)]
pub struct Incomplete {
    /// The guests whose attempts ended, in this boot or an earlier one, in the plan's order
    /// (empty after [`RunEnd::into_parts`], which hands them out).
    pub ended: Vec<GuestRun>,
    /// The guests that never ended, in the plan's order.
    pub missing: Vec<Missing>,
    /// Where in its payload the host froze.
    pub froze: Froze,
    /// The boot that froze (the last allowed).
    pub boot: u32,
    /// Boots allowed.
    pub max_boots: u32,
    /// That boot's output directory.
    pub dir: PathBuf,
    /// What the boot itself reported (`run-host.sh`'s failure).
    pub boot_error: String,
}

impl Incomplete {
    /// "the nested Xen host froze while NAME ran in boot 2 of at most 2 (...)".
    pub fn describe(&self) -> String {
        format!(
            "the nested Xen host froze {} in boot {} of at most {} (console silent, QEMU stopped; its output is in {})",
            self.froze.describe(),
            self.boot,
            self.max_boots,
            self.dir.display()
        )
    }

    /// The names of the guests that never ended.
    pub fn missing_names(&self) -> Vec<&str> {
        self.missing.iter().map(Missing::name).collect()
    }

    /// The error that fails a run which had to be complete: the boot's failure, the
    /// freeze, and the guests that never ended.
    pub fn error(&self) -> HarnessError {
        HarnessError(format!(
            "{}\n{}; the earlier boots' outputs are beside it; {} guest(s) ended, {} never did: {}",
            self.boot_error,
            self.describe(),
            self.ended.len(),
            self.missing.len(),
            self.missing_names().join(", ")
        ))
    }
}

/// A guest whose attempts never ended: the host froze while it ran, before it ran again,
/// or before it started.
#[derive(Clone, Debug, PartialEq)]
pub struct Missing {
    /// What it was.
    pub guest: Guest,
    /// The boot that froze (the last allowed).
    pub boot: u32,
    /// Where in its payload that boot froze.
    pub froze: Froze,
    /// Its attempts in the boots that froze, the last boot's last (none if it never started).
    pub frozen: Vec<FrozenBoot>,
}

impl Missing {
    /// Its domain name.
    pub fn name(&self) -> &str {
        &self.guest.plan.name
    }

    /// Whether it was running when the last boot froze.
    pub fn was_running(&self) -> bool {
        self.froze.guest() == Some(self.name())
    }

    /// Attempts of it that ended in the last boot (each to be run again).
    fn ended_in_last_boot(&self) -> usize {
        self.frozen.iter().filter(|f| f.boot == self.boot).map(|f| f.attempts.len()).sum()
    }

    /// Why it has no results: "lost: the host froze while it ran (boot 2)", "not run again
    /// after attempt 1: ...", "not run: the host froze while NAME ran (boot 2)".
    pub fn why(&self) -> String {
        let boot = self.boot;
        if self.was_running() {
            return format!("lost: the host froze while it ran (boot {boot})");
        }
        match self.ended_in_last_boot() {
            0 => format!("not run: the host froze {} (boot {boot})", self.froze.describe()),
            n => format!("not run again after attempt {n}: the host froze {} (boot {boot})", self.froze.describe()),
        }
    }

    /// Attempts over every boot, a lost one included.
    pub fn attempt_count(&self) -> usize {
        self.frozen.iter().map(|f| f.attempts.len() + usize::from(f.running)).sum()
    }

    /// Every attempt in every boot, in order, each with how it ended.
    pub fn history(&self) -> Vec<String> {
        self.frozen.iter().flat_map(FrozenBoot::describe).collect()
    }
}
