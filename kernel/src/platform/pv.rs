//! The pv mode: a classic 64-bit PV guest, booted through the image's `XEN_ELFNOTE_ENTRY`.
//!
//! [`start`] runs before the heap: `arch::boot::pv` checks the start info and maps the
//! console ring, which becomes the only console (port I/O faults in ring 3), Xen's
//! `SCHEDOP_shutdown` the power control, then `shared_info` (its `evtchn_upcall_mask` is
//! the interrupt flag), the virtual IDT, and the domain's memory. [`build`] then makes
//! the platform: event channels on the PV event callback, the pvclock, Xen's one-shot
//! timer, and netfront when the domain has a vif. The netfront, xenstore client and grant
//! table are the other Xen modes' (`super::xenpv::open_netfront`); only where their pages
//! come from differs: the xenstore ring is start info's `store_mfn` (mapped by the PV
//! start) and its `store_evtchn`, the grant table's frames come from
//! `GNTTABOP_setup_table`, and grant entries name machine frames, looked up in the
//! domain's frame list (`Grants::init_pv`).
//!
//! `fault=pv-bad-pte` asks Xen for a page-table update it must refuse (the L4 table
//! mapped writable) and, after the refusal's report, writes the read-only L4 table
//! directly: both must end in a report, never a silent death.

use super::common::{leak, misfit, setup, tsc_clock};
use super::xenpv::{open_netfront, XenPages};
use super::{timer_expired, Platform, PlatformError};
use crate::console;
use arch::boot::pv::{PvBoot, PvMmu};
use arch::boot::BootInfo;
use arch::hypervisor::Hypervisor;
use arch::platform::{Clock, Console, ExitStatus, Timer};
use arch::start::PvStart;
use arch::xen::events::{Callback, EventChannels};
use arch::xen::grants::Grants;
use arch::xen::pvclock::PvClock;
use arch::xen::shared::SharedPage;
use arch::xen::timer::XenTimer;
use arch::xen::{Xen, XenPower, XenTraceMarker};
use drivers::xen::console::XenConsole;
use drivers::xen::xenstore::{StoreError, XenStore};
use proto::cmdline::{
    CallbackChoice, ClockChoice, EoiChoice, Fault, Mode, MsiChoice, MsiMask, NicChoice, Options, PirqFeature,
    TimerChoice,
};
use spin::{Mutex, Once};
use xen_iface::cpuid::XenCpuidInfo;
use xen_iface::hypercall::ShutdownReason;
use xen_iface::pv::{pte, MmuUpdate};

/// What the PV start leaves for the platform.
pub struct PvGuest {
    /// The hypercalls.
    pub xen: Xen,
    /// The console ring, attached.
    pub console: &'static dyn Console,
    /// Xen, as its version hypercall and the pvclock's TSC rate describe it (a PV guest
    /// sees the CPU's own CPUID leaves, not Xen's).
    pub hypervisor: Hypervisor,
    /// The page tables.
    pub mmu: PvMmu,
    /// The xenstore ring, mapped, and its event channel (or Xen's error code).
    pub store: Mutex<Option<Result<(SharedPage, u32), i64>>>,
}

static CONSOLE: Once<XenConsole> = Once::new();
static POWER: Once<XenPower> = Once::new();

