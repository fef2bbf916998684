//! One run of guests on the Xen host, and what each left: its attempts (from the agent's
//! results), its console and its trace (of the attempt that counts, the last).
//!
//! A run is one boot of the host, or more when the nested host froze
//! ([`crate::hostfreeze`]): the guests whose attempts ended in the frozen boot are kept
//! with that boot's files (its output moved to `out.froze<N>`), and only the others run
//! in the next boot. Each [`GuestRun`] reads its files from the boot that ran it, and keeps
//! what the frozen boots cut ([`FrozenBoot`]) for the report. A freeze in the last boot
//! allowed ends the run incomplete ([`RunEnd`], `run/end.rs`): the guests that ended, and the
//! [`Missing`] ones with why.

mod end;

pub use end::{Incomplete, Missing, RunEnd};

use super::guests::Guest;
use super::host::{self, RunOptions};
use super::results::{Attempt, GuestResult, Outcome, RunResults};
use crate::agent::RESULTS_FILE;
use crate::console::BootSummary;
use crate::hostfreeze::{self, Froze};
use crate::qemu::HarnessError;
use crate::xentrace::{self, Phase, Trace};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A guest's attempts in a boot of the host that froze before they ended.
#[derive(Clone, Debug, PartialEq)]
pub struct FrozenBoot {
    /// Which boot of the host (1: the first).
    pub boot: u32,
    /// That boot's output directory, kept (`out.froze<boot>`).
    pub dir: PathBuf,
    /// The attempts that ended in it, each with the agent's reason to run it again.
    pub attempts: Vec<Attempt>,
    /// Whether it was running when the host froze: that attempt is lost.
    pub running: bool,
}

