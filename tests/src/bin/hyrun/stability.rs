//! `hyrun --host xen --boots N [--busy]`: how often a guest dies on the test host. Each
//! variant of ours and the Linux PVH peer boot N times each, interleaved, in one boot of
//! the host, with **no retries**; every failure is classified by the agent's rule (a
//! failure the guest reported, a triple fault Xen logged, a hang, a dom0 failure). With
//! `--busy`, one competing busy process runs on this machine throughout, as CI's and
//! users' machines are not idle. `HY_L0_CPUS` (1, 2) and `HY_TCG_THREAD` (single, multi)
//! pick the L0 setting. Our failure rate above the peer's is our bug until shown otherwise.

use super::report::write_json;
use super::Args;
use harness::paths;
use harness::xen::guests::{Guest, Variant};
use harness::xen::host::RunOptions;
use harness::xen::plan::TraceSettings;
use harness::xen::results::{DeathCause, Outcome};
use harness::xen::run::{run_plan, GuestRun, RunEnd};
use proto::cmdline::BenchSet;
use serde_json::json;
use std::collections::BTreeMap;
use std::process::{Child, Command};

/// A busy loop in a process of its own, killed when dropped.
struct Busy(Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kind(o: Option<&Outcome>) -> &'static str {
    match o {
        Some(Outcome::Finished) => "finished",
        Some(Outcome::Died { cause: DeathCause::TripleFault { .. } }) => "triple fault (host's signature)",
        Some(Outcome::Died { cause: DeathCause::Reported { .. } }) => "reported its own failure",
        Some(Outcome::Died { cause: DeathCause::Unexplained }) => "died unexplained",
        Some(Outcome::Hung { .. }) => "hung",
        Some(Outcome::CreateFailed { .. }) => "xl create failed",
        Some(Outcome::Dom0Failure { .. }) => "dom0 failure",
        None => "never ran",
    }
}

/// Runs the stability measurement.
pub fn run(a: &Args, boots: u32, busy: bool) -> Result<(), String> {
    let bench = BenchSet::NONE.with("cpuid", true).with("interrupt", true).with("timer", true);
    let variants = [Variant::HVM, Variant::HYBRID, Variant::HYBRID_PERCPU, Variant::PVH];
    let mut guests = Vec::new();
    for i in 1..=boots {
        for v in variants {
            let mut g = Guest::kernel(v, bench, "");
            g.plan.name = format!("{}-{i}", g.plan.name);
            g.plan.timeout_s = 240;
            guests.push(g);
        }
        let mut l = Guest::linux();
        l.plan.name = format!("linux-pvh-{i}");
        guests.push(l);
    }
    // The L0 settings run-host.sh reads (its defaults: one CPU, multi-threaded TCG).
    let threading = std::env::var("HY_TCG_THREAD").unwrap_or_else(|_| "multi".into());
    let cpus = std::env::var("HY_L0_CPUS").unwrap_or_else(|_| "1".into());
    let threading = format!("smp{cpus}-{threading}");
    let load = if busy { "busy" } else { "idle" };
    let _busy = if busy {
        let c =
            Command::new("sh").args(["-c", "while :; do :; done"]).spawn().map_err(|e| format!("busy loop: {e}"))?;
        eprintln!("==> one competing busy process (pid {}) runs on this machine throughout", c.id());
        Some(Busy(c))
    } else {
        None
    };
    eprintln!("==> {} boots, no retries, L0 {threading}, build machine {load}", guests.len());
    let timeout = 600 + 90 * guests.len() as u32;
    let work = paths::logs().join(format!("xen-stability-{threading}-{load}"));
    // No retries; and the smaller trace mask (exits and phases, no handler records): the
    // question is whether guests and xentrace survive, not what they cost.
    let trace = TraceSettings { mask: 0x080a_9000, pages_per_cpu: 256 };
    let opts = RunOptions { timeout_s: timeout, max_attempts: 1, trace, ..RunOptions::new(timeout) };
    // A freeze in the last boot fails the measurement: its rates need every boot.
    let runs = run_plan(&work, &a.kernel, &guests, &opts).and_then(RunEnd::complete).map_err(|e| e.to_string())?;

    // Kind of guest -> outcome kind -> count, and the failures themselves.
    let mut table: BTreeMap<String, BTreeMap<&str, u32>> = BTreeMap::new();
    let mut failures = Vec::new();
    for g in &runs {
        let who = g.guest.variant().map_or("linux-pvh".to_string(), |v| v.label.to_string());
        let k = kind(g.outcome());
        *table.entry(who.clone()).or_default().entry(k).or_insert(0) += 1;
        if k != "finished" {
            failures.push(describe(g));
        }
        if g.trace_problem.is_some() && g.outcome() == Some(&Outcome::Finished) {
            failures.push(format!("{}: finished, but {}", g.name(), g.trace_problem.as_deref().unwrap_or("")));
        }
    }
    println!("\nstability: {boots} boots of each, no retries, L0 {threading}, build machine {load}");
    for (who, kinds) in &table {
        let n: u32 = kinds.values().sum();
        let bad = n - kinds.get("finished").copied().unwrap_or(0);
        println!("  {who:<16} {bad}/{n} failed ({:.0} %): {kinds:?}", 100.0 * f64::from(bad) / f64::from(n.max(1)));
    }
    for f in &failures {
        println!("  - {f}");
    }
    let doc = json!({
        "boots_each": boots, "l0": threading, "build_machine": load,
        "outcomes": table, "failures": failures,
    });
    let path = write_json(&a.results, &format!("xen-stability-{threading}-{load}"), &doc)?;
    println!("results written to {}", path.display());
    Ok(())
}

/// One failed boot: how it ended and the evidence (Xen's lines about it).
fn describe(g: &GuestRun) -> String {
    let Some(a) = g.last() else { return format!("{}: never ran", g.name()) };
    let xen: Vec<&String> =
        a.xen_log.iter().filter(|l| !l.starts_with("(d")).filter(|l| !l.contains(" save: ")).take(8).collect();
    let last = g.lines.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_default();
    format!(
        "{} (d{}): {}; last console line {last:?}; Xen: {xen:?}",
        g.name(),
        a.domid.unwrap_or(0),
        a.outcome.describe()
    )
}
