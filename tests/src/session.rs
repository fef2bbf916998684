//! One complete run of the kernel under QEMU: boot, wait for the mode report, drive the
//! network benchmarks (when selected), end the run, and collect everything printed.
//! Used by `hyrun` (behind `./run.sh`) and by the integration tests.

use crate::console::BootSummary;
use crate::hostnet::HostNet;
use crate::netbench::{self, NetPlan, NetReport, Server};
use crate::qemu::{EmulatorLock, Exit, HarnessError, Qemu, QemuConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to run.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Kernel image.
    pub kernel: PathBuf,
    /// `mode=` for the kernel.
    pub mode: String,
    /// `bench=` for the kernel.
    pub bench: String,
    /// Name for log files.
    pub name: String,
    /// Round trips per request-response benchmark.
    pub rr_count: u32,
    /// Bytes for the stream benchmark.
    pub stream_bytes: u64,
}

/// What a run produced.
#[derive(Debug)]
pub struct SessionResult {
    /// Everything the console said.
    pub summary: BootSummary,
    /// The network drive (benchmarks, ping), if the network benchmarks ran.
    pub net: Option<NetReport>,
    /// How QEMU ended.
    pub exit: Exit,
    /// The console log.
    pub log: PathBuf,
    /// How the host reached the guest.
    pub network: String,
}

/// True if `bench` selects the network benchmarks.
pub fn wants_net(bench: &str) -> bool {
    bench == "all" || bench.split(',').any(|b| b == "net")
}

/// Boots, drives and ends one run. Progress goes to stderr.
pub fn run(cfg: &SessionConfig) -> Result<SessionResult, HarnessError> {
    let lock = EmulatorLock::acquire()?; // before the tap device: it is shared too
    let net = HostNet::setup()?;
    let append = format!("mode={} bench={} {}", cfg.mode, cfg.bench, net.guest_cmdline());
    let mut qc = QemuConfig::standard(&cfg.kernel, &append, &cfg.name);
    qc.extra = net.qemu_args();
    eprintln!("==> booting {} under QEMU TCG: {append} (network: {})", cfg.kernel.display(), net.describe());
    let mut vm = Qemu::start(&qc, lock)?;
    let mode = vm.wait_for("mode report", Duration::from_secs(120), |l| l.starts_with("MODE "))?;
    eprintln!("    {mode}");
    let mut net_report = None;
    if wants_net(&cfg.bench) {
        eprintln!("==> local benchmarks running in the guest; waiting for its network");
        let ready = vm.wait_for("network ready", Duration::from_secs(600), |l| {
            l.starts_with("NET ready") || l.starts_with("SKIP net")
        })?;
        if ready.starts_with("NET ready") {
            let plan = NetPlan {
                server: Server::Hykernel,
                ping: if net.endpoints().ping.is_some() { 10 } else { 0 },
                echo: false,
                rr: cfg.rr_count,
                stream_bytes: cfg.stream_bytes,
                flood: 0,
                ..NetPlan::default()
            };
            eprintln!(
                "==> driving udp_rr, tcp_rr ({} round trips each), tcp_stream and tcp_maerts ({} MiB each)",
                plan.rr,
                plan.stream_bytes >> 20
            );
            let r = netbench::drive(&net.endpoints(), &plan);
            if !r.ok() {
                return Err(HarnessError(format!(
                    "driving the network benchmarks failed: {}; console log {}",
                    r.errors.join("; "),
                    vm.log_path().display()
                )));
            }
            net_report = Some(r);
        }
    } else {
        eprintln!("==> benchmarks running in the guest");
    }
    let exit = vm.wait_exit(Duration::from_secs(600))?;
    Ok(SessionResult {
        summary: vm.summary(),
        net: net_report,
        exit,
        log: vm.log_path().to_path_buf(),
        network: net.describe(),
    })
}

/// The least guest RAM (MiB) that can work for `image`: the image must fit below it (QEMU
/// cannot load it otherwise, and then waits for ever with no output), and the kernel needs
/// at least 1 MiB of heap after its end (it stops with "no usable heap" below that).
pub fn memory_floor(image: &[u8]) -> Result<u32, HarnessError> {
    const MIB: u64 = 1 << 20;
    const MIN_HEAP: u64 = MIB;
    let end = crate::elf::load_end(image).map_err(|e| HarnessError(e.to_string()))?;
    Ok((end + MIN_HEAP).div_ceil(MIB) as u32)
}

/// Smallest guest RAM (MiB) in which the kernel boots and finishes `bench=clock`, found by
/// bisection between the [`memory_floor`] of its image and `hi`, which must work. No boot
/// below the floor is tried (QEMU would wait for ever), and each boot ends as soon as QEMU
/// does: the kernel powers off at once when it lacks memory.
pub fn min_memory(kernel: &Path, hi: u32) -> Result<u32, HarnessError> {
    let image = std::fs::read(kernel).map_err(|e| HarnessError(format!("{}: {e}", kernel.display())))?;
    let floor = memory_floor(&image)?;
    let boots = |mib: u32| -> Result<bool, HarnessError> {
        let mut qc = QemuConfig::standard(kernel, "bench=clock", &format!("memprobe-{mib}"));
        qc.memory_mib = mib;
        let mut vm = Qemu::start(&qc, EmulatorLock::acquire()?)?;
        Ok(matches!(vm.wait_exit(Duration::from_secs(30)), Ok(Exit::Success)) && vm.summary().done)
    };
    if !boots(hi)? {
        return Err(HarnessError(format!("the kernel does not boot in {hi} MiB")));
    }
    let (mut bad, mut good) = (floor.saturating_sub(1), hi);
    while good - bad > 1 {
        let mid = bad + (good - bad) / 2;
        if boots(mid)? {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(good)
}
