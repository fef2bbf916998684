//! The host side of hykernel's tests and benchmarks.
//!
//! It boots the kernel (under QEMU here, under Xen via `tests/xen/`), reads its serial
//! console, drives its network services, and turns what the kernel printed into result
//! tables. Nothing here measures the guest: the kernel measures itself and prints
//! `BENCH` lines; this crate parses, checks and compares them.
//!
//! - [`console`]: what a boot printed (`MODE`, `READY`, `BENCH`, `ERROR`, `DONE`), read with
//!   `proto::lines`, the one reader of those formats.
//! - [`elf`]: image size and the PVH note, read from the kernel ELF.
//! - [`qemu`]: launching QEMU with a captured console, bounded waits, exit status.
//! - [`hostfreeze`]: whether a nested host's boot froze, and which guest it ran then.
//! - [`hostnet`]: the host end of the guest's network (a tap device, or QEMU user mode).
//! - [`netbench`]: the network client (exact echoes, the driven benchmarks, flood, ping),
//!   the one used on the QEMU host and by the dom0 agent on the Xen host.
//! - [`table`]: the results table and JSON file.
//! - [`session`]: one whole run (boot, drive, end) and the memory probe.
//! - [`stats`]: a figure over repeated rounds: median, min, max.
//! - [`svg`]: line charts written beside the JSON results.
//! - [`paths`]: where the kernel image and tools are.
//! - [`xentrace`]: Xen trace files: VM exits per domain, reason and benchmark phase.
//! - [`xen`]: the Xen test host: guests as types, the plan and results shared with the
//!   dom0 agent, the host's boot, VM exits per operation.
//! - [`agent`]: the dom0 agent (`hy-agent`): runs the plan in dom0.

pub mod agent;
pub mod console;
pub mod elf;
pub mod hostfreeze;
pub mod hostnet;
pub mod kvm;
pub mod kvmtrace;
pub mod netbench;
pub mod paths;
pub mod qemu;
pub mod session;
pub mod stats;
pub mod svg;
pub mod table;
pub mod xen;
pub mod xentrace;
