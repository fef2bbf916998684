//! `VirtioNet` against a fake transport and fake DMA memory: the healthy path (bring-up,
//! receive, refill, send, reclaim, interrupts) and a device that misbehaves in each way
//! the driver checks. A misbehaving device must leave the driver broken — FAILED in the
//! device status, every call refused — and nothing may panic.

use super::*;
use crate::virtio::fake::{DeviceQueue, FakeClock, FakeDma, FakeIrqs, FakeMem, FakeTransport, FakeVectors};

mod offloads;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const QUEUE: u16 = 16;

type Net = VirtioNet<FakeTransport, FakeMem>;

fn device() -> FakeTransport {
    FakeTransport::new(feature::VERSION_1 | F_MAC | 1 << 0 /* CSUM, not wanted */, QUEUE, &MAC)
}

/// The same device, offering the event index too.
fn device_with_event_idx() -> FakeTransport {
    FakeTransport::new(feature::VERSION_1 | F_MAC | feature::RING_EVENT_IDX, QUEUE, &MAC)
}

/// The driver configured with receive-interrupt policy `irq` and no offloads.
fn config(irq: RxIrqPolicy) -> VirtioNetConfig {
    VirtioNetConfig { irq, ..Default::default() }
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn start(
    dev: &FakeTransport,
    dma: &FakeDma,
    irqs: &'static FakeIrqs,
    vectors: Option<FakeVectors>,
) -> Result<Net, NetInitError> {
    VirtioNet::start(dev.clone(), dma, irqs, || vectors, VirtioNetConfig::default(), leak(FakeClock::default()))
}

/// A started driver and the device's view of its two queues.
struct Rig {
    net: Net,
    dev: FakeTransport,
    dma: FakeDma,
    rx: DeviceQueue,
    tx: DeviceQueue,
    irqs: &'static FakeIrqs,
    clock: &'static FakeClock,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(FakeIrqs::default(), None)
    }

    fn with(irqs: FakeIrqs, vectors: Option<FakeVectors>) -> Rig {
        Rig::build(device(), irqs, vectors, VirtioNetConfig::default())
    }

    fn build(dev: FakeTransport, irqs: FakeIrqs, vectors: Option<FakeVectors>, config: VirtioNetConfig) -> Rig {
        let dma = FakeDma::default();
        let (irqs, clock) = (leak(irqs), leak(FakeClock::default()));
        let net =
            VirtioNet::start(dev.clone(), &dma, irqs, || vectors, config, clock).expect("a healthy device comes up");
        let (rxq, txq, event_idx) = {
            let d = dev.device();
            (d.queues[0].unwrap(), d.queues[1].unwrap(), d.driver_features & feature::RING_EVENT_IDX != 0)
        };
        let (mut rx, mut tx) = (DeviceQueue::new(&dma, rxq.size, rxq.at), DeviceQueue::new(&dma, txq.size, txq.at));
        if event_idx {
            (rx, tx) = (rx.with_event_idx(), tx.with_event_idx());
        }
        Rig { net, dev, dma, rx, tx, irqs, clock }
    }

    /// The device receives `frame` and interrupts if the driver asked it to (the first
    /// MSI allocated is the receive interrupt): true if it did.
    fn deliver_and_signal(&mut self, frame: &[u8]) -> bool {
        self.deliver(frame);
        let fire = self.rx.should_interrupt();
        if fire {
            self.irqs.raise(0);
        }
        fire
    }

    /// What the network loop does before it halts: re-arm, then check for a race.
    fn rearm(&mut self) -> bool {
        let armed = self.net.enable_rx_interrupt();
        assert!(!self.net.can_receive(), "nothing left to poll");
        armed
    }

    /// Receives everything waiting.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.receive().unwrap().is_some() {
            n += 1;
        }
        n
    }

    /// The device receives `frame`: into the next posted buffer, behind a zero header.
    fn deliver(&mut self, frame: &[u8]) {
        let t = self.rx.take().expect("a posted receive buffer");
        assert_eq!((t.len as usize, t.flags), (BUF_LEN, 2), "device-writable, whole buffer");
        assert!(self.dma.write(t.addr, &[0; HDR_LEN]));
        assert!(self.dma.write(t.addr + HDR_LEN as u64, frame));
        self.rx.put(t.id as u32, (HDR_LEN + frame.len()) as u32);
    }

    /// What one `receive` handed up: `Ok(None)` if no frame (nothing, or one dropped).
    fn receive(&mut self) -> Result<Option<Vec<u8>>, NicError> {
        self.receive_into(MAX_FRAME)
    }

    /// One `receive` into a buffer of `room` bytes.
    fn receive_into(&mut self, room: usize) -> Result<Option<Vec<u8>>, NicError> {
        let mut buf = vec![0u8; room];
        Ok(match self.net.receive(&mut buf)? {
            Received::Frame(n) => Some(buf[..n].to_vec()),
            Received::Nothing | Received::Dropped => None,
        })
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), NicError> {
        self.net.transmit(frame.len(), &mut |b| b.copy_from_slice(frame))
    }

    /// The device completes the next transmitted frame and returns what it read.
    fn complete_tx(&mut self) -> Vec<u8> {
        let t = self.tx.take().expect("a transmitted frame");
        assert_eq!(t.flags, 0, "device-readable");
        let bytes = self.dma.read(t.addr, t.len as usize).unwrap();
        self.tx.put(t.id as u32, 0);
        bytes
    }

    fn status(&self) -> u8 {
        self.dev.device().status
    }

    /// The driver gave up on the device and refuses everything, without panicking.
    fn assert_broken(&mut self) {
        assert_ne!(self.status() & status::FAILED, 0, "FAILED set in the device status");
        assert!(!self.net.can_receive());
        assert!(!self.net.can_transmit());
        assert_eq!(self.receive(), Err(NicError::Broken));
        assert_eq!(self.send(&[1; 60]), Err(NicError::Broken));
        assert!(!self.net.enable_rx_interrupt());
        assert_eq!(self.net.stats().bad_responses, 1);
        assert_eq!(self.dev.device().notifications[1], 0, "nothing sent after breaking");
    }
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| n ^ i as u8).collect()
}

