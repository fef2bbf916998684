//! Powering off an emulated PC: QEMU's debug-exit port, then ACPI S5.
//!
//! QEMU's `isa-debug-exit` device (when present at port 0xf4) ends QEMU with status
//! `(value << 1) | 1`, which carries success or failure to the host: 1 means success,
//! 3 failure. Without that device the write is ignored and ACPI soft-off follows
//! (`SLP_TYPa | SLP_EN` to PM1a_CNT), which QEMU and real firmware both honour.

use crate::acpi::s5::SleepType;
use crate::platform::{ExitStatus, PowerControl};
use x86_64::instructions::port::Port;

/// QEMU's conventional isa-debug-exit port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
const SLP_EN: u16 = 1 << 13;

/// Power-off through the debug-exit port and ACPI.
#[derive(Clone, Copy, Debug)]
pub struct AcpiPower {
    /// PM1a and PM1b control ports.
    pub pm1: (Option<u16>, Option<u16>),
    /// S5 sleep types, if the DSDT had them.
    pub s5: Option<SleepType>,
}

impl PowerControl for AcpiPower {
    fn power_off(&self, status: ExitStatus) -> ! {
        let code: u32 = match status {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
        };
        // SAFETY: port 0xf4 is unused on a PC unless QEMU's debug-exit device sits there,
        // in which case the write ends the VM, which is what this function is for.
        unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(code) };
        let s5 = self.s5.unwrap_or(SleepType { a: 0, b: 0 });
        if let Some(p) = self.pm1.0 {
            // SAFETY: the FADT names this port as PM1a_CNT; SLP_EN with the S5 type powers off.
            unsafe { Port::<u16>::new(p).write(((s5.a as u16) << 10) | SLP_EN) };
        }
        if let Some(p) = self.pm1.1 {
            // SAFETY: as above, for PM1b_CNT.
            unsafe { Port::<u16>::new(p).write(((s5.b as u16) << 10) | SLP_EN) };
        }
        crate::cpu::halt_forever()
    }
}
