//! hvm mode: the emulated PC. Local APIC (x2APIC or xAPIC) for delivery and EOI, IO-APIC
//! masked, LAPIC timer (TSC-deadline or one-shot), the TSC as clock, PCI with MSI-X, and
//! virtio-net as the NIC.

use super::{timer_expired, Platform, PlatformError};
use alloc::boxed::Box;
use alloc::format;
use arch::acpi::AcpiInfo;
use arch::apic::ioapic::IoApic;
use arch::apic::timer::LapicTimer;
use arch::apic::{ApicMode, Lapic, LapicController};
use arch::cpu::Features;
use arch::hypervisor::Hypervisor;
use arch::refclock::{Pit2, PmTimer};
use arch::tsc::{self, TscClock};
use drivers::nic::Nic;
use drivers::pci::{self, PortIo};
use drivers::virtio::net::VirtioNet;
use hykernel::cmdline::{ApicChoice, Mode, Options, TimerChoice};
use spin::Mutex;

fn leak<T>(v: T) -> &'static mut T {
    Box::leak(Box::new(v))
}

/// The TSC rate: stated by the hypervisor if it does, else measured.
fn tsc_hz(hv: &Hypervisor, acpi: Option<&AcpiInfo>) -> u64 {
    if let Hypervisor::Xen(x) = hv {
        if let Some(khz) = x.tsc_khz {
            log::info!("TSC {} kHz (from Xen's CPUID leaf)", khz);
            return khz as u64 * 1000;
        }
    }
    let hz = match acpi.and_then(|a| a.pm_timer) {
        Some((port, bits)) => tsc::calibrate(&PmTimer::new(port, bits), 50_000_000),
        None => tsc::calibrate(&Pit2::start(), 50_000_000),
    };
    log::info!(
        "TSC {} kHz (calibrated against {})",
        hz / 1000,
        if acpi.and_then(|a| a.pm_timer).is_some() {
            "the ACPI PM timer"
        } else {
            "the PIT"
        }
    );
    hz
}

fn setup<E: core::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> PlatformError {
    move |e| PlatformError::Setup(what, format!("{e:?}"))
}

/// Builds the hvm platform.
pub(super) fn build(
    opts: &Options,
    hv: Hypervisor,
    acpi: Option<AcpiInfo>,
) -> Result<Platform, PlatformError> {
    let acpi = acpi.ok_or(PlatformError::Setup(
        "acpi",
        "no ACPI tables: hvm mode needs the MADT".into(),
    ))?;
    let features = Features::read();
    arch::pic::disable();

    let apic_mode = match opts.apic {
        ApicChoice::Auto => ApicMode::Auto,
        ApicChoice::XApic => ApicMode::XApic,
        ApicChoice::X2Apic => ApicMode::X2Apic,
    };
    let lapic: &'static Lapic =
        leak(Lapic::init(apic_mode, &features).map_err(setup("local APIC"))?);
    for io in &acpi.io_apics {
        // SAFETY: the address comes from the firmware's MADT.
        let ioapic = unsafe { IoApic::new(io.address, io.gsi_base) }.map_err(setup("IO-APIC"))?;
        ioapic.mask_all();
        log::info!(
            "IO-APIC {} at {:#x}: GSIs {:?}, all masked",
            io.id,
            io.address,
            ioapic.gsis()
        );
        leak(ioapic);
    }
    let controller: &'static LapicController = leak(LapicController::new(lapic));
    arch::trap::set_controller(controller);

    let clock: &'static TscClock = leak(TscClock::starting_now(tsc_hz(&hv, Some(&acpi))));
    let prefer_deadline = match opts.timer {
        TimerChoice::Auto | TimerChoice::TscDeadline => true,
        TimerChoice::LapicOneShot => false,
    };
    if opts.timer == TimerChoice::TscDeadline && !features.tsc_deadline {
        return Err(PlatformError::Setup(
            "timer",
            "timer=tsc-deadline: this CPU has no TSC-deadline mode".into(),
        ));
    }
    let timer = LapicTimer::init(lapic, clock, &features, prefer_deadline, timer_expired)
        .map_err(setup("LAPIC timer"))?;

    // SAFETY: 0xcf8/0xcfc are the PCI configuration ports of the emulated PC.
    let cfg: &'static PortIo = leak(unsafe { PortIo::new() });
    let functions = pci::enumerate(cfg);
    for f in &functions {
        log::info!(
            "pci {} {:04x}:{:04x} class {:06x}",
            f.addr,
            f.vendor,
            f.device,
            f.class
        );
    }
    let nic: Option<Box<dyn Nic>> = match functions.iter().find(|f| VirtioNet::matches(f)) {
        Some(f) => match VirtioNet::init(cfg, f, controller) {
            Ok(n) => Some(Box::new(n)),
            Err(e) => {
                log::error!("virtio-net {}: {e:?}; continuing without network", f.addr);
                None
            }
        },
        None => None,
    };
    let nic_name = nic.as_ref().map_or("none", |n| n.name());
    Ok(Platform {
        hypervisor: hv,
        mode: Mode::Hvm,
        irq: controller,
        clock,
        timer,
        nic: Mutex::new(nic),
        nic_name,
    })
}