impl FrozenBoot {
    /// Every attempt of that boot with how it ended, the lost one last.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .attempts
            .iter()
            .map(|a| {
                let why = a.retried_because.as_deref().unwrap_or("-");
                format!("boot {} attempt {}: {}; run again: {why}", self.boot, a.number, a.outcome.describe())
            })
            .collect();
        if self.running {
            out.push(format!(
                "boot {} attempt {}: lost to a host freeze (the nested host froze while it ran; {})",
                self.boot,
                self.attempts.len() + 1,
                self.dir.display()
            ));
        }
        out
    }
}

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
    /// Which boot of the host ran it to the end (1: the first; more after a freeze).
    pub boot: u32,
    /// That boot's output directory: its files are read from there.
    pub dir: PathBuf,
    /// Its attempts in earlier boots that froze before they ended: shown, never hidden.
    pub frozen: Vec<FrozenBoot>,
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

    /// Attempts the agent ran again (the host's signature, [`Outcome::retry_reason`]),
    /// over every boot. An attempt lost to a host freeze is not one of them: a freeze stops
    /// every guest alike; it is in [`GuestRun::frozen`] and [`GuestRun::history`].
    pub fn retries(&self) -> usize {
        let earlier: usize = self.frozen.iter().map(|f| f.attempts.len()).sum();
        earlier + self.result.attempts.len().saturating_sub(1)
    }

    /// Why each retried attempt ran again, over every boot (the frozen boots' first).
    pub fn retry_reasons(&self) -> Vec<&str> {
        let earlier = self.frozen.iter().flat_map(|f| f.attempts.iter());
        earlier.chain(&self.result.attempts).filter_map(|a| a.retried_because.as_deref()).collect()
    }

    /// Attempts over every boot, a lost one included.
    pub fn attempt_count(&self) -> usize {
        let earlier: usize = self.frozen.iter().map(|f| f.attempts.len() + usize::from(f.running)).sum();
        earlier + self.result.attempts.len()
    }

    /// Attempts lost to a host freeze.
    pub fn lost_to_freeze(&self) -> usize {
        self.frozen.iter().filter(|f| f.running).count()
    }

    /// Every attempt in every boot, in order, each with how it ended and why it ran again.
    pub fn history(&self) -> Vec<String> {
        let mut out: Vec<String> = self.frozen.iter().flat_map(FrozenBoot::describe).collect();
        for a in &self.result.attempts {
            let mut line = format!("boot {} attempt {}: {}", self.boot, a.number, a.outcome.describe());
            if let Some(why) = &a.retried_because {
                line.push_str(&format!("; run again: {why}"));
            }
            out.push(line);
        }
        out
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

/// What `guest` left in `out`, the output of boot `boot`, after `frozen` earlier boots.
fn read(out: &Path, guest: &Guest, result: GuestResult, boot: u32, frozen: Vec<FrozenBoot>) -> GuestRun {
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
    GuestRun {
        guest: guest.clone(),
        result,
        lines,
        summary,
        trace,
        trace_problem,
        boot,
        dir: out.to_path_buf(),
        frozen,
    }
}

/// Runs `guests` on the host (built or reused) under `work`, with `timeout_s` for each
/// boot and the default attempts, trace and boots; returns every guest's run, in order,
/// or, when the host froze in its last boot allowed, the runs of those that ended and the
/// ones missing ([`RunEnd::Incomplete`]). Any other failure of a boot is an error.
pub fn run_guests(work: &Path, kernel: &Path, guests: &[Guest], timeout_s: u32) -> Result<RunEnd, HarnessError> {
    run_plan(work, kernel, guests, &RunOptions::new(timeout_s))
}

/// [`run_guests`] with other options (attempts, trace settings, boots).
pub fn run_plan(work: &Path, kernel: &Path, guests: &[Guest], opts: &RunOptions) -> Result<RunEnd, HarnessError> {
    if !kernel.exists() {
        return Err(HarnessError(format!(
            "kernel image {} missing: build it first (tests/check.sh does)",
            kernel.display()
        )));
    }
    let host = host::build()?;
    let payload = work.join("payload");
    run_boots(work, guests, opts.max_boots, &mut |these: &[Guest], out: &Path| {
        host::make_payload(&payload, kernel, &host, these, opts)?;
        host::boot(&payload, out, opts.timeout_s, these.len())
    })
}

/// One boot of the host for these guests, its output in that directory.
pub type Boot<'a> = dyn FnMut(&[Guest], &Path) -> Result<(), HarnessError> + 'a;

/// Whether a guest's attempts ended in its boot: its last attempt is not to be run again
/// (it finished, or failed by the agent's rules).
pub fn ended(r: &GuestResult) -> bool {
    r.last().is_some_and(|a| a.retried_because.is_none())
}

/// Removes `dir` if `run-host.sh` made it (it says so with `.hy-run-host`), so that no
/// earlier run's console log is read as this one's.
fn clear_output(dir: &Path) -> Result<(), HarnessError> {
    if dir.join(".hy-run-host").exists() {
        std::fs::remove_dir_all(dir).map_err(|e| HarnessError(format!("clearing {}: {e}", dir.display())))?;
    }
    Ok(())
}

fn results_of(out: &Path) -> Result<RunResults, HarnessError> {
    let path = out.join(RESULTS_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| HarnessError(format!("{}: {e} (the agent wrote no results)", path.display())))?;
    serde_json::from_str(&text).map_err(|e| HarnessError(format!("{}: {e}", path.display())))
}

/// The boots, each by `boot` (for [`run_plan`], `run-host.sh`): all of `guests` in the
/// first; after a boot that froze, the guests without an ended attempt in the next, at
/// most `max_boots` in all. A freeze in the last one ends the run incomplete, its output
/// left in `work/out`; any failure but a freeze is final.
pub fn run_boots(work: &Path, guests: &[Guest], max_boots: u32, boot: &mut Boot<'_>) -> Result<RunEnd, HarnessError> {
    let max_boots = max_boots.max(1);
    let out = work.join("out");
    for n in 1..=max_boots {
        clear_output(&work.join(format!("out.froze{n}")))?;
    }
    let mut runs: Vec<Option<GuestRun>> = guests.iter().map(|_| None).collect();
    let mut frozen: Vec<Vec<FrozenBoot>> = vec![Vec::new(); guests.len()];
    let mut pending: Vec<usize> = (0..guests.len()).collect();
    let mut n = 1;
    while !pending.is_empty() {
        let these: Vec<Guest> = pending.iter().map(|&i| guests[i].clone()).collect();
        clear_output(&out)?;
        if let Err(e) = boot(&these, &out) {
            let Some(froze) = hostfreeze::read(&out, hostfreeze::xen_agent_step) else { return Err(e) };
            let last = n >= max_boots;
            // The last boot's output stays where a run's output is; an earlier one is kept
            // beside it for the next boot's.
            let kept = if last { out.clone() } else { work.join(format!("out.froze{n}")) };
            if !last {
                std::fs::rename(&out, &kept).map_err(|e| {
                    HarnessError(format!("keeping the frozen boot's output as {}: {e}", kept.display()))
                })?;
            }
            let (partial, unread) = match results_of(&kept) {
                Ok(r) => (r, None),
                Err(e) => (RunResults::default(), Some(e.0)),
            };
            for note in &partial.notes {
                eprintln!("note (dom0 agent, boot {n}, froze): {note}");
            }
            let split = split(&pending, guests, &partial, &froze, n, &kept);
            let next = (!last).then_some(n + 1);
            eprintln!("{}", freeze_warning(&froze, n, &kept, &split, guests, next, unread));
            for (i, r) in split.kept {
                runs[i] = Some(read(&kept, &guests[i], r, n, std::mem::take(&mut frozen[i])));
            }
            for (i, f) in split.cut {
                frozen[i].push(f);
            }
            if last && !split.left.is_empty() {
                let missing = split
                    .left
                    .iter()
                    .map(|&i| Missing {
                        guest: guests[i].clone(),
                        boot: n,
                        froze: froze.clone(),
                        frozen: std::mem::take(&mut frozen[i]),
                    })
                    .collect();
                let ended = ended_runs(runs);
                return Ok(RunEnd::Incomplete(Incomplete {
                    ended,
                    missing,
                    froze,
                    boot: n,
                    max_boots,
                    dir: kept,
                    boot_error: e.0,
                }));
            }
            pending = split.left;
            n += 1;
            continue;
        }
        let results = results_of(&out)?;
        for note in &results.notes {
            eprintln!("note (dom0 agent{}): {note}", if n > 1 { format!(", boot {n}") } else { String::new() });
        }
        for &i in &pending {
            let name = &guests[i].plan.name;
            let r = results.guests.iter().find(|r| &r.name == name).cloned().ok_or_else(|| {
                HarnessError(format!("{name}: the agent has no results for it; see {}", out.display()))
            })?;
            runs[i] = Some(read(&out, &guests[i], r, n, std::mem::take(&mut frozen[i])));
        }
        pending.clear();
    }
    Ok(RunEnd::Complete(ended_runs(runs)))
}

/// The runs of the guests that ended, in the plan's order, with a warning when a freeze
/// split the interleaved network rounds over boots.
fn ended_runs(runs: Vec<Option<GuestRun>>) -> Vec<GuestRun> {
    let runs: Vec<GuestRun> = runs.into_iter().flatten().collect();
    if let Some(split) = rounds_by_boot(&runs) {
        eprintln!("warning: the host froze during the interleaved network rounds: {split}");
    }
    runs
}

/// What a frozen boot leaves of the guests it was given (indices into the plan).
#[derive(Debug, Default)]
struct Split {
    /// Guests whose attempts ended there, with their results.
    kept: Vec<(usize, GuestResult)>,
    /// Guests it cut: attempts that ended there, or the one it ran.
    cut: Vec<(usize, FrozenBoot)>,
    /// Guests for the next boot, in plan order.
    left: Vec<usize>,
}

/// Sorts the guests of frozen boot `boot` (`pending`, its agent's `partial` results)
/// into those it ended and those for the next boot.
fn split(pending: &[usize], guests: &[Guest], partial: &RunResults, froze: &Froze, boot: u32, dir: &Path) -> Split {
    let mut s = Split::default();
    for &i in pending {
        let name = guests[i].plan.name.as_str();
        let r = partial.guests.iter().find(|r| r.name == name);
        match r {
            Some(r) if ended(r) => s.kept.push((i, r.clone())),
            _ => {
                let attempts = r.map(|r| r.attempts.clone()).unwrap_or_default();
                let running = froze.guest() == Some(name);
                if running || !attempts.is_empty() {
                    s.cut.push((i, FrozenBoot { boot, dir: dir.to_path_buf(), attempts, running }));
                }
                s.left.push(i);
            }
        }
    }
    s
}

/// The warning that says what the freeze of boot `boot` cost and what runs next (in boot
/// `next`; `None`: no boot is left).
fn freeze_warning(
    froze: &Froze,
    boot: u32,
    kept_dir: &Path,
    split: &Split,
    guests: &[Guest],
    next: Option<u32>,
    unread: Option<String>,
) -> String {
    let names: Vec<&str> = split.left.iter().map(|&i| guests[i].plan.name.as_str()).collect();
    let mut w = format!(
        "warning: the nested Xen host froze {} in boot {boot} (console silent, QEMU stopped; its output is kept in {})",
        froze.describe(),
        kept_dir.display()
    );
    if let Some(g) = froze.guest() {
        w.push_str(&format!("; {g}'s attempt then is lost to the freeze"));
    }
    w.push_str(&format!("; {} guest(s) whose attempts ended are kept", split.kept.len()));
    if let Some(why) = unread {
        w.push_str(&format!(" (the agent's results could not be read: {why})"));
    }
    match (names.is_empty(), next) {
        (true, _) => w.push_str("; every guest's attempts had ended: no other boot"),
        (false, Some(next)) => w.push_str(&format!(
            "; booting the host again: boot {next} runs {} guest(s): {}",
            names.len(),
            names.join(", ")
        )),
        (false, None) => w.push_str(&format!(
            "; no boot is left: the run is incomplete, {} guest(s) never ended: {}",
            names.len(),
            names.join(", ")
        )),
    }
    w
}

/// The round of a network guest: hyrun names each round's guests `<name>-r<N>`.
fn round_of(name: &str) -> Option<u32> {
    let (_, n) = name.rsplit_once("-r")?;
    n.parse().ok()
}

/// Which interleaved network rounds ran in which boot, when a freeze put them in more
/// than one: `None` when they all ran in one boot.
pub fn rounds_by_boot(runs: &[GuestRun]) -> Option<String> {
    let mut rounds: BTreeMap<u32, BTreeMap<u32, Vec<&str>>> = BTreeMap::new();
    for g in runs {
        if let Some(r) = round_of(g.name()) {
            rounds.entry(r).or_default().entry(g.boot).or_default().push(g.name());
        }
    }
    let boots: std::collections::BTreeSet<u32> = rounds.values().flat_map(|b| b.keys().copied()).collect();
    if boots.len() < 2 {
        return None;
    }
    let parts: Vec<String> = rounds
        .iter()
        .map(|(r, by)| {
            let mut line = format!("round {r}: boot");
            if by.len() == 1 {
                line.push_str(&format!(" {}", by.keys().next().unwrap_or(&0)));
            } else {
                let each: Vec<String> = by.iter().map(|(b, names)| format!("{b} ({})", names.join(", "))).collect();
                line.push_str(&format!("s {} (split)", each.join(" and ")));
            }
            line
        })
        .collect();
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::results::{DeathCause, Timing};

    /// A scratch directory, removed at the end.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hy-xen-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn guest(name: &str) -> Guest {
        let mut g = Guest::linux();
        g.plan.name = name.into();
        g
    }

    fn attempt(name: &str, number: u32, outcome: Outcome, retried_because: Option<&str>) -> Attempt {
        Attempt {
            number,
            domid: Some(number),
            outcome,
            retried_because: retried_because.map(str::to_string),
            timing: Timing::default(),
            console_file: format!("{name}.{number}.console"),
            all_output_file: format!("{name}.{number}.out"),
            trace_file: None,
            trace_complete: false,
            xen_log: vec![],
            net: None,
            actions: vec![],
        }
    }

    fn triple_fault() -> Outcome {
        Outcome::Died { cause: DeathCause::TripleFault { xen_line: "d2v0 Triple fault".into() } }
    }

    /// What the fake host writes into a boot's output: run-host's marker, the agent's
    /// results and each attempt's console (its name and the number of the fake's call, to
    /// tell the boots apart).
    fn write_boot(out: &Path, console_log: &str, results: &[GuestResult], call: usize) {
        std::fs::create_dir_all(out).unwrap();
        std::fs::write(out.join(".hy-run-host"), "").unwrap();
        std::fs::write(out.join(hostfreeze::CONSOLE_LOG), console_log).unwrap();
        for r in results {
            for a in &r.attempts {
                std::fs::write(out.join(&a.console_file), format!("{} in call {call}\nDONE\n", r.name)).unwrap();
            }
        }
        let r = RunResults { guests: results.to_vec(), notes: vec![] };
        std::fs::write(out.join(RESULTS_FILE), serde_json::to_string(&r).unwrap()).unwrap();
    }

    fn failed() -> HarnessError {
        HarnessError("the Xen host run failed (exit status: 1)".into())
    }

    const FROZE_IN_C: &str = "[ 1.0] HY-AGENT: hy-a-r1: attempt 1\n[ 2.0] HY-AGENT: attempt 1: finished (timing)\n\
        [ 2.1] HY-AGENT: hy-b-r1: attempt 1\n[ 3.0] HY-AGENT: attempt 1: died: d2v0 Triple fault (timing)\n\
        [ 3.1] HY-AGENT: hy-b-r1: running it again: host: Xen logged a triple fault\n\
        [ 3.2] HY-AGENT: hy-b-r1: attempt 2\n[ 4.0] HY-AGENT: attempt 2: finished (timing)\n\
        [ 4.1] HY-AGENT: hy-c-r2: attempt 1\n\
        [ silent ] run-host: the host's console was silent for 300s: stopping QEMU\n";

    #[test]
    fn a_frozen_boot_keeps_the_ended_guests_and_runs_the_rest_in_a_second_boot() {
        let dir = scratch("resume");
        let work = &dir.0;
        let guests: Vec<Guest> = ["hy-a-r1", "hy-b-r1", "hy-c-r2", "hy-d-r2", "hy-e-load"].map(guest).to_vec();
        let mut boots: Vec<Vec<String>> = Vec::new();
        let runs = run_boots(work, &guests, 2, &mut |these: &[Guest], out: &Path| {
            boots.push(these.iter().map(|g| g.plan.name.clone()).collect());
            if boots.len() == 1 {
                let b = vec![
                    attempt("hy-b-r1", 1, triple_fault(), Some("host: triple fault")),
                    attempt("hy-b-r1", 2, Outcome::Finished, None),
                ];
                write_boot(
                    out,
                    FROZE_IN_C,
                    &[
                        GuestResult {
                            name: "hy-a-r1".into(),
                            attempts: vec![attempt("hy-a-r1", 1, Outcome::Finished, None)],
                        },
                        GuestResult { name: "hy-b-r1".into(), attempts: b },
                    ],
                    1,
                );
                return Err(failed());
            }
            let results: Vec<GuestResult> = these
                .iter()
                .map(|g| GuestResult {
                    name: g.plan.name.clone(),
                    attempts: vec![attempt(&g.plan.name, 1, Outcome::Finished, None)],
                })
                .collect();
            write_boot(out, "[ 1.0] HY-DOM0: powering off\n", &results, 2);
            Ok(())
        })
        .unwrap()
        .complete()
        .unwrap();
        assert_eq!(boots.len(), 2);
        assert_eq!(boots[1], ["hy-c-r2", "hy-d-r2", "hy-e-load"], "only the guests without an ended attempt");
        let names: Vec<&str> = runs.iter().map(GuestRun::name).collect();
        assert_eq!(names, ["hy-a-r1", "hy-b-r1", "hy-c-r2", "hy-d-r2", "hy-e-load"], "the plan's order");
        let froze1 = work.join("out.froze1");
        for (g, boot, dir) in [(&runs[0], 1, &froze1), (&runs[1], 1, &froze1), (&runs[2], 2, &work.join("out"))] {
            assert_eq!((g.boot, &g.dir), (boot, dir), "{}", g.name());
            assert_eq!(g.lines[0], format!("{} in call {boot}", g.name()), "files of the boot that ran it");
            assert!(g.finished());
        }
        // b's retry happened in the frozen boot and counts; c's lost attempt is shown, not a retry.
        assert_eq!((runs[1].retries(), runs[1].attempt_count(), runs[1].lost_to_freeze()), (1, 2, 0));
        let c = &runs[2];
        assert_eq!((c.retries(), c.attempt_count(), c.lost_to_freeze()), (0, 2, 1));
        assert_eq!(c.frozen, vec![FrozenBoot { boot: 1, dir: froze1.clone(), attempts: vec![], running: true }]);
        let h = c.history();
        assert_eq!(h.len(), 2, "{h:?}");
        assert!(h[0].starts_with("boot 1 attempt 1: lost to a host freeze"), "{h:?}");
        assert_eq!(h[1], "boot 2 attempt 1: finished");
        assert!(runs[1].history()[0].contains("run again: host: triple fault"));
        assert_eq!(runs[1].retry_reasons(), ["host: triple fault"]);
        assert_eq!(runs[3].frozen, vec![], "not reached in boot 1: nothing lost");
        assert_eq!(
            rounds_by_boot(&runs).as_deref(),
            Some("round 1: boot 1; round 2: boot 2"),
            "the load guest has no round"
        );
        assert!(!work.join("out.froze2").exists());
    }

    #[test]
    fn a_guest_cut_between_its_attempts_keeps_them_and_runs_again() {
        let dir = scratch("between");
        let guests: Vec<Guest> = ["hy-a", "hy-b"].map(guest).to_vec();
        let mut calls = 0;
        let runs = run_boots(&dir.0, &guests, 2, &mut |these: &[Guest], out: &Path| {
            calls += 1;
            let a = GuestResult { name: "hy-a".into(), attempts: vec![attempt("hy-a", 1, Outcome::Finished, None)] };
            if calls == 1 {
                let tf = attempt("hy-b", 1, triple_fault(), Some("host: triple fault"));
                let log =
                    include_str!("../../data/hostfreeze/xen-froze-between-attempts.log").replace("hy-hybrid", "hy-b");
                write_boot(out, &log, &[a, GuestResult { name: "hy-b".into(), attempts: vec![tf] }], calls);
                return Err(failed());
            }
            assert_eq!(these.len(), 1);
            let died = Outcome::Died { cause: DeathCause::Unexplained };
            write_boot(
                out,
                "",
                &[GuestResult { name: "hy-b".into(), attempts: vec![attempt("hy-b", 1, died, None)] }],
                calls,
            );
            Ok(())
        })
        .unwrap()
        .complete()
        .unwrap();
        let b = &runs[1];
        assert_eq!((b.boot, b.retries(), b.attempt_count(), b.lost_to_freeze()), (2, 1, 3, 1));
        assert_eq!(b.retry_reasons(), ["host: triple fault"], "the frozen boot's retry counts");
        assert!(b.result.retry_reasons().is_empty(), "the last boot's own attempts were not retried");
        assert!(!b.finished(), "its own failure in the second boot stays a failure");
        assert_eq!(rounds_by_boot(&runs), None, "no network rounds");
    }

    #[test]
    fn only_a_freeze_boots_the_host_again_and_only_up_to_the_bound() {
        let dir = scratch("final");
        let guests = vec![guest("hy-a")];
        // A failure without the freeze's marker is final: no second boot.
        let mut calls = 0;
        let e = run_boots(&dir.0, &guests, 2, &mut |_: &[Guest], out: &Path| {
            calls += 1;
            write_boot(out, include_str!("../../data/hostfreeze/xen-not-frozen.log"), &[], calls);
            Err(failed())
        })
        .unwrap_err();
        assert_eq!((calls, e.0.as_str()), (1, failed().0.as_str()));
        // A freeze in the last boot allowed ends the run incomplete; as an error, it says so.
        let mut calls = 0;
        let end = run_boots(&dir.0, &guests, 2, &mut |_: &[Guest], out: &Path| {
            calls += 1;
            write_boot(out, include_str!("../../data/hostfreeze/xen-froze-booting.log"), &[], calls);
            Err(failed())
        })
        .unwrap();
        assert_eq!(calls, 2);
        let RunEnd::Incomplete(i) = &end else { panic!("a final freeze is no complete run: {end:?}") };
        assert_eq!((i.ended.len(), i.missing_names(), i.boot), (0, vec!["hy-a"], 2));
        assert_eq!(i.missing[0].why(), "not run: the host froze before the first guest (boot 2)");
        assert_eq!(i.dir, dir.0.join("out"), "the last boot's output stays in out");
        let e = end.complete().unwrap_err();
        assert!(e.0.starts_with(&failed().0), "{}", e.0);
        assert!(e.0.contains("froze before the first guest in boot 2 of at most 2"), "{}", e.0);
        assert!(e.0.contains("0 guest(s) ended, 1 never did: hy-a"), "{}", e.0);
        assert!(dir.0.join("out.froze1").exists());
    }

    #[test]
    fn a_freeze_after_every_guest_ended_needs_no_other_boot() {
        let dir = scratch("after");
        let guests = vec![guest("hy-a")];
        let mut calls = 0;
        let runs = run_boots(&dir.0, &guests, 2, &mut |_: &[Guest], out: &Path| {
            calls += 1;
            let a = GuestResult { name: "hy-a".into(), attempts: vec![attempt("hy-a", 1, Outcome::Finished, None)] };
            write_boot(out, include_str!("../../data/hostfreeze/xen-froze-between-guests.log"), &[a], calls);
            Err(failed())
        })
        .unwrap()
        .complete()
        .unwrap();
        assert_eq!((calls, runs[0].boot), (1, 1));
        assert!(runs[0].finished());
    }

    /// A real frozen boot (`./run.sh --host xen --mode all --rounds 5`): the agent's
    /// results of the 61 guests that ended (Xen's log lines and most echoes trimmed) and the
    /// host's console log, which froze while the 62nd, `hy-hybrid-pirq-load`, ran.
    const FROZE_LOAD_RESULTS: &str = include_str!("../../data/hostfreeze/xen-froze-load.results.json");
    const FROZE_LOAD_LOG: &str = include_str!("../../data/hostfreeze/xen-froze-load.log");
    /// The plan's guests after the 61: the load guests that never started.
    const AFTER_LOAD: [&str; 4] =
        ["hy-hybrid-pirq-assist-load", "hy-hybrid-load", "hy-hybrid-percpu-load", "hy-hybrid-assist-load"];

    /// The plan of that run: the 61 guests of its results, the one that ran, the 4 after it.
    fn froze_load_plan() -> (RunResults, Vec<Guest>) {
        let results: RunResults = serde_json::from_str(FROZE_LOAD_RESULTS).unwrap();
        let mut names: Vec<&str> = results.guests.iter().map(|g| g.name.as_str()).collect();
        names.push("hy-hybrid-pirq-load");
        names.extend(AFTER_LOAD);
        let guests = names.into_iter().map(guest).collect();
        (results, guests)
    }

    #[test]
    fn a_freeze_in_the_only_boot_keeps_the_61_guests_that_ended_and_names_the_5_missing() {
        let dir = scratch("froze-load");
        let (results, guests) = froze_load_plan();
        assert_eq!((results.guests.len(), guests.len()), (61, 66));
        let end = run_boots(&dir.0, &guests, 1, &mut |_: &[Guest], out: &Path| {
            write_boot(out, FROZE_LOAD_LOG, &results.guests, 1);
            Err(failed())
        })
        .unwrap();
        let RunEnd::Incomplete(i) = end else { panic!("a final freeze is no complete run: {end:?}") };
        let ended: Vec<&str> = i.ended.iter().map(GuestRun::name).collect();
        let want: Vec<&str> = guests[..61].iter().map(|g| g.plan.name.as_str()).collect();
        assert_eq!(ended, want, "every guest that ended, in the plan's order");
        assert!(i.ended.iter().all(|g| g.finished() && g.boot == 1 && g.frozen.is_empty()));
        let mut missing = vec!["hy-hybrid-pirq-load"];
        missing.extend(AFTER_LOAD);
        assert_eq!(i.missing_names(), missing);
        assert_eq!((i.boot, i.max_boots, &i.froze), (1, 1, &Froze::During("hy-hybrid-pirq-load".into())));
        let running = &i.missing[0];
        assert!(running.was_running());
        assert_eq!(running.why(), "lost: the host froze while it ran (boot 1)");
        assert_eq!(running.attempt_count(), 1);
        assert!(running.history()[0].starts_with("boot 1 attempt 1: lost to a host freeze"), "{:?}", running.history());
        for m in &i.missing[1..] {
            assert_eq!(m.why(), "not run: the host froze while hy-hybrid-pirq-load ran (boot 1)", "{}", m.name());
            assert_eq!((m.attempt_count(), m.frozen.len()), (0, 0), "{}: never started", m.name());
        }
        let e = i.error().0;
        assert!(e.contains("froze while hy-hybrid-pirq-load ran in boot 1 of at most 1"), "{e}");
        assert!(e.contains("61 guest(s) ended, 5 never did: hy-hybrid-pirq-load, hy-hybrid-pirq-assist-load"), "{e}");
    }

    #[test]
    fn a_freeze_in_the_second_boot_keeps_the_guests_of_both_boots() {
        let dir = scratch("froze-twice");
        let (results, guests) = froze_load_plan();
        let mut calls = 0;
        let end = run_boots(&dir.0, &guests, 2, &mut |these: &[Guest], out: &Path| {
            calls += 1;
            if calls == 1 {
                write_boot(out, FROZE_LOAD_LOG, &results.guests, calls);
                return Err(failed());
            }
            // Boot 2: the lost guest finishes; the host freezes while the next one runs.
            assert_eq!(these.len(), 5);
            let pirq = GuestResult {
                name: "hy-hybrid-pirq-load".into(),
                attempts: vec![attempt("hy-hybrid-pirq-load", 1, Outcome::Finished, None)],
            };
            let log = "[ 10.0] HY-AGENT: hy-hybrid-pirq-load: attempt 1\n\
                       [ 40.0] HY-AGENT: attempt 1: finished (timing)\n\
                       [ 40.2] HY-AGENT: hy-hybrid-pirq-assist-load: attempt 1\n\
                       [ silent ] run-host: the host's console was silent for 300s: stopping QEMU\n";
            write_boot(out, log, &[pirq], calls);
            Err(failed())
        })
        .unwrap();
        assert_eq!(calls, 2);
        let RunEnd::Incomplete(i) = end else { panic!("a final freeze is no complete run: {end:?}") };
        assert_eq!(i.ended.len(), 62);
        let pirq = &i.ended[61];
        assert_eq!(
            (pirq.name(), pirq.boot, pirq.attempt_count(), pirq.lost_to_freeze()),
            ("hy-hybrid-pirq-load", 2, 2, 1)
        );
        assert_eq!(pirq.lines[0], "hy-hybrid-pirq-load in call 2", "read from the boot that ran it");
        assert_eq!(i.ended[0].dir, dir.0.join("out.froze1"));
        assert_eq!(pirq.dir, dir.0.join("out"));
        assert_eq!(i.missing_names(), AFTER_LOAD);
        assert_eq!(i.missing[0].why(), "lost: the host froze while it ran (boot 2)");
        assert_eq!(i.missing[1].why(), "not run: the host froze while hy-hybrid-pirq-assist-load ran (boot 2)");
        let (runs, rest) = RunEnd::Incomplete(i).into_parts();
        assert_eq!((runs.len(), rest.map(|r| (r.ended.len(), r.missing.len()))), (62, Some((0, 4))));
    }

    #[test]
    fn a_guest_cut_between_its_attempts_in_the_last_boot_says_so() {
        let dir = scratch("cut-last");
        let guests = vec![guest("hy-b"), guest("hy-c")];
        let end = run_boots(&dir.0, &guests, 1, &mut |_: &[Guest], out: &Path| {
            let tf = attempt("hy-b", 1, triple_fault(), Some("host: triple fault"));
            let log = "[ 1.0] HY-AGENT: hy-b: attempt 1\n[ 2.0] HY-AGENT: attempt 1: died: triple fault\n\
                       [ silent ] run-host: the host's console was silent for 300s: stopping QEMU\n";
            write_boot(out, log, &[GuestResult { name: "hy-b".into(), attempts: vec![tf] }], 1);
            Err(failed())
        })
        .unwrap();
        let RunEnd::Incomplete(i) = end else { panic!("a final freeze is no complete run: {end:?}") };
        assert_eq!(i.missing[0].why(), "not run again after attempt 1: the host froze between guests (boot 1)");
        assert_eq!(
            i.missing[0].history(),
            ["boot 1 attempt 1: died: d2v0 Triple fault; run again: host: triple fault"]
        );
        assert_eq!(i.missing[1].why(), "not run: the host froze between guests (boot 1)");
    }

    #[test]
    fn split_rounds_are_named_with_their_guests() {
        let mut a = read(Path::new("/nonexistent"), &guest("hy-x-net-r5"), GuestResult::default(), 1, vec![]);
        let mut b = read(Path::new("/nonexistent"), &guest("linux-net-r5"), GuestResult::default(), 2, vec![]);
        let c = read(Path::new("/nonexistent"), &guest("hy-x-net-r4"), GuestResult::default(), 1, vec![]);
        assert_eq!(
            rounds_by_boot(&[c, a, b]).as_deref(),
            Some("round 4: boot 1; round 5: boots 1 (hy-x-net-r5) and 2 (linux-net-r5) (split)")
        );
        a = read(Path::new("/nonexistent"), &guest("hy-x-net-r1"), GuestResult::default(), 2, vec![]);
        b = read(Path::new("/nonexistent"), &guest("hy-x-net-r2"), GuestResult::default(), 2, vec![]);
        assert_eq!(rounds_by_boot(&[a, b]), None, "all in one boot");
        assert_eq!(round_of("hy-hvm-irqmod-load"), None);
    }
}
