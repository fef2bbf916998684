//! `hyrun --host kvm`: the kernel as an L2 KVM guest on the KVM test host (the Xen host's
//! image booted without Xen, `harness::kvm`), in hvm and/or the KVM hybrid mode; one table
//! of each benchmark's value and its exits per operation from L1's trace, the total first,
//! then by reason (MSR exits by index), and the PV EOIs KVM completed. With `net` in the
//! benchmarks, the network table of the Xen host (`network.rs`) for hvm, hybrid and a Linux
//! L2 peer in interleaved rounds, driven by the agent in L1; with `--mode all` the
//! interrupt-load experiment (`load.rs`) for hvm, hybrid (PV EOI) and hybrid `eoi=lapic`.

use super::cut::Cut;
use super::network::{self, Kind, NetRound};
use super::report::write_json;
use super::{load, Args};
use harness::kvm::{run_guests, variants, GuestKind, KvmGuest, KvmRun};
use harness::netbench::{NetPlan, NetReport, Server};
use harness::paths;
use harness::table::render_grid;
use harness::xen::cost::ExitCost;
use harness::xen::guests::{lever_plan, net_plan};
use proto::cmdline::{self, NetLever};
use serde_json::{json, Value};

/// Seconds for the whole host run: boot (~30 s), then each guest (~60 s under nested KVM).
fn host_timeout(guests: usize) -> u32 {
    240 + 150 * guests as u32
}

/// Round trips per request-response benchmark and bytes of the bulk transfer, as on Xen.
const RR: u32 = 500;
const STREAM: u64 = 8 << 20;

impl NetRound for KvmRun {
    fn round_name(&self) -> &str {
        &self.guest.name
    }
    fn report(&self) -> Option<&NetReport> {
        self.net.as_ref()
    }
    fn cost(&self, bench: &str) -> Option<ExitCost> {
        self.trace.as_ref().ok()?.phase(bench).and_then(|p| ExitCost::of(&p.phase))
    }
    fn stream_bytes(&self) -> Option<u64> {
        Some(self.guest.net.as_ref()?.plan.stream_bytes)
    }
}

/// The guests for `a`: the local benchmarks per variant; with `net`, `a.rounds` interleaved
/// rounds of hvm, hybrid, the Linux peer and hybrid without receive offloads; with
/// `--mode all` also one load guest per variant.
fn plan(a: &Args) -> Result<Vec<KvmGuest>, String> {
    let bench = cmdline::parse(&format!("bench={}", a.bench)).map_err(|e| format!("--bench: {e}"))?.bench;
    let local = bench.with("net", false).with("mem_lat", false).with("mem_bw", false);
    if local != bench.with("net", false) {
        eprintln!("hyrun: the KVM host runs no memory benchmarks yet");
    }
    let vs = modes_variants(&a.mode)?;
    let mut guests: Vec<KvmGuest> = if local.is_empty() {
        vec![]
    } else {
        vs.iter().map(|(label, opts)| KvmGuest::kernel(label, *opts, local)).collect()
    };
    if bench.contains("net") {
        let net: Vec<_> = vs.iter().filter(|(l, _)| *l == "hvm" || *l == "hybrid").collect();
        let lever = net.iter().find(|(l, _)| *l == "hybrid").map(|(_, o)| no_offload(*o));
        for round in 1..=a.rounds {
            for (i, (label, opts)) in net.iter().enumerate() {
                let plan = net_plan(Server::Hykernel, RR, STREAM, 0);
                guests.push(KvmGuest::kernel_net(label, *opts, 2 + i as u8, round, plan));
            }
            guests.push(KvmGuest::linux_net(20, round, net_plan(Server::Linux, RR, STREAM, 0)));
            if let Some(opts) = lever {
                guests.push(KvmGuest::kernel_net(NO_OFFLOAD, opts, 40, round, lever_plan(RR, STREAM)));
            }
        }
        if a.mode == "all" {
            for (label, opts) in &vs {
                let plan =
                    NetPlan { load_rates: load::RATES.to_vec(), load_seconds: load::SECONDS, ..NetPlan::default() };
                let mut g = KvmGuest::kernel_net(label, *opts, 30, 0, plan);
                g.name = format!("hy-kvm-{label}-load");
                guests.push(g);
            }
        }
    }
    Ok(guests)
}

/// The network lever row: hybrid with virtio-net's receive offloads declined
/// (`net=no-offload`), beside hybrid in every round, so the table shows what they bought.
const NO_OFFLOAD: &str = "hybrid-no-offload";

/// `opts` with the `offload` network lever off.
fn no_offload(opts: cmdline::Options) -> cmdline::Options {
    cmdline::Options { net: opts.net.with(NetLever::Offload, false), ..opts }
}

