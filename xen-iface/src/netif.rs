//! The network device's rings (`io/netif.h`): slot formats, flags and statuses of the
//! transmit and receive rings, and the checks a netfront applies to every response
//! before it believes it.
//!
//! Each ring is an [`crate::ring::FrontRing`] in one page: tx slots are 12 bytes (the
//! request; the 4-byte response overlays it), rx slots 8 bytes, so both rings hold 256
//! slots. Requests carry an `id` the back end echoes in the response; the driver keeps
//! the ids it has in flight in an [`IdSet`], and [`check_tx_response`] /
//! [`check_rx_response`] reject an id out of range or not in flight (so a duplicate is
//! caught once the first response took the id out), an unknown status, unknown flags,
//! and data that would run off the granted page.

use crate::ring::{ring_size, DecodeSlot, EncodeSlot, FrontRing, PAGE_SIZE};
use core::mem::size_of;

/// `NETTXF_csum_blank`: the protocol checksum field is blank.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: the checksum has been validated.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: an extra-info slot follows.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;
/// `XEN_NETIF_MAX_TX_SIZE`: largest packet.
pub const MAX_TX_SIZE: u16 = 0xffff;

/// `NETRXF_data_validated`.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`: the packet continues in the next response.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`: an extra-info slot follows.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`: a GSO prefix descriptor.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;
/// Every `NETRXF_*` bit `netif.h` defines.
pub const NETRXF_KNOWN: u16 =
    NETRXF_DATA_VALIDATED | NETRXF_CSUM_BLANK | NETRXF_MORE_DATA | NETRXF_EXTRA_INFO | NETRXF_GSO_PREFIX;

/// `NETIF_RSP_DROPPED`.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: no response (the slot of an extra-info request).
pub const NETIF_RSP_NULL: i16 = 1;

/// `XEN_NETIF_EXTRA_TYPE_NONE` (never valid).
pub const EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`.
pub const EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`.
pub const EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`.
pub const EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`.
pub const EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const EXTRA_FLAG_MORE: u8 = 1 << 0;

/// Bytes of a tx slot (`union netif_tx_sring_entry`).
pub const TX_SLOT: usize = 12;
/// Bytes of an rx slot (`union netif_rx_sring_entry`).
pub const RX_SLOT: usize = 8;
/// Slots in the tx ring on a 4 KiB page.
pub const TX_RING_SIZE: u32 = ring_size(PAGE_SIZE, TX_SLOT);
/// Slots in the rx ring on a 4 KiB page.
pub const RX_RING_SIZE: u32 = ring_size(PAGE_SIZE, RX_SLOT);
/// The tx front ring.
pub type TxRing = FrontRing<TX_SLOT>;
/// The rx front ring.
pub type RxRing = FrontRing<RX_SLOT>;

/// `struct netif_tx_request`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TxRequest {
    /// Grant of the page holding the data.
    pub gref: u32,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// Bytes in this slot; in a packet's first slot, the whole packet's size.
    pub size: u16,
}
const _: () = assert!(size_of::<TxRequest>() == TX_SLOT);

/// `struct netif_tx_response`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TxResponse {
    /// The request's id.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}
const _: () = assert!(size_of::<TxResponse>() == 4);

/// `struct netif_rx_request`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// Padding.
    pub pad: u16,
    /// Grant of the (writable) page the back end fills.
    pub gref: u32,
}
const _: () = assert!(size_of::<RxRequest>() == RX_SLOT);

/// `struct netif_rx_response`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RxResponse {
    /// The request's id.
    pub id: u16,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Negative: `NETIF_RSP_*` error; otherwise the data's length.
    pub status: i16,
}
const _: () = assert!(size_of::<RxResponse>() == RX_SLOT);

/// `struct netif_extra_info` as it arrives in an rx slot after `NETRXF_extra_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub ty: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The type-specific union, raw.
    pub data: [u8; 6],
}

