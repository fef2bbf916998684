//! Seeded fuzzing of the network rings: the response checks and slot codecs of
//! [`xen_iface::netif`], and the netfront's two rings ([`NetfrontRings`]) against a fake
//! netback that is honest in some cases and, in the others, answers with random ids,
//! statuses, offsets, lengths and flags, moves its producer indexes at random, and races
//! the front end's single accesses.
//!
//! Properties: no panic; accesses only inside each page and to the front end's own parts
//! of it, a bounded number per call; a frame handed to the driver lies inside its page
//! and belongs to a buffer it posted, once; transmit ids are conserved; the first
//! violation breaks the device for good and every later call says so; misuse by the
//! driver is told apart from the back end's faults; and with an honest netback every
//! buffer and packet comes back exactly. See `fuzz/mod.rs` for the seed, budget and replay.

mod fakemem;
mod fuzz;
mod regressions;

use fakemem::CheckedPage;
use fuzz::{run, Rng};
use std::collections::{BTreeSet, VecDeque};
use xen_iface::netfront::{NetfrontError, NetfrontRings, RxEvent, RX_IDS, TX_IDS};
use xen_iface::netif::*;
use xen_iface::ring::{DecodeSlot, EncodeSlot, PAGE_SIZE, REQ_PROD, RING, RSP_EVENT, RSP_PROD};

/// The response checks against a model of the rules in `netif.h`, the in-flight id set
/// against a `BTreeSet`, and the slot codecs against the header's layout.
#[test]
fn netif_checks() {
    run("netif_checks", regressions::NETIF_CHECKS, |rng| {
        let (mut set, mut model) = (IdSet::new(), BTreeSet::new());
        let id = |rng: &mut Rng| if rng.coin() { rng.below(260) as u16 } else { rng.edge_u16() };
        for _ in 0..rng.len(400) {
            let i = id(rng);
            match rng.below(3) {
                0 => assert_eq!(set.insert(i), i < 256 && model.insert(i), "insert {i}"),
                1 => assert_eq!(set.remove(i), model.remove(&i), "remove {i}"),
                _ => assert_eq!(set.contains(i), model.contains(&i), "contains {i}"),
            }
            assert_eq!((set.len(), set.is_empty()), (model.len(), model.is_empty()));
        }
        let status = |rng: &mut Rng| match rng.below(3) {
            0 => *rng.pick(&[NETIF_RSP_NULL, NETIF_RSP_OKAY, NETIF_RSP_ERROR, NETIF_RSP_DROPPED, -3, 2]),
            1 => rng.range(0, 4200) as i16,
            _ => rng.edge_u16() as i16,
        };
        for _ in 0..16 {
            let rsp = TxResponse { id: id(rng), status: status(rng) };
            let want = match rsp.status {
                NETIF_RSP_NULL => Ok(TxOutcome::Null),
                s @ (NETIF_RSP_OKAY | NETIF_RSP_ERROR | NETIF_RSP_DROPPED) => {
                    let status = [TxStatus::Okay, TxStatus::Error, TxStatus::Dropped][-s as usize];
                    if rsp.id >= 256 {
                        Err(NetifError::IdOutOfRange(rsp.id))
                    } else if !model.contains(&rsp.id) {
                        Err(NetifError::NotInFlight(rsp.id))
                    } else {
                        Ok(TxOutcome::Done { id: rsp.id, status })
                    }
                }
                s => Err(NetifError::BadStatus(s)),
            };
            assert_eq!(check_tx_response(&rsp, &set), want, "{rsp:?}");

            let flags = if rng.coin() { rng.below(1 << 5) as u16 } else { rng.edge_u16() };
            let rsp = RxResponse { id: id(rng), offset: rng.edge_u16() % 4200, flags, status: status(rng) };
            let want = if rsp.id >= 256 {
                Err(NetifError::IdOutOfRange(rsp.id))
            } else if !model.contains(&rsp.id) {
                Err(NetifError::NotInFlight(rsp.id))
            } else if rsp.flags & !0x1f != 0 {
                Err(NetifError::BadFlags(rsp.flags))
            } else if rsp.status == NETIF_RSP_ERROR || rsp.status == NETIF_RSP_DROPPED {
                Ok(RxOutcome::Error { id: rsp.id, status: rsp.status })
            } else if rsp.status < 0 {
                Err(NetifError::BadStatus(rsp.status))
            } else if rsp.offset as usize + rsp.status as usize > PAGE_SIZE {
                Err(NetifError::BadLength { offset: rsp.offset, len: rsp.status as u16 })
            } else {
                Ok(RxOutcome::Data { id: rsp.id, offset: rsp.offset, len: rsp.status as u16, flags: rsp.flags })
            };
            assert_eq!(check_rx_response(&rsp, &set), want, "{rsp:?}");
        }
        // Slots: responses decode any bytes field by field; requests encode to the layout.
        let le16 = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let s: [u8; TX_SLOT] = rng.bytes(TX_SLOT).try_into().unwrap();
        assert_eq!(TxResponse::decode(&s), TxResponse { id: le16(&s, 0), status: le16(&s, 2) as i16 });
        let r: [u8; RX_SLOT] = rng.bytes(RX_SLOT).try_into().unwrap();
        let want = RxResponse { id: le16(&r, 0), offset: le16(&r, 2), flags: le16(&r, 4), status: le16(&r, 6) as i16 };
        assert_eq!(RxResponse::decode(&r), want);
        let e = ExtraInfo::decode(&r);
        assert_eq!((e.ty, e.flags, &e.data[..]), (r[0], r[1], &r[2..]));
        let req = TxRequest { gref: rng.u32(), offset: rng.u16(), flags: rng.u16(), id: rng.u16(), size: rng.u16() };
        let mut s = [0u8; TX_SLOT];
        req.encode(&mut s);
        let want = [&req.gref.to_le_bytes()[..], &req.offset.to_le_bytes(), &req.flags.to_le_bytes()].concat();
        assert_eq!((&s[..8], le16(&s, 8), le16(&s, 10)), (&want[..], req.id, req.size));
        let req = RxRequest { id: rng.u16(), pad: rng.u16(), gref: rng.u32() };
        let mut s = [0u8; RX_SLOT];
        req.encode(&mut s);
        assert_eq!((le16(&s, 0), le16(&s, 2), &s[4..]), (req.id, req.pad, &req.gref.to_le_bytes()[..]));
    });
}