/// The variants of `mode`: one of [`variants`]' modes, or a comma list of single modes
/// (`hvm,hybrid`, as the combined run of both hosts asks), each once.
fn modes_variants(mode: &str) -> Result<Vec<(&'static str, cmdline::Options)>, String> {
    if !mode.contains(',') {
        return variants(mode);
    }
    let mut out: Vec<(&'static str, cmdline::Options)> = Vec::new();
    for m in mode.split(',') {
        match variants(m)?.as_slice() {
            [v] if !out.iter().any(|o| o.0 == v.0) => out.push(*v),
            _ => return Err(format!("--mode {mode}: a list names single modes (hvm, hybrid), each once")),
        }
    }
    Ok(out)
}

fn is_load(r: &KvmRun) -> bool {
    r.guest.net.as_ref().is_some_and(|n| !n.plan.load_rates.is_empty())
}

/// The load experiment's rows: each rate's point with the exits of its `load` phase.
pub(crate) fn load_rows(runs: &[&KvmRun]) -> Vec<load::Row> {
    runs.iter()
        .map(|r| {
            let points = r.net.as_ref().map(|n| n.load.clone()).unwrap_or_default();
            let phases = r.trace.as_ref().map(|t| t.phases_named("load")).unwrap_or_default();
            load::Row {
                label: r.guest.label(),
                guest: r.guest.name.clone(),
                mode_report: r.console.mode.as_ref().map(ToString::to_string),
                points: points
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (p, phases.get(i).and_then(|ph| ExitCost::of(&ph.phase))))
                    .collect(),
            }
        })
        .collect()
}

/// `r`'s exits per operation in `bench`: the total, then by reason, and the PV EOIs KVM
/// completed; or why there are none.
pub(crate) fn exits(r: &KvmRun, bench: &str) -> String {
    match &r.trace {
        Err(e) => format!("NO TRACE ({e})"),
        Ok(t) => match t.phase(bench) {
            None => "no phase".into(),
            Some(p) => {
                let cost = ExitCost::of(&p.phase).map_or("0 iterations".into(), |c| c.describe());
                match p.pv_eois_per_op() {
                    Some(e) if p.pv_eois > 0 => format!("{cost}; pv-eoi {e:.2}/op"),
                    _ => cost,
                }
            }
        },
    }
}

/// The table: benchmarks in printed order, per variant its value and exits per operation.
fn table(runs: &[&KvmRun]) -> String {
    let mut header = vec!["benchmark".to_string(), "unit".to_string()];
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        header.push(r.guest.name.trim_start_matches("hy-kvm-").to_string());
        header.push("exits/op: total = by reason".into());
        for b in &r.console.benches {
            if !names.contains(&b.name.as_str()) {
                names.push(&b.name);
            }
        }
    }
    let grid: Vec<Vec<String>> = names
        .iter()
        .map(|&name| {
            let mut row = vec![name.to_string(), String::new()];
            for r in runs {
                match r.console.bench(name) {
                    Some(b) => {
                        row[1] = b.unit.clone();
                        row.push(format!("{:.1}", b.value));
                        row.push(exits(r, name));
                    }
                    None => row.extend(["-".to_string(), "-".to_string()]),
                }
            }
            row
        })
        .collect();
    let mut title = String::from("host=kvm (KVM in Linux 6.1, nested under QEMU TCG): every exit L1 traced in a phase");
    for r in runs {
        let mode = r.console.mode.as_ref().map(ToString::to_string).unwrap_or_else(|| "no MODE line".into());
        title.push_str(&format!("\n{}: {mode}", r.guest.name));
    }
    render_grid(&title, &header, &grid)
}

fn to_json(r: &KvmRun) -> Value {
    let phases: Vec<Value> = r
        .trace
        .as_ref()
        .map(|t| {
            t.phases
                .iter()
                .filter(|p| p.phase.complete)
                .map(|p| {
                    json!({"name": p.phase.name, "iterations": p.phase.iterations, "total_exits": p.phase.total_exits,
                           "exits": p.phase.exits, "msr_writes": p.phase.msr_writes.iter().map(|(k, v)| (format!("{k:#x}"), *v)).collect::<std::collections::BTreeMap<_, _>>(),
                           "eoi_exits": p.phase.eoi_exits(), "pv_eois": p.pv_eois, "injections": p.injections})
                })
                .collect()
        })
        .unwrap_or_default();
    let cmdline = match &r.guest.kind {
        GuestKind::Hykernel => r.guest.opts.to_string(),
        GuestKind::Linux(c) => c.clone(),
    };
    json!({"guest": r.guest.name, "cmdline": cmdline, "exit": r.exit,
           "mode": r.console.mode.as_ref().map(ToString::to_string),
           "benches": r.console.benches, "phases": phases, "net": r.net, "problem": r.problem(),
           "boot": r.boot, "frozen_boots": r.frozen})
}

/// The network guests grouped by kind (hvm, hybrid, linux), in the order kinds first
/// appear.
pub(crate) fn kinds<'a>(net: &[&'a KvmRun]) -> Vec<Kind<'a, KvmRun>> {
    let mut kinds: Vec<Kind<'a, KvmRun>> = Vec::new();
    for r in net {
        let label = r.guest.label();
        match kinds.iter_mut().find(|k| k.label == label) {
            Some(k) => k.rounds.push(r),
            None => {
                let levers = match r.guest.kind {
                    GuestKind::Hykernel => r.guest.opts.net.to_string(),
                    GuestKind::Linux(_) => "-".into(),
                };
                kinds.push(Kind { label, levers, rounds: vec![r] })
            }
        }
    }
    kinds
}

