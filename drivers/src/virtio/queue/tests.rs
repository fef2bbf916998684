//! The split queue against fake memory and a device that reads and writes it by address,
//! and that breaks the ring protocol in every way the queue checks.

use super::*;
use crate::virtio::fake::{DeviceQueue, FakeDma, FakeMem};

fn queue(size: u16, dir: Direction) -> (SplitQueue<FakeMem>, DeviceQueue, FakeDma) {
    let dma = FakeDma::default();
    let q = SplitQueue::new(&dma, size, 2048, dir).unwrap();
    let dev = DeviceQueue::new(&dma, q.size(), q.addresses());
    (q, dev, dma)
}

/// A receive queue of 8 with every buffer posted.
fn rx_queue() -> (SplitQueue<FakeMem>, DeviceQueue, FakeDma) {
    let (mut q, dev, dma) = queue(8, Direction::FromDevice);
    while let Some(id) = q.alloc() {
        q.submit(id, 2048).unwrap();
    }
    (q, dev, dma)
}

fn assert_dead(q: &mut SplitQueue<FakeMem>) {
    assert!(q.broken().is_some());
    assert!(!q.has_used());
    assert_eq!(q.alloc(), None);
    assert!(matches!(q.submit(0, 1), Err(QueueError::Broken(_))));
    assert!(matches!(q.pop_used(), Err(QueueError::Broken(_))));
}

#[test]
fn descriptors_describe_the_buffers() {
    let (q, mut dev, _) = rx_queue();
    let mut seen = Vec::new();
    while let Some(t) = dev.take() {
        assert_eq!((t.len, t.flags), (2048, layout::DESC_F_WRITE));
        seen.push(t.addr);
    }
    assert_eq!(seen.len(), 8);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "one buffer per descriptor");
    assert!(seen.iter().all(|&a| a >= q.addresses().device && a % 2048 == 0));
}

#[test]
fn receive_round_trip_and_wrap() {
    let (mut q, mut dev, dma) = rx_queue();
    for round in 0..40u32 {
        let t = dev.take().expect("a posted buffer");
        assert_eq!(t.len, 2048);
        assert!(dma.write(t.addr, &[round as u8; 60]));
        dev.put(t.id as u32, 60);
        assert!(q.has_used());
        let (got, n) = q.pop_used().unwrap().unwrap();
        assert_eq!((got, n), (t.id, 60));
        let mut data = [0u8; 60];
        q.read_buffer(got, 0, &mut data).unwrap();
        assert!(data.iter().all(|&b| b == round as u8));
        q.submit(got, 2048).unwrap();
    }
    assert_eq!(q.pop_used(), Ok(None));
    assert_eq!(dev.avail_idx(), 8 + 40);
}

#[test]
fn transmit_reclaims_descriptors() {
    let (mut q, mut dev, dma) = queue(4, Direction::ToDevice);
    for _ in 0..4 {
        let id = q.alloc().unwrap();
        q.write_buffer(id, 0, b"abc").unwrap();
        q.submit(id, 3).unwrap();
    }
    assert_eq!(q.alloc(), None);
    let t = dev.take().unwrap();
    assert_eq!((t.len, t.flags), (3, 0));
    assert_eq!(dma.read(t.addr, 3).unwrap(), b"abc");
    dev.put(t.id as u32, 0);
    let (got, written) = q.pop_used().unwrap().unwrap();
    assert_eq!((got, written), (t.id, 0), "the device writes nothing into a transmit buffer");
    q.release(got).unwrap();
    assert_eq!(q.release(got), Err(QueueError::BadIndex)); // double free refused
    assert_eq!(q.alloc(), Some(got));
}

#[test]
fn interrupt_suppression_and_notification_flags() {
    let (mut q, dev, _) = queue(4, Direction::ToDevice);
    assert_eq!(dev.avail_flags(), 0);
    q.suppress_interrupts();
    assert_eq!(dev.avail_flags(), layout::AVAIL_F_NO_INTERRUPT);
    let id = q.alloc().unwrap();
    q.submit(id, 1).unwrap();
    assert_eq!(
        (dev.avail_flags(), dev.avail_idx()),
        (layout::AVAIL_F_NO_INTERRUPT, 1),
        "idx written with the flags kept"
    );
    assert!(q.needs_notify());
    dev.set_no_notify(true);
    assert!(!q.needs_notify());
}

