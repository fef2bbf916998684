//! The local APIC: interrupt delivery, end-of-interrupt and self-IPIs in hvm mode.
//!
//! The register file is the same in both access modes; [`xapic`] reaches it through
//! MMIO at the APIC base, [`x2apic`] through MSRs 0x800+. Which one is used is decided
//! once in [`Lapic::init`] (x2APIC where the CPU offers it, unless told otherwise).
//! [`LapicController`] implements [`InterruptController`] on top: MSIs target this CPU's
//! APIC id ([`lapic_msi`], masked at the device's MSI-X entry) and every interrupt ends
//! with an EOI register write, which under a hypervisor is a VM exit unless the APIC is
//! virtualized.

pub mod ioapic;
pub mod timer;
mod x2apic;
mod xapic;

use crate::cpu;
use crate::platform::{InterruptController, Irq, IrqError, IrqHandler, MsiMasking, MsiMessage, MsiRoute, Vector};
use crate::trap;

/// Register offsets in the xAPIC MMIO page (the x2APIC MSR is 0x800 + offset / 16).
pub mod reg {
    /// Local APIC id.
    pub const ID: u32 = 0x20;
    /// Version.
    pub const VERSION: u32 = 0x30;
    /// Task priority.
    pub const TPR: u32 = 0x80;
    /// End of interrupt.
    pub const EOI: u32 = 0xb0;
    /// Spurious-interrupt vector and software enable.
    pub const SVR: u32 = 0xf0;
    /// Error status.
    pub const ESR: u32 = 0x280;
    /// Interrupt command, low half.
    pub const ICR_LOW: u32 = 0x300;
    /// Interrupt command, high half (xAPIC only).
    pub const ICR_HIGH: u32 = 0x310;
    /// LVT timer.
    pub const LVT_TIMER: u32 = 0x320;
    /// LVT LINT0.
    pub const LVT_LINT0: u32 = 0x350;
    /// LVT LINT1.
    pub const LVT_LINT1: u32 = 0x360;
    /// LVT error.
    pub const LVT_ERROR: u32 = 0x370;
    /// Timer initial count.
    pub const TIMER_INITIAL: u32 = 0x380;
    /// Timer current count.
    pub const TIMER_CURRENT: u32 = 0x390;
    /// Timer divide configuration.
    pub const TIMER_DIVIDE: u32 = 0x3e0;
}

/// LVT mask bit.
pub const LVT_MASKED: u32 = 1 << 16;
/// `IA32_APIC_BASE`.
const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

/// How the APIC's registers are reached.
#[derive(Debug)]
enum Access {
    XApic(xapic::XApic),
    X2Apic(x2apic::X2Apic),
}

/// Which access mode to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicMode {
    /// x2APIC if the CPU has it, else xAPIC.
    Auto,
    /// Memory-mapped xAPIC.
    XApic,
    /// MSR-based x2APIC.
    X2Apic,
}

/// Why the local APIC could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicError {
    /// x2APIC was asked for but the CPU does not offer it.
    NoX2Apic,
    /// The APIC page could not be mapped.
    Map(crate::paging::MapError),
}

/// This CPU's local APIC.
#[derive(Debug)]
pub struct Lapic {
    access: Access,
    id: u32,
}

impl Lapic {
    /// Enables the APIC in the chosen mode, software-enables it with the spurious vector,
    /// and masks LINT0, the error LVT and the timer.
    pub fn init(mode: ApicMode, features: &cpu::Features) -> Result<Lapic, ApicError> {
        let use_x2 = match mode {
            ApicMode::Auto => features.x2apic,
            ApicMode::X2Apic if !features.x2apic => return Err(ApicError::NoX2Apic),
            ApicMode::X2Apic => true,
            ApicMode::XApic => false,
        };
        // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
        let base_msr = unsafe { cpu::rdmsr(IA32_APIC_BASE) };
        let access = if use_x2 {
            // SAFETY: the CPU offers x2APIC; xAPIC -> x2APIC with EN already set is a
            // legal transition (and EN|EXTD from disabled is too).
            unsafe { cpu::wrmsr(IA32_APIC_BASE, base_msr | APIC_BASE_ENABLE | APIC_BASE_X2APIC) };
            Access::X2Apic(x2apic::X2Apic)
        } else {
            let phys = base_msr & 0x000f_ffff_ffff_f000;
            crate::paging::map_mmio(phys, 4096).map_err(ApicError::Map)?;
            // SAFETY: keeps the base, sets EN; leaves x2APIC mode off.
            unsafe { cpu::wrmsr(IA32_APIC_BASE, (base_msr | APIC_BASE_ENABLE) & !APIC_BASE_X2APIC) };
            // SAFETY: the APIC page was just mapped uncached at its physical address.
            Access::XApic(unsafe { xapic::XApic::new(phys as usize) })
        };
        let mut lapic = Lapic { access, id: 0 };
        lapic.id = match lapic.access {
            Access::X2Apic(_) => lapic.read(reg::ID),
            Access::XApic(_) => lapic.read(reg::ID) >> 24,
        };
        lapic.write(reg::TPR, 0);
        lapic.write(reg::LVT_LINT0, LVT_MASKED);
        lapic.write(reg::LVT_ERROR, LVT_MASKED);
        lapic.write(reg::LVT_TIMER, LVT_MASKED);
        lapic.write(reg::SVR, 0x100 | trap::SPURIOUS_VECTOR as u32);
        Ok(lapic)
    }

