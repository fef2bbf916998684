//! `hyrun --host xen`: the plan (which guests), one run on the Xen host, the checks that
//! decide whether the run counts, then the report. A run that the host's freeze cut short
//! in its last boot still reports every guest that ended, each table and JSON file saying
//! which of its guests are missing and why ([`super::cut`]), and then fails.

use super::cut::Cut;
use super::Args;
use super::{load, network, report};
use harness::netbench::{NetPlan, Server};
use harness::paths;
use harness::xen::guests::{lever_plan, net_plan, Guest, Variant};
use harness::xen::run::{run_guests, GuestRun, Incomplete};
use proto::cmdline::{self, Mode};
use serde_json::Value;
use std::path::Path;

/// Round trips per request-response benchmark and bytes of the bulk transfer, on Xen.
const RR: u32 = 500;
const STREAM: u64 = 8 << 20;
/// Datagrams of the flood through a netfront (the live-grant check).
const FLOOD: u64 = 110_000;

/// The guests for `a`: one per variant running the local benchmarks, the Linux boot
/// peer, and with `net`, one network guest per mode (hvm, hybrid, pvh, pv) plus the Linux
/// network peer; where hybrid is among them, also one hybrid guest per network lever
/// flipped ([`Variant::LEVERS`]), in the same rounds.
pub(crate) fn plan(a: &Args, variants: &[Variant]) -> Result<Vec<Guest>, String> {
    let bench = cmdline::parse(&format!("bench={}", a.bench)).map_err(|e| format!("--bench: {e}"))?.bench;
    let local = bench.with("net", false);
    let mut guests: Vec<Guest> =
        if local.is_empty() { vec![] } else { variants.iter().map(|v| Guest::kernel(*v, local, "")).collect() };
    guests.push(Guest::linux());
    if bench.contains("net") {
        // One network guest per mode: hvm's virtio-net, netfront in hybrid, pvh and pv.
        let mut modes: Vec<Variant> = Vec::new();
        for v in variants {
            if !modes.iter().any(|m| m.opts.mode == v.opts.mode) {
                modes.push(*v);
            }
        }
        // Rounds interleave the kinds (ours, Linux, ours, Linux, ...), so that a slow spell
        // of the host hits every kind alike; the flood runs once, in the first round, through
        // each netfront (hybrid, pvh, pv).
        for round in 1..=a.rounds {
            let mut batch = Vec::new();
            for (i, v) in modes.iter().enumerate() {
                let flood = if v.opts.mode == Mode::Hvm || round > 1 { 0 } else { FLOOD };
                batch.push(Guest::kernel_net(*v, 2 + i as u8, net_plan(Server::Hykernel, RR, STREAM, flood)));
            }
            batch.push(Guest::linux_net(20, net_plan(Server::Linux, RR, STREAM, 0)));
            if modes.iter().any(|m| m.opts.mode == Mode::Hybrid) {
                for (i, v) in Variant::LEVERS.iter().enumerate() {
                    batch.push(Guest::kernel_net(*v, 40 + i as u8, lever_plan(RR, STREAM)));
                }
            }
            for mut g in batch {
                g.plan.name = format!("{}-r{round}", g.plan.name);
                guests.push(g);
            }
        }
        // The interrupt-load experiment, with `--mode all`: one guest per variant.
        if a.mode == "all" {
            for v in load::variants() {
                let plan =
                    NetPlan { load_rates: load::RATES.to_vec(), load_seconds: load::SECONDS, ..NetPlan::default() };
                let mut g = Guest::kernel_net(v, 30, plan);
                g.plan.name = format!("hy-{}-load", v.label);
                guests.push(g);
            }
        }
    }
    Ok(guests)
}