/// Most accesses one netfront call may make: every tx response of a full ring, and the
/// indexes.
const CALL_BUDGET: usize = TX_IDS * TX_SLOT + 16;

/// The back end's side of both rings.
struct Netback {
    rng: Rng,
    tx: CheckedPage,
    rx: CheckedPage,
    tx_cons: u32,
    tx_prod: u32,
    rx_cons: u32,
    rx_prod: u32,
    /// Receive buffers taken from the ring, not yet answered: (id, gref).
    rx_taken: VecDeque<(u16, u32)>,
    /// Receive buffers answered (for duplicates).
    rx_answered: VecDeque<u16>,
}

fn slot_at(i: u32, slot: usize) -> usize {
    RING + (i % 256) as usize * slot
}

impl Netback {
    /// Answers some posted receive buffers; returns the events an honest answer means.
    fn receive(&mut self, honest: bool) -> Vec<RxEvent> {
        let avail = self.rx.get_u32(REQ_PROD).wrapping_sub(self.rx_cons).min(RX_IDS as u32);
        for _ in 0..self.rng.range(0, avail as u64) {
            let at = slot_at(self.rx_cons, RX_SLOT);
            self.rx_taken.push_back((self.rx.get_u16(at), self.rx.get_u32(at + 4)));
            self.rx_cons = self.rx_cons.wrapping_add(1);
        }
        let mut events = Vec::new();
        for _ in 0..self.rng.range(0, self.rx_taken.len() as u64) {
            let (id, gref) = self.rx_taken.pop_front().unwrap();
            assert!(!honest || gref == 1000 + id as u32, "buffer {id} posted as {gref}");
            let rng = &mut self.rng;
            let (offset, flags, status, ev) = if rng.one_in(8) {
                let s = *rng.pick(&[NETIF_RSP_ERROR, NETIF_RSP_DROPPED]);
                (rng.u16() % 4096, 0, s, RxEvent::Dropped { id })
            } else {
                let offset = rng.range(0, 4096) as u16;
                let len = rng.range(0, 4096 - offset as u64) as u16;
                let flags = *rng.pick(&[0, NETRXF_DATA_VALIDATED, NETRXF_CSUM_BLANK, 3]);
                (offset, flags, len as i16, RxEvent::Frame { id, offset, len, flags })
            };
            self.rx_respond(id, offset, flags, status);
            self.rx_answered.push_back(id);
            events.push(ev);
        }
        if honest || self.rng.coin() {
            self.rx.put_u32(RSP_PROD, self.rx_prod);
        }
        events
    }

