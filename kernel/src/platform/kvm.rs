//! The KVM hybrid mode: an HVM guest of KVM that takes KVM's paravirtual paths where they
//! save exits — kvmclock for the clock (`clock=kvmclock|tsc`), PV EOI for the end of every
//! interrupt through the local APIC (`eoi=pv|lapic`) — and keeps the local APIC timer
//! (TSC-deadline) and virtio-net with its MSI-X through the local APIC, as hvm does.
//! Phases are marked with CPUID exits (`arch::kvm::marker`) for L1's trace.
//!
//! `mode=hvm` on KVM is the hvm module's emulated PC, unchanged.

use super::common::{lapic_timer, leak, local_apic, mask_io_apics, misfit, open_virtio, tsc_clock};
use super::{Platform, PlatformError};
use arch::acpi::AcpiInfo;
use arch::apic::LapicController;
use arch::cpu::Features;
use arch::hypervisor::{Hypervisor, KvmFeatures};
use arch::kvm::clock::KvmClock;
use arch::kvm::marker::CpuidMarker;
use arch::kvm::pv_eoi::PvEoiController;
use arch::platform::{Clock, Console, InterruptController};
use drivers::console::Uart16550;
use proto::cmdline::{ClockChoice, EoiChoice, Mode, MsiChoice, NicChoice, Options, TimerChoice};
use spin::Mutex;

/// Checks that the command line asks for nothing the KVM hybrid mode does not have.
fn check_switches(opts: &Options) -> Result<(), PlatformError> {
    if opts.timer == TimerChoice::Pv {
        return Err(misfit("timer", "timer=pv is Xen's PV timer: on KVM the timer is the LAPIC's"));
    }
    match opts.clock {
        ClockChoice::Pvclock => {
            return Err(misfit("clock", "clock=pvclock is Xen's PV clock: on KVM use clock=kvmclock"));
        }
        ClockChoice::Hpet => return Err(misfit("clock", "clock=hpet is not built into the KVM hybrid mode")),
        _ => {}
    }
    if opts.callback.is_some() {
        return Err(misfit("callback", "callback= sets how Xen delivers events: KVM has no event channels"));
    }
    if opts.nic == NicChoice::Netfront {
        return Err(misfit("nic", "nic=netfront is Xen's PV NIC: on KVM the NIC is virtio-net"));
    }
    if opts.msi == MsiChoice::Pirq {
        return Err(misfit("msi", "msi=pirq delivers MSIs as Xen event channels: KVM has none"));
    }
    Ok(())
}

/// The clock `clock=` asks for, and the TSC at its rate (from kvmclock's scale where
/// KVM offers it, else calibrated as hvm does).
fn clocks(opts: &Options, features: KvmFeatures, acpi: &AcpiInfo) -> Result<(&'static dyn Clock, u64), PlatformError> {
    let kvmclock = match KvmClock::enable(features.kvmclock()) {
        Ok(c) => Some(leak(c)),
        Err(e) if opts.clock == ClockChoice::Kvmclock => {
            return Err(misfit(
                "clock",
                &alloc::format!(
                    "clock=kvmclock: {e:?} (KVM_FEATURE_CLOCKSOURCE2, CPUID 0x40000001 eax bit 3; features {:#x})",
                    features.0
                ),
            ))
        }
        Err(e) => {
            log::info!("kvmclock not used: {e:?}; the clock is the TSC");
            None
        }
    };
    let hz = match &kvmclock {
        Some(c) => {
            log::info!("TSC {} kHz (from kvmclock's scale)", c.tsc_hz() / 1000);
            c.tsc_hz()
        }
        None => super::hvm::tsc_hz(&Hypervisor::None, acpi),
    };
    let clock: &'static dyn Clock = match (opts.clock, kvmclock) {
        (ClockChoice::Auto | ClockChoice::Kvmclock, Some(c)) => c,
        _ => tsc_clock(hz),
    };
    Ok((clock, hz))
}

/// Builds the KVM hybrid platform.
pub(super) fn build(opts: &Options, hv: Hypervisor, acpi: Option<AcpiInfo>) -> Result<Platform, PlatformError> {
    check_switches(opts)?;
    let Hypervisor::Kvm { features, .. } = hv else {
        return Err(PlatformError::WrongGuest(Mode::Hybrid, "on an HVM guest needs Xen or KVM"));
    };
    let acpi = acpi.ok_or(PlatformError::Setup("acpi", "no ACPI tables: the KVM hybrid mode needs the MADT".into()))?;
    log::info!("KVM features {:#x}: {}", features.0, FeatureList(features));
    let cpu = Features::read();
    arch::pic::disable();
    mask_io_apics(&acpi)?;
    let lapic = local_apic(opts, &cpu)?;
    let controller: &'static dyn InterruptController = match opts.eoi {
        EoiChoice::Lapic => leak(LapicController::new(lapic)),
        EoiChoice::Auto | EoiChoice::Pv => match PvEoiController::enable(lapic, features.pv_eoi()) {
            Ok(c) => leak(c),
            Err(e) if opts.eoi == EoiChoice::Pv => {
                return Err(misfit(
                    "eoi",
                    &alloc::format!(
                        "eoi=pv: {e:?} (KVM_FEATURE_PV_EOI, CPUID 0x40000001 eax bit 6; features {:#x})",
                        features.0
                    ),
                ))
            }
            Err(e) => {
                log::info!("PV EOI not used: {e:?}; interrupts end with the LAPIC's EOI write");
                leak(LapicController::new(lapic))
            }
        },
    };
    arch::trap::set_controller(controller);
    let (clock, hz) = clocks(opts, features, &acpi)?;
    let tsc = tsc_clock(hz);
    let timer = lapic_timer(opts, &cpu, lapic, clock, tsc)?;
    let nic = open_virtio(opts, controller, clock);
    let nic_name = nic.as_ref().map_or("none", |n| n.name());
    let com1: &'static Uart16550 = leak(Uart16550::com1());
    let consoles: &'static [&'static dyn Console] = leak([com1 as &dyn Console]);
    Ok(Platform {
        hypervisor: hv,
        mode: Mode::Hybrid,
        irq: controller,
        clock,
        tsc,
        timer,
        consoles,
        marker: &CpuidMarker,
        xen: None,
        events: None,
        nic: Mutex::new(nic),
        nic_name,
        nic_ip: None,
    })
}

/// The feature names for the log.
struct FeatureList(KvmFeatures);

impl core::fmt::Display for FeatureList {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, name) in self.0.names().enumerate() {
            write!(f, "{}{name}", if i > 0 { " " } else { "" })?;
        }
        Ok(())
    }
}
