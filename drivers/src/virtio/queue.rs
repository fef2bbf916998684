//! A split virtqueue whose every buffer is one descriptor with its own DMA buffer.
//!
//! The driver owns a fixed buffer per descriptor, so a request is identified by its
//! descriptor index. What the device writes (the used ring) is untrusted: the used index
//! is read once per poll and may advance by at most the queue size; each used element is
//! copied out once; its id must name a descriptor that is in flight and its length must
//! fit that descriptor's buffer. A violation marks the queue broken: it does no further
//! I/O and reports [`QueueError::Broken`], and the kernel keeps running.

use crate::dma::DmaBuffer;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_AVAIL_F_NO_INTERRUPT`.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VIRTQ_USED_F_NO_NOTIFY`.
const USED_F_NO_NOTIFY: u16 = 1;

/// Who writes into a queue's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The device reads them (transmit).
    ToDevice,
    /// The device writes them (receive).
    FromDevice,
}

/// Why a queue operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// No free descriptor.
    Full,
    /// Queue size not a power of two in 1..=32768, or no memory.
    Setup,
    /// The device broke the ring protocol; the queue is dead.
    Broken(Violation),
    /// A buffer index that does not exist or is not in the state the call needs.
    BadIndex,
}

/// What the device did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The used index moved by more than the queue size.
    UsedIndexJump {
        /// Index the driver had reached.
        from: u16,
        /// Index the device published.
        to: u16,
    },
    /// A used element named a descriptor outside the table.
    IdOutOfRange(u32),
    /// A used element named a descriptor that was not in flight.
    IdNotInFlight(u32),
    /// A used element reported more bytes than the buffer holds.
    LengthTooLarge {
        /// Descriptor.
        id: u32,
        /// Reported length.
        len: u32,
    },
}

/// One split virtqueue.
pub struct SplitQueue {
    size: u16,
    rings: DmaBuffer,
    avail_off: usize,
    used_off: usize,
    buffers: Vec<DmaBuffer>,
    buf_len: usize,
    in_flight: Vec<bool>,
    free: Vec<u16>,
    avail_idx: u16,
    last_used: u16,
    direction: Direction,
    broken: Option<Violation>,
}

impl SplitQueue {
    /// Allocates a queue of `size` entries, each with a `buf_len`-byte buffer.
    pub fn new(size: u16, buf_len: usize, direction: Direction) -> Result<Self, QueueError> {
        if size == 0 || !size.is_power_of_two() || size > 32768 {
            return Err(QueueError::Setup);
        }
        let n = size as usize;
        let avail_off = 16 * n;
        let used_off = (avail_off + 6 + 2 * n).next_multiple_of(4);
        let total = used_off + 6 + 8 * n;
        let rings = DmaBuffer::new(total).ok_or(QueueError::Setup)?;
        let mut buffers = Vec::with_capacity(n);
        for _ in 0..n {
            buffers.push(DmaBuffer::new(buf_len).ok_or(QueueError::Setup)?);
        }
        let q = SplitQueue {
            size,
            rings,
            avail_off,
            used_off,
            buffers,
            buf_len,
            in_flight: alloc::vec![false; n],
            free: (0..size).rev().collect(),
            avail_idx: 0,
            last_used: 0,
            direction,
            broken: None,
        };
        for i in 0..size {
            q.write_desc(i, q.buffers[i as usize].phys(), 0);
        }
        Ok(q)
    }

    /// (descriptor table, driver area, device area) addresses for the transport.
    pub fn addresses(&self) -> (u64, u64, u64) {
        let base = self.rings.phys();
        (base, base + self.avail_off as u64, base + self.used_off as u64)
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Bytes per buffer.
    pub fn buffer_len(&self) -> usize {
        self.buf_len
    }

    /// The violation that broke the queue, if any.
    pub fn broken(&self) -> Option<Violation> {
        self.broken
    }

    /// Number of free descriptors.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    fn ring_ptr<T>(&self, offset: usize) -> *mut T {
        debug_assert!(offset + core::mem::size_of::<T>() <= self.rings.len());
        // SAFETY: every caller passes an offset inside the ring allocation (see the layout
        // in `new`), so the pointer stays in bounds.
        unsafe { self.rings.as_ptr().add(offset) as *mut T }
    }

