//! The kernel's pure parts, built for the host too so they are unit-tested there:
//! command-line parsing ([`cmdline`]), the network benchmark control protocol
//! ([`netctl`]) and the machine-readable output lines ([`report`]).
//!
//! Everything that touches hardware lives in the binary (`main.rs` and its modules),
//! which only builds for `x86_64-unknown-none`.
#![cfg_attr(not(test), no_std)]

pub mod cmdline;
pub mod netctl;
pub mod report;
