//! The hypercalls only a classic PV guest makes: its virtual IDT and callbacks, its
//! page-table updates, blocking; and its interrupt flag, the `evtchn_upcall_mask` byte of
//! its `vcpu_info` ([`irqflag::PvInterruptFlag`], the [`crate::irqflag`] of pv mode), and
//! the MMU benchmarks' window ([`mapper::PvMapper`]).
//!
//! The ABI structures are `xen_iface::pv`'s. A refused page-table update comes back as
//! [`MmuError`], which says which entry and what Xen answered.

mod irqflag;
mod mapper;

pub use irqflag::PvInterruptFlag;
pub use mapper::PvMapper;

use super::hypercall::hypercall;
use super::Xen;
use xen_iface::hypercall as abi;
use xen_iface::pv::{self, MmuUpdate, MmuextOp, TrapInfo};

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
        abi::status(rc)
    }

    /// `set_callbacks(event, failsafe, 0)`: where Xen bounces event upcalls and failed
    /// returns. No syscall callback: this kernel has no user mode.
    pub fn set_callbacks(&self, event: u64, failsafe: u64) -> Result<(), i64> {
        // SAFETY: two code addresses; Xen only records them.
        let rc = unsafe { hypercall(pv::SET_CALLBACKS, event, failsafe, 0, 0, 0) };
        abi::status(rc)
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
        abi::status(rc)
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

impl PvCalls {
    /// `mmuext_op(MMUEXT_TLB_FLUSH_LOCAL)`: flushes this vCPU's TLB.
    pub fn flush_tlb_local(&self) -> Result<(), i64> {
        let op = MmuextOp { cmd: pv::MMUEXT_TLB_FLUSH_LOCAL, ..Default::default() };
        // SAFETY: one live mmuext_op for the call; a local TLB flush changes no mapping.
        let rc = unsafe { hypercall(pv::MMUEXT_OP, &op as *const MmuextOp as u64, 1, 0, pv::DOMID_SELF, 0) };
        abi::status(rc)
    }
}
