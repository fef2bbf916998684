//! The kernel's entry point, and the one thing the boot stub hands it.
//!
//! `boot/pvh.S` calls the symbol `kernel_entry` with the start info's physical address.
//! The kernel crate declares its main function with [`entry_point!`], which defines that
//! symbol (unnameable from Rust, so only the stub can call it) and passes main a
//! [`Start`]: the only value that carries the loader's address. Reading the start info
//! through it needs no `unsafe` in the kernel, because the proof that the address is the
//! loader's is that a `Start` exists at all. This is Asterinas' `#[ostd::main]` shape:
//! the `#[no_mangle]` and the raw read live here, with their contracts.

use crate::boot::BootInfo;
use xen_iface::start_info::StartInfoError;

/// What the boot stub handed over: the start info's address, as the loader left it in
/// `%ebx`. Made only by [`entry_point!`]'s entry function, once.
pub struct Start {
    start_info: u32,
}

impl Start {
    /// Copies the start info (command line, memory map, RSDP) out of the loader's memory.
    pub fn boot_info(self) -> Result<BootInfo, StartInfoError> {
        // SAFETY: `start_info` is the PVH entry's %ebx, passed on unchanged by the boot
        // stub (`enter`'s contract), and the stub identity-maps the low 4 GiB. Taking
        // `self` reads it once, at the start, before the heap can reuse loader memory.
        unsafe { BootInfo::read(self.start_info as u64) }
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
    main(Start { start_info })
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
        };
    };
}
