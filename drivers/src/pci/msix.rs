//! MSI-X: the capability, the vector table and per-vector masking.
//!
//! The table lives in one of the function's memory BARs; each 16-byte entry holds a
//! message address, data and a vector-control word whose bit 0 masks the vector. Under
//! a hypervisor that emulates the device, every table write (programming, masking,
//! unmasking) is a trapped MMIO access: the cost hybrid mode avoids.
//!
//! Drivers program and mask entries through [`VectorTable`], which [`MsixTable`]
//! implements on the mapped table and host tests implement with a fake. An entry in use
//! is an [`MsixVector`]: the entry and the route the interrupt controller gave it, which
//! says where the interrupt is masked. A LAPIC MSI is masked in the entry (a table
//! write); an MSI over a PIRQ at its event channel, the entry then written only once.

use super::{cap, capabilities, read_bar, Bar, ConfigSpace, PciAddress};
use arch::mmio::Mmio;
use arch::platform::{MsiMasking, MsiMessage, MsiRoute};

const CTRL_ENABLE: u16 = 1 << 15;
const CTRL_FUNCTION_MASK: u16 = 1 << 14;
const ENTRY_SIZE: usize = 16;
const VECTOR_MASKED: u32 = 1;

/// A device's table of interrupt vectors, each entry masked on its own.
pub trait VectorTable: Send + Sync + 'static {
    /// Programs entry `entry` with `msg`, leaving it masked.
    fn program(&self, entry: u16, msg: MsiMessage);
    /// Masks entry `entry`.
    fn mask(&self, entry: u16);
    /// Unmasks entry `entry`; a message that arrived while masked is delivered now.
    fn unmask(&self, entry: u16);
}

/// One MSI-X entry connected to its interrupt route. The driver masks and unmasks its
/// interrupt through this, and does not know where that happens.
pub struct MsixVector<V: VectorTable> {
    table: V,
    entry: u16,
    route: MsiRoute,
}

impl<V: VectorTable> MsixVector<V> {
    /// Programs `entry` of `table` with the route's message, leaving the interrupt
    /// masked: in the entry for a device-masked route; at the controller for the others,
    /// whose entry is unmasked now and never written again.
    pub fn connect(table: V, entry: u16, route: MsiRoute) -> Self {
        table.program(entry, route.message);
        if let MsiMasking::Controller(c) = route.masking {
            c.mask(route.irq);
            table.unmask(entry);
        }
        MsixVector { table, entry, route }
    }

    /// Masks the interrupt where its route says.
    #[inline]
    pub fn mask(&self) {
        match self.route.masking {
            MsiMasking::Device => self.table.mask(self.entry),
            MsiMasking::Controller(c) => c.mask(self.route.irq),
        }
    }

    /// Unmasks the interrupt where its route says; one that arrived while masked is
    /// delivered now.
    #[inline]
    pub fn unmask(&self) {
        match self.route.masking {
            MsiMasking::Device => self.table.unmask(self.entry),
            MsiMasking::Controller(c) => c.unmask(self.route.irq),
        }
    }

    /// The route.
    pub fn route(&self) -> &MsiRoute {
        &self.route
    }

    /// The table.
    pub fn table(&self) -> &V {
        &self.table
    }
}

/// Where the MSI-X capability says the table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixCapability {
    /// Offset of the capability in configuration space.
    pub offset: u16,
    /// Number of table entries.
    pub table_size: u16,
    /// BAR holding the table.
    pub table_bar: u8,
    /// Offset of the table in that BAR.
    pub table_offset: u32,
}

impl MsixCapability {
    /// Finds and decodes the MSI-X capability of a function.
    pub fn find(cfg: &dyn ConfigSpace, addr: PciAddress) -> Option<Self> {
        let (_, offset) = capabilities(cfg, addr).find(|&(id, _)| id == cap::MSIX)?;
        let control = cfg.read16(addr, offset + 2);
        let table = cfg.read32(addr, offset + 4);
        Some(MsixCapability {
            offset,
            table_size: (control & 0x7ff) + 1,
            table_bar: (table & 0x7) as u8,
            table_offset: table & !0x7,
        })
    }
}

