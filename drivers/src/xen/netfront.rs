//! netfront: the guest half of Xen's split network driver, as a [`Nic`].
//!
//! All of the protocol is `xen_iface::netfront`'s: the xenbus handshake, the pages lent
//! to the back end and their clean-up on every failing path (`open`), the rings and every
//! check of what the back end writes (`NetfrontRings`), frames in and out (`Device`).
//! This module gives it the kernel's memory ([`DmaBuffer`] pages), grant table, event
//! channels and xenstore.
//!
//! Data: one page per ring id, lent once at start (so the live-grant count stays flat
//! however many packets pass); a received frame is copied out of its pages through
//! `SharedMem::read_bytes` before the stack sees it, a frame to send is built in its page
//! while its id is free. The TCP/UDP checksum of a received frame is checked here unless
//! the back end vouched for it (`xen_iface::netfront::csum`). When the back end breaks
//! the protocol the device is marked broken, its pages are taken back (revoked and
//! freed, or leaked if still mapped), and every call fails from then on.
//!
//! Going away: once connected, the driver watches its back end's `state` in xenstore.
//! The watch event arrives on xenstored's event channel, whose handler only sets a flag;
//! [`Nic::check_link`], called on every turn of the network loop, reads that flag and
//! nothing more unless it is set (no xenstore round trip per packet). When the back end
//! went `Closing` or `Closed`, or its node vanished (`xl network-detach`), the device
//! stops its rings, runs the xenbus close protocol (`xen_iface::xenbus::close`), takes
//! every page back (revoked and freed, or leaked and counted if still mapped), closes its
//! event channel, logs one line with the counts, and from then on every call says
//! [`NicError::Gone`]. A state value that is not a state is logged and ignored (see
//! `xen_iface::xenbus::close` for why).
//!
//! Interrupts: each device's event channel is a `Channel`, shared by the driver and the
//! event handler it is. The handler masks the channel (a bit in shared memory) and the
//! network loop unmasks it when it has drained the ring ([`Nic::enable_rx_interrupt`]):
//! the PV counterpart of MSI-X masking, without a VM exit.
//!
//! The levers of issue 14 ([`NetfrontConfig`], each on by default, each a switch so its
//! effect can be measured): receive offloads (a frame may be a GSO segment of up to 64
//! KiB over several slots); receive buffers given back in batches of [`RX_REFILL_BATCH`]
//! with at most one notification each, all of them whenever the ring is drained (off:
//! each buffer at once); event suppression (off: every publication notifies the back
//! end whatever `req_event` says, every received packet asks for the next event, and
//! the handler leaves the channel unmasked, so each packet may cost an event).

use super::xenstore::XenStore;
use crate::dma::DmaBuffer;
use crate::nic::csum::l4_checksum_ok;
use crate::nic::{Gone, Nic, NicError, NicStats, Received};
use alloc::boxed::Box;
use arch::platform::{Clock, Irq, IrqHandler};
use arch::xen::events::EventChannels;
use arch::xen::grants::Grants;
use core::sync::atomic::{AtomicU64, Ordering};
use xen_iface::grant::loan::{Frame, GrantOps};
use xen_iface::grant::{GrantError, GrantRef};
use xen_iface::netfront::device::{self, Device};
use xen_iface::netfront::open::{open, Host, OpenError, OpenFailure};
use xen_iface::netfront::NetfrontError;
use xen_iface::xenbus::close::{judge, BackendEnd, Watched, CLOSE_STEP_WAIT_NS};
use xen_iface::xenbus::XenbusState;

const NODE: &str = "device/vif/0";
/// The token of the watch on the back end's state.
const WATCH_TOKEN: &str = "netfront-vif0";
const CONNECT_TIMEOUT_NS: u64 = 20_000_000_000;
const MAX_FRAME: usize = 1514;
const PAGE: usize = 4096;
/// Receive buffers queued before they are published (and the back end perhaps notified).
pub const RX_REFILL_BATCH: u32 = 32;

/// How a netfront is opened and driven: the network levers, and a test's stall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetfrontConfig {
    /// Offer scatter-gather, TCPv4 GSO and checksum offload on receive.
    pub rx_offloads: bool,
    /// Give receive buffers back [`RX_REFILL_BATCH`] at a time (else one at a time).
    pub rx_refill_batch: bool,
    /// Hold notifications off through `req_event`/`rsp_event` and mask the channel
    /// between a receive event and the drained ring (else notify, and be notified,
    /// for every packet).
    pub event_suppression: bool,
    /// How long to wait between granting the rings and publishing them (a test's window
    /// to take the back end away mid-init); 0 normally.
    pub stall_ns: u64,
}

