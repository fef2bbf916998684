//! Classic 64-bit PV: the start-of-day structure, the MMU and trap hypercalls' ABI, and
//! the plan for extending Xen's bootstrap page tables over the domain's memory.
//!
//! A PV guest's kernel runs in ring 3 on page tables it may read but not write; Xen
//! checks every update (`mmu_update`, `update_va_mapping`). Xen starts it at the
//! `XEN_ELFNOTE_ENTRY` address with `%rsi` = the [`PvStartInfo`]'s virtual address, on
//! bootstrap tables that map only the image and the bootstrap area (`xen.h`, "start of
//! day memory layout"). With `VIRT_BASE` 0, pseudo-physical frame `pfn` is mapped at
//! virtual `pfn << 12`, as this kernel's identity map expects.
//!
//! [`map::plan_map`] decides, without touching memory, which page-table pages to add and which
//! entries to write so that the pseudo-physical range becomes mapped the same way; the
//! `arch` side walks the live tables through [`PageTables`] and applies it. Everything
//! the toolstack or Xen hands over (the frame list, entries of the bootstrap tables) is
//! checked before it is used: a bad value is an error, never an index.
//!
//! Here: the hypercall numbers, entry bits and structures; [`start_info`]: the start of
//! day; [`map`]: extending the bootstrap map.

pub mod map;
pub mod start_info;

pub use map::{plan_map, FrameList, MapPlanError, MapStep, PageTables};
pub use start_info::{PvStartError, PvStartInfo, CMDLINE_MAX, MAX_MAPPED};

/// `__HYPERVISOR_set_trap_table`.
pub const SET_TRAP_TABLE: u32 = 0;
/// `__HYPERVISOR_mmu_update`.
pub const MMU_UPDATE: u32 = 1;
/// `__HYPERVISOR_set_callbacks` (x86_64: event, failsafe, syscall addresses).
pub const SET_CALLBACKS: u32 = 4;
/// `__HYPERVISOR_update_va_mapping`.
pub const UPDATE_VA_MAPPING: u32 = 14;
/// `__HYPERVISOR_iret`: jumped to, never called (see `arch/src/trap/pv.S`).
pub const IRET: u32 = 23;
/// `__HYPERVISOR_mmuext_op`.
pub const MMUEXT_OP: u32 = 26;
/// `MMUEXT_TLB_FLUSH_LOCAL`: flush this vCPU's TLB.
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
/// `SCHEDOP_yield`.
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_block`: unmask events and sleep until one is pending.
pub const SCHEDOP_BLOCK: u32 = 1;
/// `MMU_NORMAL_PT_UPDATE`: `*ptr = val`, checked; `ptr` is a machine address.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `UVMF_INVLPG`: flush the one TLB entry (local vCPU).
pub const UVMF_INVLPG: u64 = 2;
/// `FLAT_KERNEL_CS64` (`arch-x86/xen-x86_64.h`): the ring-3 kernel code selector.
pub const FLAT_KERNEL_CS: u16 = 0xe033;
/// `trap_info.flags` bit 2: mask events on entry (an interrupt gate).
pub const TRAP_MASK_EVENTS: u8 = 4;
/// `DOMID_SELF` for `mmu_update`'s domain argument.
pub const DOMID_SELF: u64 = 0x7ff0;

/// Page-table entry bits.
pub mod pte {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const WRITABLE: u64 = 1 << 1;
    /// User (Xen sets it on a 64-bit PV kernel's pages anyway).
    pub const USER: u64 = 1 << 2;
    /// Accessed.
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty.
    pub const DIRTY: u64 = 1 << 6;
    /// Large page (refused in PV without superpage support).
    pub const HUGE: u64 = 1 << 7;
    /// The frame-number bits of an entry (bits 12..52).
    pub const FRAME: u64 = 0x000f_ffff_ffff_f000;
    /// A data page: present, writable, accessed, dirty.
    pub const DATA: u64 = PRESENT | WRITABLE | ACCESSED | DIRTY;
    /// A page-table page's entry in its parent: present, writable, user, accessed.
    pub const TABLE: u64 = PRESENT | WRITABLE | USER | ACCESSED;
    /// The frame number an entry points to.
    pub fn frame(entry: u64) -> u64 {
        (entry & FRAME) >> 12
    }
}

/// `struct mmu_update` (`xen.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    /// Machine address of the entry, with the command in bits 1:0.
    pub ptr: u64,
    /// The new entry.
    pub val: u64,
}
const _: () = assert!(core::mem::size_of::<MmuUpdate>() == 16);

/// `struct trap_info` (`arch-x86/xen.h`): one entry of the virtual IDT.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    /// Exception vector.
    pub vector: u8,
    /// Bits 0-1: the lowest privilege that may raise it with `int`; bit 2: mask events.
    pub flags: u8,
    /// Code selector of the handler.
    pub cs: u16,
    /// Handler address; 0 ends the table.
    pub address: u64,
}
const _: () = assert!(core::mem::size_of::<TrapInfo>() == 16);

/// `struct mmuext_op` (`xen.h`): `cmd`, then two argument unions of one word each.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    /// `MMUEXT_*`.
    pub cmd: u32,
    /// Padding to the first union.
    pub pad: u32,
    /// `arg1` (a frame or a linear address).
    pub arg1: u64,
    /// `arg2` (a count, a vCPU mask pointer or a source frame).
    pub arg2: u64,
}
const _: () = assert!(core::mem::size_of::<MmuextOp>() == 24);
