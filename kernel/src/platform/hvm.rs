//! hvm mode: the emulated PC. Local APIC (x2APIC or xAPIC) for delivery and EOI, IO-APIC
//! masked, LAPIC timer (TSC-deadline or one-shot), the TSC (or the HPET) as clock, PCI
//! with MSI-X, and virtio-net as the NIC (its MSI through the local APIC, masked at the
//! device; `msimask=` and `irqmod=` as in `common::open_virtio`). The same on QEMU/KVM
//! and as a Xen HVM domU.

use super::common::{hpet_clock, lapic_timer, leak, local_apic, marker, mask_io_apics, misfit, open_virtio, tsc_clock};
use super::{Platform, PlatformError};
use arch::acpi::AcpiInfo;
use arch::apic::LapicController;
use arch::cpu::Features;
use arch::hypervisor::Hypervisor;
use arch::platform::{Clock, Console};
use arch::refclock::{Pit2, PmTimer};
use arch::tsc;
use arch::xen::Xen;
use drivers::console::{DebugCon, Uart16550};
use proto::cmdline::{ClockChoice, EoiChoice, Mode, MsiChoice, NicChoice, Options, TimerChoice};
use spin::Mutex;

/// The TSC rate: stated by the hypervisor if it does, else measured.
pub(super) fn tsc_hz(hv: &Hypervisor, acpi: &AcpiInfo) -> u64 {
    if let Hypervisor::Xen(x) = hv {
        if let Some(khz) = x.tsc_khz {
            log::info!("TSC {} kHz (from Xen's CPUID leaf)", khz);
            return khz as u64 * 1000;
        }
    }
    let hz = match acpi.pm_timer {
        Some((port, bits)) => tsc::calibrate(&PmTimer::new(port, bits), 50_000_000),
        None => tsc::calibrate(&Pit2::start(), 50_000_000),
    };
    let against = if acpi.pm_timer.is_some() { "the ACPI PM timer" } else { "the PIT" };
    log::info!("TSC {} kHz (calibrated against {against})", hz / 1000);
    hz
}

/// Checks that the command line asks for nothing hvm mode does not have.
fn check_switches(opts: &Options) -> Result<(), PlatformError> {
    if opts.timer == TimerChoice::Pv {
        return Err(misfit("timer", "timer=pv is Xen's PV timer: it needs mode=hybrid or mode=pvh"));
    }
    if opts.clock == ClockChoice::Pvclock {
        return Err(misfit("clock", "clock=pvclock is Xen's PV clock: it needs mode=hybrid or mode=pvh"));
    }
    if opts.clock == ClockChoice::Kvmclock {
        return Err(misfit("clock", "clock=kvmclock is KVM's PV clock: it needs mode=hybrid on KVM"));
    }
    if opts.eoi == EoiChoice::Pv {
        return Err(misfit("eoi", "eoi=pv is KVM's PV EOI: it needs mode=hybrid on KVM"));
    }
    if opts.callback.is_some() {
        return Err(misfit("callback", "callback= sets how Xen delivers events: it needs mode=hybrid or mode=pvh"));
    }
    if opts.nic == NicChoice::Netfront {
        return Err(misfit("nic", "nic=netfront is Xen's PV NIC: it needs mode=hybrid or mode=pvh"));
    }
    if opts.msi == MsiChoice::Pirq {
        return Err(misfit("msi", "msi=pirq delivers MSIs as Xen event channels: it needs mode=hybrid"));
    }
    Ok(())
}

/// Builds the hvm platform.
pub(super) fn build(
    opts: &Options,
    hv: Hypervisor,
    xen: Option<Xen>,
    acpi: Option<AcpiInfo>,
) -> Result<Platform, PlatformError> {
    check_switches(opts)?;
    let acpi = acpi.ok_or(PlatformError::Setup("acpi", "no ACPI tables: hvm mode needs the MADT".into()))?;
    let features = Features::read();
    arch::pic::disable();
    mask_io_apics(&acpi)?;
    let lapic = local_apic(opts, &features)?;
    let controller: &'static LapicController = leak(LapicController::new(lapic));
    arch::trap::set_controller(controller);
    let tsc = tsc_clock(tsc_hz(&hv, &acpi));
    let clock: &'static dyn Clock = match opts.clock {
        ClockChoice::Hpet => hpet_clock(Some(&acpi))?,
        _ => tsc,
    };
    let timer = lapic_timer(opts, &features, lapic, clock, tsc)?;

    let nic = open_virtio(opts, controller, clock);
    let nic_name = nic.as_ref().map_or("none", |n| n.name());
    // COM1 is the emulated PC's first UART (already programmed at boot).
    let com1: &'static Uart16550 = leak(Uart16550::com1());
    // On Xen, port 0xe9 lands in the hypervisor's log too, without the device model.
    let consoles: &'static [&'static dyn Console] =
        if xen.is_some() { leak([com1 as &dyn Console, &DebugCon]) } else { leak([com1 as &dyn Console]) };
    Ok(Platform {
        hypervisor: hv,
        mode: Mode::Hvm,
        irq: controller,
        clock,
        tsc,
        timer,
        consoles,
        marker: marker(&hv, xen),
        xen,
        events: None,
        nic: Mutex::new(nic),
        nic_name,
        nic_ip: None,
    })
}
