//! What the firmware's ACPI tables say about the machine.
//!
//! The `acpi` crate walks the RSDP/XSDT and hands out the raw MADT and FADT; this module
//! reads what the kernel needs from them once, into an [`AcpiInfo`]: the interrupt
//! controllers and ISA overrides (MADT), the PM timer and the S5 power-off registers
//! (FADT, plus the `_S5_` package of the DSDT, decoded by [`s5`]).

pub mod s5;

use crate::apic::ioapic::Signal;
use ::acpi::address::AddressSpace;
use ::acpi::fadt::Fadt;
use ::acpi::madt::{Madt, MadtEntry};
use ::acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::vec::Vec;
use core::ptr::NonNull;

/// Maps ACPI tables for the `acpi` crate: everything is identity-mapped already.
#[derive(Clone, Copy, Debug)]
struct IdentityMapped;

impl AcpiHandler for IdentityMapped {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = NonNull::new(physical_address as *mut T).unwrap_or(NonNull::dangling());
        // SAFETY: below 4 GiB (where firmware puts its tables) virtual equals physical.
        unsafe { PhysicalMapping::new(physical_address, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// An IO-APIC from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApicInfo {
    /// Its id.
    pub id: u8,
    /// Physical address of its registers.
    pub address: u64,
    /// First GSI it serves.
    pub gsi_base: u32,
}

/// An ISA IRQ wired to a different GSI or signal than the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaOverride {
    /// ISA IRQ.
    pub irq: u8,
    /// The GSI it arrives on.
    pub gsi: u32,
    /// Its trigger mode and polarity.
    pub signal: Signal,
}

/// The machine as ACPI describes it.
#[derive(Clone, Debug, Default)]
pub struct AcpiInfo {
    /// Local APIC physical address.
    pub local_apic: u64,
    /// Number of enabled CPUs.
    pub cpus: usize,
    /// IO-APICs.
    pub io_apics: Vec<IoApicInfo>,
    /// ISA interrupt overrides.
    pub isa_overrides: Vec<IsaOverride>,
    /// The PM timer's I/O port and width in bits.
    pub pm_timer: Option<(u16, u32)>,
    /// PM1a control block I/O port (for S5).
    pub pm1a_control: Option<u16>,
    /// PM1b control block I/O port.
    pub pm1b_control: Option<u16>,
    /// SLP_TYPa/SLP_TYPb of the S5 state, from the DSDT.
    pub s5: Option<s5::SleepType>,
    /// HPET registers' physical address.
    pub hpet: Option<u64>,
    /// The FADT declares a hardware-reduced platform (no PM1 blocks, no legacy devices),
    /// as Xen's PVH firmware tables do.
    pub hw_reduced: bool,
}

/// Why the tables could not be read.
#[derive(Debug)]
pub enum AcpiReadError {
    /// No RSDP was found or it was invalid.
    NoTables(::acpi::AcpiError),
    /// There is no MADT.
    NoMadt(::acpi::AcpiError),
}

impl IsaOverride {
    fn from_flags(irq: u8, gsi: u32, flags: u16) -> Self {
        // MPS INTI flags: polarity bits 1:0 (3 = active low), trigger bits 3:2 (3 = level).
        let signal = Signal { active_low: flags & 0b11 == 0b11, level: (flags >> 2) & 0b11 == 0b11 };
        IsaOverride { irq, gsi, signal }
    }
}

fn io_port(addr: Option<::acpi::address::GenericAddress>) -> Option<u16> {
    addr.filter(|a| a.address_space == AddressSpace::SystemIo && a.address != 0 && a.address <= 0xffff)
        .map(|a| a.address as u16)
}

impl AcpiInfo {
    /// True if the tables describe an emulated PC (IO-APIC, legacy ACPI hardware), as
    /// QEMU's and an HVM domU's do, rather than a PVH guest's bare LAPIC.
    pub fn emulated_pc(&self) -> bool {
        !self.hw_reduced && !self.io_apics.is_empty()
    }

