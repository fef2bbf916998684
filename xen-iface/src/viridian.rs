//! Viridian: the Hyper-V interface Xen offers an HVM guest whose config says `viridian =
//! [...]` (Microsoft's Hypervisor Top Level Functional Specification, "TLFS"; Xen's
//! `xen/arch/x86/hvm/viridian/`), the part this kernel uses: its CPUID leaves, the guest
//! OS id, and the VP assist page with its **APIC assist** word.
//!
//! With Viridian on, Xen answers Hyper-V's leaves at 0x4000_0000 and moves its own block
//! to 0x4000_0100 ([`crate::cpuid`]); so this block is only Viridian's where Xen's is
//! elsewhere, and the MSRs below (0x4000_00xx) are only Hyper-V's then, not Xen's
//! hypercall MSR.
//!
//! APIC assist: when Xen delivers an edge-triggered vector through the emulated local
//! APIC with nothing else in service, it sets bit 0 of the assist word. A guest that
//! atomically swaps the word to 0 and finds the bit set may skip the EOI write: Xen
//! completes the EOI itself when it next looks at the APIC (`vlapic.c`). If Xen cleared
//! the word first (another interrupt became pending), the guest writes the EOI as usual.
//! The swap must be atomic: Xen crashes a domain in which it would set an assist while
//! one is pending. Xen gives no CPUID bit for the assist itself (`apic_assist` in the
//! domain's list); the VP assist page is granted with the APIC MSRs (privilege
//! `AccessIntrCtrlRegs`), and whether Xen sets the bit shows on delivery.

use crate::cpuid::Regs;

/// `"Microsoft Hv"` as the EBX, ECX, EDX words of the vendor leaf.
pub const HV_SIGNATURE: [u32; 3] = [0x7263_694d, 0x666f_736f, 0x7648_2074];
/// `"Hv#1"`: the interface leaf's EAX for the TLFS interface.
pub const HV_INTERFACE: u32 = 0x3123_7648;

/// The Hyper-V leaves (always at 0x4000_0000).
pub mod leaf {
    /// Vendor signature and largest leaf.
    pub const VENDOR: u32 = 0x4000_0000;
    /// Interface signature (`Hv#1`).
    pub const INTERFACE: u32 = 0x4000_0001;
    /// Partition privileges (EAX low, EBX high) and features (EDX).
    pub const FEATURES: u32 = 0x4000_0003;
}

/// Partition privilege flags (`HV_PARTITION_PRIVILEGE_MASK`, leaf 3 EAX).
pub mod privilege {
    /// `AccessPartitionReferenceCounter`: the reference counter MSR.
    pub const TIME_REF_COUNT: u32 = 1 << 1;
    /// `AccessSynicRegs`: the synthetic interrupt controller.
    pub const SYNIC: u32 = 1 << 2;
    /// `AccessIntrCtrlRegs`: the APIC MSRs (EOI, ICR, TPR) and the VP assist page.
    pub const APIC_MSRS: u32 = 1 << 4;
    /// `AccessHypercallMsrs`: the guest OS id and hypercall page MSRs.
    pub const HYPERCALL_MSRS: u32 = 1 << 5;
    /// `AccessVpIndex`: the VP index MSR.
    pub const VP_INDEX: u32 = 1 << 6;
}

/// Hyper-V's synthetic MSRs this kernel writes.
pub mod msr {
    /// `HV_X64_MSR_GUEST_OS_ID`: who the guest is; the TLFS asks for it first.
    pub const GUEST_OS_ID: u32 = 0x4000_0000;
    /// `HV_X64_MSR_EOI`: EOI through a synthetic MSR.
    pub const EOI: u32 = 0x4000_0070;
    /// `HV_X64_MSR_VP_ASSIST_PAGE`: page-aligned gpa | [`super::VP_ASSIST_ENABLE`].
    pub const VP_ASSIST_PAGE: u32 = 0x4000_0073;
}

/// Enable bit of `HV_X64_MSR_VP_ASSIST_PAGE`.
pub const VP_ASSIST_ENABLE: u64 = 1;
/// Offset of the 32-bit `apic_assist` word in the VP assist page (`struct hv_vp_assist_page`).
pub const APIC_ASSIST_OFFSET: usize = 0;
/// Bit 0 of `apic_assist`: Xen will complete this interrupt's EOI if the guest clears it.
pub const APIC_ASSIST_PENDING: u32 = 1;

/// What Viridian's leaves say, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViridianInfo {
    /// Largest Hyper-V leaf.
    pub max_leaf: u32,
    /// Partition privileges, leaf 3 EAX ([`privilege`]); 0 when the leaf is absent.
    pub privileges: u32,
    /// Feature flags, leaf 3 EDX.
    pub features: u32,
}

impl ViridianInfo {
    /// Decodes the Hyper-V leaves at 0x4000_0000 through `cpuid(leaf, subleaf)`; `None`
    /// unless they carry Microsoft's signature and the `Hv#1` interface.
    pub fn decode(mut cpuid: impl FnMut(u32, u32) -> Regs) -> Option<ViridianInfo> {
        let vendor = cpuid(leaf::VENDOR, 0);
        if [vendor.ebx, vendor.ecx, vendor.edx] != HV_SIGNATURE || vendor.eax < leaf::INTERFACE {
            return None;
        }
        if cpuid(leaf::INTERFACE, 0).eax != HV_INTERFACE {
            return None;
        }
        let (privileges, features) = if vendor.eax >= leaf::FEATURES {
            let f = cpuid(leaf::FEATURES, 0);
            (f.eax, f.edx)
        } else {
            (0, 0)
        };
        Some(ViridianInfo { max_leaf: vendor.eax, privileges, features })
    }