    fn rx_respond(&mut self, id: u16, offset: u16, flags: u16, status: i16) {
        let at = slot_at(self.rx_prod, RX_SLOT);
        for (i, v) in [id, offset, flags, status as u16].into_iter().enumerate() {
            self.rx.put_u16(at + 2 * i, v);
        }
        self.rx_prod = self.rx_prod.wrapping_add(1);
    }

    /// Sends some queued packets (checking them against `sizes` when honest); returns
    /// how many answers it published.
    fn transmit(&mut self, honest: bool, sizes: &mut VecDeque<(u16, u16)>) -> u32 {
        let avail = self.tx.get_u32(REQ_PROD).wrapping_sub(self.tx_cons).min(TX_IDS as u32);
        let mut n = 0;
        for _ in 0..self.rng.range(0, avail as u64) {
            let at = slot_at(self.tx_cons, TX_SLOT);
            let (offset, flags) = (self.tx.get_u16(at + 4), self.tx.get_u16(at + 6));
            let (id, size) = (self.tx.get_u16(at + 8), self.tx.get_u16(at + 10));
            if honest {
                assert_eq!((offset, flags), (0, 0), "one slot per packet, from the buffer's start");
                assert_eq!(Some((id, size)), sizes.pop_front(), "the packet as submitted");
            }
            self.tx_cons = self.tx_cons.wrapping_add(1);
            let status = *self.rng.pick(&[NETIF_RSP_OKAY, NETIF_RSP_OKAY, NETIF_RSP_ERROR, NETIF_RSP_DROPPED]);
            self.tx_respond(id, status);
            n += 1;
        }
        self.tx.put_u32(RSP_PROD, self.tx_prod);
        n
    }

    fn tx_respond(&mut self, id: u16, status: i16) {
        let at = slot_at(self.tx_prod, TX_SLOT);
        self.tx.put_u16(at, id);
        self.tx.put_u16(at + 2, status as u16);
        self.tx_prod = self.tx_prod.wrapping_add(1);
    }

    /// One misdeed: mostly a corrupted answer to a request the netback took, so that the
    /// front end's checks (not only its index checks) are what stops it.
    fn misbehave(&mut self) {
        let rng = &mut self.rng;
        let any_id = if rng.coin() { rng.below(256) as u16 } else { rng.edge_u16() };
        match rng.below(8) {
            0 | 1 => {
                if self.rx_taken.is_empty() && self.rx.get_u32(REQ_PROD) != self.rx_cons {
                    self.rx_taken.push_back((self.rx.get_u16(slot_at(self.rx_cons, RX_SLOT)), 0));
                    self.rx_cons = self.rx_cons.wrapping_add(1);
                }
                let id = self.rx_taken.pop_front().map_or(any_id, |(id, _)| id);
                let (mut id, mut offset, mut flags, mut status) = (id, 0u16, 0u16, 60i16);
                match rng.below(6) {
                    0 => id = any_id,
                    1 => id = self.rx_answered.back().copied().unwrap_or(any_id), // a duplicate
                    2 => {
                        offset = rng.range(1, 4096) as u16;
                        status = (4097 - offset as i16).saturating_add(rng.len(100) as i16);
                    }
                    3 => flags = *rng.pick(&[NETRXF_MORE_DATA, NETRXF_EXTRA_INFO, NETRXF_GSO_PREFIX, 0x20, 0x8000]),
                    4 => status = *rng.pick(&[-3, -100, i16::MIN]),
                    _ => (offset, flags, status) = (rng.edge_u16(), rng.edge_u16(), rng.edge_u16() as i16),
                }
                self.rx_respond(id, offset, flags, status);
                self.rx.put_u32(RSP_PROD, self.rx_prod);
            }
            2 => {
                // Answer the next transmit request wrongly (or one never sent).
                let avail = self.tx.get_u32(REQ_PROD) != self.tx_cons;
                let mut id = any_id;
                if avail {
                    id = self.tx.get_u16(slot_at(self.tx_cons, TX_SLOT) + 8);
                    self.tx_cons = self.tx_cons.wrapping_add(1);
                }
                let status = match rng.below(3) {
                    0 => {
                        id = if rng.coin() { any_id } else { id };
                        NETIF_RSP_OKAY
                    }
                    1 => *rng.pick(&[NETIF_RSP_NULL, -3, 2, i16::MIN]),
                    _ => rng.edge_u16() as i16,
                };
                self.tx_respond(id, status);
                self.tx.put_u32(RSP_PROD, self.tx_prod);
            }
            3 => self.rx.put_u32(RSP_PROD, self.rx_prod.wrapping_add(rng.edge_u32())),
            4 => self.tx.put_u32(RSP_PROD, self.tx_prod.wrapping_sub(rng.range(1, 3) as u32)),
            5 => {
                let page = if rng.coin() { &self.rx } else { &self.tx };
                page.put_u8(RING + rng.index(PAGE_SIZE - RING), rng.u8());
            }
            _ => {
                // Race the front end's accesses to one of the rings.
                let mut r = rng.fork();
                let odds = r.range(2, 50);
                let tamper: fakemem::Tamper = Box::new(move |b: &mut [u8]| {
                    if r.one_in(odds) {
                        let at = if r.coin() { RSP_PROD } else { RING + 4 * r.index((PAGE_SIZE - RING) / 4) };
                        let v = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) ^ (1 << r.below(32));
                        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    }
                });
                let page = if rng.coin() { &self.rx } else { &self.tx };
                page.set_tamper(Some(tamper));
            }
        }
    }
}

