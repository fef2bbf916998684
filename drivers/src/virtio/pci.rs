//! The virtio-pci modern transport.
//!
//! A modern device describes its register blocks with vendor-specific PCI capabilities
//! (`cfg_type` 1 = common, 2 = notify, 3 = ISR, 4 = device-specific), each a window into
//! one of its memory BARs. This module maps those windows and implements [`Transport`]
//! on them: reset, status, features, queue setup and notification. Its vector table is
//! the function's MSI-X table ([`MsixTable`]).

use super::queue::QueueAddresses;
use super::transport::{Notify, Transport, TransportError};
use crate::pci::msix::MsixTable;
use crate::pci::{self, cap, read_bar, Bar, ConfigSpace, PciAddress};
use arch::mmio::Mmio;
use core::fmt;

const CFG_COMMON: u8 = 1;
const CFG_NOTIFY: u8 = 2;
const CFG_ISR: u8 = 3;
const CFG_DEVICE: u8 = 4;

/// Offsets in the common configuration structure (`struct virtio_pci_common_cfg`).
mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0c;
    pub const MSIX_CONFIG: usize = 0x10;
    pub const NUM_QUEUES: usize = 0x12;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1a;
    pub const QUEUE_ENABLE: usize = 0x1c;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// Size of the structure.
    pub const LEN: u32 = 0x38;
}

/// A window (BAR address and length) named by one vendor capability.
#[derive(Clone, Copy, Debug)]
struct Window {
    addr: u64,
    len: u32,
}

/// The mapped register blocks of one virtio-pci device.
pub struct VirtioPci {
    common: usize,
    notify: usize,
    notify_len: u32,
    notify_multiplier: u32,
    device: usize,
    device_len: u32,
    /// The PCI function.
    pub addr: PciAddress,
}

fn window(cfg: &dyn ConfigSpace, addr: PciAddress, at: u16) -> Result<Window, TransportError> {
    let bar = cfg.read8(addr, at + 4);
    let offset = cfg.read32(addr, at + 8);
    let len = cfg.read32(addr, at + 12);
    let Bar::Memory { addr: base, size, .. } = read_bar(cfg, addr, bar) else {
        return Err(TransportError::BadCapability);
    };
    if offset as u64 + len as u64 > size {
        return Err(TransportError::BadCapability);
    }
    Ok(Window { addr: base + offset as u64, len })
}

impl VirtioPci {
    /// Finds and maps the device's register windows and enables memory decoding and
    /// bus mastering.
    pub fn new(cfg: &dyn ConfigSpace, addr: PciAddress) -> Result<Self, TransportError> {
        let (mut common, mut notify, mut device, mut multiplier) = (None, None, None, 0);
        for (id, at) in pci::capabilities(cfg, addr) {
            if id != cap::VENDOR {
                continue;
            }
            match cfg.read8(addr, at + 3) {
                CFG_COMMON if common.is_none() => common = Some(window(cfg, addr, at)?),
                CFG_NOTIFY if notify.is_none() => {
                    notify = Some(window(cfg, addr, at)?);
                    multiplier = cfg.read32(addr, at + 16);
                }
                CFG_DEVICE if device.is_none() => device = Some(window(cfg, addr, at)?),
                CFG_ISR => {}
                _ => {}
            }
        }
        let (Some(common), Some(notify), Some(device)) = (common, notify, device) else {
            return Err(TransportError::NotModern);
        };
        if common.len < common::LEN {
            return Err(TransportError::BadCapability);
        }
        for w in [common, notify, device] {
            arch::paging::map_mmio(w.addr, w.len as u64).map_err(TransportError::Map)?;
        }
        pci::enable(cfg, addr, pci::command::MEMORY | pci::command::BUS_MASTER | pci::command::INTX_DISABLE);
        Ok(VirtioPci {
            common: common.addr as usize,
            notify: notify.addr as usize,
            notify_len: notify.len,
            notify_multiplier: multiplier,
            device: device.addr as usize,
            device_len: device.len,
            addr,
        })
    }

