//! virtio-net on any [`Transport`] and DMA memory, with one MSI-X vector for receive.
//!
//! Queue 0 receives, queue 1 transmits. Every receive descriptor is posted at start and
//! reposted as soon as its frame was handed up; transmit descriptors are reclaimed
//! lazily when a send needs one, and the device is asked not to interrupt for them.
//! Frames pass through two buffers of the driver's own: a received frame is copied out
//! of device-writable memory before the stack sees a byte of it, and a frame to send is
//! built there and copied in, so no Rust reference ever covers memory the device writes.
//!
//! The device is untrusted: whatever breaks the ring protocol (see [`super::queue`])
//! sets FAILED in the device status and marks the driver broken; every call then fails
//! with [`NicError::Broken`] and the kernel carries on without the network.
//!
//! The receive interrupt comes from the platform as a route ([`MsiRoute`]), connected
//! to MSI-X entry 0 as an [`MsixVector`]; the driver is the same whichever controller
//! delivers it (a LAPIC vector, or an event channel bound to a PIRQ in hybrid mode).
//! While the network loop polls, the device is asked not to interrupt the way a good
//! driver does it, in the ring: by the event index when the device offers
//! `VIRTIO_F_EVENT_IDX` (an armed interrupt fires once), else by `NO_INTERRUPT`; the
//! loop re-arms it when the queue is drained ([`Nic::enable_rx_interrupt`]). No MSI-X
//! table write happens per interrupt. [`RxIrqPolicy`] adds the two variants measured
//! against that: `mask_each`, the mask-in-handler/unmask-after-poll pattern of the 2009
//! slides (on a LAPIC MSI, two trapped table writes per interrupt; on a PIRQ, the event
//! channel's mask bit), and interrupt moderation, which keeps the interrupt off for a
//! while after each one. Without MSI-X the driver works polled. The handler is the
//! device's `RxInterrupt`, the state it shares with the driver, so devices share nothing.
//!
//! With the `offload` network lever the driver accepts the receive offloads a good
//! driver takes ([`header`]): merged buffers, checksums the device vouched for or left
//! blank, and TCPv4 segments of up to 64 KiB that the device did not split (the stream
//! into the guest then costs the device model one packet per 64 KiB, not per 1,514
//! bytes). A packet is gathered from its buffers into the caller's memory; the checksums
//! the device did not vouch for are checked here ([`crate::nic::csum`]).
//!
//! [`VirtioNet::init`] brings up a PCI function on the kernel heap; the generic
//! [`VirtioNet::start`] is what host tests drive with a fake transport (`net/tests.rs`).

mod header;

pub use header::RxOffloads;

use super::pci::VirtioPci;
use super::queue::{Direction, QueueError, SplitQueue};
use super::transport::{negotiate, Notify, Transport, TransportError};
use super::{feature, status, NO_VECTOR};
use crate::dma::{DmaAlloc, DmaBuffer, HeapDma};
use crate::nic::csum::l4_checksum_ok;
use crate::nic::{Nic, NicError, NicStats, Received};
use crate::pci::msix::{MsixCapability, MsixTable, MsixVector, VectorTable};
use crate::pci::{ConfigSpace, PciAddress, PciFunction};
use alloc::boxed::Box;
use alloc::vec;
use arch::platform::{Clock, InterruptController, Irq, IrqHandler, MsiMasking, MsiRoute};
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use header::{RxHeader, HDR_LEN};
use spin::Once;
use xen_iface::shared::SharedMem;

/// `VIRTIO_NET_F_MAC`.
const F_MAC: u64 = 1 << 5;
/// Buffer per descriptor: header + a full Ethernet frame, rounded up.
const BUF_LEN: usize = 2048;
/// Largest Ethernet frame without FCS (1500-byte payload + 14-byte header).
const MAX_FRAME: usize = 1514;
/// Most descriptors per queue the driver uses.
const MAX_QUEUE: u16 = 256;
const RX_QUEUE: u16 = 0;
const TX_QUEUE: u16 = 1;
const RX_MSIX_ENTRY: u16 = 0;

/// Device ids of virtio-net: transitional and modern.
pub const DEVICE_IDS: [u16; 2] = [0x1000, 0x1041];

