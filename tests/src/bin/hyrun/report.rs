//! What `hyrun --host xen` prints and writes: every guest's attempts (retries and their
//! reasons), the benchmark grid with total exits per operation first, the interrupt
//! cost against hvm from totals, boot time against Linux on the same console kind, and the
//! JSON files. The network table is [`super::network`]'s; what an incomplete run adds to
//! each is [`super::cut`]'s.

use harness::table::render_grid;
use harness::xen::cost::{rate, ExitCost, InterruptCost, GUEST_CAUSED_RULE};
use harness::xen::plan::ConsoleKind;
use harness::xen::run::{GuestRun, Incomplete, Missing};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Writes `value` to `dir/name.json`.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

fn label(g: &GuestRun) -> String {
    g.guest.variant().map_or_else(|| g.name().to_string(), |v| v.label.to_string())
}

/// Every guest's attempts: how each ended and why any was run again, over every boot of
/// the host (an attempt lost to a host freeze is shown as such); for an incomplete run
/// also the guests that never ended, each with why.
pub fn attempts(runs: &[GuestRun], incomplete: Option<&Incomplete>) -> String {
    let header: Vec<String> =
        ["guest", "boot", "attempts", "outcome (last attempt)", "earlier attempts (why each ran again)"]
            .map(String::from)
            .to_vec();
    let mut rows: Vec<Vec<String>> = runs
        .iter()
        .map(|g| {
            let mut history = g.history();
            history.pop();
            vec![
                g.name().to_string(),
                g.boot.to_string(),
                g.attempt_count().to_string(),
                g.outcome().map_or("never ran".into(), |o| o.describe()),
                history.join("; "),
            ]
        })
        .collect();
    let missing: &[Missing] = incomplete.map_or(&[], |i| &i.missing);
    rows.extend(missing.iter().map(|m| {
        let mut history = m.history();
        if m.was_running() {
            history.pop();
        }
        vec![m.name().to_string(), m.boot.to_string(), m.attempt_count().to_string(), m.why(), history.join("; ")]
    }));
    let mut title = String::from("guests: every attempt is kept (see the agent's results.json of each boot)");
    if runs.iter().any(|g| g.boot > 1) || incomplete.is_some_and(|i| i.boot > 1) {
        title.push_str("\nthe nested host froze: the guests of a frozen boot whose attempts had ended are kept, the others ran in a later boot");
    }
    if let Some(i) = incomplete {
        title.push_str(&format!(
            "\nTHE RUN IS INCOMPLETE: {}; {} guest(s) never ended and have no results",
            i.describe(),
            i.missing.len()
        ));
    }
    render_grid(&title, &header, &rows)
}

/// The trace parser's warnings, per guest.
pub fn trace_warnings(runs: &[GuestRun]) {
    for g in runs {
        for w in g.trace.as_ref().map(|t| t.warnings()).unwrap_or_default() {
            eprintln!("warning: {} trace: {w}", g.name());
        }
    }
}

/// `g`'s exits per operation in `bench` (total = by reason; hypercalls for a PV guest), or
/// why there are none.
pub(crate) fn exits(g: &GuestRun, bench: &str) -> String {
    if is_pv(g) {
        return hypercalls(g, bench);
    }
    match (g.phase(bench).and_then(ExitCost::of), &g.trace) {
        (Some(c), _) => c.describe(),
        (None, None) => "NO TRACE".into(),
        (None, Some(_)) => "no phase".into(),
    }
}

/// Whether `g` is a classic PV guest: no VM exits, its cost is hypercalls.
fn is_pv(g: &GuestRun) -> bool {
    g.guest.variant().is_some_and(|v| v.opts.mode == proto::cmdline::Mode::Pv)
}

