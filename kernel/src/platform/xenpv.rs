//! The Xen modes, hybrid and pvh: interrupts as event channels (on the global callback
//! vector, or the per-vCPU upcall vector with `callback=percpu`, or that vector with
//! Viridian's APIC assist with `callback=percpu-assist`), the pvclock, Xen's PV one-shot
//! timer, and the PV console. Without `callback=`, the cheapest upcall the host offers:
//! percpu-assist where Xen sets the APIC assist (events end with no exit), else the global
//! callback (one interrupt window per event, but no EOI).
//!
//! - **hybrid**: an HVM guest (native paging under HAP, the emulated PC still there) that
//!   takes its interrupt, timer and clock paths through Xen's PV interfaces.
//! - **pvh**: a PVH guest: no emulated devices, the same PV interfaces.
//!
//! The network is netfront over xenstore and the grant table, when the toolstack gave the
//! domain a vif; in hybrid mode the emulated NICs are unplugged first. With `nic=virtio`
//! a hybrid guest keeps qemu-xen's emulated virtio-net instead (nothing is unplugged) and
//! drives it with the hvm mode's driver; its MSI arrives over a PIRQ and an event channel
//! where Xen offers `XENFEAT_hvm_pirqs` (`msi=auto|pirq`, unless `hvm_pirqs=off`), else
//! through the local APIC, and the log says why.
//!
//! `timer=lapic|tsc-deadline|lapic-oneshot`, `clock=tsc|hpet` and `callback=global|percpu`
//! put one piece back on its hardware counterpart, so each enlightenment is measured alone.

use super::common::{hpet_clock, lapic_timer, leak, local_apic, marker, misfit, open_virtio, setup, tsc_clock};
use super::{timer_expired, Platform, PlatformError};
use alloc::boxed::Box;
use arch::acpi::AcpiInfo;
use arch::apic::Lapic;
use arch::cpu::Features;
use arch::hypervisor::Hypervisor;
use arch::platform::{Clock, Console, Timer};
use arch::xen::events::{Callback, EventChannels};
use arch::xen::grants::Grants;
use arch::xen::pvclock::PvClock;
use arch::xen::timer::XenTimer;
use arch::xen::viridian::ApicAssist;
use arch::xen::Xen;
use core::fmt::Debug;
use drivers::console::DebugCon;
use drivers::nic::Nic;
use drivers::xen::netfront::{Netfront, NetfrontConfig};
use drivers::xen::unplug::{self, class};
use drivers::xen::xenstore::XenStore;
use proto::cmdline::{
    parse_address, CallbackChoice, Choice, ClockChoice, EoiChoice, Ipv4Cidr, Mode, MsiChoice, MsiMask, NicChoice,
    Options, PirqFeature, TimerChoice,
};
use spin::Mutex;
use xen_iface::cpuid::{hvm_feature, XenCpuidInfo};