/// Why the device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetInitError {
    /// Transport problem.
    Transport(TransportError),
    /// A queue could not be set up.
    Queue(QueueError),
    /// The device has no usable queue of that index.
    NoQueue(u16),
}

/// How the receive interrupt is kept quiet while the driver polls, beyond the ring's
/// own suppression (which is always on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxIrqPolicy {
    /// Mask the interrupt in its handler and unmask it once the queue is drained
    /// (`msimask=on`): on a LAPIC MSI two MSI-X table writes per interrupt.
    pub mask_each: bool,
    /// Interrupt moderation (`irqmod=`): after an interrupt the receive interrupt stays
    /// off at least this long, on the platform clock; 0 re-arms it as soon as the queue
    /// is drained.
    pub moderation_ns: u64,
}

/// How the driver is to run the device: its receive interrupt, and whether it accepts
/// the receive offloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetConfig {
    /// How the receive interrupt is kept quiet.
    pub irq: RxIrqPolicy,
    /// Accept merged receive buffers, checksum offload and TCPv4 segments in, where the
    /// device offers them (the `offload` network lever).
    pub rx_offloads: bool,
}

/// A device's receive interrupt: the state its handler shares with the driver.
struct RxInterrupt<V: VectorTable> {
    /// The MSI-X entry and its route, once connected (the handler is registered first).
    vector: Once<MsixVector<V>>,
    policy: RxIrqPolicy,
    clock: &'static dyn Clock,
    /// True while the interrupt is masked where its route masks it.
    masked: AtomicBool,
    /// Interrupts taken.
    count: AtomicU64,
    /// Clock reading at the last interrupt (kept under moderation only).
    last_ns: AtomicU64,
}

impl<V: VectorTable> IrqHandler for RxInterrupt<V> {
    fn handle(&self, _irq: Irq) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.policy.moderation_ns != 0 {
            self.last_ns.store(self.clock.now_ns(), Ordering::Relaxed);
        }
        if self.policy.mask_each && !self.masked.swap(true, Ordering::AcqRel) {
            if let Some(v) = self.vector.get() {
                v.mask();
            }
        }
    }
}

/// A virtio-net device on transport `T`, its queues in memory `M`.
pub struct VirtioNet<T: Transport, M: SharedMem> {
    transport: T,
    rx: SplitQueue<M>,
    tx: SplitQueue<M>,
    rx_notify: T::Notifier,
    tx_notify: T::Notifier,
    mac: [u8; 6],
    /// The receive interrupt; `None` when the driver polls.
    rx_irq: Option<&'static RxInterrupt<T::Vectors>>,
    /// Under moderation: the clock time until which the receive interrupt stays off.
    rx_held_until: Option<u64>,
    /// The receive offloads in effect.
    offloads: RxOffloads,
    /// Where a frame to send is built before it is copied to the device.
    tx_frame: Box<[u8]>,
    broken: bool,
    stats: NicStats,
}

impl VirtioNet<VirtioPci, DmaBuffer> {
    /// True if `f` is a virtio-net function.
    pub fn matches(f: &PciFunction) -> bool {
        f.vendor == super::VENDOR_ID && DEVICE_IDS.contains(&f.device)
    }

    /// Brings up PCI function `f`, its queues on the kernel heap: see [`Self::start`].
    pub fn init(
        cfg: &dyn ConfigSpace,
        f: &PciFunction,
        irqs: &'static dyn InterruptController,
        config: VirtioNetConfig,
        clock: &'static dyn Clock,
    ) -> Result<Self, NetInitError> {
        let t = VirtioPci::new(cfg, f.addr).map_err(NetInitError::Transport)?;
        Self::start(t, &HeapDma, irqs, || msix_table(cfg, f.addr), config, clock)
    }
}

/// The function's MSI-X table, enabled with every vector masked, if it has a usable one.
fn msix_table(cfg: &dyn ConfigSpace, addr: PciAddress) -> Option<MsixTable> {
    let cap = MsixCapability::find(cfg, addr)?;
    match MsixTable::enable(cfg, addr, &cap) {
        Ok(table) => {
            log::info!("virtio-net {addr}: MSI-X table at {:#x}, {} entries", table.address(), table.len());
            Some(table)
        }
        Err(e) => {
            log::warn!("virtio-net: MSI-X unusable ({e:?}), polling");
            None
        }
    }
}

