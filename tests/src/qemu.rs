//! Running the kernel under QEMU with its serial console captured.
//!
//! Every run holds an exclusive lock on `/tmp/hy-qemu.lock` (one emulated machine at a
//! time fits on a small host), writes the console to a log file, and is killed when the
//! [`Qemu`] value is dropped, so no test or tool can leave a VM behind or hang on one:
//! every wait takes a timeout.

use crate::console::BootSummary;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Lock file shared by everything here that starts an emulator.
pub const LOCK_PATH: &str = "/tmp/hy-qemu.lock";

/// How to start QEMU.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// The QEMU binary.
    pub binary: PathBuf,
    /// `-M` value.
    pub machine: String,
    /// `-cpu` value.
    pub cpu: String,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// Kernel ELF for `-kernel`.
    pub kernel: PathBuf,
    /// Kernel command line.
    pub append: String,
    /// Attach QEMU's isa-debug-exit device, so the kernel's status becomes QEMU's.
    pub debug_exit: bool,
    /// More arguments (network devices, …).
    pub extra: Vec<String>,
    /// Name of this run, for the log file.
    pub name: String,
}

impl QemuConfig {
    /// QEMU's defaults plus a captured console: `qemu-system-x86_64 -kernel K -append A`
    /// as a user would type it (i440fx, qemu64 CPU, 128 MiB, no debug-exit device).
    pub fn bare(kernel: &Path, append: &str, name: &str) -> Self {
        QemuConfig {
            machine: String::new(),
            cpu: String::new(),
            memory_mib: 0,
            debug_exit: false,
            ..Self::standard(kernel, append, name)
        }
    }

    /// The configuration the tests and `run.sh` use: q35, `-cpu max`, 256 MiB, TCG, no
    /// display, console on stdio, debug-exit device, no default NIC.
    pub fn standard(kernel: &Path, append: &str, name: &str) -> Self {
        QemuConfig {
            binary: crate::paths::qemu(),
            machine: "q35".into(),
            cpu: "max".into(),
            memory_mib: 256,
            kernel: kernel.to_path_buf(),
            append: append.into(),
            debug_exit: true,
            extra: Vec::new(),
            name: name.into(),
        }
    }

    /// The full argument list.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        if !self.machine.is_empty() {
            a.extend(["-accel".into(), "tcg".into(), "-M".into(), self.machine.clone()]);
        }
        if !self.cpu.is_empty() {
            a.extend(["-cpu".into(), self.cpu.clone()]);
        }
        if self.memory_mib != 0 {
            a.extend(["-m".into(), self.memory_mib.to_string()]);
        }
        a.extend(["-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"].map(String::from));
        if self.debug_exit {
            // With debug-exit the kernel's status reaches the host; without, it is the
            // plain `qemu -kernel` a user types, default NIC included.
            a.extend(["-nic".into(), "none".into()]);
        }
        a.extend(["-kernel".into(), self.kernel.display().to_string(), "-append".into(), self.append.clone()]);
        if self.debug_exit {
            a.extend(["-device".into(), "isa-debug-exit,iobase=0xf4,iosize=0x04".into()]);
        }
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// How the VM ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The kernel reported success through debug-exit (QEMU status 1).
    Success,
    /// The kernel reported failure through debug-exit (QEMU status 3).
    Failure,
    /// The guest powered off through ACPI (QEMU status 0): no status was reported.
    PoweredOff,
    /// QEMU ended with another status.
    Other(i32),
    /// QEMU was killed by a signal.
    Signalled,
}

impl Exit {
    fn from_status(code: Option<i32>) -> Exit {
        match code {
            Some(1) => Exit::Success,
            Some(3) => Exit::Failure,
            Some(0) => Exit::PoweredOff,
            Some(c) => Exit::Other(c),
            None => Exit::Signalled,
        }
    }
}

/// A harness failure, with the log to look at.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

type Lines = Arc<(Mutex<(Vec<String>, bool)>, Condvar)>;

/// Exclusive use of the emulator (and of the host network set up for it): an `flock` on
/// [`LOCK_PATH`], released on drop.
pub struct EmulatorLock {
    _file: File,
}

impl EmulatorLock {
    /// Waits until no other run holds the lock, then takes it.
    pub fn acquire() -> Result<EmulatorLock, HarnessError> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_PATH)
            .map_err(|e| HarnessError(format!("{LOCK_PATH}: {e}")))?;
        f.lock().map_err(|e| HarnessError(format!("locking {LOCK_PATH}: {e}")))?;
        Ok(EmulatorLock { _file: f })
    }
}

/// A running QEMU.
pub struct Qemu {
    child: Child,
    lines: Lines,
    log: PathBuf,
    exit: Option<Exit>,
    _lock: EmulatorLock,
}

