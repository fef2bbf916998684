//! Virtio 1.x: the transport trait and its PCI implementation, split virtqueues and the
//! network device.
//!
//! [`transport`] is what a driver needs from a device (status, features, queues,
//! doorbells) and [`pci`] provides it over the modern PCI transport's capabilities;
//! [`queue`] is the split ring over shared memory, which treats everything the device
//! writes as untrusted; [`net`] builds the NIC on any transport and memory. In host
//! tests, `fake` plays the device — healthy or misbehaving — behind the same traits.

#[cfg(test)]
pub(crate) mod fake;
pub mod net;
pub mod pci;
pub mod queue;
pub mod transport;

/// Device status bits (virtio 1.2, 2.1).
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device needs a reset.
    pub const NEEDS_RESET: u8 = 64;
    /// The driver gave up.
    pub const FAILED: u8 = 128;
}

/// Feature bits shared by all device types.
pub mod feature {
    /// The event index: `used_event` and `avail_event` suppress notifications
    /// (`VIRTIO_F_EVENT_IDX`, 2.7.10).
    pub const RING_EVENT_IDX: u64 = 1 << 29;
    /// Virtio 1.x semantics (little-endian, modern layout).
    pub const VERSION_1: u64 = 1 << 32;
}

/// Virtio's PCI vendor id.
pub const VENDOR_ID: u16 = 0x1af4;
/// "No MSI-X vector" in the vector registers.
pub const NO_VECTOR: u16 = 0xffff;
