//! The generic shared ring of `io/ring.h`, front-end side: a 64-byte header of four
//! free-running indexes, then as many fixed-size slots as fit in the page, rounded down
//! to a power of two. The front end writes requests into slots and publishes
//! `req_prod`; the back end overwrites consumed slots with responses and publishes
//! `rsp_prod`. `req_event`/`rsp_event` hold notifications off until the other side
//! asks for one.
//!
//! [`FrontRing`] is generic over the slot size (the union of the request and response
//! structures, see [`crate::netif`]). It keeps its own copies of the indexes it owns,
//! reads the back end's `rsp_prod` once per poll, refuses one that moves backwards or
//! claims more responses than requests are outstanding (`RING_RESPONSE_PROD_OVERFLOW`,
//! made exact), and copies each response slot out once, byte by byte, into a local
//! array.

use crate::shared::SharedMem;
use core::mem::size_of;
use core::sync::atomic::{fence, Ordering};

/// The page a ring lives in.
pub const PAGE_SIZE: usize = 4096;
/// Offset of `req_prod`.
pub const REQ_PROD: usize = 0;
/// Offset of `req_event`.
pub const REQ_EVENT: usize = 4;
/// Offset of `rsp_prod`.
pub const RSP_PROD: usize = 8;
/// Offset of `rsp_event`.
pub const RSP_EVENT: usize = 12;
/// Offset of the `pvt` union (netif's `smartpoll_active`, unused here).
pub const PVT: usize = 16;
/// Offset of `ring[0]`: the header's size.
pub const RING: usize = 64;

/// The header of `struct *_sring`, for the layout checks.
#[repr(C)]
pub struct SringHeader {
    /// Requests published by the front end.
    pub req_prod: u32,
    /// The back end wants a notification when `req_prod` passes this.
    pub req_event: u32,
    /// Responses published by the back end.
    pub rsp_prod: u32,
    /// The front end wants a notification when `rsp_prod` passes this.
    pub rsp_event: u32,
    /// The `pvt` union.
    pub pvt: [u8; 4],
    /// `__pad`.
    pub pad: [u8; 44],
}
const _: () = assert!(size_of::<SringHeader>() == RING);

/// `__RD32`: `x` rounded down to a power of two (0 stays 0).
pub const fn round_down_pow2(x: u32) -> u32 {
    if x == 0 {
        0
    } else {
        1 << (31 - x.leading_zeros())
    }
}

/// `__CONST_RING_SIZE`: slots of `slot` bytes in a ring of `bytes` (0 if none fit).
pub const fn ring_size(bytes: usize, slot: usize) -> u32 {
    if slot == 0 || bytes <= RING {
        return 0;
    }
    let n = (bytes - RING) / slot;
    round_down_pow2(if n > u32::MAX as usize { u32::MAX } else { n as u32 })
}

/// Writes a request into a slot of `SLOT` bytes.
pub trait EncodeSlot<const SLOT: usize> {
    /// Fills `slot` (zeroed beforehand) with the request's wire form.
    fn encode(&self, slot: &mut [u8; SLOT]);
}

/// Reads a response from a local copy of a slot of `SLOT` bytes.
pub trait DecodeSlot<const SLOT: usize>: Sized {
    /// Parses the response; it may hold any values, so parsing cannot fail (check
    /// them afterwards).
    fn decode(slot: &[u8; SLOT]) -> Self;
}

/// The back end broke the ring protocol: mark the device broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// No free slot (not a protocol violation: wait for responses).
    Full,
    /// The shared memory is smaller than a page.
    TooSmall,
    /// `rsp_prod` moved backwards.
    Backwards {
        /// `rsp_prod` now.
        prod: u32,
        /// `rsp_prod` when last read.
        seen: u32,
    },
    /// `rsp_prod` claims responses to requests never published.
    Overflow {
        /// `rsp_prod` now.
        prod: u32,
        /// Our `rsp_cons`.
        cons: u32,
        /// Our published `req_prod`.
        req_prod: u32,
    },
}

/// The front end of a shared ring with `SLOT`-byte slots in one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontRing<const SLOT: usize> {
    size: u32,
    /// Next request slot to fill (`req_prod_pvt`).
    req_prod_pvt: u32,
    /// `req_prod` as last published.
    req_prod: u32,
    /// Next response to consume (`rsp_cons`).
    rsp_cons: u32,
    /// `rsp_prod` as last read and accepted.
    rsp_prod: u32,
}

