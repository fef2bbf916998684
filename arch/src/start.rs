//! The kernel's entry point, and the one thing the boot stub hands it.
//!
//! `boot/pvh.S` calls the symbol `kernel_entry` with the start info's physical address,
//! `boot/pv.S` calls `kernel_entry_pv` with the PV start info's virtual address.
//! The kernel crate declares its main function with [`entry_point!`], which defines that
//! symbol (unnameable from Rust, so only the stub can call it) and passes main a
//! [`Start`]: the only value that carries the loader's address. Reading the start info
//! through it needs no `unsafe` in the kernel, because the proof that the address is the
//! loader's is that a `Start` exists at all. This is Asterinas' `#[ostd::main]` shape:
//! the `#[no_mangle]` and the raw read live here, with their contracts.

use crate::boot::BootInfo;
use xen_iface::start_info::StartInfoError;

/// What the boot stub handed over: the start info's address, as the loader left it in
/// `%ebx` (PVH), or `%rsi` and the bootstrap stack's top (classic PV). Made only by
/// [`entry_point!`]'s entry functions, once.
pub enum Start {
    /// The PVH entry (also QEMU's `-kernel` and an HVM domU's `kernel=`).
    Pvh(PvhStart),
    /// The classic PV entry.
    Pv(PvStart),
}

/// The PVH entry's hand-over.
pub struct PvhStart {
    start_info: u32,
}

/// The classic PV entry's hand-over (read only by the target's `boot::pv`).
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub struct PvStart {
    start_info: u64,
    bootstrap_end: u64,
}

impl PvhStart {
    /// Copies the start info (command line, memory map, RSDP) out of the loader's memory.
    pub fn boot_info(self) -> Result<BootInfo, StartInfoError> {
        // Taking `self` reads the start info once, at the start, before the heap can reuse
        // loader memory.
        // SAFETY: `start_info` is the PVH entry's %ebx, passed on unchanged by the boot
        // stub (`enter`'s contract), and the stub identity-maps the low 4 GiB.
        unsafe { BootInfo::read(self.start_info as u64) }
    }
}

#[cfg(target_os = "none")]
impl PvStart {
    /// Runs the first steps of the PV start of day (`boot::pv`): the start info checked,
    /// the console ring mapped.
    pub fn boot(self) -> (crate::xen::Xen, Result<crate::boot::pv::PvEarly, crate::boot::pv::PvBootError>) {
        // SAFETY: the values are pv.S's arguments, passed on unchanged (`enter_pv`'s
        // contract); taking `self` makes this the only run.
        unsafe { crate::boot::pv::start(self.start_info, self.bootstrap_end) }
    }
}

/// Runs the kernel's main with the boot stub's argument. Called by the entry function
/// [`entry_point!`] defines, nothing else.
///
/// # Safety
/// `start_info` must be the argument the boot stub passed to `kernel_entry`: the PVH
/// start info's physical address (`%ebx` at the PVH entry), and this must be the only call.
#[doc(hidden)]
pub unsafe fn enter(start_info: u32, main: fn(Start) -> !) -> ! {
    main(Start::Pvh(PvhStart { start_info }))
}

/// Runs the kernel's main with the PV stub's arguments. Called by the PV entry function
/// [`entry_point!`] defines, nothing else.
///
/// # Safety
/// The arguments must be `pv.S`'s: the start info's virtual address (`%rsi` at the PV
/// entry) and Xen's initial stack pointer, and this must be the only call.
#[doc(hidden)]
pub unsafe fn enter_pv(start_info: u64, bootstrap_end: u64, main: fn(Start) -> !) -> ! {
    main(Start::Pv(PvStart { start_info, bootstrap_end }))
}

/// Declares the kernel's main function, `fn(Start) -> !`, as what the boot stub runs.
///
/// Defines the `kernel_entry` symbol that `boot/pvh.S` calls, inside an anonymous
/// constant so no Rust code can call it (and so invent a start info address).
#[macro_export]
macro_rules! entry_point {
    ($main:path) => {
        const _: () = {
            /// The symbol the PVH boot stub calls, with the start info's address.
            #[no_mangle]
            extern "C" fn kernel_entry(start_info: u32) -> ! {
                // SAFETY: only the boot stub calls this unnameable function, once, with
                // the start info's address it was given in %ebx.
                unsafe { $crate::start::enter(start_info, $main) }
            }

            /// The symbol the classic PV stub calls, with the start info's virtual
            /// address and the end of Xen's bootstrap area.
            #[no_mangle]
            extern "C" fn kernel_entry_pv(start_info: u64, bootstrap_end: u64) -> ! {
                // SAFETY: only the PV stub calls this unnameable function, once, with
                // the values Xen gave it.
                unsafe { $crate::start::enter_pv(start_info, bootstrap_end, $main) }
            }
        };
    };
}