/// The runs of the local benchmarks, of the network rounds and of the load experiment.
pub(crate) fn parts(runs: &[KvmRun]) -> [Vec<&KvmRun>; 3] {
    [
        runs.iter().filter(|r| r.guest.net.is_none()).collect(),
        runs.iter().filter(|r| r.guest.net.is_some() && !is_load(r)).collect(),
        runs.iter().filter(|r| is_load(r)).collect(),
    ]
}

/// Runs the variants `a.mode` names on the KVM host and prints the tables.
pub fn run(a: &Args) -> Result<(), String> {
    verdict(&measure(a)?)
}

/// Runs the KVM host for `a`, prints its tables and writes its JSON files, and returns
/// every guest's run without judging them ([`verdict`] does).
pub fn measure(a: &Args) -> Result<Vec<KvmRun>, String> {
    let guests = plan(a)?;
    let work = paths::logs().join("kvm-host");
    eprintln!("==> KVM host: {} guests, results under {}", guests.len(), work.display());
    let runs = run_guests(&work, &a.kernel, &guests, host_timeout(guests.len())).map_err(|e| e.to_string())?;
    let [local, net, loaded] = parts(&runs);
    if !local.is_empty() {
        println!("\n{}", table(&local));
    }
    if !net.is_empty() {
        network::print_kinds(&kinds(&net), "L1", "linux: the image's Linux as an L2 with virtio-net", &Cut::default());
    }
    if !loaded.is_empty() {
        load::report_rows(&load_rows(&loaded), &a.results, "kvm", &Cut::default())?;
    }
    for line in freeze_history(&runs) {
        println!("{line}");
    }
    for r in &runs {
        let out = write_json(&a.results, &format!("kvm-{}", r.guest.name.trim_start_matches("hy-kvm-")), &to_json(r))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(runs)
}

/// One line per guest that a frozen boot of the host cut or never reached: the boot its
/// results come from and every frozen one before it (none when no boot froze).
fn freeze_history(runs: &[KvmRun]) -> Vec<String> {
    runs.iter()
        .filter(|r| !r.frozen.is_empty())
        .map(|r| {
            let from = if r.exit.is_some() { format!("results from boot {}", r.boot) } else { "lost".into() };
            format!("{}: {from}; {}", r.guest.name, r.frozen.join("; "))
        })
        .collect()
}

/// Whether the run counts: it fails naming every guest whose results cannot be used.
pub(crate) fn verdict(runs: &[KvmRun]) -> Result<(), String> {
    let problems: Vec<String> = runs.iter().filter_map(KvmRun::problem).collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::console::BootSummary;
    use harness::kvmtrace::phases;

    #[test]
    fn table_leads_with_the_total_then_reasons() {
        let opts = cmdline::parse("mode=hybrid").unwrap();
        let lines = [
            "MODE hypervisor=kvm mode=hybrid irq=x2apic eoi=pv clock=kvmclock timer=tsc-deadline nic=none msi=lapic",
            r#"BENCH {"name":"timer_lateness","mode":"hybrid","unit":"ns","value":237066.755,"iterations":200}"#,
            "DONE",
        ];
        let run = KvmRun {
            guest: KvmGuest::kernel("hybrid", opts, opts.bench),
            exit: Some(1),
            console: BootSummary::from_lines(&lines),
            trace: phases(include_str!("../../../data/kvmtrace/hybrid-timer-lateness.txt")),
            net: None,
            boot: 1,
            frozen: vec![],
        };
        assert_eq!(run.problem(), None);
        let t = table(&[&run]);
        assert!(t.contains("mode=hybrid") && t.contains("eoi=pv"), "{t}");
        assert!(t.contains("1.02 = MSR 1.01 [wrmsr 0x6e0"), "{t}");
        assert!(t.contains("pv-eoi 0.99/op"), "{t}");
        let json = to_json(&run);
        assert_eq!(json["phases"][0]["pv_eois"], 198);
        assert_eq!(json["phases"][0]["eoi_exits"], 2);
        assert_eq!((json["boot"].as_u64(), json["frozen_boots"].as_array().map(Vec::len)), (Some(1), Some(0)));
        assert!(freeze_history(std::slice::from_ref(&run)).is_empty());
        let cut = vec!["boot 1: cut while it ran (the host froze while hy-kvm-hybrid ran)".to_string()];
        let again = KvmRun { boot: 2, frozen: cut.clone(), ..run };
        assert_eq!(
            freeze_history(std::slice::from_ref(&again)),
            ["hy-kvm-hybrid: results from boot 2; boot 1: cut while it ran (the host froze while hy-kvm-hybrid ran)"]
        );
        let lost = KvmRun::lost(&again.guest, cut);
        assert!(freeze_history(&[lost])[0].starts_with("hy-kvm-hybrid: lost; boot 1: cut"));
    }
}
