//! `hyrun`: boots the kernel on a host, drives its benchmarks, prints the results table
//! and writes `results/<host>-<mode>.json`. `./run.sh` builds and calls it.

use harness::qemu::Exit;
use harness::session::{self, SessionConfig};
use harness::table::{self, Row};
use harness::{elf, paths};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: hyrun [--host qemu] [--mode auto|hvm|all] [--bench LIST] [--kernel ELF] [--results DIR] [--no-memprobe]";

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
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
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
    if a.host != "qemu" {
        return Err(format!(
            "--host {}: hyrun drives QEMU only; the Xen host runs from tests/xen (see README)",
            a.host
        ));
    }
    if !["auto", "hvm", "all"].contains(&a.mode.as_str()) {
        return Err(format!(
            "--mode {}: on QEMU the modes are auto, hvm, all (= hvm)",
            a.mode
        ));
    }
    Ok(a)
}

fn run(a: &Args) -> Result<(), String> {
    let image = std::fs::read(&a.kernel)
        .map_err(|e| format!("{}: {e} (build the kernel first)", a.kernel.display()))?;
    let mode = if a.mode == "all" {
        "hvm".to_string()
    } else {
        a.mode.clone()
    };
    let cfg = SessionConfig {
        kernel: a.kernel.clone(),
        mode: mode.clone(),
        bench: a.bench.clone(),
        name: format!("{}-{}", a.host, mode),
        rr_count: 2000,
        stream_bytes: 16 << 20,
    };
    let r = session::run(&cfg).map_err(|e| e.to_string())?;
    let s = &r.summary;
    if !s.panics.is_empty()
        || !s.errors.is_empty()
        || !s.malformed.is_empty()
        || r.exit != Exit::Success
    {
        return Err(format!(
            "the run failed (exit {:?}): errors {:?} panics {:?} malformed {:?}; console log {}",
            r.exit,
            s.errors,
            s.panics,
            s.malformed,
            r.log.display()
        ));
    }
    let mode_line = s.mode.as_ref().map(|m| {
        harness::console::MODE_KEYS
            .iter()
            .map(|k| format!("{k}={}", m.get(k)))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let mut rows: Vec<Row> = s.benches.iter().map(Row::kernel).collect();
    for d in &r.driven {
        if let Some(row) = rows.iter_mut().find(|row| row.name == d.kernel.name) {
            row.note = format!("host sees {:.1} {}", d.host_value, d.kernel.unit);
        }
    }
    if let Some(p) = r.ping {
        rows.push(Row::host(
            "ping_rtt",
            "ms",
            p.avg_ms,
            &format!("{}/{} replies", p.received, p.sent),
        ));
    }
    rows.push(Row::host(
        "image_file",
        "KiB",
        image.len() as f64 / 1024.0,
        "ELF file, with symbols",
    ));
    let loaded = elf::loaded_bytes(&image).map_err(|e| e.to_string())?;
    rows.push(Row::host(
        "image_loaded",
        "KiB",
        loaded as f64 / 1024.0,
        "PT_LOAD memory size",
    ));
    if a.memprobe {
        eprintln!("==> finding the smallest memory the kernel boots in (bisection, bench=clock)");
        let mib = session::min_memory(&a.kernel, 4, 256).map_err(|e| e.to_string())?;
        rows.push(Row::host(
            "min_memory",
            "MiB",
            mib as f64,
            "QEMU -m, boots to DONE",
        ));
    }
    let title = format!(
        "host={} mode={}  ({})\n{}",
        a.host,
        mode,
        r.network,
        mode_line.clone().unwrap_or_default()
    );
    println!("\n{}", table::render(&title, &rows));
    if !s.skips.is_empty() {
        println!("skipped: {}", s.skips.join("; "));
    }
    std::fs::create_dir_all(&a.results).map_err(|e| format!("{}: {e}", a.results.display()))?;
    let out = a.results.join(format!("{}-{}.json", a.host, mode));
    let json = table::results_json(&a.host, &mode, &mode_line.unwrap_or_default(), &rows);
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    println!("results written to {}", out.display());
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hyrun: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyrun: {e}");
            ExitCode::FAILURE
        }
    }
}