/// Why MSI-X could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixError {
    /// The table's BAR is not a memory BAR.
    BadBar,
    /// The table does not fit inside its BAR.
    TableOutsideBar,
    /// The table could not be mapped.
    Map(arch::paging::MapError),
}

/// A function's MSI-X vector table, mapped.
pub struct MsixTable {
    base: usize,
    size: u16,
}

impl MsixTable {
    /// Maps the table and enables MSI-X with every vector masked.
    pub fn enable(cfg: &dyn ConfigSpace, addr: PciAddress, cap: &MsixCapability) -> Result<Self, MsixError> {
        let Bar::Memory { addr: bar, size, .. } = read_bar(cfg, addr, cap.table_bar) else {
            return Err(MsixError::BadBar);
        };
        let len = cap.table_size as u64 * ENTRY_SIZE as u64;
        if cap.table_offset as u64 + len > size {
            return Err(MsixError::TableOutsideBar);
        }
        let base = bar + cap.table_offset as u64;
        arch::paging::map_mmio(base, len).map_err(MsixError::Map)?;
        let table = MsixTable { base: base as usize, size: cap.table_size };
        let control = cfg.read16(addr, cap.offset + 2);
        // Function-mask while the entries are set to masked, then enable.
        cfg.write16(addr, cap.offset + 2, control | CTRL_ENABLE | CTRL_FUNCTION_MASK);
        for entry in 0..table.size {
            table.word(entry, 3).write(VECTOR_MASKED);
        }
        cfg.write16(addr, cap.offset + 2, (control | CTRL_ENABLE) & !CTRL_FUNCTION_MASK);
        Ok(table)
    }

    fn word(&self, entry: u16, word: usize) -> Mmio<u32> {
        let entry = entry.min(self.size - 1) as usize;
        // SAFETY: the table was mapped in `enable`, and entry < size keeps the dword inside it.
        unsafe { Mmio::at(self.base + entry * ENTRY_SIZE + word * 4) }
    }

    /// Guest-physical address of the table (its writes are the trapped ones).
    pub fn address(&self) -> u64 {
        self.base as u64
    }

    /// Number of entries.
    pub fn len(&self) -> u16 {
        self.size
    }

    /// True if the table has no entries (never, for a valid capability).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Programs entry `entry` with `msg`, leaving it masked.
    pub fn program(&self, entry: u16, msg: MsiMessage) {
        self.mask(entry);
        self.word(entry, 0).write(msg.address as u32);
        self.word(entry, 1).write((msg.address >> 32) as u32);
        self.word(entry, 2).write(msg.data);
    }

    /// Masks entry `entry`.
    #[inline]
    pub fn mask(&self, entry: u16) {
        self.word(entry, 3).write(VECTOR_MASKED);
    }

    /// Unmasks entry `entry`; a message that arrived while masked is delivered now.
    #[inline]
    pub fn unmask(&self, entry: u16) {
        self.word(entry, 3).write(0);
    }
}

impl VectorTable for MsixTable {
    fn program(&self, entry: u16, msg: MsiMessage) {
        MsixTable::program(self, entry, msg)
    }

    #[inline]
    fn mask(&self, entry: u16) {
        MsixTable::mask(self, entry)
    }

    #[inline]
    fn unmask(&self, entry: u16) {
        MsixTable::unmask(self, entry)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeConfig, FakeFunction};
    use super::*;

    #[test]
    fn decodes_capability() {
        let mut cfg = FakeConfig::default();
        let mut f = FakeFunction::new(0x1af4, 0x1041, 0x020000);
        f.set16(super::super::offset::STATUS, 1 << 4);
        f.set8(0x34, 0x98);
        f.set8(0x98, cap::MSIX);
        f.set8(0x99, 0x00);
        f.set16(0x9a, 0x0002); // 3 entries
        f.set32(0x9c, 0x0000_0001); // BAR 1, offset 0
        let a = PciAddress { bus: 0, device: 3, function: 0 };
        cfg.add(a, f);
        let c = MsixCapability::find(&cfg, a).unwrap();
        assert_eq!(c, MsixCapability { offset: 0x98, table_size: 3, table_bar: 1, table_offset: 0 });
    }
}
