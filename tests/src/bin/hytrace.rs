//! `hytrace TRACE...`: VM exits per domain and reason, and per benchmark phase with exits
//! per operation, from xentrace files (as `tests/xen/payload/run.sh` records them).

use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() || files.iter().any(|f| f == "-h" || f == "--help") {
        eprintln!("usage: hytrace TRACE...");
        return ExitCode::from(2);
    }
    let mut status = ExitCode::SUCCESS;
    for f in &files {
        match std::fs::read(f) {
            Ok(bytes) => {
                let (trace, err) = harness::xentrace::parse_lenient(&bytes);
                println!("== {f}\n{}", trace.summary());
                if let Some(e) = err {
                    eprintln!("hytrace: {f}: {e} (report covers the part before it)");
                    status = ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("hytrace: {f}: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