// The healthy path.

#[test]
fn brings_the_device_up() {
    let r = Rig::new();
    let d = r.dev.device();
    assert_eq!(d.resets, 1);
    let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
    assert_eq!(d.status, s);
    assert_eq!(d.driver_features, feature::VERSION_1 | F_MAC, "only what the driver knows");
    assert_eq!(d.config_vector, NO_VECTOR);
    let (rxq, txq) = (d.queues[0].unwrap(), d.queues[1].unwrap());
    assert_eq!((rxq.size, rxq.vector, txq.size, txq.vector), (QUEUE, NO_VECTOR, QUEUE, NO_VECTOR));
    assert_eq!(d.notifications, [1, 0], "receive buffers posted and announced once");
    drop(d);
    assert_eq!(r.net.mac(), MAC);
    assert_eq!(r.rx.pending(), QUEUE, "every receive buffer posted");
    assert_eq!(r.tx.avail_flags(), 1, "no interrupts for transmit completions");
}

#[test]
fn queue_size_is_the_largest_power_of_two_allowed() {
    let dev = FakeTransport::new(feature::VERSION_1, 1000, &[]);
    let net = start(&dev, &FakeDma::default(), leak(FakeIrqs::default()), None).unwrap();
    let d = dev.device();
    assert_eq!(d.queues[0].unwrap().size, MAX_QUEUE);
    assert_eq!(net.mac(), [0x02, 0, 0, 0, 0, 0x01], "no MAC feature: a local address");
    let dev = FakeTransport::new(feature::VERSION_1, 100, &[]);
    start(&dev, &FakeDma::default(), leak(FakeIrqs::default()), None).unwrap();
    assert_eq!(dev.device().queues[1].unwrap().size, 64);
}

