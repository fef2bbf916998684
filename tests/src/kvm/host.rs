//! The payload of the KVM host (`tests/kvm/payload/run.sh`, the kernel, `guests.txt`, and
//! for network guests the agent, each guest's `net/<name>.json` and the Linux peer's files)
//! and one bounded boot of it, then each guest's results read back.

use super::{GuestKind, KvmGuest, KvmRun};
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

/// The modules virtio-net needs in a Linux L2 whose kernel has them as modules (Debian's).
const PEER_MODULES: [&str; 2] = ["kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/net/virtio_net.ko"];

/// `modules`, each after the modules it needs (from `modules.dep`: a module's line lists
/// what it needs, the first needing the later ones), no module twice.
fn load_order(dep: &str, modules: &[&str]) -> Result<Vec<String>, HarnessError> {
    let mut order: Vec<String> = Vec::new();
    for m in modules {
        let line = dep
            .lines()
            .find_map(|l| l.strip_prefix(m).and_then(|r| r.strip_prefix(':')))
            .ok_or_else(|| HarnessError(format!("modules.dep has no line for {m}")))?;
        for d in line.split_whitespace().rev().chain(std::iter::once(*m)) {
            if !order.iter().any(|o| o == d) {
                order.push(d.to_string());
            }
        }
    }
    Ok(order)
}

/// The KVM Linux peer's initramfs: the Xen peer's (`xen::host::peer_initrd`) with
/// virtio-net's modules from the image's root filesystem and their load order
/// (`lib/modules/kvm-modules.order`, read by `tests/xen/peer/init`) appended.
fn peer_initrd(host: &Path, out: &Path) -> Result<(), HarnessError> {
    crate::xen::host::peer_initrd(&host.join("domu/initrd.cpio.gz"), out)?;
    let kver = std::fs::read_to_string(host.join("domu/kernel-version")).map_err(err("domu/kernel-version"))?;
    let mods = host.join("rootfs/lib/modules").join(kver.trim());
    let dep = std::fs::read_to_string(mods.join("modules.dep")).map_err(err("the image's modules.dep"))?;
    let order = load_order(&dep, &PEER_MODULES)?;
    let stage = out.with_extension("kvm.d");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("lib/modules")).map_err(err("KVM peer staging"))?;
    let mut names = String::new();
    for m in &order {
        let base = m.rsplit('/').next().unwrap_or(m);
        std::fs::copy(mods.join(m), stage.join("lib/modules").join(base)).map_err(err("copying a module"))?;
        names += base;
        names.push('\n');
    }
    std::fs::write(stage.join("lib/modules/kvm-modules.order"), names).map_err(err("kvm-modules.order"))?;
    let extra = out.with_extension("kvm.cpio.gz");
    let packed = Command::new("sh")
        .arg("-c")
        .arg(format!("cd '{}' && find . | cpio -o -H newc --quiet | gzip -6 > '{}'", stage.display(), extra.display()))
        .status()
        .map_err(err("packing the KVM peer's modules"))?;
    if !packed.success() {
        return Err(HarnessError(format!("packing the KVM peer's modules (cpio, gzip): {packed}")));
    }
    let mut bytes = std::fs::read(out).map_err(err("the peer initramfs"))?;
    bytes.extend(std::fs::read(&extra).map_err(err("the modules' cpio"))?);
    std::fs::write(out, bytes).map_err(err("writing the KVM peer initramfs"))?;
    let _ = std::fs::remove_dir_all(&stage);
    let _ = std::fs::remove_file(&extra);
    Ok(())
}

/// Fills `dir` with what L1 needs: the payload script, the kernel and the guest list;
/// for network guests the agent and each one's `net/<name>.json`; for a Linux guest the
/// image's kernel and the peer's initramfs (`host`: the built image).
pub fn make_payload(dir: &Path, kernel: &Path, host: &Path, guests: &[KvmGuest]) -> Result<(), HarnessError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(err("making the payload directory"))?;
    let script = paths::workspace().join("tests/kvm/payload/run.sh");
    std::fs::copy(&script, dir.join("run.sh")).map_err(err("copying tests/kvm/payload/run.sh"))?;
    std::fs::copy(kernel, dir.join("hykernel.elf"))
        .map_err(|e| HarnessError(format!("copying the kernel {}: {e}", kernel.display())))?;
    if guests.iter().any(|g| g.net.is_some()) {
        let agent = crate::xen::host::agent_binary()?;
        std::fs::copy(&agent, dir.join("hy-agent")).map_err(err("copying the agent"))?;
        std::fs::create_dir_all(dir.join("net")).map_err(err("payload net/"))?;
    }
    if guests.iter().any(|g| matches!(g.kind, GuestKind::Linux(_))) {
        std::fs::create_dir_all(dir.join("domu")).map_err(err("payload domu/"))?;
        std::fs::copy(host.join("domu/vmlinuz"), dir.join("domu/vmlinuz")).map_err(err("copying domu/vmlinuz"))?;
        peer_initrd(host, &dir.join("domu/initrd-kvm.cpio.gz"))?;
    }
    let mut list = String::new();
    for g in guests {
        if g.name.is_empty() || !g.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(HarnessError(format!("guest name '{}' must be [a-z0-9-]+", g.name)));
        }
        list += &g.line();
        list.push('\n');
        if let Some(net) = &g.net {
            let text =
                serde_json::to_string_pretty(net).map_err(|e| HarnessError(format!("{}'s net plan: {e}", g.name)))?;
            std::fs::write(dir.join("net").join(format!("{}.json", g.name)), text)
                .map_err(err("writing net/*.json"))?;
        }
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
    let net = std::fs::read_to_string(file("net.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    KvmRun { guest: guest.clone(), exit, console: BootSummary::from_lines(&lines), trace, net }
}

/// If the host froze (`crate::hostfreeze`), the guest L1 was running then.
fn froze_during(out: &Path) -> Option<String> {
    crate::hostfreeze::read(out, crate::hostfreeze::kvm_payload_step)
        .map(|f| f.guest().map_or_else(|| format!("({})", f.describe()), str::to_string))
}

/// Builds the host image if needed, runs `guests` on the KVM host in one boot, and reads
/// their results from `work/out`. A boot in which the nested host froze (the L0's known
/// failure, `tests/xen/README.md`) is run once more; its output is kept in `work/out.froze`
/// and the warning names the guest that was running. Any other failure is final, and so
/// is a freeze of the second boot: unlike the Xen run ([`crate::xen::run::RunEnd`]), the
/// second boot runs every guest again, so nothing yet keeps the guests that ended for a
/// report of an incomplete run.
pub fn run_guests(
    work: &Path,
    kernel: &Path,
    guests: &[KvmGuest],
    timeout_s: u32,
) -> Result<Vec<KvmRun>, HarnessError> {
    let host = crate::xen::host::build()?;
    let payload = work.join("payload");
    let out = work.join("out");
    make_payload(&payload, kernel, &host, guests)?;
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
    fn modules_load_after_what_they_need() {
        let dep = "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n\
                   kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n";
        let order = load_order(dep, &PEER_MODULES).unwrap();
        let base: Vec<&str> = order.iter().map(|m| m.rsplit('/').next().unwrap()).collect();
        assert_eq!(
            base,
            [
                "virtio.ko",
                "virtio_ring.ko",
                "virtio_pci_legacy_dev.ko",
                "virtio_pci.ko",
                "failover.ko",
                "virtio_net.ko"
            ]
        );
        assert!(load_order("", &PEER_MODULES).unwrap_err().0.contains("virtio_pci.ko"));
    }

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
