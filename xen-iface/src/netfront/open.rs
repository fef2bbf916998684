//! Opening a netfront: the xenbus handshake ([`crate::xenbus::connect`]) with the front
//! end's side set up in its middle, and everything undone on every path that fails.
//!
//! The front end's side is two ring pages, one page per transmit id (lent read-only) and
//! one per receive id (lent writable), and an event channel; its keys tell the back end
//! where they are and what the front end negotiates: receive by copy, receive
//! notifications, and the receive offloads (scatter-gather, TCPv4 GSO segments in,
//! checksum offload: see [`super::csum`]); nothing is offloaded on transmit.
//!
//! Failure is the interesting path. Once the first page is lent, any error (memory,
//! grant references or the event channel running out, a xenstore failure, a back end
//! that never connects, closes, or disappears) ends the same way: the handshake closes
//! the front end in xenstore if it had published `Connected` (so the back end unmaps),
//! the event channel is closed, and every page is taken back
//! ([`crate::grant::loan::Loans::take_back`]): freed if its grant ended, leaked and
//! counted if the back end still maps it. [`OpenFailure`] reports both the error and
//! what was taken back.
//!
//! The kernel's side comes in through [`Host`] (pages, grants, the event channel) and
//! [`Store`] (xenstore); host tests give fakes of both that misbehave.

use super::device::Device;
use super::{NetfrontRings, RX_IDS, TX_IDS};
use crate::grant::loan::{Frame, GrantOps, Loans, Returned};
use crate::grant::GrantError;
use crate::ring::RingError;
use crate::shared::SharedMem;
use crate::xenbus::Store;
use crate::xenbus::{perform, Action, Answer, Connect, ConnectError, Keys};
use crate::xenstore::CallError;
use alloc::format;
use alloc::string::String;
use core::fmt;

/// What opening a netfront needs from the kernel, besides xenstore.
pub trait Host: GrantOps {
    /// A page the driver owns: zeroed, freed when dropped.
    type Page: Frame + SharedMem;
    /// A fresh page, or `None` if memory is short.
    fn alloc_page(&mut self) -> Option<Self::Page>;
    /// An event channel that back end `domid` may bind, connected to the driver's
    /// handler and masked; returns its port, or Xen's error code.
    fn open_channel(&mut self, domid: u16) -> Result<u32, i64>;
    /// Closes a port from [`Host::open_channel`].
    fn close_channel(&mut self, port: u32);
    /// Notifies the back end through `port`.
    fn notify(&mut self, port: u32);
}

/// Why a netfront could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Reading the front end's `mac` failed.
    Mac(CallError),
    /// The front end's `mac` is not a MAC address.
    BadMac(String),
    /// The handshake failed.
    Connect(ConnectError),
    /// Out of memory for pages.
    NoMemory,
    /// Granting a page failed (references ran out, or a frame beyond v1's reach).
    Grant(GrantError),
    /// Xen refused the event channel.
    EventChannel(i64),
    /// The ring pages could not be initialised.
    Rings(RingError),
    /// A receive buffer could not be posted.
    Post,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Mac(e) => write!(f, "reading the MAC failed: {e:?}"),
            OpenError::BadMac(v) => write!(f, "the MAC {v:?} is not one"),
            OpenError::Connect(e) => write!(f, "{e}"),
            OpenError::NoMemory => write!(f, "out of memory for ring and buffer pages"),
            OpenError::Grant(e) => write!(f, "granting a page failed: {e:?}"),
            OpenError::EventChannel(code) => write!(f, "Xen refused an event channel ({code})"),
            OpenError::Rings(e) => write!(f, "the ring pages could not be set up: {e:?}"),
            OpenError::Post => write!(f, "the receive buffers could not be posted"),
        }
    }
}

/// A failed open: the error, and what taking the pages back did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFailure {
    /// What went wrong first.
    pub error: OpenError,
    /// Pages taken back: freed, or leaked because the back end still maps them.
    pub returned: Returned,
}

impl fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Returned { revoked, leaked } = self.returned;
        write!(f, "{}; {revoked} grants revoked, {leaked} pages leaked (still mapped by the back end)", self.error)
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (surrounding whitespace allowed).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *b = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The front end's side while it is being set up.
struct Setup<P> {
    ring_pages: Loans<P>,
    tx: Loans<P>,
    rx: Loans<P>,
    rings: Option<NetfrontRings>,
    port: Option<u32>,
}

impl<P: Frame + SharedMem> Setup<P> {
    fn new(backend_id: u16) -> Self {
        Setup {
            ring_pages: Loans::new(backend_id),
            tx: Loans::new(backend_id),
            rx: Loans::new(backend_id),
            rings: None,
            port: None,
        }
    }