impl Default for NetfrontConfig {
    fn default() -> Self {
        NetfrontConfig { rx_offloads: true, rx_refill_batch: true, event_suppression: true, stall_ns: 0 }
    }
}

/// The event channel to the back end: shared by the driver and its event handler.
struct Channel {
    events: &'static EventChannels,
    port: u32,
    /// Events taken.
    interrupts: AtomicU64,
    /// The handler masks the channel until the loop has drained the ring.
    mask_in_handler: bool,
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
        if self.mask_in_handler {
            self.mask(); // until the network loop has drained the ring
        }
    }
}

/// A heap page as the back end sees it: its frame.
impl Frame for DmaBuffer {
    fn frame(&self) -> u64 {
        self.phys() >> 12
    }
}

/// The kernel's side of opening a netfront.
struct Kernel {
    events: &'static EventChannels,
    grants: &'static Grants,
    clock: &'static dyn Clock,
    config: NetfrontConfig,
    /// The channel opened, for the device to keep.
    channel: Option<&'static Channel>,
}

impl GrantOps for Kernel {
    fn grant(&mut self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
        self.grants.grant(domid, frame, readonly)
    }

    fn revoke(&mut self, gref: GrantRef) -> Result<(), GrantError> {
        self.grants.revoke(gref)
    }
}

impl Host for Kernel {
    type Page = DmaBuffer;

    fn alloc_page(&mut self) -> Option<DmaBuffer> {
        DmaBuffer::new(PAGE)
    }

    fn open_channel(&mut self, domid: u16) -> Result<u32, i64> {
        let xen = self.events.xen();
        let port = xen.alloc_unbound(domid)?;
        // The handler lives as long as the kernel: a port may fire until it is closed.
        let channel: &'static Channel = Box::leak(Box::new(Channel {
            events: self.events,
            port,
            interrupts: AtomicU64::new(0),
            mask_in_handler: self.config.event_suppression,
        }));
        channel.mask();
        if let Err(e) = self.events.bind(port, channel) {
            log::warn!("netfront: event channel {port} not bound ({e:?})");
            let _ = xen.close(port);
            return Err(0);
        }
        channel.mask(); // bind unmasks; stay masked until the loop arms it
        self.channel = Some(channel);
        // The rings are granted by now; the handshake waits for the back end next. The
        // host's test of a back end taken away mid-init acts on this line.
        log::info!("netfront: rings granted, event channel {port}; waiting for back end domain {domid}");
        let stall_ns = self.config.stall_ns;
        if stall_ns > 0 {
            log::info!(
                "netfront: stalling {} ms before publishing the rings (fault=netfront-stall)",
                stall_ns / 1_000_000
            );
            let until = self.clock.now_ns().saturating_add(stall_ns);
            while self.clock.now_ns() < until {
                core::hint::spin_loop();
            }
        }
        Ok(port)
    }

    fn close_channel(&mut self, port: u32) {
        if let Err(e) = self.events.close(port) {
            log::warn!("netfront: event channel {port} not closed ({e})");
        }
        self.channel = None;
    }

    fn notify(&mut self, port: u32) {
        self.events.notify(port);
    }
}

/// The netfront device.
pub struct Netfront {
    channel: &'static Channel,
    store: &'static XenStore,
    grants: &'static Grants,
    clock: &'static dyn Clock,
    /// `<backend>/state`, watched while connected (`None`: the watch could not be set).
    watched: Option<alloc::string::String>,
    /// Set once the back end went away and the device was closed.
    gone: Option<Gone>,
    dev: Device<DmaBuffer>,
    config: NetfrontConfig,
    broken_reported: bool,
    stats: NicStats,
}

impl Netfront {
    /// True if the toolstack gave this domain a vif.
    pub fn present(store: &XenStore) -> bool {
        store.read(&alloc::format!("{NODE}/backend-id")).is_ok()
    }

