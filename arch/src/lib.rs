//! x86_64 support for the kernel: boot, CPU tables, traps, paging, the APICs, ACPI, the
//! TSC, and the platform traits that the rest of the kernel programs against.
//!
//! Modules that only make sense on the target (the boot and trap assembly) are built
//! only for `target_os = "none"`; the decoding logic (CPUID, ACPI's S5 package, boot
//! info, TSC math) and the interrupt handler slots are pure and tested on the host.
//!
//! Kernel crates hold no `unsafe` (`#![deny(unsafe_code)]`): what needs it lives here,
//! behind safe functions whose contracts are checked here or are the platform's word —
//! the entry point and the boot handoff ([`start`]), the heap's RAM ([`ram`]), the
//! devices the firmware tables name ([`firmware`]), the memory benchmarks' loops
//! ([`membench`]).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod apic;
pub mod boot;
pub mod cpu;
pub mod firmware;
pub mod gdt;
pub mod hpet;
pub mod hypervisor;
pub mod irq_table;
pub mod irqflag;
pub mod kvm;
pub mod membench;
pub mod mmio;
pub mod pagemap;
pub mod paging;
pub mod pic;
pub mod platform;
pub mod power;
pub mod ram;
pub mod refclock;
pub mod start;
pub mod trap;
pub mod tsc;
pub mod xen;
