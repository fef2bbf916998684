//! Running the kernel, and a Linux peer, as domUs on the project's Xen test host.
//!
//! The host itself is built and booted by the scripts in `tests/xen/` (see its README):
//! `build-host.sh` makes or reuses the cached Xen + dom0 image, `run-host.sh` boots it
//! nested under QEMU and runs a payload in dom0 that starts each guest under `xentrace`.
//! This module assembles that payload (kernel images, xl configs, the guest list), runs
//! the scripts with bounded time, and reads back each guest's console, timings and trace.

use crate::console::BootSummary;
use crate::paths;
use crate::qemu::HarnessError;
use crate::xentrace::{self, Phase, Trace};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One guest of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guest {
    /// Domain name (also the result file names).
    pub name: String,
    /// xl config in the payload.
    pub cfg: String,
    /// xl overrides (`key="value"`).
    pub overrides: Vec<String>,
    /// Seconds before dom0 destroys it.
    pub timeout_s: u32,
    /// Which output is its console: `pv`, `serial` or `e9`.
    pub console: String,
    /// Regex of the line that marks it done booting (or done running).
    pub ready: String,
    /// A command dom0 runs once the guest is ready (its network client), if any.
    pub client: Option<String>,
    /// Regex of the line that says it finished, when that is not the ready line.
    pub done: Option<String>,
}

impl Guest {
    /// hykernel as domain `hy-<label>` in `mode` (`hvm`, `hybrid` or `pvh`) running
    /// `bench`, with more kernel options in `extra`. HVM-type guests (hvm, hybrid) get the
    /// ELF32 image: qemu-xen is qemu-system-i386, whose ELF loader refuses ELF64. Their
    /// console is COM1 in hvm mode and the PV console otherwise.
    pub fn hykernel(label: &str, mode: &str, bench: &str, extra: &str) -> Guest {
        let cmdline = format!("mode={mode} bench={bench} {extra}");
        let mut overrides = vec![format!("cmdline=\"{}\"", cmdline.trim())];
        let hvm_type = mode != "pvh";
        if hvm_type {
            overrides.push("kernel=\"/mnt/hykernel32.elf\"".into());
        }
        Guest {
            name: format!("hy-{label}"),
            cfg: if hvm_type { "hvm.cfg" } else { "pvh.cfg" }.into(),
            overrides,
            timeout_s: 600,
            console: if mode == "hvm" { "serial" } else { "pv" }.into(),
            ready: "^DONE$".into(),
            client: None,
            done: None,
        }
    }

    /// hykernel in `mode` serving the network on the dom0 bridge at `10.0.0.<host>`, driven
    /// by dom0's client (`payload/netclient.py`) once it says `NET ready`; the client's QUIT
    /// ends it. hvm mode gets an emulated virtio-net from qemu-xen; hybrid and pvh the PV
    /// vif (hybrid unplugs the emulated NIC first).
    pub fn hykernel_net(label: &str, mode: &str, host: u8, client_args: &str) -> Guest {
        // hvm's emulated NIC has no xenstore address: the command line gives it; the PV
        // vif's address comes from the toolstack through xenstore.
        let ip = if mode == "hvm" { format!("ip=10.0.0.{host}/24") } else { String::new() };
        let mut g = Guest::hykernel(label, mode, "none", &ip);
        g.timeout_s = 300;
        let model = if mode == "hvm" { ",model=virtio-net-pci" } else { "" };
        g.overrides.push(format!("vif=[\"bridge=xenbr0,mac=00:16:3e:00:00:{host:02x},ip=10.0.0.{host}{model}\"]"));
        g.ready = "^NET ready".into();
        g.done = Some("^DONE$".into());
        g.client = Some(format!(
            "python3 /mnt/netclient.py 10.0.0.{host} hykernel /mnt/results/{}.client.json {client_args}",
            g.name
        ));
        g
    }

