//! A split virtqueue whose every buffer is one descriptor with its own fixed buffer.
//!
//! The rings and the buffers are one allocation from a [`DmaAlloc`], laid out by
//! [`layout`], and every access to it is a load or store through [`SharedMem`]: the
//! queue never holds a reference into memory the device writes, so it runs unchanged
//! on the host against fake memory and a fake device (`super::fake`).
//!
//! A request is identified by its descriptor index. What the device writes (the used
//! ring) is untrusted (virtio 1.2, 2.7.8): the used index is read once per pop and may
//! run ahead of the driver by at most the queue size; each used element is read once
//! into locals; its id must name a descriptor this queue's own bookkeeping has in flight
//! and its length must fit that descriptor's buffer. A violation marks the queue broken:
//! it does no further I/O and reports [`QueueError::Broken`]; nothing here panics on
//! what the device wrote, and the kernel keeps running.
//!
//! Notifications both ways can be suppressed (2.7.7, 2.7.10): with `VIRTIO_F_EVENT_IDX`
//! ([`SplitQueue::use_event_idx`]) through `used_event` and `avail_event`, else through
//! the `NO_INTERRUPT` and `NO_NOTIFY` flags. [`SplitQueue::arm_interrupts`] asks for one
//! interrupt at the next used buffer and [`SplitQueue::pause_interrupts`] for none while
//! the driver polls; under the event index an armed interrupt is one-shot by itself.

pub mod layout;

use crate::dma::DmaAlloc;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};
use layout::{need_event, Layout, AVAIL_F_NO_INTERRUPT, DESC_F_WRITE, USED_F_NO_NOTIFY};
use xen_iface::shared::SharedMem;

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
    /// A buffer index or range that does not exist or is not in the state the call needs.
    BadIndex,
}

/// What the device did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The used index moved by more than the queue size (or backwards, which is the same
    /// in 16-bit arithmetic).
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

/// The addresses the transport tells the device (virtio 1.2, 2.7: descriptor, driver
/// and device areas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAddresses {
    /// The descriptor table.
    pub desc: u64,
    /// The driver area (available ring).
    pub driver: u64,
    /// The device area (used ring).
    pub device: u64,
}

/// One split virtqueue over memory `M`.
pub struct SplitQueue<M: SharedMem> {
    mem: M,
    phys: u64,
    layout: Layout,
    direction: Direction,
    /// Per descriptor: handed to the device and not yet returned.
    in_flight: Vec<bool>,
    free: Vec<u16>,
    /// The driver's copy of `avail.flags`, written together with `avail.idx`.
    avail_flags: u16,
    avail_idx: u16,
    /// `avail_idx` when the driver last decided whether to notify.
    notified_idx: u16,
    last_used: u16,
    /// `VIRTIO_F_EVENT_IDX` was negotiated: suppression by `used_event`/`avail_event`.
    event_idx: bool,
    broken: Option<Violation>,
}

impl<M: SharedMem> SplitQueue<M> {
    /// Allocates a queue of `size` entries, each with a `buf_len`-byte buffer, from `dma`.
    pub fn new<D: DmaAlloc<Mem = M>>(
        dma: &D,
        size: u16,
        buf_len: usize,
        direction: Direction,
    ) -> Result<Self, QueueError> {
        let layout = Layout::new(size, buf_len).ok_or(QueueError::Setup)?;
        let (mem, phys) = dma.alloc(layout.total).ok_or(QueueError::Setup)?;
        if mem.len() < layout.total || phys.checked_add(layout.total as u64).is_none() {
            return Err(QueueError::Setup);
        }
        let q = SplitQueue {
            mem,
            phys,
            layout,
            direction,
            in_flight: alloc::vec![false; size as usize],
            free: (0..size).rev().collect(),
            avail_flags: 0,
            avail_idx: 0,
            notified_idx: 0,
            last_used: 0,
            event_idx: false,
            broken: None,
        };
        for id in 0..size {
            q.write_desc(id, 0);
        }
        Ok(q)
    }

