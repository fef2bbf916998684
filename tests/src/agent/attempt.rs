//! One boot of one guest: trace on, `xl create -F -p`, unpause, follow the console, drive
//! the network when the guest serves it, and collect everything once the domain is gone
//! or its deadline has passed. Every wait here has a deadline and every failure names
//! its step; [`super::verdict`] turns what was seen into the outcome.

use super::proc::{self, StepError};
use super::tail::FileTail;
use super::verdict::{self, Evidence};
use super::xl::{self, Tools};
use crate::netbench::{self, Endpoints, NetReport};
use crate::xen::plan::{Action, ConsoleKind, GuestPlan, TraceSettings};
use crate::xen::results::{Attempt, Outcome, Timing};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What every attempt shares.
pub struct Context<'a> {
    /// The tools.
    pub tools: &'a Tools,
    /// The payload disk (xl configs are relative to it).
    pub payload: &'a Path,
    /// Where results go.
    pub results: &'a Path,
    /// How guests are traced.
    pub trace: TraceSettings,
}

/// How long `xl create` may take to build the paused domain (an HVM guest starts qemu-dm).
const CREATE_LIMIT: Duration = Duration::from_secs(120);
/// How long xentrace gets to map its buffers before the guest starts.
const TRACE_SETTLE: Duration = Duration::from_secs(1);
/// How long xentrace gets to flush and exit after SIGINT.
const TRACE_STOP: Duration = Duration::from_secs(30);
/// How long a network drive may outlive its guest's deadline.
const NET_GRACE: Duration = Duration::from_secs(90);
/// Console poll period.
const POLL: Duration = Duration::from_millis(20);
/// The running xentrace's pid, in the results directory, for a restarted agent to stop.
const TRACER_PID: &str = "xentrace.pid";

/// The xentrace an interrupted pass left running, if it is still there.
pub fn leftover_tracer(results: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(results.join(TRACER_PID)).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline).contains("xentrace").then_some(pid)
}

fn say(msg: &str) {
    println!("HY-AGENT: {msg}");
    let _ = std::io::stdout().flush();
}

/// A guest's console lines and the times of its milestones.
struct Watch<'g> {
    g: &'g GuestPlan,
    t0: Instant,
    lines: Vec<String>,
    timing: Timing,
    serving: bool,
    failures: Vec<String>,
}

impl Watch<'_> {
    fn take(&mut self, seen: Vec<super::tail::SeenLine>) {
        for l in seen {
            let at = Some(l.at.saturating_duration_since(self.t0).as_secs_f64());
            if self.timing.first_line.is_none() && !l.text.trim().is_empty() {
                self.timing.first_line = at;
            }
            if self.timing.ready.is_none() && self.g.ready.matches(&l.text) {
                self.timing.ready = at;
            }
            if self.timing.done.is_none() && self.g.done.matches(&l.text) {
                self.timing.done = at;
            }
            if self.g.net.as_ref().is_some_and(|n| n.serving.matches(&l.text)) {
                self.serving = true;
            }
            if verdict::is_failure_line(&l.text) {
                self.failures.push(l.text.clone());
            }
            self.lines.push(l.text);
        }
    }
}

fn fail(step: &str, e: &StepError) -> Outcome {
    if e.is_dom0_failure() {
        Outcome::Dom0Failure { step: step.into(), detail: e.to_string() }
    } else {
        Outcome::CreateFailed { detail: format!("{step}: {e}") }
    }
}

