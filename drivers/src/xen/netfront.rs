//! netfront: the guest half of Xen's split network driver, as a [`Nic`].
//!
//! Connection (xenbus): the back end's path, id and the MAC come from xenstore under
//! `device/vif/0`; the driver grants its two ring pages, allocates an event channel for
//! the back end, writes the ring references, the channel and its feature choices
//! (receive by copy, no scatter-gather, no GSO, no checksum offload) in one transaction,
//! switches to Connected and waits for the back end to follow.
//!
//! Data: one page per ring id, granted once at start (so the live-grant count stays flat
//! however many packets pass); frames are copied into transmit pages and out of receive
//! pages. All ring logic and every check of what the back end writes is
//! `xen_iface::netfront`'s. When the back end breaks the protocol the device is marked
//! broken, its grants are revoked, and every call fails from then on.
//!
//! Interrupts: each device's event channel is a `Channel`, shared by the driver and the
//! event handler it is. The handler masks the channel (a bit in shared memory) and the
//! network loop unmasks it when it has drained the ring ([`Nic::enable_rx_interrupt`]):
//! the PV counterpart of MSI-X masking, without a VM exit.

use super::xenstore::{StoreError, XenStore};
use crate::dma::DmaBuffer;
use crate::nic::{Nic, NicError, NicStats};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use arch::platform::{Irq, IrqHandler};
use arch::xen::events::EventChannels;
use arch::xen::grants::Grants;
use arch::xen::shared::SharedPage;
use core::sync::atomic::{AtomicU64, Ordering};
use xen_iface::grant::GrantRef;
use xen_iface::netfront::{NetfrontError, NetfrontRings, RxEvent, RX_IDS, TX_IDS};
use xen_iface::xenstore::{Error as XsError, XsErrno};

/// xenbus states (`io/xenbus.h`).
mod state {
    pub const INIT_WAIT: u32 = 2;
    pub const CONNECTED: u32 = 4;
}

const NODE: &str = "device/vif/0";
const CONNECT_TIMEOUT_NS: u64 = 20_000_000_000;
const MAX_FRAME: usize = 1514;

