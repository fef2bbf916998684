//! The Xen modes, hybrid and pvh: interrupts as event channels (on the global callback
//! vector, or the per-vCPU upcall vector with `callback=percpu`), the pvclock, Xen's PV
//! one-shot timer, and the PV console.
//!
//! - **hybrid**: an HVM guest (native paging under HAP, the emulated PC still there) that
//!   takes its interrupt, timer and clock paths through Xen's PV interfaces.
//! - **pvh**: a PVH guest: no emulated devices, the same PV interfaces.
//!
//! The network is netfront over xenstore and the grant table, when the toolstack gave the
//! domain a vif; in hybrid mode the emulated NICs are unplugged first.
//!
//! `timer=lapic|tsc-deadline|lapic-oneshot`, `clock=tsc|hpet` and `callback=percpu` put
//! one piece back on its hardware counterpart, so each enlightenment is measured alone.

use super::common::{hpet_clock, lapic_timer, leak, local_apic, marker, misfit, refuse_unbuilt, setup, tsc_clock};
use super::{timer_expired, Platform, PlatformError};
use alloc::boxed::Box;
use arch::acpi::AcpiInfo;
use arch::cpu::Features;
use arch::hypervisor::Hypervisor;
use arch::platform::{Clock, Console, Timer};
use arch::xen::events::{Callback, EventChannels};
use arch::xen::grants::Grants;
use arch::xen::pvclock::PvClock;
use arch::xen::timer::XenTimer;
use arch::xen::Xen;
use drivers::console::DebugCon;
use drivers::nic::Nic;
use drivers::xen::netfront::Netfront;
use drivers::xen::unplug::{self, class};
use drivers::xen::xenstore::XenStore;
use proto::cmdline::{parse_address, CallbackChoice, ClockChoice, Fault, Ipv4Cidr, Mode, Options, TimerChoice};
use spin::Mutex;

/// Builds the hybrid or pvh platform (`mode` says which).
pub(super) fn build(
    mode: Mode,
    opts: &Options,
    hv: Hypervisor,
    xen: Xen,
    xen_console: Option<&'static dyn Console>,
    acpi: Option<AcpiInfo>,
) -> Result<Platform, PlatformError> {
    refuse_unbuilt(mode, opts)?;
    let Hypervisor::Xen(info) = hv else {
        return Err(PlatformError::WrongHypervisor(mode));
    };
    if mode == Mode::Pvh && opts.clock == ClockChoice::Hpet {
        return Err(misfit("clock", "clock=hpet: a PVH guest has no HPET"));
    }
    let features = Features::read();
    if mode == Mode::Hybrid {
        arch::pic::disable(); // the emulated PC's PICs stay silent; IO-APIC inputs are masked at reset
    }
    let lapic = local_apic(opts, &features)?;
    let callback = match opts.callback.unwrap_or(CallbackChoice::Global) {
        CallbackChoice::Global => Callback::Global,
        CallbackChoice::PerCpu => Callback::PerCpu,
        CallbackChoice::PerCpuAssist => {
            return Err(misfit("callback", "callback=percpu-assist is not built yet"));
        }
    };
    let events = EventChannels::init(xen, callback, Some(lapic)).map_err(setup("event channels"))?;
    arch::trap::set_controller(events);

    let (page, offset) = events.vcpu_time();
    let pvclock: &'static PvClock = leak(PvClock::new(page, offset));
    let khz = info.tsc_khz.ok_or(PlatformError::Setup("clock", "Xen's CPUID leaf gives no TSC frequency".into()))?;
    let tsc = tsc_clock(khz as u64 * 1000);
    let clock: &'static dyn Clock = match opts.clock {
        ClockChoice::Auto | ClockChoice::Pvclock => pvclock,
        ClockChoice::Tsc => tsc,
        ClockChoice::Hpet => hpet_clock(acpi.as_ref())?,
    };
    let same_base = matches!(opts.clock, ClockChoice::Auto | ClockChoice::Pvclock);
    let timer: &'static dyn Timer = match opts.timer {
        TimerChoice::Auto | TimerChoice::Pv => {
            XenTimer::init(events, clock, pvclock, same_base, timer_expired).map_err(setup("PV timer"))?
        }
        _ => lapic_timer(opts, &features, lapic, clock, tsc)?,
    };
    log::info!("TSC {khz} kHz (from Xen's CPUID leaf); events on vector with {callback:?} callback");
    // A test of the harness widens the window between granting and publishing the rings.
    let stall_ns = if opts.fault == Fault::NetfrontStall { 5_000_000_000 } else { 0 };
    let (nic, nic_ip) = open_netfront(mode, xen, events, clock, stall_ns);
    let nic_name = nic.as_ref().map_or("none", |n| n.name());
    let consoles: &'static [&'static dyn Console] = match xen_console {
        Some(c) => leak([c, &DebugCon]),
        None => leak([&DebugCon as &dyn Console]),
    };
    Ok(Platform {
        hypervisor: hv,
        mode,
        irq: events,
        clock,
        tsc,
        timer,
        consoles,
        marker: marker(Some(xen)),
        xen: Some(xen),
        events: Some(events),
        nic: Mutex::new(nic),
        nic_name,
        nic_ip,
    })
}

/// Connects netfront if the domain has a vif: grant table, xenstore, and (hybrid) the
/// emulated NICs unplugged. Failures leave the guest without network, said in the log
/// (the benchmarks run all the same; the network one reports `SKIP net reason=no-nic`).
fn open_netfront(
    mode: Mode,
    xen: Xen,
    events: &'static EventChannels,
    clock: &'static dyn Clock,
    stall_ns: u64,
) -> (Option<Box<dyn Nic>>, Option<Ipv4Cidr>) {
    let store: &'static XenStore = match XenStore::init(xen, clock) {
        Ok(s) => leak(s),
        Err(e) => {
            log::warn!("no xenstore ({e:?}): no network");
            return (None, None);
        }
    };
    if !Netfront::present(store) {
        return (None, None);
    }
    if mode == Mode::Hybrid {
        match unplug::unplug(class::NICS) {
            Ok(()) => log::info!("emulated NICs unplugged"),
            Err(e) => log::warn!("emulated NICs not unplugged: {e:?}"),
        }
    }
    let grants: &'static Grants = match Grants::init(xen) {
        Ok(g) => leak(g),
        Err(e) => {
            log::error!("grant table not mapped ({e:?}): no network");
            return (None, None);
        }
    };
    match Netfront::init(store, events, grants, clock, stall_ns) {
        Ok(nf) => {
            let ip = nf.configured_ip().and_then(|s| parse_address(s, Some(24)));
            (Some(Box::new(nf)), ip)
        }
        Err(failure) => {
            // Nothing of the device is left: the front end closed in xenstore, its event
            // channel closed, every page taken back (a page the back end still maps is
            // leaked, never handed out again).
            log::error!("netfront: {failure}; continuing without network ({} grants live)", grants.live());
            (None, None)
        }
    }
}