fn u16_at<const N: usize>(s: &[u8; N], at: usize) -> u16 {
    u16::from_le_bytes([s.get(at).copied().unwrap_or(0), s.get(at + 1).copied().unwrap_or(0)])
}

fn put<const N: usize>(s: &mut [u8; N], at: usize, bytes: &[u8]) {
    if let Some(d) = s.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

impl EncodeSlot<TX_SLOT> for TxRequest {
    fn encode(&self, s: &mut [u8; TX_SLOT]) {
        put(s, 0, &self.gref.to_le_bytes());
        put(s, 4, &self.offset.to_le_bytes());
        put(s, 6, &self.flags.to_le_bytes());
        put(s, 8, &self.id.to_le_bytes());
        put(s, 10, &self.size.to_le_bytes());
    }
}

impl DecodeSlot<TX_SLOT> for TxResponse {
    fn decode(s: &[u8; TX_SLOT]) -> Self {
        TxResponse { id: u16_at(s, 0), status: u16_at(s, 2) as i16 }
    }
}

impl EncodeSlot<RX_SLOT> for RxRequest {
    fn encode(&self, s: &mut [u8; RX_SLOT]) {
        put(s, 0, &self.id.to_le_bytes());
        put(s, 2, &self.pad.to_le_bytes());
        put(s, 4, &self.gref.to_le_bytes());
    }
}

impl DecodeSlot<RX_SLOT> for RxResponse {
    fn decode(s: &[u8; RX_SLOT]) -> Self {
        RxResponse { id: u16_at(s, 0), offset: u16_at(s, 2), flags: u16_at(s, 4), status: u16_at(s, 6) as i16 }
    }
}

impl DecodeSlot<RX_SLOT> for ExtraInfo {
    fn decode(s: &[u8; RX_SLOT]) -> Self {
        let [ty, flags, a, b, c, d, e, f] = *s;
        ExtraInfo { ty, flags, data: [a, b, c, d, e, f] }
    }
}

/// The ids a ring has in flight: one bit per slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdSet {
    bits: [u64; 4],
}
const _: () = assert!(TX_RING_SIZE as usize <= 256 && RX_RING_SIZE as usize <= 256);

impl IdSet {
    /// No ids.
    pub const fn new() -> Self {
        IdSet { bits: [0; 4] }
    }

    fn word_bit(id: u16) -> (usize, u64) {
        (id as usize / 64, 1 << (id % 64))
    }

    /// Adds `id`; false if it is out of range or already present.
    pub fn insert(&mut self, id: u16) -> bool {
        let (w, b) = Self::word_bit(id);
        match self.bits.get_mut(w) {
            Some(word) if *word & b == 0 => {
                *word |= b;
                true
            }
            _ => false,
        }
    }

    /// Removes `id`; false if it was not present.
    pub fn remove(&mut self, id: u16) -> bool {
        let (w, b) = Self::word_bit(id);
        match self.bits.get_mut(w) {
            Some(word) if *word & b != 0 => {
                *word &= !b;
                true
            }
            _ => false,
        }
    }

    /// True if `id` is present.
    pub fn contains(&self, id: u16) -> bool {
        let (w, b) = Self::word_bit(id);
        self.bits.get(w).is_some_and(|word| word & b != 0)
    }

    /// Number of ids present.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True if no id is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response the back end should not have sent: mark the device broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetifError {
    /// The id is not below the ring size.
    IdOutOfRange(u16),
    /// The id is not in flight (never sent, or answered already).
    NotInFlight(u16),
    /// A status `netif.h` does not define for this ring.
    BadStatus(i16),
    /// `offset + length` runs past the page.
    BadLength {
        /// The response's offset.
        offset: u16,
        /// The response's length.
        len: u16,
    },
    /// Flag bits `netif.h` does not define.
    BadFlags(u16),
}