#[test]
fn receives_and_refills() {
    let mut r = Rig::new();
    assert!(!r.net.can_receive());
    assert_eq!(r.receive(), Ok(None));
    r.deliver(&frame(1, 60));
    assert_eq!(r.rx.pending(), QUEUE - 1);
    assert!(r.net.can_receive());
    assert_eq!(r.receive(), Ok(Some(frame(1, 60))));
    assert_eq!(r.rx.pending(), QUEUE, "the buffer is posted again");
    assert_eq!(r.dev.device().notifications[0], 2, "and announced");
    assert_eq!(r.receive(), Ok(None));
    assert_eq!(r.net.stats().rx_frames, 1);
}

#[test]
fn receives_across_ring_wraps() {
    let mut r = Rig::new();
    for n in 0..(5 * QUEUE as usize + 3) {
        let f = frame(n as u8, 14 + n % 1500);
        r.deliver(&f);
        assert_eq!(r.receive(), Ok(Some(f)), "frame {n}");
    }
    assert_eq!(r.net.stats().rx_frames, 5 * QUEUE as u64 + 3);
    assert_eq!(r.net.stats().bad_responses, 0);
}

#[test]
fn a_full_ring_of_frames_is_taken_in_order() {
    let mut r = Rig::new();
    for n in 0..QUEUE {
        r.deliver(&frame(n as u8, 100));
    }
    for n in 0..QUEUE {
        assert_eq!(r.receive(), Ok(Some(frame(n as u8, 100))));
    }
    assert_eq!(r.rx.pending(), QUEUE);
}

#[test]
fn no_notification_when_the_device_declines_them() {
    let mut r = Rig::new();
    r.rx.set_no_notify(true);
    r.tx.set_no_notify(true);
    r.deliver(&frame(2, 60));
    r.receive().unwrap();
    r.send(&frame(3, 60)).unwrap();
    assert_eq!(r.dev.device().notifications, [1, 0]);
}

#[test]
fn runt_frame_is_dropped_and_counted() {
    let mut r = Rig::new();
    let t = r.rx.take().unwrap();
    r.rx.put(t.id as u32, HDR_LEN as u32); // a header and nothing else
    assert_eq!(r.receive(), Ok(None));
    assert_eq!(r.net.stats().bad_responses, 1);
    assert_eq!(r.rx.pending(), QUEUE, "the buffer is posted again");
    r.deliver(&frame(4, 60));
    assert_eq!(r.receive(), Ok(Some(frame(4, 60))), "not broken");
}

#[test]
fn a_frame_larger_than_the_callers_buffer_is_dropped_and_counted() {
    let mut r = Rig::new();
    r.deliver(&frame(5, 100));
    assert_eq!(r.receive_into(99), Ok(None));
    assert_eq!(r.net.stats().bad_responses, 1);
    assert_eq!(r.rx.pending(), QUEUE, "the buffer is posted again");
    r.deliver(&frame(6, 100));
    assert_eq!(r.receive_into(100), Ok(Some(frame(6, 100))), "exactly its size fits");
}

#[test]
fn sends_frames_the_device_reads() {
    let mut r = Rig::new();
    assert!(r.net.can_transmit());
    r.send(&frame(5, 1514)).unwrap();
    let mut expected = vec![0; HDR_LEN];
    expected.extend(frame(5, 1514));
    assert_eq!(r.complete_tx(), expected);
    assert_eq!(r.dev.device().notifications[1], 1);
    assert_eq!(r.net.stats().tx_frames, 1);
    assert_eq!(r.send(&[0; 1515]), Err(NicError::TooLarge));
}

#[test]
fn transmit_reclaims_completed_frames_when_full() {
    let mut r = Rig::new();
    for n in 0..QUEUE {
        r.send(&frame(n as u8, 60)).unwrap();
    }
    assert!(!r.net.can_transmit());
    assert_eq!(r.send(&frame(0, 60)), Err(NicError::Busy));
    for _ in 0..3 {
        r.complete_tx();
    }
    assert!(r.net.can_transmit());
    for n in 0..3 {
        r.send(&frame(100 + n, 60)).unwrap();
    }
    assert_eq!(r.send(&frame(0, 60)), Err(NicError::Busy));
    assert_eq!(r.net.stats().tx_frames, QUEUE as u64 + 3);
}