/// Builds the hybrid or pvh platform (`mode` says which).
pub(super) fn build(
    mode: Mode,
    opts: &Options,
    hv: Hypervisor,
    xen: Xen,
    xen_console: Option<&'static dyn Console>,
    acpi: Option<AcpiInfo>,
) -> Result<Platform, PlatformError> {
    check_device_switches(mode, opts)?;
    let Hypervisor::Xen(info) = hv else {
        return Err(PlatformError::WrongHypervisor(mode));
    };
    if mode == Mode::Pvh && opts.clock == ClockChoice::Hpet {
        return Err(misfit("clock", "clock=hpet: a PVH guest has no HPET"));
    }
    if opts.clock == ClockChoice::Kvmclock {
        return Err(misfit("clock", "clock=kvmclock is KVM's PV clock: on Xen use clock=pvclock"));
    }
    if opts.eoi == EoiChoice::Pv {
        return Err(misfit("eoi", "eoi=pv is KVM's PV EOI: on Xen, callback=percpu-assist skips the EOI"));
    }
    let features = Features::read();
    if mode == Mode::Hybrid {
        arch::pic::disable(); // the emulated PC's PICs stay silent; IO-APIC inputs are masked at reset
    }
    let lapic = local_apic(opts, &features)?;
    let callback = choose_callback(opts.callback, &info, lapic)?;
    let events = EventChannels::init(xen, callback, Some(lapic)).map_err(setup("event channels"))?;
    arch::trap::set_controller(events);

    let (page, offset) = events.vcpu_time();
    let pvclock: &'static PvClock = leak(PvClock::new(page, offset));
    let khz = info.tsc_khz.ok_or(PlatformError::Setup("clock", "Xen's CPUID leaf gives no TSC frequency".into()))?;
    let tsc = tsc_clock(khz as u64 * 1000);
    let clock: &'static dyn Clock = match opts.clock {
        ClockChoice::Auto | ClockChoice::Pvclock | ClockChoice::Kvmclock => pvclock,
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
    log::info!("TSC {khz} kHz (from Xen's CPUID leaf); events on vector with the {} callback", callback.name());
    let netfront = crate::net::levers::netfront_config(opts);
    match mode {
        Mode::Hybrid if msi_over_pirqs(opts, xen) => events.route_msis_over_pirqs(),
        Mode::Hybrid => {}
        _ => events.without_device_msis(),
    }
    let (nic, nic_ip) = match opts.nic {
        NicChoice::Virtio => (open_virtio(opts, events, clock), None), // its address from the command line
        NicChoice::Auto | NicChoice::Netfront => {
            let pages = XenPages { store: XenStore::init(xen, clock), grants: &|| Grants::init(xen) };
            open_netfront(pages, mode == Mode::Hybrid, events, clock, netfront)
        }
    };
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
        marker: marker(&hv, Some(xen)),
        xen: Some(xen),
        events: Some(events),
        nic: Mutex::new(nic),
        nic_name,
        nic_ip,
    })
}

/// The event upcall `asked` for; without one, the cheapest the host offers, said with its
/// reason in one log line. The global callback costs an interrupt window (a VINTR exit)
/// per event, the per-vCPU vector an EOI exit, the per-vCPU vector with the APIC assist
/// nothing. A choice the host cannot carry out is an error that names what is missing.
fn choose_callback(
    asked: Option<CallbackChoice>,
    info: &XenCpuidInfo,
    lapic: &'static Lapic,
) -> Result<Callback, PlatformError> {
    match asked {
        Some(CallbackChoice::Global) => Ok(Callback::Global),
        Some(CallbackChoice::PerCpu) => Ok(Callback::PerCpu),
        Some(CallbackChoice::PerCpuAssist) => ApicAssist::enable(info.viridian, lapic)
            .map(Callback::PerCpuAssist)
            .map_err(|e| misfit("callback", &alloc::format!("callback=percpu-assist: {e}"))),
        None if !info.has_hvm_feature(hvm_feature::UPCALL_VECTOR) => {
            log::info!("callback: global (auto): Xen does not advertise the per-vCPU upcall vector");
            Ok(Callback::Global)
        }
        None => match ApicAssist::enable(info.viridian, lapic) {
            Ok(assist) => {
                log::info!(
                    "callback: percpu-assist (auto): Xen set Viridian's APIC assist on a test interrupt, so events \
                     end without an EOI exit and without the global callback's interrupt window"
                );
                Ok(Callback::PerCpuAssist(assist))
            }
            Err(e) => {
                log::info!(
                    "callback: global (auto): no APIC assist ({e}); the global callback's interrupt window and \
                     the per-vCPU vector's EOI cost one exit per event each, and the global one needs no EOI"
                );
                Ok(Callback::Global)
            }
        },
    }
}

/// Refuses the device switches this mode cannot carry out, by name: the emulated NIC and
/// MSI over PIRQs need an HVM guest, and per-interrupt masking and moderation are the
/// virtio-net driver's (netfront has no MSI to mask and no moderation).
fn check_device_switches(mode: Mode, opts: &Options) -> Result<(), PlatformError> {
    if mode == Mode::Pvh && opts.nic == NicChoice::Virtio {
        return Err(misfit("nic", "nic=virtio is qemu's emulated NIC: a PVH guest has none (use mode=hybrid)"));
    }
    if mode == Mode::Pvh && opts.msi == MsiChoice::Pirq {
        return Err(misfit("msi", "msi=pirq routes an emulated device's MSI: a PVH guest has none (use mode=hybrid)"));
    }
    if opts.nic != NicChoice::Virtio && opts.msimask == MsiMask::On {
        return Err(misfit("msimask", "msimask=on masks virtio-net's MSI-X vector: it needs nic=virtio here"));
    }
    if opts.nic != NicChoice::Virtio && opts.irqmod_us != 0 {
        return Err(misfit("irqmod", "irqmod= is built into virtio-net only: it needs nic=virtio here"));
    }
    Ok(())
}

