//! Where everything of a split virtqueue lies in its one allocation (virtio 1.2, 2.7).
//!
//! The three parts are `#[repr(C)]` types mirroring the spec's structures, with their
//! sizes and field offsets asserted at compile time. They only *describe* the memory:
//! nothing takes a reference into it, and [`super::SplitQueue`] reads and writes each
//! field through [`SharedMem`] at the offsets computed here. The driver's buffers follow
//! the rings in the same allocation, one fixed `buf_len`-byte buffer per descriptor.

use core::mem::{offset_of, size_of};
use xen_iface::shared::SharedMem;

/// `struct virtq_desc` (2.7.5): one buffer the device reads or writes.
#[repr(C)]
pub struct Descriptor {
    /// Guest-physical address of the buffer.
    pub addr: u64,
    /// Its length in bytes.
    pub len: u32,
    /// `DESC_F_*`.
    pub flags: u16,
    /// Next descriptor of a chain (unused: every buffer here is one descriptor).
    pub next: u16,
}

/// The fixed head of `struct virtq_avail` (2.7.6), written only by the driver; the ring
/// of `le16` descriptor heads follows it, then `used_event`.
#[repr(C)]
pub struct AvailHeader {
    /// `AVAIL_F_*`.
    pub flags: u16,
    /// Where the driver puts the next entry (free-running).
    pub idx: u16,
}

/// The fixed head of `struct virtq_used` (2.7.8), written only by the device; the ring
/// of [`UsedElem`]s follows it, then `avail_event`.
#[repr(C)]
pub struct UsedHeader {
    /// `USED_F_*`.
    pub flags: u16,
    /// Where the device puts the next element (free-running).
    pub idx: u16,
}

/// `struct virtq_used_elem` (2.7.8): a buffer the device is done with.
#[repr(C)]
pub struct UsedElem {
    /// Head descriptor of the buffer (a `le32`, though descriptor indexes fit 16 bits).
    pub id: u32,
    /// Bytes the device wrote into it.
    pub len: u32,
}

const _: () = assert!(size_of::<Descriptor>() == 16);
const _: () = assert!(offset_of!(Descriptor, addr) == 0);
const _: () = assert!(offset_of!(Descriptor, len) == 8);
const _: () = assert!(offset_of!(Descriptor, flags) == 12);
const _: () = assert!(offset_of!(Descriptor, next) == 14);
const _: () = assert!(size_of::<AvailHeader>() == 4 && offset_of!(AvailHeader, idx) == 2);
const _: () = assert!(size_of::<UsedHeader>() == 4 && offset_of!(UsedHeader, idx) == 2);
const _: () = assert!(size_of::<UsedElem>() == 8);
const _: () = assert!(offset_of!(UsedElem, id) == 0 && offset_of!(UsedElem, len) == 4);

