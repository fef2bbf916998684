//! `hytrace`: xentrace files (as `tests/xen/payload/run.sh` records them) on the build machine.
//!
//! - `hytrace [summary] TRACE...`: VM exits per domain and reason, and per benchmark phase with
//!   exits per operation ([`harness::xentrace::Trace::summary`]), then the parser's warnings.
//! - `hytrace trim IN OUT [--all-kinds] [--from-first-marker] [--until-last-marker]
//!   [--cut-phase NAME:OPS:EVENT:WORD0]`: shrinks a trace into a small, still valid sample for
//!   `tests/data/xentrace/` ([`harness::xentrace::trim()`] says what each option keeps).

use harness::xentrace::{self, CutPhase, TrimOptions};
use std::process::ExitCode;

const USAGE: &str = "\
usage: hytrace [summary] TRACE...
       hytrace trim IN OUT [--all-kinds] [--from-first-marker] [--until-last-marker]
                           [--cut-phase NAME:OPS:EVENT:WORD0]

summary (the default): VM exits per domain and exit reason, and per guest phase with exits
  per operation; a file that does not parse completely is reported as far as it could be read.
trim: keeps only the records the parser uses (switches, VM exits, guest records, lost-record
  reports, the exit details it decodes), without switches between dom0 and idle vCPUs, and
  writes them to OUT in the same format; a file that does not parse completely is refused.
  --all-kinds          keep records of every kind (use with the options below)
  --from-first-marker  drop the records before the first guest record (by TSC), except each
                       pCPU's last switch before it
  --until-last-marker  drop the records after the last guest record (by TSC)
  --cut-phase NAME:OPS:EVENT:WORD0
                       keep only the first OPS operations of phase NAME; operation k starts
                       with the k-th record of id EVENT whose first extra word is WORD0 (e.g.
                       interrupt:500:0x8200d:0x83f, the x2APIC SELF_IPI write); the markers'
                       iteration count becomes OPS";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    match args[0].as_str() {
        "trim" => trim(&args[1..]),
        "summary" => summary(&args[1..]),
        _ => summary(&args),
    }
}

/// Prints the summary of each file; fails if any could not be read or parsed completely.
fn summary(files: &[String]) -> ExitCode {
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut status = ExitCode::SUCCESS;
    for f in files {
        match std::fs::read(f) {
            Ok(bytes) => {
                let (trace, err) = xentrace::parse_lenient(&bytes);
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

/// Parses `trim`'s arguments: the two paths and the options.
fn trim_args(args: &[String]) -> Result<(&str, &str, TrimOptions), String> {
    let mut opts = TrimOptions::default();
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--all-kinds" => opts.all_kinds = true,
            "--from-first-marker" => opts.from_first_marker = true,
            "--until-last-marker" => opts.until_last_marker = true,
            "--cut-phase" => {
                let spec = it.next().ok_or("--cut-phase needs NAME:OPS:EVENT:WORD0")?;
                let cut = CutPhase::parse(spec).ok_or_else(|| {
                    format!("--cut-phase wants NAME:OPS:EVENT:WORD0, e.g. interrupt:500:0x8200d:0x83f, not {spec:?}")
                })?;
                opts.cut_phase = Some(cut);
            }
            o if o.starts_with("--") => return Err(format!("unknown option {o}")),
            p => paths.push(p),
        }
    }
    match paths[..] {
        [input, output] => Ok((input, output, opts)),
        _ => Err("trim needs IN and OUT".to_string()),
    }
}

/// `hytrace trim`: writes the trimmed trace and says how much of it was kept.
fn trim(args: &[String]) -> ExitCode {
    let (input, output, opts) = match trim_args(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hytrace trim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = std::fs::read(input).map_err(|e| format!("{input}: {e}")).and_then(|bytes| {
        let trimmed = xentrace::trim(&bytes, &opts).map_err(|e| format!("{input}: {e}"))?;
        std::fs::write(output, &trimmed.bytes).map_err(|e| format!("{output}: {e}"))?;
        Ok(trimmed)
    });
    match result {
        Ok(t) => {
            println!("{output}: kept {} of {} records", t.kept, t.total);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hytrace trim: {e}");
            ExitCode::FAILURE
        }
    }
}