    /// Debian's Linux as a PVH domU with netfront, serving the same services (hyecho) at
    /// `10.0.0.<host>`, driven by the same client.
    pub fn linux_net(host: u8, client_args: &str) -> Guest {
        let name = "linux-net".to_string();
        Guest {
            client: Some(format!(
                "python3 /mnt/netclient.py 10.0.0.{host} linux /mnt/results/{name}.client.json {client_args}"
            )),
            overrides: vec![
                format!("vif=[\"bridge=xenbr0,mac=00:16:3e:00:00:{host:02x},ip=10.0.0.{host}\"]"),
                "ramdisk=\"/mnt/domu/initrd-peer.cpio.gz\"".into(),
                format!("cmdline=\"console=hvc0 quiet hy.ip=10.0.0.{host}/24\""),
            ],
            ready: "HY-DOMU: peer up".into(),
            done: Some("HY-DOMU: hyecho exited".into()),
            ..Guest::linux_pvh()
        }
        .named(&name)
    }

    fn named(mut self, name: &str) -> Guest {
        self.name = name.into();
        self
    }

    /// Debian's Linux kernel as a PVH domU with a busybox userland: the peer to compare
    /// boot time against.
    pub fn linux_pvh() -> Guest {
        Guest {
            name: "linux-pvh".into(),
            cfg: "linux-pvh.cfg".into(),
            overrides: Vec::new(),
            timeout_s: 300,
            console: "pv".into(),
            ready: "HY-DOMU: Linux up".into(),
            client: None,
            done: None,
        }
    }

    /// The guest's line in the payload's `guests` file (shell-quoted words).
    pub fn guests_line(&self) -> String {
        let mut words = vec![self.name.clone(), self.cfg.clone(), format!("timeout={}", self.timeout_s)];
        words.push(format!("console={}", self.console));
        words.push(format!("ready={}", self.ready));
        if let Some(c) = &self.client {
            words.push(format!("client={c}"));
        }
        if let Some(d) = &self.done {
            words.push(format!("done={d}"));
        }
        words.extend(self.overrides.iter().cloned());
        words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
    }
}

/// Quotes a word for a POSIX shell (single quotes; embedded ones closed and escaped).
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,".contains(&b)) {
        return w.to_string();
    }
    format!("'{}'", w.replace('\'', "'\\''"))
}

fn script(name: &str) -> PathBuf {
    paths::workspace().join("tests/xen").join(name)
}

/// Builds the Xen host or finds it in the cache; returns its directory. Progress lines of
/// the build go to stderr.
pub fn host_build() -> Result<PathBuf, HarnessError> {
    let out = Command::new(script("build-host.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| HarnessError(format!("tests/xen/build-host.sh: {e}")))?;
    if !out.status.success() {
        return Err(HarnessError(format!("building the Xen host failed ({}); see the messages above", out.status)));
    }
    let dir = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_string();
    if !Path::new(&dir).join("dom0.img").exists() {
        return Err(HarnessError(format!("build-host.sh printed '{dir}', which has no dom0.img")));
    }
    Ok(PathBuf::from(dir))
}

fn copy(from: &Path, to: &Path) -> Result<(), HarnessError> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| HarnessError(format!("copying {} to {}: {e}", from.display(), to.display())))
}

