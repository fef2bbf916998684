//! Fake DMA memory, reachable by bus address, and the device's half of a split queue.
//!
//! [`FakeDma`] hands the driver [`FakeMem`] regions at made-up bus addresses (a guard
//! gap between them), and lets the device side read and write them by address, as a
//! device does by DMA; [`DeviceQueue`] walks a queue's rings through it like a device,
//! and writes whatever a test asks into the used ring.

use crate::dma::DmaAlloc;
use crate::virtio::queue::QueueAddresses;
use std::sync::{Arc, Mutex};
use xen_iface::shared::SharedMem;

/// The first fake bus address; regions follow with a guard page between them.
const FIRST_PHYS: u64 = 0x1_0000_0000;

/// One allocation.
struct Region {
    phys: u64,
    bytes: Mutex<Vec<u8>>,
}

/// Fake DMA memory: the driver's side of a [`FakeDma`] region.
#[derive(Clone)]
pub struct FakeMem(Arc<Region>);

impl FakeMem {
    fn with<R>(&self, offset: usize, size: usize, f: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        if !offset.is_multiple_of(size) {
            return None;
        }
        let mut b = self.0.bytes.lock().unwrap();
        b.get_mut(offset..offset.checked_add(size)?).map(f)
    }
}

impl SharedMem for FakeMem {
    fn len(&self) -> usize {
        self.0.bytes.lock().unwrap().len()
    }
    fn read_u8(&self, offset: usize) -> u8 {
        self.with(offset, 1, |s| s[0]).unwrap_or(0)
    }
    fn write_u8(&self, offset: usize, value: u8) {
        self.with(offset, 1, |s| s[0] = value);
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.with(offset, 4, |s| u32::from_le_bytes(s.try_into().unwrap())).unwrap_or(0)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.with(offset, 4, |s| s.copy_from_slice(&value.to_le_bytes()));
    }
    fn read_u64(&self, offset: usize) -> u64 {
        self.with(offset, 8, |s| u64::from_le_bytes(s.try_into().unwrap())).unwrap_or(0)
    }
    fn write_u64(&self, offset: usize, value: u64) {
        self.with(offset, 8, |s| s.copy_from_slice(&value.to_le_bytes()));
    }
    fn swap_u64(&self, offset: usize, value: u64) -> u64 {
        self.with(offset, 8, |s| {
            let old = u64::from_le_bytes((&*s).try_into().unwrap());
            s.copy_from_slice(&value.to_le_bytes());
            old
        })
        .unwrap_or(0)
    }
    fn fetch_and_u64(&self, offset: usize, mask: u64) -> u64 {
        let old = self.read_u64(offset);
        self.write_u64(offset, old & mask);
        old
    }
    fn fetch_or_u64(&self, offset: usize, bits: u64) -> u64 {
        let old = self.read_u64(offset);
        self.write_u64(offset, old | bits);
        old
    }
}

/// Fake DMA: every region it handed out, reachable by bus address.
#[derive(Clone, Default)]
pub struct FakeDma(Arc<Mutex<Vec<Arc<Region>>>>);

impl DmaAlloc for FakeDma {
    type Mem = FakeMem;

    fn alloc(&self, len: usize) -> Option<(FakeMem, u64)> {
        let mut regions = self.0.lock().unwrap();
        let phys = regions
            .last()
            .map_or(FIRST_PHYS, |r| r.phys + (r.bytes.lock().unwrap().len() as u64).next_multiple_of(4096) + 4096);
        let region = Arc::new(Region { phys, bytes: Mutex::new(vec![0; len.max(1)]) });
        regions.push(region.clone());
        Some((FakeMem(region), phys))
    }
}

impl FakeDma {
    /// Runs `f` on the `len` bytes at bus address `phys`, if one region holds them all.
    fn at<R>(&self, phys: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        let regions = self.0.lock().unwrap();
        for r in regions.iter().filter(|r| phys >= r.phys) {
            let mut bytes = r.bytes.lock().unwrap();
            let start = usize::try_from(phys - r.phys).ok()?;
            if start < bytes.len() {
                return bytes.get_mut(start..start.checked_add(len)?).map(f);
            }
        }
        None
    }

    /// The device reads `len` bytes at `phys`.
    pub fn read(&self, phys: u64, len: usize) -> Option<Vec<u8>> {
        self.at(phys, len, |s| s.to_vec())
    }

    /// The device writes `data` at `phys`; false if no region holds it.
    pub fn write(&self, phys: u64, data: &[u8]) -> bool {
        self.at(phys, data.len(), |s| s.copy_from_slice(data)).is_some()
    }

    fn read_u16(&self, phys: u64) -> u16 {
        self.at(phys, 2, |s| u16::from_le_bytes([s[0], s[1]])).expect("ring address")
    }

    fn read_u32(&self, phys: u64) -> u32 {
        self.at(phys, 4, |s| u32::from_le_bytes(s.try_into().unwrap())).expect("ring address")
    }

    fn read_u64(&self, phys: u64) -> u64 {
        self.at(phys, 8, |s| u64::from_le_bytes(s.try_into().unwrap())).expect("ring address")
    }

