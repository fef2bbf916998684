//! Host tests: a fake netback drives the rings, first well, then badly.

use super::*;
use crate::ring::{REQ_PROD, RING, RSP_PROD};
use crate::shared::testing::FakePage;

const TX_SLOT: usize = 12;
const RX_SLOT: usize = 8;

/// The back end's side of both rings.
struct FakeBack {
    tx: FakePage,
    rx: FakePage,
    tx_req_cons: u32,
    tx_rsp_prod: u32,
    rx_req_cons: u32,
    rx_rsp_prod: u32,
}

impl FakeBack {
    fn new() -> (FakeBack, NetfrontRings) {
        let (tx, rx) = (FakePage::new(4096), FakePage::new(4096));
        let rings = NetfrontRings::new(&tx, &rx).unwrap();
        (FakeBack { tx, rx, tx_req_cons: 0, tx_rsp_prod: 0, rx_req_cons: 0, rx_rsp_prod: 0 }, rings)
    }

    /// Takes the next posted receive buffer: (id, gref).
    fn take_rx(&mut self) -> Option<(u16, u32)> {
        if self.rx.read_u32(REQ_PROD) == self.rx_req_cons {
            return None;
        }
        let at = RING + (self.rx_req_cons % 256) as usize * RX_SLOT;
        self.rx_req_cons += 1;
        Some((self.rx.read_u32(at) as u16, self.rx.read_u32(at + 4)))
    }

    /// Publishes a receive response.
    fn rx_respond(&mut self, id: u16, offset: u16, flags: u16, status: i16) {
        let at = RING + (self.rx_rsp_prod % 256) as usize * RX_SLOT;
        self.rx.write_u32(at, id as u32 | (offset as u32) << 16);
        self.rx.write_u32(at + 4, flags as u32 | (status as u16 as u32) << 16);
        self.rx_rsp_prod += 1;
        self.rx.write_u32(RSP_PROD, self.rx_rsp_prod);
    }

    /// Publishes an extra-info slot (it answers the next request without its id).
    fn rx_extra(&mut self, ty: u8, flags: u8) {
        let _ = self.take_rx();
        let at = RING + (self.rx_rsp_prod % 256) as usize * RX_SLOT;
        self.rx.write_u32(at, ty as u32 | (flags as u32) << 8 | 0x05b4 << 16); // gso.size 1460
        self.rx.write_u32(at + 4, 0);
        self.rx_rsp_prod += 1;
        self.rx.write_u32(RSP_PROD, self.rx_rsp_prod);
    }

    /// Takes the next transmit request: (gref, size, id).
    fn take_tx(&mut self) -> Option<(u32, u16, u16)> {
        if self.tx.read_u32(REQ_PROD) == self.tx_req_cons {
            return None;
        }
        let at = RING + (self.tx_req_cons % 256) as usize * TX_SLOT;
        self.tx_req_cons += 1;
        let gref = self.tx.read_u32(at);
        let id_size = self.tx.read_u32(at + 8);
        Some((gref, (id_size >> 16) as u16, id_size as u16))
    }

    /// Publishes a transmit response.
    fn tx_respond(&mut self, id: u16, status: i16) {
        let at = RING + (self.tx_rsp_prod % 256) as usize * TX_SLOT;
        self.tx.write_u32(at, id as u32 | (status as u16 as u32) << 16);
        self.tx_rsp_prod += 1;
        self.tx.write_u32(RSP_PROD, self.tx_rsp_prod);
    }
}

fn post_all(b: &FakeBack, r: &mut NetfrontRings) {
    for id in 0..RX_IDS as u16 {
        r.post_rx(&b.rx, id, 1000 + id as u32).unwrap();
    }
    r.flush_rx(&b.rx);
}