#[test]
fn paused_and_armed_by_the_flag_without_the_event_index() {
    let (mut q, mut dev, _) = rx_queue();
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 60);
    assert!(dev.should_interrupt(), "flags 0: every used buffer interrupts");
    q.pause_interrupts();
    assert_eq!(dev.avail_flags(), layout::AVAIL_F_NO_INTERRUPT);
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 60);
    assert!(!dev.should_interrupt(), "paused while the driver polls");
    q.pop_used().unwrap().unwrap();
    assert!(q.arm_interrupts(), "armed, with a buffer still to pop");
    assert_eq!(dev.avail_flags(), 0);
    q.pop_used().unwrap().unwrap();
    assert!(!q.arm_interrupts(), "armed, nothing pending");
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 60);
    assert!(dev.should_interrupt());
}

#[test]
fn the_event_index_fires_once_per_arming() {
    let (mut q, dev, _) = rx_queue();
    let mut dev = dev.with_event_idx();
    q.use_event_idx();
    assert!(!q.arm_interrupts());
    assert_eq!(dev.used_event(), 0);
    for _ in 0..3 {
        let t = dev.take().unwrap();
        dev.put(t.id as u32, 60);
    }
    assert!(dev.should_interrupt(), "the first used buffers pass used_event");
    q.pause_interrupts(); // writes nothing under the event index
    assert_eq!(dev.avail_flags(), 0, "flags stay 0 with the event index");
    let (id, _) = q.pop_used().unwrap().unwrap();
    q.submit(id, 2048).unwrap();
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 60);
    assert!(!dev.should_interrupt(), "no second interrupt while the driver polls");
    while let Some((id, _)) = q.pop_used().unwrap() {
        q.submit(id, 2048).unwrap();
    }
    assert!(!q.arm_interrupts());
    assert_eq!(dev.used_event(), 4, "armed at the driver's position");
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 60);
    assert!(dev.should_interrupt(), "armed again: the next buffer interrupts");
}

#[test]
fn suppressed_for_good_under_the_event_index() {
    let (mut q, dev, _) = queue(4, Direction::ToDevice);
    let mut dev = dev.with_event_idx();
    q.use_event_idx();
    q.suppress_interrupts();
    for _ in 0..40 {
        let id = q.alloc().unwrap();
        q.submit(id, 1).unwrap();
        let t = dev.take().unwrap();
        dev.put(t.id as u32, 0);
        assert!(!dev.should_interrupt());
        q.pop_used().unwrap().unwrap();
        q.release(id).unwrap();
    }
}

#[test]
fn notifications_follow_avail_event_under_the_event_index() {
    let (mut q, mut dev, _) = queue(8, Direction::ToDevice);
    q.use_event_idx();
    dev.set_no_notify(true); // ignored under the event index
    dev.set_avail_event(0);
    let id = q.alloc().unwrap();
    q.submit(id, 1).unwrap();
    assert!(q.needs_notify(), "index 0 -> 1 passes avail_event 0");
    let id = q.alloc().unwrap();
    q.submit(id, 1).unwrap();
    assert!(!q.needs_notify(), "the device is still working from 0: no second kick");
    dev.take().unwrap();
    dev.take().unwrap();
    dev.set_avail_event(2); // drained, it asks to hear of the next one
    let a = q.alloc().unwrap();
    q.submit(a, 1).unwrap();
    let b = q.alloc().unwrap();
    q.submit(b, 1).unwrap();
    assert!(q.needs_notify(), "two submitted at once, one kick: 2 -> 4 passes 2");
}

#[test]
fn id_out_of_range_breaks_queue() {
    let (mut q, mut dev, _) = rx_queue();
    dev.put(99, 10);
    assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::IdOutOfRange(99))));
    assert_dead(&mut q);
}

#[test]
fn huge_id_breaks_queue() {
    let (mut q, mut dev, _) = rx_queue();
    dev.put(0x1_0003, 10); // would alias descriptor 3 if cut to 16 bits
    assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::IdOutOfRange(0x1_0003))));
}

#[test]
fn duplicate_id_breaks_queue() {
    let (mut q, mut dev, _) = rx_queue();
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 10);
    dev.put(t.id as u32, 10); // the same buffer returned twice
    assert!(q.pop_used().unwrap().is_some());
    assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::IdNotInFlight(t.id as u32))));
    assert_dead(&mut q);
}

