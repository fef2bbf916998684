//! `hyrun`: boots the kernel on a host, drives its benchmarks, prints the results table
//! and writes `results/<host>-<mode>.json`. `./run.sh` builds and calls it.
//!
//! - `--host qemu`: QEMU TCG on this machine; the network benchmarks are driven from here.
//! - `--host xen`: the project's Xen test host (`tests/xen/`); the kernel runs as an HVM
//!   and/or PVH domU next to a Linux PVH domU, and every benchmark row carries the VM
//!   exits per operation counted from the host's trace.

use harness::console::MODE_KEYS;
use harness::qemu::Exit;
use harness::session::{self, SessionConfig};
use harness::table::{self, Row};
use harness::xenhost::{self, Guest, GuestRun};
use harness::{elf, paths};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: hyrun [--host qemu|xen] [--mode auto|hvm|hybrid|pvh|all] [--bench LIST] [--kernel ELF] [--results DIR] [--no-memprobe]";

struct Args {
    host: String,
    mode: String,
    bench: String,
    kernel: PathBuf,
    results: PathBuf,
    memprobe: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        host: "qemu".into(),
        mode: "hvm".into(),
        bench: "all".into(),
        kernel: paths::kernel(),
        results: paths::workspace().join("results"),
        memprobe: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--host" => a.host = value("--host")?,
            "--mode" => a.mode = value("--mode")?,
            "--bench" => a.bench = value("--bench")?,
            "--kernel" => a.kernel = value("--kernel")?.into(),
            "--results" => a.results = value("--results")?.into(),
            "--no-memprobe" => a.memprobe = false,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag '{other}'\n{USAGE}")),
        }
    }
    let modes: &[&str] = match a.host.as_str() {
        "qemu" => &["auto", "hvm", "all"],
        "xen" => &["hvm", "hybrid", "pvh", "all"],
        h => return Err(format!("--host {h}: unknown host (qemu, xen)")),
    };
    if !modes.contains(&a.mode.as_str()) {
        return Err(format!("--mode {}: on --host {} the modes are {}", a.mode, a.host, modes.join(", ")));
    }
    Ok(a)
}

