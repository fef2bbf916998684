//! The dom0 agent (`hy-agent`) on this machine, against fake `xl` and `xentrace`
//! (`tests/data/fake-xen/`): that it finishes what finishes, retries only the host's
//! signature, never a guest's own failure, and that a hang, a dom0 program killed
//! mid-run or a tool that hangs ends within its deadline with an error naming the guest
//! and the step. The same agent runs every guest on the real Xen host.

use harness::xen::plan::{Action, BridgeAddr, ConsoleKind, GuestPlan, LineMatch, Plan, TraceSettings};
use harness::xen::results::{DeathCause, GuestResult, Outcome, RunResults};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Fake {
    dir: PathBuf,
}

impl Fake {
    fn new(test: &str) -> Fake {
        let dir = std::env::temp_dir().join(format!("hy-agent-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["payload", "results", "console", "state", "bin"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fake-xen");
        for tool in ["xl", "xentrace"] {
            std::fs::copy(src.join(tool), dir.join("bin").join(tool)).unwrap();
        }
        Fake { dir }
    }

    fn guest(&self, name: &str, scenario: &str, timeout_s: u32) -> GuestPlan {
        let cfg = format!("{name}.cfg");
        std::fs::write(self.dir.join("payload").join(&cfg), format!("{scenario}\n")).unwrap();
        GuestPlan {
            name: name.into(),
            config: cfg,
            overrides: vec![],
            console: ConsoleKind::Pv,
            ready: LineMatch::Prefix("READY ".into()),
            done: LineMatch::Exact("DONE".into()),
            timeout_s,
            net: None,
            actions: vec![],
            trace_classes: 0,
        }
    }

    /// Runs the agent on `guests`; returns the results and how long it took.
    fn run(&self, guests: Vec<GuestPlan>, max_attempts: u32) -> (RunResults, Duration) {
        let plan = Plan {
            guests,
            bridge: BridgeAddr { ip: Ipv4Addr::new(10, 0, 0, 1), prefix: 24 },
            trace: TraceSettings::default(),
            max_attempts,
        };
        let plan_path = self.dir.join("payload/plan.json");
        std::fs::write(&plan_path, serde_json::to_string(&plan).unwrap()).unwrap();
        let d = |p: &str| self.dir.join(p);
        let t0 = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_hy-agent"))
            .arg("--payload")
            .arg(d("payload"))
            .arg("--results")
            .arg(d("results"))
            .arg("--xl")
            .arg(d("bin/xl"))
            .arg("--xentrace")
            .arg(d("bin/xentrace"))
            .arg("--console-dir")
            .arg(d("console"))
            .arg("--serial-dir")
            .arg(d("console"))
            .args(["--call-limit", "2"])
            .env("FAKE_XEN", d("state"))
            .env("FAKE_CONSOLE", d("console"))
            .output()
            .unwrap();
        let took = t0.elapsed();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "agent failed: {log}{}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(d("results/results.json")).unwrap_or_else(|e| panic!("{e}: {log}"));
        (serde_json::from_str(&text).unwrap(), took)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn only(r: &RunResults) -> &GuestResult {
    assert_eq!(r.guests.len(), 1, "{r:?}");
    &r.guests[0]
}

#[test]
fn a_guest_that_finishes_is_finished_with_its_timings_and_trace() {
    let f = Fake::new("normal");
    let (r, _) = f.run(vec![f.guest("g", "normal", 30)], 3);
    let g = only(&r);
    assert_eq!(g.attempts.len(), 1);
    let a = &g.attempts[0];
    assert_eq!(a.outcome, Outcome::Finished);
    assert!(a.trace_complete && a.trace_file.as_deref() == Some("g.1.trace"), "{a:?}");
    let t = a.timing;
    let (first, ready, done, gone) = (t.first_line.unwrap(), t.ready.unwrap(), t.done.unwrap(), t.gone.unwrap());
    assert!(t.created.unwrap() <= first && first <= ready && ready <= done && done <= gone, "{t:?}");
    let console = std::fs::read_to_string(f.dir.join("results/g.1.out")).unwrap();
    assert!(console.starts_with("MODE ") && console.contains("READY boot_ns=1000\nDONE"), "{console}");
}

#[test]
fn a_kernel_panic_is_never_retried_even_with_a_triple_fault_logged() {
    let f = Fake::new("panic");
    let (r, _) = f.run(vec![f.guest("g", "panic", 30)], 3);
    let g = only(&r);
    assert_eq!(g.attempts.len(), 1, "{g:?}");
    match &g.attempts[0].outcome {
        Outcome::Died { cause: DeathCause::Reported { lines } } => {
            assert_eq!(lines, &["PANIC: panicked at kernel/src/entry.rs:1:1:"])
        }
        o => panic!("{o:?}"),
    }
    assert!(g.retry_reasons().is_empty());
}

#[test]
fn a_triple_fault_with_a_silent_console_is_retried_and_every_attempt_kept() {
    let f = Fake::new("tf-once");
    let (r, _) = f.run(vec![f.guest("g", "triple-fault-once", 30)], 3);
    let g = only(&r);
    assert_eq!(g.attempts.len(), 2, "{g:?}");
    assert!(matches!(g.attempts[0].outcome, Outcome::Died { cause: DeathCause::TripleFault { .. } }));
    assert!(g.attempts[0].retried_because.as_deref().unwrap().contains("triple fault"));
    assert_eq!(g.attempts[1].outcome, Outcome::Finished);
    assert!(g.attempts[0].xen_log.iter().any(|l| l.contains("Triple fault")));
    assert!(f.dir.join("results/g.1.out").exists() && f.dir.join("results/g.2.out").exists());

    let f = Fake::new("tf-always");
    let (r, _) = f.run(vec![f.guest("g", "triple-fault", 30)], 3);
    let g = only(&r);
    assert_eq!(g.attempts.len(), 3, "at most max_attempts: {g:?}");
    assert!(g.last().unwrap().retried_because.is_none());
}

#[test]
fn a_silent_death_is_unexplained_and_not_retried() {
    let f = Fake::new("silent");
    let (r, _) = f.run(vec![f.guest("g", "silent", 30)], 3);
    assert_eq!(only(&r).attempts.len(), 1);
    assert_eq!(only(&r).attempts[0].outcome, Outcome::Died { cause: DeathCause::Unexplained });
}

#[test]
fn a_hung_guest_is_destroyed_at_its_deadline() {
    let f = Fake::new("hang");
    let (r, took) = f.run(vec![f.guest("g", "hang", 4), f.guest("h", "normal", 30)], 3);
    assert!(took < Duration::from_secs(25), "took {took:?}");
    let g = &r.guests[0];
    assert_eq!(g.attempts.len(), 1);
    match &g.attempts[0].outcome {
        Outcome::Hung { waiting_for } => assert!(waiting_for.contains("DONE"), "{waiting_for}"),
        o => panic!("{o:?}"),
    }
    assert_eq!(r.guests[1].attempts[0].outcome, Outcome::Finished, "the next guest still runs");
}

#[test]
fn a_dom0_program_killed_mid_run_names_the_step_and_is_retried() {
    let f = Fake::new("killed");
    let (r, took) = f.run(vec![f.guest("g", "monitor-killed", 30)], 2);
    assert!(took < Duration::from_secs(25), "took {took:?}");
    let g = only(&r);
    assert_eq!(g.attempts.len(), 2, "{g:?}");
    match &g.attempts[1].outcome {
        Outcome::Dom0Failure { step, detail } => {
            assert!(step.contains("monitor") && detail.contains("SIGKILL"), "{step}: {detail}")
        }
        o => panic!("{o:?}"),
    }
    let f = Fake::new("tracer");
    let (r, _) = f.run(vec![f.guest("g", "tracer-dies", 30)], 1);
    match &only(&r).attempts[0].outcome {
        Outcome::Dom0Failure { step, .. } => assert_eq!(step, "xentrace"),
        o => panic!("{o:?}"),
    }
    assert!(!only(&r).attempts[0].trace_complete);
}

#[test]
fn a_hanging_tool_is_bounded_and_named() {
    let f = Fake::new("dmesg");
    std::fs::write(f.dir.join("state/dmesg-hangs"), "").unwrap();
    let (r, took) = f.run(vec![f.guest("g", "normal", 30)], 1);
    assert!(took < Duration::from_secs(20), "took {took:?}");
    match &only(&r).attempts[0].outcome {
        Outcome::Dom0Failure { step, detail } => {
            assert_eq!(step, "xl dmesg -c");
            assert!(detail.contains("still running after 2s"), "{detail}");
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn actions_run_once_when_their_line_appears() {
    let f = Fake::new("actions");
    let mut g = f.guest("g", "normal", 30);
    let xl = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    g.actions = vec![Action {
        on: LineMatch::Prefix("READY ".into()),
        xl: vec![xl(&["pause", "{name}"]), xl(&["network-detach", "{name}", "0"]), xl(&["unpause", "{name}"])],
    }];
    let (r, _) = f.run(vec![g], 1);
    let a = &only(&r).attempts[0];
    assert_eq!(a.outcome, Outcome::Finished);
    // Each with how long it took: "xl pause g (0.0 s): ok".
    let untimed: Vec<String> = a
        .actions
        .iter()
        .map(|x| {
            let (cmd, rest) = x.split_once(" (").unwrap_or_else(|| panic!("no time in {x}"));
            let (secs, result) = rest.split_once(" s): ").unwrap_or_else(|| panic!("no time in {x}"));
            assert!(secs.parse::<f64>().is_ok_and(|t| t < 5.0), "a fake xl call took {secs} s: {x}");
            format!("{cmd}: {result}")
        })
        .collect();
    assert_eq!(untimed, ["xl pause g: ok", "xl network-detach g 0: ok", "xl unpause g: ok"]);
    let calls = std::fs::read_to_string(f.dir.join("state/calls")).unwrap();
    // The agent's own unpause first, then the action's three commands, once.
    assert_eq!(calls, "unpause g\npause g\nnetwork-detach g 0\nunpause g\n");
}
