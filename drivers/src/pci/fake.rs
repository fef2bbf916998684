//! A fake configuration space for host tests: functions with writable registers and
//! BARs that answer the all-ones sizing probe like real hardware.

use super::{ConfigSpace, PciAddress};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One function's 256 bytes plus the size masks of its BARs.
#[derive(Clone)]
pub struct FakeFunction {
    space: [u8; 256],
    bar_masks: [u32; 6],
}

impl FakeFunction {
    pub fn new(vendor: u16, device: u16, class: u32) -> Self {
        let mut f = FakeFunction { space: [0; 256], bar_masks: [0; 6] };
        f.set16(0, vendor);
        f.set16(2, device);
        f.set16(super::offset::COMMAND, 0x0007);
        let class_reg = class << 8;
        f.space[8..12].copy_from_slice(&class_reg.to_le_bytes());
        f
    }
    pub fn set8(&mut self, off: u16, v: u8) {
        self.space[off as usize] = v;
    }
    pub fn set16(&mut self, off: u16, v: u16) {
        self.space[off as usize..off as usize + 2].copy_from_slice(&v.to_le_bytes());
    }
    pub fn set32(&mut self, off: u16, v: u32) {
        self.space[off as usize..off as usize + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn get32(&self, off: u16) -> u32 {
        u32::from_le_bytes(self.space[off as usize..off as usize + 4].try_into().unwrap())
    }
    /// A BAR with value `low` (type bits included), `size` bytes, and for 64-bit BARs the
    /// upper address half `high` in the next slot.
    pub fn bar(&mut self, index: usize, low: u32, size: u64, high: u32) {
        let type_bits = if low & 1 == 1 { low & 0x3 } else { low & 0xf };
        let mask = !(size - 1);
        self.bar_masks[index] = (mask as u32 & !0xf) | type_bits;
        self.set32(0x10 + 4 * index as u16, low);
        if low & 1 == 0 && (low >> 1) & 3 == 2 {
            self.bar_masks[index + 1] = (mask >> 32) as u32;
            self.set32(0x10 + 4 * (index as u16 + 1), high);
        }
    }
}

/// A bus full of fake functions.
#[derive(Default)]
pub struct FakeConfig {
    functions: RefCell<BTreeMap<PciAddress, FakeFunction>>,
}

impl FakeConfig {
    pub fn add(&mut self, addr: PciAddress, f: FakeFunction) {
        self.functions.borrow_mut().insert(addr, f);
    }
}

impl ConfigSpace for FakeConfig {
    fn read32(&self, addr: PciAddress, offset: u16) -> u32 {
        self.functions.borrow().get(&addr).map_or(0xffff_ffff, |f| f.get32(offset))
    }

    fn write32(&self, addr: PciAddress, offset: u16, value: u32) {
        if let Some(f) = self.functions.borrow_mut().get_mut(&addr) {
            let bar = offset.wrapping_sub(0x10) / 4;
            if (0x10..0x28).contains(&offset) && value == 0xffff_ffff {
                f.set32(offset, f.bar_masks[bar as usize]);
            } else {
                f.set32(offset, value);
            }
        }
    }
}
