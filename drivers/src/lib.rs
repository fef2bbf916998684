//! Device drivers: consoles, PCI with MSI-X, virtio-net, and the [`nic::Nic`] trait they
//! implement for the network stack.
//!
//! Drivers reach hardware only through `arch`'s `Mmio`, the `x86_64` crate's `Port`, and
//! [`dma::DmaBuffer`]; they never depend on the network stack. Ring and configuration
//! logic is tested on the host against fakes (a fake PCI configuration space, a fake
//! virtio device that also misbehaves).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod console;
pub mod dma;
pub mod nic;
pub mod pci;
pub mod virtio;
pub mod xen;