/// The PV start of day up to a kernel with memory (see the module header). Failures are
/// reported on the console where there is one, and end the domain.
pub fn start(s: PvStart) -> (BootInfo, PvGuest) {
    let (xen, early) = s.boot();
    crate::power::set(POWER.call_once(|| XenPower(xen)));
    let mut early = match early {
        Ok(e) => e,
        Err(_) => {
            // No console to say why: the toolstack logs the crash.
            xen.shutdown(ShutdownReason::Crash);
            arch::cpu::halt_forever()
        }
    };
    let Some((ring, port)) = early.console.take() else { unreachable_console(xen) };
    let console: &'static dyn Console = match XenConsole::from_ring(xen, ring, port) {
        Ok(c) => CONSOLE.call_once(|| c),
        Err(_) => unreachable_console(xen),
    };
    // The interrupt flag first: console lines mask events around themselves. Until it
    // works, only the console's own write can report.
    if let Err(e) = early.traps() {
        let _ =
            core::fmt::Write::write_fmt(&mut Direct(console), format_args!("ERROR pv: no events or traps: {e:?}\n"));
        console.flush();
        xen.shutdown(ShutdownReason::Crash);
        arch::cpu::halt_forever()
    }
    console::set(&[console]);
    let boot = match early.map_memory() {
        Ok(b) => b,
        Err(e) => {
            kprintln!("ERROR pv: the domain's memory could not be mapped: {e:?}");
            crate::power::off(ExitStatus::Failure)
        }
    };
    let PvBoot { boot, tsc_hz, nr_pages, pages_mapped, pages_usable, tables_added, mmu, store, .. } = boot;
    let hypervisor = describe(xen, tsc_hz);
    kprintln!(
        "pv: {} MiB, {} MiB in use: {pages_mapped} pages mapped with {tables_added} new L1 tables by batched \
         mmu_update",
        nr_pages >> 8,
        pages_usable >> 8
    );
    (boot, PvGuest { xen, console, hypervisor, mmu, store: Mutex::new(Some(store)) })
}

