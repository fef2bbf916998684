//! Receive offloads: negotiation, a packet gathered from merged buffers, checksums the
//! device vouched for or did not, and a device whose headers lie.

use super::*;
use crate::nic::csum::testing::{frame as ipv4_frame, TCP};
use crate::nic::GSO_MAX_FRAME;
use header::{F_GUEST_CSUM, F_GUEST_TSO4, F_MRG_RXBUF};

const OFFLOADS: u64 = F_GUEST_CSUM | F_GUEST_TSO4 | F_MRG_RXBUF;
const NEEDS_CSUM: u8 = 1;
const DATA_VALID: u8 = 2;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;

/// A driver on a device that offers every receive offload, asked to take them or not.
fn rig(rx_offloads: bool) -> Rig {
    let dev = FakeTransport::new(feature::VERSION_1 | F_MAC | OFFLOADS, QUEUE, &MAC);
    Rig::build(dev, FakeIrqs::default(), None, VirtioNetConfig { rx_offloads, ..Default::default() })
}

/// A received header: `flags`, `gso_type`, `num_buffers`.
fn hdr(flags: u8, gso_type: u8, num_buffers: u16) -> [u8; HDR_LEN] {
    let mut h = [0u8; HDR_LEN];
    (h[0], h[1]) = (flags, gso_type);
    h[10..].copy_from_slice(&num_buffers.to_le_bytes());
    h
}

/// The buffers `h` and `packet` fill.
fn buffers_for(packet: &[u8]) -> usize {
    (HDR_LEN + packet.len()).div_ceil(BUF_LEN)
}

impl Rig {
    /// The device writes `h` and `packet` into as many posted buffers as they fill and
    /// publishes the first `publish` of them.
    fn deliver_raw(&mut self, h: [u8; HDR_LEN], packet: &[u8], publish: usize) {
        let bytes = [&h[..], packet].concat();
        let pieces: Vec<(u16, usize)> = bytes
            .chunks(BUF_LEN)
            .map(|c| {
                let t = self.rx.take().expect("a posted receive buffer");
                assert!(self.dma.write(t.addr, c));
                (t.id, c.len())
            })
            .collect();
        for (id, len) in pieces.into_iter().take(publish) {
            self.rx.put(id as u32, len as u32);
        }
    }

    /// The device receives `packet` whole, its header saying `flags` and `gso_type`.
    fn deliver_packet(&mut self, flags: u8, gso_type: u8, packet: &[u8]) {
        let n = buffers_for(packet);
        self.deliver_raw(hdr(flags, gso_type, n as u16), packet, n);
    }
}

/// A TCP segment in an IPv4 frame, `payload` bytes, its checksum right.
fn segment(payload: usize) -> Vec<u8> {
    let mut l4: Vec<u8> = (0..20 + payload).map(|i| (i * 7) as u8).collect();
    l4[12] = 0x50; // data offset: 5 words
    ipv4_frame(TCP, l4, 16)
}

#[test]
fn the_lever_takes_every_offload_offered_and_only_then() {
    let r = rig(true);
    assert_eq!(r.dev.device().driver_features, feature::VERSION_1 | F_MAC | OFFLOADS);
    assert_eq!((r.net.max_rx_frame(), r.net.rx_checksums_checked()), (GSO_MAX_FRAME, true));
    let r = rig(false);
    assert_eq!(r.dev.device().driver_features, feature::VERSION_1 | F_MAC, "lever off: none");
    assert_eq!((r.net.max_rx_frame(), r.net.rx_checksums_checked()), (MAX_FRAME, false));
    // Segments in 2 KiB buffers need merged buffers: not asked for without them.
    let dev = FakeTransport::new(feature::VERSION_1 | F_GUEST_CSUM | F_GUEST_TSO4, QUEUE, &MAC);
    let cfg = VirtioNetConfig { rx_offloads: true, ..Default::default() };
    let r = Rig::build(dev, FakeIrqs::default(), None, cfg);
    assert_eq!(r.dev.device().driver_features, feature::VERSION_1 | F_GUEST_CSUM);
    assert_eq!(r.net.max_rx_frame(), MAX_FRAME);
}

