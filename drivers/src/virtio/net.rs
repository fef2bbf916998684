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
//! [`VirtioNet::init`] brings up a PCI function on the kernel heap; the generic
//! [`VirtioNet::start`] is what host tests drive with a fake transport (`net/tests.rs`).

use super::pci::VirtioPci;
use super::queue::{Direction, QueueError, SplitQueue};
use super::transport::{negotiate, Notify, Transport, TransportError};
use super::{feature, status, NO_VECTOR};
use crate::dma::{DmaAlloc, DmaBuffer, HeapDma};
use crate::nic::{Nic, NicError, NicStats, Received};
use crate::pci::msix::{MsixCapability, MsixTable, MsixVector, VectorTable};
use crate::pci::{ConfigSpace, PciAddress, PciFunction};
use alloc::boxed::Box;
use alloc::vec;
use arch::platform::{Clock, InterruptController, Irq, IrqHandler, MsiMasking, MsiRoute};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Once;
use xen_iface::shared::SharedMem;

/// `VIRTIO_NET_F_MAC`.
const F_MAC: u64 = 1 << 5;
/// Size of `struct virtio_net_hdr` with VERSION_1 (includes `num_buffers`).
const HDR_LEN: usize = 12;
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
        policy: RxIrqPolicy,
        clock: &'static dyn Clock,
    ) -> Result<Self, NetInitError> {
        let t = VirtioPci::new(cfg, f.addr).map_err(NetInitError::Transport)?;
        Self::start(t, &HeapDma, irqs, || msix_table(cfg, f.addr), policy, clock)
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
    /// interrupt follows `policy`, moderation timed on `clock`.
    pub fn start<D: DmaAlloc<Mem = M>>(
        t: T,
        dma: &D,
        irqs: &'static dyn InterruptController,
        vectors: impl FnOnce() -> Option<T::Vectors>,
        policy: RxIrqPolicy,
        clock: &'static dyn Clock,
    ) -> Result<Self, NetInitError> {
        t.reset();
        t.add_status(status::ACKNOWLEDGE | status::DRIVER);
        let features = negotiate(&t, feature::VERSION_1 | F_MAC | feature::RING_EVENT_IDX, feature::VERSION_1)
            .map_err(NetInitError::Transport)?;

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
            tx_frame: vec![0; BUF_LEN].into_boxed_slice(),
            broken: false,
            stats: NicStats::default(),
        })
    }

    fn check(&mut self, r: Result<(), QueueError>) -> Result<(), NicError> {
        match r {
            Ok(()) => Ok(()),
            Err(QueueError::Broken(v)) => {
                if !self.broken {
                    log::error!(
                        "virtio-net {}: device broke the ring protocol ({v:?}); interface disabled",
                        self.transport.location()
                    );
                    self.transport.add_status(status::FAILED);
                    self.broken = true;
                }
                self.stats.bad_responses += 1;
                Err(NicError::Broken)
            }
            Err(_) => Err(NicError::Busy),
        }
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
        let (id, written) = match self.rx.pop_used() {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(Received::Nothing),
            Err(e) => return self.check(Err(e)).map(|_| Received::Nothing),
        };
        if self.rx_irq.is_some() {
            self.rx.pause_interrupts(); // polling now: no interrupt until re-armed
        }
        // `pop_used` checked written <= BUF_LEN, the buffer's size; the header is skipped.
        let got = match into.get_mut(..written.saturating_sub(HDR_LEN)) {
            Some(frame) if !frame.is_empty() => {
                self.rx.read_buffer(id, HDR_LEN, frame).map_err(|_| NicError::Broken)?;
                self.stats.rx_frames += 1;
                Received::Frame(frame.len())
            }
            // A runt (nothing but part of a header), or more than the caller can take.
            _ => {
                self.stats.bad_responses += 1;
                Received::Dropped
            }
        };
        let r = self.rx.submit(id, BUF_LEN);
        self.check(r)?;
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

    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn stats(&self) -> NicStats {
        NicStats { interrupts: self.rx_irq.map_or(0, |i| i.count.load(Ordering::Relaxed)), ..self.stats }
    }
}

#[cfg(test)]
mod tests;