/// How a transmit request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// `NETIF_RSP_OKAY`: sent.
    Okay,
    /// `NETIF_RSP_ERROR`: the back end refused it.
    Error,
    /// `NETIF_RSP_DROPPED`: dropped.
    Dropped,
}

/// A checked tx response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOutcome {
    /// `NETIF_RSP_NULL`: the slot of an extra-info request; carries no id, skip it.
    Null,
    /// Request `id` is done: free its grant and buffer, take it out of the in-flight set.
    Done {
        /// The request's id.
        id: u16,
        /// How it ended.
        status: TxStatus,
    },
}

/// Checks a tx response against the ids in flight (as Linux's `xennet_tx_buf_gc`:
/// `NETIF_RSP_NULL` slots are skipped before the id is looked at).
pub fn check_tx_response(rsp: &TxResponse, in_flight: &IdSet) -> Result<TxOutcome, NetifError> {
    let status = match rsp.status {
        NETIF_RSP_NULL => return Ok(TxOutcome::Null),
        NETIF_RSP_OKAY => TxStatus::Okay,
        NETIF_RSP_ERROR => TxStatus::Error,
        NETIF_RSP_DROPPED => TxStatus::Dropped,
        s => return Err(NetifError::BadStatus(s)),
    };
    check_id(rsp.id, TX_RING_SIZE, in_flight)?;
    Ok(TxOutcome::Done { id: rsp.id, status })
}

fn check_id(id: u16, ring_size: u32, in_flight: &IdSet) -> Result<(), NetifError> {
    if id as u32 >= ring_size {
        return Err(NetifError::IdOutOfRange(id));
    }
    if !in_flight.contains(id) {
        return Err(NetifError::NotInFlight(id));
    }
    Ok(())
}

/// A checked rx response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// `len` bytes at `offset` of the buffer posted with `id`.
    Data {
        /// The request's id.
        id: u16,
        /// Offset in the page.
        offset: u16,
        /// Bytes (may be 0).
        len: u16,
        /// `NETRXF_*`.
        flags: u16,
    },
    /// The back end reports an error for the buffer posted with `id` (`NETIF_RSP_ERROR`
    /// or `NETIF_RSP_DROPPED`): drop the packet, recycle the buffer.
    Error {
        /// The request's id.
        id: u16,
        /// The status.
        status: i16,
    },
}