#[test]
fn receives_and_reposts_across_wraps() {
    let (mut b, mut r) = FakeBack::new();
    post_all(&b, &mut r);
    assert_eq!(r.rx_posted(), 256);
    for n in 0..1000u32 {
        let (id, gref) = b.take_rx().expect("a posted buffer");
        assert_eq!(gref, 1000 + id as u32);
        b.rx_respond(id, 10, 0, 60 + (n % 1400) as i16);
        assert!(r.has_rx(&b.rx));
        let ev = r.next_rx(&b.rx).unwrap().unwrap();
        assert_eq!(ev, RxEvent::Frame { id, offset: 10, len: 60 + (n % 1400) as u16, flags: 0 });
        r.post_rx(&b.rx, id, gref).unwrap();
        r.flush_rx(&b.rx);
    }
    assert_eq!(r.next_rx(&b.rx), Ok(None));
    assert!(!r.arm_rx(&b.rx));
}

#[test]
fn back_end_errors_return_the_buffer() {
    let (mut b, mut r) = FakeBack::new();
    post_all(&b, &mut r);
    let (id, _) = b.take_rx().unwrap();
    b.rx_respond(id, 0, 0, crate::netif::NETIF_RSP_DROPPED);
    assert_eq!(r.next_rx(&b.rx), Ok(Some(RxEvent::Dropped { id })));
    assert_eq!(r.broken(), None);
}

#[test]
fn transmits_and_reclaims() {
    let (mut b, mut r) = FakeBack::new();
    for round in 0..3 {
        let mut ids = Vec::new();
        while let Some(id) = r.tx_alloc() {
            ids.push(id);
            r.tx_submit(&b.tx, id, 500 + id as u32, 100).unwrap();
        }
        assert_eq!(ids.len(), TX_IDS, "round {round}");
        assert_eq!(r.tx_submit(&b.tx, 0, 0, 100), Err(NetfrontError::Misuse)); // in flight
        while let Some((gref, size, id)) = b.take_tx() {
            assert_eq!((gref, size), (500 + id as u32, 100));
            b.tx_respond(id, 0);
        }
        assert_eq!(r.tx_reclaim(&b.tx), Ok(TX_IDS as u32));
        assert_eq!(r.tx_free(), TX_IDS);
    }
}

