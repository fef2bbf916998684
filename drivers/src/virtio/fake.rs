//! A fake virtio device for host tests, healthy or misbehaving (virtio-drivers'
//! `transport/fake.rs` is the model).
//!
//! - [`FakeDma`] hands out [`FakeMem`] regions at made-up bus addresses and lets the
//!   device side read and write them by address, as a device does by DMA.
//! - [`DeviceQueue`] is the device's half of a split queue: it takes available buffers
//!   and returns used ones, and can write anything at all into the used ring.
//! - [`FakeTransport`] is the control surface, its [`DeviceState`] open to the test
//!   (which can make it refuse features, drop queues, reject vectors).
//! - [`FakeVectors`] and [`FakeIrqs`] stand in for the MSI-X table and the interrupt
//!   controller, so an interrupt can be raised by hand; the controller routes MSIs
//!   masked at the device (a LAPIC) or at itself (an event channel over a PIRQ).
//! - [`FakeClock`] is a clock the test moves.

mod mem;

pub use mem::{DeviceQueue, FakeDma, FakeMem};

use super::queue::QueueAddresses;
use super::status;
use super::transport::{Notify, Transport, TransportError};
use crate::pci::msix::VectorTable;
use arch::platform::{
    Clock, InterruptController, Irq, IrqError, IrqHandler, IrqMask, MsiMasking, MsiMessage, MsiRoute, Vector,
};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// A queue as the driver configured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Entries.
    pub size: u16,
    /// Ring addresses.
    pub at: QueueAddresses,
    /// MSI-X vector.
    pub vector: u16,
    /// Enabled.
    pub enabled: bool,
}

/// The fake device's registers and what it has seen.
#[derive(Debug)]
pub struct DeviceState {
    /// Device status.
    pub status: u8,
    /// Features offered.
    pub device_features: u64,
    /// Features the driver wrote.
    pub driver_features: u64,
    /// False: the device never acknowledges features (FEATURES_OK does not stick).
    pub accepts_features: bool,
    /// Largest size of each queue (0 = absent); the length is the number of queues.
    pub queue_max: Vec<u16>,
    /// Each queue's configuration.
    pub queues: Vec<Option<QueueConfig>>,
    /// Doorbells rung, per queue.
    pub notifications: Vec<u32>,
    /// True: vector writes read back as NO_VECTOR.
    pub rejects_vectors: bool,
    /// The configuration-change vector.
    pub config_vector: u16,
    /// Device-specific configuration (virtio-net: the MAC first).
    pub config: Vec<u8>,
    /// Resets seen.
    pub resets: u32,
}

/// A virtio transport whose device is a [`DeviceState`] the test controls.
#[derive(Clone)]
pub struct FakeTransport {
    /// The device.
    pub state: Arc<Mutex<DeviceState>>,
    name: &'static str,
}

impl FakeTransport {
    /// A device with two queues of up to `queue_max` entries offering `features`, with
    /// `config` as its device-specific configuration.
    pub fn new(features: u64, queue_max: u16, config: &[u8]) -> Self {
        FakeTransport {
            state: Arc::new(Mutex::new(DeviceState {
                status: 0xff, // reset must clear it
                device_features: features,
                driver_features: 0,
                accepts_features: true,
                queue_max: vec![queue_max; 2],
                queues: vec![None; 2],
                notifications: vec![0; 2],
                rejects_vectors: false,
                config_vector: 0,
                config: config.to_vec(),
                resets: 0,
            })),
            name: "fake",
        }
    }

    /// The device state, locked.
    pub fn device(&self) -> std::sync::MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap()
    }
}

/// A fake doorbell: counts rings.
pub struct FakeNotifier {
    state: Arc<Mutex<DeviceState>>,
    queue: u16,
}

impl Notify for FakeNotifier {
    fn notify(&self) {
        self.state.lock().unwrap().notifications[self.queue as usize] += 1;
    }
}

impl Transport for FakeTransport {
    type Notifier = FakeNotifier;
    type Vectors = FakeVectors;

    fn location(&self) -> &dyn fmt::Display {
        &self.name
    }

    fn reset(&self) {
        let mut d = self.device();
        d.status = 0;
        d.queues.iter_mut().for_each(|q| *q = None);
        d.resets += 1;
    }

    fn status(&self) -> u8 {
        self.device().status
    }

    fn set_status(&self, value: u8) {
        let mut d = self.device();
        d.status = if d.accepts_features { value } else { value & !status::FEATURES_OK };
    }

    fn device_features(&self) -> u64 {
        self.device().device_features
    }

    fn set_driver_features(&self, features: u64) {
        self.device().driver_features = features;
    }

    fn queue_max_size(&self, index: u16) -> Result<u16, TransportError> {
        self.device().queue_max.get(index as usize).copied().ok_or(TransportError::NoSuchQueue(index))
    }

    fn setup_queue(
        &self,
        index: u16,
        size: u16,
        at: QueueAddresses,
        vector: u16,
    ) -> Result<FakeNotifier, TransportError> {
        let mut d = self.device();
        if index as usize >= d.queues.len() {
            return Err(TransportError::NoSuchQueue(index));
        }
        if d.rejects_vectors && vector != super::NO_VECTOR {
            return Err(TransportError::VectorRejected);
        }
        d.queues[index as usize] = Some(QueueConfig { size, at, vector, enabled: true });
        Ok(FakeNotifier { state: self.state.clone(), queue: index })
    }

