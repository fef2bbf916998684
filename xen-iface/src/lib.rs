//! Xen's guest-visible ABI, as plain data and pure functions.
//!
//! This crate mirrors the parts of Xen's public headers (`/usr/include/xen`) that the
//! kernel uses, and the protocol logic built on them. It never touches memory it was not
//! handed and has no `unsafe` at all, so every piece runs and is tested on the host;
//! `arch/` and `drivers/` adapt it to real hardware. It uses `alloc` where a protocol
//! owns what it handles (replies copied out of xenstore, the pages a netfront lends), and
//! nowhere before the kernel has a heap (the start info, the console, the clock).
//!
//! Modules:
//! - [`cpuid`]: the hypervisor CPUID leaves (`arch-x86/cpuid.h`).
//! - [`viridian`]: the Hyper-V leaves and MSRs Xen offers with Viridian: the VP assist page
//!   and its APIC assist (EOI without an exit).
//! - [`start_info`]: the PVH/HVM start-of-day structure (`arch-x86/hvm/start_info.h`).
//! - [`elfnote`]: ELF note types the kernel image carries (`elfnote.h`).
//! - [`hypercall`]: hypercall numbers and argument structures (`xen.h`, `sched.h`, `hvm_op.h`).
//! - [`features`]: what Xen offers the domain (`XENVER_get_features`, `features.h`).
//! - [`physdev`]: MSI of an emulated device over a PIRQ and an event channel (`physdev.h`).
//! - [`trace`]: the phase markers a guest writes into the host's xentrace buffer.
//! - [`shared`]: the access trait for memory shared with another domain.
//! - [`byte_ring`]: a byte ring and its two u32 indexes, checked against a hostile peer.
//! - [`console`]: the PV console ring (`io/console.h`).
//! - [`events`]: 2-level event channels: bitmaps, the upcall scan.
//! - [`pv`]: classic 64-bit PV: start info, MMU and trap ABI, extending the bootstrap map.
//! - [`pvclock`]: the paravirtual clock (`vcpu_time_info`): version protocol and scaling.
//! - [`xenstore`]: the xenstore wire protocol, its ring page, a one-request client and
//!   synchronous requests with deadlines (`io/xs_wire.h`).
//! - [`ring`]: the generic shared request/response ring, front-end side (`io/ring.h`).
//! - [`grant`]: grant table v1 entries, reference bookkeeping, pages lent (`grant_table.h`).
//! - [`netif`]: the network ring slots, flags and response checks (`io/netif.h`).
//! - [`xenbus`]: the front end's side of the xenbus handshake, a state machine (`io/xenbus.h`).
//! - [`netfront`]: the netfront's rings and ids in flight, checked against a bad back end;
//!   its opening (handshake, pages lent, clean-up) and its frames in and out.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod byte_ring;
pub mod console;
pub mod cpuid;
pub mod elfnote;
pub mod events;
pub mod features;
pub mod grant;
pub mod hypercall;
pub mod netfront;
pub mod netif;
pub mod physdev;
pub mod pv;
pub mod pvclock;
pub mod ring;
pub mod shared;
pub mod start_info;
pub mod trace;
pub mod viridian;
pub mod xenbus;
pub mod xenstore;