fn mode_line(s: &harness::console::BootSummary) -> String {
    s.mode
        .as_ref()
        .map(|m| MODE_KEYS.iter().map(|k| format!("{k}={}", m.get(k))).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn write_json(dir: &PathBuf, name: &str, value: &serde_json::Value) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join(format!("{name}.json"));
    std::fs::write(&out, serde_json::to_string_pretty(value).unwrap_or_default())
        .map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

fn run_qemu(a: &Args) -> Result<(), String> {
    let image =
        std::fs::read(&a.kernel).map_err(|e| format!("{}: {e} (build the kernel first)", a.kernel.display()))?;
    let mode = if a.mode == "all" { "hvm".to_string() } else { a.mode.clone() };
    let cfg = SessionConfig {
        kernel: a.kernel.clone(),
        mode: mode.clone(),
        bench: a.bench.clone(),
        name: format!("qemu-{mode}"),
        rr_count: 2000,
        stream_bytes: 16 << 20,
    };
    let r = session::run(&cfg).map_err(|e| e.to_string())?;
    let s = &r.summary;
    if !s.panics.is_empty() || !s.errors.is_empty() || !s.malformed.is_empty() || r.exit != Exit::Success {
        return Err(format!(
            "the run failed (exit {:?}): errors {:?} panics {:?} malformed {:?}; console log {}",
            r.exit,
            s.errors,
            s.panics,
            s.malformed,
            r.log.display()
        ));
    }
    let mut rows: Vec<Row> = s.benches.iter().map(Row::kernel).collect();
    for d in &r.driven {
        if let Some(row) = rows.iter_mut().find(|row| row.name == d.kernel.name) {
            row.note = format!("host sees {:.1} {}", d.host_value, d.kernel.unit);
        }
    }
    if let Some(p) = r.ping {
        rows.push(Row::host("ping_rtt", "ms", p.avg_ms, &format!("{}/{} replies", p.received, p.sent)));
    }
    rows.push(Row::host("image_file", "KiB", image.len() as f64 / 1024.0, "ELF file, with symbols"));
    let loaded = elf::loaded_bytes(&image).map_err(|e| e.to_string())?;
    rows.push(Row::host("image_loaded", "KiB", loaded as f64 / 1024.0, "PT_LOAD memory size"));
    if a.memprobe {
        eprintln!("==> finding the smallest memory the kernel boots in (bisection, bench=clock)");
        let mib = session::min_memory(&a.kernel, 4, 256).map_err(|e| e.to_string())?;
        rows.push(Row::host("min_memory", "MiB", mib as f64, "QEMU -m, boots to DONE"));
    }
    let ml = mode_line(s);
    println!("\n{}", table::render(&format!("host=qemu mode={mode}  ({})\n{ml}", r.network), &rows));
    if !s.skips.is_empty() {
        println!("skipped: {}", s.skips.join("; "));
    }
    let out = write_json(&a.results, &format!("qemu-{mode}"), &table::results_json("qemu", &mode, &ml, &rows))?;
    println!("results written to {}", out.display());
    Ok(())
}

/// Checks that a hykernel guest ran to the end in the mode asked for.
fn check_guest(g: &GuestRun, mode: &str) -> Result<(), String> {
    let s = &g.summary;
    let got = s.mode.as_ref().map(|m| m.get("mode").to_string()).unwrap_or_default();
    if got != mode
        || !s.done
        || !s.errors.is_empty()
        || !s.panics.is_empty()
        || !s.malformed.is_empty()
        || !g.ended_ok()
    {
        return Err(format!(
            "{}: mode '{got}' (wanted {mode}), done {}, status {:?}, errors {:?}, panics {:?}, malformed {:?}",
            g.name,
            s.done,
            g.times.get("status"),
            s.errors,
            s.panics,
            s.malformed
        ));
    }
    Ok(())
}

fn run_xen(a: &Args) -> Result<(), String> {
    let variants = xenhost::variants(&a.mode);
    // The network benchmarks run in guests of their own, driven from dom0; the others
    // run everything else.
    let with_net = session::wants_net(&a.bench);
    let local: Vec<&str> = if a.bench == "all" {
        hykernel::cmdline::BENCHMARKS.iter().copied().filter(|b| *b != "net").collect()
    } else {
        a.bench.split(',').filter(|b| *b != "net").collect()
    };
    let local = if local.is_empty() { "none".to_string() } else { local.join(",") };
    let mut guests: Vec<Guest> = if local == "none" {
        Vec::new()
    } else {
        variants.iter().map(|(l, m, x)| Guest::hykernel(l, m, &local, x)).collect()
    };
    let ours_count = guests.len();
    guests.push(Guest::linux_pvh());
    let net_modes: Vec<&str> =
        variants.iter().map(|(_, m, _)| *m).filter(|m| *m != "pvh" || variants.len() == 1).collect();
    let mut net_modes_dedup: Vec<&str> = Vec::new();
    for m in net_modes {
        if !net_modes_dedup.contains(&m) {
            net_modes_dedup.push(m);
        }
    }
    const NET_ARGS: &str = "--rr 500 --stream 8388608";
    if with_net {
        for (i, m) in net_modes_dedup.iter().enumerate() {
            // The netfront also takes a flood, to show its live grants stay put.
            let args = if *m == "hvm" { NET_ARGS.to_string() } else { format!("{NET_ARGS} --flood 110000") };
            guests.push(Guest::hykernel_net(&format!("{m}-net"), m, 2 + i as u8, &args));
        }
        guests.push(Guest::linux_net(20, NET_ARGS));
    }
    let work = paths::logs().join("xen");
    eprintln!(
        "==> building the Xen test host or reusing the cached one (~/.cache/hykernel), then booting it under QEMU TCG; \
         dom0 runs {} guest(s) under xentrace",
        guests.len()
    );
    let runs = xenhost::run_guests(&work, &a.kernel, &guests, 2400).map_err(|e| e.to_string())?;
    let out = work.join("out");
    let (ours, rest) = runs.split_at(ours_count);
    for (g, (_, m, _)) in ours.iter().zip(&variants) {
        check_guest(g, m)?;
    }
    let (linux, net) = rest.split_at(1);
    let linux = &linux[0];

    // Benchmarks in the order they were printed, a value and an exits column per variant.
    let mut header = vec!["benchmark".to_string(), "unit".to_string()];
    for (label, _, _) in &variants {
        header.push(label.to_string());
        header.push("exits/op (reasons)".to_string());
    }
    let mut names: Vec<String> = Vec::new();
    for g in ours {
        for b in &g.summary.benches {
            if !names.contains(&b.name) {
                names.push(b.name.clone());
            }
        }
    }
    let mut grid = Vec::new();
    for name in &names {
        let mut row = vec![name.clone(), String::new()];
        for g in ours {
            match g.summary.bench(name) {
                Some(b) => {
                    row[1] = b.unit.clone();
                    row.push(format!("{:.1}", b.value));
                    row.push(g.phase(name).map_or("-".into(), xenhost::describe_exits));
                }
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
        }
        grid.push(row);
    }
    let linux_first = linux.seconds("first_line_seconds");
    let linux_ready = linux.seconds("ready_seconds");
    for (label, key, peer) in
        [("boot_first_line", "first_line_seconds", linux_first), ("boot_done", "ready_seconds", linux_ready)]
    {
        let mut row = vec![label.to_string(), "s".to_string()];
        for g in ours {
            let v = g.seconds(key);
            row.push(v.map_or("-".into(), |v| format!("{v:.2}")));
            row.push(match (v, peer) {
                (Some(v), Some(p)) if p > 0.0 => format!("{:.2}x Linux ({p:.2} s)", v / p),
                _ => "-".into(),
            });
        }
        grid.push(row);
    }
    let mut title = String::from("host=xen (Xen 4.17 nested under QEMU TCG)");
    for g in ours {
        title.push_str(&format!("\n{}: {}", g.name, mode_line(&g.summary)));
    }
    title.push_str(&format!(
        "\nlinux-pvh (Debian's kernel, busybox): first line {} s, userspace {} s after xl create",
        linux_first.map_or("-".into(), |v| format!("{v:.2}")),
        linux_ready.map_or("-".into(), |v| format!("{v:.2}"))
    ));
    println!("\n{}", table::render_grid(&title, &header, &grid));
    print_interrupt_ratios(ours);

    for (g, (label, _, _)) in ours.iter().zip(&variants) {
        let results: Vec<_> = g
            .summary
            .benches
            .iter()
            .map(|b| {
                let p = g.phase(&b.name);
                json!({
                    "name": b.name, "unit": b.unit, "value": b.value, "iterations": b.iterations,
                    "exits_per_op": p.and_then(|p| p.total_exits_per_op()),
                    "guest_exits_per_op": p.and_then(xenhost::guest_exits_per_op),
                    "eoi_exits_per_op": p.and_then(|p| p.eoi_exits_per_op()),
                    "exit_reasons_per_op": p.map(|p| p.exits_per_op()),
                })
            })
            .collect();
        let doc = json!({
            "host": "xen", "variant": label, "mode_report": mode_line(&g.summary), "results": results,
            "boot": { "first_line_seconds": g.seconds("first_line_seconds"), "done_seconds": g.seconds("ready_seconds"),
                      "linux_first_line_seconds": linux_first, "linux_ready_seconds": linux_ready },
        });
        let path = write_json(&a.results, &format!("xen-{label}"), &doc)?;
        println!("results written to {}", path.display());
    }
    if with_net {
        print_network(net)?;
        for g in net {
            if let Some(c) = &g.client {
                let path = write_json(&a.results, &format!("xen-{}", g.name.trim_start_matches("hy-")), c)?;
                println!("results written to {}", path.display());
            }
        }
    }
    println!("raw outputs (consoles, traces, timings): {}", out.display());
    Ok(())
}

/// The network benchmarks side by side: each guest's figure (the kernel's own where it
/// measures, else dom0's), exits per packet from the trace, and ratios against Linux.
fn print_network(net: &[GuestRun]) -> Result<(), String> {
    for g in net {
        let c =
            g.client.as_ref().ok_or_else(|| format!("{}: its dom0 client left no results ({:?})", g.name, g.times))?;
        let errors = c["errors"].as_array().map_or(0, Vec::len);
        if errors > 0 || c["quit"] != "BYE" {
            return Err(format!("{}: the network run failed: {}", g.name, c["errors"]));
        }
    }
    let linux = net.iter().find(|g| g.name == "linux-net");
    let value = |g: &GuestRun, name: &str| -> Option<f64> {
        let b = &g.client.as_ref()?["bench"][name];
        b["kernel"]["value"].as_f64().or_else(|| b["host"].as_f64())
    };
    let mut header = vec!["network (dom0 client)".to_string(), "unit".to_string()];
    for g in net {
        header.push(g.name.clone());
        header.push("exits/packet".to_string());
    }
    header.push("vs linux".to_string());
    let mut grid = Vec::new();
    let ping = |g: &GuestRun| g.client.as_ref().and_then(|c| c["ping"]["avg_ms"].as_f64());
    let mut row = vec!["ping_rtt".to_string(), "ms".to_string()];
    for g in net {
        row.push(ping(g).map_or("-".into(), |v| format!("{v:.2}")));
        row.push(String::new());
    }
    grid.push(row);
    for (name, unit) in [("udp_rr", "ns"), ("tcp_rr", "ns"), ("tcp_stream", "Mbit/s")] {
        let mut row = vec![name.to_string(), unit.to_string()];
        let mut ratios = Vec::new();
        for g in net {
            let v = value(g, name);
            row.push(v.map_or("-".into(), |v| format!("{v:.0}")));
            row.push(g.phase(name).map_or("-".into(), xenhost::describe_exits));
            if let (Some(v), Some(l)) = (v, linux.and_then(|l| value(l, name))) {
                if g.name != "linux-net" && l > 0.0 {
                    ratios.push(format!("{} x{:.2}", g.name.trim_start_matches("hy-").trim_end_matches("-net"), v / l));
                }
            }
        }
        row.push(ratios.join(", "));
        grid.push(row);
    }
    println!(
        "\n{}",
        table::render_grid(
            "network: driven from dom0 over xenbr0 (rr: ns per transaction; stream: Mbit/s into the guest)",
            &header,
            &grid
        )
    );
    if let Some(g) =
        net.iter().find(|g| g.client.as_ref().is_some_and(|c| c.get("grants_before").is_some_and(|v| !v.is_null())))
    {
        let c = g.client.as_ref().map(|c| (&c["flood_rx"], &c["grants_before"], &c["grants_after"]));
        if let Some((rx, before, after)) = c {
            println!("{}: live grants {before} before and {after} after a flood of {rx} packets", g.name);
        }
    }
    Ok(())
}

/// The claim in numbers: exits (all, guest-caused, split into raise and delivery +
/// acknowledgement), EOI exits, cycles and time per interrupt of each variant against hvm.
fn print_interrupt_ratios(ours: &[GuestRun]) {
    let cost = |g: &GuestRun| -> Option<(xenhost::InterruptCost, f64)> {
        let c = xenhost::interrupt_cost(g.phase("interrupt")?, g.phase("interrupt_raise")?)?;
        Some((c, g.summary.bench("interrupt")?.value))
    };
    let Some((hvm, hvm_ns)) = ours.iter().find(|g| g.name == "hy-hvm").and_then(cost) else { return };
    let ratio = |v: f64, base: f64| if base > 0.0 { format!(" (x{:.2})", v / base) } else { String::new() };
    let cycles = |c: &xenhost::InterruptCost| c.cycles.map_or("-".into(), |v| format!("{v:.0}"));
    println!("interrupt: exits per interrupt raised, delivered and acknowledged, against hvm");
    println!("  (guest-caused = raise + deliver/ack; raise measured alone in `interrupt_raise`;");
    println!("   cycles: host TSC between the phase markers)");
    for g in ours {
        let Some((c, ns)) = cost(g) else { continue };
        let (vs_hvm, name) = (g.name != "hy-hvm", g.name.as_str());
        let r = |v: f64, base: f64| if vs_hvm { ratio(v, base) } else { String::new() };
        println!(
            "  {name:<18} exits {:.2}{}; guest-caused {:.2}{} = raise {:.2} + deliver/ack {:.2}{}; EOI {:.2}; \
             cycles {}{}; {:.0} ns{}",
            c.exits,
            r(c.exits, hvm.exits),
            c.guest,
            r(c.guest, hvm.guest),
            c.raise,
            c.deliver_ack,
            r(c.deliver_ack, hvm.deliver_ack),
            c.eoi,
            cycles(&c),
            match (c.cycles, hvm.cycles) {
                (Some(v), Some(b)) => r(v, b),
                _ => String::new(),
            },
            ns,
            r(ns, hvm_ns)
        );
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hyrun: {e}");
            return ExitCode::from(2);
        }
    };
    let result = if args.host == "xen" { run_xen(&args) } else { run_qemu(&args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyrun: {e}");
            ExitCode::FAILURE
        }
    }
}