/// Fills `dir` with what dom0 needs: the payload script, xl configs, the kernel (ELF64 and
/// an ELF32 copy), the Linux peer's files if a guest needs them, and the guest list.
pub fn make_payload(dir: &Path, kernel: &Path, host: &Path, guests: &[Guest]) -> Result<(), HarnessError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| HarnessError(format!("{}: {e}", dir.display())))?;
    copy(&script("payload/run.sh"), &dir.join("run.sh"))?;
    copy(&script("payload/run-guests.sh"), &dir.join("run-guests.sh"))?;
    copy(&script("payload/netclient.py"), &dir.join("netclient.py"))?;
    for cfg in ["hvm.cfg", "pvh.cfg", "linux-pvh.cfg"] {
        copy(&script(cfg), &dir.join(cfg))?;
    }
    copy(kernel, &dir.join("hykernel.elf"))?;
    let objcopy = Command::new("objcopy")
        .args(["-I", "elf64-x86-64", "-O", "elf32-i386"])
        .arg(kernel)
        .arg(dir.join("hykernel32.elf"))
        .output()
        .map_err(|e| HarnessError(format!("objcopy: {e} (install binutils)")))?;
    if !objcopy.status.success() {
        return Err(HarnessError(format!("objcopy to ELF32 failed: {}", String::from_utf8_lossy(&objcopy.stderr))));
    }
    if guests.iter().any(|g| g.cfg.starts_with("linux")) {
        std::fs::create_dir_all(dir.join("domu")).map_err(|e| HarnessError(format!("{e}")))?;
        for f in ["vmlinux", "initrd.cpio.gz"] {
            copy(&host.join("domu").join(f), &dir.join("domu").join(f))?;
        }
        if guests.iter().any(|g| g.overrides.iter().any(|o| o.contains("initrd-peer"))) {
            peer_initrd(&host.join("domu/initrd.cpio.gz"), &dir.join("domu/initrd-peer.cpio.gz"))?;
        }
    }
    let list: String = guests.iter().map(|g| g.guests_line() + "\n").collect();
    std::fs::write(dir.join("guests"), list).map_err(|e| HarnessError(format!("writing the guest list: {e}")))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), HarnessError> {
    let out = cmd.output().map_err(|e| HarnessError(format!("{what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim())))
    }
}

/// The Linux peer's initramfs: the cached one with `tests/xen/peer/init` as `/init` and
/// `hyecho` (built here, statically) appended as a second cpio archive, which the kernel
/// unpacks over the first.
fn peer_initrd(base: &Path, out: &Path) -> Result<(), HarnessError> {
    let stage = out.with_extension("d");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("bin")).map_err(|e| HarnessError(format!("{}: {e}", stage.display())))?;
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
    let mut bytes = std::fs::read(base).map_err(|e| HarnessError(format!("{}: {e}", base.display())))?;
    bytes.extend(std::fs::read(&extra).map_err(|e| HarnessError(format!("{}: {e}", extra.display())))?);
    std::fs::write(out, bytes).map_err(|e| HarnessError(format!("{}: {e}", out.display())))?;
    let _ = std::fs::remove_dir_all(&stage);
    let _ = std::fs::remove_file(&extra);
    Ok(())
}

/// Boots the host with `payload` and copies the results to `out` (bounded by
/// `timeout_s`). Progress goes to stderr.
pub fn run_host(payload: &Path, out: &Path, timeout_s: u32) -> Result<(), HarnessError> {
    let status = Command::new(script("run-host.sh"))
        .arg(payload)
        .arg(out)
        .arg(timeout_s.to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| HarnessError(format!("tests/xen/run-host.sh: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError(format!(
            "the Xen host run failed ({status}); see the messages above and {}/host-console.log",
            out.display()
        )))
    }
}

/// Builds or reuses the host, runs `guests` on it under `work` (payload and results
/// subdirectories) with `timeout_s` for the whole boot, and reads every guest's results,
/// in order.
pub fn run_guests(work: &Path, kernel: &Path, guests: &[Guest], timeout_s: u32) -> Result<Vec<GuestRun>, HarnessError> {
    if !kernel.exists() {
        return Err(HarnessError(format!(
            "kernel image {} missing: build it first (tests/check.sh does)",
            kernel.display()
        )));
    }
    let host = host_build()?;
    let (payload, out) = (work.join("payload"), work.join("out"));
    make_payload(&payload, kernel, &host, guests)?;
    run_host(&payload, &out, timeout_s)?;
    guests.iter().map(|g| GuestRun::read(&out, &g.name)).collect()
}

/// What one guest left behind.
#[derive(Debug)]
pub struct GuestRun {
    /// Domain name.
    pub name: String,
    /// `<name>.times` as key/value pairs.
    pub times: BTreeMap<String, String>,
    /// Its primary console, line by line.
    pub lines: Vec<String>,
    /// The kernel's machine-readable lines.
    pub summary: BootSummary,
    /// Its domain id.
    pub domid: Option<u16>,
    /// The host's trace of the run.
    pub trace: Option<Trace>,
    /// What its dom0 client wrote (`<name>.client.json`), if it had one.
    pub client: Option<serde_json::Value>,
}

/// Parses `key=value` lines.
pub fn parse_times(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect()
}

