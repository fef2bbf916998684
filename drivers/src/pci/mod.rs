//! PCI: configuration space, enumeration, BARs and capabilities.
//!
//! Everything here goes through the [`ConfigSpace`] trait, so enumeration and BAR sizing
//! run unchanged against the real port-I/O mechanism ([`PortIo`]) and against a fake
//! configuration space in host tests.

mod config;
pub mod msix;

pub use config::PortIo;

use alloc::vec::Vec;

/// Bus, device and function of a PCI function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddress {
    /// Bus number.
    pub bus: u8,
    /// Device number (0–31).
    pub device: u8,
    /// Function number (0–7).
    pub function: u8,
}

impl core::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Access to PCI configuration space (32-bit, aligned offsets).
pub trait ConfigSpace {
    /// Reads the dword at `offset` (a multiple of 4) of `addr`.
    fn read32(&self, addr: PciAddress, offset: u16) -> u32;
    /// Writes the dword at `offset` (a multiple of 4) of `addr`.
    fn write32(&self, addr: PciAddress, offset: u16, value: u32);

    /// Reads a 16-bit field.
    fn read16(&self, addr: PciAddress, offset: u16) -> u16 {
        (self.read32(addr, offset & !3) >> ((offset & 2) * 8)) as u16
    }
    /// Reads an 8-bit field.
    fn read8(&self, addr: PciAddress, offset: u16) -> u8 {
        (self.read32(addr, offset & !3) >> ((offset & 3) * 8)) as u8
    }
    /// Writes a 16-bit field (read-modify-write of its dword).
    fn write16(&self, addr: PciAddress, offset: u16, value: u16) {
        let shift = (offset & 2) * 8;
        let old = self.read32(addr, offset & !3) & !(0xffff << shift);
        self.write32(addr, offset & !3, old | (value as u32) << shift);
    }
}

/// Configuration-space offsets of the type-0 header.
pub mod offset {
    /// Vendor id (16) and device id (16).
    pub const ID: u16 = 0x00;
    /// Command register (16).
    pub const COMMAND: u16 = 0x04;
    /// Status register (16).
    pub const STATUS: u16 = 0x06;
    /// Revision, prog-if, subclass, class.
    pub const CLASS: u16 = 0x08;
    /// Header type (8) at 0x0e.
    pub const HEADER_TYPE: u16 = 0x0e;
    /// First BAR.
    pub const BAR0: u16 = 0x10;
    /// Bridge: secondary bus number (8) at 0x19.
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Capabilities pointer (8).
    pub const CAPABILITIES: u16 = 0x34;
}