#[test]
fn the_vector_is_unmasked_once_and_left_alone() {
    let vectors = FakeVectors::new();
    let mut r = Rig::with(FakeIrqs::default(), Some(vectors.clone()));
    assert_eq!(r.dev.device().queues[0].unwrap().vector, RX_MSIX_ENTRY, "receive queue on entry 0");
    assert!(vectors.0.programmed.lock().unwrap().is_some());
    assert!(vectors.masked(), "starts masked");
    assert!(r.net.enable_rx_interrupt());
    assert!(!vectors.masked());
    assert!(r.net.enable_rx_interrupt(), "unmasking twice writes once");
    r.irqs.raise(0);
    assert!(!vectors.masked(), "the handler does not mask by default");
    assert!(r.net.enable_rx_interrupt());
    assert_eq!(vectors.writes(), 1);
    assert_eq!(r.net.stats().interrupts, 1);
}

/// The default: one interrupt per burst, whatever arrives while the driver polls raises
/// none, and no MSI-X table write after the first unmask. `event_idx` picks how the ring
/// says so.
fn quiet_while_polling(dev: FakeTransport, event_idx: bool) {
    let vectors = FakeVectors::new();
    let mut r = Rig::build(dev, FakeIrqs::default(), Some(vectors.clone()), VirtioNetConfig::default());
    assert_eq!(r.dev.device().driver_features & feature::RING_EVENT_IDX != 0, event_idx);
    assert!(r.rearm());
    for burst in 1..=20u64 {
        assert!(r.deliver_and_signal(&frame(1, 60)), "burst {burst}: the first frame interrupts");
        assert_eq!(r.receive(), Ok(Some(frame(1, 60))));
        for n in 0..3 {
            assert!(!r.deliver_and_signal(&frame(n, 60)), "burst {burst}: no interrupt while polling");
        }
        assert_eq!(r.drain(), 3);
        assert!(r.rearm());
        assert_eq!(r.net.stats().interrupts, burst);
    }
    assert_eq!(vectors.writes(), 1, "the first unmask, then never again");
    assert!(r.rx.avail_flags() == 0 || !event_idx, "flags stay 0 under the event index");
}

#[test]
fn the_event_index_keeps_the_device_quiet_while_polling() {
    quiet_while_polling(device_with_event_idx(), true);
}

#[test]
fn the_no_interrupt_flag_keeps_the_device_quiet_while_polling() {
    quiet_while_polling(device(), false);
}

#[test]
fn a_frame_racing_the_rearm_is_polled_not_lost() {
    let mut r =
        Rig::build(device_with_event_idx(), FakeIrqs::default(), Some(FakeVectors::new()), VirtioNetConfig::default());
    assert!(r.rearm());
    assert!(r.deliver_and_signal(&frame(1, 60)));
    r.deliver(&frame(2, 60)); // arrives before the driver polls: no interrupt
    assert!(!r.rx.should_interrupt());
    assert_eq!(r.drain(), 2);
    r.deliver(&frame(3, 60)); // arrives after the drain, before the re-arm
    assert!(!r.rx.should_interrupt());
    assert!(r.net.enable_rx_interrupt());
    assert!(r.net.can_receive(), "the loop's check after re-arming finds it");
    assert_eq!(r.drain(), 1);
}

#[test]
fn mask_each_writes_the_table_twice_per_interrupt() {
    let vectors = FakeVectors::new();
    let policy = RxIrqPolicy { mask_each: true, moderation_ns: 0 };
    let mut r = Rig::build(device_with_event_idx(), FakeIrqs::default(), Some(vectors.clone()), config(policy));
    assert!(r.rearm());
    for _ in 0..10 {
        assert!(r.deliver_and_signal(&frame(1, 60)));
        assert!(vectors.masked(), "masked in the handler");
        r.irqs.raise(0); // a second interrupt while masked: no second write
        assert_eq!(r.drain(), 1);
        assert!(r.rearm());
        assert!(!vectors.masked(), "unmasked after the poll");
    }
    assert_eq!(vectors.writes(), 1 + 2 * 10);
    assert_eq!(r.net.stats().interrupts, 20);
}

