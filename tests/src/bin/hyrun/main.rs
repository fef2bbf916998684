//! `hyrun`: boots the kernel on a host, drives its benchmarks, prints the results tables
//! and writes `results/<host>-<variant>.json`. `./run.sh` builds and calls it.
//!
//! - `--host qemu` ([`qemu`]): QEMU TCG on this machine; the network benchmarks are
//!   driven from here.
//! - `--host xen` ([`xen`]): the project's Xen test host (`tests/xen/`); the kernel runs
//!   as HVM, hybrid and/or PVH domUs next to a Linux PVH domU, every benchmark row
//!   carries its VM exits per operation from the host's trace, and the network is driven
//!   from dom0 by the agent. [`report`] prints and writes what it found.
//! - `--host kvm` ([`kvm`]): the same image booted without Xen; the kernel runs as an L2
//!   KVM guest (hvm, and the KVM hybrid mode: kvmclock + PV EOI), exits from L1's trace.
//! - `--host xen,kvm` ([`both`]): both hosts one after the other, each printing its own
//!   tables, then one view of both side by side ([`side`]).

mod both;
mod cut;
#[cfg(test)]
mod fixture;
mod kvm;
mod load;
mod network;
mod qemu;
mod report;
mod side;
mod stability;
mod xen;

use harness::paths;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: hyrun [--host qemu|xen|kvm|xen,kvm] [--mode auto|hvm|hybrid|pvh|pv|all] [--bench LIST] [--kernel ELF] \
                     [--results DIR] [--no-memprobe] [--rounds N] [--boots N [--busy]]\n\
                     --mode on xen may also be a comma list of single modes (pv,pvh): just those, in one boot\n\
                     --host xen,kvm: the Xen host, then the KVM host, then both side by side; --mode all or a comma \
                     list of hvm, hybrid, pvh, pv (KVM runs hvm and hybrid)\n\
                     --rounds N (xen, kvm): interleaved rounds of each network guest, figures are medians (default 5)\n\
                     --boots N (xen): boot each variant and the Linux peer N times without retries and report \
                     the failure rates; --busy: with one competing busy process on this machine";

/// The command line.
#[derive(Clone)]
pub struct Args {
    /// `qemu`, `xen`, `kvm`, or `xen,kvm` for both.
    pub host: String,
    /// The mode, or `all`.
    pub mode: String,
    /// `bench=` for the kernel.
    pub bench: String,
    /// The kernel image.
    pub kernel: PathBuf,
    /// Where JSON results go.
    pub results: PathBuf,
    /// Whether to find the smallest memory the kernel boots in (QEMU only).
    pub memprobe: bool,
    /// Boots per guest kind for the stability measurement (Xen only), if asked for.
    pub boots: Option<u32>,
    /// Whether a busy process competes during the stability measurement.
    pub busy: bool,
    /// Interleaved rounds of each network guest (Xen only).
    pub rounds: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        host: "qemu".into(),
        mode: "hvm".into(),
        bench: "all".into(),
        kernel: paths::kernel(),
        results: paths::workspace().join("results"),
        memprobe: true,
        boots: None,
        busy: false,
        rounds: 5,
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
            "--busy" => a.busy = true,
            "--rounds" => {
                let v = value("--rounds")?;
                a.rounds = v.parse().ok().filter(|&n| n > 0).ok_or(format!("--rounds {v}: not a count of rounds"))?;
            }
            "--boots" => {
                let v = value("--boots")?;
                a.boots = Some(v.parse().ok().filter(|&n| n > 0).ok_or(format!("--boots {v}: not a count of boots"))?);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag '{other}'\n{USAGE}")),
        }
    }
    if a.host == "xen,kvm" {
        both::modes(&a.mode)?;
    }
    let modes: &[&str] = match a.host.as_str() {
        "qemu" => &["auto", "hvm", "all"],
        "xen" => &["hvm", "hybrid", "pvh", "pv", "all"],
        "kvm" => &["hvm", "hybrid", "all"],
        "xen,kvm" => &[],
        h => return Err(format!("--host {h}: unknown host (qemu, xen, kvm, or xen,kvm for both)")),
    };
    let listed = a.host == "xen" && a.mode.contains(',') && harness::xen::guests::Variant::for_mode(&a.mode).is_some();
    if !modes.contains(&a.mode.as_str()) && !listed && a.host != "xen,kvm" {
        return Err(format!("--mode {}: on --host {} the modes are {}", a.mode, a.host, modes.join(", ")));
    }
    proto::cmdline::parse(&format!("bench={}", a.bench)).map_err(|e| format!("--bench: {e}"))?;
    if (a.boots.is_some() || a.busy) && a.host != "xen" {
        return Err("--boots and --busy measure the Xen host: use --host xen".into());
    }
    if a.busy && a.boots.is_none() {
        return Err("--busy goes with --boots N".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hyrun: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match (args.host.as_str(), args.boots) {
        ("xen", Some(n)) => stability::run(&args, n, args.busy),
        ("xen", None) => xen::run(&args),
        ("kvm", _) => kvm::run(&args),
        ("xen,kvm", _) => both::run(&args),
        _ => qemu::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hyrun: {e}");
            ExitCode::FAILURE
        }
    }
}