/// Command register bits.
pub mod command {
    /// Respond to I/O space accesses.
    pub const IO: u16 = 1 << 0;
    /// Respond to memory space accesses.
    pub const MEMORY: u16 = 1 << 1;
    /// May master the bus (DMA).
    pub const BUS_MASTER: u16 = 1 << 2;
    /// INTx disabled.
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Capability ids.
pub mod cap {
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// Vendor-specific (virtio uses these).
    pub const VENDOR: u8 = 0x09;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// A decoded base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// Memory space.
    Memory {
        /// Base address.
        addr: u64,
        /// Size in bytes.
        size: u64,
        /// 64-bit BAR (occupies two slots).
        is64: bool,
        /// Prefetchable.
        prefetchable: bool,
    },
    /// I/O space.
    Io {
        /// Base port.
        port: u32,
        /// Size in ports.
        size: u32,
    },
    /// Unimplemented or the upper half of a 64-bit BAR.
    None,
}

/// One PCI function found by [`enumerate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Where it is.
    pub addr: PciAddress,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class, subclass, prog-if (bits 23:0 of the class register's top three bytes).
    pub class: u32,
    /// Header type without the multi-function bit.
    pub header_type: u8,
}

/// Lists every function on every bus reachable from bus 0 through PCI-to-PCI bridges.
pub fn enumerate(cfg: &dyn ConfigSpace) -> Vec<PciFunction> {
    let mut found = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut seen = [false; 256];
    while let Some(bus) = buses.pop() {
        if core::mem::replace(&mut seen[bus as usize], true) {
            continue;
        }
        for device in 0..32u8 {
            for function in 0..8u8 {
                let addr = PciAddress { bus, device, function };
                let id = cfg.read32(addr, offset::ID);
                if id & 0xffff == 0xffff {
                    if function == 0 {
                        break;
                    }
                    continue;
                }
                let header = cfg.read8(addr, offset::HEADER_TYPE);
                let f = PciFunction {
                    addr,
                    vendor: id as u16,
                    device: (id >> 16) as u16,
                    class: cfg.read32(addr, offset::CLASS) >> 8,
                    header_type: header & 0x7f,
                };
                if f.header_type == 1 {
                    buses.push(cfg.read8(addr, offset::SECONDARY_BUS));
                }
                found.push(f);
                if function == 0 && header & 0x80 == 0 {
                    break;
                }
            }
        }
    }
    found.sort_by_key(|f| f.addr);
    found
}

/// Reads and sizes BAR `index` (0–5) of a type-0 function. Decoding is switched off in
/// the command register while the BAR holds all-ones, then restored.
pub fn read_bar(cfg: &dyn ConfigSpace, addr: PciAddress, index: u8) -> Bar {
    if index > 5 {
        return Bar::None;
    }
    let off = offset::BAR0 + 4 * index as u16;
    let cmd = cfg.read16(addr, offset::COMMAND);
    cfg.write16(addr, offset::COMMAND, cmd & !(command::IO | command::MEMORY));
    let low = cfg.read32(addr, off);
    let bar = if low & 1 == 1 {
        cfg.write32(addr, off, 0xffff_ffff);
        let mask = cfg.read32(addr, off) & !0x3;
        cfg.write32(addr, off, low);
        let size = (!mask).wrapping_add(1) & 0xffff;
        if mask == 0 {
            Bar::None
        } else {
            Bar::Io { port: low & !0x3, size }
        }
    } else {
        let is64 = (low >> 1) & 0b11 == 0b10;
        let prefetchable = low & 0x8 != 0;
        let high = if is64 && index < 5 { cfg.read32(addr, off + 4) } else { 0 };
        cfg.write32(addr, off, 0xffff_ffff);
        let mask_low = cfg.read32(addr, off) & !0xf;
        cfg.write32(addr, off, low);
        let mask_high = if is64 && index < 5 {
            cfg.write32(addr, off + 4, 0xffff_ffff);
            let m = cfg.read32(addr, off + 4);
            cfg.write32(addr, off + 4, high);
            m
        } else if is64 {
            0
        } else {
            0xffff_ffff
        };
        let mask = (mask_high as u64) << 32 | mask_low as u64;
        if mask_low == 0 && !(is64 && mask_high != 0) {
            Bar::None
        } else {
            Bar::Memory {
                addr: (high as u64) << 32 | (low & !0xf) as u64,
                size: (!mask).wrapping_add(1),
                is64,
                prefetchable,
            }
        }
    };
    cfg.write16(addr, offset::COMMAND, cmd);
    bar
}

/// The capability list of a function: (capability id, offset) pairs. The walk stops after
/// 48 entries, so a looping list in a broken device cannot hang the kernel.
pub fn capabilities(cfg: &dyn ConfigSpace, addr: PciAddress) -> impl Iterator<Item = (u8, u16)> + '_ {
    let has_list = cfg.read16(addr, offset::STATUS) & (1 << 4) != 0;
    let mut next = if has_list { cfg.read8(addr, offset::CAPABILITIES) & 0xfc } else { 0 };
    let mut budget = 48;
    core::iter::from_fn(move || {
        if next < 0x40 || budget == 0 {
            return None;
        }
        budget -= 1;
        let at = next as u16;
        let id = cfg.read8(addr, at);
        next = cfg.read8(addr, at + 1) & 0xfc;
        Some((id, at))
    })
}