    fn set_config_vector(&self, vector: u16) {
        self.device().config_vector = vector;
    }

    fn device_config_u8(&self, offset: u32) -> u8 {
        self.device().config.get(offset as usize).copied().unwrap_or(0)
    }
}

/// A fake MSI-X table's entry 0, as the test sees it.
#[derive(Debug, Default)]
pub struct VectorState {
    /// The message, once programmed.
    pub programmed: Mutex<Option<MsiMessage>>,
    /// Masked (MSI-X enables with every entry masked).
    pub masked: AtomicBool,
    /// Mask and unmask writes (each a trapped MMIO write on a real device).
    pub writes: AtomicU32,
}

/// A fake MSI-X table; clones share one [`VectorState`].
#[derive(Clone, Debug)]
pub struct FakeVectors(pub Arc<VectorState>);

impl FakeVectors {
    /// A table with every entry masked.
    pub fn new() -> Self {
        FakeVectors(Arc::new(VectorState { masked: AtomicBool::new(true), ..Default::default() }))
    }

    /// True if entry 0 is masked.
    pub fn masked(&self) -> bool {
        self.0.masked.load(Ordering::SeqCst)
    }

    /// Mask and unmask writes so far.
    pub fn writes(&self) -> u32 {
        self.0.writes.load(Ordering::SeqCst)
    }
}

impl VectorTable for FakeVectors {
    fn program(&self, entry: u16, msg: MsiMessage) {
        assert_eq!(entry, 0);
        self.0.masked.store(true, Ordering::SeqCst);
        *self.0.programmed.lock().unwrap() = Some(msg);
    }
    fn mask(&self, entry: u16) {
        assert_eq!(entry, 0);
        self.0.writes.fetch_add(1, Ordering::SeqCst);
        self.0.masked.store(true, Ordering::SeqCst);
    }
    fn unmask(&self, entry: u16) {
        assert_eq!(entry, 0);
        self.0.writes.fetch_add(1, Ordering::SeqCst);
        self.0.masked.store(false, Ordering::SeqCst);
    }
}

/// An interrupt controller that records MSI handlers so a test can raise them.
#[derive(Default)]
pub struct FakeIrqs {
    handlers: Mutex<Vec<&'static dyn IrqHandler>>,
    /// True: every allocation fails, as on a controller out of vectors.
    pub exhausted: bool,
    /// True: its routes are masked here, as event channels bound to PIRQs are.
    pub masks_itself: bool,
    /// Masked here (when it masks itself).
    pub masked: AtomicBool,
    /// Mask and unmask calls here (shared memory on the real controller: no exit).
    pub mask_calls: AtomicU32,
}

impl FakeIrqs {
    /// A controller with no vector left.
    pub fn exhausted() -> Self {
        FakeIrqs { exhausted: true, ..Default::default() }
    }

    /// A controller that masks its MSIs itself, like event channels over PIRQs.
    pub fn pirq_like() -> Self {
        FakeIrqs { masks_itself: true, ..Default::default() }
    }

    /// Runs the handler of the `n`th MSI allocated.
    pub fn raise(&self, n: usize) {
        let h = self.handlers.lock().unwrap()[n];
        h.handle(0x40 + n as Irq);
    }
}

impl InterruptController for FakeIrqs {
    fn alloc_ipi(&self, _handler: &'static dyn IrqHandler) -> Result<Irq, IrqError> {
        Err(IrqError::Unsupported)
    }
    fn send_self_ipi(&self, _irq: Irq) {}
    fn alloc_msi(&'static self, handler: &'static dyn IrqHandler) -> Result<MsiRoute, IrqError> {
        if self.exhausted {
            return Err(IrqError::NoVectors);
        }
        let mut h = self.handlers.lock().unwrap();
        h.push(handler);
        let irq = 0x40 + h.len() as Irq - 1;
        Ok(if self.masks_itself {
            self.masked.store(false, Ordering::SeqCst);
            MsiRoute {
                irq,
                message: MsiMessage { address: 0xfee3_7000, data: 0 },
                masking: MsiMasking::Controller(self),
            }
        } else {
            MsiRoute { irq, message: MsiMessage { address: 0xfee0_0000, data: irq }, masking: MsiMasking::Device }
        })
    }
    fn end_of_interrupt(&self, _vector: Vector) {}
    fn name(&self) -> &'static str {
        "fake"
    }
    fn eoi_name(&self) -> &'static str {
        "none"
    }
}

impl IrqMask for FakeIrqs {
    fn mask(&self, _irq: Irq) {
        self.mask_calls.fetch_add(1, Ordering::SeqCst);
        self.masked.store(true, Ordering::SeqCst);
    }
    fn unmask(&self, _irq: Irq) {
        self.mask_calls.fetch_add(1, Ordering::SeqCst);
        self.masked.store(false, Ordering::SeqCst);
    }
}

/// A clock that stands still until the test moves it.
#[derive(Default)]
pub struct FakeClock(pub AtomicU64);

impl FakeClock {
    /// Moves the clock on by `ns`.
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn name(&self) -> &'static str {
        "fake"
    }
}
