//! hykernel: a unikernel-style x86_64 guest kernel that boots on QEMU/KVM and Xen,
//! picks the cheapest interfaces the hypervisor offers, and measures them.
//!
//! Boot path: `arch`'s PVH stub → [`entry::kernel_entry`] → platform selection →
//! benchmarks → network service → power-off. What the kernel and its host harness both
//! speak (command line, output lines, control protocol) is the `hy-proto` crate, tested
//! on the host.
//!
//! No `unsafe` here: what needs it (the entry symbol, the boot handoff, the heap's RAM,
//! devices at addresses the firmware names, the benchmarks' volatile loops) is `arch`'s
//! and `drivers`' behind safe functions.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
#[macro_use]
mod console;
#[cfg(target_os = "none")]
mod bench;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod net;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod platform;
#[cfg(target_os = "none")]
mod power;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hykernel is a guest kernel: build it with `--target x86_64-unknown-none` and boot it (see README.md)");
    std::process::exit(2);
}