    /// Sets up rings, buffers and the event channel; returns the keys describing them.
    fn allocate<H: Host<Page = P>>(&mut self, host: &mut H, rx_offloads: bool) -> Result<Keys, OpenError> {
        let (tx_ring, rx_ring) = (page(host)?, page(host)?);
        // The rings are initialised before the back end can see them.
        let mut rings = NetfrontRings::new(&tx_ring, &rx_ring).map_err(OpenError::Rings)?;
        if rx_offloads {
            rings.enable_rx_offloads();
        }
        self.rings = Some(rings);
        let tx_ref = self.ring_pages.lend(host, tx_ring, false).map_err(OpenError::Grant)?;
        let rx_ref = self.ring_pages.lend(host, rx_ring, false).map_err(OpenError::Grant)?;
        for _ in 0..TX_IDS {
            let p = page(host)?;
            self.tx.lend(host, p, true).map_err(OpenError::Grant)?;
        }
        for _ in 0..RX_IDS {
            let p = page(host)?;
            self.rx.lend(host, p, false).map_err(OpenError::Grant)?;
        }
        let port = host.open_channel(self.ring_pages.domid()).map_err(OpenError::EventChannel)?;
        self.port = Some(port);
        let set = |k: &'static str, v: &str| (k, String::from(v));
        let (on, off) = if rx_offloads { ("1", "0") } else { ("0", "1") };
        Ok(alloc::vec![
            ("tx-ring-ref", format!("{tx_ref}")),
            ("rx-ring-ref", format!("{rx_ref}")),
            ("event-channel", format!("{port}")),
            set("request-rx-copy", "1"),
            set("feature-rx-notify", "1"),
            set("feature-sg", on),
            set("feature-gso-tcpv4", on),
            set("feature-no-csum-offload", off),
        ])
    }

    /// The back end is connected: posts every receive buffer.
    fn start<H: Host<Page = P>>(&mut self, host: &mut H) -> Result<(), OpenError> {
        let (Some(rings), Some(port), Some(rx_ring)) = (self.rings.as_mut(), self.port, self.ring_pages.get(1)) else {
            return Err(OpenError::Post);
        };
        for id in 0..RX_IDS {
            let gref = self.rx.get(id).ok_or(OpenError::Post)?.gref();
            rings.post_rx(rx_ring.page(), id as u16, gref).map_err(|_| OpenError::Post)?;
        }
        if rings.flush_rx(rx_ring.page()) {
            host.notify(port);
        }
        Ok(())
    }

    /// Undoes everything: the event channel closed, every page taken back.
    fn release(&mut self, host: &mut impl Host) -> Returned {
        if let Some(port) = self.port.take() {
            host.close_channel(port);
        }
        self.rx.take_back(host).plus(self.tx.take_back(host)).plus(self.ring_pages.take_back(host))
    }
}

fn page<H: Host>(host: &mut H) -> Result<H::Page, OpenError> {
    host.alloc_page().ok_or(OpenError::NoMemory)
}

/// Opens the netfront whose front end is at `frontend` (`device/vif/0`); each wait for
/// the back end lasts at most `timeout_ns`. With `rx_offloads` it offers the back end
/// scatter-gather, TCPv4 GSO and checksum offload on receive (and accepts multi-slot
/// packets); without, it asks for whole frames of one slot with their checksums filled.
pub fn open<H: Host>(
    host: &mut H,
    store: &mut impl Store,
    frontend: &str,
    timeout_ns: u64,
    rx_offloads: bool,
) -> Result<Device<H::Page>, OpenFailure> {
    let nothing = Returned::default();
    let mac_text = store
        .read(&format!("{frontend}/mac"))
        .map_err(|e| OpenFailure { error: OpenError::Mac(e), returned: nothing })?;
    let mac_text = String::from_utf8_lossy(&mac_text).into_owned();
    let Some(mac) = parse_mac(&mac_text) else {
        return Err(OpenFailure { error: OpenError::BadMac(mac_text), returned: nothing });
    };

    let mut setup = Setup::new(0);
    let mut connect = Connect::new(frontend, timeout_ns);
    let mut ip = None;
    // The driver's own error, which the handshake reports as `Allocation` or `Aborted`.
    let mut own_error = None;
    let mut answer = Answer::Begin;
    let result = loop {
        let action = connect.step(store.now_ns(), answer);
        answer = match perform(store, &action) {
            Some(a) => a,
            None => match action {
                Action::Allocate { backend, backend_id } => {
                    ip = store.read(&format!("{backend}/ip")).ok().map(|v| String::from_utf8_lossy(&v).into_owned());
                    setup = Setup::new(backend_id);
                    match setup.allocate(host, rx_offloads) {
                        Ok(keys) => Answer::Allocated(keys),
                        Err(e) => {
                            own_error = Some(e);
                            Answer::AllocationFailed
                        }
                    }
                }
                Action::Connected => match setup.start(host) {
                    Ok(()) => break Ok(()),
                    Err(e) => {
                        own_error = Some(e);
                        Answer::Abort
                    }
                },
                Action::Failed(e) => break Err(own_error.take().unwrap_or(OpenError::Connect(e))),
                _ => Answer::Abort,
            },
        };
    };
    let (Ok(()), Some(rings), Some(port)) = (&result, setup.rings.take(), setup.port) else {
        let error = result.err().unwrap_or(OpenError::Post);
        return Err(OpenFailure { error, returned: setup.release(host) });
    };
    Ok(Device {
        backend: String::from(connect.backend()),
        backend_id: connect.backend_id(),
        mac,
        ip,
        port,
        rings,
        ring_pages: setup.ring_pages,
        tx: setup.tx,
        rx: setup.rx,
    })
}

#[cfg(test)]
pub(crate) mod tests;
