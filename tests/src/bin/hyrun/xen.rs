//! `hyrun --host xen`: the plan (which guests), one run on the Xen host, the checks that
//! decide whether the run counts, then the report.

use super::Args;
use super::{load, network, report};
use harness::netbench::{NetPlan, Server};
use harness::paths;
use harness::xen::guests::{lever_plan, net_plan, Guest, Variant};
use harness::xen::run::{run_guests, GuestRun, RunEnd};
use proto::cmdline::{self, Mode};

/// Round trips per request-response benchmark and bytes of the bulk transfer, on Xen.
const RR: u32 = 500;
const STREAM: u64 = 8 << 20;
/// Datagrams of the flood through a netfront (the live-grant check).
const FLOOD: u64 = 110_000;

/// The guests for `a`: one per variant running the local benchmarks, the Linux boot
/// peer, and with `net`, one network guest per mode (hvm, hybrid, pvh, pv) plus the Linux
/// network peer; where hybrid is among them, also one hybrid guest per network lever
/// flipped ([`Variant::LEVERS`]), in the same rounds.
fn plan(a: &Args, variants: &[Variant]) -> Result<Vec<Guest>, String> {
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

/// Runs the Xen host.
pub fn run(a: &Args) -> Result<(), String> {
    let variants = Variant::for_mode(&a.mode).ok_or_else(|| format!("--mode {}: not a Xen mode", a.mode))?;
    let guests = plan(a, &variants)?;
    let work = paths::logs().join("xen");
    eprintln!(
        "==> building the Xen test host or reusing the cached one (~/.cache/hykernel), then booting it under QEMU TCG; \
         the dom0 agent runs {} guest(s) under xentrace",
        guests.len()
    );
    let runs = run_guests(&work, &a.kernel, &guests, host_timeout_s(guests.len()))
        .and_then(RunEnd::complete)
        .map_err(|e| e.to_string())?;
    report::attempts(&runs);
    report::trace_warnings(&runs);
    let ours: Vec<&GuestRun> =
        runs.iter().filter(|g| g.guest.variant().is_some() && g.guest.plan.net.is_none()).collect();
    let linux = runs.iter().find(|g| g.guest.variant().is_none() && g.guest.plan.net.is_none());
    let is_load = |g: &GuestRun| g.guest.plan.net.as_ref().is_some_and(|n| !n.plan.load_rates.is_empty());
    let net: Vec<&GuestRun> = runs.iter().filter(|g| g.guest.plan.net.is_some() && !is_load(g)).collect();
    let loaded: Vec<&GuestRun> = runs.iter().filter(|g| is_load(g)).collect();
    if !ours.is_empty() {
        report::benchmarks(&ours);
        report::interrupts(&ours);
    }
    report::boot(&ours, linux);
    if !net.is_empty() {
        network::print(&net);
    }
    if !loaded.is_empty() {
        load::report(&loaded, &a.results)?;
    }
    for g in &ours {
        let path = report::write_json(
            &a.results,
            &format!("xen-{}", g.guest.variant().map_or("", |v| v.label)),
            &report::variant_json(g, linux),
        )?;
        println!("results written to {}", path.display());
    }
    if !net.is_empty() {
        let path = report::write_json(&a.results, "xen-network", &network::json(&net))?;
        println!("results written to {}", path.display());
    }
    println!("raw outputs (consoles, traces, the agent's results.json): {}", work.join("out").display());
    let problems = problems(&runs);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("the run does not count:\n  {}", problems.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
