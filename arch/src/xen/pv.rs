//! The hypercalls only a classic PV guest makes: its virtual IDT and callbacks, its
//! page-table updates, blocking; and its interrupt flag, the `evtchn_upcall_mask` byte of
//! its `vcpu_info` ([`PvInterruptFlag`], the [`crate::irqflag`] of pv mode).
//!
//! The ABI structures are `xen_iface::pv`'s. A refused page-table update comes back as
//! [`MmuError`], which says which entry and what Xen answered.

use super::hypercall::hypercall;
use super::Xen;
use crate::irqflag::InterruptFlag;
use core::sync::atomic::{compiler_fence, AtomicU8, Ordering};
use xen_iface::hypercall as abi;
use xen_iface::pv::{self, MmuUpdate, TrapInfo};

/// A page-table update Xen refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuError {
    /// The refused update (entry's machine address, value).
    pub update: MmuUpdate,
    /// How many of the batch Xen had applied before it.
    pub done: usize,
    /// Xen's error code.
    pub code: i64,
}

/// Classic PV's hypercalls (made by [`Xen::pv`]).
#[derive(Clone, Copy, Debug)]
pub struct PvCalls(Xen);

impl Xen {
    /// The hypercall handle of a PV guest, whose page the domain builder filled.
    ///
    /// # Safety
    /// Only from the PV entry (`boot::pv`), where Xen has filled the page the image's
    /// `XEN_ELFNOTE_HYPERCALL_PAGE` names.
    pub unsafe fn pv_entry() -> Xen {
        // SAFETY: the caller's word.
        unsafe { super::hypercall::init_pv() };
        Xen { _private: () }
    }

    /// The PV-only hypercalls. Calling them in another kind of guest fails with Xen's
    /// error code, nothing worse.
    pub fn pv(self) -> PvCalls {
        PvCalls(self)
    }
}

impl PvCalls {
    /// `set_trap_table`: `table` ends with an entry whose address is 0.
    pub fn set_trap_table(&self, table: &[TrapInfo]) -> Result<(), i64> {
        if table.last().is_none_or(|t| t.address != 0) {
            return Err(-22); // -EINVAL: Xen would read past the end
        }
        // SAFETY: a terminated trap table, live for the call; Xen copies it.
        let rc = unsafe { hypercall(pv::SET_TRAP_TABLE, table.as_ptr() as u64, 0, 0, 0, 0) };
        if rc < 0 {
            Err(rc)
        } else {
            Ok(())
        }
    }

    /// `set_callbacks(event, failsafe, 0)`: where Xen bounces event upcalls and failed
    /// returns. No syscall callback: this kernel has no user mode.
    pub fn set_callbacks(&self, event: u64, failsafe: u64) -> Result<(), i64> {
        // SAFETY: two code addresses; Xen only records them.
        let rc = unsafe { hypercall(pv::SET_CALLBACKS, event, failsafe, 0, 0, 0) };
        if rc < 0 {
            Err(rc)
        } else {
            Ok(())
        }
    }

    /// `mmu_update` of a batch of page-table entries, each checked by Xen.
    ///
    /// # Safety
    /// The entries must not unmap or remap memory the kernel uses (its image, stacks,
    /// heap) other than as the caller intends; Xen only guarantees the guest cannot hurt
    /// anyone else.
    pub unsafe fn mmu_update(&self, batch: &[MmuUpdate]) -> Result<(), MmuError> {
        let mut done: u32 = 0;
        // SAFETY: `batch` is live for the call and `done` is a live u32 Xen writes;
        // the caller vouches for what the updates change.
        let rc = unsafe {
            hypercall(
                pv::MMU_UPDATE,
                batch.as_ptr() as u64,
                batch.len() as u64,
                &mut done as *mut u32 as u64,
                pv::DOMID_SELF,
                0,
            )
        };
        if rc < 0 {
            let update = batch.get(done as usize).copied().unwrap_or_default();
            return Err(MmuError { update, done: done as usize, code: rc });
        }
        Ok(())
    }

    /// `update_va_mapping(va, entry, UVMF_INVLPG)`: sets the L1 entry of `va` (which
    /// must have an L1 table) and flushes it from this vCPU's TLB.
    ///
    /// # Safety
    /// As [`mmu_update`](Self::mmu_update): nothing may rely on what `va` mapped.
    pub unsafe fn update_va_mapping(&self, va: u64, entry: u64) -> Result<(), i64> {
        // SAFETY: register arguments only; the caller vouches for the mapping change.
        let rc = unsafe { hypercall(pv::UPDATE_VA_MAPPING, va, entry, pv::UVMF_INVLPG, 0, 0) };
        if rc < 0 {
            Err(rc)
        } else {
            Ok(())
        }
    }

    /// `SCHEDOP_block`: unmasks events and sleeps until one is pending (returns at once
    /// if one is); the upcall runs before this returns.
    pub fn block(&self) {
        // SAFETY: SCHEDOP_block takes no argument.
        unsafe { hypercall(abi::SCHED_OP, pv::SCHEDOP_BLOCK as u64, 0, 0, 0, 0) };
    }

    /// `SCHEDOP_yield`.
    pub fn yield_now(&self) {
        // SAFETY: SCHEDOP_yield takes no argument.
        unsafe { hypercall(abi::SCHED_OP, pv::SCHEDOP_YIELD as u64, 0, 0, 0, 0) };
    }
}

