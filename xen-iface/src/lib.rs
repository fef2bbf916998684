//! Xen's guest-visible ABI, as plain data and pure functions.
//!
//! This crate mirrors the parts of Xen's public headers (`/usr/include/xen`) that the
//! kernel uses, and the protocol logic built on them. It never touches memory it was not
//! handed and has no `unsafe` at all, so every piece runs and is tested on the host;
//! `arch/` and `drivers/` adapt it to real hardware.
//!
//! Modules:
//! - [`cpuid`]: the hypervisor CPUID leaves (`arch-x86/cpuid.h`).
//! - [`start_info`]: the PVH/HVM start-of-day structure (`arch-x86/hvm/start_info.h`).
//! - [`elfnote`]: ELF note types the kernel image carries (`elfnote.h`).
//! - [`hypercall`]: hypercall numbers and argument structures (`xen.h`, `sched.h`, `hvm_op.h`).
//! - [`trace`]: the phase markers a guest writes into the host's xentrace buffer.
//! - [`shared`]: the access trait for memory shared with another domain.
//! - [`console`]: the PV console ring (`io/console.h`).
//! - [`events`]: 2-level event channels: bitmaps, the upcall scan.
//! - [`pvclock`]: the paravirtual clock (`vcpu_time_info`): version protocol and scaling.
//! - [`xenstore`]: the xenstore wire protocol, its ring page and a one-request client (`io/xs_wire.h`).
//! - [`ring`]: the generic shared request/response ring, front-end side (`io/ring.h`).
//! - [`grant`]: grant table v1 entries and reference bookkeeping (`grant_table.h`).
//! - [`netif`]: the network ring slots, flags and response checks (`io/netif.h`).
//! - [`netfront`]: the netfront's two rings and their ids in flight, checked against a bad back end.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod console;
pub mod cpuid;
pub mod elfnote;
pub mod events;
pub mod grant;
pub mod hypercall;
pub mod netfront;
pub mod netif;
pub mod pvclock;
pub mod ring;
pub mod shared;
pub mod start_info;
pub mod trace;
pub mod xenstore;
