//! `tests/setup.sh` on a machine where QEMU is missing: it must install QEMU or stop with
//! a message naming it, never exit silently (it once died with status 127 and no word,
//! because probing the missing binary failed under `set -o pipefail`).
//!
//! QEMU is hidden by running the script with a `PATH` of links to every program on this
//! machine's `PATH` except `qemu-system-x86_64`. As root the script then installs QEMU
//! from the package archive, finds it still hidden and says so; elsewhere it says that
//! installing QEMU needs root. Either way its last words name QEMU.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

#[test]
fn setup_without_qemu_installs_it_or_names_it() {
    let bin = std::env::temp_dir().join(format!("hy-setup-noqemu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&bin);
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            if name == "qemu-system-x86_64" || bin.join(&name).exists() {
                continue;
            }
            let _ = symlink(e.path(), bin.join(&name));
        }
    }
    assert!(!bin.join("qemu-system-x86_64").exists());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("setup.sh");
    let out = Command::new("bash").arg(&script).env("PATH", &bin).output().unwrap();
    let _ = std::fs::remove_dir_all(&bin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("QEMU"), "setup.sh said nothing about QEMU (status {}): {stderr}", out.status);
    if !out.status.success() {
        let last = stderr.lines().last().unwrap_or("");
        assert!(last.contains("QEMU") || last.contains("qemu"), "its last line does not name QEMU: {stderr}");
        assert_ne!(out.status.code(), Some(127), "a command-not-found exit: {stderr}");
    }
}
