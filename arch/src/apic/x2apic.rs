//! x2APIC register access: MSR 0x800 + offset / 16.

use crate::cpu;
use crate::platform::Vector;

const MSR_BASE: u32 = 0x800;
/// The x2APIC SELF IPI register.
const MSR_SELF_IPI: u32 = 0x83f;

/// The MSR-based APIC; only exists once x2APIC mode is enabled.
#[derive(Debug)]
pub(super) struct X2Apic;

impl X2Apic {
    pub(super) fn read(&self, offset: u32) -> u32 {
        // SAFETY: x2APIC mode is on (this value only exists then) and offsets from
        // `super::reg` name existing x2APIC MSRs.
        unsafe { cpu::rdmsr(MSR_BASE + (offset >> 4)) as u32 }
    }

    pub(super) fn write(&self, offset: u32, value: u32) {
        // SAFETY: as in `read`; the register values are the caller's (LVT, EOI, …).
        unsafe { cpu::wrmsr(MSR_BASE + (offset >> 4), value as u64) };
    }

    pub(super) fn send_self_ipi(&self, vector: Vector) {
        // SAFETY: SELF IPI exists in x2APIC mode; writing a vector sends it to this CPU.
        unsafe { cpu::wrmsr(MSR_SELF_IPI, vector as u64) };
    }
}