/// Runs attempt `number` of guest `g`.
pub fn run(cx: &Context<'_>, g: &GuestPlan, number: u32) -> Attempt {
    let stem = format!("{}.{number}", g.name);
    let file = |ext: &str| format!("{stem}.{ext}");
    let mut a = Attempt {
        number,
        domid: None,
        outcome: Outcome::Finished,
        retried_because: None,
        timing: Timing::default(),
        console_file: file("out"),
        all_output_file: file("console"),
        trace_file: Some(file("trace")),
        trace_complete: false,
        xen_log: Vec::new(),
        net: None,
        actions: Vec::new(),
    };
    say(&format!("{}: attempt {number}", g.name));
    // Xen's ring from before this guest is kept for the record, then emptied.
    match cx.tools.dmesg(true) {
        Ok(text) => append(&cx.results.join("xen-dmesg-between-guests.txt"), &format!("== before {stem}\n{text}")),
        Err(e) => return finish(cx, a, Evidence { decided: Some(fail("xl dmesg -c", &e)), ..Default::default() }),
    }
    let console_path = match g.console {
        ConsoleKind::Pv => cx.tools.pv_console(&g.name),
        ConsoleKind::Serial => cx.tools.serial_file(&g.name),
    };
    let _ = std::fs::remove_file(cx.tools.pv_console(&g.name));
    let _ = std::fs::remove_file(cx.tools.serial_file(&g.name));

    let trace_log = cx.results.join(file("xentrace.log"));
    let said = || std::fs::read_to_string(&trace_log).unwrap_or_default().lines().last().unwrap_or("").to_string();
    let mut trace = match cx.tools.start_trace(
        &cx.results.join(file("trace")),
        cx.trace.mask | g.trace_classes,
        cx.trace.pages_per_cpu,
        &trace_log,
    ) {
        Ok(c) => c,
        Err(e) => return finish(cx, a, Evidence { decided: Some(fail("xentrace", &e)), ..Default::default() }),
    };
    let pid_file = cx.results.join(TRACER_PID);
    let _ = std::fs::write(&pid_file, trace.id().to_string());
    std::thread::sleep(TRACE_SETTLE);
    if let Ok(Some(s)) = trace.try_wait() {
        let detail = format!("exited before the guest started ({s}): {}", said());
        return finish(
            cx,
            a,
            Evidence { decided: Some(Outcome::Dom0Failure { step: "xentrace".into(), detail }), ..Default::default() },
        );
    }

    let (ev, net) = boot(cx, g, &mut a, &console_path, &file("xl.log"));
    a.net = net;
    let mut ev = ev;
    // The trace covers the attempt only if xentrace was still running now.
    match trace.try_wait() {
        Ok(Some(s)) => ev.trace_broken = Some(format!("exited while the guest ran ({s}): {}", said())),
        _ => {
            proc::signal(&trace, "INT");
            match proc::wait_until(&mut trace, Instant::now() + TRACE_STOP) {
                Some(_) => a.trace_complete = true,
                None => ev.trace_broken = Some(format!("did not stop within {TRACE_STOP:?} of SIGINT; killed")),
            }
        }
    }
    let _ = std::fs::remove_file(&pid_file);
    // What Xen logged about the domain: its 0xe9 lines and any triple fault.
    if let Some(domid) = a.domid {
        match cx.tools.dmesg(false) {
            Ok(text) => a.xen_log = xl::domain_lines(&text, domid),
            Err(e) => say(&format!("{}: WARNING: xl dmesg failed: {e}", g.name)),
        }
    }
    ev.triple_fault = xl::triple_fault(&a.xen_log).cloned();
    let all = format!(
        "### Xen's log about the domain\n{}\n### serial\n{}\n### PV console\n{}\n",
        a.xen_log.join("\n"),
        std::fs::read_to_string(cx.tools.serial_file(&g.name)).unwrap_or_default(),
        std::fs::read_to_string(cx.tools.pv_console(&g.name)).unwrap_or_default()
    );
    let _ = std::fs::write(cx.results.join(&a.all_output_file), all);
    finish(cx, a, ev)
}

fn finish(cx: &Context<'_>, mut a: Attempt, ev: Evidence) -> Attempt {
    if !a.trace_complete {
        if let Some(t) = a.trace_file.take() {
            let _ = std::fs::rename(cx.results.join(&t), cx.results.join(format!("{t}.incomplete")));
        }
    }
    a.outcome = verdict::judge(ev);
    say(&format!("attempt {}: {} (timing {:?})", a.number, a.outcome.describe(), a.timing));
    a
}

