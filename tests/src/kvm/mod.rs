//! The KVM test host from the harness: the Xen host's cached image booted without Xen
//! (`tests/xen/run-host.sh --no-xen`), whose L1 runs our kernel as an L2 KVM guest for
//! each [`KvmGuest`] (`tests/kvm/payload/run.sh`) while its tracefs records KVM's events.
//! [`run_guests`] returns a [`KvmRun`] per guest: its console read by
//! [`BootSummary`](crate::console::BootSummary) and its trace cut into phases by
//! [`crate::kvmtrace`].

mod host;

pub use host::{boot, make_payload, read_run, run_guests};

use crate::console::BootSummary;
use crate::kvmtrace::{KvmTrace, TraceError};
use proto::cmdline::{BenchSet, ClockChoice, EoiChoice, Mode, Options};

/// One L2 guest: a name (its result files' stem) and the kernel's command line.
#[derive(Clone, Debug, PartialEq)]
pub struct KvmGuest {
    /// Name, `[a-z0-9-]+`.
    pub name: String,
    /// The kernel's options.
    pub opts: Options,
    /// Seconds L1 gives the guest before it is stopped.
    pub timeout_s: u32,
}

impl KvmGuest {
    /// Our kernel as `label` with `opts`, running `bench`.
    pub fn kernel(label: &str, opts: Options, bench: BenchSet) -> KvmGuest {
        KvmGuest { name: format!("hy-kvm-{label}"), opts: Options { bench, ..opts }, timeout_s: 240 }
    }

    /// Its line of `guests.txt`.
    pub fn line(&self) -> String {
        format!("{} {} {}", self.name, self.timeout_s, self.opts)
    }
}

/// The variants of the KVM host, by label: `hvm` (the emulated PC, LAPIC EOI, TSC),
/// `hybrid` (kvmclock + PV EOI), `hybrid-lapic-eoi` (hybrid with the EOI write back).
pub fn variants(mode: &str) -> Result<Vec<(&'static str, Options)>, String> {
    let hvm = ("hvm", Options { mode: Mode::Hvm, ..Options::default() });
    let hybrid = ("hybrid", Options { mode: Mode::Hybrid, ..Options::default() });
    let lapic_eoi = (
        "hybrid-lapic-eoi",
        Options { mode: Mode::Hybrid, clock: ClockChoice::Kvmclock, eoi: EoiChoice::Lapic, ..Options::default() },
    );
    Ok(match mode {
        "hvm" => vec![hvm],
        "hybrid" => vec![hybrid],
        "all" => vec![hvm, hybrid, lapic_eoi],
        m => return Err(format!("--mode {m}: the KVM host runs hvm, hybrid or all")),
    })
}

/// What one guest left.
#[derive(Debug)]
pub struct KvmRun {
    /// The guest.
    pub guest: KvmGuest,
    /// QEMU's exit status in L1 (`isa-debug-exit`: 1 success, 3 failure; 124 timed out),
    /// `None` if L1 never ran it.
    pub exit: Option<i32>,
    /// Its COM1 console.
    pub console: BootSummary,
    /// Its trace, in phases.
    pub trace: Result<KvmTrace, TraceError>,
}

impl KvmRun {
    /// Why this guest's results cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let name = &self.guest.name;
        match self.exit {
            None => return Some(format!("{name}: L1 never ran it (no {name}.exit)")),
            Some(1) => {}
            Some(124) => return Some(format!("{name}: still running after {} s; stopped", self.guest.timeout_s)),
            Some(s) => return Some(format!("{name}: QEMU exited with status {s} (1 = success)")),
        }
        if let Some(f) = self.console.failures().first() {
            return Some(format!("{name}: the kernel failed: {f}"));
        }
        if !self.console.done {
            return Some(format!("{name}: no DONE line"));
        }
        self.trace.as_ref().err().map(|e| format!("{name}: trace: {e}"))
    }
}
