//! Pieces the modes share: the local APIC, the TSC and HPET clocks, the LAPIC timer, the
//! phase marker, virtio-net on the emulated PC's PCI bus (hvm and hybrid `nic=virtio`, one
//! driver whichever controller routes its interrupt), and small helpers for building
//! `'static` trait objects.

use super::{timer_expired, PlatformError};
use alloc::boxed::Box;
use alloc::format;
use arch::acpi::AcpiInfo;
use arch::apic::timer::LapicTimer;
use arch::apic::{ApicMode, Lapic};
use arch::cpu::Features;
use arch::hypervisor::Hypervisor;
use arch::kvm::marker::CpuidMarker;
use arch::platform::{Clock, InterruptController, NoMarker, PhaseMarker};
use arch::tsc::TscClock;
use arch::xen::{Xen, XenTraceMarker};
use drivers::nic::Nic;
use drivers::pci::{self, PortIo};
use drivers::virtio::net::{RxIrqPolicy, VirtioNet, VirtioNetConfig};
use proto::cmdline::{ApicChoice, MsiMask, NetLever, Options, TimerChoice};

/// Moves `v` to the heap for the rest of the kernel's life.
pub fn leak<T>(v: T) -> &'static mut T {
    Box::leak(Box::new(v))
}

/// Maps a setup error of `what` into a [`PlatformError`].
pub fn setup<E: core::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> PlatformError {
    move |e| PlatformError::Setup(what, format!("{e:?}"))
}

/// A command-line value that does not fit the mode in use.
pub fn misfit(option: &'static str, why: &str) -> PlatformError {
    PlatformError::Setup(option, why.into())
}

/// The local APIC, in the access mode `apic=` asks for.
pub fn local_apic(opts: &Options, features: &Features) -> Result<&'static Lapic, PlatformError> {
    let mode = match opts.apic {
        ApicChoice::Auto => ApicMode::Auto,
        ApicChoice::XApic => ApicMode::XApic,
        ApicChoice::X2Apic => ApicMode::X2Apic,
    };
    Ok(leak(Lapic::init(mode, features).map_err(setup("local APIC"))?))
}

/// The TSC as a clock, at `hz`.
pub fn tsc_clock(hz: u64) -> &'static TscClock {
    leak(TscClock::starting_now(hz))
}

/// The HPET as a clock, from the ACPI tables.
pub fn hpet_clock(acpi: Option<&AcpiInfo>) -> Result<&'static dyn Clock, PlatformError> {
    let hpet =
        acpi.and_then(arch::firmware::hpet).ok_or(misfit("clock", "clock=hpet: the firmware tables list no HPET"))?;
    Ok(leak(hpet.map_err(setup("HPET"))?))
}

/// The LAPIC timer in the mode `timer=` asks for, deadlines in `clock`'s time.
pub fn lapic_timer(
    opts: &Options,
    features: &Features,
    lapic: &'static Lapic,
    clock: &'static dyn Clock,
    tsc: &'static TscClock,
) -> Result<&'static LapicTimer, PlatformError> {
    if opts.timer == TimerChoice::TscDeadline && !features.tsc_deadline {
        return Err(misfit("timer", "timer=tsc-deadline: this CPU has no TSC-deadline mode"));
    }
    let prefer_deadline = opts.timer != TimerChoice::LapicOneShot;
    LapicTimer::init(lapic, clock, tsc, features, prefer_deadline, timer_expired).map_err(setup("LAPIC timer"))
}

/// Xen's trace records where the hypercall page is up, CPUID exits on KVM (L1's
/// `kvm:kvm_cpuid` records them), else nothing.
pub fn marker(hv: &Hypervisor, xen: Option<Xen>) -> &'static dyn PhaseMarker {
    match (xen, hv) {
        (Some(x), _) => leak(XenTraceMarker(x)),
        (None, Hypervisor::Kvm { .. }) => &CpuidMarker,
        (None, _) => &NoMarker,
    }
}

/// Masks every input of the emulated PC's IO-APICs (devices interrupt by MSI).
pub fn mask_io_apics(acpi: &AcpiInfo) -> Result<(), PlatformError> {
    for io in &acpi.io_apics {
        let ioapic = arch::firmware::io_apic(io).map_err(setup("IO-APIC"))?;
        ioapic.mask_all();
        log::info!("IO-APIC {} at {:#x}: GSIs {:?}, all masked", io.id, io.address, ioapic.gsis());
        leak(ioapic);
    }
    Ok(())
}

/// How virtio-net is run: its receive interrupt kept quiet as `msimask=` and `irqmod=`
/// ask, its receive offloads taken as the `offload` network lever says.
pub fn virtio_config(opts: &Options) -> VirtioNetConfig {
    VirtioNetConfig {
        irq: RxIrqPolicy { mask_each: opts.msimask == MsiMask::On, moderation_ns: opts.irqmod_us as u64 * 1000 },
        rx_offloads: opts.net.on(NetLever::Offload),
    }
}

/// virtio-net on the PCI bus (the first one found), its receive interrupt routed by
/// `irq`, run as [`virtio_config`] says, moderation timed on `clock`.
/// `None`, said in the log, if there is none or it does not come up.
pub fn open_virtio(
    opts: &Options,
    irq: &'static dyn InterruptController,
    clock: &'static dyn Clock,
) -> Option<Box<dyn Nic>> {
    let cfg: &'static PortIo = leak(PortIo::new());
    let functions = pci::enumerate(cfg);
    for f in &functions {
        log::info!("pci {} {:04x}:{:04x} class {:06x}", f.addr, f.vendor, f.device, f.class);
    }
    let Some(f) = functions.iter().find(|f| VirtioNet::matches(f)) else {
        log::info!("no virtio-net on the PCI bus: no network");
        return None;
    };
    match VirtioNet::init(cfg, f, irq, virtio_config(opts), clock) {
        Ok(n) => Some(Box::new(n)),
        Err(e) => {
            log::error!("virtio-net {}: {e:?}; continuing without network", f.addr);
            None
        }
    }
}
