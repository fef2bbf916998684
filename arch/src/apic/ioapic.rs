//! The IO-APIC: the board's interrupt lines (GSIs), which this kernel keeps masked.
//!
//! Two MMIO registers (index at +0x00, data at +0x10) reach a register file whose
//! entries 0x10 + 2n / 0x11 + 2n are the redirection entries of input n. The kernel masks
//! every input at boot: its devices interrupt by MSI-X or event channel, never by a
//! line. [`Signal`] is how ACPI's interrupt source overrides describe a line.

use crate::mmio::Mmio;

const REG_VERSION: u32 = 0x01;
const REG_REDIR: u32 = 0x10;
const MASKED: u32 = 1 << 16;

/// Trigger mode and polarity of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    /// Level-triggered (else edge).
    pub level: bool,
    /// Active low (else active high).
    pub active_low: bool,
}

impl Signal {
    /// ISA default: edge, active high.
    pub const ISA: Signal = Signal { level: false, active_low: false };
}

/// One IO-APIC.
#[derive(Debug)]
pub struct IoApic {
    select: Mmio<u32>,
    window: Mmio<u32>,
    gsi_base: u32,
    inputs: u32,
}

impl IoApic {
    /// An IO-APIC at `base` serving GSIs from `gsi_base`; maps its page uncached.
    ///
    /// # Safety
    /// `base` must be an IO-APIC's register page, as reported by the MADT.
    pub unsafe fn new(base: u64, gsi_base: u32) -> Result<Self, crate::paging::MapError> {
        crate::paging::map_mmio(base, 0x20)?;
        // SAFETY: the caller vouches for base; the page was just mapped.
        let (select, window) = unsafe { (Mmio::at(base as usize), Mmio::at(base as usize + 0x10)) };
        let mut io = IoApic { select, window, gsi_base, inputs: 0 };
        io.inputs = ((io.read(REG_VERSION) >> 16) & 0xff) + 1;
        Ok(io)
    }

    fn read(&self, reg: u32) -> u32 {
        self.select.write(reg);
        self.window.read()
    }

    fn write(&self, reg: u32, value: u32) {
        self.select.write(reg);
        self.window.write(value);
    }

    /// GSIs this IO-APIC serves.
    pub fn gsis(&self) -> core::ops::Range<u32> {
        self.gsi_base..self.gsi_base + self.inputs
    }

    /// Masks every input.
    pub fn mask_all(&self) {
        for n in 0..self.inputs {
            self.write(REG_REDIR + 2 * n, MASKED);
            self.write(REG_REDIR + 2 * n + 1, 0);
        }
    }
}
