//! CPU instructions the rest of the kernel uses: CPUID, TSC, MSRs, halting.
//!
//! Thin, named wrappers so that no other module needs inline assembly for them.

use core::arch::asm;
pub use xen_iface::cpuid::Regs;

/// Executes CPUID for `leaf`/`subleaf`.
#[inline]
pub fn cpuid(leaf: u32, subleaf: u32) -> Regs {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    Regs { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

/// Reads the time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC has no side effects beyond reading the counter.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (hi as u64) << 32 | lo as u64
}

/// Reads the TSC after all earlier instructions have completed (LFENCE; RDTSC).
#[inline(always)]
pub fn rdtsc_ordered() -> u64 {
    // SAFETY: LFENCE only orders instructions.
    unsafe { asm!("lfence", options(nostack, preserves_flags)) };
    rdtsc()
}

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist on this CPU; reading some MSRs has side effects.
#[inline]
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nostack, preserves_flags)) };
    (hi as u64) << 32 | lo as u64
}

/// Writes a model-specific register.
///
/// # Safety
/// The MSR must exist and the value must be valid for it; MSR writes change CPU state.
#[inline]
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the write is valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    };
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".section .text.idle, \"ax\"",
    ".global arch_idle",
    "arch_idle:",
    "    sti",
    ".global arch_idle_hlt",
    "arch_idle_hlt:",
    "    hlt",
    "    ret",
    ".global arch_idle_folded",
    "arch_idle_folded:",
    "    sti",
    ".global arch_idle_folded_hlt",
    "arch_idle_folded_hlt:",
    "    hlt",
    "    cli",
    "    ret",
);

#[cfg(target_os = "none")]
extern "C" {
    fn arch_idle();
    static arch_idle_hlt: u8;
    fn arch_idle_folded();
    static arch_idle_folded_hlt: u8;
}

/// Enables interrupts and halts until the next one, for a caller that has disabled
/// interrupts: natively `STI; HLT`, in PV `SCHEDOP_block` (the platform's
/// [`crate::irqflag::InterruptFlag::idle`]). For a caller that has
/// disabled interrupts, checked that there is nothing to do, and must not miss the
/// interrupt that makes work. Returns with interrupts enabled, once the interrupt that
/// ended the halt has been handled.
///
/// `STI` holds interrupts off for one more instruction, so an interrupt can only arrive
/// once `HLT` has started, and the handler returns past it. A hypervisor that delivers an
/// interrupt *at* the `HLT` instead (seen with Xen on a TCG-emulated SVM) would make the
/// handler return onto the `HLT` and sleep through the wake-up; the trap dispatcher
/// therefore steps an interrupted context past this one `HLT` ([`idle_wakeup`]).
#[inline]
pub fn idle() {
    crate::irqflag::current().idle()
}

/// [`idle`] as `STI; HLT`.
#[inline]
pub(crate) fn native_idle() {
    #[cfg(target_os = "none")]
    // SAFETY: arch_idle enables interrupts, halts and returns; it touches no memory and
    // preserves all registers but flags.
    unsafe {
        arch_idle()
    };
}

/// [`idle`], but returns with interrupts **disabled**: the dispatcher clears IF in the
/// frame of the interrupt that ended this halt, so interrupts come back on only at the
/// caller's next `STI`, typically the next idle's. An interrupt window Xen left open
/// (after an injection on its global callback, or for an interrupt raised while
/// interrupts were off) then never fires: the `STI` shadow lets the next `HLT`'s exit come
/// first and Xen injects there. On the test host this took the VINTR exit out of every
/// variant's `interrupt_idle` benchmark.
///
/// Only the benchmark uses it. While the network loop ran on it (long stretches with
/// interrupts off while events wait in an open window) the nested test host froze twice
/// in three runs, its L0 QEMU idle for good; the L0 later froze with [`idle`] too (once at
/// Xen's power-off, and on the KVM host without Xen), so the fold is probably not the
/// cause, but the network loop stays on [`idle`] until that is settled.
#[inline]
pub fn idle_folded() {
    crate::irqflag::current().idle_folded()
}