#[test]
fn a_route_masked_at_the_controller_never_writes_the_table_again() {
    let vectors = FakeVectors::new();
    let policy = RxIrqPolicy { mask_each: true, moderation_ns: 0 };
    let mut r = Rig::build(device_with_event_idx(), FakeIrqs::pirq_like(), Some(vectors.clone()), config(policy));
    let msg = vectors.0.programmed.lock().unwrap().expect("programmed");
    assert_eq!((msg.address, msg.data), (0xfee3_7000, 0), "the route's message, as given");
    assert!(!vectors.masked(), "the entry is unmasked once, at connection");
    assert!(r.irqs.masked.load(Ordering::SeqCst), "the controller holds it masked until the driver is ready");
    assert_eq!(vectors.writes(), 1);
    assert!(r.rearm());
    assert!(!r.irqs.masked.load(Ordering::SeqCst));
    for _ in 0..10 {
        assert!(r.deliver_and_signal(&frame(1, 60)));
        assert!(r.irqs.masked.load(Ordering::SeqCst), "masked at the controller");
        assert_eq!(r.drain(), 1);
        assert!(r.rearm());
    }
    assert_eq!(vectors.writes(), 1, "no table write per interrupt");
    assert_eq!(r.irqs.mask_calls.load(Ordering::SeqCst), 2 + 2 * 10);
}

#[test]
fn moderation_holds_the_interrupt_off() {
    let policy = RxIrqPolicy { mask_each: false, moderation_ns: 100_000 };
    let mut r = Rig::build(device_with_event_idx(), FakeIrqs::default(), Some(FakeVectors::new()), config(policy));
    r.clock.advance(1_000_000);
    assert!(r.rearm());
    assert_eq!(r.net.rx_interrupt_held_until_ns(), None, "no interrupt yet: armed at once");
    assert!(r.deliver_and_signal(&frame(1, 60)));
    assert_eq!(r.drain(), 1);
    r.clock.advance(30_000);
    assert!(r.rearm());
    assert_eq!(r.net.rx_interrupt_held_until_ns(), Some(1_100_000), "held 100 us from the interrupt");
    assert!(!r.deliver_and_signal(&frame(2, 60)), "no interrupt while held");
    r.clock.advance(70_000);
    assert!(r.net.enable_rx_interrupt());
    assert_eq!(r.net.rx_interrupt_held_until_ns(), None);
    assert!(r.net.can_receive(), "what came meanwhile is polled");
    assert_eq!(r.drain(), 1);
    assert!(r.rearm(), "the loop re-arms after polling");
    assert!(r.deliver_and_signal(&frame(3, 60)), "armed again");
    assert_eq!(r.net.stats().interrupts, 2);
}

#[test]
fn without_a_vector_the_driver_polls() {
    let irqs = FakeIrqs::exhausted();
    let mut r = Rig::with(irqs, Some(FakeVectors::new()));
    assert_eq!(r.dev.device().queues[0].unwrap().vector, NO_VECTOR);
    assert!(!r.net.enable_rx_interrupt());
    r.deliver(&frame(6, 60));
    assert_eq!(r.receive(), Ok(Some(frame(6, 60))));
}

// A misbehaving device.

#[test]
fn rx_id_out_of_range_breaks_the_driver() {
    let mut r = Rig::new();
    r.rx.put(QUEUE as u32, 60);
    assert!(r.net.can_receive());
    assert_eq!(r.receive(), Err(NicError::Broken));
    r.assert_broken();
}

#[test]
fn rx_length_past_the_buffer_breaks_the_driver() {
    let mut r = Rig::new();
    let t = r.rx.take().unwrap();
    r.rx.put(t.id as u32, BUF_LEN as u32 + 1);
    let mut buf = vec![0x55u8; BUF_LEN + 1];
    assert_eq!(r.net.receive(&mut buf), Err(NicError::Broken));
    assert!(buf.iter().all(|&b| b == 0x55), "nothing handed up");
    r.assert_broken();
}