    /// True if the partition holds privilege `flag` ([`privilege`]).
    pub fn has_privilege(&self, flag: u32) -> bool {
        self.privileges & flag == flag
    }

    /// True if the VP assist page may be registered (and with it the APIC assist asked for).
    pub fn offers_vp_assist(&self) -> bool {
        self.has_privilege(privilege::APIC_MSRS)
    }
}

/// `HV_X64_MSR_VP_ASSIST_PAGE`'s value enabling the page at `gpa`; `None` unless `gpa` is
/// page-aligned and fits the 48-bit frame field.
pub fn vp_assist_msr(gpa: u64) -> Option<u64> {
    (gpa & 0xfff == 0 && gpa >> 12 < 1 << 48).then_some(gpa | VP_ASSIST_ENABLE)
}

/// The guest OS id for an open-source OS (TLFS, "Guest OS Identity"): bit 63 set, OS type
/// 0 (none of those the TLFS lists), kernel version `major.minor.patch` in bits 47:16,
/// build 0. Never 0 (0 means "no guest OS id").
pub fn guest_os_id(major: u8, minor: u8, patch: u8) -> u64 {
    const OPEN_SOURCE: u64 = 1 << 63;
    let version = (major as u64) << 16 | (minor as u64) << 8 | patch as u64;
    OPEN_SOURCE | version << 16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves Xen 4.17 answers with `viridian = ["base", "apic_assist"]`
    /// (`cpuid_viridian_leaves`), before the guest OS id is written.
    fn xen_viridian(leaf: u32, _sub: u32) -> Regs {
        match leaf {
            0x4000_0000 => Regs { eax: 0x4000_0006, ebx: HV_SIGNATURE[0], ecx: HV_SIGNATURE[1], edx: HV_SIGNATURE[2] },
            0x4000_0001 => Regs { eax: HV_INTERFACE, ..Regs::default() },
            // AccessIntrCtrlRegs | AccessHypercallMsrs | AccessVpIndex | AccessFrequencyRegs
            0x4000_0003 => Regs { eax: 0x870, ..Regs::default() },
            _ => Regs::default(),
        }
    }

    #[test]
    fn signature_words_spell_the_names() {
        let sig: Vec<u8> = HV_SIGNATURE.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(sig, b"Microsoft Hv");
        assert_eq!(&HV_INTERFACE.to_le_bytes(), b"Hv#1");
    }

    #[test]
    fn decodes_xens_viridian_leaves() {
        let v = ViridianInfo::decode(xen_viridian).unwrap();
        assert_eq!(v.max_leaf, 0x4000_0006);
        assert!(v.offers_vp_assist());
        assert!(v.has_privilege(privilege::HYPERCALL_MSRS | privilege::VP_INDEX));
        assert!(!v.has_privilege(privilege::SYNIC));
    }

    #[test]
    fn other_vendors_and_interfaces_are_not_viridian() {
        let xen = |leaf: u32, sub: u32| {
            let mut r = xen_viridian(leaf, sub);
            if leaf == 0x4000_0000 {
                (r.ebx, r.ecx, r.edx) = (0x566e_6558, 0x6558_4d4d, 0x4d4d_566e);
            }
            r
        };
        assert_eq!(ViridianInfo::decode(xen), None);
        let other_interface = |leaf: u32, sub: u32| {
            let mut r = xen_viridian(leaf, sub);
            if leaf == 0x4000_0001 {
                r.eax = 0x3023_7648; // "Hv#0"
            }
            r
        };
        assert_eq!(ViridianInfo::decode(other_interface), None);
        assert_eq!(ViridianInfo::decode(|_, _| Regs::default()), None);
    }

    #[test]
    fn without_the_features_leaf_nothing_is_granted() {
        let short = |leaf: u32, sub: u32| {
            let mut r = xen_viridian(leaf, sub);
            if leaf == 0x4000_0000 {
                r.eax = 0x4000_0001;
            }
            r
        };
        let v = ViridianInfo::decode(short).unwrap();
        assert_eq!((v.privileges, v.offers_vp_assist()), (0, false));
    }

    #[test]
    fn vp_assist_msr_wants_a_page() {
        assert_eq!(vp_assist_msr(0x0052_3000), Some(0x0052_3001));
        assert_eq!(vp_assist_msr(0x0052_3008), None);
        assert_eq!(vp_assist_msr(1 << 60), None);
    }

    #[test]
    fn guest_os_id_is_open_source_and_never_zero() {
        assert_eq!(guest_os_id(0, 1, 0), 0x8000_0000_0100_0000);
        assert_ne!(guest_os_id(0, 0, 0), 0);
        // Xen reads the OS type from bits 55:48 ("os"); ours is 0.
        assert_eq!(guest_os_id(1, 2, 3) >> 48 & 0xff, 0);
    }
}
