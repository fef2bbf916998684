//! Building and booting the Xen test host from the harness: the cached host image
//! (`tests/xen/build-host.sh`), the dom0 agent binary, the payload disk (agent, plan,
//! xl configs, kernel images, the Linux peer's files) and one bounded boot of the host
//! (`tests/xen/run-host.sh`) that leaves the agent's results in a directory.

use super::guests::Guest;
use super::plan::{BridgeAddr, Plan, TraceSettings};
use crate::paths;
use crate::qemu::HarnessError;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn script(name: &str) -> PathBuf {
    paths::workspace().join("tests/xen").join(name)
}

fn err(what: &str) -> impl Fn(std::io::Error) -> HarnessError + '_ {
    move |e| HarnessError(format!("{what}: {e}"))
}

/// Runs `cmd`; its failure names `what` and carries its stderr.
fn run(cmd: &mut Command, what: &str) -> Result<(), HarnessError> {
    let out = cmd.output().map_err(err(what))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// Builds the Xen host or finds it in the cache; returns its directory.
pub fn build() -> Result<PathBuf, HarnessError> {
    let out = Command::new(script("build-host.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(err("tests/xen/build-host.sh"))?;
    if !out.status.success() {
        return Err(HarnessError(format!("building the Xen host failed ({}); see the messages above", out.status)));
    }
    let dir = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_string();
    if !Path::new(&dir).join("dom0.img").exists() {
        return Err(HarnessError(format!("build-host.sh printed '{dir}', which has no dom0.img")));
    }
    Ok(PathBuf::from(dir))
}

/// The target the dom0 agent is built for: the build machine's, linked statically so it
/// runs on the dom0's Debian 12 userland whatever the build machine's C library is.
const AGENT_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds the dom0 agent (`hy-agent`, statically linked); returns the binary.
pub fn agent_binary() -> Result<PathBuf, HarnessError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(
        Command::new(cargo)
            .current_dir(paths::workspace())
            .args(["build", "-q", "--release", "-p", "hy-harness", "--bin", "hy-agent", "--target", AGENT_TARGET])
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .stderr(Stdio::inherit()),
        "building the dom0 agent (cargo build --bin hy-agent, static)",
    )?;
    Ok(paths::workspace().join("target").join(AGENT_TARGET).join("release/hy-agent"))
}

fn copy(from: &Path, to: &Path) -> Result<(), HarnessError> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| HarnessError(format!("copying {} to {}: {e}", from.display(), to.display())))
}

/// How a run goes, besides its guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Bound of the whole boot of the host, in seconds.
    pub timeout_s: u32,
    /// Attempts per guest for failures with the host's signature (1: never retried).
    pub max_attempts: u32,
    /// How guests are traced.
    pub trace: TraceSettings,
    /// Boots of the host at most: after a boot in which the nested host froze
    /// ([`crate::hostfreeze`], its signature, never a guest's), the guests without an
    /// ended attempt run in another boot (2: once more; 1: a freeze fails the run).
    pub max_boots: u32,
}

impl RunOptions {
    /// Three attempts at most, the default trace mask, `timeout_s` for each boot, and one
    /// more boot after a freeze.
    pub fn new(timeout_s: u32) -> RunOptions {
        RunOptions { timeout_s, max_attempts: 3, trace: TraceSettings::default(), max_boots: 2 }
    }
}

/// Room on the payload disk for one guest's results: a trace of the default mask is up
/// to ~15 MB for a benchmark guest; network guests' are larger.
const MB_PER_GUEST: usize = 64;

/// The plan for `guests`: the bridge at 10.0.0.1/24, the run's trace and attempts.
pub fn plan(guests: &[Guest], opts: &RunOptions) -> Plan {
    Plan {
        guests: guests.iter().map(|g| g.plan.clone()).collect(),
        bridge: BridgeAddr { ip: Ipv4Addr::new(10, 0, 0, 1), prefix: 24 },
        trace: opts.trace,
        max_attempts: opts.max_attempts,
    }
}