/// The driver's view and the checks of one call's result; the netfront under test.
struct Driver {
    rings: NetfrontRings,
    /// Receive buffers posted and not returned.
    posted: BTreeSet<u16>,
    /// Transmit ids from `tx_alloc`, not submitted.
    allocated: Vec<u16>,
    /// Transmit ids submitted since the last reclaim (surely still in flight).
    recent: BTreeSet<u16>,
    /// Transmit ids submitted and not yet reclaimed, in total.
    tx_in_flight: usize,
    /// Packets the honest netback must see: (id, size).
    sizes: VecDeque<(u16, u16)>,
}

impl Driver {
    /// Checks that a broken device stays broken: the same violation, every call refused.
    fn check_broken(&mut self, b: &Netback) {
        let Some(v) = self.rings.broken() else { return };
        let dead: Result<(), _> = Err(NetfrontError::Broken(v));
        assert_eq!(self.rings.next_rx(&b.rx), dead.map(|()| None));
        assert_eq!(self.rings.post_rx(&b.rx, 0, 1), dead);
        assert_eq!(self.rings.tx_submit(&b.tx, 0, 1, 60), dead.map(|()| false));
        assert_eq!(self.rings.tx_reclaim(&b.tx), dead.map(|()| 0));
        assert!(self.rings.tx_alloc().is_none() && !self.rings.has_rx(&b.rx) && !self.rings.arm_rx(&b.rx));
        assert!(!self.rings.flush_rx(&b.rx));
        assert_eq!(self.rings.broken(), Some(v), "the first violation is kept");
    }
}