/// What makes the run not count: a guest that did not finish cleanly, a guest of ours
/// without a complete trace, a network drive that failed, a phase with lost records.
fn problems(runs: &[GuestRun]) -> Vec<String> {
    let mut out = Vec::new();
    for g in runs {
        if let Some(p) = g.problem() {
            out.push(format!("{}: {p}", g.name()));
        }
        if g.guest.variant().is_some() || g.guest.plan.net.is_some() {
            if let Some(why) = &g.trace_problem {
                out.push(format!("{}: no exit counts: {why}", g.name()));
            }
        }
        if let Some(t) = &g.trace {
            let dom = g.last().and_then(|a| a.domid).unwrap_or(u32::MAX);
            for p in t.all_phases().iter().filter(|p| u32::from(p.domain) == dom && p.overlaps_lost()) {
                out.push(format!(
                    "{}: phase {} overlaps lost trace records ({} reported while it ran)",
                    g.name(),
                    p.name,
                    p.lost_records
                ));
            }
        }
        if let Some(net) = g.last().and_then(|a| a.net.as_ref()) {
            if !net.ok() {
                let bad: Vec<String> = net.echoes.iter().filter(|e| !e.exact()).map(|e| format!("{e:?}")).collect();
                out.push(format!("{}: network drive failed: {:?} {bad:?}", g.name(), net.errors));
            }
        } else if g.guest.plan.net.is_some() {
            out.push(format!("{}: its network drive left no results", g.name()));
        }
    }
    out
}

/// Seconds the whole host may take for `guests` guests: its boot, and a generous share per
/// guest (a network guest under nested TCG takes one to three minutes, with retries).
fn host_timeout_s(guests: usize) -> u32 {
    600 + 240 * guests as u32
}

/// Which tables a guest's results go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// A variant of ours running the local benchmarks: the benchmark, interrupt and boot
    /// tables, and its own JSON file.
    Local,
    /// The Linux boot peer: the boot table.
    LinuxBoot,
    /// A network guest (ours or Linux): the network table.
    Network,
    /// An interrupt-load guest: the load table.
    Load,
}

/// The tables `g`'s results go to.
pub(crate) fn part(g: &Guest) -> Part {
    match (&g.plan.net, g.variant()) {
        (Some(n), _) if !n.plan.load_rates.is_empty() => Part::Load,
        (Some(_), _) => Part::Network,
        (None, Some(_)) => Part::Local,
        (None, None) => Part::LinuxBoot,
    }
}

/// Runs the Xen host. When the host froze in its last boot, prints and writes everything
/// the guests that ended left, marked incomplete, then fails naming the freeze.
pub fn run(a: &Args) -> Result<(), String> {
    let end = measure(a)?;
    verdict(&end.runs, end.incomplete.as_ref())
}

/// What a run of the Xen host left: the guests that ended, in the plan's order, and what is
/// missing if the host froze in its last boot.
pub struct XenEnd {
    /// The guests that ended.
    pub runs: Vec<GuestRun>,
    /// The freeze and the guests that never ended, if the run is incomplete.
    pub incomplete: Option<Incomplete>,
}

/// Runs the Xen host for `a`, prints its tables and writes its JSON files (an incomplete
/// run's marked), and returns what it left without judging it ([`verdict`] does).
pub fn measure(a: &Args) -> Result<XenEnd, String> {
    let variants = Variant::for_mode(&a.mode).ok_or_else(|| format!("--mode {}: not a Xen mode", a.mode))?;
    let guests = plan(a, &variants)?;
    let work = paths::logs().join("xen");
    eprintln!(
        "==> building the Xen test host or reusing the cached one (~/.cache/hykernel), then booting it under QEMU TCG; \
         the dom0 agent runs {} guest(s) under xentrace",
        guests.len()
    );
    let end = run_guests(&work, &a.kernel, &guests, host_timeout_s(guests.len())).map_err(|e| e.to_string())?;
    let (runs, incomplete) = end.into_parts();
    report_all(&runs, incomplete.as_ref(), &a.results)?;
    println!("raw outputs (consoles, traces, the agent's results.json): {}", work.join("out").display());
    Ok(XenEnd { runs, incomplete })
}

