//! Child processes with deadlines: every program the agent runs either ends in time or is
//! killed, and every failure says which step it was and what happened.
//!
//! Under the nested test host, dom0 programs have been seen to hang or die of heap
//! corruption; nothing here waits without a bound, and a program killed by a signal is
//! told apart from one that failed on its own (the first is the host's failure, the
//! second usually ours).

use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How a bounded step went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The program could not be started at all.
    Spawn(String),
    /// It ran past its deadline and was killed.
    Timeout(Duration),
    /// It was killed by a signal (crashed, or killed from outside).
    Signal(i32),
    /// It ended with a failure status.
    Status(i32, String),
}

impl StepError {
    /// True for failures that are the host's, not the program's own verdict: a crash, a
    /// kill, a hang.
    pub fn is_dom0_failure(&self) -> bool {
        matches!(self, StepError::Timeout(_) | StepError::Signal(_))
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Spawn(e) => write!(f, "could not start: {e}"),
            StepError::Timeout(d) => write!(f, "still running after {d:?}: killed"),
            StepError::Signal(s) => write!(f, "killed by signal {s}{}", signal_name(*s)),
            StepError::Status(c, out) => write!(f, "exit status {c}: {}", out.trim()),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// What an ended child's status means.
pub fn judge(status: ExitStatus, output: &str) -> Result<(), StepError> {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(c), _) => Err(StepError::Status(c, output.to_string())),
        (None, Some(s)) => Err(StepError::Signal(s)),
        (None, None) => Err(StepError::Status(-1, output.to_string())),
    }
}

/// Reads a pipe to its end on a thread; the text arrives on the returned channel.
fn drain(r: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut r) = r {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            let _ = tx.send(v);
        });
    }
    rx
}

/// Runs `cmd` to completion within `limit`, killing it (and whatever it started: it runs
/// in a process group of its own) if it overruns; returns its stdout (stderr is appended
/// to the error text on failure).
pub fn run(cmd: &mut Command, limit: Duration) -> Result<String, StepError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| StepError::Spawn(e.to_string()))?;
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let status = wait_until(&mut child, Instant::now() + limit);
    if status.is_none() {
        kill_group(child.id());
    }
    // The pipes close when the group is gone; a grandchild that escaped the group must
    // not hold this step up.
    let text = |rx: Receiver<Vec<u8>>| {
        rx.recv_timeout(Duration::from_secs(2)).map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()
    };
    let (stdout, stderr) = (text(out), text(err));
    match status {
        Some(s) => judge(s, &format!("{stderr}{stdout}")).map(|()| stdout),
        None => Err(StepError::Timeout(limit)),
    }
}

/// Kills process group `pgid` (a child started with `process_group(0)` and its children).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits for `child` until `deadline`; kills and reaps it if it is still running then
/// (returning `None`).
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Sends signal `name` (`INT`, `TERM`, ...) to `child` with kill(1), bounded; SIGINT asks
/// xentrace to flush its buffers and stop.
pub fn signal(child: &Child, name: &str) -> bool {
    run(Command::new("kill").args(["-s", name, &child.id().to_string()]), Duration::from_secs(10)).is_ok()
}

/// SIGINT's number, as a status reports it.
pub const SIGINT: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_runs_say_what_happened() {
        assert_eq!(run(Command::new("sh").args(["-c", "echo hi"]), Duration::from_secs(5)), Ok("hi\n".into()));
        let t0 = Instant::now();
        let e = run(Command::new("sleep").arg("30"), Duration::from_millis(300)).unwrap_err();
        assert_eq!(e, StepError::Timeout(Duration::from_millis(300)));
        // A grandchild holding the pipes open does not hold the step up.
        let e = run(Command::new("sh").args(["-c", "sleep 30; echo late"]), Duration::from_millis(300)).unwrap_err();
        assert_eq!(e, StepError::Timeout(Duration::from_millis(300)));
        assert!(t0.elapsed() < Duration::from_secs(5) && e.is_dom0_failure());
        let e = run(Command::new("sh").args(["-c", "kill -SEGV $$"]), Duration::from_secs(5)).unwrap_err();
        assert_eq!(e, StepError::Signal(11));
        assert!(e.to_string().contains("SIGSEGV") && e.is_dom0_failure());
        let e = run(Command::new("sh").args(["-c", "echo nope >&2; exit 3"]), Duration::from_secs(5)).unwrap_err();
        assert_eq!(e, StepError::Status(3, "nope\n".into()));
        assert!(!e.is_dom0_failure());
        assert!(matches!(
            run(&mut Command::new("/nonexistent/tool"), Duration::from_secs(1)),
            Err(StepError::Spawn(_))
        ));
    }

    #[test]
    fn signals_reach_children() {
        // TERM, not INT: a test run started in the background of a shell without job
        // control inherits SIGINT ignored, and so would `sleep` (xentrace, which the agent
        // stops with INT, installs its own handler).
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(signal(&c, "TERM"));
        let s = wait_until(&mut c, Instant::now() + Duration::from_secs(5)).expect("sleep ended by SIGTERM");
        assert_eq!(judge(s, ""), Err(StepError::Signal(15)));
    }
}
