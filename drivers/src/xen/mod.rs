//! Xen PV drivers: the PV console (and, next, xenstore, grant tables and netfront).
//!
//! The protocol logic (ring indexes, layouts) lives in `xen_iface`, pure and host-tested;
//! these drivers give it real memory (`arch::xen::shared::SharedPage`) and real
//! notifications.

pub mod console;
