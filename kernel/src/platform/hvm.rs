//! hvm mode: the emulated PC. Local APIC (x2APIC or xAPIC) for delivery and EOI, IO-APIC
//! masked, LAPIC timer (TSC-deadline or one-shot), the TSC as clock, PCI with MSI-X, and
//! virtio-net as the NIC. The same on QEMU/KVM and as a Xen HVM domU.

use super::common::{lapic_platform, leak, marker, setup};
use super::{Platform, PlatformError};
use alloc::boxed::Box;
use arch::acpi::AcpiInfo;
use arch::apic::ioapic::IoApic;
use arch::cpu::Features;
use arch::hypervisor::Hypervisor;
use arch::platform::Console;
use arch::refclock::{Pit2, PmTimer};
use arch::tsc;
use arch::xen::Xen;
use drivers::console::{DebugCon, Uart16550};
use drivers::nic::Nic;
use drivers::pci::{self, PortIo};
use drivers::virtio::net::VirtioNet;
use hykernel::cmdline::{Mode, Options};
use spin::Mutex;

/// The TSC rate: stated by the hypervisor if it does, else measured.
fn tsc_hz(hv: &Hypervisor, acpi: &AcpiInfo) -> u64 {
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
    let against = if acpi.pm_timer.is_some() {
        "the ACPI PM timer"
    } else {
        "the PIT"
    };
    log::info!("TSC {} kHz (calibrated against {against})", hz / 1000);
    hz
}

fn open_nic(
    cfg: &'static PortIo,
    irq: &'static dyn arch::platform::InterruptController,
) -> Option<Box<dyn Nic>> {
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
    let f = functions.iter().find(|f| VirtioNet::matches(f))?;
    match VirtioNet::init(cfg, f, irq) {
        Ok(n) => Some(Box::new(n)),
        Err(e) => {
            log::error!("virtio-net {}: {e:?}; continuing without network", f.addr);
            None
        }
    }
}

/// Builds the hvm platform.
pub(super) fn build(
    opts: &Options,
    hv: Hypervisor,
    xen: Option<Xen>,
    acpi: Option<AcpiInfo>,
) -> Result<Platform, PlatformError> {
    let acpi = acpi.ok_or(PlatformError::Setup(
        "acpi",
        "no ACPI tables: hvm mode needs the MADT".into(),
    ))?;
    let features = Features::read();
    arch::pic::disable();
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
    let (controller, clock, timer) = lapic_platform(opts, &features, tsc_hz(&hv, &acpi))?;

    // SAFETY: 0xcf8/0xcfc are the PCI configuration ports of the emulated PC.
    let cfg: &'static PortIo = leak(unsafe { PortIo::new() });
    let nic = open_nic(cfg, controller);
    let nic_name = nic.as_ref().map_or("none", |n| n.name());
    // SAFETY: COM1 is the emulated PC's first UART (already programmed at boot).
    let com1: &'static Uart16550 = leak(unsafe { Uart16550::init(Uart16550::COM1) });
    // On Xen, port 0xe9 lands in the hypervisor's log too, without the device model.
    let consoles: &'static [&'static dyn Console] = if xen.is_some() {
        leak([com1 as &dyn Console, &DebugCon])
    } else {
        leak([com1 as &dyn Console])
    };
    Ok(Platform {
        hypervisor: hv,
        mode: Mode::Hvm,
        irq: controller,
        clock,
        timer,
        consoles,
        marker: marker(xen),
        nic: Mutex::new(nic),
        nic_name,
    })
}
