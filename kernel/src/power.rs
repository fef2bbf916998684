//! Ending the run: one place that knows how this machine powers off.
//!
//! The power control is chosen right after the hypervisor is known (before the command
//! line is parsed, so a bad option can still end in a clean failure shutdown).

use arch::platform::{ExitStatus, PowerControl};
use spin::Once;

static POWER: Once<&'static dyn PowerControl> = Once::new();

/// Sets how the machine powers off.
pub fn set(p: &'static dyn PowerControl) {
    POWER.call_once(|| p);
}

/// Prints the final status line and powers off.
pub fn off(status: ExitStatus) -> ! {
    let word = match status {
        ExitStatus::Success => "success",
        ExitStatus::Failure => "failure",
    };
    crate::console::emergency(format_args!("POWEROFF status={word}\n"));
    crate::console::flush();
    match POWER.get() {
        Some(p) => p.power_off(status),
        None => {
            // No power control yet: QEMU's debug-exit port still ends an emulated run.
            arch::power::AcpiPower { pm1: (None, None), s5: None }.power_off(status)
        }
    }
}
