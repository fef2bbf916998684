//! Xen's CPUID leaves (`arch-x86/cpuid.h`).
//!
//! Xen answers a block of leaves starting at `base` (0x4000_0000, or 0x4000_0100 when it
//! also offers Viridian at 0x4000_0000). This module turns the raw register values of
//! those leaves into [`XenCpuidInfo`]; reading the registers is the caller's business.
//! Viridian's own leaves are [`crate::viridian`]'s: the scan that found Xen's block above
//! them decodes them too and records them in [`XenCpuidInfo::viridian`].

/// `"XenVMMXenVMM"` as the EBX, ECX, EDX words of the signature leaf.
pub const XEN_SIGNATURE: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];

/// Leaf offsets from the Xen base leaf.
pub mod leaf {
    /// Signature and largest leaf.
    pub const SIGNATURE: u32 = 0;
    /// Xen version (major in 31:16, minor in 15:0).
    pub const VERSION: u32 = 1;
    /// Hypercall pages and MSR base.
    pub const HYPERCALL: u32 = 2;
    /// TSC information.
    pub const TSC: u32 = 3;
    /// HVM-specific features.
    pub const HVM: u32 = 4;
}

/// HVM feature flags of leaf 5 (`XEN_HVM_CPUID_*`), sub-leaf 0, EAX.
pub mod hvm_feature {
    /// Virtualized APIC registers.
    pub const APIC_ACCESS_VIRT: u32 = 1 << 0;
    /// Virtualized x2APIC accesses.
    pub const X2APIC_VIRT: u32 = 1 << 1;
    /// Memory mapped from other domains has IOMMU entries.
    pub const IOMMU_MAPPINGS: u32 = 1 << 2;
    /// EBX holds the vCPU id.
    pub const VCPU_ID_PRESENT: u32 = 1 << 3;
    /// ECX holds the domain id.
    pub const DOMID_PRESENT: u32 = 1 << 4;
    /// Extended destination id in IO-APIC RTEs and MSI addresses.
    pub const EXT_DEST_ID: u32 = 1 << 5;
    /// Per-vCPU upcall vectors work with PIRQs.
    pub const UPCALL_VECTOR: u32 = 1 << 6;
}

/// Registers returned by one CPUID query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    /// EAX.
    pub eax: u32,
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
}

/// What Xen's leaves say about the host, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenCpuidInfo {
    /// The signature leaf (0x4000_0000 or a multiple of 0x100 above it).
    pub base: u32,
    /// Largest leaf Xen answers.
    pub max_leaf: u32,
    /// Xen major version.
    pub major: u16,
    /// Xen minor version.
    pub minor: u16,
    /// Number of hypercall transfer pages (always at least 1).
    pub hypercall_pages: u32,
    /// MSR to write the hypercall page's guest-physical address to.
    pub hypercall_msr: u32,
    /// Guest TSC frequency in kHz, when Xen reports one.
    pub tsc_khz: Option<u32>,
    /// HVM feature flags (`hvm_feature::*`); 0 when the leaf is absent.
    pub hvm_features: u32,
    /// This vCPU's id, when reported.
    pub vcpu_id: Option<u32>,
    /// This domain's id, when reported.
    pub domid: Option<u16>,
    /// Viridian's (Hyper-V's) leaves at 0x4000_0000, when Xen offers them below its own
    /// block. [`XenCpuidInfo::decode`] reads Xen's block only and leaves this `None`; the
    /// scan over the hypervisor range fills it (`hy-arch`'s `Hypervisor::detect_with`).
    pub viridian: Option<crate::viridian::ViridianInfo>,
}

/// Why Xen's leaves could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuidError {
    /// The signature leaf does not say `XenVMMXenVMM`.
    NotXen,
    /// The signature leaf claims fewer leaves than the version and hypercall leaves.
    TooFewLeaves(u32),
}