    fn write_desc(&self, i: u16, addr: u64, len: u32) {
        let flags = if self.direction == Direction::FromDevice { DESC_F_WRITE } else { 0 };
        let d = self.ring_ptr::<u8>(16 * i as usize);
        // SAFETY: descriptor i (< size) lies in the table at offset 16*i; volatile because
        // the device reads it concurrently.
        unsafe {
            core::ptr::write_volatile(d as *mut u64, addr);
            core::ptr::write_volatile(d.add(8) as *mut u32, len);
            core::ptr::write_volatile(d.add(12) as *mut u16, flags);
            core::ptr::write_volatile(d.add(14) as *mut u16, 0);
        }
    }

    /// Asks the device not to interrupt when it uses buffers of this queue.
    pub fn suppress_interrupts(&self) {
        // SAFETY: avail.flags is the first u16 of the driver area.
        unsafe { core::ptr::write_volatile(self.ring_ptr::<u16>(self.avail_off), AVAIL_F_NO_INTERRUPT) };
    }

    /// Takes a free descriptor and lets `fill` write into its buffer; `None` if full.
    pub fn alloc(&mut self) -> Option<u16> {
        if self.broken.is_some() {
            return None;
        }
        self.free.pop()
    }

    /// The buffer of descriptor `id`, for the driver to fill (transmit) or read (receive).
    /// Only valid for a descriptor the driver holds (allocated or returned by `pop_used`).
    pub fn buffer_mut(&mut self, id: u16) -> Result<&mut [u8], QueueError> {
        match self.in_flight.get(id as usize) {
            Some(false) => Ok(self.buffers[id as usize].as_mut_slice()),
            _ => Err(QueueError::BadIndex),
        }
    }

