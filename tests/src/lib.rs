//! The host side of hykernel's tests and benchmarks.
//!
//! It boots the kernel (under QEMU here, under Xen via `tests/xen/`), reads its serial
//! console, drives its network services, and turns what the kernel printed into result
//! tables. Nothing here measures the guest: the kernel measures itself and prints
//! `BENCH` lines; this crate parses, checks and compares them.
//!
//! - [`console`]: the kernel's output lines (`MODE`, `BENCH`, `ERROR`, `DONE`) parsed.
//! - [`elf`]: image size and the PVH note, read from the kernel ELF.
//! - [`qemu`]: launching QEMU with a captured console, bounded waits, exit status.
//! - [`hostnet`]: the host end of the guest's network (a tap device, or QEMU user mode).
//! - [`netbench`]: echo clients and the benchmark control protocol.
//! - [`table`]: the results table and JSON file.
//! - [`session`]: one whole run (boot, drive, end) and the memory probe.
//! - [`paths`]: where the kernel image and tools are.
//! - [`xentrace`]: Xen trace files: VM exits per domain, reason and benchmark phase.
//! - [`xenhost`]: guests on the project's Xen test host (payload, run, results).

pub mod console;
pub mod elf;
pub mod hostnet;
pub mod netbench;
pub mod paths;
pub mod qemu;
pub mod session;
pub mod table;
pub mod xenhost;
pub mod xentrace;
