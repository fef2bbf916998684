//! The toolstack and tracer as the agent drives them: `xl` and `xentrace`, each call
//! bounded (see [`super::proc`]), and the few lines of their output the agent reads.
//!
//! A guest runs under `xl create -F -p`: xl builds the domain paused, prints
//! `Waiting for domain NAME (domid N) to die`, and stays in the foreground until the
//! domain is gone (it carries out `on_poweroff`/`on_crash` itself and logs the shutdown
//! reason). So the end of that process *is* the domain going away, with no polling of
//! `xl domid`; if xl itself dies first, the agent falls back to asking `xl domid`.

use super::proc::{self, StepError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where the tools are and where they write.
#[derive(Clone, Debug)]
pub struct Tools {
    /// `xl`.
    pub xl: PathBuf,
    /// `xentrace`.
    pub xentrace: PathBuf,
    /// Directory of xenconsoled's guest logs (`--log-dir`): `guest-<name>.log`.
    pub console_dir: PathBuf,
    /// Directory for HVM serial files.
    pub serial_dir: PathBuf,
    /// Bound of every short `xl` call (`xl domid` takes ~0.3 s in the nested dom0).
    pub call_limit: Duration,
}

impl Tools {
    /// The dom0 of the project's test host (see `tests/xen/dom0-init`).
    pub fn dom0() -> Tools {
        Tools {
            xl: "xl".into(),
            xentrace: "/usr/lib/xen-4.17/bin/xentrace".into(),
            console_dir: "/var/log/xen/console".into(),
            serial_dir: "/var/log/xen".into(),
            call_limit: Duration::from_secs(20),
        }
    }

    /// The PV console log of guest `name`.
    pub fn pv_console(&self, name: &str) -> PathBuf {
        self.console_dir.join(format!("guest-{name}.log"))
    }

    /// The serial file of HVM guest `name`.
    pub fn serial_file(&self, name: &str) -> PathBuf {
        self.serial_dir.join(format!("{name}-serial.log"))
    }

    /// Runs `xl ARGS` bounded; its stdout.
    pub fn xl(&self, args: &[&str]) -> Result<String, StepError> {
        proc::run(Command::new(&self.xl).args(args), self.call_limit)
    }

    /// Whether domain `name` exists: `Ok(false)` only when xl itself says there is no such
    /// domain; a crash or hang of xl is an error, not an answer.
    pub fn exists(&self, name: &str) -> Result<bool, StepError> {
        match self.xl(&["domid", name]) {
            Ok(_) => Ok(true),
            Err(StepError::Status(..)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Xen's console ring; with `clear`, emptied afterwards.
    pub fn dmesg(&self, clear: bool) -> Result<String, StepError> {
        self.xl(if clear { &["dmesg", "-c"] } else { &["dmesg"] })
    }

    /// Starts `xl create -F -p CONFIG OVERRIDES...`, its output going to `log`.
    pub fn create_foreground(&self, config: &Path, overrides: &[String], log: &Path) -> Result<Child, StepError> {
        let out = File::create(log).map_err(|e| StepError::Spawn(format!("{}: {e}", log.display())))?;
        let err = out.try_clone().map_err(|e| StepError::Spawn(e.to_string()))?;
        Command::new(&self.xl)
            .args(["-v", "create", "-F", "-p"])
            .arg(config)
            .args(overrides)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| StepError::Spawn(format!("xl create: {e}")))
    }

    /// Starts `xentrace` writing `file` with event `mask` and `pages` buffer pages per pCPU
    /// (`-D`: drop what the buffers held before); what it says goes to `log`.
    pub fn start_trace(&self, file: &Path, mask: u32, pages: u32, log: &Path) -> Result<Child, StepError> {
        let out = File::create(log).map_err(|e| StepError::Spawn(format!("{}: {e}", log.display())))?;
        let err = out.try_clone().map_err(|e| StepError::Spawn(e.to_string()))?;
        Command::new(&self.xentrace)
            .args(["-D", "-S", &pages.to_string(), "-e", &format!("{mask:#010x}")])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| StepError::Spawn(format!("xentrace: {e}")))
    }
}

/// The domain id in xl's `Waiting for domain NAME (domid N) to die` line.
pub fn waiting_domid(line: &str) -> Option<u32> {
    let rest = line.split_once("(domid ")?.1;
    if !line.starts_with("Waiting for domain ") {
        return None;
    }
    rest.split(')').next()?.trim().parse().ok()
}

/// The shutdown reason code in xl's `Domain N has shut down, reason code R 0x..` line:
/// 0 poweroff, 1 reboot (an HVM triple fault reboots), 2 suspend, 3 crash, 4 watchdog.
pub fn shutdown_reason(line: &str) -> Option<u32> {
    let rest = line.split_once("has shut down, reason code ")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

/// Xen's log lines about domain `domid`: its own `(dN)` debug-port lines and Xen's
/// `dNvM ...` reports (a triple fault, a crash).
pub fn domain_lines(dmesg: &str, domid: u32) -> Vec<String> {
    let own = format!("(d{domid})");
    let about = format!("d{domid}v");
    let word = |l: &str| {
        l.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
            w.starts_with(&about) && w[about.len()..].bytes().all(|b| b.is_ascii_digit()) && w.len() > about.len()
        })
    };
    dmesg.lines().filter(|l| l.starts_with(&own) || word(l)).map(str::to_string).collect()
}

/// Xen's triple-fault report among a domain's lines (`dNvM Triple fault ...`).
pub fn triple_fault(lines: &[String]) -> Option<&String> {
    lines.iter().find(|l| l.contains("Triple fault"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xls_lines() {
        assert_eq!(waiting_domid("Waiting for domain t1 (domid 17) to die [pid 155]"), Some(17));
        assert_eq!(waiting_domid("Parsing config from /mnt/pvh.cfg"), None);
        assert_eq!(shutdown_reason("Domain 1 has shut down, reason code 0 0x0"), Some(0));
        assert_eq!(shutdown_reason("Domain 4 has shut down, reason code 1 0x1"), Some(1));
        assert_eq!(shutdown_reason("Done. Exiting now"), None);
    }

    #[test]
    fn picks_a_domains_lines_from_xens_log() {
        let dmesg = "(XEN) [ 1.0] HVM d3 save: PIT\n\
                     (XEN) [ 2.0] d3v0 Triple fault - invoking HVM shutdown action 1\n\
                     (XEN) [ 2.1] d13v0 Triple fault - invoking HVM shutdown action 1\n\
                     (d3) [ 2.2] PANIC: no\n\
                     (d13) [ 2.3] other guest\n";
        let lines = domain_lines(dmesg, 3);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(triple_fault(&lines).unwrap().contains("d3v0"));
        assert_eq!(domain_lines(dmesg, 13).len(), 2);
        assert!(triple_fault(&domain_lines(dmesg, 4)).is_none());
    }
}