    /// Where the device finds the three parts.
    pub fn addresses(&self) -> QueueAddresses {
        QueueAddresses {
            desc: self.phys,
            driver: self.phys + self.layout.avail as u64,
            device: self.phys + self.layout.used as u64,
        }
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.layout.size
    }

    /// Bytes per buffer.
    pub fn buffer_len(&self) -> usize {
        self.layout.buf_len
    }

    /// The violation that broke the queue, if any.
    pub fn broken(&self) -> Option<Violation> {
        self.broken
    }

    /// Number of free descriptors.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Writes descriptor `id` whole: its buffer, `len` and the direction's flags.
    fn write_desc(&self, id: u16, len: u32) {
        let d = self.layout.desc(id);
        let flags = if self.direction == Direction::FromDevice { DESC_F_WRITE } else { 0 };
        self.mem.write_u64(d, self.phys + self.layout.buffer(id) as u64);
        self.mem.write_u32(d + 8, len);
        self.mem.write_u32(d + 12, flags as u32); // flags, and next = 0
    }

    /// Writes `avail.flags` and `avail.idx` as one store.
    fn write_avail_header(&self) {
        self.mem.write_u32(self.layout.avail, self.avail_flags as u32 | (self.avail_idx as u32) << 16);
    }

    /// Suppresses notifications by the event index from now on (the device and the
    /// driver negotiated `VIRTIO_F_EVENT_IDX`): `avail.flags` is then 0 (2.7.7.1).
    pub fn use_event_idx(&mut self) {
        self.event_idx = true;
        self.avail_flags = 0;
        self.write_avail_header();
    }

    /// True if the event index is in use.
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    /// Asks the device never to interrupt for this queue. Under the event index,
    /// `used_event` is put just behind the driver, where the device reaches it only after
    /// 65,535 more buffers (one stray interrupt per wrap; a queue without a vector never
    /// sees it).
    pub fn suppress_interrupts(&mut self) {
        if self.event_idx {
            layout::write_u16(&self.mem, self.layout.used_event(), self.last_used.wrapping_sub(1));
        } else {
            self.avail_flags = AVAIL_F_NO_INTERRUPT;
            self.write_avail_header();
        }
    }

    /// Asks the device not to interrupt while the driver polls. Under the event index
    /// this writes nothing: an armed interrupt fires once and the device does not
    /// interrupt again until [`Self::arm_interrupts`].
    pub fn pause_interrupts(&mut self) {
        if !self.event_idx && self.avail_flags & AVAIL_F_NO_INTERRUPT == 0 {
            self.avail_flags |= AVAIL_F_NO_INTERRUPT;
            self.write_avail_header();
        }
    }

    /// Asks the device to interrupt when it next uses a buffer. Returns true if it has
    /// already used some the driver has not popped: they may raise no interrupt, so the
    /// caller polls before it waits.
    pub fn arm_interrupts(&mut self) -> bool {
        if self.event_idx {
            layout::write_u16(&self.mem, self.layout.used_event(), self.last_used);
        } else if self.avail_flags & AVAIL_F_NO_INTERRUPT != 0 {
            self.avail_flags &= !AVAIL_F_NO_INTERRUPT;
            self.write_avail_header();
        }
        fence(Ordering::SeqCst); // the request before reading what the device did
        self.has_used()
    }

    /// Takes a free descriptor; `None` if there is none or the queue is broken.
    pub fn alloc(&mut self) -> Option<u16> {
        if self.broken.is_some() {
            return None;
        }
        self.free.pop()
    }

    /// True if the driver holds descriptor `id` (allocated, or returned by `pop_used`).
    fn held(&self, id: u16) -> bool {
        self.in_flight.get(id as usize) == Some(&false)
    }

    /// The buffer range `[offset, offset + len)` of a descriptor the driver holds.
    fn range(&self, id: u16, offset: usize, len: usize) -> Result<usize, QueueError> {
        let fits = offset.checked_add(len).is_some_and(|end| end <= self.layout.buf_len);
        if !self.held(id) || !fits {
            return Err(QueueError::BadIndex);
        }
        Ok(self.layout.buffer(id) + offset)
    }

