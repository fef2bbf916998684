//! KVM's PV EOI: the end of an interrupt without a VM exit when KVM allows it.
//!
//! The guest registers a 4-byte-aligned word with `MSR_KVM_PV_EOI_EN`. When KVM injects
//! an interrupt that nothing else waits behind (no other vector pending or in service, not
//! level-triggered through the IO-APIC), it sets bit 0 of the word. At the end of the
//! interrupt the guest atomically tests and clears that bit: if it was set, KVM completes
//! the EOI itself on its next exit; if not, the guest writes the LAPIC's EOI register.
//! [`PvEoiController`] is the local APIC's controller with that end-of-interrupt rule.

use super::{msr, registration};
use crate::apic::{Lapic, LapicController};
use crate::cpu;
use crate::platform::{InterruptController, Irq, IrqError, IrqHandler, MsiRoute, Vector};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// `KVM_PV_EOI_ENABLED`: the bit KVM sets in the word.
pub const PV_EOI_PENDING: u32 = 1;

/// The word KVM and this vCPU share.
#[repr(C, align(4))]
struct EoiWord(AtomicU32);

static WORD: EoiWord = EoiWord(AtomicU32::new(0));
/// Set by the first [`PvEoiController::enable`]: the word backs one instance.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why PV EOI is not available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvEoiError {
    /// KVM does not offer `KVM_FEATURE_PV_EOI`.
    NotOffered,
    /// The word is registered already.
    AlreadyEnabled,
}

/// Interrupts through the local APIC, ended by KVM's PV EOI where KVM set the word.
pub struct PvEoiController {
    lapic: &'static Lapic,
    inner: LapicController,
    word: &'static AtomicU32,
}

impl PvEoiController {
    /// Registers the word with KVM (the caller checked that KVM offers PV EOI: `offered`).
    pub fn enable(lapic: &'static Lapic, offered: bool) -> Result<PvEoiController, PvEoiError> {
        if !offered {
            return Err(PvEoiError::NotOffered);
        }
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(PvEoiError::AlreadyEnabled);
        }
        WORD.0.store(0, Ordering::Release);
        // The kernel's RAM is identity-mapped: the static's address is its guest-physical one.
        let gpa = (&raw const WORD) as u64;
        let value = registration(gpa, 4).ok_or(PvEoiError::NotOffered)?;
        // SAFETY: KVM offers the MSR (PV_EOI); the word is an aligned static of this
        // kernel's RAM, used for nothing else, so KVM may write it.
        unsafe { cpu::wrmsr(msr::PV_EOI_EN, value) };
        Ok(PvEoiController { lapic, inner: LapicController::new(lapic), word: &WORD.0 })
    }
}

/// The PV EOI rule on `word`: clears the pending bit atomically and says whether the EOI
/// write is still needed (the bit was clear).
#[inline]
pub fn needs_eoi_write(word: &AtomicU32) -> bool {
    word.fetch_and(!PV_EOI_PENDING, Ordering::AcqRel) & PV_EOI_PENDING == 0
}

impl InterruptController for PvEoiController {
    fn alloc_ipi(&self, handler: &'static dyn IrqHandler) -> Result<Irq, IrqError> {
        self.inner.alloc_ipi(handler)
    }

    fn send_self_ipi(&self, irq: Irq) {
        self.inner.send_self_ipi(irq)
    }

    fn alloc_msi(&'static self, handler: &'static dyn IrqHandler) -> Result<MsiRoute, IrqError> {
        crate::apic::lapic_msi(self.lapic, handler)
    }

    #[inline]
    fn end_of_interrupt(&self, _vector: Vector) {
        if needs_eoi_write(self.word) {
            self.lapic.eoi();
        }
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn eoi_name(&self) -> &'static str {
        "pv"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bit_saves_the_write_once() {
        let w = AtomicU32::new(PV_EOI_PENDING);
        assert!(!needs_eoi_write(&w));
        assert_eq!(w.load(Ordering::Relaxed), 0);
        assert!(needs_eoi_write(&w));
    }

    #[test]
    fn other_bits_are_left_alone() {
        let w = AtomicU32::new(0x8000_0000 | PV_EOI_PENDING);
        assert!(!needs_eoi_write(&w));
        assert_eq!(w.load(Ordering::Relaxed), 0x8000_0000);
        assert!(needs_eoi_write(&w));
    }
}
