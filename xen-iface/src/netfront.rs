//! The netfront's ring logic: transmit and receive rings, the ids in flight on each, and
//! the checks that keep a misbehaving back end from doing harm.
//!
//! Buffers are the driver's: one page per id, granted to the back end once. This module
//! only moves ids and lengths through the rings. Everything the back end writes is
//! checked (`netif::check_*`, `ring::FrontRing::poll_responses`) before it is used; the
//! first violation marks the rings broken for good, after which every call fails and the
//! driver frees its grants. A frame's offset and length are checked against the page, so
//! the driver never reads outside its own buffer.
//!
//! Receive offloads ([`NetfrontRings::enable_rx_offloads`], what the driver negotiates):
//! with them a packet may span several slots (`NETRXF_more_data`, scatter-gather) and
//! carry extra-info slots after its first (`NETRXF_extra_info`, a GSO segment's size).
//! An extra-info slot overwrites the response of a request without echoing its id, so
//! the rings remember which id was posted at each ring index and take that one back.
//! Without the offloads either flag is a violation, as is `NETRXF_gso_prefix` always.
//! Nothing is sent with extra-info slots, so a `NETIF_RSP_NULL` transmit response (which
//! answers one, and carries no id) is a violation as well.
//!
//! Around the rings:
//! - [`open`]: the connection: the xenbus handshake, the pages lent, and the clean-up of
//!   every path that fails.
//! - [`device`]: an open netfront: its pages, rings and port; frames in and out.
//! - [`detach`]: closing an open netfront whose back end goes away.

use crate::grant::GrantRef;
use crate::netif::{
    check_rx_response, check_tx_response, ExtraInfo, IdSet, NetifError, RxOutcome, RxRequest, RxResponse, RxRing,
    TxOutcome, TxRequest, TxResponse, TxRing, EXTRA_FLAG_MORE, EXTRA_TYPE_HASH, EXTRA_TYPE_NONE, NETRXF_EXTRA_INFO,
    NETRXF_GSO_PREFIX, NETRXF_MORE_DATA, RX_RING_SIZE, TX_RING_SIZE,
};
use crate::ring::RingError;
use crate::shared::SharedMem;

pub mod detach;
pub mod device;
pub mod open;

/// Ids on the transmit ring.
pub const TX_IDS: usize = TX_RING_SIZE as usize;
/// Ids on the receive ring.
pub const RX_IDS: usize = RX_RING_SIZE as usize;

/// What the back end did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A ring index was impossible.
    Ring(RingError),
    /// A response failed its checks.
    Netif(NetifError),
    /// A receive response used a feature that was not negotiated.
    Unnegotiated {
        /// Its flags.
        flags: u16,
    },
    /// A `NETIF_RSP_NULL` transmit response: it answers an extra-info slot, and this
    /// front end sends none.
    NullTxResponse,
    /// An extra-info slot of a type `netif.h` does not define (or `NONE`).
    BadExtra {
        /// Its type.
        ty: u8,
    },
    /// `NETRXF_extra_info` on a slot that does not start a packet.
    MisplacedExtra,
    /// The back end published part of a multi-slot packet (it publishes whole ones).
    Truncated,
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetfrontError {
    /// The back end broke the protocol (now or earlier): the device is dead.
    Broken(Violation),
    /// The driver's mistake: an id out of range or already in flight, a length that
    /// does not fit a page.
    Misuse,
    /// No free transmit slot.
    Full,
    /// The device was closed (its back end went away): no more I/O.
    Closed,
}

/// One received frame or a dropped receive, by buffer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxEvent {
    /// Buffer `id` holds a frame of `len` bytes at `offset`; re-post it when done.
    Frame {
        /// Buffer id.
        id: u16,
        /// Offset in the page.
        offset: u16,
        /// Length.
        len: u16,
        /// `NETRXF_*` (checksum state; `more_data` when the packet goes on).
        flags: u16,
    },
    /// The back end failed to fill buffer `id`; re-post it.
    Dropped {
        /// Buffer id.
        id: u16,
    },
    /// An extra-info slot; it used up buffer `id` (re-post it).
    Extra {
        /// Buffer id, from the rings' own record of what was posted at that index.
        id: u16,
        /// The slot's contents.
        info: ExtraInfo,
    },
}

/// Both rings of one netfront.
#[derive(Debug)]
pub struct NetfrontRings {
    tx: TxRing,
    rx: RxRing,
    tx_in_flight: IdSet,
    rx_in_flight: IdSet,
    tx_free: [u16; TX_IDS],
    tx_nfree: usize,
    /// The id posted at each receive ring index (modulo the ring's size): an extra-info
    /// slot answers the request there without echoing its id.
    rx_posted_at: [u16; RX_IDS],
    /// Multi-slot packets and extra-info slots are allowed (negotiated).
    rx_offloads: bool,
    /// The last receive slot said the packet goes on.
    rx_more: bool,
    /// Extra-info slots are due next.
    rx_extra: bool,
    broken: Option<Violation>,
    /// Closed by the driver ([`Self::close`]): every call fails or finds nothing.
    closed: bool,
}