#[test]
fn a_large_segment_is_gathered_from_its_buffers_and_they_are_reposted() {
    let mut r = rig(true);
    let big = segment(20_000 - 54);
    assert_eq!(buffers_for(&big), 10);
    r.deliver_packet(NEEDS_CSUM, GSO_TCPV4, &big);
    let small = segment(100);
    r.deliver_packet(0, 0, &small);
    assert_eq!(r.rx.pending(), QUEUE - 11);
    assert_eq!(r.receive_into(GSO_MAX_FRAME), Ok(Some(big)));
    assert_eq!(r.rx.pending(), QUEUE - 1, "the segment's 10 buffers posted again");
    assert_eq!(r.receive_into(GSO_MAX_FRAME), Ok(Some(small)), "checked here: right");
    assert_eq!(r.receive_into(GSO_MAX_FRAME), Ok(None));
    assert_eq!(r.rx.pending(), QUEUE);
    let s = r.net.stats();
    assert_eq!((s.rx_frames, s.bad_responses), (2, 0));
}

#[test]
fn checksums_the_device_did_not_vouch_for_are_checked_here() {
    let mut r = rig(true);
    let mut bad = segment(300);
    *bad.last_mut().unwrap() ^= 1;
    r.deliver_packet(0, 0, &bad);
    assert_eq!(r.receive_into(GSO_MAX_FRAME), Ok(None), "dropped");
    for flags in [NEEDS_CSUM, DATA_VALID] {
        r.deliver_packet(flags, 0, &bad); // the device vouched: a blank or checked sum
        assert_eq!(r.receive_into(GSO_MAX_FRAME), Ok(Some(bad.clone())));
    }
    // Without the offloads the flags mean nothing and the stack checks every sum.
    let mut r = rig(false);
    r.deliver_raw(hdr(0, 0, 0), &bad, 1);
    assert_eq!(r.receive(), Ok(Some(bad)), "handed up: the stack checks it");
    assert_eq!(r.net.stats().bad_responses, 0);
}

#[test]
fn a_packet_larger_than_the_caller_takes_is_dropped_whole() {
    let mut r = rig(true);
    let big = segment(6000);
    r.deliver_packet(DATA_VALID, GSO_TCPV4, &big);
    r.deliver_packet(DATA_VALID, 0, &segment(10));
    assert_eq!(r.receive_into(4096), Ok(None));
    assert_eq!(r.receive_into(4096), Ok(Some(segment(10))), "the next packet intact");
    assert_eq!(r.rx.pending(), QUEUE);
    assert_eq!(r.net.stats().bad_responses, 1);
}

#[test]
fn a_segmentation_type_not_accepted_is_dropped() {
    let mut r = rig(true);
    r.deliver_packet(DATA_VALID, GSO_TCPV6, &segment(100));
    assert_eq!(r.receive_into(GSO_MAX_FRAME), Ok(None));
    assert_eq!(r.rx.pending(), QUEUE);
    assert_eq!(r.net.stats().bad_responses, 1);
    assert_eq!(r.status() & status::FAILED, 0, "a dropped packet, not a broken device");
}

// Headers that break the buffer accounting break the device.

#[test]
fn a_packet_published_without_all_its_buffers_breaks_the_device() {
    let mut r = rig(true);
    let big = segment(5000);
    r.deliver_raw(hdr(0, GSO_TCPV4, 3), &big, 2);
    assert_eq!(r.receive_into(GSO_MAX_FRAME), Err(NicError::Broken));
    r.assert_broken();
}

#[test]
fn zero_or_too_many_buffers_break_the_device() {
    for n in [0, QUEUE + 1] {
        let mut r = rig(true);
        r.deliver_raw(hdr(0, 0, n), &segment(10), 1);
        assert_eq!(r.receive_into(GSO_MAX_FRAME), Err(NicError::Broken), "{n} buffers");
        r.assert_broken();
    }
}