    /// Copies `data` into the buffer of descriptor `id` at `offset` (to transmit). Only
    /// for a descriptor the driver holds.
    pub fn write_buffer(&mut self, id: u16, offset: usize, data: &[u8]) -> Result<(), QueueError> {
        let at = self.range(id, offset, data.len())?;
        self.mem.write_bytes(at, data);
        Ok(())
    }

    /// Copies the buffer of descriptor `id` from `offset` into `dst` (what the device
    /// wrote): the device may still scribble on that memory, so it is only ever read by
    /// `SharedMem::read_bytes`'s volatile loads into the driver's own. Only for a
    /// descriptor the driver holds.
    pub fn read_buffer(&self, id: u16, offset: usize, dst: &mut [u8]) -> Result<(), QueueError> {
        let at = self.range(id, offset, dst.len())?;
        self.mem.read_bytes(at, dst);
        Ok(())
    }

    /// Hands descriptor `id` to the device with `len` bytes (the buffer's length for
    /// receive buffers). The caller notifies the device afterwards if [`Self::needs_notify`].
    pub fn submit(&mut self, id: u16, len: usize) -> Result<(), QueueError> {
        if let Some(v) = self.broken {
            return Err(QueueError::Broken(v));
        }
        if !self.held(id) || len > self.layout.buf_len {
            return Err(QueueError::BadIndex);
        }
        self.write_desc(id, len as u32);
        self.in_flight[id as usize] = true;
        layout::write_u16(&self.mem, self.layout.avail_entry(self.avail_idx), id);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::Release); // descriptor and ring entry before the index
        self.write_avail_header();
        fence(Ordering::SeqCst); // index before reading the device's NO_NOTIFY flag
        Ok(())
    }

    /// Reads the used ring's header once: (flags, idx).
    fn used_header(&self) -> (u16, u16) {
        let word = self.mem.read_u32(self.layout.used);
        (word as u16, (word >> 16) as u16)
    }

    /// Whether the device wants to hear of the buffers submitted since the last call:
    /// under the event index, whether they passed its `avail_event`; otherwise unless it
    /// set `NO_NOTIFY`. The caller notifies if true.
    pub fn needs_notify(&mut self) -> bool {
        let (old, new) = (self.notified_idx, self.avail_idx);
        self.notified_idx = new;
        if self.event_idx {
            let event = layout::read_u16(&self.mem, self.layout.avail_event());
            need_event(event, new, old)
        } else {
            self.used_header().0 & USED_F_NO_NOTIFY == 0
        }
    }

    /// True if the device has returned buffers not yet popped.
    pub fn has_used(&self) -> bool {
        self.broken.is_none() && self.used_header().1 != self.last_used
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
        let (_, used_idx) = self.used_header();
        let pending = used_idx.wrapping_sub(self.last_used);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.layout.size {
            return Err(self.fail(Violation::UsedIndexJump { from: self.last_used, to: used_idx }));
        }
        fence(Ordering::Acquire); // the index before the element it covers
        let elem = self.layout.used_elem(self.last_used);
        let id = self.mem.read_u32(elem);
        let len = self.mem.read_u32(elem + 4);
        let Some(in_flight) = u16::try_from(id).ok().and_then(|i| self.in_flight.get(i as usize).copied()) else {
            return Err(self.fail(Violation::IdOutOfRange(id)));
        };
        if !in_flight {
            return Err(self.fail(Violation::IdNotInFlight(id)));
        }
        let written = if self.direction == Direction::FromDevice { len as usize } else { 0 };
        if written > self.layout.buf_len {
            return Err(self.fail(Violation::LengthTooLarge { id, len }));
        }
        self.in_flight[id as usize] = false;
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some((id as u16, written)))
    }

    /// Returns a descriptor the driver holds to the free list.
    pub fn release(&mut self, id: u16) -> Result<(), QueueError> {
        if !self.held(id) || self.free.contains(&id) {
            return Err(QueueError::BadIndex);
        }
        self.free.push(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
