//! Interrupt descriptor table, trap frames and the dispatch of interrupts and exceptions.
//!
//! `entry.S` has one 16-byte stub per vector; all of them funnel into [`trap_dispatch`].
//! Exceptions (vectors 0–31) end in a report of the faulting state and a panic, which the
//! kernel's panic handler turns into a failure shutdown. Interrupts (32–255) run the
//! handler [`alloc_vector`] connected to the vector (with its device's state), then the
//! [`InterruptController`]'s end-of-interrupt. An interrupt that ended an idle halt
//! (`cpu::idle`) returns past the `HLT`; from `cpu::idle_folded` with interrupts still off.

pub mod pv;
mod report;

use crate::irq_table::HandlerSlot;
use crate::platform::{InterruptController, IrqError, IrqHandler, Vector};
use spin::Once;

#[cfg(target_os = "none")]
core::arch::global_asm!(concat!(include_str!("frame.S"), include_str!("entry.S")), options(att_syntax));

/// Registers saved on entry, in the order `entry.S` pushes them (lowest address first).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Vector number pushed by the stub.
    pub vector: u64,
    /// Error code pushed by the CPU, or 0.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);

/// Vectors handed out by [`alloc_vector`]: above the exceptions and the legacy PIC
/// range, below the fixed system vectors.
pub const DYNAMIC_VECTORS: core::ops::RangeInclusive<u8> = 0x30..=0xef;
/// The interrupt flag in RFLAGS.
const RFLAGS_IF: u64 = 1 << 9;
/// The local APIC's spurious-interrupt vector; never acknowledged.
pub const SPURIOUS_VECTOR: Vector = 0xff;

/// Handlers by vector (only [`DYNAMIC_VECTORS`] are ever connected).
static HANDLERS: [HandlerSlot; 256] = [const { HandlerSlot::new() }; 256];
static CONTROLLER: Once<&'static dyn InterruptController> = Once::new();

/// Chooses the interrupt controller whose end-of-interrupt follows every handler.
pub fn set_controller(ctrl: &'static dyn InterruptController) {
    CONTROLLER.call_once(|| ctrl);
}

/// Connects `handler` to a free dynamic vector, for good.
pub fn alloc_vector(handler: &'static dyn IrqHandler) -> Result<Vector, IrqError> {
    let first = *DYNAMIC_VECTORS.start();
    let dynamic = &HANDLERS[first as usize..=*DYNAMIC_VECTORS.end() as usize];
    HandlerSlot::claim_first(dynamic, handler).map(|i| first + i as u8).ok_or(IrqError::NoVectors)
}

/// Called by `entry.S` for every trap.
#[no_mangle]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    if frame.vector == pv::FAILSAFE_VECTOR {
        report::fatal_failsafe(frame);
    }
    let vector = frame.vector as u8;
    if vector == 14 && crate::pagemap::page_fault(pv::cr2()) {
        return; // the MMU benchmark's window, mapped now: run the read again
    }
    if vector < 32 {
        report::fatal_exception(frame);
    }
    if let Some((resume, interrupts_off)) = crate::cpu::idle_wakeup(frame.rip) {
        // Back into the idle code past its HLT; from the folded idle with interrupts still
        // off (see cpu::idle_folded).
        frame.rip = resume;
        if interrupts_off {
            frame.rflags &= !RFLAGS_IF;
        }
    }
    if !HANDLERS[vector as usize].dispatch(vector as u32) && vector != SPURIOUS_VECTOR {
        log::warn!("interrupt on unexpected vector {vector:#x}");
    }
    if vector != SPURIOUS_VECTOR {
        if let Some(ctrl) = CONTROLLER.get() {
            ctrl.end_of_interrupt(vector);
        }
    }
}

#[cfg(target_os = "none")]
mod idt;
#[cfg(target_os = "none")]
pub use idt::init;