    /// Reads the tables from the RSDP at `rsdp` (or searches the BIOS areas if `None`).
    ///
    /// # Safety
    /// The low 4 GiB must be identity-mapped and `rsdp`, if given, must come from the loader.
    pub unsafe fn read(rsdp: Option<u64>) -> Result<AcpiInfo, AcpiReadError> {
        // SAFETY: the caller guarantees the mapping and the RSDP's origin.
        let tables = unsafe {
            match rsdp {
                Some(addr) => AcpiTables::from_rsdp(IdentityMapped, addr as usize),
                None => AcpiTables::search_for_rsdp_bios(IdentityMapped),
            }
        }
        .map_err(AcpiReadError::NoTables)?;
        let mut info = AcpiInfo::default();

        let madt = tables.find_table::<Madt>().map_err(AcpiReadError::NoMadt)?;
        info.local_apic = madt.get().local_apic_address as u64;
        for entry in madt.get().entries() {
            match entry {
                MadtEntry::LocalApic(l) if l.flags & 1 != 0 => info.cpus += 1,
                MadtEntry::LocalX2Apic(l) if l.flags & 1 != 0 => info.cpus += 1,
                MadtEntry::IoApic(io) => info.io_apics.push(IoApicInfo {
                    id: io.io_apic_id,
                    address: io.io_apic_address as u64,
                    gsi_base: io.global_system_interrupt_base,
                }),
                MadtEntry::InterruptSourceOverride(o) if o.bus == 0 => {
                    info.isa_overrides.push(IsaOverride::from_flags(o.irq, o.global_system_interrupt, o.flags))
                }
                MadtEntry::LocalApicAddressOverride(o) => info.local_apic = o.local_apic_address,
                _ => {}
            }
        }

        if let Ok(fadt) = tables.find_table::<Fadt>() {
            let flags = fadt.flags;
            let bits = if flags.pm_timer_is_32_bit() { 32 } else { 24 };
            info.hw_reduced = flags.system_is_hw_reduced_acpi();
            info.pm_timer = io_port(fadt.pm_timer_block().ok().flatten()).map(|p| (p, bits));
            info.pm1a_control = io_port(fadt.pm1a_control_block().ok());
            info.pm1b_control = io_port(fadt.pm1b_control_block().ok().flatten());
        }
        if let Ok(dsdt) = tables.dsdt() {
            // SAFETY: the DSDT's AML lies at the address and length its header states,
            // identity-mapped (caller's guarantee).
            let aml = unsafe { core::slice::from_raw_parts(dsdt.address as *const u8, dsdt.length as usize) };
            info.s5 = s5::find(aml);
        }
        info.hpet = ::acpi::HpetInfo::new(&tables).ok().map(|h| h.base_address as u64);
        Ok(info)
    }

    /// The GSI and signal of ISA `irq`, with MADT overrides applied.
    pub fn isa_irq(&self, irq: u8) -> (u32, Signal) {
        self.isa_overrides.iter().find(|o| o.irq == irq).map_or((irq as u32, Signal::ISA), |o| (o.gsi, o.signal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_flags() {
        // QEMU's IRQ 9 (SCI): level, active high; IRQ 0 -> GSI 2, bus default (flags 0).
        let sci = IsaOverride::from_flags(9, 9, 0x000d);
        assert_eq!(sci.signal, Signal { level: true, active_low: false });
        let timer = IsaOverride::from_flags(0, 2, 0);
        assert_eq!(timer.signal, Signal::ISA);
        let low = IsaOverride::from_flags(5, 5, 0x000f);
        assert!(low.signal.active_low && low.signal.level);
        let info = AcpiInfo { isa_overrides: alloc::vec![timer], ..Default::default() };
        assert_eq!(info.isa_irq(0), (2, Signal::ISA));
        assert_eq!(info.isa_irq(4), (4, Signal::ISA));
    }
}