/// A PV guest's hypercalls per operation in `bench`'s phase (total = by number), and its
/// VM exits, which must be none.
fn hypercalls(g: &GuestRun, bench: &str) -> String {
    let Some(p) = g.phase(bench) else {
        return if g.trace.is_some() { "no phase".into() } else { "NO TRACE".into() };
    };
    let Some(total) = p.hypercalls_per_op() else { return "no ops".into() };
    let n = p.iterations as f64;
    let by: Vec<String> =
        p.hypercalls.iter().map(|(op, c)| format!("{} {:.2}", hypercall_name(*op), *c as f64 / n)).collect();
    let mut out = format!("{total:.2} hc");
    if !by.is_empty() {
        out.push_str(&format!(" = {}", by.join(" + ")));
    }
    if p.total_exits != 0 {
        out.push_str(&format!("; {} VM exits!", p.total_exits));
    }
    out
}

/// Names of the hypercalls a PV guest of this kernel makes (`xen.h`).
fn hypercall_name(op: u32) -> String {
    match op {
        1 => "mmu_update".into(),
        14 => "update_va_mapping".into(),
        17 => "xen_version".into(),
        23 => "iret".into(),
        24 => "vcpu_op".into(),
        29 => "sched_op".into(),
        32 => "event_channel_op".into(),
        26 => "mmuext_op".into(),
        n => format!("hypercall {n}"),
    }
}

