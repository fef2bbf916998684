//! `tests/xen/run-host.sh` against a nested host that freezes: a fake L0 QEMU prints Xen's
//! banner and then nothing, as the real one did once (idle, its vCPU thread asleep, no timer
//! ever waking it). The script must stop it once the console has been silent for
//! `HY_SILENCE_S` and fail saying the host froze, instead of waiting for the whole run's
//! timeout (an hour for the network tests).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A scratch directory for this test, removed at the end.
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

#[test]
fn a_host_whose_console_goes_silent_is_stopped_and_reported_as_frozen() {
    let dir = Scratch(std::env::temp_dir().join(format!("hy-run-host-frozen-{}", std::process::id())));
    let root = &dir.0;
    let _ = std::fs::remove_dir_all(root);
    for d in ["host/boot", "payload", "bin/lib/x86_64-linux-gnu"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["host/boot/xen", "host/boot/vmlinuz", "host/boot/initrd.img", "host/dom0.img"] {
        std::fs::write(root.join(f), b"").unwrap();
    }
    write_exec(&root.join("payload/run.sh"), "#!/bin/sh\nexit 0\n");
    // The fake QEMU: writes its pid where -pidfile says, prints the banner, then sleeps as
    // the frozen host did (exec keeps the pid the script wrote).
    let pid_seen = root.join("fake-qemu.pid");
    write_exec(
        &root.join("bin/qemu-system-x86_64"),
        &format!(
            "#!/bin/bash\nwhile [ $# -gt 0 ]; do [ \"$1\" = -pidfile ] && echo $$ > \"$2\"; shift; done\n\
             echo $$ > {}\necho '(XEN) Xen version 4.17.5 (fake)'\nexec sleep 120\n",
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a frozen host passed: {stderr}");
    assert!(took < Duration::from_secs(60), "stopped after {took:?}, not at the silence limit: {stderr}");
    assert!(stderr.contains("the nested host froze"), "the failure does not say the host froze: {stderr}");
    assert!(stderr.contains("silent for 3s"), "{stderr}");
    let pid = std::fs::read_to_string(&pid_seen).unwrap();
    let alive = Path::new("/proc").join(pid.trim()).exists();
    assert!(!alive, "the frozen QEMU (pid {}) is still running", pid.trim());
    let console = std::fs::read_to_string(root.join("out/host-console.log")).unwrap();
    assert!(console.contains("Xen version") && console.contains("silent for 3s"), "{console}");
}

/// Waiting for the QEMU lock prints nothing for as long as another run holds it; that is no
/// freeze (it was once taken for one, and the run failed after a clean boot).
#[test]
fn waiting_for_the_lock_is_not_a_frozen_host() {
    let dir = Scratch(std::env::temp_dir().join(format!("hy-run-host-lockwait-{}", std::process::id())));
    let root = &dir.0;
    let _ = std::fs::remove_dir_all(root);
    for d in ["host/boot", "payload", "bin"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["host/boot/xen", "host/boot/vmlinuz", "host/boot/initrd.img", "host/dom0.img"] {
        std::fs::write(root.join(f), b"").unwrap();
    }
    write_exec(&root.join("payload/run.sh"), "#!/bin/sh\nexit 0\n");
    write_exec(&root.join("bin/qemu-system-x86_64"), "#!/bin/sh\necho '(XEN) Xen version 4.17.5 (fake)'\nexit 0\n");
    let lock = root.join("qemu.lock");
    let mut holder = Command::new("flock").arg(&lock).args(["sleep", "6"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("xen/run-host.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(root.join("payload"))
        .arg(root.join("out"))
        .arg("100")
        .env("HY_XEN_HOST", root.join("host"))
        .env("HY_QEMU", root.join("bin/qemu-system-x86_64"))
        .env("HY_QEMU_LOCK", &lock)
        .env("HY_SILENCE_S", "2")
        .env("HY_PAYLOAD_MB", "8")
        .output()
        .unwrap();
    let _ = holder.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting for the QEMU lock"), "the lock was not held: {stderr}");
    assert!(!stderr.contains("froze") && !stderr.contains("silent"), "the lock wait was taken for a freeze: {stderr}");
}