impl GuestRun {
    /// Reads guest `name`'s files from `out`.
    pub fn read(out: &Path, name: &str) -> Result<GuestRun, HarnessError> {
        let read = |ext: &str| std::fs::read_to_string(out.join(format!("{name}.{ext}")));
        let times = parse_times(&read("times").map_err(|e| HarnessError(format!("{name}.times: {e}")))?);
        let lines: Vec<String> = read("out").unwrap_or_default().lines().map(str::to_string).collect();
        let summary = BootSummary::from_lines(&lines);
        let domid = times.get("domid").and_then(|d| d.parse().ok());
        let trace = match std::fs::read(out.join(format!("{name}.trace"))) {
            Ok(bytes) => {
                let (t, err) = xentrace::parse_lenient(&bytes);
                if let Some(e) = err {
                    eprintln!("note: {name}.trace: {e} (using the part before it)");
                }
                Some(t)
            }
            Err(_) => None,
        };
        let client = read("client.json").ok().and_then(|t| serde_json::from_str(&t).ok());
        Ok(GuestRun { name: name.into(), times, lines, summary, domid, trace, client })
    }

    /// A `*_seconds` timing, if recorded.
    pub fn seconds(&self, key: &str) -> Option<f64> {
        self.times.get(key).and_then(|v| v.parse().ok())
    }

    /// True if dom0 saw the domain end by itself.
    pub fn ended_ok(&self) -> bool {
        self.times.get("status").map(String::as_str) == Some("ok")
    }

    /// The trace phase named `name` of this guest's domain.
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        let (trace, dom) = (self.trace.as_ref()?, self.domid?);
        trace.phases(dom).into_iter().find(|p| p.name == name && p.complete)
    }
}

/// The kernel configurations `./run.sh --host xen --mode M` compares: (label, mode,
/// extra options). `all` is hvm, hybrid (global callback), hybrid with the per-vCPU
/// upcall vector, and pvh.
pub fn variants(mode: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    match mode {
        "hvm" => vec![("hvm", "hvm", "")],
        "hybrid" => vec![("hybrid", "hybrid", "")],
        "pvh" => vec![("pvh", "pvh", "")],
        _ => vec![
            ("hvm", "hvm", ""),
            ("hybrid", "hybrid", ""),
            ("hybrid-percpu", "hybrid", "callback=percpu"),
            ("pvh", "pvh", ""),
        ],
    }
}

/// True for exit reasons the guest's own instructions cause (as opposed to host
/// interrupts, NMIs, and interrupt windows Xen opens to inject an event).
pub fn guest_caused(reason: &str) -> bool {
    !matches!(reason, "INTR" | "NMI" | "SMI" | "VINTR" | "INIT")
}

/// Guest-caused exits per operation of a phase.
pub fn guest_exits_per_op(p: &Phase) -> Option<f64> {
    let n = p.iterations;
    (n != 0).then(|| p.exits.iter().filter(|(k, _)| guest_caused(k)).map(|(_, v)| *v).sum::<u64>() as f64 / n as f64)
}

/// What one interrupt costs a guest, from its `interrupt` phase (raise, delivery and
/// acknowledgement, one by one) and its `interrupt_raise` phase (the raises alone,
/// coalesced into a single delivery).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterruptCost {
    /// All exits per interrupt, host-caused ones included.
    pub exits: f64,
    /// Guest-caused exits per interrupt.
    pub guest: f64,
    /// Guest-caused exits per raise.
    pub raise: f64,
    /// Guest-caused exits of delivery and acknowledgement: `guest - raise`, both measured.
    pub deliver_ack: f64,
    /// Local APIC EOI writes per interrupt.
    pub eoi: f64,
    /// Host TSC cycles per interrupt between the phase's markers, if they carry a TSC.
    pub cycles: Option<f64>,
}

/// [`InterruptCost`] of a guest's two interrupt phases; `None` if either is empty.
pub fn interrupt_cost(round_trip: &Phase, raise: &Phase) -> Option<InterruptCost> {
    let guest = guest_exits_per_op(round_trip)?;
    let raise = guest_exits_per_op(raise)?;
    Some(InterruptCost {
        exits: round_trip.total_exits_per_op()?,
        guest,
        raise,
        deliver_ack: guest - raise,
        eoi: round_trip.eoi_exits_per_op()?,
        cycles: round_trip.tsc_ticks().map(|t| t as f64 / round_trip.iterations as f64),
    })
}