/// `VIRTQ_DESC_F_WRITE` (2.7.5): the device writes the buffer (otherwise it reads it).
pub const DESC_F_WRITE: u16 = 2;
/// `VIRTQ_AVAIL_F_NO_INTERRUPT` (2.7.7): the driver needs no used-buffer notifications.
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VIRTQ_USED_F_NO_NOTIFY` (2.7.8; "Available Buffer Notification Suppression"): the
/// device needs no available-buffer notifications.
pub const USED_F_NO_NOTIFY: u16 = 1;
/// Largest queue size (2.7).
pub const MAX_SIZE: u16 = 32768;
/// Alignment of the first buffer (the parts need 16, 2 and 4: 2.7's table).
const BUFFER_ALIGN: usize = 4096;

/// Offsets of one queue's parts and buffers inside its allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Number of descriptors (a power of two, at most [`MAX_SIZE`]).
    pub size: u16,
    /// The driver area (available ring); the descriptor table is at 0.
    pub avail: usize,
    /// The device area (used ring).
    pub used: usize,
    /// The first buffer.
    pub buffers: usize,
    /// Bytes per buffer.
    pub buf_len: usize,
    /// Bytes of the whole allocation.
    pub total: usize,
}

impl Layout {
    /// The layout of a queue of `size` descriptors with `buf_len`-byte buffers; `None` if
    /// the size is not a power of two in 1..=32768 or a buffer is empty or too large.
    pub fn new(size: u16, buf_len: usize) -> Option<Layout> {
        if size == 0 || !size.is_power_of_two() || size > MAX_SIZE || buf_len == 0 || buf_len > u32::MAX as usize {
            return None;
        }
        let n = size as usize;
        let avail = n * size_of::<Descriptor>();
        // flags, idx, ring[n], used_event; then the used ring at its 4-byte alignment.
        let used = (avail + size_of::<AvailHeader>() + 2 * n + 2).next_multiple_of(4);
        // flags, idx, ring[n], avail_event.
        let rings_end = used + size_of::<UsedHeader>() + n * size_of::<UsedElem>() + 2;
        let buffers = rings_end.next_multiple_of(BUFFER_ALIGN);
        let total = buffers.checked_add(n.checked_mul(buf_len)?)?;
        Some(Layout { size, avail, used, buffers, buf_len, total })
    }

    /// Descriptor `id` (taken modulo the size).
    pub fn desc(&self, id: u16) -> usize {
        (id % self.size) as usize * size_of::<Descriptor>()
    }

    /// The available ring's entry for free-running index `idx`.
    pub fn avail_entry(&self, idx: u16) -> usize {
        self.avail + size_of::<AvailHeader>() + 2 * (idx % self.size) as usize
    }

    /// The used ring's element for free-running index `idx`.
    pub fn used_elem(&self, idx: u16) -> usize {
        self.used + size_of::<UsedHeader>() + (idx % self.size) as usize * size_of::<UsedElem>()
    }

    /// `used_event` (2.7.10), after the available ring: the used index at which the
    /// driver wants its next interrupt, with `VIRTIO_F_EVENT_IDX`. The driver's to write.
    pub fn used_event(&self) -> usize {
        self.avail + size_of::<AvailHeader>() + 2 * self.size as usize
    }

    /// `avail_event` (2.7.10), after the used ring: the available index at which the
    /// device wants its next notification, with `VIRTIO_F_EVENT_IDX`. The device's.
    pub fn avail_event(&self) -> usize {
        self.used + size_of::<UsedHeader>() + self.size as usize * size_of::<UsedElem>()
    }

    /// Descriptor `id`'s buffer (taken modulo the size).
    pub fn buffer(&self, id: u16) -> usize {
        self.buffers + (id % self.size) as usize * self.buf_len
    }
}

/// `vring_need_event` (2.7.10): whether moving an index from `old` to `new` passes
/// `event`, the index at which the other side asked to hear (all modulo 2^16).
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// Reads the 16-bit field at `offset` (2-aligned) as one 32-bit load of the word that
/// holds it: `SharedMem` has no 16-bit access, and a single load still reads the field
/// exactly once.
pub fn read_u16<M: SharedMem + ?Sized>(mem: &M, offset: usize) -> u16 {
    (mem.read_u32(offset & !3) >> (8 * (offset & 2))) as u16
}

/// Writes the 16-bit field at `offset` (2-aligned) by a read-modify-write of the 32-bit
/// word that holds it. Only for memory the device never writes (the descriptor table and
/// the driver area, 2.7): the other half is the driver's own, so nothing is lost.
pub fn write_u16<M: SharedMem + ?Sized>(mem: &M, offset: usize, value: u16) {
    let word = offset & !3;
    let shift = 8 * (offset & 2);
    let old = mem.read_u32(word) & !(0xffff << shift);
    mem.write_u32(word, old | (value as u32) << shift);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_where_the_spec_puts_them() {
        let l = Layout::new(256, 2048).unwrap();
        assert_eq!(l.desc(1), 16);
        assert_eq!(l.avail, 4096);
        assert_eq!(l.avail_entry(0), 4096 + 4);
        assert_eq!(l.avail_entry(257), 4096 + 4 + 2);
        assert_eq!(l.used, (4096 + 4 + 512 + 2usize).next_multiple_of(4));
        assert_eq!(l.used % 4, 0);
        assert_eq!(l.used_elem(3), l.used + 4 + 24);
        assert!(l.buffers >= l.used + 4 + 8 * 256 + 2);
        assert_eq!(l.buffers % 4096, 0);
        assert_eq!(l.buffer(255) + 2048, l.total);
    }

    #[test]
    fn event_fields_follow_the_rings() {
        let l = Layout::new(256, 2048).unwrap();
        assert_eq!(l.used_event(), l.avail + 4 + 512);
        assert_eq!(l.avail_event(), l.used + 4 + 8 * 256);
        assert!(l.used_event() + 2 <= l.used && l.avail_event() + 2 <= l.buffers);
        // Each sits in a word whose other half is padding, so a 32-bit access to it
        // stays inside the allocation.
        assert_eq!(l.used_event() % 4, 0);
        assert_eq!(l.avail_event() % 4, 0);
        let one = Layout::new(1, 64).unwrap();
        assert_eq!((one.used_event(), one.avail_event()), (22, 36));
    }

    #[test]
    fn need_event_is_the_spec_s() {
        assert!(need_event(5, 6, 5), "the index moved past the event");
        assert!(need_event(5, 9, 3));
        assert!(!need_event(5, 5, 3), "not yet past it");
        assert!(!need_event(5, 9, 6), "passed before, already signalled");
        assert!(need_event(0xffff, 1, 0xfffe), "across the wrap");
        assert!(!need_event(3, 3, 3), "nothing moved");
    }

    #[test]
    fn small_queue_parts_do_not_overlap() {
        let l = Layout::new(1, 64).unwrap();
        assert_eq!((l.avail, l.used), (16, 24)); // 16 + 4 + 2 + 2 = 24, already 4-aligned
        assert_eq!(l.buffers, 4096);
    }

    #[test]
    fn refuses_impossible_sizes() {
        assert_eq!(Layout::new(0, 64), None);
        assert_eq!(Layout::new(6, 64), None);
        assert_eq!(Layout::new(8, 0), None);
        assert!(Layout::new(32768, 64).is_some());
        assert_eq!(Layout::new(32768, usize::MAX / 2), None);
    }
}
