//! pvh mode: a Xen PVH guest. No emulated devices: Xen's in-hypervisor local APIC for
//! interrupts and its timer, the TSC at the rate Xen's CPUID leaf states, the PV console
//! ring (or, without one, the 0xe9 port into Xen's log), and no NIC until netfront.

use super::common::{lapic_platform, leak, marker};
use super::{Platform, PlatformError};
use arch::cpu::Features;
use arch::hypervisor::Hypervisor;
use arch::platform::Console;
use arch::xen::Xen;
use drivers::console::DebugCon;
use hykernel::cmdline::{Mode, Options};
use spin::Mutex;

/// Builds the pvh platform.
pub(super) fn build(
    opts: &Options,
    hv: Hypervisor,
    xen: Option<Xen>,
    xen_console: Option<&'static dyn Console>,
) -> Result<Platform, PlatformError> {
    let Hypervisor::Xen(info) = hv else {
        return Err(PlatformError::WrongHypervisor(Mode::Pvh));
    };
    // A PVH guest has neither a PM timer nor a PIT to calibrate against: Xen must say.
    let khz = info.tsc_khz.ok_or(PlatformError::Setup(
        "clock",
        "Xen's CPUID leaf gives no TSC frequency".into(),
    ))?;
    log::info!("TSC {khz} kHz (from Xen's CPUID leaf)");
    let (controller, clock, timer) = lapic_platform(opts, &Features::read(), khz as u64 * 1000)?;
    let consoles: &'static [&'static dyn Console] = leak([xen_console.unwrap_or(&DebugCon)]);
    Ok(Platform {
        hypervisor: hv,
        mode: Mode::Pvh,
        irq: controller,
        clock,
        timer,
        consoles,
        marker: marker(xen),
        nic: Mutex::new(None),
        nic_name: "none",
    })
}