/// Byte offsets in `struct vcpu_info` (`xen.h`).
const UPCALL_PENDING: usize = 0;
const UPCALL_MASK: usize = 1;

/// PV's interrupt flag: the `evtchn_upcall_mask` of vCPU 0's `vcpu_info`; halting is
/// `SCHEDOP_block`.
pub struct PvInterruptFlag {
    xen: Xen,
    vcpu_info: usize,
}

impl PvInterruptFlag {
    /// The flag of the `vcpu_info` at `addr`.
    ///
    /// # Safety
    /// `addr` must be vCPU 0's `vcpu_info`, mapped for good (in the mapped `shared_info`).
    pub unsafe fn new(xen: Xen, addr: usize) -> Self {
        PvInterruptFlag { xen, vcpu_info: addr }
    }

    fn byte(&self, offset: usize) -> &AtomicU8 {
        // SAFETY: inside the vcpu_info `new` vouched for; Xen changes these bytes
        // concurrently, so they are only ever accessed atomically.
        unsafe { AtomicU8::from_ptr((self.vcpu_info + offset) as *mut u8) }
    }
}

impl InterruptFlag for PvInterruptFlag {
    #[inline]
    fn disable(&self) {
        self.byte(UPCALL_MASK).store(1, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
    }

    #[inline]
    fn enable(&self) {
        compiler_fence(Ordering::SeqCst);
        self.byte(UPCALL_MASK).store(0, Ordering::SeqCst);
        // An event that arrived while masked is delivered on the next return from Xen:
        // make one (the null hypercall) so it does not wait.
        if self.byte(UPCALL_PENDING).load(Ordering::SeqCst) != 0 {
            self.xen.version();
        }
    }

    #[inline]
    fn are_enabled(&self) -> bool {
        self.byte(UPCALL_MASK).load(Ordering::Relaxed) == 0
    }

    fn idle(&self) {
        // Blocking unmasks events, and returns at once if one is pending.
        self.xen.pv().block();
        self.byte(UPCALL_MASK).store(0, Ordering::SeqCst);
    }

    fn idle_folded(&self) {
        self.xen.pv().block();
        self.disable();
    }

    fn halt_forever(&self) -> ! {
        loop {
            self.disable();
            self.xen.pv().yield_now();
        }
    }

    fn name(&self) -> &'static str {
        "xen-pv"
    }
}

/// `__HYPERVISOR_mmuext_op`.
const MMUEXT_OP: u32 = 26;
/// `MMUEXT_TLB_FLUSH_LOCAL`.
const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;

/// `struct mmuext_op` (`xen.h`) for the commands without arguments.
#[repr(C)]
struct MmuextOp {
    cmd: u32,
    pad: u32,
    arg1: u64,
    arg2: u64,
}
const _: () = assert!(core::mem::size_of::<MmuextOp>() == 24);

impl PvCalls {
    /// `mmuext_op(MMUEXT_TLB_FLUSH_LOCAL)`: flushes this vCPU's TLB.
    pub fn flush_tlb_local(&self) -> Result<(), i64> {
        let op = MmuextOp { cmd: MMUEXT_TLB_FLUSH_LOCAL, pad: 0, arg1: 0, arg2: 0 };
        // SAFETY: one live mmuext_op for the call; a local TLB flush changes no mapping.
        let rc = unsafe { hypercall(MMUEXT_OP, &op as *const MmuextOp as u64, 1, 0, pv::DOMID_SELF, 0) };
        if rc < 0 {
            Err(rc)
        } else {
            Ok(())
        }
    }
}

/// The MMU benchmarks' window in a PV guest: a page of the image whose L1 entry Xen's
/// bootstrap tables hold, mapped and unmapped with `update_va_mapping` (one hypercall
/// each, checked by Xen); the TLB flushed with `mmuext_op`.
pub struct PvMapper {
    xen: Xen,
    window: u64,
    frames: &'static [u64],
}

impl PvMapper {
    /// The mapper over `window`, machine frames from `frames` (the domain's frame list).
    ///
    /// # Safety
    /// `window` must be a page of the image nothing else uses (its own frame is given up).
    pub unsafe fn new(xen: Xen, window: u64, frames: &'static [u64]) -> Self {
        let m = PvMapper { xen, window, frames };
        crate::platform::PageMapper::unmap(&m);
        m
    }
}

impl crate::platform::PageMapper for PvMapper {
    fn window(&self) -> u64 {
        self.window
    }

    fn map(&self, page: u64) {
        let Some(&mfn) = self.frames.get((page >> 12) as usize) else { return };
        // SAFETY: only the window's mapping changes (`new`'s contract); Xen checks the
        // entry (a data page of this domain, not a page table).
        let _ = unsafe { self.xen.pv().update_va_mapping(self.window, (mfn << 12) | pv::pte::DATA) };
    }

    fn unmap(&self) {
        // SAFETY: as in map.
        let _ = unsafe { self.xen.pv().update_va_mapping(self.window, 0) };
    }

    fn flush_tlb(&self) {
        let _ = self.xen.pv().flush_tlb_local();
    }

    fn name(&self) -> &'static str {
        "update_va_mapping"
    }
}