impl<const SLOT: usize> FrontRing<SLOT> {
    /// Slots in the ring.
    pub const SIZE: u32 = ring_size(PAGE_SIZE, SLOT);
    const VALID: () = assert!(Self::SIZE > 0, "slot does not fit in a page");

    /// `XEN_FRONT_RING_INIT`: resets the shared header (`SHARED_RING_INIT`) and takes
    /// the front end's side, all indexes 0.
    pub fn init(mem: &impl SharedMem) -> Result<Self, RingError> {
        let () = Self::VALID;
        if mem.len() < PAGE_SIZE {
            return Err(RingError::TooSmall);
        }
        mem.write_u32(REQ_PROD, 0);
        mem.write_u32(RSP_PROD, 0);
        mem.write_u32(REQ_EVENT, 1);
        mem.write_u32(RSP_EVENT, 1);
        for off in (PVT..RING).step_by(4) {
            mem.write_u32(off, 0);
        }
        Ok(FrontRing { size: Self::SIZE, req_prod_pvt: 0, req_prod: 0, rsp_cons: 0, rsp_prod: 0 })
    }

    /// `RING_SIZE`.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// `req_prod_pvt`: the next request's index.
    pub fn req_prod_pvt(&self) -> u32 {
        self.req_prod_pvt
    }

