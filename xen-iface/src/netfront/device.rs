//! An open netfront: its two ring pages and one page per transmit and receive id, each
//! lent to the back end ([`crate::grant::loan`]), the rings' logic ([`NetfrontRings`]),
//! and the event channel's port. [`super::open`] builds it; the driver moves frames
//! through it and gives it real memory.
//!
//! A received frame is copied out of its shared pages (one per slot: a GSO segment spans
//! up to 17) with [`SharedMem::read_bytes`] into the caller's buffer before anyone sees
//! it as a slice (the back end can still write those pages), and each buffer is queued
//! again; [`Device::flush_rx`] publishes the queued ones, so the driver refills in
//! batches with one notification. A frame to send is written into its page while its id
//! is free, so the back end has no reason to read it.
//!
//! When the back end breaks the protocol, every call fails ([`NetfrontError::Broken`])
//! and the driver takes the pages back with [`Device::take_back`].

use super::{NetfrontError, NetfrontRings, RxEvent};
use crate::grant::loan::{GrantOps, Loans, Returned};
use crate::netif::{NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED};
use crate::ring::PAGE_SIZE;
use crate::shared::SharedMem;
use alloc::string::String;

/// What [`Device::receive`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// No response was waiting.
    Nothing,
    /// A frame of `len` bytes is at the start of the caller's buffer.
    Frame {
        /// Its length.
        len: usize,
        /// The back end vouched for its TCP/UDP checksum (`NETRXF_data_validated`) or
        /// left it blank (`NETRXF_csum_blank`): either way not for the stack to check.
        validated: bool,
    },
    /// The packet was dropped: the back end could not fill a buffer, or the frame did
    /// not fit the caller's buffer. Its buffers were queued again.
    Dropped,
}

/// An open netfront.
#[derive(Debug)]
pub struct Device<P> {
    pub(super) backend: String,
    pub(super) backend_id: u16,
    pub(super) mac: [u8; 6],
    pub(super) ip: Option<String>,
    pub(super) port: u32,
    pub(super) rings: NetfrontRings,
    /// The transmit ring's page, then the receive ring's.
    pub(super) ring_pages: Loans<P>,
    /// One page per transmit id.
    pub(super) tx: Loans<P>,
    /// One page per receive id.
    pub(super) rx: Loans<P>,
}

impl<P: SharedMem> Device<P> {
    /// The back end's directory in xenstore.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The back end's domain.
    pub fn backend_id(&self) -> u16 {
        self.backend_id
    }

    /// The MAC address the toolstack assigned.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The address the toolstack wrote into the back end's `ip` key, if any.
    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    /// The event channel to the back end.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The rings' state (broken or not, ids free).
    pub fn rings(&self) -> &NetfrontRings {
        &self.rings
    }

    /// Grants held (ring, transmit and receive pages).
    pub fn grants(&self) -> usize {
        self.ring_pages.len() + self.tx.len() + self.rx.len()
    }

    /// The page of receive buffer `id` (for a test's fake back end).
    pub fn rx_page(&self, id: u16) -> Option<&P> {
        self.rx.get(id as usize).map(|l| l.page())
    }

    fn check(&self) -> Result<(), NetfrontError> {
        self.rings.check()
    }

    /// True if a receive response is waiting.
    pub fn has_rx(&mut self) -> bool {
        match self.ring_pages.get(1) {
            Some(l) => self.rings.has_rx(l.page()),
            None => false,
        }
    }

    /// Asks for an event on the next receive response; true if one is already waiting.
    pub fn arm_rx(&mut self) -> bool {
        match self.ring_pages.get(1) {
            Some(l) => self.rings.arm_rx(l.page()),
            None => false,
        }
    }

    /// Takes the next received packet, all its slots: copies its frame into `out` and
    /// queues each buffer again (publish them with [`Self::flush_rx`]).
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Received, NetfrontError> {
        self.check()?;
        let rx_ring = self.ring_pages.get(1).map(|l| l.page()).ok_or(NetfrontError::Misuse)?;
        let (mut len, mut validated, mut fits, mut first) = (0usize, false, true, true);
        // Each turn consumes one response of the ring, so the loop ends.
        loop {
            let event = match self.rings.next_rx(rx_ring)? {
                None if first => return Ok(Received::Nothing),
                None => return Err(self.rings.truncated()),
                Some(e) => e,
            };
            let id = match event {
                RxEvent::Frame { id, offset, len: n, flags } => {
                    if first {
                        validated = flags & (NETRXF_DATA_VALIDATED | NETRXF_CSUM_BLANK) != 0;
                    }
                    let page = self.rx.get(id as usize).ok_or(NetfrontError::Misuse)?.page();
                    // `next_rx` checked offset + len against the page.
                    match out.get_mut(len..len + n as usize) {
                        Some(dst) if fits => page.read_bytes(offset as usize, dst),
                        _ => fits = false,
                    }
                    len += n as usize;
                    id
                }
                RxEvent::Dropped { id } => {
                    fits = false;
                    id
                }
                RxEvent::Extra { id, .. } => id,
            };
            first = false;
            let gref = self.rx.get(id as usize).ok_or(NetfrontError::Misuse)?.gref();
            self.rings.post_rx(rx_ring, id, gref)?;
            if !self.rings.rx_mid_packet() {
                break;
            }
        }
        Ok(if fits { Received::Frame { len, validated } } else { Received::Dropped })
    }

    /// Receive buffers queued again and not yet published.
    pub fn rx_unpublished(&self) -> u32 {
        self.rings.rx_unpublished()
    }

    /// Publishes the queued receive buffers; true if the back end wants a notification.
    pub fn flush_rx(&mut self) -> bool {
        match self.ring_pages.get(1) {
            Some(l) => self.rings.flush_rx(l.page()),
            None => false,
        }
    }

    /// Takes every transmit response back; returns how many ids came free.
    pub fn tx_reclaim(&mut self) -> Result<u32, NetfrontError> {
        self.check()?;
        let tx_ring = self.ring_pages.get(0).map(|l| l.page()).ok_or(NetfrontError::Misuse)?;
        self.rings.tx_reclaim(tx_ring)
    }

    /// Sends a frame of `len` bytes that `fill` writes into a free transmit page; true
    /// if the back end wants a notification. [`NetfrontError::Full`] if no id is free.
    pub fn transmit(&mut self, len: u16, fill: impl FnOnce(&mut P)) -> Result<bool, NetfrontError> {
        self.check()?;
        if len == 0 || len as usize > PAGE_SIZE {
            return Err(NetfrontError::Misuse); // checked before an id is taken
        }
        let id = self.rings.tx_alloc().ok_or(NetfrontError::Full)?;
        let loan = self.tx.get_mut(id as usize).ok_or(NetfrontError::Misuse)?;
        fill(loan.page_mut());
        let gref = loan.gref();
        let tx_ring = self.ring_pages.get(0).map(|l| l.page()).ok_or(NetfrontError::Misuse)?;
        self.rings.tx_submit(tx_ring, id, gref, len)
    }

    /// Revokes every grant: frees the pages the back end let go of, leaks the others.
    /// The device holds no page afterwards (every call fails or finds nothing).
    pub fn take_back(&mut self, grants: &mut impl GrantOps) -> Returned {
        self.rx.take_back(grants).plus(self.tx.take_back(grants)).plus(self.ring_pages.take_back(grants))
    }
}
