//! The xenstore page (`struct xenstore_domain_interface`, `io/xs_wire.h`): two 1 KiB
//! byte rings, `req` (guest to xenstored) and `rsp` (replies and watch events), each
//! with a free-running producer and consumer index.
//!
//! [`XsRing`] is the guest's side: a [`crate::byte_ring`] producer on `req` and consumer
//! on `rsp`. It keeps its own producer (`req_prod`) and consumer (`rsp_cons`) and never
//! reads them back; xenstored's indexes are read once per call and refused if they claim
//! more than the ring holds or move backwards. The caller notifies xenstored's event
//! channel whenever a call moved bytes.

use super::reply::Decoder;
use super::Error;
use crate::byte_ring::{Consumer, IndexError, Layout, Producer};
use crate::shared::SharedMem;
use core::mem::size_of;

/// `XENSTORE_RING_SIZE`: bytes in each ring.
pub const RING_SIZE: usize = 1024;
/// Offset of `req`.
pub const REQ: usize = 0;
/// Offset of `rsp`.
pub const RSP: usize = RING_SIZE;
/// Offset of `req_cons` (xenstored's).
pub const REQ_CONS: usize = 2 * RING_SIZE;
/// Offset of `req_prod` (ours).
pub const REQ_PROD: usize = REQ_CONS + 4;
/// Offset of `rsp_cons` (ours).
pub const RSP_CONS: usize = REQ_CONS + 8;
/// Offset of `rsp_prod` (xenstored's).
pub const RSP_PROD: usize = REQ_CONS + 12;
/// Offset of `server_features`.
pub const SERVER_FEATURES: usize = REQ_CONS + 16;
/// Offset of `connection`.
pub const CONNECTION: usize = REQ_CONS + 20;
/// Offset of `error`.
pub const ERROR: usize = REQ_CONS + 24;
/// Bytes of `struct xenstore_domain_interface`.
pub const INTERFACE_SIZE: usize = REQ_CONS + 28;