/// Benchmarks in the order they were printed: each variant's value and its exits per
/// operation (total = reasons).
pub fn benchmarks(ours: &[&GuestRun]) -> String {
    let mut header = vec!["benchmark".to_string(), "unit".to_string()];
    for g in ours {
        header.push(label(g));
        header
            .push(if is_pv(g) { "hypercalls/op (PV: no VM exits)" } else { "exits/op: total = by reason" }.to_string());
    }
    let mut names: Vec<&str> = Vec::new();
    for g in ours {
        for b in &g.summary.benches {
            if !names.contains(&b.name.as_str()) {
                names.push(&b.name);
            }
        }
    }
    let mut grid = Vec::new();
    for name in names {
        let mut row = vec![name.to_string(), String::new()];
        for g in ours {
            match g.summary.bench(name) {
                Some(b) => {
                    row[1] = b.unit.clone();
                    row.push(format!("{:.1}", b.value));
                    row.push(exits(g, name));
                }
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
        }
        grid.push(row);
    }
    let mut title = String::from("host=xen (Xen 4.17 nested under QEMU TCG): every exit recorded in a phase counts");
    for g in ours {
        title.push_str(&format!(
            "\n{}: {}",
            g.name(),
            g.summary.mode.as_ref().map(ToString::to_string).unwrap_or_default()
        ));
    }
    render_grid(&title, &header, &grid)
}

fn interrupt_cost(g: &GuestRun) -> Option<InterruptCost> {
    InterruptCost::of(g.phase("interrupt")?, g.phase("interrupt_raise")?)
}

/// The claim in numbers: exits per interrupt (total = raise + delivery and
/// acknowledgement), VINTR and EOI exits, cycles and time, against hvm; ratios of totals.
pub fn interrupts(ours: &[&GuestRun]) {
    let hvm = ours.iter().find(|g| label(g) == "hvm").and_then(|g| interrupt_cost(g));
    let ratio = |v: f64, base: Option<f64>| match base {
        Some(b) if b > 0.0 => format!(" (x{:.2})", v / b),
        _ => String::new(),
    };
    println!("\ninterrupt: exits per interrupt raised, delivered and acknowledged (all exits in the phase);");
    println!("  raise = exits per raise, measured alone (`interrupt_raise`); deliver/ack = total - raise;");
    println!("  ratios against hvm use totals; cycles: host TSC between the phase markers");
    println!("  secondary: {GUEST_CAUSED_RULE}");
    for g in ours {
        if is_pv(g) {
            // No exits to split: what an event costs a PV guest is hypercalls.
            println!("  {:<16} no VM exits (PV); hypercalls per interrupt: {}", label(g), hypercalls(g, "interrupt"));
            continue;
        }
        let Some(c) = interrupt_cost(g) else {
            println!("  {:<16} no interrupt phases", label(g));
            continue;
        };
        let ns = g.summary.bench("interrupt").map_or(0.0, |b| b.value);
        let base = |f: fn(&InterruptCost) -> f64| hvm.as_ref().filter(|_| label(g) != "hvm").map(f);
        println!(
            "  {:<16} total {}{} = raise {} + deliver/ack {}{}; VINTR {}, EOI {}; guest-caused {}; cycles {}{}; {ns:.0} ns",
            label(g),
            rate(c.total),
            ratio(c.total, base(|h| h.total)),
            rate(c.raise),
            rate(c.deliver_ack),
            ratio(c.deliver_ack, base(|h| h.deliver_ack)),
            rate(c.vintr),
            rate(c.eoi),
            rate(c.guest_caused),
            c.cycles.map_or("-".into(), |v| format!("{v:.0}")),
            match (c.cycles, hvm.as_ref().and_then(|h| h.cycles)) {
                (Some(v), Some(b)) if label(g) != "hvm" => ratio(v, Some(b)),
                _ => String::new(),
            },
        );
    }
}

/// Seconds from `xl create` to the ready line, the guest's own time from its entry point,
/// and the ratio against Linux where both print to the same kind of console.
pub fn boot(ours: &[&GuestRun], linux: Option<&GuestRun>) {
    let ready = |g: &GuestRun| g.last().and_then(|a| a.timing.ready);
    let linux_ready = linux.and_then(ready);
    println!("\nboot: xl create -> READY (ours) / userspace up (Linux PVH), both read from the console named");
    if let (Some(l), Some(t)) = (linux, linux_ready) {
        println!("  {:<16} {t:.2} s (PV console)", l.name());
    }
    for g in ours {
        let Some(t) = ready(g) else { continue };
        let console = g.guest.plan.console;
        let own = g.summary.ready_boot_ns.map_or("-".into(), |ns| format!("{:.1} ms", ns as f64 / 1e6));
        let vs = match (console, linux_ready) {
            (ConsoleKind::Pv, Some(l)) if l > 0.0 => format!("x{:.2} Linux", t / l),
            (ConsoleKind::Serial, _) => "serial console: not compared with Linux's PV console".into(),
            _ => "-".into(),
        };
        println!("  {:<16} {t:.2} s ({console:?} console; entry -> READY {own} on its own clock); {vs}", label(g));
    }
}

fn attempts_json(g: &GuestRun) -> Value {
    json!({
        "attempts": g.attempt_count(),
        "retry_reasons": g.retry_reasons(),
        "outcomes": g.result.attempts.iter().map(|a| a.outcome.describe()).collect::<Vec<_>>(),
        "boot": g.boot,
        "lost_to_host_freeze": g.lost_to_freeze(),
        "history": g.history(),
    })
}

/// The JSON of a variant whose guest never ended: no results, and why.
pub fn missing_variant_json(m: &Missing) -> Value {
    json!({
        "host": "xen",
        "variant": m.guest.variant().map_or_else(|| m.name().to_string(), |v| v.label.to_string()),
        "guest": { "attempts": m.attempt_count(), "history": m.history(), "missing": m.why() },
        "results": [],
    })
}

/// One variant's JSON: mode report, attempts, every result with its exits (total, by
/// reason, EOI, the secondary split, lost-record marks), the interrupt cost, boot times.
pub fn variant_json(g: &GuestRun, linux: Option<&GuestRun>) -> Value {
    let results: Vec<Value> = g
        .summary
        .benches
        .iter()
        .map(|b| {
            json!({
                "name": b.name, "unit": b.unit, "value": b.value, "iterations": b.iterations,
                "exits_per_op": g.phase(&b.name).and_then(ExitCost::of),
            })
        })
        .collect();
    json!({
        "host": "xen",
        "variant": label(g),
        "mode_report": g.summary.mode.as_ref().map(ToString::to_string),
        "guest": attempts_json(g),
        "exit_counting": "every exit recorded between a phase's markers counts; guest_caused is secondary: ".to_string() + GUEST_CAUSED_RULE,
        "results": results,
        "interrupt": interrupt_cost(g),
        "boot": {
            "ready_seconds_after_xl_create": g.last().and_then(|a| a.timing.ready),
            "console": format!("{:?}", g.guest.plan.console),
            "entry_to_ready_ns": g.summary.ready_boot_ns,
            "linux_userspace_seconds_after_xl_create": linux.and_then(|l| l.last()).and_then(|a| a.timing.ready),
            "linux": linux.map(attempts_json),
        },
    })
}
