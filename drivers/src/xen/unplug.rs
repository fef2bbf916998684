//! Unplugging an HVM guest's emulated devices before their PV drivers take over.
//!
//! QEMU's Xen platform PCI device (vendor 0x5853) answers on I/O ports 0x10–0x13
//! (`docs/misc/hvm-emulated-unplug.pandoc` in Xen's tree). The guest checks the magic
//! value, identifies itself (protocol version 1), and writes the classes of device to
//! unplug; the device model then removes them, so the emulated NIC and the PV vif never
//! serve the same guest at once.

use x86_64::instructions::port::Port;

const MAGIC_PORT: u16 = 0x10;
const UNPLUG_PORT: u16 = 0x10;
const DRIVER_VERSION_PORT: u16 = 0x10;
const PROTOCOL_PORT: u16 = 0x12;
const PRODUCT_PORT: u16 = 0x12;
const MAGIC: u16 = 0x49d2;
/// Product number 0xffff: "experimental", not a registered product.
const PRODUCT: u16 = 0xffff;
const DRIVER_VERSION: u32 = 1;

/// What to unplug.
pub mod class {
    /// All emulated IDE disks.
    pub const IDE_DISKS: u16 = 1 << 0;
    /// All emulated NICs.
    pub const NICS: u16 = 1 << 1;
    /// Auxiliary IDE disks.
    pub const AUX_IDE_DISKS: u16 = 1 << 2;
}

/// Why nothing was unplugged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnplugError {
    /// No Xen platform device answers (the magic value is wrong).
    NoPlatformDevice(u16),
    /// The device model refused this product/version (the magic went away).
    Refused,
}

/// Unplugs the emulated devices of `classes`.
pub fn unplug(classes: u16) -> Result<(), UnplugError> {
    // On machines without the device nothing decodes these ports (reads give all-ones).
    // SAFETY: ports 0x10-0x13 are the Xen platform device's; the magic check guards every write.
    unsafe {
        let magic = Port::<u16>::new(MAGIC_PORT).read();
        if magic != MAGIC {
            return Err(UnplugError::NoPlatformDevice(magic));
        }
        if Port::<u8>::new(PROTOCOL_PORT).read() == 1 {
            Port::<u16>::new(PRODUCT_PORT).write(PRODUCT);
            Port::<u32>::new(DRIVER_VERSION_PORT).write(DRIVER_VERSION);
            if Port::<u16>::new(MAGIC_PORT).read() != MAGIC {
                return Err(UnplugError::Refused);
            }
        }
        Port::<u16>::new(UNPLUG_PORT).write(classes);
    }
    Ok(())
}