/// `XENSTORE_SERVER_FEATURE_RECONNECTION`.
pub const FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`: the `error` field is valid.
pub const FEATURE_ERROR: u32 = 2;
/// `XENSTORE_CONNECTED`: the steady state of `connection`.
pub const CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`: a reconnect is in progress.
pub const RECONNECT: u32 = 1;
/// `XENSTORE_ERROR_NONE`.
pub const ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`: communication problem.
pub const ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`: invalid ring index.
pub const ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`: protocol violation (payload too long).
pub const ERROR_PROTO: u32 = 3;

/// `struct xenstore_domain_interface`, for the layout checks; the page is only ever
/// accessed through [`SharedMem`] at the offsets above.
#[repr(C)]
pub struct DomainInterface {
    /// Requests to xenstored.
    pub req: [u8; RING_SIZE],
    /// Replies and watch events.
    pub rsp: [u8; RING_SIZE],
    /// xenstored's consumer index into `req`.
    pub req_cons: u32,
    /// Our producer index into `req`.
    pub req_prod: u32,
    /// Our consumer index into `rsp`.
    pub rsp_cons: u32,
    /// xenstored's producer index into `rsp`.
    pub rsp_prod: u32,
    /// `XENSTORE_SERVER_FEATURE_*` bits.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
}
const _: () = assert!(size_of::<DomainInterface>() == INTERFACE_SIZE);

/// Where `req` and its indexes are.
const REQ_RING: Layout = Layout { data: REQ, size: RING_SIZE as u32, prod: REQ_PROD, cons: REQ_CONS };
/// Where `rsp` and its indexes are.
const RSP_RING: Layout = Layout { data: RSP, size: RING_SIZE as u32, prod: RSP_PROD, cons: RSP_CONS };
const _: () = assert!(RING_SIZE.is_power_of_two());

impl From<IndexError> for Error {
    fn from(e: IndexError) -> Self {
        Error::RingIndex { prod: e.prod, cons: e.cons }
    }
}

/// The guest's side of the two rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsRing {
    req: Producer,
    rsp: Consumer,
}

impl Default for XsRing {
    fn default() -> Self {
        Self::new()
    }
}

impl XsRing {
    /// A ring not yet attached to a page (all indexes 0).
    pub const fn new() -> Self {
        // Attaching to a zeroed page gives exactly this.
        XsRing { req: Producer::detached(REQ_RING), rsp: Consumer::detached(RSP_RING) }
    }

    /// Takes over the page as left by the toolstack or an earlier boot stage. Requests
    /// still in `req` stay there for xenstored; replies still in `rsp` answer requests
    /// this kernel never sent and are skipped (as Linux does). Writes nothing if it
    /// refuses the indexes.
    pub fn attach(mem: &impl SharedMem) -> Result<Self, Error> {
        let req = Producer::attach(mem, REQ_RING)?;
        let mut rsp = Consumer::attach(mem, RSP_RING)?;
        rsp.skip(mem);
        Ok(XsRing { req, rsp })
    }

    /// Copies as much of `bytes` into `req` as there is room for and publishes it;
    /// returns how many were taken (0 when the ring is full).
    pub fn write(&mut self, mem: &impl SharedMem, bytes: &[u8]) -> Result<usize, Error> {
        Ok(self.req.write(mem, bytes)?)
    }

    /// True when xenstored has consumed every request byte written.
    pub fn requests_drained(&self, mem: &impl SharedMem) -> bool {
        self.req.drained(mem)
    }

    /// Moves bytes from `rsp` into `dec` until it holds a complete message or the ring
    /// is empty; returns how many bytes were consumed (notify xenstored if not 0: it may
    /// be waiting for room). Call [`Decoder::take`] afterwards, and again this, until no
    /// message comes out.
    pub fn read(&mut self, mem: &impl SharedMem, dec: &mut Decoder) -> Result<usize, Error> {
        self.rsp.available(mem)?;
        let mut total = 0;
        let result = loop {
            let n = self.rsp.take(mem, dec.spare());
            if n == 0 {
                break dec.advance(0);
            }
            total += n;
            if let Err(e) = dec.advance(n) {
                break Err(e);
            }
        };
        self.rsp.publish(mem);
        result.map(|()| total)
    }

    /// Reads raw bytes from `rsp` into `out` (no framing); returns how many.
    pub fn read_bytes(&mut self, mem: &impl SharedMem, out: &mut [u8]) -> Result<usize, Error> {
        Ok(self.rsp.read(mem, out)?)
    }
}

/// `server_features` as xenstored published it.
pub fn server_features(mem: &impl SharedMem) -> u32 {
    mem.read_u32(SERVER_FEATURES)
}

/// `connection`: [`CONNECTED`] or [`RECONNECT`] (anything else is xenstored's mistake).
pub fn connection(mem: &impl SharedMem) -> u32 {
    mem.read_u32(CONNECTION)
}

/// `error` (`XENSTORE_ERROR_*`), meaningful only with [`FEATURE_ERROR`].
pub fn error(mem: &impl SharedMem) -> u32 {
    mem.read_u32(ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::FakePage;
    use core::mem::offset_of;

    #[test]
    fn layout_matches_xs_wire_h() {
        assert_eq!(offset_of!(DomainInterface, req), REQ);
        assert_eq!(offset_of!(DomainInterface, rsp), RSP);
        assert_eq!(offset_of!(DomainInterface, req_cons), REQ_CONS);
        assert_eq!(offset_of!(DomainInterface, req_prod), REQ_PROD);
        assert_eq!(offset_of!(DomainInterface, rsp_cons), RSP_CONS);
        assert_eq!(offset_of!(DomainInterface, rsp_prod), RSP_PROD);
        assert_eq!(offset_of!(DomainInterface, server_features), SERVER_FEATURES);
        assert_eq!(offset_of!(DomainInterface, connection), CONNECTION);
        assert_eq!(offset_of!(DomainInterface, error), ERROR);
        assert_eq!((REQ_CONS, RSP_PROD, INTERFACE_SIZE), (2048, 2060, 2076));
    }

    #[test]
    fn write_fills_the_ring_and_wraps() {
        let mem = FakePage::new(4096);
        mem.write_u32(REQ_PROD, u32::MAX - 9);
        mem.write_u32(REQ_CONS, u32::MAX - 9);
        let mut r = XsRing::attach(&mem).unwrap();
        let data: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        assert_eq!(r.write(&mem, &data), Ok(RING_SIZE));
        assert_eq!(r.write(&mem, &data), Ok(0));
        // xenstored takes 100 bytes.
        mem.write_u32(REQ_CONS, (u32::MAX - 9).wrapping_add(100));
        assert_eq!(r.write(&mem, &data[RING_SIZE..]), Ok(100));
        let first = REQ + (u32::MAX - 9) as usize % RING_SIZE;
        assert_eq!(mem.read_u8(first), 0);
        assert_eq!(
            mem.read_u8(REQ + (u32::MAX - 9).wrapping_add(RING_SIZE as u32) as usize % RING_SIZE),
            data[RING_SIZE]
        );
        assert!(!r.requests_drained(&mem));
    }

    #[test]
    fn bad_consumer_index_is_refused() {
        let mem = FakePage::new(4096);
        let mut r = XsRing::attach(&mem).unwrap();
        r.write(&mem, b"hello").unwrap();
        mem.write_u32(REQ_CONS, 6); // consumed a byte never produced
        assert_eq!(r.write(&mem, b"x"), Err(Error::RingIndex { prod: 5, cons: 6 }));
        mem.write_u32(REQ_CONS, 3);
        assert_eq!(r.write(&mem, b"x"), Ok(1));
        mem.write_u32(REQ_CONS, 2); // backwards
        assert_eq!(r.write(&mem, b"x"), Err(Error::RingIndex { prod: 6, cons: 2 }));
    }

    #[test]
    fn attach_checks_and_skips_stale_replies() {
        let mem = FakePage::new(4096);
        mem.write_u32(RSP_PROD, 2000);
        assert_eq!(XsRing::attach(&mem), Err(Error::RingIndex { prod: 2000, cons: 0 }));
        mem.write_u32(RSP_PROD, 30);
        let mut r = XsRing::attach(&mem).unwrap();
        assert_eq!(mem.read_u32(RSP_CONS), 30);
        assert_eq!(r.read_bytes(&mem, &mut [0; 8]), Ok(0));
        mem.write_u32(REQ_PROD, 5000);
        assert!(XsRing::attach(&mem).is_err());
    }

    #[test]
    fn bad_producer_index_is_refused() {
        let mem = FakePage::new(4096);
        let mut r = XsRing::attach(&mem).unwrap();
        mem.write_u32(RSP_PROD, RING_SIZE as u32 + 1);
        assert_eq!(r.read_bytes(&mem, &mut [0; 8]), Err(Error::RingIndex { prod: 1025, cons: 0 }));
        mem.write_u32(RSP_PROD, 10);
        let mut out = [0; 4];
        assert_eq!(r.read_bytes(&mem, &mut out), Ok(4));
        mem.write_u32(RSP_PROD, 8); // backwards, though still ahead of rsp_cons
        assert_eq!(r.read_bytes(&mem, &mut out), Err(Error::RingIndex { prod: 8, cons: 4 }));
        mem.write_u32(RSP_PROD, 2); // behind rsp_cons
        assert!(r.read_bytes(&mem, &mut out).is_err());
        assert_eq!(server_features(&mem) | connection(&mem) | error(&mem), 0);
    }
}
