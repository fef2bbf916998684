//! Reference counters of known frequency for TSC calibration: the ACPI PM timer and
//! channel 2 of the 8254 PIT.

use crate::tsc::RefCounter;
use x86_64::instructions::port::Port;

/// The ACPI power-management timer: 3.579545 MHz, 24 or 32 bits, at an I/O port named
/// by the FADT.
pub struct PmTimer {
    port: u16,
    bits: u32,
}

impl PmTimer {
    /// The timer at I/O `port`, `bits` wide (24 or 32).
    pub fn new(port: u16, bits: u32) -> Self {
        PmTimer { port, bits }
    }
}

impl RefCounter for PmTimer {
    fn hz(&self) -> u64 {
        3_579_545
    }
    fn bits(&self) -> u32 {
        self.bits
    }
    fn read(&self) -> u64 {
        let mut port = Port::<u32>::new(self.port);
        // SAFETY: the FADT names this port as the PM timer; reading it has no side effects.
        let v = unsafe { port.read() } as u64;
        v & ((1u64 << self.bits) - 1)
    }
    fn name(&self) -> &'static str {
        "acpi-pm"
    }
}

/// PIT channel 2 free-running (mode 2, reload 65536, speaker off), read back by latch.
pub struct Pit2;

const PIT_HZ: u64 = 1_193_182;

impl Pit2 {
    /// Starts channel 2 counting.
    pub fn start() -> Self {
        // SAFETY: ports 0x61, 0x43 and 0x42 are the PC's speaker gate and PIT; gating
        // channel 2 with the speaker output disabled has no other effect.
        unsafe {
            let mut gate = Port::<u8>::new(0x61);
            let g = gate.read();
            gate.write((g & !0x02) | 0x01);
            Port::<u8>::new(0x43).write(0b1011_0100); // channel 2, lo/hi, mode 2, binary
            let mut data = Port::<u8>::new(0x42);
            data.write(0);
            data.write(0);
        }
        Pit2
    }
}

impl RefCounter for Pit2 {
    fn hz(&self) -> u64 {
        PIT_HZ
    }
    fn bits(&self) -> u32 {
        16
    }
    fn read(&self) -> u64 {
        // SAFETY: latching and reading channel 2 only reads the PIT's counter.
        let count = unsafe {
            Port::<u8>::new(0x43).write(0b1000_0000); // latch channel 2
            let mut data = Port::<u8>::new(0x42);
            let lo = data.read() as u64;
            let hi = data.read() as u64;
            hi << 8 | lo
        };
        // The counter counts down; present it counting up.
        0x1_0000 - count
    }
    fn name(&self) -> &'static str {
        "pit"
    }
}
