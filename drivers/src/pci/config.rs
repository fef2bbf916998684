//! Configuration mechanism #1: address to port 0xcf8, data at port 0xcfc.
//!
//! Present on every PC chipset QEMU and Xen emulate; it reaches the first 256 bytes of
//! each function, which holds everything this kernel needs (MSI-X and virtio capabilities
//! live there).

use super::{ConfigSpace, PciAddress};
use spin::Mutex;
use x86_64::instructions::port::Port;

/// Port-I/O configuration access. The address/data pair is one shared resource, so
/// accesses are serialised.
#[derive(Default)]
pub struct PortIo {
    lock: Mutex<()>,
}

impl PortIo {
    /// The mechanism. Safe on the platform's word: on a PC, ports 0xcf8/0xcfc are the
    /// configuration address and data ports; a guest without PCI (a Xen PVH domain) has
    /// nothing there, so reads give all-ones (no function) and writes are dropped.
    pub const fn new() -> Self {
        PortIo { lock: Mutex::new(()) }
    }

    fn select(addr: PciAddress, offset: u16) {
        let value = 1u32 << 31
            | (addr.bus as u32) << 16
            | (addr.device as u32 & 0x1f) << 11
            | (addr.function as u32 & 0x7) << 8
            | (offset as u32 & 0xfc);
        // SAFETY: the PC's fixed I/O map: 0xcf8 is the configuration address port (see
        // `new`); selecting a register has no other effect.
        unsafe { Port::<u32>::new(0xcf8).write(value) };
    }
}

impl ConfigSpace for PortIo {
    fn read32(&self, addr: PciAddress, offset: u16) -> u32 {
        let _g = self.lock.lock();
        Self::select(addr, offset);
        // SAFETY: 0xcfc is the data port for the address just selected.
        unsafe { Port::<u32>::new(0xcfc).read() }
    }

    fn write32(&self, addr: PciAddress, offset: u16, value: u32) {
        let _g = self.lock.lock();
        Self::select(addr, offset);
        // SAFETY: as in `read32`.
        unsafe { Port::<u32>::new(0xcfc).write(value) };
    }
}