/// Says how the receive interrupt was routed and how it will be kept quiet.
fn log_route<T: Transport>(t: &T, route: &MsiRoute, features: u64, policy: RxIrqPolicy) {
    let masked_at = match route.masking {
        MsiMasking::Device => "the MSI-X entry",
        MsiMasking::Controller(_) => "the controller",
    };
    let quiet = if features & feature::RING_EVENT_IDX != 0 { "event index" } else { "NO_INTERRUPT flag" };
    log::info!(
        "virtio-net {}: rx interrupt {} (message {:#x}/{:#x}, masked at {masked_at}); quiet while polling by the {quiet}{}, moderation {} us",
        t.location(),
        route.irq,
        route.message.address,
        route.message.data,
        if policy.mask_each { " and masking per interrupt" } else { "" },
        policy.moderation_ns / 1000,
    );
}

impl<T: Transport, M: SharedMem> VirtioNet<T, M> {
    /// Brings the device up: reset, negotiate, MSI-X (if `vectors` yields a table and the
    /// controller routes an interrupt), queues from `dma`, DRIVER_OK. The receive
    /// interrupt and offloads follow `config`, moderation timed on `clock`.
    pub fn start<D: DmaAlloc<Mem = M>>(
        t: T,
        dma: &D,
        irqs: &'static dyn InterruptController,
        vectors: impl FnOnce() -> Option<T::Vectors>,
        config: VirtioNetConfig,
        clock: &'static dyn Clock,
    ) -> Result<Self, NetInitError> {
        let policy = config.irq;
        t.reset();
        t.add_status(status::ACKNOWLEDGE | status::DRIVER);
        let offloads = RxOffloads::wanted(t.device_features(), config.rx_offloads);
        let wanted = feature::VERSION_1 | F_MAC | feature::RING_EVENT_IDX | offloads;
        let features = negotiate(&t, wanted, feature::VERSION_1).map_err(NetInitError::Transport)?;
        let offloads = RxOffloads::from_features(features);
        if config.rx_offloads {
            log::info!("virtio-net {}: receive offloads {offloads:?}", t.location());
        }

        let rx_irq = match vectors() {
            Some(table) => {
                let irq: &'static RxInterrupt<T::Vectors> = Box::leak(Box::new(RxInterrupt {
                    vector: Once::new(),
                    policy,
                    clock,
                    masked: AtomicBool::new(true),
                    count: AtomicU64::new(0),
                    last_ns: AtomicU64::new(0),
                }));
                match irqs.alloc_msi(irq) {
                    Ok(route) => {
                        log_route(&t, &route, features, policy);
                        irq.vector.call_once(|| MsixVector::connect(table, RX_MSIX_ENTRY, route));
                        Some(irq)
                    }
                    Err(e) => {
                        log::warn!("virtio-net {}: no interrupt route ({e:?}), polling", t.location());
                        None
                    }
                }
            }
            None => None,
        };
        let rx_vector = if rx_irq.is_some() { RX_MSIX_ENTRY } else { NO_VECTOR };
        t.set_config_vector(NO_VECTOR);

        let queue = |index: u16, dir: Direction| -> Result<SplitQueue<M>, NetInitError> {
            let max = t.queue_max_size(index).map_err(NetInitError::Transport)?;
            if max == 0 {
                return Err(NetInitError::NoQueue(index));
            }
            // Largest power of two the device allows, capped.
            let size = 1u16 << (15 - max.min(MAX_QUEUE).leading_zeros());
            SplitQueue::new(dma, size, BUF_LEN, dir).map_err(NetInitError::Queue)
        };
        let mut rx = queue(RX_QUEUE, Direction::FromDevice)?;
        let mut tx = queue(TX_QUEUE, Direction::ToDevice)?;
        if features & feature::RING_EVENT_IDX != 0 {
            rx.use_event_idx();
            tx.use_event_idx();
        }
        tx.suppress_interrupts();
        let rx_notify =
            t.setup_queue(RX_QUEUE, rx.size(), rx.addresses(), rx_vector).map_err(NetInitError::Transport)?;
        let tx_notify =
            t.setup_queue(TX_QUEUE, tx.size(), tx.addresses(), NO_VECTOR).map_err(NetInitError::Transport)?;

        while let Some(id) = rx.alloc() {
            rx.submit(id, BUF_LEN).map_err(NetInitError::Queue)?;
        }
        let mut mac = [0u8; 6];
        if features & F_MAC != 0 {
            for (i, b) in mac.iter_mut().enumerate() {
                *b = t.device_config_u8(i as u32);
            }
        } else {
            mac = [0x02, 0, 0, 0, 0, 0x01]; // locally administered
        }
        t.add_status(status::DRIVER_OK);
        rx_notify.notify();
        Ok(VirtioNet {
            transport: t,
            rx,
            tx,
            rx_notify,
            tx_notify,
            mac,
            rx_irq,
            rx_held_until: None,
            offloads,
            tx_frame: vec![0; BUF_LEN].into_boxed_slice(),
            broken: false,
            stats: NicStats::default(),
        })
    }

    /// Gives up on a device that broke the protocol: FAILED in its status, every call
    /// refused from now on.
    fn mark_broken(&mut self, why: fmt::Arguments<'_>) -> NicError {
        if !self.broken {
            log::error!("virtio-net {}: {why}; interface disabled", self.transport.location());
            self.transport.add_status(status::FAILED);
            self.broken = true;
        }
        self.stats.bad_responses += 1;
        NicError::Broken
    }

    fn check(&mut self, r: Result<(), QueueError>) -> Result<(), NicError> {
        match r {
            Ok(()) => Ok(()),
            Err(QueueError::Broken(v)) => Err(self.mark_broken(format_args!("device broke the ring protocol ({v:?})"))),
            Err(_) => Err(NicError::Busy),
        }
    }

    /// Hands receive buffer `id` back to the device.
    fn repost(&mut self, id: u16) -> Result<(), NicError> {
        let r = self.rx.submit(id, BUF_LEN);
        self.check(r)
    }

    /// Copies the packet that starts in receive buffer `first` (id, bytes written) into
    /// `into`, gathering its further buffers under merged buffers, and reposts every
    /// buffer it took. A packet the caller cannot use (a runt, larger than `into`, a
    /// segmentation type not accepted, a bad checksum) is dropped and counted; a header
    /// that breaks the buffer accounting breaks the device.
    fn take_packet(&mut self, (id, written): (u16, usize), into: &mut [u8]) -> Result<Received, NicError> {
        let mut raw = [0u8; HDR_LEN];
        if written < HDR_LEN {
            self.repost(id)?;
            self.stats.bad_responses += 1; // not even a header
            return Ok(Received::Dropped);
        }
        self.rx.read_buffer(id, 0, &mut raw).map_err(|_| NicError::Broken)?;
        let header = RxHeader::parse(&raw);
        let buffers = match header.buffers(self.offloads, self.rx.size()) {
            Ok(n) => n,
            Err(e) => return Err(self.mark_broken(format_args!("bad receive header ({e:?})"))),
        };
        let (mut len, mut fits) = (0usize, true);
        let mut piece = (id, written, HDR_LEN);
        for i in 0..buffers {
            if i > 0 {
                piece = match self.rx.pop_used() {
                    Ok(Some((id, written))) => (id, written, 0),
                    Ok(None) => {
                        let why = format_args!("a packet of {buffers} buffers published before its buffer {i}");
                        return Err(self.mark_broken(why));
                    }
                    Err(e) => return self.check(Err(e)).map(|_| Received::Nothing),
                };
            }
            let (id, written, skip) = piece;
            // `pop_used` checked written <= BUF_LEN, the buffer's size; skip <= written.
            match into.get_mut(len..len + (written - skip)) {
                Some(dst) if fits => {
                    self.rx.read_buffer(id, skip, dst).map_err(|_| NicError::Broken)?;
                    len += dst.len();
                }
                _ => fits = false,
            }
            self.repost(id)?;
        }
        let usable = fits && len > 0;
        let ok = match header.check(self.offloads) {
            Ok(vouched) => usable && (vouched || !self.offloads.csum || l4_checksum_ok(&into[..len])),
            Err(e) => {
                log::debug!("virtio-net: a packet dropped: {e:?}");
                false
            }
        };
        if !ok {
            self.stats.bad_responses += 1;
            return Ok(Received::Dropped);
        }
        self.stats.rx_frames += 1;
        Ok(Received::Frame(len))
    }

    fn reclaim_tx(&mut self) -> Result<(), NicError> {
        loop {
            match self.tx.pop_used() {
                Ok(Some((id, _))) => {
                    let r = self.tx.release(id);
                    self.check(r)?;
                }
                Ok(None) => return Ok(()),
                Err(e) => return self.check(Err(e)),
            }
        }
    }
}