    /// Reads a register (offset as in [`reg`]).
    pub fn read(&self, reg: u32) -> u32 {
        match &self.access {
            Access::XApic(a) => a.read(reg),
            Access::X2Apic(a) => a.read(reg),
        }
    }

    /// Writes a register (offset as in [`reg`]).
    pub fn write(&self, reg: u32, value: u32) {
        match &self.access {
            Access::XApic(a) => a.write(reg, value),
            Access::X2Apic(a) => a.write(reg, value),
        }
    }

    /// Signals end of interrupt.
    #[inline]
    pub fn eoi(&self) {
        self.write(reg::EOI, 0);
    }

    /// Sends `vector` to this CPU.
    pub fn send_self_ipi(&self, vector: Vector) {
        match &self.access {
            Access::XApic(a) => a.send_self_ipi(vector),
            Access::X2Apic(a) => a.send_self_ipi(vector),
        }
    }

    /// This CPU's APIC id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// True in x2APIC mode.
    pub fn is_x2apic(&self) -> bool {
        matches!(self.access, Access::X2Apic(_))
    }
}

/// MSI address of a fixed, physical-destination message to `apic_id`.
pub fn msi_address(apic_id: u32) -> u64 {
    0xfee0_0000 | ((apic_id as u64 & 0xff) << 12)
}

/// An MSI through `lapic`: a fresh vector for `handler`, a message naming it, masked at
/// the device (the MSI-X entry's mask bit).
pub fn lapic_msi(lapic: &Lapic, handler: &'static dyn IrqHandler) -> Result<MsiRoute, IrqError> {
    let vector = trap::alloc_vector(handler)?;
    Ok(MsiRoute {
        irq: vector.into(),
        message: MsiMessage { address: msi_address(lapic.id()), data: vector as u32 },
        masking: MsiMasking::Device,
    })
}

/// Interrupts through the local APIC: vectors from the IDT, EOI to the APIC.
pub struct LapicController {
    lapic: &'static Lapic,
}

impl LapicController {
    /// Wraps an initialised APIC.
    pub fn new(lapic: &'static Lapic) -> Self {
        LapicController { lapic }
    }
}

impl InterruptController for LapicController {
    fn alloc_ipi(&self, handler: &'static dyn IrqHandler) -> Result<Irq, IrqError> {
        trap::alloc_vector(handler).map(Irq::from)
    }

    fn send_self_ipi(&self, irq: Irq) {
        if let Ok(vector) = Vector::try_from(irq) {
            self.lapic.send_self_ipi(vector);
        }
    }

    fn alloc_msi(&'static self, handler: &'static dyn IrqHandler) -> Result<MsiRoute, IrqError> {
        lapic_msi(self.lapic, handler)
    }

    fn end_of_interrupt(&self, _vector: Vector) {
        self.lapic.eoi();
    }

    fn name(&self) -> &'static str {
        if self.lapic.is_x2apic() {
            "x2apic"
        } else {
            "xapic"
        }
    }

    fn eoi_name(&self) -> &'static str {
        if self.lapic.is_x2apic() {
            "x2apic-msr"
        } else {
            "lapic-mmio"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msi_address_targets_apic_id() {
        assert_eq!(msi_address(0), 0xfee0_0000);
        assert_eq!(msi_address(3), 0xfee0_3000);
    }
}