/// Creates, runs and follows the domain until it is gone or its deadline passed.
fn boot(
    cx: &Context<'_>,
    g: &GuestPlan,
    a: &mut Attempt,
    console: &Path,
    xl_log: &str,
) -> (Evidence, Option<NetReport>) {
    let mut ev = Evidence::default();
    let mut overrides = vec![format!("name=\"{}\"", g.name)];
    if g.console == ConsoleKind::Serial {
        overrides.push(format!("serial=\"file:{}\"", console.display()));
    }
    overrides.extend(g.overrides.iter().cloned());
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(u64::from(g.timeout_s));
    let log_path = cx.results.join(xl_log);
    let mut xl = match cx.tools.create_foreground(&cx.payload.join(&g.config), &overrides, &log_path) {
        Ok(c) => c,
        Err(e) => return (Evidence { decided: Some(fail("xl create", &e)), ..ev }, None),
    };
    // The domain exists, paused, once xl says whose death it waits for.
    let mut xl_lines = FileTail::new(log_path);
    let created_by = t0 + CREATE_LIMIT;
    while a.domid.is_none() {
        a.domid = xl_lines.poll().iter().find_map(|l| xl::waiting_domid(&l.text));
        if a.domid.is_some() {
            break;
        }
        if let Ok(Some(s)) = xl.try_wait() {
            let e = proc::judge(s, &tail_text(xl_lines.finish()));
            let e = e.err().unwrap_or(StepError::Status(0, "xl ended before creating the domain".into()));
            return (Evidence { decided: Some(fail("xl create", &e)), ..ev }, None);
        }
        if Instant::now() >= created_by {
            stop_domain(cx.tools, &g.name, &mut xl);
            let e = StepError::Timeout(CREATE_LIMIT);
            return (Evidence { decided: Some(fail("xl create (building the paused domain)", &e)), ..ev }, None);
        }
        std::thread::sleep(POLL);
    }
    a.timing.created = Some(t0.elapsed().as_secs_f64());
    if let Err(e) = cx.tools.xl(&["unpause", &g.name]) {
        stop_domain(cx.tools, &g.name, &mut xl);
        return (Evidence { decided: Some(fail("xl unpause", &e)), ..ev }, None);
    }

    let mut w = Watch { g, t0, lines: Vec::new(), timing: a.timing, serving: false, failures: Vec::new() };
    let mut pending: Vec<&Action> = g.actions.iter().collect();
    let mut tail = FileTail::new(console.to_path_buf());
    let mut net: Option<mpsc::Receiver<NetReport>> = None;
    let xl_status = loop {
        let seen = tail.poll();
        pending.retain(|action| {
            if !seen.iter().any(|l| action.on.matches(&l.text)) {
                return true;
            }
            for cmd in &action.xl {
                let args: Vec<String> = cmd.iter().map(|a| a.replace("{name}", &g.name)).collect();
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                let started = Instant::now();
                let result = cx.tools.xl(&refs).map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string());
                // How long it took: a device removal that waited for its timeout shows.
                let took = started.elapsed().as_secs_f64();
                say(&format!("{}: action: xl {} ({took:.1} s): {result}", g.name, args.join(" ")));
                a.actions.push(format!("xl {} ({took:.1} s): {result}", args.join(" ")));
            }
            false
        });
        w.take(seen);
        if let (true, None, Some(n)) = (w.serving, &net, &g.net) {
            let (tx, rx) = mpsc::channel();
            let (ep, plan) = (Endpoints::direct(n.ip), n.plan.clone());
            say(&format!("{}: serving; driving its network from dom0", g.name));
            std::thread::spawn(move || {
                let _ = tx.send(netbench::drive(&ep, &plan));
            });
            net = Some(rx);
        }
        if let Ok(Some(s)) = xl.try_wait() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let waiting_for = if w.timing.ready.is_none() { &g.ready } else { &g.done };
            ev.decided = Some(Outcome::Hung { waiting_for: format!("{waiting_for:?}") });
            stop_domain(cx.tools, &g.name, &mut xl);
            break None;
        }
        std::thread::sleep(POLL);
    };
    w.take(tail.finish());
    w.timing.gone = Some(t0.elapsed().as_secs_f64());
    // xl's monitor ended: normally because the domain is gone; if xl itself crashed, the
    // domain may still be there (shut down or running) and must go before the next guest.
    if let Some(s) = xl_status {
        if let Err(e) = proc::judge(s, "") {
            let gone = cx.tools.exists(&g.name).map(|there| !there).unwrap_or(false);
            if !gone {
                stop_domain(cx.tools, &g.name, &mut xl);
            }
            if w.timing.done.is_none() {
                ev.decided = Some(fail("xl create -F (the domain's monitor)", &e));
            } else {
                say(&format!("{}: WARNING: xl's domain monitor {e}, after the guest finished", g.name));
            }
        }
    }
    let report = net.and_then(|rx| {
        let left = deadline.saturating_duration_since(Instant::now()) + NET_GRACE;
        rx.recv_timeout(left)
            .map_err(|_| say(&format!("{}: WARNING: its network drive did not end in time", g.name)))
            .ok()
    });
    let _ = std::fs::write(cx.results.join(&a.console_file), w.lines.join("\n") + "\n");
    a.timing = w.timing;
    ev.done = w.timing.done.is_some();
    ev.failure_lines = w.failures;
    (ev, report)
}

/// Destroys domain `name` and reaps its xl monitor, bounded.
fn stop_domain(tools: &Tools, name: &str, xl: &mut Child) {
    if let Err(e) = tools.xl(&["destroy", name]) {
        say(&format!("{name}: WARNING: xl destroy: {e}"));
    }
    proc::wait_until(xl, Instant::now() + Duration::from_secs(30));
}

fn tail_text(lines: Vec<super::tail::SeenLine>) -> String {
    let n = lines.len();
    lines.into_iter().skip(n.saturating_sub(10)).map(|l| l.text).collect::<Vec<_>>().join("\n")
}

fn append(path: &PathBuf, text: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
    }
}
