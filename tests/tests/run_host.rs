//! `tests/xen/run-host.sh` against a nested host that freezes: a fake L0 QEMU prints a few
//! console lines and then nothing, as the real one did (idle, its vCPU thread asleep, no
//! timer ever waking it). The script must stop it once the console has been silent for
//! `HY_SILENCE_S` and fail saying the host froze, instead of waiting for the whole run's
//! timeout (an hour for the network tests); a freeze after dom0 powered off with its
//! payload done (QEMU idle at Xen's "Entering ACPI S5 state") loses no result and passes
//! with a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A scratch directory for one test, removed at the end.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    Command::new("chmod").arg("+x").arg(path).status().unwrap();
}

/// What a run of the script against a fake host left.
struct FakeRun {
    out: Output,
    took: Duration,
    /// The fake QEMU's pid.
    pid: String,
    console: String,
}

/// Runs `run-host.sh` with a fake QEMU that runs `body` (bash; `$PAYLOAD_IMG` is the
/// payload disk) after writing its pid, then sleeps as a frozen host does.
fn run_frozen(name: &str, body: &str) -> FakeRun {
    let dir = Scratch(std::env::temp_dir().join(format!("hy-run-host-{name}-{}", std::process::id())));
    let root = &dir.0;
    let _ = std::fs::remove_dir_all(root);
    for d in ["host/boot", "payload", "bin/lib/x86_64-linux-gnu"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["host/boot/xen", "host/boot/vmlinuz", "host/boot/initrd.img", "host/dom0.img"] {
        std::fs::write(root.join(f), b"").unwrap();
    }
    write_exec(&root.join("payload/run.sh"), "#!/bin/sh\nexit 0\n");
    // exec keeps the pid the script wrote where -pidfile says.
    let pid_seen = root.join("fake-qemu.pid");
    write_exec(
        &root.join("bin/qemu-system-x86_64"),
        &format!(
            "#!/bin/bash\nwhile [ $# -gt 0 ]; do\n  [ \"$1\" = -pidfile ] && echo $$ > \"$2\"\n  \
             case $1 in file=*payload.img*) PAYLOAD_IMG=${{1#file=}}; PAYLOAD_IMG=${{PAYLOAD_IMG%%,*}} ;; esac\n  \
             shift\ndone\necho $$ > {}\n{body}\nexec sleep 120\n",
            pid_seen.display()
        ),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("xen/run-host.sh");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(root.join("payload"))
        .arg(root.join("out"))
        .arg("100")
        .env("HY_XEN_HOST", root.join("host"))
        .env("HY_QEMU", root.join("bin/qemu-system-x86_64"))
        .env("HY_QEMU_LOCK", root.join("qemu.lock"))
        .env("HY_SILENCE_S", "3")
        .env("HY_PAYLOAD_MB", "8")
        .output()
        .unwrap();
    let took = started.elapsed();
    let pid = std::fs::read_to_string(&pid_seen).unwrap_or_default().trim().to_string();
    let console = std::fs::read_to_string(root.join("out/host-console.log")).unwrap_or_default();
    FakeRun { out, took, pid, console }
}

fn check_stopped(r: &FakeRun) {
    let stderr = String::from_utf8_lossy(&r.out.stderr);
    assert!(r.took < Duration::from_secs(60), "stopped after {:?}, not at the silence limit: {stderr}", r.took);
    assert!(!r.pid.is_empty(), "the fake QEMU never ran: {stderr}");
    assert!(!Path::new("/proc").join(&r.pid).exists(), "the frozen QEMU (pid {}) is still running", r.pid);
    assert!(r.console.contains("Xen version") && r.console.contains("silent for 3s"), "{}", r.console);
}

#[test]
fn a_host_whose_console_goes_silent_is_stopped_and_reported_as_frozen() {
    let r = run_frozen("frozen", "echo '(XEN) Xen version 4.17.5 (fake)'");
    let stderr = String::from_utf8_lossy(&r.out.stderr);
    assert!(!r.out.status.success(), "a frozen host passed: {stderr}");
    assert!(stderr.contains("the nested host froze"), "the failure does not say the host froze: {stderr}");
    assert!(stderr.contains("silent for 3s"), "{stderr}");
    check_stopped(&r);
}

#[test]
fn a_host_frozen_after_powering_off_with_its_payload_done_loses_nothing() {
    // dom0's init writes run.exit on the payload disk before powering off; the fake does
    // the same with debugfs, prints the boot steps' lines a real host prints, and freezes.
    let body = "echo '(XEN) Xen version 4.17.5 (fake)'\n\
                echo 'Linux version 6.1 (fake dom0)'\n\
                echo 'EXT4-fs (vda): mounted filesystem'\n\
                echo 'HY-DOM0: init started (uptime 1)'\n\
                echo 'HY-DOM0: toolstack up (uptime 1)'\n\
                echo 'HY-DOM0: payload start (uptime 1)'\n\
                echo 'HY-DOM0: payload exit=0 (uptime 2)'\n\
                echo 0 > \"$PAYLOAD_IMG.exit\"\n\
                debugfs -w -R \"write $PAYLOAD_IMG.exit /results/run.exit\" \"$PAYLOAD_IMG\" >/dev/null 2>&1\n\
                echo 'HY-DOM0: powering off (uptime 3)'\n\
                echo '(XEN) Entering ACPI S5 state.'";
    let r = run_frozen("poweroff", body);
    let stderr = String::from_utf8_lossy(&r.out.stderr);
    assert!(r.out.status.success(), "the payload's results were complete, yet the run failed: {stderr}");
    assert!(stderr.contains("did not exit after the host powered off"), "no warning: {stderr}");
    check_stopped(&r);
}
