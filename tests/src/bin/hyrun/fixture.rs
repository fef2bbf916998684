//! Test data for `hyrun`'s reports: a real Xen run of `./run.sh --host xen --mode all
//! --rounds 5` whose host froze while its 62nd guest ran (`tests/data/hostfreeze/
//! xen-froze-load.*`: the agent's results of the 61 guests that ended, trimmed, and the
//! console log), replayed through the harness's boots ([`run_boots`]) with a fake boot,
//! so that the reports read what a real frozen run leaves.

use super::xen::plan;
use super::Args;
use harness::hostfreeze::{CONSOLE_LOG, MARK};
use harness::xen::guests::{Guest, Variant};
use harness::xen::results::RunResults;
use harness::xen::run::{run_boots, RunEnd};
use std::path::{Path, PathBuf};

/// The agent's results of the frozen boot.
const RESULTS: &str = include_str!("../../../data/hostfreeze/xen-froze-load.results.json");
/// Its console log: it froze while `hy-hybrid-pirq-load` ran.
const LOG: &str = include_str!("../../../data/hostfreeze/xen-froze-load.log");

/// A scratch directory, removed at the end.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh scratch directory named after `name`.
pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("hy-hyrun-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// The command line of that run.
pub fn args() -> Args {
    Args {
        host: "xen".into(),
        mode: "all".into(),
        bench: "all".into(),
        kernel: "hykernel".into(),
        results: "results".into(),
        memprobe: false,
        boots: None,
        busy: false,
        rounds: 5,
    }
}

/// The plan of that run (66 guests).
pub fn guests() -> Vec<Guest> {
    plan(&args(), &Variant::for_mode("all").unwrap()).unwrap()
}

/// A console for a local guest of ours (made up: the fixture keeps no consoles): its mode
/// report, `READY`, one benchmark, `DONE`.
fn console(mode: &str) -> String {
    format!(
        "MODE hypervisor=xen-4.17 mode={mode} irq=x2apic eoi=x2apic-msr clock=tsc timer=lapic-oneshot nic=none msi=lapic\n\
         READY boot_ns=3000000\n\
         BENCH {{\"name\":\"cpuid\",\"mode\":\"{mode}\",\"unit\":\"ns\",\"value\":88789.0,\"iterations\":1000}}\n\
         DONE\n"
    )
}

/// Replays the run in `work` with one boot allowed, as if the host had frozen while
/// `running` ran (`None`: as it did, while `hy-hybrid-pirq-load` ran), the agent's results
/// cut to the guests before it.
pub fn replay(work: &Path, running: Option<&str>) -> RunEnd {
    let mut results: RunResults = serde_json::from_str(RESULTS).unwrap();
    let log = match running {
        None => LOG.to_string(),
        Some(name) => {
            let at = results.guests.iter().position(|g| g.name == name).unwrap();
            results.guests.truncate(at);
            format!("[ 1.0] HY-AGENT: {name}: attempt 1\n{MARK}300s: stopping QEMU\n")
        }
    };
    run_boots(work, &guests(), 1, &mut |_: &[Guest], out: &Path| {
        std::fs::create_dir_all(out).unwrap();
        std::fs::write(out.join(".hy-run-host"), "").unwrap();
        std::fs::write(out.join(CONSOLE_LOG), &log).unwrap();
        for g in &results.guests {
            let mode = g.name.trim_start_matches("hy-").split('-').next().unwrap();
            if !g.name.contains("-net") && !g.name.ends_with("-load") && g.name.starts_with("hy-") {
                std::fs::write(out.join(&g.attempts[0].console_file), console(mode)).unwrap();
            }
        }
        std::fs::write(out.join("results.json"), serde_json::to_string(&results).unwrap()).unwrap();
        Err(harness::qemu::HarnessError("the Xen host run failed (exit status: 1)".into()))
    })
    .unwrap()
}