/// Prints every table of `runs` and writes the JSON files into `results`; every table and
/// file of an incomplete run says which of its guests are missing and why.
fn report_all(runs: &[GuestRun], incomplete: Option<&Incomplete>, results: &Path) -> Result<(), String> {
    println!("\n{}", report::attempts(runs, incomplete));
    report::trace_warnings(runs);
    let of = |p: Part| -> Vec<&GuestRun> { runs.iter().filter(|g| part(&g.guest) == p).collect() };
    let cut = |parts: &[Part]| Cut::of(incomplete, |g| parts.contains(&part(g)));
    let (ours, net, loaded) = (of(Part::Local), of(Part::Network), of(Part::Load));
    let linux = of(Part::LinuxBoot).into_iter().next();
    let local = cut(&[Part::Local]);
    if !ours.is_empty() || !local.missing.is_empty() {
        println!("\n{}", report::benchmarks(&ours));
        local.print();
        report::interrupts(&ours);
        local.print();
    }
    report::boot(&ours, linux);
    cut(&[Part::Local, Part::LinuxBoot]).print();
    let network = cut(&[Part::Network]);
    if !net.is_empty() || !network.missing.is_empty() {
        network::print(&net, &network);
    }
    let load = cut(&[Part::Load]);
    if !loaded.is_empty() || !load.missing.is_empty() {
        load::report(&loaded, results, &load)?;
    }
    let all = cut(&[Part::Local, Part::LinuxBoot, Part::Network, Part::Load]);
    for g in &ours {
        let mut doc = report::variant_json(g, linux);
        all.mark(&mut doc);
        write(results, g.guest.variant().map_or("", |v| v.label), &doc)?;
    }
    // A variant that never ended still gets its file, saying so: an earlier run's file
    // must not pass for this run's.
    for m in &local.missing {
        let mut doc = report::missing_variant_json(m);
        all.mark(&mut doc);
        write(results, m.guest.variant().map_or("", |v| v.label), &doc)?;
    }
    if !net.is_empty() || !network.missing.is_empty() {
        let path = report::write_json(results, "xen-network", &network::json(&net, &network))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

fn write(results: &Path, label: &str, doc: &Value) -> Result<(), String> {
    let path = report::write_json(results, &format!("xen-{label}"), doc)?;
    println!("results written to {}", path.display());
    Ok(())
}

/// Whether the run counts: it fails for an incomplete run, naming the freeze and the
/// guests that never ended, and for any [`problems`] of the guests that did.
pub(crate) fn verdict(runs: &[GuestRun], incomplete: Option<&Incomplete>) -> Result<(), String> {
    let mut out = Vec::new();
    if let Some(i) = incomplete {
        out.push(format!(
            "the run is incomplete: {}; {} guest(s) ended (their results are above, marked incomplete), \
             {} never did: {}",
            i.describe(),
            runs.len(),
            i.missing.len(),
            i.missing_names().join(", ")
        ));
    }
    out.extend(problems(runs));
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("the run does not count:\n  {}", out.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use serde_json::Value;

    fn read_json(dir: &Path, name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap()
    }

    fn guests_of(v: &Value) -> Vec<&str> {
        v.as_array().unwrap().iter().map(|m| m["guest"].as_str().unwrap()).collect()
    }

    const LOAD_MISSING: [&str; 5] = [
        "hy-hybrid-pirq-load",
        "hy-hybrid-pirq-assist-load",
        "hy-hybrid-load",
        "hy-hybrid-percpu-load",
        "hy-hybrid-assist-load",
    ];

    #[test]
    fn a_final_freeze_prints_what_ended_marks_every_file_incomplete_and_fails() {
        let work = fixture::scratch("final-freeze");
        let results = work.0.join("results");
        let (runs, incomplete) = fixture::replay(&work.0, None).into_parts();
        let i = incomplete.as_ref().expect("the host froze in its only boot");
        assert_eq!((runs.len(), i.missing_names()), (61, LOAD_MISSING.to_vec()));
        let planned: Vec<String> = fixture::guests().into_iter().map(|g| g.plan.name).collect();
        let ended: Vec<&str> = runs.iter().map(GuestRun::name).collect();
        assert_eq!(ended, planned[..61], "the fixture is this plan's run");

        let table = report::attempts(&runs, incomplete.as_ref());
        assert!(
            table.contains(
                "THE RUN IS INCOMPLETE: the nested Xen host froze while hy-hybrid-pirq-load ran in boot 1 of at most 1"
            ),
            "{table}"
        );
        let row = |name: &str| {
            table.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}: {table}"))
        };
        assert!(row("hy-hybrid-pirq-load").contains("lost: the host froze while it ran (boot 1)"), "{table}");
        assert!(row("hy-hybrid-load").contains("not run: the host froze while hy-hybrid-pirq-load ran (boot 1)"));
        assert!(row("hy-hybrid-virtio-lapic-load").contains("finished"));
        let load_cut = Cut::of(incomplete.as_ref(), |g| part(g) == Part::Load);
        let lines = load_cut.lines();
        assert!(lines.starts_with("missing from this table (5 guest(s)); the run is incomplete"), "{lines}");
        assert!(
            lines.contains("\n  hy-hybrid-assist-load: not run: the host froze while hy-hybrid-pirq-load ran (boot 1)")
        );
        assert_eq!(Cut::of(incomplete.as_ref(), |g| part(g) == Part::Network).lines(), "", "every network guest ended");

        report_all(&runs, incomplete.as_ref(), &results).unwrap();
        let load = read_json(&results, "xen-interrupt-load");
        assert_eq!(load["complete"], false);
        assert_eq!(guests_of(&load["incomplete"]["missing"]), LOAD_MISSING);
        assert_eq!(load["variants"].as_array().unwrap().len(), 4, "the load guests that ended");
        assert_eq!(load["variants"][3]["guest"], "hy-hybrid-virtio-lapic-load");
        let net = read_json(&results, "xen-network");
        assert_eq!(
            (&net["complete"], net["incomplete"]["missing"].as_array().unwrap().len()),
            (&Value::Bool(false), 0)
        );
        assert_eq!(net["incomplete"]["missing_in_run"].as_array().unwrap().len(), 5);
        let kinds = net["network"].as_array().unwrap();
        assert_eq!(kinds.len(), 10);
        assert!(kinds.iter().all(|k| k["rounds"].as_array().unwrap().len() == 5));
        let hvm = read_json(&results, "xen-hvm");
        assert_eq!((&hvm["complete"], &hvm["results"][0]["name"]), (&Value::Bool(false), &Value::from("cpuid")));
        assert_eq!(
            guests_of(&hvm["incomplete"]["missing"]),
            LOAD_MISSING,
            "a variant's file names every missing guest"
        );

        let e = verdict(&runs, incomplete.as_ref()).unwrap_err();
        let first = e.lines().nth(1).unwrap();
        assert!(
            first.contains("the run is incomplete: the nested Xen host froze while hy-hybrid-pirq-load ran"),
            "{e}"
        );
        assert!(first.contains("61 guest(s) ended") && first.contains("5 never did: hy-hybrid-pirq-load, "), "{e}");
    }

    #[test]
    fn a_variant_that_never_ended_gets_a_file_that_says_so() {
        let work = fixture::scratch("early-freeze");
        let results = work.0.join("results");
        let (runs, incomplete) = fixture::replay(&work.0, Some("hy-hybrid-assist")).into_parts();
        let i = incomplete.as_ref().unwrap();
        assert_eq!((runs.len(), i.missing.len()), (3, 63));
        let ours: Vec<&GuestRun> = runs.iter().filter(|g| part(&g.guest) == Part::Local).collect();
        let grid = report::benchmarks(&ours);
        assert!(grid.lines().any(|l| l.starts_with("cpuid ") && l.contains("88789.0")), "{grid}");
        let lines = Cut::of(incomplete.as_ref(), |g| part(g) == Part::Local).lines();
        assert!(lines.starts_with("missing from this table (3 guest(s))"), "{lines}");
        assert!(lines.contains("\n  hy-hybrid-assist: lost: the host froze while it ran (boot 1)"), "{lines}");
        assert!(lines.contains("\n  hy-pv: not run: the host froze while hy-hybrid-assist ran (boot 1)"), "{lines}");

        report_all(&runs, incomplete.as_ref(), &results).unwrap();
        let pvh = read_json(&results, "xen-pvh");
        assert_eq!((&pvh["complete"], pvh["results"].as_array().unwrap().len()), (&Value::Bool(false), 0));
        assert_eq!(pvh["guest"]["missing"], "not run: the host froze while hy-hybrid-assist ran (boot 1)");
        let net = read_json(&results, "xen-network");
        assert_eq!(
            (net["network"].as_array().unwrap().len(), net["incomplete"]["missing"].as_array().unwrap().len()),
            (0, 50)
        );
        assert_eq!(read_json(&results, "xen-interrupt-load")["incomplete"]["missing"].as_array().unwrap().len(), 9);
        assert!(verdict(&runs, incomplete.as_ref()).unwrap_err().contains("3 guest(s) ended"));
    }

    fn args(mode: &str, bench: &str, rounds: u32) -> Args {
        Args {
            host: "xen".into(),
            mode: mode.into(),
            bench: bench.into(),
            kernel: "hykernel".into(),
            results: "results".into(),
            memprobe: false,
            boots: None,
            busy: false,
            rounds,
        }
    }

    fn names(mode: &str, rounds: u32) -> Vec<String> {
        let a = args(mode, "net", rounds);
        plan(&a, &Variant::for_mode(mode).unwrap()).unwrap().into_iter().map(|g| g.plan.name).collect()
    }

    #[test]
    fn every_round_has_the_lever_guests_beside_hybrid_and_linux() {
        let want = |r: u32| {
            [
                "hy-hybrid-net",
                "linux-net",
                "hy-hybrid-no-offload-net",
                "hy-hybrid-no-batch-net",
                "hy-hybrid-no-suppress-net",
                "hy-hybrid-no-wscale-net",
                "hy-hybrid-lazy-timer-net",
            ]
            .map(|n| format!("{n}-r{r}"))
        };
        let mut expected = vec!["linux-pvh".to_string()];
        expected.extend(want(1));
        expected.extend(want(2));
        assert_eq!(names("hybrid", 2), expected);
        // hvm alone has no netfront: no lever guests.
        assert_eq!(names("hvm", 1), ["linux-pvh", "hy-hvm-net-r1", "linux-net-r1"]);
        // --mode all: hvm, hybrid, pvh, pv, Linux, the levers, in each of 5 rounds; then the
        // load guests.
        let all = names("all", 5);
        let r5: Vec<&String> = all.iter().filter(|n| n.ends_with("-r5")).collect();
        assert_eq!(&r5[..5], ["hy-hvm-net-r5", "hy-hybrid-net-r5", "hy-pvh-net-r5", "hy-pv-net-r5", "linux-net-r5"]);
        assert_eq!(r5.len(), 10, "{all:?}");
        assert_eq!(all.iter().filter(|n| n.contains("-lazy-timer-net-")).count(), 5);
        // pv and pvh alone: their netfront, the Linux peer, no levers.
        assert_eq!(names("pv", 1), ["linux-pvh", "hy-pv-net-r1", "linux-net-r1"]);
        assert_eq!(names("pvh", 1), ["linux-pvh", "hy-pvh-net-r1", "linux-net-r1"]);
    }
}