/// The netfront's rings against an honest, a hostile and a racing netback.
#[test]
fn netfront_hostile() {
    run("netfront_hostile", regressions::NETFRONT_HOSTILE, |rng| {
        let (tx, rx) = (CheckedPage::from_bytes(rng.bytes(PAGE_SIZE)), CheckedPage::from_bytes(rng.bytes(PAGE_SIZE)));
        let rings = NetfrontRings::new(&tx, &rx).expect("two pages");
        tx.own(&[REQ_PROD..REQ_PROD + 4, RSP_EVENT..RSP_EVENT + 4, RING..RING + TX_IDS * TX_SLOT]);
        rx.own(&[REQ_PROD..REQ_PROD + 4, RSP_EVENT..RSP_EVENT + 4, RING..RING + RX_IDS * RX_SLOT]);
        let hostility = if rng.one_in(4) { 0 } else { rng.range(1, 16) };
        let mut b = Netback {
            rng: rng.fork(),
            tx,
            rx,
            tx_cons: 0,
            tx_prod: 0,
            rx_cons: 0,
            rx_prod: 0,
            rx_taken: VecDeque::new(),
            rx_answered: VecDeque::new(),
        };
        let mut d = Driver {
            rings,
            posted: BTreeSet::new(),
            allocated: Vec::new(),
            recent: BTreeSet::new(),
            tx_in_flight: 0,
            sizes: VecDeque::new(),
        };
        let mut honest = hostility == 0;
        let (mut rx_expected, mut tx_answered) = (VecDeque::new(), 0u32);
        for step in 0..rng.range(1, 150) {
            // The netback.
            if hostility != 0 && b.rng.one_in(hostility) {
                honest = false;
                b.misbehave();
            } else if b.rng.coin() {
                rx_expected.extend(b.receive(honest));
                tx_answered += b.transmit(honest, &mut d.sizes);
            }
            // The driver.
            let was_broken = d.rings.broken();
            b.tx.budget(CALL_BUDGET);
            b.rx.budget(CALL_BUDGET);
            match rng.below(7) {
                0 => {
                    // Post a buffer: usually a free id, sometimes a posted or impossible one.
                    let id = match rng.below(6) {
                        0 => rng.edge_u16(),
                        1 => d.posted.iter().next().copied().unwrap_or(0),
                        _ => rng.below(256) as u16,
                    };
                    let r = d.rings.post_rx(&b.rx, id, 1000 + id as u32);
                    if was_broken.is_none() {
                        if id as usize >= RX_IDS || d.posted.contains(&id) {
                            assert_eq!(r, Err(NetfrontError::Misuse), "post_rx {id}");
                        } else {
                            assert_eq!(r, Ok(()), "post_rx {id}");
                            d.posted.insert(id);
                        }
                    }
                }
                1 => {
                    d.rings.flush_rx(&b.rx);
                }
                2 => match d.rings.next_rx(&b.rx) {
                    Ok(Some(ev)) => {
                        let (RxEvent::Frame { id, .. } | RxEvent::Dropped { id } | RxEvent::Extra { id, .. }) = ev;
                        assert!(d.posted.remove(&id), "{ev:?}: a buffer not posted, or returned twice");
                        if let RxEvent::Frame { offset, len, .. } = ev {
                            assert!(offset as usize + len as usize <= PAGE_SIZE, "{ev:?} runs off the page");
                        }
                        if honest {
                            assert_eq!(Some(ev), rx_expected.pop_front(), "step {step}");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => assert!(matches!(e, NetfrontError::Broken(_)) && d.rings.broken().is_some(), "{e:?}"),
                },
                3 => {
                    if rng.coin() {
                        d.rings.has_rx(&b.rx);
                    } else {
                        d.rings.arm_rx(&b.rx);
                    }
                }
                4 => {
                    let free = d.rings.tx_free();
                    match d.rings.tx_alloc() {
                        Some(id) => {
                            assert!((id as usize) < TX_IDS && !d.allocated.contains(&id) && !d.recent.contains(&id));
                            assert_eq!(d.rings.tx_free(), free - 1);
                            d.allocated.push(id);
                        }
                        None => assert!(was_broken.is_some() || free == 0),
                    }
                }
                5 => {
                    // Submit an allocated id; sometimes a bad length or an id in flight.
                    let len = match rng.below(8) {
                        0 => *rng.pick(&[0, 4097, u16::MAX]),
                        _ => rng.range(1, 4096) as u16,
                    };
                    let (id, fresh) = match d.recent.iter().next() {
                        Some(&id) if rng.one_in(6) => (id, false),
                        _ => match d.allocated.pop() {
                            Some(id) => (id, true),
                            None => continue,
                        },
                    };
                    let r = d.rings.tx_submit(&b.tx, id, 500 + id as u32, len);
                    if was_broken.is_some() {
                        assert!(matches!(r, Err(NetfrontError::Broken(_))));
                    } else if !fresh || len == 0 || len > 4096 {
                        assert_eq!(r, Err(NetfrontError::Misuse), "tx_submit {id} len {len}");
                    } else {
                        assert!(r.is_ok(), "tx_submit {id} len {len}: {r:?}");
                        d.recent.insert(id);
                        d.tx_in_flight += 1;
                        d.sizes.push_back((id, len));
                    }
                    if fresh && r.is_err() {
                        d.allocated.push(id); // still ours
                    }
                }
                _ => match d.rings.tx_reclaim(&b.tx) {
                    Ok(n) => {
                        assert!(n as usize <= d.tx_in_flight, "{n} reclaimed, {} in flight", d.tx_in_flight);
                        d.tx_in_flight -= n as usize;
                        d.recent.clear();
                        if honest {
                            assert_eq!(n, tx_answered, "every answer reclaimed");
                        }
                        tx_answered = 0;
                    }
                    Err(e) => assert!(matches!(e, NetfrontError::Broken(_)), "{e:?}"),
                },
            }
            if honest {
                assert_eq!(d.rings.broken(), None, "an honest netback broke the device at step {step}");
            }
            if let Some(v) = was_broken {
                assert_eq!(d.rings.broken(), Some(v));
            }
            assert_eq!(d.rings.rx_posted(), d.posted.len());
            if d.rings.broken().is_none() {
                // Transmit ids are conserved: free, allocated, or in flight.
                assert_eq!(d.rings.tx_free() + d.allocated.len() + d.tx_in_flight, TX_IDS);
            }
            d.check_broken(&b);
        }
    });
}
