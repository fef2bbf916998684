//! The dom0 agent: runs a [`Plan`] on the Xen test host and writes typed [`RunResults`].
//!
//! It replaces the bash payload that came before it. For each guest, in plan order:
//! [`attempt::run`] boots it under `xentrace` with `xl create -F -p`, follows its
//! console, drives its network with [`crate::netbench`] (the client the QEMU host uses),
//! and [`verdict`] decides how it ended. An attempt runs again only when
//! [`Outcome::retry_reason`] allows it (the host's signature, never a guest's own
//! failure), and every attempt stays in the results with its files.
//!
//! Results are written after every guest, so a crash of the agent itself loses nothing
//! finished: started again (dom0's `run.sh` does that), it skips the guests that already
//! have a final attempt.
//!
//! - [`proc`]: child processes with deadlines.
//! - [`tail`]: following a console file.
//! - [`xl`]: the toolstack and tracer calls, and the lines of theirs the agent reads.
//! - [`attempt`]: one boot of one guest.
//! - [`verdict`]: the outcome from the evidence.
//! - [`drive`]: the network drive of a guest started by someone else (the KVM host's L1).

pub mod attempt;
pub mod drive;
pub mod proc;
pub mod tail;
pub mod verdict;
pub mod xl;

use crate::xen::plan::Plan;
use crate::xen::results::{GuestResult, Outcome, RunResults};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Name of the results file in the results directory.
pub const RESULTS_FILE: &str = "results.json";

/// Reads what an earlier, interrupted pass of the agent left, if anything.
fn earlier(results: &Path) -> RunResults {
    std::fs::read_to_string(results.join(RESULTS_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save(results: &Path, r: &RunResults) {
    let path = results.join(RESULTS_FILE);
    let tmp = results.join(format!("{RESULTS_FILE}.tmp"));
    if let Ok(text) = serde_json::to_string_pretty(r) {
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

fn note(r: &mut RunResults, msg: String) {
    println!("HY-AGENT: {msg}");
    r.notes.push(msg);
}

/// Brings up `xenbr0` with dom0's address, unless it is there already.
fn bridge(plan: &Plan, r: &mut RunResults) {
    let ip = |args: &[&str]| proc::run(Command::new("ip").args(args), Duration::from_secs(20));
    if ip(&["link", "show", "xenbr0"]).is_ok() {
        return;
    }
    let addr = format!("{}/{}", plan.bridge.ip, plan.bridge.prefix);
    for args in [
        &["link", "add", "xenbr0", "type", "bridge"][..],
        &["addr", "add", &addr, "dev", "xenbr0"],
        &["link", "set", "xenbr0", "up"],
    ] {
        if let Err(e) = ip(args) {
            note(r, format!("WARNING: setting up bridge xenbr0: ip {}: {e}", args.join(" ")));
            return;
        }
    }
}

/// Runs `plan`, writing results under `results`; returns them.
pub fn run(plan: &Plan, cx: &attempt::Context<'_>) -> RunResults {
    let mut r = earlier(cx.results);
    if !r.guests.is_empty() {
        note(&mut r, "started again after an interrupted pass (a dom0 failure): finished guests are kept".into());
    }
    // A pass that died may have left its xentrace holding the trace buffers.
    if let Some(pid) = attempt::leftover_tracer(cx.results) {
        let _ = proc::run(Command::new("kill").args(["-s", "INT", &pid.to_string()]), Duration::from_secs(10));
        note(&mut r, format!("stopped xentrace {pid}, left over from an earlier pass"));
        std::thread::sleep(Duration::from_secs(2));
    }
    if plan.guests.iter().any(|g| g.net.is_some()) {
        bridge(plan, &mut r);
    }
    for g in &plan.guests {
        let done = r
            .guests
            .iter()
            .find(|x| x.name == g.name)
            .and_then(GuestResult::last)
            .is_some_and(|a| a.retried_because.is_none() && !matches!(a.outcome, Outcome::Dom0Failure { .. }));
        if done {
            continue;
        }
        let mut result = r
            .guests
            .iter()
            .position(|x| x.name == g.name)
            .map(|i| r.guests.remove(i))
            .unwrap_or(GuestResult { name: g.name.clone(), attempts: Vec::new() });
        match cx.tools.exists(&g.name) {
            Ok(false) => {}
            Ok(true) => {
                note(&mut r, format!("{}: left over from an interrupted pass; destroying it", g.name));
                let _ = cx.tools.xl(&["destroy", &g.name]);
            }
            Err(e) => note(&mut r, format!("{}: WARNING: xl domid: {e}", g.name)),
        }
        loop {
            let number = result.attempts.len() as u32 + 1;
            let mut a = attempt::run(cx, g, number);
            let again = a.outcome.retry_reason().filter(|_| number < plan.max_attempts);
            a.retried_because = again.clone();
            result.attempts.push(a);
            r.guests.push(result.clone());
            save(cx.results, &r);
            r.guests.pop();
            match again {
                Some(why) => println!("HY-AGENT: {}: running it again: {why}", g.name),
                None => break,
            }
        }
        r.guests.push(result);
        save(cx.results, &r);
    }
    // Plan order, whatever order earlier passes left.
    r.guests.sort_by_key(|x| plan.guests.iter().position(|g| g.name == x.name).unwrap_or(usize::MAX));
    save(cx.results, &r);
    r
}