/// Why the device could not be connected.
#[derive(Clone, Debug)]
pub enum NetfrontInitError {
    /// A xenstore operation failed (with what was asked).
    Store(&'static str, StoreError),
    /// A xenstore value could not be parsed.
    BadValue(&'static str, String),
    /// Out of memory for rings or buffers.
    NoMemory,
    /// Out of grant references.
    NoGrants,
    /// Xen refused an event channel.
    EventChannel(i64),
}

/// The event channel to the back end: shared by the driver and its event handler.
struct Channel {
    events: &'static EventChannels,
    port: u32,
    /// Events taken.
    interrupts: AtomicU64,
}

impl Channel {
    fn mask(&self) {
        self.events.mask(self.port);
    }

    fn unmask(&self) {
        self.events.unmask(self.port);
    }

    fn notify(&self) {
        self.events.notify(self.port);
    }
}

impl IrqHandler for Channel {
    fn handle(&self, _port: Irq) {
        self.interrupts.fetch_add(1, Ordering::Relaxed);
        self.mask(); // until the network loop has drained the ring
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The netfront device.
pub struct Netfront {
    channel: &'static Channel,
    grants: &'static Grants,
    mac: [u8; 6],
    tx_mem: SharedPage,
    rx_mem: SharedPage,
    rings: NetfrontRings,
    tx_bufs: Vec<DmaBuffer>,
    rx_bufs: Vec<DmaBuffer>,
    grefs: Vec<GrantRef>,
    tx_grefs: Vec<GrantRef>,
    rx_grefs: Vec<GrantRef>,
    _ring_pages: [DmaBuffer; 2],
    ip: Option<String>,
    broken_reported: bool,
    stats: NicStats,
}

// SAFETY: the driver's buffers and shared pages are only used through &mut self; the
// state the event handler shares with it (its `Channel`) is atomic or immutable.
unsafe impl Send for Netfront {}

fn page() -> Result<DmaBuffer, NetfrontInitError> {
    DmaBuffer::new(4096).ok_or(NetfrontInitError::NoMemory)
}

impl Netfront {
    /// True if the toolstack gave this domain a vif.
    pub fn present(store: &XenStore) -> bool {
        store.read(&format!("{NODE}/backend-id")).is_ok()
    }

    /// Connects to the back end and posts every receive buffer.
    pub fn init(
        store: &XenStore,
        events: &'static EventChannels,
        grants: &'static Grants,
    ) -> Result<Netfront, NetfrontInitError> {
        let read = |key: &'static str| {
            store.read_string(&format!("{NODE}/{key}")).map_err(|e| NetfrontInitError::Store(key, e))
        };
        let backend = read("backend")?;
        let id_text = read("backend-id")?;
        let backend_id: u16 = id_text.trim().parse().map_err(|_| NetfrontInitError::BadValue("backend-id", id_text))?;
        let mac_text = read("mac")?;
        let mac = parse_mac(&mac_text).ok_or(NetfrontInitError::BadValue("mac", mac_text))?;
        let ip = store.read_string(&format!("{backend}/ip")).ok();

        // The back end must be waiting for us before it will look at what we write.
        store
            .wait_for(&format!("{backend}/state"), CONNECT_TIMEOUT_NS, |s| {
                s.trim().parse::<u32>().is_ok_and(|v| v >= state::INIT_WAIT)
            })
            .map_err(|e| NetfrontInitError::Store("backend state InitWait", e))?;

        let ring_pages = [page()?, page()?];
        let (tx_page, rx_page) = (ring_pages[0].phys(), ring_pages[1].phys());
        // SAFETY: the ring pages are ours, page-sized and identity-mapped; only the back end shares them.
        let (tx_mem, rx_mem) = unsafe { (SharedPage::new(tx_page, 4096), SharedPage::new(rx_page, 4096)) };
        let rings = NetfrontRings::new(&tx_mem, &rx_mem).map_err(|_| NetfrontInitError::NoMemory)?;
        let grant = |frame: u64, readonly: bool| {
            grants.grant(backend_id, frame, readonly).map_err(|_| NetfrontInitError::NoGrants)
        };
        let tx_ref = grant(ring_pages[0].phys() >> 12, false)?;
        let rx_ref = grant(ring_pages[1].phys() >> 12, false)?;
        let mut tx_bufs = Vec::with_capacity(TX_IDS);
        let mut tx_grefs = Vec::with_capacity(TX_IDS);
        for _ in 0..TX_IDS {
            let b = page()?;
            tx_grefs.push(grant(b.phys() >> 12, true)?);
            tx_bufs.push(b);
        }
        let mut rx_bufs = Vec::with_capacity(RX_IDS);
        let mut rx_grefs = Vec::with_capacity(RX_IDS);
        for _ in 0..RX_IDS {
            let b = page()?;
            rx_grefs.push(grant(b.phys() >> 12, false)?);
            rx_bufs.push(b);
        }
        let xen = events.xen();
        let port = xen.alloc_unbound(backend_id).map_err(NetfrontInitError::EventChannel)?;
        let channel: &'static Channel = Box::leak(Box::new(Channel { events, port, interrupts: AtomicU64::new(0) }));
        channel.mask();
        events.bind(port, channel).map_err(|_| NetfrontInitError::EventChannel(0))?;
        channel.mask(); // bind unmasks; stay masked until the loop arms it

        let settings = [
            ("tx-ring-ref", format!("{tx_ref}")),
            ("rx-ring-ref", format!("{rx_ref}")),
            ("event-channel", format!("{port}")),
            ("request-rx-copy", "1".into()),
            ("feature-rx-notify", "1".into()),
            ("feature-sg", "0".into()),
            ("feature-gso-tcpv4", "0".into()),
            ("feature-no-csum-offload", "1".into()),
            ("state", format!("{}", state::CONNECTED)),
        ];
        loop {
            let tx = store.transaction_start().map_err(|e| NetfrontInitError::Store("transaction", e))?;
            for (key, value) in &settings {
                store.write(&format!("{NODE}/{key}"), value, tx).map_err(|e| NetfrontInitError::Store(key, e))?;
            }
            match store.transaction_end(tx, true) {
                Ok(()) => break,
                Err(StoreError::Xs(XsError::Xs(XsErrno::Again))) => continue,
                Err(e) => return Err(NetfrontInitError::Store("commit", e)),
            }
        }
        store
            .wait_for(&format!("{backend}/state"), CONNECT_TIMEOUT_NS, |s| s.trim() == "4")
            .map_err(|e| NetfrontInitError::Store("backend state Connected", e))?;

        let mut grefs = alloc::vec![tx_ref, rx_ref];
        grefs.extend_from_slice(&tx_grefs);
        grefs.extend_from_slice(&rx_grefs);
        let mut nf = Netfront {
            channel,
            grants,
            mac,
            tx_mem,
            rx_mem,
            rings,
            tx_bufs,
            rx_bufs,
            grefs,
            tx_grefs,
            rx_grefs,
            _ring_pages: ring_pages,
            ip,
            broken_reported: false,
            stats: NicStats::default(),
        };
        for id in 0..RX_IDS as u16 {
            let gref = nf.rx_grefs[id as usize];
            nf.rings.post_rx(&nf.rx_mem, id, gref).map_err(|_| NetfrontInitError::NoMemory)?;
        }
        if nf.rings.flush_rx(&nf.rx_mem) {
            xen.evtchn_send(port);
        }
        log::info!("netfront: connected to {backend} (domain {backend_id}), {} grants live", grants.live());
        Ok(nf)
    }

    /// The address the toolstack configured for this vif (`ip` in its back end), if any.
    pub fn configured_ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }

    /// Turns an error from the rings into the NIC's, tearing down on a violation.
    fn failed(&mut self, e: NetfrontError) -> NicError {
        match e {
            NetfrontError::Broken(v) => {
                if !self.broken_reported {
                    self.broken_reported = true;
                    self.stats.bad_responses += 1;
                    log::error!("netfront: the back end broke the protocol ({v:?}); interface disabled");
                    self.channel.mask();
                    for gref in core::mem::take(&mut self.grefs) {
                        // A page the back end still maps stays revoking; nothing reuses it.
                        let _ = self.grants.revoke(gref);
                    }
                }
                NicError::Broken
            }
            NetfrontError::Full | NetfrontError::Misuse => NicError::Busy,
        }
    }
}

impl Nic for Netfront {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> usize {
        1500
    }

    fn can_transmit(&mut self) -> bool {
        if self.rings.tx_free() == 0 {
            if let Err(e) = self.rings.tx_reclaim(&self.tx_mem) {
                self.failed(e);
            }
        }
        self.rings.tx_free() > 0
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), NicError> {
        if len > MAX_FRAME || len == 0 {
            return Err(NicError::TooLarge);
        }
        if let Err(e) = self.rings.tx_reclaim(&self.tx_mem) {
            return Err(self.failed(e));
        }
        let id = self.rings.tx_alloc().ok_or(if self.rings.broken().is_some() {
            NicError::Broken
        } else {
            NicError::Busy
        })?;
        let buf = self.tx_bufs.get_mut(id as usize).ok_or(NicError::Busy)?;
        fill(&mut buf.as_mut_slice()[..len]);
        let gref = self.tx_grefs.get(id as usize).copied().ok_or(NicError::Busy)?;
        match self.rings.tx_submit(&self.tx_mem, id, gref, len as u16) {
            Ok(notify) => {
                if notify {
                    self.channel.notify();
                }
                self.stats.tx_frames += 1;
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn can_receive(&mut self) -> bool {
        self.rings.has_rx(&self.rx_mem)
    }

    fn receive(&mut self, consume: &mut dyn FnMut(&[u8])) -> Result<bool, NicError> {
        let event = match self.rings.next_rx(&self.rx_mem) {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(false),
            Err(e) => return Err(self.failed(e)),
        };
        let id = match event {
            RxEvent::Frame { id, offset, len } => {
                // next_rx checked offset + len against the page: this slice is in bounds.
                if let Some(frame) = self
                    .rx_bufs
                    .get(id as usize)
                    .and_then(|b| b.as_slice().get(offset as usize..(offset + len) as usize))
                {
                    consume(frame);
                    self.stats.rx_frames += 1;
                }
                id
            }
            RxEvent::Dropped { id } => {
                self.stats.bad_responses += 1;
                id
            }
        };
        let gref = self.rx_grefs.get(id as usize).copied().unwrap_or(0);
        if let Err(e) = self.rings.post_rx(&self.rx_mem, id, gref) {
            return Err(self.failed(e));
        }
        if self.rings.flush_rx(&self.rx_mem) {
            self.channel.notify();
        }
        Ok(true)
    }

    fn enable_rx_interrupt(&mut self) -> bool {
        if self.rings.broken().is_some() {
            return false;
        }
        self.rings.arm_rx(&self.rx_mem);
        self.channel.unmask();
        true
    }

    fn name(&self) -> &'static str {
        "netfront"
    }

    fn stats(&self) -> NicStats {
        NicStats {
            interrupts: self.channel.interrupts.load(Ordering::Relaxed),
            grants: self.grants.live() as u64,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_mac;

    #[test]
    fn macs() {
        assert_eq!(parse_mac("00:16:3e:0a:0b:ff\n"), Some([0, 0x16, 0x3e, 0x0a, 0x0b, 0xff]));
        assert_eq!(parse_mac("00:16:3e:0a:0b"), None);
        assert_eq!(parse_mac("00:16:3e:0a:0b:ff:01"), None);
        assert_eq!(parse_mac("zz:16:3e:0a:0b:ff"), None);
    }
}