/// Sets bits in the command register.
pub fn enable(cfg: &dyn ConfigSpace, addr: PciAddress, bits: u16) {
    let cmd = cfg.read16(addr, offset::COMMAND);
    cfg.write16(addr, offset::COMMAND, cmd | bits);
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests {
    use super::fake::{FakeConfig, FakeFunction};
    use super::*;

    fn at(bus: u8, device: u8, function: u8) -> PciAddress {
        PciAddress { bus, device, function }
    }

    #[test]
    fn enumerates_through_a_bridge() {
        let mut cfg = FakeConfig::default();
        cfg.add(at(0, 0, 0), FakeFunction::new(0x8086, 0x29c0, 0x060000));
        let mut bridge = FakeFunction::new(0x1b36, 0x000c, 0x060400);
        bridge.set8(offset::HEADER_TYPE, 0x01);
        bridge.set8(offset::SECONDARY_BUS, 1);
        cfg.add(at(0, 2, 0), bridge);
        let mut multi = FakeFunction::new(0x8086, 0x2918, 0x060100);
        multi.set8(offset::HEADER_TYPE, 0x80);
        cfg.add(at(0, 0x1f, 0), multi);
        cfg.add(at(0, 0x1f, 3), FakeFunction::new(0x8086, 0x2930, 0x0c0500));
        cfg.add(at(1, 0, 0), FakeFunction::new(0x1af4, 0x1041, 0x020000));
        let found = enumerate(&cfg);
        let ids: Vec<_> = found.iter().map(|f| (f.addr.to_string(), f.device)).collect();
        assert_eq!(
            ids,
            [
                ("00:00.0".into(), 0x29c0),
                ("00:02.0".into(), 0x000c),
                ("00:1f.0".into(), 0x2918),
                ("00:1f.3".into(), 0x2930),
                ("01:00.0".into(), 0x1041),
            ]
        );
        assert_eq!(found[4].class, 0x020000);
    }

    #[test]
    fn single_function_devices_are_not_probed_further() {
        let mut cfg = FakeConfig::default();
        cfg.add(at(0, 3, 0), FakeFunction::new(0x1af4, 0x1000, 0x020000));
        // A phantom function 1 that a single-function device would alias.
        cfg.add(at(0, 3, 1), FakeFunction::new(0x1af4, 0x1000, 0x020000));
        assert_eq!(enumerate(&cfg).len(), 1);
    }

    #[test]
    fn sizes_bars() {
        let mut cfg = FakeConfig::default();
        let mut f = FakeFunction::new(0x1af4, 0x1041, 0x020000);
        f.bar(0, 0xc000 | 1, 0x20, 0); // I/O, 32 ports
        f.bar(1, 0xfebd_1000, 0x1000, 0); // 32-bit memory, 4 KiB
        f.bar(4, 0x0000_000c | 0x8000_0000, 0x4000, 0x1); // 64-bit prefetchable 16 KiB, high half 1
        cfg.add(at(0, 4, 0), f);
        let a = at(0, 4, 0);
        assert_eq!(read_bar(&cfg, a, 0), Bar::Io { port: 0xc000, size: 0x20 });
        assert_eq!(
            read_bar(&cfg, a, 1),
            Bar::Memory { addr: 0xfebd_1000, size: 0x1000, is64: false, prefetchable: false }
        );
        assert_eq!(read_bar(&cfg, a, 2), Bar::None);
        assert_eq!(
            read_bar(&cfg, a, 4),
            Bar::Memory { addr: 0x1_8000_0000, size: 0x4000, is64: true, prefetchable: true }
        );
        assert_eq!(read_bar(&cfg, a, 9), Bar::None);
        // BAR values and the command register are restored after sizing.
        assert_eq!(cfg.read32(a, offset::BAR0 + 4), 0xfebd_1000);
        assert_eq!(cfg.read16(a, offset::COMMAND), 0x0007);
    }

    #[test]
    fn capability_walk_is_bounded() {
        let mut cfg = FakeConfig::default();
        let mut f = FakeFunction::new(0x1af4, 0x1041, 0x020000);
        f.set16(offset::STATUS, 1 << 4);
        f.set8(offset::CAPABILITIES, 0x40);
        f.set8(0x40, cap::MSIX);
        f.set8(0x41, 0x50);
        f.set8(0x50, cap::VENDOR);
        f.set8(0x51, 0x40); // loops back
        cfg.add(at(0, 5, 0), f);
        let caps: Vec<_> = capabilities(&cfg, at(0, 5, 0)).collect();
        assert_eq!(caps.len(), 48);
        assert_eq!(&caps[..2], &[(cap::MSIX, 0x40), (cap::VENDOR, 0x50)]);
    }
}