impl<T, M> Nic for VirtioNet<T, M>
where
    T: Transport + Send,
    T::Notifier: Send,
    M: SharedMem + Send,
{
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> usize {
        1500
    }

    fn can_transmit(&mut self) -> bool {
        !self.broken && (self.tx.free_count() > 0 || self.reclaim_tx().is_ok() && self.tx.free_count() > 0)
    }

    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), NicError> {
        if self.broken {
            return Err(NicError::Broken);
        }
        if len > MAX_FRAME {
            return Err(NicError::TooLarge);
        }
        if self.tx.free_count() == 0 {
            self.reclaim_tx()?;
        }
        let id = self.tx.alloc().ok_or(NicError::Busy)?;
        let frame = &mut self.tx_frame[..HDR_LEN + len]; // len <= MAX_FRAME, within BUF_LEN
        frame[..HDR_LEN].fill(0);
        fill(&mut frame[HDR_LEN..]);
        if self.tx.write_buffer(id, 0, frame).is_err() {
            let _ = self.tx.release(id);
            return Err(NicError::Busy);
        }
        let r = self.tx.submit(id, HDR_LEN + len);
        self.check(r)?;
        if self.tx.needs_notify() {
            self.tx_notify.notify();
        }
        self.stats.tx_frames += 1;
        Ok(())
    }

    fn can_receive(&mut self) -> bool {
        !self.broken && self.rx.has_used()
    }

    fn receive(&mut self, into: &mut [u8]) -> Result<Received, NicError> {
        if self.broken {
            return Err(NicError::Broken);
        }
        let first = match self.rx.pop_used() {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(Received::Nothing),
            Err(e) => return self.check(Err(e)).map(|_| Received::Nothing),
        };
        if self.rx_irq.is_some() {
            self.rx.pause_interrupts(); // polling now: no interrupt until re-armed
        }
        let got = self.take_packet(first, into)?;
        if self.rx.needs_notify() {
            self.rx_notify.notify();
        }
        Ok(got)
    }

    fn enable_rx_interrupt(&mut self) -> bool {
        let Some(irq) = self.rx_irq else { return false };
        if self.broken {
            return false;
        }
        if irq.policy.moderation_ns != 0 && irq.count.load(Ordering::Relaxed) != 0 {
            let until = irq.last_ns.load(Ordering::Relaxed).saturating_add(irq.policy.moderation_ns);
            if irq.clock.now_ns() < until {
                self.rx.pause_interrupts();
                self.rx_held_until = Some(until);
                return true;
            }
        }
        self.rx_held_until = None;
        self.rx.arm_interrupts();
        if irq.masked.swap(false, Ordering::AcqRel) {
            if let Some(v) = irq.vector.get() {
                v.unmask();
            }
        }
        true
    }

    fn rx_interrupt_held_until_ns(&self) -> Option<u64> {
        self.rx_held_until
    }

    fn rx_segments(&self) -> bool {
        self.offloads.tso4
    }

    fn rx_checksums_checked(&self) -> bool {
        self.offloads.csum
    }

    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn stats(&self) -> NicStats {
        NicStats { interrupts: self.rx_irq.map_or(0, |i| i.count.load(Ordering::Relaxed)), ..self.stats }
    }
}

#[cfg(test)]
mod tests;