#[test]
fn rx_used_index_jump_breaks_the_driver() {
    let mut r = Rig::new();
    r.rx.publish(QUEUE + 1);
    assert_eq!(r.receive(), Err(NicError::Broken));
    r.assert_broken();
}

#[test]
fn rx_used_index_going_backwards_breaks_the_driver() {
    let mut r = Rig::new();
    r.deliver(&frame(8, 60));
    r.receive().unwrap();
    r.rx.publish(0);
    assert_eq!(r.receive(), Err(NicError::Broken));
    r.assert_broken();
}

#[test]
fn tx_id_out_of_range_breaks_the_driver() {
    let mut r = Rig::new();
    for n in 0..QUEUE {
        r.send(&frame(n as u8, 60)).unwrap();
    }
    r.tx.take().unwrap();
    r.tx.put(0xffff, 0);
    assert_eq!(r.send(&frame(0, 60)), Err(NicError::Broken));
    assert_ne!(r.status() & status::FAILED, 0);
    assert!(!r.net.can_transmit());
    assert_eq!(r.receive(), Err(NicError::Broken));
}

#[test]
fn tx_id_not_in_flight_breaks_the_driver() {
    let mut r = Rig::new();
    for n in 0..QUEUE {
        r.send(&frame(n as u8, 60)).unwrap();
    }
    let t = r.tx.take().unwrap();
    r.tx.put(t.id as u32, 0);
    r.tx.put(t.id as u32, 0); // the same frame completed twice: reclaimed, then not in flight
    assert!(!r.net.can_transmit(), "reclaim finds the duplicate");
    assert_eq!(r.send(&frame(0, 60)), Err(NicError::Broken));
    assert_ne!(r.status() & status::FAILED, 0);
}

#[test]
fn tx_used_index_jump_breaks_the_driver() {
    let mut r = Rig::new();
    for n in 0..QUEUE {
        r.send(&frame(n as u8, 60)).unwrap();
    }
    r.tx.publish(0x8000);
    assert_eq!(r.send(&frame(0, 60)), Err(NicError::Broken));
    assert!(!r.net.can_receive());
}

#[test]
fn device_that_never_acknowledges_features_is_refused() {
    let dev = device();
    dev.device().accepts_features = false;
    let r = start(&dev, &FakeDma::default(), leak(FakeIrqs::default()), None);
    assert_eq!(r.err(), Some(NetInitError::Transport(TransportError::FeaturesRejected)));
    let d = dev.device();
    assert_ne!(d.status & status::FAILED, 0);
    assert_eq!(d.status & status::DRIVER_OK, 0);
    assert!(d.queues.iter().all(Option::is_none), "no queue set up");
}

#[test]
fn device_without_version_1_is_refused() {
    let dev = FakeTransport::new(F_MAC, QUEUE, &MAC);
    let r = start(&dev, &FakeDma::default(), leak(FakeIrqs::default()), None);
    assert_eq!(r.err(), Some(NetInitError::Transport(TransportError::FeaturesRejected)));
    assert_ne!(dev.device().status & status::FAILED, 0);
}

#[test]
fn device_without_a_queue_is_refused() {
    let dev = device();
    dev.device().queue_max[1] = 0;
    let r = start(&dev, &FakeDma::default(), leak(FakeIrqs::default()), None);
    assert_eq!(r.err(), Some(NetInitError::NoQueue(1)));
    dev.device().queue_max.truncate(1);
    let r = start(&dev, &FakeDma::default(), leak(FakeIrqs::default()), None);
    assert_eq!(r.err(), Some(NetInitError::Transport(TransportError::NoSuchQueue(1))));
}

#[test]
fn device_rejecting_the_vector_is_refused() {
    let dev = device();
    dev.device().rejects_vectors = true;
    let r = start(&dev, &FakeDma::default(), leak(FakeIrqs::default()), Some(FakeVectors::new()));
    assert_eq!(r.err(), Some(NetInitError::Transport(TransportError::VectorRejected)));
}
