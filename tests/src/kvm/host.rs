//! The payload of the KVM host (`tests/kvm/payload/run.sh`, the kernel, `guests.txt`, and
//! for network guests the agent, each guest's `net/<name>.json` and the Linux peer's files)
//! and one bounded boot of it, then each guest's results read back.

use super::{GuestKind, KvmGuest, KvmRun};
use crate::console::BootSummary;
use crate::hostfreeze::Froze;
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
    KvmRun {
        guest: guest.clone(),
        exit,
        console: BootSummary::from_lines(&lines),
        trace,
        net,
        boot: 1,
        frozen: Vec::new(),
    }
}

/// Whether the boot whose output is `out` froze, and where (`crate::hostfreeze`).
fn froze(out: &Path) -> Option<Froze> {
    crate::hostfreeze::read(out, crate::hostfreeze::kvm_payload_step)
}

/// Boots of the host allowed: the first, and one more after a freeze.
const MAX_BOOTS: u32 = 2;

/// Builds the host image if needed, runs `guests` on the KVM host, and reads their results.
/// A boot in which the nested host froze (the L0's known failure, `tests/xen/README.md`)
/// keeps the guests that ended in it (L1 wrote their exit status and the payload said so)
/// and is followed by one more boot for the others, in the plan's order; a frozen
/// boot's output stays in `work/out.boot<N>`, the last boot's in `work/out`. Each guest's
/// run says which boot it comes from and every frozen boot it was part of
/// ([`KvmRun::frozen`]); a guest the last allowed boot did not end either is returned
/// without results, its [`KvmRun::problem`] saying it was lost. Any other failure of a
/// boot is an error.
pub fn run_guests(
    work: &Path,
    kernel: &Path,
    guests: &[KvmGuest],
    timeout_s: u32,
) -> Result<Vec<KvmRun>, HarnessError> {
    let host = crate::xen::host::build()?;
    let payload = work.join("payload");
    run_boots(work, guests, &mut |these: &[KvmGuest], out: &Path| {
        make_payload(&payload, kernel, &host, these)?;
        boot(&payload, out, timeout_s, these.len())
    })
}

/// One boot of the host: runs these guests, leaving their results in the directory given.
pub type Boot<'a> = dyn FnMut(&[KvmGuest], &Path) -> Result<(), HarnessError> + 'a;