/// Exits per operation of a phase, as `"2.00 (MSR 2.00)"`: the total, then the reasons
/// with at least 0.01 per op.
pub fn describe_exits(p: &Phase) -> String {
    let Some(total) = p.total_exits_per_op() else {
        return "-".into();
    };
    let mut reasons: Vec<(String, f64)> = p.exits_per_op().into_iter().filter(|(_, v)| *v >= 0.01).collect();
    reasons.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} {}", fmt_rate(*v))).collect();
    if list.is_empty() {
        fmt_rate(total)
    } else {
        format!("{} ({})", fmt_rate(total), list.join(", "))
    }
}

fn fmt_rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 0.001 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("hy-pvh"), "hy-pvh");
        assert_eq!(shell_quote("ready=^DONE$"), "'ready=^DONE$'");
        assert_eq!(shell_quote("cmdline=\"mode=pvh bench=all\""), "'cmdline=\"mode=pvh bench=all\"'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn guest_lines() {
        let g = Guest::hykernel("hvm", "hvm", "cpuid,interrupt", "");
        assert_eq!(
            g.guests_line(),
            "hy-hvm hvm.cfg timeout=600 console=serial 'ready=^DONE$' 'cmdline=\"mode=hvm bench=cpuid,interrupt\"' 'kernel=\"/mnt/hykernel32.elf\"'"
        );
        assert!(Guest::linux_pvh().guests_line().contains("'ready=HY-DOMU: Linux up'"));
        let h = Guest::hykernel("hybrid-percpu", "hybrid", "all", "callback=percpu");
        assert_eq!((h.name.as_str(), h.cfg.as_str(), h.console.as_str()), ("hy-hybrid-percpu", "hvm.cfg", "pv"));
        assert!(h.guests_line().contains("mode=hybrid bench=all callback=percpu"));
        assert_eq!(Guest::hykernel("pvh", "pvh", "all", "").cfg, "pvh.cfg");
        assert_eq!(variants("all").len(), 4);
        assert!(!guest_caused("VINTR") && guest_caused("MSR"));
    }

    fn phase_with(name: &str, iterations: u64, exits: &[(&str, u64)], tsc: (u64, u64)) -> Phase {
        let mut p = Phase::new(name.into(), 1, iterations, Some(tsc.0));
        p.end_tsc = Some(tsc.1);
        for &(reason, n) in exits {
            p.exits.insert(reason.into(), n);
            p.total_exits += n;
        }
        p
    }

    #[test]
    fn interrupt_cost_splits_raise_from_delivery() {
        // hvm: self-IPI and EOI are MSR writes; the coalesced raises cost one MSR each.
        let mut rt = phase_with("interrupt", 100, &[("MSR", 200), ("INTR", 3)], (1000, 51_000));
        rt.msr_writes.insert(0x80b, 100);
        let raise = phase_with("interrupt_raise", 100, &[("MSR", 102)], (0, 1));
        let c = interrupt_cost(&rt, &raise).unwrap();
        assert_eq!((c.exits, c.guest, c.raise, c.eoi, c.cycles), (2.03, 2.0, 1.02, 1.0, Some(500.0)));
        assert!((c.deliver_ack - 0.98).abs() < 1e-9);
        // hybrid, global callback: the send is the only guest-caused exit; VINTR is Xen's.
        let rt = phase_with("interrupt", 100, &[("VMMCALL", 100), ("VINTR", 100)], (0, 100));
        let raise = phase_with("interrupt_raise", 100, &[("VMMCALL", 100), ("VINTR", 1)], (0, 1));
        let c = interrupt_cost(&rt, &raise).unwrap();
        assert_eq!((c.guest, c.raise, c.deliver_ack, c.eoi), (1.0, 1.0, 0.0, 0.0));
        let empty = phase_with("interrupt_raise", 0, &[], (0, 0));
        assert!(interrupt_cost(&rt, &empty).is_none());
    }

    #[test]
    fn times_file() {
        let t = parse_times("name=hy-pvh\ndomid=3\nfirst_line_seconds=1.234\nready_seconds=\nstatus=ok\n");
        let run = GuestRun {
            name: "x".into(),
            times: t,
            lines: vec![],
            summary: BootSummary::default(),
            domid: Some(3),
            trace: None,
            client: None,
        };
        assert_eq!(run.seconds("first_line_seconds"), Some(1.234));
        assert_eq!(run.seconds("ready_seconds"), None);
        assert!(run.ended_ok());
        assert!(run.phase("cpuid").is_none());
    }
}