    /// Connects to the back end and posts every receive buffer. On failure, nothing of
    /// the device is left: the front end is closed in xenstore, the event channel closed,
    /// every page taken back (see [`OpenFailure`] for how many were leaked).
    pub fn init(
        store: &'static XenStore,
        events: &'static EventChannels,
        grants: &'static Grants,
        clock: &'static dyn Clock,
        config: NetfrontConfig,
    ) -> Result<Netfront, OpenFailure> {
        let mut kernel = Kernel { events, grants, clock, config, channel: None };
        let mut dev = open(&mut kernel, &mut &*store, NODE, CONNECT_TIMEOUT_NS, config.rx_offloads)?;
        let Some(channel) = kernel.channel else {
            // Not reached: `open` returns a device only with its channel open.
            let returned = dev.take_back(&mut &*grants);
            return Err(OpenFailure { error: OpenError::EventChannel(0), returned });
        };
        log::info!(
            "netfront: connected to {} (domain {}), {} grants live; rx offloads {}, rx refill batch {}, event suppression {}",
            dev.backend(),
            dev.backend_id(),
            grants.live(),
            on_off(config.rx_offloads),
            if config.rx_refill_batch { RX_REFILL_BATCH } else { 1 },
            on_off(config.event_suppression),
        );
        // Watched from now on: a back end that goes away is answered (`check_link`).
        let state = alloc::format!("{}/state", dev.backend());
        let watched = match store.watch(&state, WATCH_TOKEN) {
            Ok(()) => Some(state),
            Err(e) => {
                log::warn!("netfront: no watch on {state} ({e:?}): a detached back end will not be noticed");
                None
            }
        };
        Ok(Netfront {
            channel,
            store,
            grants,
            clock,
            watched,
            gone: None,
            dev,
            config,
            broken_reported: false,
            stats: NicStats::default(),
        })
    }

    /// The address the toolstack configured for this vif (`ip` in its back end), if any.
    pub fn configured_ip(&self) -> Option<&str> {
        self.dev.ip()
    }

    /// Publishes the receive buffers queued again once `at_least` are (1: all of them),
    /// notifying the back end if it asked (always, without event suppression).
    fn refill(&mut self, at_least: u32) {
        if self.dev.rx_unpublished() >= at_least.max(1) && (self.dev.flush_rx() || !self.config.event_suppression) {
            self.channel.notify();
        }
    }

    /// Turns an error from the device into the NIC's, taking the pages back on a
    /// violation.
    fn failed(&mut self, e: NetfrontError) -> NicError {
        match e {
            NetfrontError::Broken(v) => {
                if !self.broken_reported {
                    self.broken_reported = true;
                    self.stats.bad_responses += 1;
                    self.channel.mask();
                    let r = self.dev.take_back(&mut &*self.grants);
                    log::error!(
                        "netfront: the back end broke the protocol ({v:?}); interface disabled, {} grants revoked, {} pages leaked (still mapped)",
                        r.revoked,
                        r.leaked
                    );
                }
                NicError::Broken
            }
            NetfrontError::Closed => NicError::Gone(self.gone.unwrap_or(Gone::BackendClosed)),
            NetfrontError::Full | NetfrontError::Misuse => NicError::Busy,
        }
    }

    /// The back end went away (`why`): stops the rings, closes the front end, takes every
    /// page back, closes the event channel, and says so in one line.
    fn detach(&mut self, why: Gone, state: &str) {
        self.gone = Some(why);
        self.channel.mask();
        let port = self.channel.port;
        let mut kernel = Kernel {
            events: self.channel.events,
            grants: self.grants,
            clock: self.clock,
            config: self.config,
            channel: None,
        };
        let Some(d) = self.dev.detach(&mut kernel, &mut &*self.store, NODE, CLOSE_STEP_WAIT_NS) else { return };
        if let Some(path) = self.watched.take() {
            if let Err(e) = self.store.unwatch(&path, WATCH_TOKEN) {
                log::warn!("netfront: the watch on {path} not removed ({e:?})");
            }
        }
        let ms = d.closing.took_ns / 1_000_000;
        let back = match d.closing.backend {
            BackendEnd::Closed => alloc::format!("the back end Closed after {ms} ms"),
            BackendEnd::Removed => alloc::format!("the back end removed after {ms} ms"),
            BackendEnd::Stuck(last) => alloc::format!("the back end still {last:?} after {ms} ms"),
        };
        let front = if d.closing.front_closed { "front end Closed" } else { "front end NOT closed (xenstore refused)" };
        log::warn!(
            "netfront: the back end went away ({}, state {state}); {front}, {back}; {} grants revoked, {} pages leaked (still mapped by the back end); event channel {port} closed; interface gone ({} grants live)",
            why.word(),
            d.returned.revoked,
            d.returned.leaked,
            self.grants.live(),
        );
    }
}

