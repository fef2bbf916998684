//! The payload of the KVM host (`tests/kvm/payload/run.sh`, the kernel, `guests.txt`) and
//! one bounded boot of it, then each guest's results read back.

use super::{KvmGuest, KvmRun};
use crate::console::BootSummary;
use crate::kvmtrace::{phases, TraceError};
use crate::paths;
use crate::qemu::HarnessError;
use std::path::Path;
use std::process::{Command, Stdio};

fn err(what: &str) -> impl Fn(std::io::Error) -> HarnessError + '_ {
    move |e| HarnessError(format!("{what}: {e}"))
}

/// Room on the payload disk for one guest's trace text (~100 bytes an event).
const MB_PER_GUEST: usize = 96;

/// Fills `dir` with what L1 needs: the payload script, the kernel and the guest list.
pub fn make_payload(dir: &Path, kernel: &Path, guests: &[KvmGuest]) -> Result<(), HarnessError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(err("making the payload directory"))?;
    let script = paths::workspace().join("tests/kvm/payload/run.sh");
    std::fs::copy(&script, dir.join("run.sh")).map_err(err("copying tests/kvm/payload/run.sh"))?;
    std::fs::copy(kernel, dir.join("hykernel.elf"))
        .map_err(|e| HarnessError(format!("copying the kernel {}: {e}", kernel.display())))?;
    let mut list = String::new();
    for g in guests {
        if g.name.is_empty() || !g.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(HarnessError(format!("guest name '{}' must be [a-z0-9-]+", g.name)));
        }
        list += &g.line();
        list.push('\n');
    }
    std::fs::write(dir.join("guests.txt"), list).map_err(err("writing guests.txt"))
}

/// Boots the KVM host (the Xen host's image without Xen) with `payload`, results to `out`.
pub fn boot(payload: &Path, out: &Path, timeout_s: u32, guests: usize) -> Result<(), HarnessError> {
    let status = Command::new(paths::workspace().join("tests/xen/run-host.sh"))
        .arg("--no-xen")
        .arg(payload)
        .arg(out)
        .arg(timeout_s.to_string())
        .env("HY_PAYLOAD_MB", (256 + MB_PER_GUEST * guests).to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(err("tests/xen/run-host.sh --no-xen"))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError(format!(
            "the KVM host run failed ({status}); see the messages above and {}/host-console.log",
            out.display()
        )))
    }
}

/// Reads what `guest` left in `out`.
pub fn read_run(out: &Path, guest: &KvmGuest) -> KvmRun {
    let file = |ext: &str| out.join(format!("{}.{ext}", guest.name));
    let exit = std::fs::read_to_string(file("exit")).ok().and_then(|s| s.trim().parse().ok());
    let serial = std::fs::read_to_string(file("serial")).unwrap_or_default();
    let lines: Vec<&str> = serial.lines().collect();
    let trace = match std::fs::read_to_string(file("trace")) {
        Ok(text) => phases(&text),
        Err(_) => Err(TraceError::Empty),
    };
    KvmRun { guest: guest.clone(), exit, console: BootSummary::from_lines(&lines), trace }
}

/// Builds the host image if needed, runs `guests` on the KVM host in one boot, and reads
/// their results from `work/out`.
pub fn run_guests(
    work: &Path,
    kernel: &Path,
    guests: &[KvmGuest],
    timeout_s: u32,
) -> Result<Vec<KvmRun>, HarnessError> {
    crate::xen::host::build()?;
    let payload = work.join("payload");
    let out = work.join("out");
    make_payload(&payload, kernel, guests)?;
    boot(&payload, &out, timeout_s, guests.len())?;
    Ok(guests.iter().map(|g| read_run(&out, g)).collect())
}