/// Checks an rx response against the ids in flight: id in range and posted, flags
/// known, a negative status one `netif.h` defines, data within the 4 KiB page.
pub fn check_rx_response(rsp: &RxResponse, in_flight: &IdSet) -> Result<RxOutcome, NetifError> {
    check_id(rsp.id, RX_RING_SIZE, in_flight)?;
    if rsp.flags & !NETRXF_KNOWN != 0 {
        return Err(NetifError::BadFlags(rsp.flags));
    }
    match rsp.status {
        NETIF_RSP_ERROR | NETIF_RSP_DROPPED => Ok(RxOutcome::Error { id: rsp.id, status: rsp.status }),
        s if s < 0 => Err(NetifError::BadStatus(s)),
        s => {
            let len = s as u16;
            if rsp.offset as usize + len as usize > PAGE_SIZE {
                return Err(NetifError::BadLength { offset: rsp.offset, len });
            }
            Ok(RxOutcome::Data { id: rsp.id, offset: rsp.offset, len, flags: rsp.flags })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RSP_PROD;
    use crate::shared::testing::FakePage;
    use crate::shared::SharedMem;
    use core::mem::offset_of;

    #[test]
    fn layout_matches_netif_h() {
        assert_eq!(
            [offset_of!(TxRequest, gref), offset_of!(TxRequest, offset), offset_of!(TxRequest, flags)],
            [0, 4, 6]
        );
        assert_eq!([offset_of!(TxRequest, id), offset_of!(TxRequest, size)], [8, 10]);
        assert_eq!([offset_of!(TxResponse, id), offset_of!(TxResponse, status)], [0, 2]);
        assert_eq!([offset_of!(RxRequest, id), offset_of!(RxRequest, pad), offset_of!(RxRequest, gref)], [0, 2, 4]);
        assert_eq!(
            [
                offset_of!(RxResponse, id),
                offset_of!(RxResponse, offset),
                offset_of!(RxResponse, flags),
                offset_of!(RxResponse, status)
            ],
            [0, 2, 4, 6]
        );
        assert_eq!((TX_RING_SIZE, RX_RING_SIZE), (256, 256));
        assert_eq!((NETTXF_EXTRA_INFO, NETRXF_GSO_PREFIX, NETRXF_KNOWN), (8, 16, 0x1f));
    }

    #[test]
    fn slots_encode_and_decode() {
        let mut s = [0u8; TX_SLOT];
        TxRequest { gref: 0x0102_0304, offset: 0x0506, flags: NETTXF_MORE_DATA, id: 0x0708, size: 1514 }.encode(&mut s);
        assert_eq!(s, [4, 3, 2, 1, 6, 5, 4, 0, 8, 7, 0xea, 5]);
        let r = TxResponse::decode(&[9, 0, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r, TxResponse { id: 9, status: NETIF_RSP_DROPPED });
        let mut s = [0u8; RX_SLOT];
        RxRequest { id: 3, pad: 0, gref: 77 }.encode(&mut s);
        assert_eq!(s, [3, 0, 0, 0, 77, 0, 0, 0]);
        let r = RxResponse::decode(&[3, 0, 14, 0, 0x11, 0, 0xdc, 5]);
        assert_eq!(r, RxResponse { id: 3, offset: 14, flags: 0x11, status: 1500 });
        let e = ExtraInfo::decode(&[EXTRA_TYPE_GSO, EXTRA_FLAG_MORE, 1, 2, 3, 4, 5, 6]);
        assert_eq!((e.ty, e.flags, e.data), (1, 1, [1, 2, 3, 4, 5, 6]));
    }

    #[test]
    fn id_set() {
        let mut s = IdSet::new();
        assert!(s.insert(0) && s.insert(255) && s.insert(64));
        assert!(!s.insert(64), "duplicate");
        assert!(!s.insert(256) && !s.contains(256) && !s.remove(256) && !s.remove(u16::MAX));
        assert_eq!(s.len(), 3);
        assert!(s.remove(64) && !s.remove(64));
        assert!(s.contains(255) && !s.contains(64));
        assert!(!s.is_empty());
    }

    #[test]
    fn tx_responses() {
        let mut inflight = IdSet::new();
        inflight.insert(5);
        let rsp = |id, status| TxResponse { id, status };
        assert_eq!(
            check_tx_response(&rsp(5, NETIF_RSP_OKAY), &inflight),
            Ok(TxOutcome::Done { id: 5, status: TxStatus::Okay })
        );
        assert_eq!(
            check_tx_response(&rsp(5, NETIF_RSP_DROPPED), &inflight),
            Ok(TxOutcome::Done { id: 5, status: TxStatus::Dropped })
        );
        assert_eq!(
            check_tx_response(&rsp(5, NETIF_RSP_ERROR), &inflight),
            Ok(TxOutcome::Done { id: 5, status: TxStatus::Error })
        );
        assert_eq!(check_tx_response(&rsp(999, NETIF_RSP_NULL), &inflight), Ok(TxOutcome::Null));
        assert_eq!(check_tx_response(&rsp(256, 0), &inflight), Err(NetifError::IdOutOfRange(256)));
        assert_eq!(check_tx_response(&rsp(6, 0), &inflight), Err(NetifError::NotInFlight(6)));
        for s in [2, -3, i16::MIN, i16::MAX] {
            assert_eq!(check_tx_response(&rsp(5, s), &inflight), Err(NetifError::BadStatus(s)));
        }
        // A duplicate: the first response took the id out of flight.
        assert!(inflight.remove(5));
        assert_eq!(check_tx_response(&rsp(5, 0), &inflight), Err(NetifError::NotInFlight(5)));
    }

    #[test]
    fn rx_responses() {
        let mut inflight = IdSet::new();
        inflight.insert(7);
        let rsp = |id, offset, flags, status| RxResponse { id, offset, flags, status };
        assert_eq!(
            check_rx_response(&rsp(7, 2, NETRXF_DATA_VALIDATED, 1514), &inflight),
            Ok(RxOutcome::Data { id: 7, offset: 2, len: 1514, flags: 1 })
        );
        assert_eq!(
            check_rx_response(&rsp(7, 0, 0, 4096), &inflight),
            Ok(RxOutcome::Data { id: 7, offset: 0, len: 4096, flags: 0 })
        );
        assert_eq!(
            check_rx_response(&rsp(7, 0, 0, NETIF_RSP_ERROR), &inflight),
            Ok(RxOutcome::Error { id: 7, status: -1 })
        );
        assert_eq!(
            check_rx_response(&rsp(7, 1, 0, 4096), &inflight),
            Err(NetifError::BadLength { offset: 1, len: 4096 })
        );
        assert_eq!(
            check_rx_response(&rsp(7, 4000, 0, 200), &inflight),
            Err(NetifError::BadLength { offset: 4000, len: 200 })
        );
        assert_eq!(
            check_rx_response(&rsp(7, u16::MAX, 0, i16::MAX), &inflight),
            Err(NetifError::BadLength { offset: u16::MAX, len: i16::MAX as u16 })
        );
        assert_eq!(check_rx_response(&rsp(7, 0, 0, -3), &inflight), Err(NetifError::BadStatus(-3)));
        assert_eq!(check_rx_response(&rsp(7, 0, 0, i16::MIN), &inflight), Err(NetifError::BadStatus(i16::MIN)));
        assert_eq!(check_rx_response(&rsp(7, 0, 0x20, 10), &inflight), Err(NetifError::BadFlags(0x20)));
        assert_eq!(check_rx_response(&rsp(300, 0, 0, 10), &inflight), Err(NetifError::IdOutOfRange(300)));
        assert_eq!(check_rx_response(&rsp(8, 0, 0, 10), &inflight), Err(NetifError::NotInFlight(8)));
        inflight.remove(7);
        assert_eq!(check_rx_response(&rsp(7, 0, 0, 10), &inflight), Err(NetifError::NotInFlight(7)), "duplicate");
    }

    /// A fake netback on the tx ring answers every request with its id, plus one
    /// duplicate: the checks catch it.
    #[test]
    fn tx_ring_with_a_fake_netback() {
        let mem = FakePage::new(4096);
        let mut ring = TxRing::init(&mem).unwrap();
        let mut inflight = IdSet::new();
        for id in 0..3u16 {
            let req = TxRequest { gref: 100 + id as u32, offset: 0, flags: 0, id, size: 60 };
            ring.push_request(&mem, &req).unwrap();
            inflight.insert(id);
        }
        assert!(ring.push_requests_and_check_notify(&mem));
        // Netback: responses overwrite the consumed slots; id 1 answered twice.
        for (i, id) in [0u16, 1, 1].into_iter().enumerate() {
            let at = crate::ring::RING + i * TX_SLOT;
            mem.write_u32(at, id as u32); // id, status 0
        }
        mem.write_u32(RSP_PROD, 3);
        assert_eq!(ring.poll_responses(&mem), Ok(3));
        let mut results = Vec::new();
        while let Some(rsp) = ring.next_response_as::<TxResponse>(&mem) {
            let r = check_tx_response(&rsp, &inflight);
            if let Ok(TxOutcome::Done { id, .. }) = r {
                inflight.remove(id);
            }
            results.push(r);
        }
        assert_eq!(results[2], Err(NetifError::NotInFlight(1)));
        assert_eq!(inflight.len(), 1);
    }
}