    fn write_u16(&self, phys: u64, v: u16) {
        assert!(self.write(phys, &v.to_le_bytes()), "ring address");
    }

    fn write_u32(&self, phys: u64, v: u32) {
        assert!(self.write(phys, &v.to_le_bytes()), "ring address");
    }
}

/// A descriptor the device took from the available ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Descriptor index.
    pub id: u16,
    /// Buffer address.
    pub addr: u64,
    /// Buffer length.
    pub len: u32,
    /// Descriptor flags.
    pub flags: u16,
}

/// The device's half of one split queue.
pub struct DeviceQueue {
    dma: FakeDma,
    size: u16,
    at: QueueAddresses,
    seen_avail: u16,
    used_idx: u16,
    /// `VIRTIO_F_EVENT_IDX` negotiated: interrupts follow `used_event`.
    event_idx: bool,
    /// The used index when the device last decided whether to interrupt.
    signalled: u16,
}

impl DeviceQueue {
    /// The device side of a queue at `at` with `size` entries.
    pub fn new(dma: &FakeDma, size: u16, at: QueueAddresses) -> Self {
        DeviceQueue { dma: dma.clone(), size, at, seen_avail: 0, used_idx: 0, event_idx: false, signalled: 0 }
    }

    /// The same, with the event index negotiated.
    pub fn with_event_idx(mut self) -> Self {
        self.event_idx = true;
        self
    }

    /// Whether the device interrupts for the buffers used since it last asked, as QEMU's
    /// `virtio_should_notify` decides: by `used_event` under the event index, else
    /// unless the driver set `NO_INTERRUPT`.
    pub fn should_interrupt(&mut self) -> bool {
        let (old, new) = (self.signalled, self.used_idx);
        self.signalled = new;
        if old == new {
            return false;
        }
        if self.event_idx {
            crate::virtio::queue::layout::need_event(self.used_event(), new, old)
        } else {
            self.avail_flags() & crate::virtio::queue::layout::AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// The driver's `used_event`.
    pub fn used_event(&self) -> u16 {
        self.dma.read_u16(self.at.driver + 4 + 2 * self.size as u64)
    }

    /// Writes `avail_event`: the device wants a notification once the driver's available
    /// index passes `idx`.
    pub fn set_avail_event(&self, idx: u16) {
        self.dma.write_u16(self.at.device + 4 + 8 * self.size as u64, idx);
    }

    /// The driver's `avail.idx`.
    pub fn avail_idx(&self) -> u16 {
        self.dma.read_u16(self.at.driver + 2)
    }

    /// The driver's `avail.flags`.
    pub fn avail_flags(&self) -> u16 {
        self.dma.read_u16(self.at.driver)
    }

    /// Buffers made available and not yet taken.
    pub fn pending(&self) -> u16 {
        self.avail_idx().wrapping_sub(self.seen_avail)
    }

    /// Takes the next available descriptor.
    pub fn take(&mut self) -> Option<Taken> {
        if self.pending() == 0 {
            return None;
        }
        let id = self.dma.read_u16(self.at.driver + 4 + 2 * (self.seen_avail % self.size) as u64);
        self.seen_avail = self.seen_avail.wrapping_add(1);
        let d = self.at.desc + 16 * id as u64;
        let flags = self.dma.read_u16(d + 12);
        Some(Taken { id, addr: self.dma.read_u64(d), len: self.dma.read_u32(d + 8), flags })
    }

    /// Writes a used element (any id and length at all) and publishes it.
    pub fn put(&mut self, id: u32, len: u32) {
        let e = self.at.device + 4 + 8 * (self.used_idx % self.size) as u64;
        self.dma.write_u32(e, id);
        self.dma.write_u32(e + 4, len);
        self.used_idx = self.used_idx.wrapping_add(1);
        self.publish(self.used_idx);
    }

    /// Writes `used.idx`: what `put` does, or any value a broken device publishes.
    pub fn publish(&self, idx: u16) {
        self.dma.write_u16(self.at.device + 2, idx);
    }

    /// Sets or clears `VIRTQ_USED_F_NO_NOTIFY`.
    pub fn set_no_notify(&self, on: bool) {
        self.dma.write_u16(self.at.device, on as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::queue::layout::{read_u16, write_u16};

    #[test]
    fn fake_memory_is_reachable_by_address_only_inside_regions() {
        let dma = FakeDma::default();
        let (a, pa) = dma.alloc(100).unwrap();
        let (b, pb) = dma.alloc(10).unwrap();
        assert!(pb >= pa + 4096 + 4096, "a guard gap between regions");
        a.write_u32(96, 0xdead_beef);
        assert_eq!(dma.read(pa + 96, 4).unwrap(), 0xdead_beefu32.to_le_bytes());
        assert!(dma.write(pb + 2, b"xy"));
        assert_eq!(b.read_u8(3), b'y');
        assert_eq!(dma.read(pa + 98, 4), None, "past the end of a region");
        assert_eq!(dma.read(pa + 4096, 1), None, "in the guard gap");
        assert_eq!(a.read_u32(2), 0, "misaligned");
        write_u16(&a, 6, 0x1234);
        assert_eq!((read_u16(&a, 6), read_u16(&a, 4)), (0x1234, 0));
    }
}