impl NetfrontRings {
    /// Initialises the shared rings in `tx_mem` and `rx_mem` (one page each).
    pub fn new(tx_mem: &impl SharedMem, rx_mem: &impl SharedMem) -> Result<Self, RingError> {
        let mut tx_free = [0u16; TX_IDS];
        for (i, slot) in tx_free.iter_mut().enumerate() {
            *slot = (TX_IDS - 1 - i) as u16; // id 0 comes out first
        }
        Ok(NetfrontRings {
            tx: TxRing::init(tx_mem)?,
            rx: RxRing::init(rx_mem)?,
            tx_in_flight: IdSet::new(),
            rx_in_flight: IdSet::new(),
            tx_free,
            tx_nfree: TX_IDS,
            rx_posted_at: [0; RX_IDS],
            rx_offloads: false,
            rx_more: false,
            rx_extra: false,
            broken: None,
            closed: false,
        })
    }

    /// Accepts multi-slot packets and extra-info slots from now on: the driver has
    /// offered `feature-sg` and `feature-gso-tcpv4`.
    pub fn enable_rx_offloads(&mut self) {
        self.rx_offloads = true;
    }

    /// True while a received packet's slots are still coming (`more_data`, or extra-info
    /// slots due): the caller keeps taking them before it looks at the packet.
    pub fn rx_mid_packet(&self) -> bool {
        self.rx_more || self.rx_extra
    }

    /// Marks the rings broken because a packet's remaining slots were not published.
    pub fn truncated(&mut self) -> NetfrontError {
        self.fail(Violation::Truncated)
    }

    /// The violation that broke the rings, if any.
    pub fn broken(&self) -> Option<Violation> {
        self.broken
    }

    /// Stops the rings for good: the device is being closed. Every later call fails
    /// ([`NetfrontError::Closed`]) or finds nothing.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// True once [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Broken or closed: no more I/O.
    fn dead(&self) -> bool {
        self.broken.is_some() || self.closed
    }

    /// Ok while the rings may be used: not closed, not broken.
    pub fn check(&self) -> Result<(), NetfrontError> {
        if self.closed {
            return Err(NetfrontError::Closed);
        }
        self.broken.map_or(Ok(()), |v| Err(NetfrontError::Broken(v)))
    }

    fn fail(&mut self, v: Violation) -> NetfrontError {
        self.broken.get_or_insert(v);
        NetfrontError::Broken(self.broken.unwrap_or(v))
    }

    /// Queues receive buffer `id` (granted as `gref`); publish with [`Self::flush_rx`].
    pub fn post_rx(&mut self, rx_mem: &impl SharedMem, id: u16, gref: GrantRef) -> Result<(), NetfrontError> {
        self.check()?;
        if id as usize >= RX_IDS || self.rx_in_flight.contains(id) {
            return Err(NetfrontError::Misuse);
        }
        let at = self.rx.push_request(rx_mem, &RxRequest { id, pad: 0, gref }).map_err(|_| NetfrontError::Full)?;
        if let Some(slot) = self.rx_posted_at.get_mut(at as usize % RX_IDS) {
            *slot = id;
        }
        self.rx_in_flight.insert(id);
        Ok(())
    }

    /// Publishes queued receive buffers; true if the back end wants a notification.
    pub fn flush_rx(&mut self, rx_mem: &impl SharedMem) -> bool {
        !self.dead() && self.rx.push_requests_and_check_notify(rx_mem)
    }

    /// Receive buffers queued by [`Self::post_rx`] and not yet published.
    pub fn rx_unpublished(&self) -> u32 {
        self.rx.unpublished()
    }

    /// Receive buffers posted and not yet returned.
    pub fn rx_posted(&self) -> usize {
        self.rx_in_flight.len()
    }

    /// True if a receive response is waiting (false once broken).
    pub fn has_rx(&mut self, rx_mem: &impl SharedMem) -> bool {
        if self.dead() {
            return false;
        }
        match self.rx.poll_responses(rx_mem) {
            Ok(n) => n > 0,
            Err(e) => {
                self.fail(Violation::Ring(e));
                false
            }
        }
    }

