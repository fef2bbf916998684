//! `hy-agent`: the dom0 agent of the Xen test host (see `harness::agent`). dom0's
//! `run.sh` starts it with the payload disk at /mnt:
//!
//! ```text
//! hy-agent --payload /mnt [--plan FILE] [--results DIR]
//!          [--xl PATH] [--xentrace PATH] [--console-dir DIR] [--serial-dir DIR] [--call-limit S]
//! ```
//!
//! The tool and directory flags exist for the agent's own tests, which run it against
//! fake tools. Exit status: 0 when the plan ran to its end (whatever the guests did;
//! `results.json` says), 2 for a bad command line or an unreadable plan.
//!
//! On the KVM host, L1's payload starts each L2 itself and asks only for the network drive
//! ([`harness::agent::drive`]):
//!
//! ```text
//! hy-agent drive NET.json CONSOLE OUT.json SECONDS [PID]
//! ```
//!
//! `NET.json` is a `GuestNet` (address, serving line, plan); the `NetReport` goes to
//! `OUT.json`; the wait for the serving line ends early when process `PID` (the guest's
//! QEMU) is gone. Exit status 0 when the drive succeeded, 1 when it did not, 2 for bad input.

use harness::agent::{self, attempt::Context, xl::Tools};
use harness::xen::plan::{GuestNet, Plan};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: hy-agent --payload DIR [--plan FILE] [--results DIR] [--xl PATH] [--xentrace PATH] \
                     [--console-dir DIR] [--serial-dir DIR] [--call-limit SECONDS]";

/// `hy-agent drive NET.json CONSOLE OUT.json SECONDS [PID]`.
fn drive(args: &[String]) -> ExitCode {
    let (net, console, out, secs, pid) = match args {
        [n, c, o, s] => (n, c, o, s, None),
        [n, c, o, s, p] => (n, c, o, s, Some(p)),
        _ => {
            eprintln!("hy-agent: usage: hy-agent drive NET.json CONSOLE OUT.json SECONDS [PID]");
            return ExitCode::from(2);
        }
    };
    let Ok(secs) = secs.parse::<u64>() else {
        eprintln!("hy-agent: drive: '{secs}' is not a count of seconds");
        return ExitCode::from(2);
    };
    let net: GuestNet = match std::fs::read_to_string(net)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(n) => n,
        Err(e) => {
            eprintln!("hy-agent: ERROR: reading the network plan {net}: {e}");
            return ExitCode::from(2);
        }
    };
    let alive = || pid.is_none_or(|p| Path::new(&format!("/proc/{p}")).exists());
    let report = agent::drive::when_serving(&net, Path::new(console), Duration::from_secs(secs), alive);
    for e in &report.errors {
        println!("HY-AGENT: drive of {}: {e}", net.ip);
    }
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Err(e) = std::fs::write(out, text) {
        eprintln!("hy-agent: ERROR: writing {out}: {e}");
        return ExitCode::from(2);
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().map(String::as_str) == Some("drive") {
        return drive(&all[1..]);
    }
    let mut tools = Tools::dom0();
    let (mut payload, mut plan, mut results) = (None::<PathBuf>, None::<PathBuf>, None::<PathBuf>);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next().map(PathBuf::from) else {
            eprintln!("hy-agent: {flag} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "--payload" => payload = Some(value),
            "--plan" => plan = Some(value),
            "--results" => results = Some(value),
            "--xl" => tools.xl = value,
            "--xentrace" => tools.xentrace = value,
            "--console-dir" => tools.console_dir = value,
            "--serial-dir" => tools.serial_dir = value,
            "--call-limit" => match value.to_str().and_then(|v| v.parse().ok()) {
                Some(s) => tools.call_limit = std::time::Duration::from_secs(s),
                None => {
                    eprintln!("hy-agent: --call-limit takes seconds\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("hy-agent: unknown flag '{flag}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(payload) = payload else {
        eprintln!("hy-agent: --payload is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let plan_path = plan.unwrap_or_else(|| payload.join("plan.json"));
    let results = results.unwrap_or_else(|| payload.join("results"));
    let plan: Plan = match std::fs::read_to_string(&plan_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("hy-agent: ERROR: reading the plan {}: {e}", plan_path.display());
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&results) {
        eprintln!("hy-agent: ERROR: {}: {e}", results.display());
        return ExitCode::from(2);
    }
    let cx = Context { tools: &tools, payload: &payload, results: &results, trace: plan.trace };
    let r = agent::run(&plan, &cx);
    println!("HY-AGENT: done: {} guest(s), results in {}", r.guests.len(), results.join(agent::RESULTS_FILE).display());
    ExitCode::SUCCESS
}