/// [`run_guests`]' boots, with `boot` doing each.
fn run_boots(work: &Path, guests: &[KvmGuest], boot: &mut Boot<'_>) -> Result<Vec<KvmRun>, HarnessError> {
    let out = work.join("out");
    let mut runs: Vec<Option<KvmRun>> = guests.iter().map(|_| None).collect();
    let mut frozen: Vec<Vec<String>> = vec![Vec::new(); guests.len()];
    let mut pending: Vec<usize> = (0..guests.len()).collect();
    for boot_no in 1..=MAX_BOOTS {
        let these: Vec<KvmGuest> = pending.iter().map(|&i| guests[i].clone()).collect();
        let froze_at = match boot(&these, &out) {
            Ok(()) => None,
            Err(e) => Some(froze(&out).ok_or(e)?),
        };
        let mut next = Vec::new();
        for &i in &pending {
            let g = &guests[i];
            let ended = out.join(format!("{}.exit", g.name)).exists()
                && froze_at.as_ref().and_then(Froze::guest) != Some(g.name.as_str());
            match &froze_at {
                Some(f) if !ended => {
                    let how = if f.guest() == Some(g.name.as_str()) { "cut while it ran" } else { "not reached" };
                    frozen[i].push(format!("boot {boot_no}: {how} (the host froze {})", f.describe()));
                    next.push(i);
                }
                _ => {
                    let mut run = read_run(&out, g);
                    run.boot = boot_no;
                    run.frozen = std::mem::take(&mut frozen[i]);
                    runs[i] = Some(run);
                }
            }
        }
        let Some(f) = froze_at else { break };
        let kept = work.join(format!("out.boot{boot_no}"));
        let _ = std::fs::remove_dir_all(&kept);
        std::fs::rename(&out, &kept).map_err(err("keeping the frozen boot's output"))?;
        eprintln!(
            "warning: the nested KVM host froze {} in boot {boot_no} (output kept in {}); {} guest(s) that ended are kept{}",
            f.describe(),
            kept.display(),
            pending.len() - next.len(),
            if boot_no < MAX_BOOTS {
                format!(", {} run in boot {}", next.len(), boot_no + 1)
            } else {
                format!(", no boot is left: {} guest(s) lost", next.len())
            }
        );
        pending = next;
        if pending.is_empty() {
            break;
        }
    }
    Ok(runs
        .into_iter()
        .zip(guests)
        .zip(frozen)
        .map(|((run, g), frozen)| run.unwrap_or_else(|| KvmRun::lost(g, frozen)))
        .collect())
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
        assert_eq!(froze(&dir), Some(Froze::During("hy-kvm-hybrid".into())));
        std::fs::write(dir.join("host-console.log"), "[ 1.0] HY-KVM: guest a exit=1\n").unwrap();
        assert_eq!(froze(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A scratch directory, removed when dropped.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hy-kvm-boots-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn guests(names: &[&str]) -> Vec<KvmGuest> {
        let opts = proto::cmdline::parse("mode=hvm").unwrap();
        names.iter().map(|n| KvmGuest { name: (*n).into(), ..KvmGuest::kernel("x", opts, opts.bench) }).collect()
    }

    /// A fake boot: runs `these` in order, each ending with exit 1 and a DONE, until the
    /// guest named `freeze_in` (if any), which starts and is cut; its exit file written
    /// anyway when `exit_of_cut`, as if the host froze while L1 copied its trace.
    fn fake_boot(out: &Path, these: &[KvmGuest], freeze_in: Option<&str>, exit_of_cut: bool) {
        std::fs::create_dir_all(out).unwrap();
        let mut log = String::new();
        for g in these {
            log += &format!("[ 1.00] HY-KVM: guest {} start: hykernel mode=hvm\n", g.name);
            std::fs::write(out.join(format!("{}.serial", g.name)), "DONE\n").unwrap();
            let trace = include_str!("../../data/kvmtrace/hybrid-timer-lateness.txt");
            std::fs::write(out.join(format!("{}.trace", g.name)), trace).unwrap();
            if freeze_in == Some(g.name.as_str()) {
                if exit_of_cut {
                    std::fs::write(out.join(format!("{}.exit", g.name)), "1\n").unwrap();
                }
                log += &format!("{}300s: stopping QEMU\n", crate::hostfreeze::MARK);
                break;
            }
            std::fs::write(out.join(format!("{}.exit", g.name)), "1\n").unwrap();
            log += &format!("[ 2.00] HY-KVM: guest {} exit=1\n", g.name);
        }
        std::fs::write(out.join(crate::hostfreeze::CONSOLE_LOG), log).unwrap();
    }

    #[test]
    fn a_frozen_boot_keeps_the_guests_that_ended_and_runs_the_rest_once_more() {
        let work = scratch("keep");
        let all = guests(&["a", "b", "c"]);
        let mut booted: Vec<Vec<String>> = Vec::new();
        let runs = run_boots(&work.0, &all, &mut |these: &[KvmGuest], out: &Path| {
            booted.push(these.iter().map(|g| g.name.clone()).collect());
            let first = booted.len() == 1;
            fake_boot(out, these, first.then_some("b"), true);
            if first {
                Err(HarnessError("the KVM host run failed".into()))
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(booted, [vec!["a", "b", "c"], vec!["b", "c"]], "only the guests that did not end run again");
        let seen: Vec<(&str, u32, usize, Option<i32>)> =
            runs.iter().map(|r| (r.guest.name.as_str(), r.boot, r.frozen.len(), r.exit)).collect();
        assert_eq!(seen, [("a", 1, 0, Some(1)), ("b", 2, 1, Some(1)), ("c", 2, 1, Some(1))]);
        assert!(
            runs[1].frozen[0].starts_with("boot 1: cut while it ran (the host froze while b ran)"),
            "{:?}",
            runs[1]
        );
        assert!(runs[2].frozen[0].starts_with("boot 1: not reached"), "{:?}", runs[2].frozen);
        assert!(
            runs.iter().all(|r| r.problem().is_none()),
            "{:?}",
            runs.iter().map(KvmRun::problem).collect::<Vec<_>>()
        );
        assert!(work.0.join("out.boot1/a.exit").exists(), "the frozen boot's output is kept");
    }

    #[test]
    fn guests_no_boot_ended_are_lost_and_say_so() {
        let work = scratch("lost");
        let all = guests(&["a", "b"]);
        let runs = run_boots(&work.0, &all, &mut |these: &[KvmGuest], out: &Path| {
            fake_boot(out, these, Some("b"), false);
            Err(HarnessError("the KVM host run failed".into()))
        })
        .unwrap();
        assert_eq!(runs[0].problem(), None);
        let lost = runs[1].problem().unwrap();
        assert!(lost.starts_with("b: lost: the host froze in every boot allowed (boot 1: cut"), "{lost}");
        assert!(lost.contains("boot 2: cut while it ran"), "{lost}");
        // A failure without the freeze's mark is final, whatever the boot.
        let err = run_boots(&work.0, &all, &mut |_: &[KvmGuest], out: &Path| {
            std::fs::create_dir_all(out).unwrap();
            std::fs::write(out.join(crate::hostfreeze::CONSOLE_LOG), "[ 1.00] HY-KVM: ERROR: step 'x'\n").unwrap();
            Err(HarnessError("the KVM host run failed".into()))
        });
        assert!(err.is_err());
    }
}