/// Removes terminal escape sequences (SeaBIOS clears the screen) and carriage returns.
pub fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    while let Some(&n) = chars.peek() {
                        chars.next();
                        if n.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

impl Qemu {
    /// Starts QEMU under `lock` and begins capturing its console.
    pub fn start(cfg: &QemuConfig, lock: EmulatorLock) -> Result<Qemu, HarnessError> {
        if !cfg.kernel.exists() {
            return Err(HarnessError(format!(
                "kernel image {} not found: build it with `cargo build --release -p hykernel --target x86_64-unknown-none`",
                cfg.kernel.display()
            )));
        }
        let log = crate::paths::logs().join(format!("{}.log", cfg.name));
        let mut log_file = File::create(&log).map_err(|e| HarnessError(format!("{}: {e}", log.display())))?;
        let _ = writeln!(log_file, "# {} {}", cfg.binary.display(), cfg.args().join(" "));
        let mut child = Command::new(&cfg.binary)
            .args(cfg.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                HarnessError(format!("starting {}: {e} (is QEMU installed? run ./run.sh once)", cfg.binary.display()))
            })?;
        let lines: Lines = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let sink = Arc::new(Mutex::new(log_file));
        for (stream, prefix) in [
            (stdout.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), ""),
            (stderr.map(|s| Box::new(s) as Box<dyn std::io::Read + Send>), "qemu: "),
        ] {
            let Some(stream) = stream else { continue };
            let (lines, sink) = (lines.clone(), sink.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut raw = Vec::new();
                loop {
                    raw.clear();
                    match reader.read_until(b'\n', &mut raw) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let line = format!(
                                "{prefix}{}",
                                strip_escapes(String::from_utf8_lossy(&raw).trim_end_matches('\n'))
                            );
                            if let Ok(mut f) = sink.lock() {
                                let _ = writeln!(f, "{line}");
                            }
                            let (m, cv) = &*lines;
                            if let Ok(mut g) = m.lock() {
                                g.0.push(line);
                            }
                            cv.notify_all();
                        }
                    }
                }
                if prefix.is_empty() {
                    let (m, cv) = &*lines;
                    if let Ok(mut g) = m.lock() {
                        g.1 = true; // console closed: QEMU is ending
                    }
                    cv.notify_all();
                }
            });
        }
        Ok(Qemu { child, lines, log, exit: None, _lock: lock })
    }

    /// The console lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().map(|g| g.0.clone()).unwrap_or_default()
    }

    /// What the console says so far.
    pub fn summary(&self) -> BootSummary {
        BootSummary::from_lines(&self.lines())
    }

    /// The console log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn tail(&self) -> String {
        let l = self.lines();
        l[l.len().saturating_sub(15)..].join("\n")
    }

    /// Waits until a console line satisfies `pred`; returns it. Fails on timeout, on
    /// QEMU ending first, or on a kernel panic.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.lines;
        let mut seen = 0;
        let mut g = m.lock().map_err(|_| HarnessError("console reader died".into()))?;
        loop {
            for line in &g.0[seen..] {
                if pred(line) {
                    return Ok(line.clone());
                }
                if line.starts_with("PANIC") {
                    drop(g);
                    return Err(HarnessError(format!(
                        "kernel panicked while waiting for {what}; log {}:\n{}",
                        self.log.display(),
                        self.tail()
                    )));
                }
            }
            seen = g.0.len();
            if g.1 {
                drop(g);
                return Err(HarnessError(format!(
                    "QEMU ended before {what}; log {}:\n{}",
                    self.log.display(),
                    self.tail()
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                drop(g);
                return Err(HarnessError(format!(
                    "no {what} within {timeout:?}; log {}:\n{}",
                    self.log.display(),
                    self.tail()
                )));
            }
            g = cv.wait_timeout(g, deadline - now).map_err(|_| HarnessError("console reader died".into()))?.0;
        }
    }

    /// Waits for QEMU to end; kills it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Exit, HarnessError> {
        if let Some(e) = self.exit {
            return Ok(e);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Let the reader threads drain the console.
                    let _ = self.wait_for("end of console", Duration::from_secs(2), |_| false);
                    let e = Exit::from_status(status.code());
                    self.exit = Some(e);
                    return Ok(e);
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(HarnessError(format!(
                        "QEMU still running after {timeout:?}: killed; log {}:\n{}",
                        self.log.display(),
                        self.tail()
                    )));
                }
                Err(e) => return Err(HarnessError(format!("waiting for QEMU: {e}"))),
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_seabios_escapes() {
        assert_eq!(
            strip_escapes("\u{1b}c\u{1b}[?7l\u{1b}[2J\u{1b}[0mSeaBIOS (version 1.16)\r"),
            "SeaBIOS (version 1.16)"
        );
        assert_eq!(strip_escapes("plain"), "plain");
        assert_eq!(strip_escapes("cut \u{1b}["), "cut ");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Exit::from_status(Some(1)), Exit::Success);
        assert_eq!(Exit::from_status(Some(3)), Exit::Failure);
        assert_eq!(Exit::from_status(Some(0)), Exit::PoweredOff);
        assert_eq!(Exit::from_status(None), Exit::Signalled);
    }

    #[test]
    fn standard_args() {
        let c = QemuConfig::standard(Path::new("/k"), "mode=hvm bench=none", "t");
        let a = c.args().join(" ");
        assert!(a.contains("-kernel /k -append mode=hvm bench=none"));
        assert!(a.contains("isa-debug-exit,iobase=0xf4"));
        assert!(a.contains("-nic none"));
        let bare = QemuConfig::bare(Path::new("/k"), "bench=clock", "t").args().join(" ");
        assert_eq!(bare, "-display none -serial stdio -monitor none -no-reboot -kernel /k -append bench=clock");
    }
}
