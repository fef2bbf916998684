//! Where things are: the workspace, the kernel image, the QEMU binary.
//!
//! Each can be overridden from the environment (`HY_KERNEL`, `QEMU`), so the same tests
//! run against another build or emulator.

use std::path::PathBuf;

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// The kernel ELF: `$HY_KERNEL`, else the release build in the workspace's target dir.
pub fn kernel() -> PathBuf {
    std::env::var_os("HY_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/x86_64-unknown-none/release/hykernel"))
}

/// The QEMU binary: `$QEMU`, else `qemu-system-x86_64` from `PATH`.
pub fn qemu() -> PathBuf {
    std::env::var_os("QEMU").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"))
}

/// Directory for logs of this run: `$HY_LOGS`, else `<target>/hy-logs`.
pub fn logs() -> PathBuf {
    let dir = std::env::var_os("HY_LOGS").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/hy-logs"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}