/// Formatted text straight into one console (before the console list can be used).
struct Direct(&'static dyn Console);

impl core::fmt::Write for Direct {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

fn unreachable_console(xen: Xen) -> ! {
    xen.shutdown(ShutdownReason::Crash);
    arch::cpu::halt_forever()
}

/// Xen as a PV guest learns it: the version hypercall, and the TSC rate from the pvclock
/// scale in vCPU 0's `vcpu_info`.
fn describe(xen: Xen, tsc_hz: Option<u64>) -> Hypervisor {
    let v = xen.version();
    let tsc_khz = tsc_hz.map(|hz| (hz / 1000) as u32);
    Hypervisor::Xen(XenCpuidInfo {
        base: 0,
        max_leaf: 0,
        major: (v >> 16) as u16,
        minor: v as u16,
        hypercall_pages: 1,
        hypercall_msr: 0,
        tsc_khz,
        hvm_features: 0,
        vcpu_id: Some(0),
        domid: None,
        viridian: None,
    })
}

/// Builds the pv platform.
pub(super) fn build(opts: &Options, guest: &PvGuest) -> Result<Platform, PlatformError> {
    check_switches(opts)?;
    let xen = guest.xen;
    let events = EventChannels::init(xen, Callback::Pv, None).map_err(setup("event channels"))?;
    arch::trap::set_controller(events);
    let (page, offset) = events.vcpu_time();
    let pvclock: &'static PvClock = leak(PvClock::new(page, offset));
    let Hypervisor::Xen(info) = guest.hypervisor else {
        return Err(PlatformError::WrongHypervisor(Mode::Pv));
    };
    let khz = info.tsc_khz.ok_or(PlatformError::Setup("clock", "the pvclock gives no TSC rate".into()))?;
    let tsc = tsc_clock(khz as u64 * 1000);
    let clock: &'static dyn Clock = match opts.clock {
        ClockChoice::Tsc => tsc,
        _ => pvclock,
    };
    let same_base = !matches!(opts.clock, ClockChoice::Tsc);
    let timer: &'static dyn Timer =
        XenTimer::init(events, clock, pvclock, same_base, timer_expired).map_err(setup("PV timer"))?;
    log::info!(
        "pv: events on the PV event callback (interrupt flag: evtchn_upcall_mask), TSC {khz} kHz (pvclock scale)"
    );
    if opts.fault == Fault::PvBadPte {
        bad_page_table_update(xen, guest.mmu);
    }
    let store = match guest.store.lock().take() {
        Some(Ok((page, port))) => XenStore::attach(xen, clock, page, port).map_err(StoreFailure::Attach),
        Some(Err(code)) => Err(StoreFailure::Map(code)),
        None => Err(StoreFailure::Taken),
    };
    let p2m = guest.mmu.frames();
    let pages = XenPages { store, grants: &|| Grants::init_pv(xen, p2m) };
    let (nic, nic_ip) = open_netfront(pages, false, events, clock, crate::net::levers::netfront_config(opts));
    let nic_name = nic.as_ref().map_or("none", |n| n.name());
    Ok(Platform {
        hypervisor: guest.hypervisor,
        mode: Mode::Pv,
        irq: events,
        clock,
        tsc,
        timer,
        consoles: leak([guest.console]),
        marker: leak(XenTraceMarker(xen)),
        xen: Some(xen),
        events: Some(events),
        nic: Mutex::new(nic),
        nic_name,
        nic_ip,
    })
}

/// Why a PV guest has no xenstore.
enum StoreFailure {
    /// Xen would not map the ring start info names (its error code).
    Map(i64),
    /// The ring is not one a client can attach to.
    Attach(StoreError),
    /// The platform was built twice.
    Taken,
}

/// Refuses, by name, the switches that need hardware a PV guest does not have.
fn check_switches(opts: &Options) -> Result<(), PlatformError> {
    let bad = |o: &'static str, why: &str| Err(misfit(o, why));
    if !matches!(opts.timer, TimerChoice::Auto | TimerChoice::Pv) {
        return bad("timer", "a PV guest has no local APIC: its timer is Xen's (timer=auto|pv)");
    }
    if matches!(opts.clock, ClockChoice::Hpet | ClockChoice::Kvmclock) {
        return bad("clock", "a PV guest has the pvclock and the TSC only (clock=auto|pvclock|tsc)");
    }
    if opts.eoi == EoiChoice::Pv || opts.callback.is_some_and(|c| c != CallbackChoice::Global) {
        return bad("callback", "a PV guest's events come by Xen's event callback; there is no vector to choose");
    }
    if opts.nic == NicChoice::Virtio || opts.msi == MsiChoice::Pirq || opts.hvm_pirqs == PirqFeature::Off {
        return bad("nic", "a PV guest has no emulated devices (nic=virtio, msi=, hvm_pirqs= need mode=hybrid)");
    }
    if opts.msimask == MsiMask::On || opts.irqmod_us != 0 {
        return bad("msimask", "msimask= and irqmod= are virtio-net's: they need mode=hybrid nic=virtio");
    }
    Ok(())
}

/// `fault=pv-bad-pte`: an update Xen must refuse, reported, then a direct write to a
/// read-only page table, which faults into the trap report and ends the run.
fn bad_page_table_update(xen: Xen, mmu: PvMmu) -> ! {
    let (l4_pfn, l4_mfn) = mmu.l4();
    let probe = leak([0u8; 4096]).as_ptr() as u64 & !0xfff;
    let target = mmu.l1_entry_maddr(probe).unwrap_or(0);
    let update = MmuUpdate { ptr: target, val: l4_mfn << 12 | pte::DATA };
    match arch::boot::pv::bad_update(xen, update) {
        Err(e) => kprintln!(
            "ERROR pv: Xen refused the page-table update {:#x} <- {:#x} (the L4 table mapped writable): error {}",
            e.update.ptr,
            e.update.val,
            e.code
        ),
        Ok(()) => kprintln!("ERROR pv: Xen accepted a writable mapping of the L4 table"),
    }
    arch::boot::pv::write_page_table(l4_pfn)
}

impl core::fmt::Debug for StoreFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreFailure::Map(code) => write!(f, "Xen refused to map start info's store_mfn: error {code}"),
            StoreFailure::Attach(e) => write!(f, "the ring at start info's store_mfn: {e:?}"),
            StoreFailure::Taken => write!(f, "the ring was taken by an earlier build"),
        }
    }
}