    /// Hands descriptor `id` to the device with `len` bytes (the buffer's length for
    /// receive buffers). The caller notifies the device afterwards if [`Self::needs_notify`].
    pub fn submit(&mut self, id: u16, len: usize) -> Result<(), QueueError> {
        if let Some(v) = self.broken {
            return Err(QueueError::Broken(v));
        }
        if self.in_flight.get(id as usize) != Some(&false) || len > self.buf_len {
            return Err(QueueError::BadIndex);
        }
        self.write_desc(id, self.buffers[id as usize].phys(), len as u32);
        self.in_flight[id as usize] = true;
        let slot = self.avail_off + 4 + 2 * (self.avail_idx % self.size) as usize;
        // SAFETY: slot is inside avail.ring (index < size).
        unsafe { core::ptr::write_volatile(self.ring_ptr::<u16>(slot), id) };
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::Release); // ring entry before the index
                                  // SAFETY: avail.idx is the second u16 of the driver area.
        unsafe { core::ptr::write_volatile(self.ring_ptr::<u16>(self.avail_off + 2), self.avail_idx) };
        fence(Ordering::SeqCst); // index before reading the device's NO_NOTIFY flag
        Ok(())
    }

    /// True unless the device asked not to be notified.
    pub fn needs_notify(&self) -> bool {
        // SAFETY: used.flags is the first u16 of the device area.
        let flags = unsafe { core::ptr::read_volatile(self.ring_ptr::<u16>(self.used_off)) };
        flags & USED_F_NO_NOTIFY == 0
    }

    fn used_idx(&self) -> u16 {
        // SAFETY: used.idx is the second u16 of the device area.
        unsafe { core::ptr::read_volatile(self.ring_ptr::<u16>(self.used_off + 2)) }
    }

    /// True if the device has returned buffers not yet popped.
    pub fn has_used(&self) -> bool {
        self.broken.is_none() && self.used_idx() != self.last_used
    }

    fn fail(&mut self, v: Violation) -> QueueError {
        self.broken = Some(v);
        QueueError::Broken(v)
    }

    /// Takes the next buffer the device returned: (descriptor id, bytes written). The
    /// descriptor is then the driver's again (resubmit it or [`Self::release`] it).
    pub fn pop_used(&mut self) -> Result<Option<(u16, usize)>, QueueError> {
        if let Some(v) = self.broken {
            return Err(QueueError::Broken(v));
        }
        let used_idx = self.used_idx();
        let pending = used_idx.wrapping_sub(self.last_used);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(self.fail(Violation::UsedIndexJump { from: self.last_used, to: used_idx }));
        }
        fence(Ordering::Acquire); // the index before the element it covers
        let elem = self.used_off + 4 + 8 * (self.last_used % self.size) as usize;
        // SAFETY: elem is inside used.ring (index < size); each field is read exactly once.
        let (id, len) = unsafe {
            (
                core::ptr::read_volatile(self.ring_ptr::<u32>(elem)),
                core::ptr::read_volatile(self.ring_ptr::<u32>(elem + 4)),
            )
        };
        if id >= self.size as u32 {
            return Err(self.fail(Violation::IdOutOfRange(id)));
        }
        if !self.in_flight[id as usize] {
            return Err(self.fail(Violation::IdNotInFlight(id)));
        }
        let written = if self.direction == Direction::FromDevice { len } else { 0 };
        if written as usize > self.buf_len {
            return Err(self.fail(Violation::LengthTooLarge { id, len }));
        }
        self.in_flight[id as usize] = false;
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some((id as u16, written as usize)))
    }

    /// Returns a descriptor the driver holds to the free list.
    pub fn release(&mut self, id: u16) -> Result<(), QueueError> {
        if self.in_flight.get(id as usize) != Some(&false) || self.free.contains(&id) {
            return Err(QueueError::BadIndex);
        }
        self.free.push(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device side of a queue, reading and writing the rings like a real device.
    struct FakeDevice {
        desc: u64,
        avail: u64,
        used: u64,
        size: u16,
        seen_avail: u16,
        used_idx: u16,
    }

    impl FakeDevice {
        fn new(q: &SplitQueue) -> Self {
            let (desc, avail, used) = q.addresses();
            FakeDevice { desc, avail, used, size: q.size(), seen_avail: 0, used_idx: 0 }
        }
        fn rd16(a: u64) -> u16 {
            // SAFETY: a is a ring field address of the live queue under test.
            unsafe { core::ptr::read_volatile(a as *const u16) }
        }
        /// Takes the next available descriptor: (id, addr, len).
        fn take(&mut self) -> Option<(u16, u64, u32)> {
            if Self::rd16(self.avail + 2) == self.seen_avail {
                return None;
            }
            let id = Self::rd16(self.avail + 4 + 2 * (self.seen_avail % self.size) as u64);
            self.seen_avail = self.seen_avail.wrapping_add(1);
            let d = self.desc + 16 * id as u64;
            // SAFETY: id came from the avail ring, so d is a descriptor of the live table.
            let (addr, len) =
                unsafe { (core::ptr::read_volatile(d as *const u64), core::ptr::read_volatile((d + 8) as *const u32)) };
            Some((id, addr, len))
        }
        /// Writes a used element and publishes it (or, with `publish_as`, a chosen index).
        fn put(&mut self, id: u32, len: u32) {
            let e = self.used + 4 + 8 * (self.used_idx % self.size) as u64;
            // SAFETY: e is a used-ring element of the live queue (index < size).
            unsafe {
                core::ptr::write_volatile(e as *mut u32, id);
                core::ptr::write_volatile((e + 4) as *mut u32, len);
            }
            self.used_idx = self.used_idx.wrapping_add(1);
            self.publish(self.used_idx);
        }
        fn publish(&self, idx: u16) {
            // SAFETY: used.idx of the live queue.
            unsafe { core::ptr::write_volatile((self.used + 2) as *mut u16, idx) };
        }
    }

    fn rx_queue() -> (SplitQueue, FakeDevice) {
        let mut q = SplitQueue::new(8, 2048, Direction::FromDevice).unwrap();
        while let Some(id) = q.alloc() {
            q.submit(id, 2048).unwrap();
        }
        let dev = FakeDevice::new(&q);
        (q, dev)
    }

    #[test]
    fn receive_round_trip_and_wrap() {
        let (mut q, mut dev) = rx_queue();
        for round in 0..40u32 {
            let (id, addr, len) = dev.take().expect("a posted buffer");
            assert_eq!(len, 2048);
            // SAFETY: addr is a posted 2048-byte receive buffer the device may write.
            unsafe { core::ptr::write_bytes(addr as *mut u8, round as u8, 60) };
            dev.put(id as u32, 60);
            let (got, n) = q.pop_used().unwrap().unwrap();
            assert_eq!((got, n), (id, 60));
            assert!(q.buffer_mut(got).unwrap()[..60].iter().all(|&b| b == round as u8));
            q.submit(got, 2048).unwrap();
        }
        assert_eq!(q.pop_used(), Ok(None));
    }

    #[test]
    fn transmit_reclaims_descriptors() {
        let mut q = SplitQueue::new(4, 2048, Direction::ToDevice).unwrap();
        let mut dev = FakeDevice::new(&q);
        for _ in 0..4 {
            let id = q.alloc().unwrap();
            q.buffer_mut(id).unwrap()[..3].copy_from_slice(b"abc");
            q.submit(id, 3).unwrap();
        }
        assert_eq!(q.alloc(), None);
        let (id, addr, len) = dev.take().unwrap();
        // SAFETY: addr/len describe a submitted transmit buffer.
        let data = unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) };
        assert_eq!(data, b"abc");
        dev.put(id as u32, 0);
        let (got, _) = q.pop_used().unwrap().unwrap();
        q.release(got).unwrap();
        assert_eq!(q.release(got), Err(QueueError::BadIndex)); // double free refused
        assert_eq!(q.alloc(), Some(got));
    }

    #[test]
    fn id_out_of_range_breaks_queue() {
        let (mut q, mut dev) = rx_queue();
        dev.put(99, 10);
        assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::IdOutOfRange(99))));
        assert!(q.broken().is_some());
        assert!(!q.has_used());
        assert_eq!(q.alloc(), None);
        assert!(matches!(q.submit(0, 1), Err(QueueError::Broken(_))));
    }

    #[test]
    fn duplicate_id_breaks_queue() {
        let (mut q, mut dev) = rx_queue();
        let (id, _, _) = dev.take().unwrap();
        dev.put(id as u32, 10);
        dev.put(id as u32, 10); // the same buffer returned twice
        assert!(q.pop_used().unwrap().is_some());
        assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::IdNotInFlight(id as u32))));
    }

    #[test]
    fn oversize_length_breaks_queue() {
        let (mut q, mut dev) = rx_queue();
        let (id, _, _) = dev.take().unwrap();
        dev.put(id as u32, 4096);
        assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::LengthTooLarge { id: id as u32, len: 4096 })));
    }

    #[test]
    fn used_index_jump_breaks_queue() {
        let (mut q, dev) = rx_queue();
        dev.publish(200);
        assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::UsedIndexJump { from: 0, to: 200 })));
    }

    #[test]
    fn used_index_going_backwards_is_a_jump() {
        let (mut q, mut dev) = rx_queue();
        let (id, _, _) = dev.take().unwrap();
        dev.put(id as u32, 1);
        q.pop_used().unwrap();
        dev.publish(0); // back from 1 to 0: looks like 65535 new entries
        assert!(matches!(q.pop_used(), Err(QueueError::Broken(Violation::UsedIndexJump { .. }))));
    }

    #[test]
    fn rejects_bad_sizes_and_indexes() {
        assert!(SplitQueue::new(6, 64, Direction::ToDevice).is_err());
        assert!(SplitQueue::new(0, 64, Direction::ToDevice).is_err());
        let mut q = SplitQueue::new(2, 64, Direction::ToDevice).unwrap();
        assert_eq!(q.submit(5, 1), Err(QueueError::BadIndex));
        let id = q.alloc().unwrap();
        assert_eq!(q.submit(id, 65), Err(QueueError::BadIndex));
        q.submit(id, 64).unwrap();
        assert_eq!(q.submit(id, 64), Err(QueueError::BadIndex)); // already in flight
        assert!(q.buffer_mut(id).is_err());
    }
}