    /// `rsp_cons`: the next response's index.
    pub fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }

    /// `RING_FREE_REQUESTS`.
    pub fn free_requests(&self) -> u32 {
        self.size.saturating_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// `RING_FULL`.
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Requests filled and not yet published.
    pub fn unpublished(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.req_prod)
    }

    /// Requests pushed (published or not) whose responses are not yet consumed.
    pub fn in_flight(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    fn slot(&self, idx: u32) -> usize {
        RING + (idx & (self.size - 1)) as usize * SLOT
    }

    /// Fills the next request slot with what `fill` writes into a zeroed local copy;
    /// returns the request's index. Not visible to the back end until pushed.
    pub fn push_request_with(
        &mut self,
        mem: &impl SharedMem,
        fill: impl FnOnce(&mut [u8; SLOT]),
    ) -> Result<u32, RingError> {
        if self.is_full() {
            return Err(RingError::Full);
        }
        let mut buf = [0u8; SLOT];
        fill(&mut buf);
        let base = self.slot(self.req_prod_pvt);
        for (i, b) in buf.iter().enumerate() {
            mem.write_u8(base + i, *b);
        }
        let idx = self.req_prod_pvt;
        self.req_prod_pvt = idx.wrapping_add(1);
        Ok(idx)
    }

    /// Fills the next request slot with `req`; returns its index.
    pub fn push_request(&mut self, mem: &impl SharedMem, req: &impl EncodeSlot<SLOT>) -> Result<u32, RingError> {
        self.push_request_with(mem, |slot| req.encode(slot))
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`: publishes the filled requests and returns
    /// true if the back end asked to be notified of them (`req_event` lies in the range
    /// just published). The old `req_prod` is our own copy, never read back.
    pub fn push_requests_and_check_notify(&mut self, mem: &impl SharedMem) -> bool {
        let (old, new) = (self.req_prod, self.req_prod_pvt);
        fence(Ordering::Release); // the back end sees the requests before the index
        mem.write_u32(REQ_PROD, new);
        self.req_prod = new;
        fence(Ordering::SeqCst); // the back end sees the index before we read req_event
        let event = mem.read_u32(REQ_EVENT);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// Reads `rsp_prod` once and validates it against what we published and consumed;
    /// returns the number of responses ready to take (`RING_HAS_UNCONSUMED_RESPONSES`).
    pub fn poll_responses(&mut self, mem: &impl SharedMem) -> Result<u32, RingError> {
        let prod = mem.read_u32(RSP_PROD);
        fence(Ordering::Acquire); // the index before the slots it publishes
        let ahead = prod.wrapping_sub(self.rsp_prod);
        let unanswered = self.req_prod.wrapping_sub(self.rsp_prod);
        if ahead > unanswered {
            return Err(if (ahead as i32) < 0 {
                RingError::Backwards { prod, seen: self.rsp_prod }
            } else {
                RingError::Overflow { prod, cons: self.rsp_cons, req_prod: self.req_prod }
            });
        }
        self.rsp_prod = prod;
        Ok(prod.wrapping_sub(self.rsp_cons))
    }

    /// Copies out the next response validated by the last [`FrontRing::poll_responses`]
    /// (`RING_COPY_RESPONSE`) and consumes it; `None` when there is none. Does not
    /// re-read `rsp_prod`.
    pub fn next_response(&mut self, mem: &impl SharedMem) -> Option<[u8; SLOT]> {
        if self.rsp_cons == self.rsp_prod {
            return None;
        }
        let base = self.slot(self.rsp_cons);
        let mut buf = [0u8; SLOT];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = mem.read_u8(base + i);
        }
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Some(buf)
    }

    /// [`FrontRing::next_response`], decoded.
    pub fn next_response_as<R: DecodeSlot<SLOT>>(&mut self, mem: &impl SharedMem) -> Option<R> {
        self.next_response(mem).map(|s| R::decode(&s))
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: if no response is ready, asks the back end to
    /// notify on the next one (`rsp_event = rsp_cons + 1`) and looks again, closing the
    /// race with a response published meanwhile. True if responses are ready.
    pub fn final_check_for_responses(&mut self, mem: &impl SharedMem) -> Result<bool, RingError> {
        if self.poll_responses(mem)? > 0 {
            return Ok(true);
        }
        mem.write_u32(RSP_EVENT, self.rsp_cons.wrapping_add(1));
        fence(Ordering::SeqCst); // rsp_event before re-reading rsp_prod
        Ok(self.poll_responses(mem)? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::FakePage;
    use core::mem::offset_of;

    /// An 8-byte test slot: request `[id, value]`, response `[id, value * 2]`.
    struct Req(u32, u32);
    impl EncodeSlot<8> for Req {
        fn encode(&self, s: &mut [u8; 8]) {
            s[..4].copy_from_slice(&self.0.to_le_bytes());
            s[4..].copy_from_slice(&self.1.to_le_bytes());
        }
    }
    #[derive(Debug, PartialEq)]
    struct Rsp(u32, u32);
    impl DecodeSlot<8> for Rsp {
        fn decode(s: &[u8; 8]) -> Self {
            Rsp(u32::from_le_bytes(s[..4].try_into().unwrap()), u32::from_le_bytes(s[4..].try_into().unwrap()))
        }
    }

    /// The back end: answers every published request, then does
    /// `RING_FINAL_CHECK_FOR_REQUESTS` and `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`.
    struct FakeBack {
        req_cons: u32,
        rsp_prod_pvt: u32,
    }
    impl FakeBack {
        fn new() -> Self {
            FakeBack { req_cons: 0, rsp_prod_pvt: 0 }
        }
        fn slot(i: u32) -> usize {
            RING + (i % FrontRing::<8>::SIZE) as usize * 8
        }
        /// Answers up to `max` requests; returns whether the front end wants a notification.
        fn serve(&mut self, mem: &FakePage, max: u32) -> bool {
            let prod = mem.read_u32(REQ_PROD);
            let mut n = 0;
            while self.req_cons != prod && n < max {
                let s = Self::slot(self.req_cons);
                let (id, v) = (mem.read_u32(s), mem.read_u32(s + 4));
                let r = Self::slot(self.rsp_prod_pvt);
                mem.write_u32(r, id);
                mem.write_u32(r + 4, v * 2);
                self.req_cons = self.req_cons.wrapping_add(1);
                self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
                n += 1;
            }
            mem.write_u32(REQ_EVENT, self.req_cons.wrapping_add(1));
            let old = mem.read_u32(RSP_PROD);
            let new = self.rsp_prod_pvt;
            mem.write_u32(RSP_PROD, new);
            new.wrapping_sub(mem.read_u32(RSP_EVENT)) < new.wrapping_sub(old)
        }
    }

    type Ring = FrontRing<8>;

    #[test]
    fn layout_matches_ring_h() {
        assert_eq!(offset_of!(SringHeader, req_prod), REQ_PROD);
        assert_eq!(offset_of!(SringHeader, req_event), REQ_EVENT);
        assert_eq!(offset_of!(SringHeader, rsp_prod), RSP_PROD);
        assert_eq!(offset_of!(SringHeader, rsp_event), RSP_EVENT);
        assert_eq!(offset_of!(SringHeader, pvt), PVT);
        assert_eq!(offset_of!(SringHeader, pad), 20);
        // (4096 - 64) / slot, rounded down to a power of two.
        assert_eq!([ring_size(4096, 8), ring_size(4096, 12), ring_size(4096, 112)], [256, 256, 32]);
        assert_eq!(
            [ring_size(4096, 4), ring_size(4096, 4032), ring_size(4096, 4033), ring_size(4096, 0)],
            [512, 1, 0, 0]
        );
        assert_eq!(
            [round_down_pow2(0), round_down_pow2(1), round_down_pow2(1000), round_down_pow2(u32::MAX)],
            [0, 1, 512, 1 << 31]
        );
    }

    #[test]
    fn init_resets_the_header() {
        let mem = FakePage::new(4096);
        mem.0.borrow_mut().fill(0xff);
        let r = Ring::init(&mem).unwrap();
        assert_eq!((mem.read_u32(REQ_PROD), mem.read_u32(REQ_EVENT), mem.read_u32(RSP_PROD)), (0, 1, 0));
        assert_eq!((mem.read_u32(RSP_EVENT), mem.read_u32(PVT), mem.read_u32(60)), (1, 0, 0));
        assert_eq!((r.size(), r.free_requests(), r.req_prod_pvt(), r.rsp_cons()), (256, 256, 0, 0));
        assert_eq!(Ring::init(&FakePage::new(100)), Err(RingError::TooSmall));
    }

    #[test]
    fn requests_and_responses_round_trip_across_wraparound() {
        let mem = FakePage::new(4096);
        let mut r = Ring::init(&mem).unwrap();
        let mut back = FakeBack::new();
        let mut next = 0u32;
        for round in 0..20 {
            let batch = 1 + round * 13 % 200;
            for _ in 0..batch {
                r.push_request(&mem, &Req(next, next + 1)).unwrap();
                next += 1;
            }
            r.push_requests_and_check_notify(&mem);
            back.serve(&mem, u32::MAX);
            assert_eq!(r.poll_responses(&mem), Ok(batch));
            let first = next - batch;
            for i in first..next {
                assert_eq!(r.next_response_as::<Rsp>(&mem), Some(Rsp(i, 2 * (i + 1))));
            }
            assert_eq!(r.next_response(&mem), None);
            assert_eq!(r.in_flight(), 0);
        }
    }

    #[test]
    fn full_ring_refuses_more() {
        let mem = FakePage::new(4096);
        let mut r = Ring::init(&mem).unwrap();
        for i in 0..256 {
            r.push_request(&mem, &Req(i, 0)).unwrap();
        }
        assert!(r.is_full());
        assert_eq!(r.push_request(&mem, &Req(0, 0)), Err(RingError::Full));
        r.push_requests_and_check_notify(&mem);
        FakeBack::new().serve(&mem, 1);
        assert_eq!(r.poll_responses(&mem), Ok(1));
        assert!(r.next_response(&mem).is_some());
        assert_eq!(r.free_requests(), 1);
        assert_eq!(r.push_request_with(&mem, |s| s[0] = 9), Ok(256));
    }

    #[test]
    fn notify_follows_req_event() {
        let mem = FakePage::new(4096);
        let mut r = Ring::init(&mem).unwrap();
        // req_event = 1 initially: the first request needs a notification.
        r.push_request(&mem, &Req(0, 0)).unwrap();
        assert!(r.push_requests_and_check_notify(&mem));
        // The back end has not caught up (req_event still 1): no more notifications.
        r.push_request(&mem, &Req(1, 0)).unwrap();
        assert!(!r.push_requests_and_check_notify(&mem));
        assert!(!r.push_requests_and_check_notify(&mem), "nothing new");
        // The back end asks to hear about request 5 (index 4) and beyond.
        mem.write_u32(REQ_EVENT, 5);
        r.push_request(&mem, &Req(2, 0)).unwrap();
        assert!(!r.push_requests_and_check_notify(&mem));
        r.push_request(&mem, &Req(3, 0)).unwrap();
        r.push_request(&mem, &Req(4, 0)).unwrap();
        assert!(r.push_requests_and_check_notify(&mem), "req_event 5 lies in (3, 5]");
    }

    #[test]
    fn final_check_sets_rsp_event_and_sees_late_responses() {
        let mem = FakePage::new(4096);
        let mut r = Ring::init(&mem).unwrap();
        let mut back = FakeBack::new();
        r.push_request(&mem, &Req(0, 0)).unwrap();
        r.push_request(&mem, &Req(1, 0)).unwrap();
        r.push_requests_and_check_notify(&mem);
        assert_eq!(r.final_check_for_responses(&mem), Ok(false));
        assert_eq!(mem.read_u32(RSP_EVENT), 1);
        assert!(back.serve(&mem, 1), "rsp_event 1: the back end notifies");
        assert_eq!(r.final_check_for_responses(&mem), Ok(true));
        r.next_response(&mem).unwrap();
        assert_eq!(r.final_check_for_responses(&mem), Ok(false));
        assert_eq!(mem.read_u32(RSP_EVENT), 2);
        assert!(back.serve(&mem, 1));
        r.poll_responses(&mem).unwrap();
        r.next_response(&mem).unwrap();
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn misbehaving_producers_are_refused() {
        let mem = FakePage::new(4096);
        let mut r = Ring::init(&mem).unwrap();
        for i in 0..4 {
            r.push_request(&mem, &Req(i, 0)).unwrap();
        }
        // Responses to requests filled but not yet published.
        mem.write_u32(RSP_PROD, 1);
        assert_eq!(r.poll_responses(&mem), Err(RingError::Overflow { prod: 1, cons: 0, req_prod: 0 }));
        r.push_requests_and_check_notify(&mem);
        mem.write_u32(RSP_PROD, 5);
        assert_eq!(r.poll_responses(&mem), Err(RingError::Overflow { prod: 5, cons: 0, req_prod: 4 }));
        mem.write_u32(RSP_PROD, 1000);
        assert!(matches!(r.poll_responses(&mem), Err(RingError::Overflow { .. })));
        mem.write_u32(RSP_PROD, 3);
        assert_eq!(r.poll_responses(&mem), Ok(3));
        r.next_response(&mem).unwrap();
        // Backwards, still ahead of rsp_cons; and behind rsp_cons.
        mem.write_u32(RSP_PROD, 2);
        assert_eq!(r.poll_responses(&mem), Err(RingError::Backwards { prod: 2, seen: 3 }));
        mem.write_u32(RSP_PROD, 0);
        assert_eq!(r.poll_responses(&mem), Err(RingError::Backwards { prod: 0, seen: 3 }));
        mem.write_u32(RSP_PROD, u32::MAX);
        assert!(r.poll_responses(&mem).is_err());
        assert!(r.final_check_for_responses(&mem).is_err());
        // The refused values changed nothing.
        assert_eq!((r.rsp_cons(), r.in_flight()), (1, 3));
        let mut n = 0;
        while r.next_response(&mem).is_some() {
            n += 1;
        }
        assert_eq!(n, 2, "only the responses accepted before");
    }

    #[test]
    fn indexes_wrap_at_u32_max() {
        let mem = FakePage::new(4096);
        let mut r = Ring::init(&mem).unwrap();
        let start = u32::MAX - 2;
        r.req_prod_pvt = start;
        r.req_prod = start;
        r.rsp_cons = start;
        r.rsp_prod = start;
        mem.write_u32(REQ_PROD, start);
        mem.write_u32(RSP_PROD, start);
        let mut back = FakeBack { req_cons: start, rsp_prod_pvt: start };
        for i in 0..6 {
            r.push_request(&mem, &Req(i, i)).unwrap();
        }
        r.push_requests_and_check_notify(&mem);
        back.serve(&mem, u32::MAX);
        assert_eq!(r.poll_responses(&mem), Ok(6));
        assert_eq!(r.next_response_as::<Rsp>(&mem), Some(Rsp(0, 0)));
        assert_eq!(r.rsp_cons(), u32::MAX - 1);
    }
}
