//! The contract between hykernel and the host that drives it, as pure `no_std` Rust.
//!
//! The kernel writes these formats and the harness (on the build machine and in dom0)
//! reads them; both sides compile this one definition, so they cannot drift apart.
//!
//! - [`cmdline`]: the kernel command line (`mode=`, `bench=`, the per-enlightenment
//!   switches), parsed into typed [`cmdline::Options`].
//! - [`lines`]: the machine-readable console lines (`MODE`, `READY`, `BENCH`, `SKIP`,
//!   `DONE`, ...), formatted by the kernel and parsed by the host.
//! - [`netctl`]: the benchmark control protocol on TCP port 7070.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cmdline;
pub mod lines;
pub mod netctl;