impl Nic for Netfront {
    fn mac(&self) -> [u8; 6] {
        self.dev.mac()
    }

    fn mtu(&self) -> usize {
        1500
    }

    fn can_transmit(&mut self) -> bool {
        if self.gone.is_some() {
            return false;
        }
        if self.dev.rings().tx_free() == 0 {
            if let Err(e) = self.dev.tx_reclaim() {
                self.failed(e);
            }
        }
        self.dev.rings().broken().is_none() && self.dev.rings().tx_free() > 0
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), NicError> {
        if let Some(g) = self.gone {
            return Err(NicError::Gone(g));
        }
        if len > MAX_FRAME || len == 0 {
            return Err(NicError::TooLarge);
        }
        if let Err(e) = self.dev.tx_reclaim() {
            return Err(self.failed(e));
        }
        // The page's id is free: the back end has no reason to read it while it is filled.
        let sent = self.dev.transmit(len as u16, |page| {
            if let Some(frame) = page.as_mut_slice().get_mut(..len) {
                fill(frame);
            }
        });
        match sent {
            Ok(notify) => {
                if notify || !self.config.event_suppression {
                    self.channel.notify();
                }
                self.stats.tx_frames += 1;
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn can_receive(&mut self) -> bool {
        if self.gone.is_some() {
            return false;
        }
        let ready = self.dev.has_rx();
        if !ready {
            self.refill(1);
        }
        ready
    }

    fn receive(&mut self, into: &mut [u8]) -> Result<Received, NicError> {
        if let Some(g) = self.gone {
            return Err(NicError::Gone(g));
        }
        let got = match self.dev.receive(into) {
            Ok(device::Received::Nothing) => Received::Nothing,
            Ok(device::Received::Frame { len, validated }) => {
                // A copy in the caller's memory: the back end cannot change it.
                match into.get(..len) {
                    Some(frame) if validated || l4_checksum_ok(frame) => {
                        self.stats.rx_frames += 1;
                        Received::Frame(len)
                    }
                    _ => {
                        log::debug!("netfront: a {len}-byte frame with a bad checksum dropped");
                        Received::Dropped
                    }
                }
            }
            Ok(device::Received::Dropped) => {
                self.stats.bad_responses += 1;
                Received::Dropped
            }
            Err(e) => return Err(self.failed(e)),
        };
        if !self.config.event_suppression {
            // rsp_event = rsp_cons + 1: the back end notifies for the very next packet.
            self.dev.arm_rx();
        }
        self.refill(if self.config.rx_refill_batch { RX_REFILL_BATCH } else { 1 });
        Ok(got)
    }

    fn enable_rx_interrupt(&mut self) -> bool {
        if self.gone.is_some() || self.dev.rings().broken().is_some() {
            return false;
        }
        self.refill(1);
        self.dev.arm_rx();
        self.channel.unmask();
        true
    }

    fn check_link(&mut self) -> Result<(), NicError> {
        if let Some(g) = self.gone {
            return Err(NicError::Gone(g));
        }
        // The hot path: one load, while xenstored said nothing.
        if self.watched.is_none() || !self.store.messages_waiting() {
            return Ok(());
        }
        let Some(state) = self.watched.clone() else { return Ok(()) };
        match self.store.take_events_for(WATCH_TOKEN) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                log::warn!("netfront: xenstore's events not read ({e:?})");
                return Ok(());
            }
        }
        let why = match judge(self.store.read(&state)) {
            Watched::Stays(_) => return Ok(()),
            Watched::Ignored(why) => {
                // The data path does not depend on the key; a real removal closes it or
                // removes it. Keep serving.
                log::warn!("netfront: the back end's state ignored: {why}");
                return Ok(());
            }
            Watched::Closes(XenbusState::Closing) => Gone::BackendClosing,
            Watched::Closes(_) => Gone::BackendClosed,
            Watched::Removed => Gone::BackendRemoved,
        };
        self.detach(why, &state);
        Err(NicError::Gone(why))
    }

    fn rx_segments(&self) -> bool {
        self.config.rx_offloads
    }

    fn rx_checksums_checked(&self) -> bool {
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

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}
