//! Traps and event upcalls of a classic PV guest: the virtual IDT (`set_trap_table`) and
//! the event and failsafe callbacks (`set_callbacks`), all pointing into `pv.S`, whose
//! stubs build the same [`super::TrapFrame`] as the native IDT's and return through the
//! iret hypercall.
//!
//! An unexpected exception reports as natively (`report.rs`); where the native report
//! reads CR2 (a privileged register in ring 3), a PV guest reads the copy Xen keeps in
//! its `vcpu_info` ([`use_pv_cr2`]).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use xen_iface::pv::{TrapInfo, FLAT_KERNEL_CS, TRAP_MASK_EVENTS};

/// The vector the event upcall dispatches as (a handler connected by `alloc_vector`);
/// read by `pv.S`.
#[no_mangle]
static PV_UPCALL_VECTOR: AtomicU64 = AtomicU64::new(0);

/// Where Xen keeps the faulting address of a PV page fault (`vcpu_info.arch.cr2`), or 0
/// when CR2 is the CPU's.
static PV_CR2: AtomicUsize = AtomicUsize::new(0);

/// The vector `pv.S`'s failsafe callback reports as.
pub const FAILSAFE_VECTOR: u64 = 256;

#[cfg(target_os = "none")]
core::arch::global_asm!(concat!(include_str!("frame.S"), include_str!("pv.S")), options(att_syntax));

#[cfg(target_os = "none")]
extern "C" {
    static pv_trap_stubs: u8;
    static pv_trap_stubs_end: u8;
    static pv_upcall_entry: u8;
    static pv_failsafe_entry: u8;
}

/// Bytes from one exception stub of `pv.S` to the next.
pub const STUB_STRIDE: u64 = 32;

/// Fills the virtual IDT: each exception to its stub, events masked on entry.
pub fn trap_table(stubs: u64) -> [TrapInfo; 33] {
    let mut t = [TrapInfo::default(); 33]; // the last one, all zero, ends the table
    for (v, e) in t.iter_mut().take(32).enumerate() {
        let address = stubs + STUB_STRIDE * v as u64;
        *e = TrapInfo { vector: v as u8, flags: TRAP_MASK_EVENTS, cs: FLAT_KERNEL_CS, address };
    }
    t
}

/// Installs the virtual IDT: every exception to its stub in `pv.S`, events masked on
/// entry. Returns Xen's error code if it refused.
#[cfg(target_os = "none")]
pub fn init_traps(xen: crate::xen::Xen) -> Result<(), i64> {
    let (stubs, end) = ((&raw const pv_trap_stubs) as u64, (&raw const pv_trap_stubs_end) as u64);
    // The table's addresses are computed: the stubs must be laid out as they assume.
    if end - stubs != 32 * STUB_STRIDE {
        return Err(-22);
    }
    xen.pv().set_trap_table(&trap_table(stubs))
}

/// Installs the event and failsafe callbacks; upcalls run the handler of `vector`.
#[cfg(target_os = "none")]
pub fn init_callbacks(xen: crate::xen::Xen, vector: crate::platform::Vector) -> Result<(), i64> {
    PV_UPCALL_VECTOR.store(vector as u64, Ordering::Release);
    xen.pv().set_callbacks((&raw const pv_upcall_entry) as u64, (&raw const pv_failsafe_entry) as u64)
}

/// From now on, page-fault reports read CR2 from Xen's copy at `addr`
/// (`vcpu_info.arch.cr2` in the mapped `shared_info`).
pub fn use_pv_cr2(addr: usize) {
    PV_CR2.store(addr, Ordering::Release);
}

/// The faulting address of the last page fault.
pub(super) fn cr2() -> u64 {
    match PV_CR2.load(Ordering::Acquire) {
        0 => x86_64::registers::control::Cr2::read_raw(),
        // SAFETY: a mapped, aligned u64 inside shared_info, which stays mapped for good
        // (use_pv_cr2's caller's word); Xen writes it before bouncing a page fault.
        addr => unsafe { core::ptr::read_volatile(addr as *const u64) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_exceptions_and_ends_with_zero() {
        let t = trap_table(0x40_1000);
        assert_eq!(t[14], TrapInfo { vector: 14, flags: 4, cs: 0xe033, address: 0x40_11c0 });
        assert_eq!(t[32].address, 0);
        assert!(t[..32].iter().all(|e| e.address != 0));
    }
}
