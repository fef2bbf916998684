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

/// What `run-host.sh` writes into the console log when the nested host froze (its console
/// silent for minutes, QEMU idle): the L0's signature, not a guest's.
const FROZE: &str = "run-host: the host's console was silent";

/// If the host froze, the guest L1 was running then (its start line without an exit line).
fn froze_during(out: &Path) -> Option<String> {
    let log = std::fs::read_to_string(out.join("host-console.log")).ok()?;
    if !log.contains(FROZE) {
        return None;
    }
    let mut current = String::from("(before the first guest)");
    for line in log.lines() {
        if let Some((_, rest)) = line.split_once("HY-KVM: guest ") {
            let name = rest.split([' ', ':']).next().unwrap_or("?");
            current = if rest.contains(" exit=") { String::from("(between guests)") } else { name.to_string() };
        }
    }
    Some(current)
}

/// Builds the host image if needed, runs `guests` on the KVM host in one boot, and reads
/// their results from `work/out`. A boot in which the nested host froze (the L0's known
/// failure, `tests/xen/README.md`) is run once more; its output is kept in `work/out.froze`
/// and the warning names the guest that was running. Any other failure is final.
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
    if let Err(e) = boot(&payload, &out, timeout_s, guests.len()) {
        let Some(guest) = froze_during(&out) else { return Err(e) };
        let kept = work.join("out.froze");
        let _ = std::fs::remove_dir_all(&kept);
        std::fs::rename(&out, &kept).map_err(err("keeping the frozen run's output"))?;
        eprintln!(
            "warning: the nested KVM host froze while {guest} ran (output kept in {}); booting it once more",
            kept.display()
        );
        boot(&payload, &out, timeout_s, guests.len())?;
    }
    Ok(guests.iter().map(|g| read_run(&out, g)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_host_names_the_guest_it_ran() {
        let dir = std::env::temp_dir().join(format!("hy-kvm-froze-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = "[   19.36] HY-KVM: guest hy-kvm-hvm exit=1\n\
                   [   19.38] HY-KVM: guest hy-kvm-hybrid start: mode=auto bench=cpuid\n\
                   [ silent ] run-host: the host's console was silent for 300s: stopping QEMU\n";
        std::fs::write(dir.join("host-console.log"), log).unwrap();
        assert_eq!(froze_during(&dir).as_deref(), Some("hy-kvm-hybrid"));
        std::fs::write(dir.join("host-console.log"), "[ 1.0] HY-KVM: guest a exit=1\n").unwrap();
        assert_eq!(froze_during(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