    /// Takes the next receive slot, checked: a response, or (after `NETRXF_extra_info`)
    /// an extra-info slot.
    pub fn next_rx(&mut self, rx_mem: &impl SharedMem) -> Result<Option<RxEvent>, NetfrontError> {
        self.check()?;
        if !self.has_rx(rx_mem) {
            self.check()?;
            return Ok(None);
        }
        let at = self.rx.rsp_cons() as usize % RX_IDS;
        if self.rx_extra {
            let Some(info) = self.rx.next_response_as::<ExtraInfo>(rx_mem) else { return Ok(None) };
            let id = self.rx_posted_at.get(at).copied().unwrap_or(u16::MAX);
            // The request at this index is ours and unanswered, unless the back end
            // already answered its id from another slot.
            if !self.rx_in_flight.remove(id) {
                return Err(self.fail(Violation::Netif(NetifError::NotInFlight(id))));
            }
            if info.ty == EXTRA_TYPE_NONE || info.ty > EXTRA_TYPE_HASH {
                return Err(self.fail(Violation::BadExtra { ty: info.ty }));
            }
            self.rx_extra = info.flags & EXTRA_FLAG_MORE != 0;
            return Ok(Some(RxEvent::Extra { id, info }));
        }
        let Some(rsp) = self.rx.next_response_as::<RxResponse>(rx_mem) else { return Ok(None) };
        let outcome = check_rx_response(&rsp, &self.rx_in_flight).map_err(|e| self.fail(Violation::Netif(e)))?;
        let multi = NETRXF_MORE_DATA | NETRXF_EXTRA_INFO;
        if rsp.flags & NETRXF_GSO_PREFIX != 0 || (!self.rx_offloads && rsp.flags & multi != 0) {
            return Err(self.fail(Violation::Unnegotiated { flags: rsp.flags }));
        }
        if rsp.flags & NETRXF_EXTRA_INFO != 0 && self.rx_more {
            return Err(self.fail(Violation::MisplacedExtra));
        }
        self.rx_more = rsp.flags & NETRXF_MORE_DATA != 0;
        self.rx_extra = rsp.flags & NETRXF_EXTRA_INFO != 0;
        Ok(Some(match outcome {
            RxOutcome::Data { id, offset, len, flags } => {
                self.rx_in_flight.remove(id);
                RxEvent::Frame { id, offset, len, flags }
            }
            RxOutcome::Error { id, .. } => {
                self.rx_in_flight.remove(id);
                RxEvent::Dropped { id }
            }
        }))
    }

    /// Asks for a notification on the next receive response (`RING_FINAL_CHECK`); true
    /// if one is already there, so the caller should not wait.
    pub fn arm_rx(&mut self, rx_mem: &impl SharedMem) -> bool {
        if self.dead() {
            return false;
        }
        match self.rx.final_check_for_responses(rx_mem) {
            Ok(ready) => ready,
            Err(e) => {
                self.fail(Violation::Ring(e));
                false
            }
        }
    }

    /// A free transmit id.
    pub fn tx_alloc(&mut self) -> Option<u16> {
        if self.dead() {
            return None;
        }
        self.tx_nfree = self.tx_nfree.checked_sub(1)?;
        self.tx_free.get(self.tx_nfree).copied()
    }

    /// Transmit ids free.
    pub fn tx_free(&self) -> usize {
        self.tx_nfree
    }

    fn tx_release(&mut self, id: u16) {
        if let Some(slot) = self.tx_free.get_mut(self.tx_nfree) {
            *slot = id;
            self.tx_nfree += 1;
        }
    }

    /// Sends `len` bytes from the start of buffer `id` (granted as `gref`, from
    /// [`Self::tx_alloc`]); true if the back end wants a notification.
    pub fn tx_submit(
        &mut self,
        tx_mem: &impl SharedMem,
        id: u16,
        gref: GrantRef,
        len: u16,
    ) -> Result<bool, NetfrontError> {
        self.check()?;
        if id as usize >= TX_IDS || self.tx_in_flight.contains(id) || len as usize > 4096 || len == 0 {
            return Err(NetfrontError::Misuse);
        }
        let req = TxRequest { gref, offset: 0, flags: 0, id, size: len };
        self.tx.push_request(tx_mem, &req).map_err(|_| NetfrontError::Full)?;
        self.tx_in_flight.insert(id);
        Ok(self.tx.push_requests_and_check_notify(tx_mem))
    }

    /// Takes every transmit response: their ids become free. Returns how many.
    pub fn tx_reclaim(&mut self, tx_mem: &impl SharedMem) -> Result<u32, NetfrontError> {
        self.check()?;
        self.tx.poll_responses(tx_mem).map_err(|e| self.fail(Violation::Ring(e)))?;
        let mut n = 0;
        while let Some(rsp) = self.tx.next_response_as::<TxResponse>(tx_mem) {
            match check_tx_response(&rsp, &self.tx_in_flight).map_err(|e| self.fail(Violation::Netif(e)))? {
                TxOutcome::Null => return Err(self.fail(Violation::NullTxResponse)),
                TxOutcome::Done { id, .. } => {
                    self.tx_in_flight.remove(id);
                    self.tx_release(id);
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
