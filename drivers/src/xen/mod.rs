//! Xen PV drivers: the PV console, xenstore, netfront, and the unplugging of the emulated
//! devices they replace.
//!
//! The protocol logic (ring indexes, layouts) lives in `xen_iface`, pure and host-tested;
//! these drivers give it real memory (`arch::xen::shared::SharedPage`) and real
//! notifications.

pub mod console;
pub mod netfront;
pub mod unplug;
pub mod xenstore;