/// Whether device MSIs go over PIRQs and event channels: `msi=auto|pirq` where Xen offers
/// `XENFEAT_hvm_pirqs`, unless `hvm_pirqs=off` makes the kernel behave as if it did not.
/// One log line says what was chosen and why.
fn msi_over_pirqs(opts: &Options, xen: Xen) -> bool {
    if opts.msi == MsiChoice::Lapic {
        log::info!("msi: lapic (msi=lapic): device MSIs through the local APIC");
        return false;
    }
    let why_not = if opts.hvm_pirqs == PirqFeature::Off {
        "hvm_pirqs=off: behaving as if Xen did not offer XENFEAT_hvm_pirqs".into()
    } else {
        match xen.features() {
            Ok(f) if f.hvm_pirqs() => {
                log::info!(
                    "msi: pirq (msi={}): Xen offers XENFEAT_hvm_pirqs (features {:#x}): device MSIs over PIRQs and \
                     event channels, masked in shared memory, with no EOI",
                    opts.msi.name(),
                    f.0
                );
                return true;
            }
            Ok(f) => alloc::format!("Xen does not offer XENFEAT_hvm_pirqs (features {:#x})", f.0),
            Err(e) => alloc::format!("XENVER_get_features failed ({e})"),
        }
    };
    log::warn!("msi: lapic (msi={}): {why_not}; device MSIs through the local APIC instead", opts.msi.name());
    false
}

/// Where the Xen modes' netfront finds its pages: the xenstore ring (attached, or why
/// not) and the grant table (mapped on demand: only a domain with a vif gives up the RAM).
/// HVM and PVH guests reach both through HVM parameters and `add_to_physmap`; a classic
/// PV guest through its start info and `GNTTABOP_setup_table` (`super::pv`).
pub(super) struct XenPages<'a, S: Debug, G: Debug> {
    /// The xenstore connection.
    pub store: Result<XenStore, S>,
    /// Maps the grant table.
    pub grants: &'a dyn Fn() -> Result<Grants, G>,
}

/// Connects netfront if the domain has a vif: xenstore, (hybrid: `unplug`) the emulated
/// NICs unplugged, the grant table. Failures leave the guest without network, said in the
/// log (the benchmarks run all the same; the network one reports `SKIP net
/// reason=no-nic`).
pub(super) fn open_netfront<S: Debug, G: Debug>(
    pages: XenPages<'_, S, G>,
    unplug: bool,
    events: &'static EventChannels,
    clock: &'static dyn Clock,
    netfront: NetfrontConfig,
) -> (Option<Box<dyn Nic>>, Option<Ipv4Cidr>) {
    let store: &'static XenStore = match pages.store {
        Ok(s) => leak(s),
        Err(e) => {
            log::warn!("no xenstore ({e:?}): no network");
            return (None, None);
        }
    };
    if !Netfront::present(store) {
        return (None, None);
    }
    // Watch events wake the CPU and set a flag the network loop reads (`Nic::check_link`).
    if let Err(e) = store.listen(events) {
        log::warn!("xenstore's event channel not connected ({e:?}): a detached vif will not be noticed");
    }
    if unplug {
        match unplug::unplug(class::NICS) {
            Ok(()) => log::info!("emulated NICs unplugged"),
            Err(e) => log::warn!("emulated NICs not unplugged: {e:?}"),
        }
    }
    let grants: &'static Grants = match (pages.grants)() {
        Ok(g) => leak(g),
        Err(e) => {
            log::error!("grant table not mapped ({e:?}): no network");
            return (None, None);
        }
    };
    let (frames, naming) = grants.describe();
    log::info!("grant table: {frames} frames mapped; entries name {naming}");
    match Netfront::init(store, events, grants, clock, netfront) {
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
