//! What a virtio driver needs from its transport, and feature negotiation over it.
//!
//! [`Transport`] is the device's control surface: status, features, queue setup,
//! notification and the device-specific configuration (virtio 1.2, 2 and 3.1). The PCI
//! transport ([`super::pci::VirtioPci`]) implements it over MMIO; host tests implement it
//! with a fake device that can misbehave (`super::fake`), as virtio-drivers' `Transport`
//! trait and its `FakeTransport` do. Drivers such as [`super::net::VirtioNet`] are
//! generic over it, so their whole bring-up and data path run on the host.

use super::queue::QueueAddresses;
use super::status;
use crate::pci::msix::VectorTable;
use core::fmt;

/// Why the transport could not be set up or refused a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A required capability (common, notify, device) is missing: not a modern device.
    NotModern,
    /// A capability points outside its BAR or at a non-memory BAR.
    BadCapability,
    /// A window could not be mapped.
    Map(arch::paging::MapError),
    /// The device rejected the features the driver can live with.
    FeaturesRejected,
    /// A queue index the device does not have.
    NoSuchQueue(u16),
    /// The device did not take the MSI-X vector.
    VectorRejected,
}

/// Rings a queue's doorbell (an available-buffer notification).
pub trait Notify {
    /// Tells the device that the queue has new available buffers.
    fn notify(&self);
}

/// A virtio device's transport.
pub trait Transport {
    /// A queue's doorbell, from [`Transport::setup_queue`].
    type Notifier: Notify;
    /// The device's interrupt vector table (MSI-X), when it has one.
    type Vectors: VectorTable;

    /// Where the device is, for log lines.
    fn location(&self) -> &dyn fmt::Display;
    /// Resets the device and waits (bounded) for the reset to complete.
    fn reset(&self);
    /// The device status.
    fn status(&self) -> u8;
    /// Writes the device status.
    fn set_status(&self, status: u8);
    /// Adds bits to the device status (a read, then a write).
    fn add_status(&self, bits: u8) {
        let s = self.status();
        self.set_status(s | bits);
    }
    /// The 64 feature bits the device offers.
    fn device_features(&self) -> u64;
    /// Writes the 64 feature bits the driver accepts.
    fn set_driver_features(&self, features: u64);
    /// Selects queue `index` and returns its maximum size (0 = absent).
    fn queue_max_size(&self, index: u16) -> Result<u16, TransportError>;
    /// Sets up queue `index` with `size` entries at `addresses`, routes it to MSI-X
    /// `vector` (or [`super::NO_VECTOR`]) and enables it. Returns its doorbell.
    fn setup_queue(
        &self,
        index: u16,
        size: u16,
        addresses: QueueAddresses,
        vector: u16,
    ) -> Result<Self::Notifier, TransportError>;
    /// Routes configuration-change interrupts to MSI-X `vector` (or `NO_VECTOR`).
    fn set_config_vector(&self, vector: u16);
    /// Reads a byte of the device-specific configuration; 0 past its end.
    fn device_config_u8(&self, offset: u32) -> u8;
}

/// Offers the device the features in `wanted` that it has, requires `required`, and
/// completes negotiation (virtio 1.2, 3.1.1 steps 4-6): FEATURES_OK is set and read
/// back, since a device that cannot work with the subset clears it. Returns the
/// accepted set; on refusal the status says FAILED.
pub fn negotiate<T: Transport + ?Sized>(t: &T, wanted: u64, required: u64) -> Result<u64, TransportError> {
    let accepted = t.device_features() & wanted;
    if accepted & required != required {
        t.add_status(status::FAILED);
        return Err(TransportError::FeaturesRejected);
    }
    t.set_driver_features(accepted);
    t.add_status(status::FEATURES_OK);
    if t.status() & status::FEATURES_OK == 0 {
        t.add_status(status::FAILED);
        return Err(TransportError::FeaturesRejected);
    }
    Ok(accepted)
}
