//! KVM's paravirtual interfaces, the pieces of the KVM hybrid mode: [`clock`] (kvmclock,
//! the pvclock ABI Xen uses too, registered by MSR), [`pv_eoi`] (the EOI write skipped
//! when KVM says it may be) and [`marker`] (benchmark phases as CPUID exits of reserved
//! leaves, which L1's `kvm:kvm_cpuid` trace event records).
//!
//! Which of them exist is `crate::hypervisor::KvmFeatures`' decode of CPUID 0x4000_0001;
//! the MSR numbers are Linux's `arch/x86/include/uapi/asm/kvm_para.h`.

pub mod clock;
pub mod marker;
pub mod pv_eoi;

/// MSR numbers of KVM's paravirtual interfaces.
pub mod msr {
    /// `MSR_KVM_SYSTEM_TIME_NEW`: guest-physical address of the vCPU's pvclock record, bit 0
    /// enables it.
    pub const SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
    /// `MSR_KVM_PV_EOI_EN`: guest-physical address of the PV EOI word (4-byte aligned),
    /// bit 0 enables it.
    pub const PV_EOI_EN: u32 = 0x4b56_4d04;
}

/// The enable bit of both registration MSRs.
pub const MSR_ENABLE: u64 = 1;

/// The value of a registration MSR for the memory at `gpa` aligned to `align` bytes:
/// `None` if it is not so aligned (KVM refuses the write with a #GP).
pub fn registration(gpa: u64, align: u64) -> Option<u64> {
    (align.is_power_of_two() && gpa.is_multiple_of(align)).then_some(gpa | MSR_ENABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_needs_alignment() {
        assert_eq!(registration(0x40_1000, 4), Some(0x40_1001));
        assert_eq!(registration(0x40_1002, 4), None);
        assert_eq!(registration(0x40_1020, 32), Some(0x40_1021));
        assert_eq!(registration(0x40_1010, 32), None);
        assert_eq!(registration(0x40_1000, 3), None);
    }
}
