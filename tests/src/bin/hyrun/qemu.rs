//! `hyrun --host qemu`: one boot under QEMU TCG, the network driven from here, the
//! memory probe, one table and one JSON file.

use super::report::write_json;
use super::Args;
use harness::elf;
use harness::qemu::Exit;
use harness::session::{self, SessionConfig};
use harness::table::{self, Row};

/// Runs the QEMU host.
pub fn run(a: &Args) -> Result<(), String> {
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
    if !s.failures().is_empty() || r.exit != Exit::Success {
        return Err(format!("the run failed (exit {:?}): {:?}; console log {}", r.exit, s.failures(), r.log.display()));
    }
    let mut rows: Vec<Row> = s.benches.iter().map(Row::kernel).collect();
    if let Some(net) = &r.net {
        for d in &net.bench {
            if let Some(row) = rows.iter_mut().find(|row| row.name == d.name) {
                row.note = format!("host sees {:.1} {}", d.host_value, d.unit);
            }
        }
        if let Some(p) = net.ping {
            rows.push(Row::host("ping_rtt", "ms", p.avg_ms, &format!("{}/{} replies", p.received, p.sent)));
        }
    }
    if let Some(ns) = s.ready_boot_ns {
        rows.push(Row::host("boot_ready", "ms", ns as f64 / 1e6, "entry point to READY, the kernel's own clock"));
    }
    rows.push(Row::host("image_file", "KiB", image.len() as f64 / 1024.0, "ELF file, with symbols"));
    let loaded = elf::loaded_bytes(&image).map_err(|e| e.to_string())?;
    rows.push(Row::host("image_loaded", "KiB", loaded as f64 / 1024.0, "PT_LOAD memory size"));
    if a.memprobe {
        eprintln!("==> finding the smallest memory the kernel boots in (bisection, bench=clock)");
        let floor = session::memory_floor(&image).map_err(|e| e.to_string())?;
        let mib = session::min_memory(&a.kernel, 256).map_err(|e| e.to_string())?;
        rows.push(Row::host(
            "min_memory",
            "MiB",
            mib as f64,
            &format!("QEMU -m, boots to DONE (floor {floor}: image end + 1 MiB heap)"),
        ));
    }
    let ml = s.mode.as_ref().map(ToString::to_string).unwrap_or_default();
    println!("\n{}", table::render(&format!("host=qemu mode={mode}  ({})\n{ml}", r.network), &rows));
    if !s.skips.is_empty() {
        println!("skipped: {}", s.skips.join("; "));
    }
    let out = write_json(&a.results, &format!("qemu-{mode}"), &table::results_json("qemu", &mode, &ml, &rows))?;
    println!("results written to {}", out.display());
    Ok(())
}