/// A named way for the back end to misbehave.
type Misbehaviour = (&'static str, fn(&mut FakeBack));

/// Each way a back end can break the receive ring, and what the front end must do:
/// report it, stay broken, hand out nothing more.
#[test]
fn misbehaving_receive_responses_break_the_device() {
    let cases: [Misbehaviour; 6] = [
        ("unknown id", |b| b.rx_respond(300, 0, 0, 60)),
        ("id not posted", |b| {
            let _ = b.take_rx();
            b.rx_respond(200, 0, 0, 60); // 200 was posted but the taken one was 0
            b.rx_respond(200, 0, 0, 60);
        }),
        ("oversize length", |b| {
            let (id, _) = b.take_rx().unwrap();
            b.rx_respond(id, 100, 0, 4000)
        }),
        ("bad status", |b| {
            let (id, _) = b.take_rx().unwrap();
            b.rx_respond(id, 0, 0, -7)
        }),
        ("more-data without scatter-gather", |b| {
            let (id, _) = b.take_rx().unwrap();
            b.rx_respond(id, 0, crate::netif::NETRXF_MORE_DATA, 60)
        }),
        ("producer past the requests", |b| b.rx.write_u32(RSP_PROD, 5000)),
    ];
    for (what, misbehave) in cases {
        let (mut b, mut r) = FakeBack::new();
        post_all(&b, &mut r);
        misbehave(&mut b);
        let mut got = Ok(None);
        for _ in 0..3 {
            got = r.next_rx(&b.rx);
            if got.is_err() {
                break;
            }
        }
        assert!(matches!(got, Err(NetfrontError::Broken(_))), "{what}: {got:?}");
        assert!(r.broken().is_some(), "{what}");
        assert!(matches!(r.next_rx(&b.rx), Err(NetfrontError::Broken(_))), "{what}: stays broken");
        assert!(!r.has_rx(&b.rx) && r.tx_alloc().is_none(), "{what}");
        assert!(matches!(r.post_rx(&b.rx, 0, 1), Err(NetfrontError::Broken(_))), "{what}");
    }
}

#[test]
fn duplicate_receive_response_breaks_the_device() {
    let (mut b, mut r) = FakeBack::new();
    post_all(&b, &mut r);
    let (id, _) = b.take_rx().unwrap();
    b.rx_respond(id, 0, 0, 60);
    b.rx_respond(id, 0, 0, 60);
    assert!(r.next_rx(&b.rx).unwrap().is_some());
    assert!(matches!(r.next_rx(&b.rx), Err(NetfrontError::Broken(Violation::Netif(_)))));
}

#[test]
fn receive_producer_going_backwards_breaks_the_device() {
    let (mut b, mut r) = FakeBack::new();
    post_all(&b, &mut r);
    let (id, _) = b.take_rx().unwrap();
    b.rx_respond(id, 0, 0, 60);
    assert!(r.next_rx(&b.rx).unwrap().is_some());
    b.rx.write_u32(RSP_PROD, 0);
    assert!(matches!(r.next_rx(&b.rx), Err(NetfrontError::Broken(Violation::Ring(_)))));
}

#[test]
fn misbehaving_transmit_responses_break_the_device() {
    for (what, id, status) in [("unknown id", 999u16, 0i16), ("id not in flight", 7, 0), ("bad status", 0, -9)] {
        let (mut b, mut r) = FakeBack::new();
        let sent = r.tx_alloc().unwrap();
        r.tx_submit(&b.tx, sent, 1, 64).unwrap();
        let _ = b.take_tx();
        b.tx_respond(id, status);
        assert!(matches!(r.tx_reclaim(&b.tx), Err(NetfrontError::Broken(_))), "{what}");
        assert!(r.tx_alloc().is_none() && matches!(r.tx_submit(&b.tx, 1, 1, 64), Err(NetfrontError::Broken(_))));
    }
    let (mut b, mut r) = FakeBack::new();
    let id = r.tx_alloc().unwrap();
    r.tx_submit(&b.tx, id, 1, 64).unwrap();
    b.tx.write_u32(RSP_PROD, 3); // three responses to one request
    let _ = &mut b;
    assert!(matches!(r.tx_reclaim(&b.tx), Err(NetfrontError::Broken(Violation::Ring(_)))));
}

#[test]
fn caller_mistakes_are_not_the_back_ends() {
    let (b, mut r) = FakeBack::new();
    assert_eq!(r.post_rx(&b.rx, 256, 1), Err(NetfrontError::Misuse));
    r.post_rx(&b.rx, 3, 1).unwrap();
    assert_eq!(r.post_rx(&b.rx, 3, 1), Err(NetfrontError::Misuse));
    let id = r.tx_alloc().unwrap();
    assert_eq!(r.tx_submit(&b.tx, id, 1, 0), Err(NetfrontError::Misuse));
    assert_eq!(r.tx_submit(&b.tx, id, 1, 5000), Err(NetfrontError::Misuse));
    assert_eq!(r.broken(), None);
}

/// Issue 11, item 4: a `NETIF_RSP_NULL` response was skipped without its id, so after
/// 256 of them transmit was `Busy` for good on a device that called itself healthy.
#[test]
fn a_null_transmit_response_breaks_the_device() {
    let (mut b, mut r) = FakeBack::new();
    let id = r.tx_alloc().unwrap();
    r.tx_submit(&b.tx, id, 1, 64).unwrap();
    let (_, _, got) = b.take_tx().unwrap();
    assert_eq!(got, id);
    b.tx_respond(id, crate::netif::NETIF_RSP_NULL);
    assert_eq!(r.tx_reclaim(&b.tx), Err(NetfrontError::Broken(Violation::NullTxResponse)));
    assert_eq!(r.broken(), Some(Violation::NullTxResponse));
    assert!(r.tx_alloc().is_none(), "broken, not silently Busy");
}

use crate::netif::{EXTRA_TYPE_GSO, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA};

/// With the offloads, one GSO packet: a first slot announcing more data and an
/// extra-info slot, the extra slot (whose buffer comes back by ring index), two more
/// data slots. Every buffer is in flight again once re-posted.
#[test]
fn a_multi_slot_packet_with_its_extra_info() {
    let (mut b, mut r) = FakeBack::new();
    r.enable_rx_offloads();
    post_all(&b, &mut r);
    for round in 0..300u32 {
        let first = NETRXF_MORE_DATA | NETRXF_EXTRA_INFO | NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED;
        let (a, _) = b.take_rx().unwrap();
        b.rx_respond(a, 0, first, 4096);
        let extra_id = r.rx_posted_at[(b.rx_req_cons % 256) as usize];
        b.rx_extra(EXTRA_TYPE_GSO, 0);
        let (c, _) = b.take_rx().unwrap();
        b.rx_respond(c, 0, NETRXF_MORE_DATA, 4096);
        let (d, _) = b.take_rx().unwrap();
        b.rx_respond(d, 0, 0, 100 + round as i16);
        let mut got = Vec::new();
        while let Some(ev) = r.next_rx(&b.rx).unwrap() {
            got.push((ev, r.rx_mid_packet()));
            let id = match ev {
                RxEvent::Frame { id, .. } | RxEvent::Dropped { id } | RxEvent::Extra { id, .. } => id,
            };
            r.post_rx(&b.rx, id, 1000 + id as u32).unwrap();
        }
        r.flush_rx(&b.rx);
        assert_eq!(got.len(), 4, "round {round}");
        assert_eq!(got[0], (RxEvent::Frame { id: a, offset: 0, len: 4096, flags: first }, true));
        assert!(matches!(got[1], (RxEvent::Extra { id, info }, true) if id == extra_id && info.ty == EXTRA_TYPE_GSO));
        assert_eq!(got[2], (RxEvent::Frame { id: c, offset: 0, len: 4096, flags: NETRXF_MORE_DATA }, true));
        assert_eq!(got[3], (RxEvent::Frame { id: d, offset: 0, len: 100 + round as u16, flags: 0 }, false));
        assert_eq!(r.rx_posted(), RX_IDS);
    }
}

/// A named misbehaviour and the violation it must be reported as.
type ExpectedViolation = (&'static str, fn(&mut FakeBack), Violation);

/// What a back end can get wrong about multi-slot packets and extra-info slots.
#[test]
fn misbehaving_multi_slot_packets_break_the_device() {
    let cases: [ExpectedViolation; 3] = [
        (
            "extra-info of an unknown type",
            |b| {
                let (a, _) = b.take_rx().unwrap();
                b.rx_respond(a, 0, NETRXF_EXTRA_INFO, 60);
                b.rx_extra(9, 0);
            },
            Violation::BadExtra { ty: 9 },
        ),
        (
            "extra-info announced mid-packet",
            |b| {
                let (a, _) = b.take_rx().unwrap();
                b.rx_respond(a, 0, NETRXF_MORE_DATA, 60);
                let (c, _) = b.take_rx().unwrap();
                b.rx_respond(c, 0, NETRXF_EXTRA_INFO, 60);
            },
            Violation::MisplacedExtra,
        ),
        (
            "extra-info slot whose buffer was answered already",
            |b| {
                let _ = b.take_rx().unwrap();
                // Answers with the id posted at the next index, which the extra slot uses.
                b.rx_respond(1, 0, NETRXF_EXTRA_INFO, 60);
                let at = RING + (b.rx_rsp_prod % 256) as usize * RX_SLOT;
                b.rx_req_cons += 1;
                b.rx.write_u32(at, EXTRA_TYPE_GSO as u32);
                b.rx_rsp_prod += 1;
                b.rx.write_u32(RSP_PROD, b.rx_rsp_prod);
            },
            Violation::Netif(crate::netif::NetifError::NotInFlight(1)),
        ),
    ];
    for (what, misbehave, want) in cases {
        let (mut b, mut r) = FakeBack::new();
        r.enable_rx_offloads();
        post_all(&b, &mut r);
        misbehave(&mut b);
        let mut got = Ok(None);
        for _ in 0..3 {
            got = r.next_rx(&b.rx);
            if got.is_err() {
                break;
            }
        }
        assert_eq!(got, Err(NetfrontError::Broken(want)), "{what}");
    }
}