#[test]
fn id_never_submitted_breaks_queue() {
    let (mut q, mut dev, _) = queue(4, Direction::ToDevice);
    let id = q.alloc().unwrap();
    q.submit(id, 1).unwrap();
    let other = q.alloc().unwrap(); // allocated but never handed to the device
    dev.put(other as u32, 0);
    assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::IdNotInFlight(other as u32))));
}

#[test]
fn oversize_length_breaks_queue() {
    let (mut q, mut dev, _) = rx_queue();
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 2049);
    assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::LengthTooLarge { id: t.id as u32, len: 2049 })));
    assert_dead(&mut q);
}

#[test]
fn transmit_length_is_ignored() {
    // A device may report any length for a buffer it only read: it is not used.
    let (mut q, mut dev, _) = queue(4, Direction::ToDevice);
    let id = q.alloc().unwrap();
    q.submit(id, 1).unwrap();
    let t = dev.take().unwrap();
    dev.put(t.id as u32, u32::MAX);
    assert_eq!(q.pop_used(), Ok(Some((id, 0))));
}

#[test]
fn used_index_jump_breaks_queue() {
    let (mut q, dev, _) = rx_queue();
    dev.publish(9); // one more than the queue holds
    assert_eq!(q.pop_used(), Err(QueueError::Broken(Violation::UsedIndexJump { from: 0, to: 9 })));
    assert_dead(&mut q);
}

#[test]
fn used_index_going_backwards_is_a_jump() {
    let (mut q, mut dev, _) = rx_queue();
    let t = dev.take().unwrap();
    dev.put(t.id as u32, 1);
    q.pop_used().unwrap();
    dev.publish(0); // back from 1 to 0: looks like 65535 new entries
    assert!(matches!(q.pop_used(), Err(QueueError::Broken(Violation::UsedIndexJump { from: 1, to: 0 }))));
}

#[test]
fn a_full_ring_at_once_is_fine() {
    let (mut q, mut dev, _) = rx_queue();
    while let Some(t) = dev.take() {
        dev.put(t.id as u32, 20);
    }
    let mut n = 0;
    while let Some((id, len)) = q.pop_used().unwrap() {
        assert_eq!(len, 20);
        q.submit(id, 2048).unwrap();
        n += 1;
    }
    assert_eq!(n, 8);
}

#[test]
fn rejects_bad_sizes_and_indexes() {
    let dma = FakeDma::default();
    assert_eq!(SplitQueue::new(&dma, 6, 64, Direction::ToDevice).err(), Some(QueueError::Setup));
    assert_eq!(SplitQueue::new(&dma, 0, 64, Direction::ToDevice).err(), Some(QueueError::Setup));
    let mut q = SplitQueue::new(&dma, 2, 64, Direction::ToDevice).unwrap();
    assert_eq!(q.submit(5, 1), Err(QueueError::BadIndex));
    let id = q.alloc().unwrap();
    assert_eq!(q.submit(id, 65), Err(QueueError::BadIndex));
    assert_eq!(q.write_buffer(id, 60, &[0; 5]), Err(QueueError::BadIndex));
    assert_eq!(q.write_buffer(id, usize::MAX, &[0; 2]), Err(QueueError::BadIndex));
    q.submit(id, 64).unwrap();
    assert_eq!(q.submit(id, 64), Err(QueueError::BadIndex)); // already in flight
    assert_eq!(q.write_buffer(id, 0, &[1]), Err(QueueError::BadIndex), "the device owns it now");
    assert_eq!(q.read_buffer(id, 0, &mut [0]), Err(QueueError::BadIndex));
    assert_eq!(q.read_buffer(7, 0, &mut [0]), Err(QueueError::BadIndex));
}

/// A DMA allocator that gives less than was asked for.
struct ShortDma;

impl DmaAlloc for ShortDma {
    type Mem = FakeMem;
    fn alloc(&self, len: usize) -> Option<(FakeMem, u64)> {
        FakeDma::default().alloc(len - 1)
    }
}

#[test]
fn short_memory_is_refused() {
    assert_eq!(SplitQueue::new(&ShortDma, 4, 64, Direction::ToDevice).err(), Some(QueueError::Setup));
}
