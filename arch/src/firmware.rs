//! Devices the firmware's tables name, built on the platform's word.
//!
//! The ACPI tables, the IO-APICs of the MADT and the HPET of ACPI's HPET table are
//! reached at addresses nothing in the kernel can check: the contract of their `unsafe`
//! constructors is "this address is what the firmware said". These safe functions take
//! the values that carry that provenance — the loader's [`BootInfo`], the [`AcpiInfo`]
//! read from the tables — and state the platform's contract once, here, so kernel
//! crates build them without `unsafe`.

use crate::acpi::{AcpiInfo, AcpiReadError, IoApicInfo};
use crate::apic::ioapic::IoApic;
use crate::boot::BootInfo;
use crate::hpet::{Hpet, HpetError};
use crate::paging::MapError;

/// Reads the ACPI tables from the RSDP the loader passed (or the BIOS areas without one).
pub fn acpi(boot: &BootInfo) -> Result<AcpiInfo, AcpiReadError> {
    // SAFETY: the boot stub identity-maps the low 4 GiB, where firmware puts its tables,
    // and nothing unmaps it; `boot.rsdp` is the RSDP from the loader's start info.
    unsafe { AcpiInfo::read(boot.rsdp) }
}

/// The IO-APIC the MADT entry `io` describes, its register page mapped uncached.
pub fn io_apic(io: &IoApicInfo) -> Result<IoApic, MapError> {
    // SAFETY: the platform's word: `io` is an IO-APIC entry of the firmware's MADT
    // (`AcpiInfo::read` made it), so its address is an IO-APIC's register page.
    unsafe { IoApic::new(io.address, io.gsi_base) }
}

/// The HPET ACPI's HPET table lists, started as a clock; `None` if there is none.
pub fn hpet(acpi: &AcpiInfo) -> Option<Result<Hpet, HpetError>> {
    let base = acpi.hpet?;
    // SAFETY: the platform's word: the address is the register block of ACPI's HPET table.
    Some(unsafe { Hpet::new(base) })
}