impl XenCpuidInfo {
    /// Decodes Xen's leaves at `base`; `cpuid(leaf, subleaf)` returns the registers.
    pub fn decode(base: u32, mut cpuid: impl FnMut(u32, u32) -> Regs) -> Result<Self, CpuidError> {
        let sig = cpuid(base + leaf::SIGNATURE, 0);
        if [sig.ebx, sig.ecx, sig.edx] != XEN_SIGNATURE {
            return Err(CpuidError::NotXen);
        }
        let max_leaf = sig.eax;
        if max_leaf < base + leaf::HYPERCALL {
            return Err(CpuidError::TooFewLeaves(max_leaf));
        }
        let version = cpuid(base + leaf::VERSION, 0);
        let hypercall = cpuid(base + leaf::HYPERCALL, 0);
        let tsc_khz = if max_leaf >= base + leaf::TSC {
            Some(cpuid(base + leaf::TSC, 0).ecx).filter(|&khz| khz != 0)
        } else {
            None
        };
        let (hvm_features, vcpu_id, domid) = if max_leaf >= base + leaf::HVM {
            let hvm = cpuid(base + leaf::HVM, 0);
            let vcpu = (hvm.eax & hvm_feature::VCPU_ID_PRESENT != 0).then_some(hvm.ebx);
            let dom = (hvm.eax & hvm_feature::DOMID_PRESENT != 0).then_some(hvm.ecx as u16);
            (hvm.eax, vcpu, dom)
        } else {
            (0, None, None)
        };
        Ok(XenCpuidInfo {
            base,
            max_leaf,
            major: (version.eax >> 16) as u16,
            minor: version.eax as u16,
            hypercall_pages: hypercall.eax.max(1),
            hypercall_msr: hypercall.ebx,
            tsc_khz,
            hvm_features,
            vcpu_id,
            domid,
            viridian: None,
        })
    }

    /// True if Xen offers a feature of leaf 5 (`hvm_feature::*`).
    pub fn has_hvm_feature(&self, flag: u32) -> bool {
        self.hvm_features & flag != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves Xen 4.17 returned to an HVM domU on the test host (base 0x4000_0000).
    fn xen_417(leaf: u32, _sub: u32) -> Regs {
        match leaf {
            0x4000_0000 => Regs { eax: 0x4000_0005, ebx: 0x566e_6558, ecx: 0x6558_4d4d, edx: 0x4d4d_566e },
            0x4000_0001 => Regs { eax: 0x0004_0011, ..Regs::default() },
            0x4000_0002 => Regs { eax: 1, ebx: 0x4000_0000, ..Regs::default() },
            0x4000_0003 => Regs { eax: 0, ebx: 2, ecx: 2_994_318, edx: 0 },
            0x4000_0004 => Regs { eax: 0x7f, ebx: 0, ecx: 3, edx: 0 },
            _ => Regs::default(),
        }
    }

    #[test]
    fn decodes_xen_417() {
        let info = XenCpuidInfo::decode(0x4000_0000, xen_417).unwrap();
        assert_eq!((info.major, info.minor), (4, 17));
        assert_eq!(info.hypercall_msr, 0x4000_0000);
        assert_eq!(info.hypercall_pages, 1);
        assert_eq!(info.tsc_khz, Some(2_994_318));
        assert_eq!(info.vcpu_id, Some(0));
        assert_eq!(info.domid, Some(3));
        assert!(info.has_hvm_feature(hvm_feature::X2APIC_VIRT));
        assert!(info.has_hvm_feature(hvm_feature::UPCALL_VECTOR));
    }

    #[test]
    fn rejects_other_signatures() {
        let kvm = |_: u32, _: u32| Regs { eax: 0x4000_0001, ebx: 0x4b4d_564b, ecx: 0x564b_4d56, edx: 0x4d };
        assert_eq!(XenCpuidInfo::decode(0x4000_0000, kvm), Err(CpuidError::NotXen));
    }

    #[test]
    fn rejects_truncated_leaf_block() {
        let short = |leaf: u32, sub: u32| {
            let mut r = xen_417(leaf, sub);
            if leaf == 0x4000_0000 {
                r.eax = 0x4000_0001;
            }
            r
        };
        assert_eq!(XenCpuidInfo::decode(0x4000_0000, short), Err(CpuidError::TooFewLeaves(0x4000_0001)));
    }

    #[test]
    fn optional_leaves_absent() {
        let minimal = |leaf: u32, sub: u32| {
            let mut r = xen_417(leaf, sub);
            if leaf == 0x4000_0000 {
                r.eax = 0x4000_0002;
            }
            r
        };
        let info = XenCpuidInfo::decode(0x4000_0000, minimal).unwrap();
        assert_eq!(info.tsc_khz, None);
        assert_eq!(info.hvm_features, 0);
        assert_eq!(info.domid, None);
    }

    #[test]
    fn decodes_at_shifted_base() {
        // With Viridian enabled, Xen's block moves to 0x4000_0100.
        let shifted = |leaf: u32, sub: u32| {
            if leaf >= 0x4000_0100 {
                let mut r = xen_417(leaf - 0x100, sub);
                if leaf == 0x4000_0100 {
                    r.eax += 0x100;
                }
                r
            } else {
                Regs::default()
            }
        };
        let info = XenCpuidInfo::decode(0x4000_0100, shifted).unwrap();
        assert_eq!(info.base, 0x4000_0100);
        assert_eq!(info.major, 4);
    }
}