    fn reg<T: Copy>(&self, offset: usize) -> Mmio<T> {
        // SAFETY: offsets come from `common` (all inside the LEN-byte structure, checked
        // in `new`) at their natural alignment, in a window mapped in `new`.
        unsafe { Mmio::at(self.common + offset) }
    }
}

/// A queue's notification register and the value written to it (the queue's index).
pub struct PciNotifier {
    register: Mmio<u16>,
    queue: u16,
}

impl Notify for PciNotifier {
    #[inline]
    fn notify(&self) {
        self.register.write(self.queue);
    }
}

impl Transport for VirtioPci {
    type Notifier = PciNotifier;
    type Vectors = MsixTable;

    fn location(&self) -> &dyn fmt::Display {
        &self.addr
    }

    fn reset(&self) {
        self.reg::<u8>(common::DEVICE_STATUS).write(0);
        for _ in 0..1_000_000 {
            if self.reg::<u8>(common::DEVICE_STATUS).read() == 0 {
                break;
            }
            core::hint::spin_loop();
        }
    }

    fn status(&self) -> u8 {
        self.reg::<u8>(common::DEVICE_STATUS).read()
    }

    fn set_status(&self, status: u8) {
        self.reg::<u8>(common::DEVICE_STATUS).write(status);
    }

    fn device_features(&self) -> u64 {
        let mut offered = 0u64;
        for half in 0..2u32 {
            self.reg::<u32>(common::DEVICE_FEATURE_SELECT).write(half);
            offered |= (self.reg::<u32>(common::DEVICE_FEATURE).read() as u64) << (32 * half);
        }
        offered
    }

    fn set_driver_features(&self, features: u64) {
        for half in 0..2u32 {
            self.reg::<u32>(common::DRIVER_FEATURE_SELECT).write(half);
            self.reg::<u32>(common::DRIVER_FEATURE).write((features >> (32 * half)) as u32);
        }
    }

    fn queue_max_size(&self, index: u16) -> Result<u16, TransportError> {
        if index >= self.reg::<u16>(common::NUM_QUEUES).read() {
            return Err(TransportError::NoSuchQueue(index));
        }
        self.reg::<u16>(common::QUEUE_SELECT).write(index);
        Ok(self.reg::<u16>(common::QUEUE_SIZE).read())
    }

    fn setup_queue(
        &self,
        index: u16,
        size: u16,
        addresses: QueueAddresses,
        vector: u16,
    ) -> Result<PciNotifier, TransportError> {
        self.queue_max_size(index)?;
        self.reg::<u16>(common::QUEUE_SIZE).write(size);
        self.reg::<u64>(common::QUEUE_DESC).write(addresses.desc);
        self.reg::<u64>(common::QUEUE_DRIVER).write(addresses.driver);
        self.reg::<u64>(common::QUEUE_DEVICE).write(addresses.device);
        self.reg::<u16>(common::QUEUE_MSIX_VECTOR).write(vector);
        if self.reg::<u16>(common::QUEUE_MSIX_VECTOR).read() != vector {
            return Err(TransportError::VectorRejected);
        }
        let off = self.reg::<u16>(common::QUEUE_NOTIFY_OFF).read() as u64 * self.notify_multiplier as u64;
        if off + 2 > self.notify_len as u64 {
            return Err(TransportError::BadCapability);
        }
        self.reg::<u16>(common::QUEUE_ENABLE).write(1);
        // SAFETY: off + 2 lies inside the notify window mapped in `new`; the register is
        // a 16-bit queue notification register.
        let register = unsafe { Mmio::at(self.notify + off as usize) };
        Ok(PciNotifier { register, queue: index })
    }

    fn set_config_vector(&self, vector: u16) {
        self.reg::<u16>(common::MSIX_CONFIG).write(vector);
    }

    fn device_config_u8(&self, offset: u32) -> u8 {
        if offset >= self.device_len {
            return 0;
        }
        // SAFETY: offset is inside the device window mapped in `new`.
        unsafe { Mmio::<u8>::at(self.device + offset as usize) }.read()
    }
}