/// [`idle_folded`] as `STI; HLT; CLI`.
#[inline]
pub(crate) fn native_idle_folded() {
    #[cfg(target_os = "none")]
    // SAFETY: arch_idle_folded enables interrupts, halts, disables them and returns; it
    // touches no memory and preserves all registers but flags.
    unsafe {
        arch_idle_folded()
    };
}

/// Where an interrupted context in the idle code resumes: for one at or just past either
/// idle `HLT` (see [`idle`]), the address past it, and whether interrupts stay off there
/// (the folded idle's); `None` elsewhere.
pub fn idle_wakeup(rip: u64) -> Option<(u64, bool)> {
    #[cfg(target_os = "none")]
    {
        let plain = (&raw const arch_idle_hlt) as u64;
        let folded = (&raw const arch_idle_folded_hlt) as u64;
        if rip == plain || rip == plain + 1 {
            return Some((plain + 1, false));
        }
        if rip == folded || rip == folded + 1 {
            return Some((folded + 1, true));
        }
    }
    let _ = rip;
    None
}

/// Halts forever with interrupts off (the platform's way).
pub fn halt_forever() -> ! {
    crate::irqflag::current().halt_forever()
}

/// CPU features the kernel chooses between, read once from the standard leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// x2APIC (CPUID.1:ECX[21]).
    pub x2apic: bool,
    /// TSC-deadline mode of the LAPIC timer (CPUID.1:ECX[24]).
    pub tsc_deadline: bool,
    /// A hypervisor is present (CPUID.1:ECX[31]).
    pub hypervisor: bool,
    /// The TSC runs at a constant rate in all states (CPUID.8000_0007:EDX[8]).
    pub invariant_tsc: bool,
    /// TSC frequency from CPUID.15H, when the CPU states it.
    pub tsc_hz_cpuid: Option<u64>,
}

impl Features {
    /// Decodes the features from a CPUID function (the live CPU or a recorded one).
    pub fn decode(mut cpuid: impl FnMut(u32, u32) -> Regs) -> Self {
        let max_basic = cpuid(0, 0).eax;
        let l1 = cpuid(1, 0);
        let max_ext = cpuid(0x8000_0000, 0).eax;
        let invariant_tsc = max_ext >= 0x8000_0007 && cpuid(0x8000_0007, 0).edx & (1 << 8) != 0;
        let tsc_hz_cpuid = if max_basic >= 0x15 {
            let l15 = cpuid(0x15, 0);
            // TSC = crystal (ECX) * EBX / EAX, when all three are given.
            (l15.eax != 0 && l15.ebx != 0 && l15.ecx != 0).then(|| l15.ecx as u64 * l15.ebx as u64 / l15.eax as u64)
        } else {
            None
        };
        Features {
            x2apic: l1.ecx & (1 << 21) != 0,
            tsc_deadline: l1.ecx & (1 << 24) != 0,
            hypervisor: l1.ecx & (1 << 31) != 0,
            invariant_tsc,
            tsc_hz_cpuid,
        }
    }

    /// Reads the features of the running CPU.
    pub fn read() -> Self {
        Self::decode(cpuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_leaf1_and_leaf15() {
        let f = Features::decode(|leaf, _| match leaf {
            0 => Regs { eax: 0x16, ..Default::default() },
            1 => Regs { ecx: (1 << 21) | (1 << 24) | (1 << 31), ..Default::default() },
            0x15 => Regs { eax: 2, ebx: 176, ecx: 24_000_000, edx: 0 },
            0x8000_0000 => Regs { eax: 0x8000_0008, ..Default::default() },
            0x8000_0007 => Regs { edx: 1 << 8, ..Default::default() },
            _ => Regs::default(),
        });
        assert!(f.x2apic && f.tsc_deadline && f.hypervisor && f.invariant_tsc);
        assert_eq!(f.tsc_hz_cpuid, Some(2_112_000_000));
    }

    #[test]
    fn leaf15_without_crystal_is_ignored() {
        let f = Features::decode(|leaf, _| match leaf {
            0 => Regs { eax: 0x15, ..Default::default() },
            0x15 => Regs { eax: 2, ebx: 176, ecx: 0, edx: 0 },
            _ => Regs::default(),
        });
        assert_eq!(f.tsc_hz_cpuid, None);
        assert!(!f.x2apic);
    }
}