/// Fills `dir` with what dom0 needs: its launcher, the agent and its plan, the xl
/// configs, the kernel (ELF64 and an ELF32 copy) and, when a guest needs them, the Linux
/// peer's files.
pub fn make_payload(
    dir: &Path,
    kernel: &Path,
    host: &Path,
    guests: &[Guest],
    opts: &RunOptions,
) -> Result<(), HarnessError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(err("making the payload directory"))?;
    copy(&script("payload/run.sh"), &dir.join("run.sh"))?;
    copy(&agent_binary()?, &dir.join("hy-agent"))?;
    for cfg in ["hvm.cfg", "pvh.cfg", "pv.cfg", "linux-pvh.cfg"] {
        copy(&script(cfg), &dir.join(cfg))?;
    }
    copy(kernel, &dir.join("hykernel.elf"))?;
    run(
        Command::new("objcopy")
            .args(["-I", "elf64-x86-64", "-O", "elf32-i386"])
            .arg(kernel)
            .arg(dir.join("hykernel32.elf")),
        "objcopy to ELF32 (install binutils)",
    )?;
    if guests.iter().any(Guest::needs_linux) {
        std::fs::create_dir_all(dir.join("domu")).map_err(err("payload domu/"))?;
        for f in ["vmlinux", "initrd.cpio.gz"] {
            copy(&host.join("domu").join(f), &dir.join("domu").join(f))?;
        }
        if guests.iter().any(Guest::needs_peer_initrd) {
            peer_initrd(&host.join("domu/initrd.cpio.gz"), &dir.join("domu/initrd-peer.cpio.gz"))?;
        }
    }
    let text = serde_json::to_string_pretty(&plan(guests, opts)).map_err(|e| HarnessError(format!("the plan: {e}")))?;
    std::fs::write(dir.join("plan.json"), text).map_err(err("writing plan.json"))
}

/// The Linux peer's initramfs: the cached one with `tests/xen/peer/init` as `/init` and
/// `hyecho` (built here, statically) appended as a second cpio archive, which the kernel
/// unpacks over the first.
pub(crate) fn peer_initrd(base: &Path, out: &Path) -> Result<(), HarnessError> {
    let stage = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("bin")).map_err(err("peer initramfs staging"))?;
    let peer = paths::workspace().join("tests/xen/peer");
    run(
        Command::new("gcc").args(["-static", "-O2", "-o"]).arg(stage.join("bin/hyecho")).arg(peer.join("hyecho.c")),
        "building hyecho (gcc -static; install gcc and libc6-dev)",
    )?;
    copy(&peer.join("init"), &stage.join("init"))?;
    let extra = out.with_extension("extra");
    run(
        Command::new("sh").arg("-c").arg(format!(
            "cd '{}' && find . | cpio -o -H newc --quiet | gzip -6 > '{}'",
            stage.display(),
            extra.display()
        )),
        "packing the peer's cpio",
    )?;
    let mut bytes = std::fs::read(base).map_err(err("the domU initramfs"))?;
    bytes.extend(std::fs::read(&extra).map_err(err("the peer's cpio"))?);
    std::fs::write(out, bytes).map_err(err("writing the peer initramfs"))?;
    let _ = std::fs::remove_dir_all(&stage);
    let _ = std::fs::remove_file(&extra);
    Ok(())
}

/// Boots the host with `payload` for `guests` guests and copies the results to `out`,
/// bounded by `timeout_s`. Progress goes to stderr.
pub fn boot(payload: &Path, out: &Path, timeout_s: u32, guests: usize) -> Result<(), HarnessError> {
    let status = Command::new(script("run-host.sh"))
        .arg(payload)
        .arg(out)
        .arg(timeout_s.to_string())
        .env("HY_PAYLOAD_MB", (512 + MB_PER_GUEST * guests).to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(err("tests/xen/run-host.sh"))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError(format!(
            "the Xen host run failed ({status}); see the messages above and {}/host-console.log",
            out.display()
        )))
    }
}
