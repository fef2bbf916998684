//! Which hypervisor, if any, runs this kernel: the CPUID 0x4000_0000 leaves.
//!
//! Hypervisors answer a block of leaves whose first leaf carries a 12-byte signature.
//! A host may offer several blocks (Xen with Viridian puts Hyper-V's at 0x4000_0000 and
//! its own at 0x4000_0100), so the scan walks 0x4000_0000 upward in steps of 0x100 and
//! prefers Xen and KVM, whose interfaces this kernel speaks, over any other. Where Xen's
//! block sits above Viridian's (Hyper-V's leaves at 0x4000_0000), the Viridian leaves are
//! decoded too, into [`XenCpuidInfo::viridian`]: they say whether the VP assist page (the
//! APIC assist, `xen::viridian`) may be asked for.

use crate::cpu::Regs;
use xen_iface::cpuid::{XenCpuidInfo, XEN_SIGNATURE};
use xen_iface::viridian::ViridianInfo;

/// `"KVMKVMKVM\0\0\0"` as EBX, ECX, EDX.
const KVM_SIGNATURE: [u32; 3] = [0x4b4d_564b, 0x564b_4d56, 0x0000_004d];
/// First leaf of the hypervisor range.
const FIRST: u32 = 0x4000_0000;
/// Last base the scan looks at (Xen looks up to 0x4001_0000 itself).
const LAST: u32 = 0x4001_0000;

/// KVM's paravirtual feature bits (CPUID 0x4000_0001 EAX, Linux's `kvm_para.h`), the
/// ones this kernel uses or reports.
pub mod kvm_feature {
    /// kvmclock at the old MSRs (`KVM_FEATURE_CLOCKSOURCE`).
    pub const CLOCKSOURCE: u32 = 1 << 0;
    /// kvmclock at the new MSRs (`KVM_FEATURE_CLOCKSOURCE2`).
    pub const CLOCKSOURCE2: u32 = 1 << 3;
    /// Steal time (`KVM_FEATURE_STEAL_TIME`).
    pub const STEAL_TIME: u32 = 1 << 5;
    /// PV end-of-interrupt (`KVM_FEATURE_PV_EOI`).
    pub const PV_EOI: u32 = 1 << 6;
    /// IPIs by hypercall (`KVM_FEATURE_PV_SEND_IPI`).
    pub const PV_SEND_IPI: u32 = 1 << 11;
    /// kvmclock's TSC is stable across vCPUs (`KVM_FEATURE_CLOCKSOURCE_STABLE_BIT`).
    pub const CLOCKSOURCE_STABLE: u32 = 1 << 24;
}

/// KVM's feature leaf (CPUID base+1 EAX), decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmFeatures(pub u32);

impl KvmFeatures {
    /// The features this kernel knows by name, with their names for the log.
    const NAMED: [(u32, &'static str); 6] = [
        (kvm_feature::CLOCKSOURCE, "clocksource"),
        (kvm_feature::CLOCKSOURCE2, "clocksource2"),
        (kvm_feature::STEAL_TIME, "steal-time"),
        (kvm_feature::PV_EOI, "pv-eoi"),
        (kvm_feature::PV_SEND_IPI, "pv-send-ipi"),
        (kvm_feature::CLOCKSOURCE_STABLE, "clocksource-stable"),
    ];

    /// kvmclock at `MSR_KVM_SYSTEM_TIME_NEW` is offered.
    pub fn kvmclock(self) -> bool {
        self.0 & kvm_feature::CLOCKSOURCE2 != 0
    }

    /// PV EOI (`MSR_KVM_PV_EOI_EN`) is offered.
    pub fn pv_eoi(self) -> bool {
        self.0 & kvm_feature::PV_EOI != 0
    }

    /// Names of the offered features this kernel knows, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMED.into_iter().filter(move |(bit, _)| self.0 & bit != 0).map(|(_, name)| name)
    }
}

/// The hypervisor found, with what its leaves say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypervisor {
    /// No hypervisor bit, or no signature leaf: bare metal or an emulator such as QEMU TCG.
    None,
    /// Xen, with its decoded leaves.
    Xen(XenCpuidInfo),
    /// KVM, with its base leaf and feature bits.
    Kvm {
        /// Signature leaf.
        base: u32,
        /// `KVM_FEATURE_*` bits of leaf base+1.
        features: KvmFeatures,
    },
    /// A hypervisor this kernel has no interface for, by signature.
    Other([u8; 12]),
}

impl Hypervisor {
    /// Scans the hypervisor leaves through `cpuid(leaf, subleaf)`.
    pub fn detect_with(mut cpuid: impl FnMut(u32, u32) -> Regs) -> Self {
        if cpuid(1, 0).ecx & (1 << 31) == 0 {
            return Hypervisor::None;
        }
        let mut other = None;
        let mut base = FIRST;
        while base <= LAST {
            let sig = cpuid(base, 0);
            let words = [sig.ebx, sig.ecx, sig.edx];
            if words == XEN_SIGNATURE {
                if let Ok(mut info) = XenCpuidInfo::decode(base, &mut cpuid) {
                    if base > FIRST {
                        info.viridian = ViridianInfo::decode(&mut cpuid);
                    }
                    return Hypervisor::Xen(info);
                }
            } else if words == KVM_SIGNATURE {
                // An old KVM answers 0 in EAX; a newer one the highest leaf of its block.
                let features = if sig.eax == 0 || sig.eax > base { cpuid(base + 1, 0).eax } else { 0 };
                return Hypervisor::Kvm { base, features: KvmFeatures(features) };
            } else if other.is_none() && words.iter().any(|&w| w != 0) && sig.eax >= base && sig.eax < base + 0x100 {
                let mut name = [0u8; 12];
                for (i, w) in words.iter().enumerate() {
                    name[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
                }
                other = Some(name);
            }
            base += 0x100;
        }
        other.map_or(Hypervisor::None, Hypervisor::Other)
    }

    /// Scans the running CPU.
    pub fn detect() -> Self {
        Self::detect_with(crate::cpu::cpuid)
    }

    /// Writes the `hypervisor=` value of the mode report: `xen-4.17`, `kvm`, or `none`,
    /// which includes hypervisors whose interfaces this kernel does not use (QEMU's TCG
    /// answers "TCGTCGTCGTCG" but offers nothing).
    pub fn describe(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        match self {
            Hypervisor::None | Hypervisor::Other(_) => out.write_str("none"),
            Hypervisor::Xen(x) => write!(out, "xen-{}.{}", x.major, x.minor),
            Hypervisor::Kvm { .. } => out.write_str("kvm"),
        }
    }

    /// The signature of a hypervisor without interfaces for this kernel, printable.
    pub fn other_signature(&self) -> Option<&str> {
        match self {
            Hypervisor::Other(sig) => Some(core::str::from_utf8(sig).unwrap_or("?").trim_end_matches('\0')),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv_bit(leaf: u32) -> Option<Regs> {
        (leaf == 1).then_some(Regs { ecx: 1 << 31, ..Default::default() })
    }

    fn describe(h: &Hypervisor) -> String {
        let mut s = String::new();
        h.describe(&mut s).unwrap();
        s
    }

    #[test]
    fn no_hypervisor_bit_means_none() {
        // Even a signature is ignored without the hypervisor bit (real CPUs echo leaves).
        let h = Hypervisor::detect_with(|leaf, _| {
            if leaf == FIRST {
                Regs { eax: FIRST, ebx: KVM_SIGNATURE[0], ecx: KVM_SIGNATURE[1], edx: KVM_SIGNATURE[2] }
            } else {
                Regs::default()
            }
        });
        assert_eq!(h, Hypervisor::None);
        assert_eq!(describe(&h), "none");
    }

    #[test]
    fn finds_kvm() {
        let h = Hypervisor::detect_with(|leaf, _| {
            hv_bit(leaf).unwrap_or(match leaf {
                0x4000_0000 => {
                    Regs { eax: 0x4000_0001, ebx: KVM_SIGNATURE[0], ecx: KVM_SIGNATURE[1], edx: KVM_SIGNATURE[2] }
                }
                0x4000_0001 => Regs { eax: 0x0100_7afb, ..Default::default() },
                _ => Regs::default(),
            })
        });
        assert_eq!(h, Hypervisor::Kvm { base: FIRST, features: KvmFeatures(0x0100_7afb) });
        let Hypervisor::Kvm { features, .. } = h else { unreachable!() };
        assert!(features.pv_eoi() && features.kvmclock());
        assert_eq!(describe(&h), "kvm");
    }

    #[test]
    fn kvm_feature_leaf_decodes() {
        // What L1's KVM offered its L2 on the nested test host (0x01007afb).
        let f = KvmFeatures(0x0100_7afb);
        assert_eq!(
            f.names().collect::<Vec<_>>(),
            ["clocksource", "clocksource2", "steal-time", "pv-eoi", "pv-send-ipi", "clocksource-stable"]
        );
        let old = KvmFeatures(kvm_feature::CLOCKSOURCE);
        assert!(!old.kvmclock() && !old.pv_eoi());
        assert_eq!(KvmFeatures::default().names().count(), 0);
    }

    #[test]
    fn kvm_behind_hyperv_leaves_is_found() {
        // KVM with Hyper-V enlightenments puts "Microsoft Hv" first and its own at +0x100.
        let h = Hypervisor::detect_with(|leaf, _| {
            hv_bit(leaf).unwrap_or(match leaf {
                0x4000_0000 => Regs { eax: 0x4000_000b, ebx: 0x7263_694d, ecx: 0x666f_736f, edx: 0x7648_2074 },
                0x4000_0100 => {
                    Regs { eax: 0x4000_0101, ebx: KVM_SIGNATURE[0], ecx: KVM_SIGNATURE[1], edx: KVM_SIGNATURE[2] }
                }
                0x4000_0101 => Regs { eax: kvm_feature::PV_EOI, ..Default::default() },
                _ => Regs::default(),
            })
        });
        assert_eq!(h, Hypervisor::Kvm { base: 0x4000_0100, features: KvmFeatures(kvm_feature::PV_EOI) });
    }

    #[test]
    fn prefers_xen_behind_viridian() {
        let h = Hypervisor::detect_with(|leaf, _| {
            hv_bit(leaf).unwrap_or(match leaf {
                // "Microsoft Hv" at the first base, Xen at +0x100.
                0x4000_0000 => Regs { eax: 0x4000_0006, ebx: 0x7263_694d, ecx: 0x666f_736f, edx: 0x7648_2074 },
                0x4000_0100 => {
                    Regs { eax: 0x4000_0105, ebx: XEN_SIGNATURE[0], ecx: XEN_SIGNATURE[1], edx: XEN_SIGNATURE[2] }
                }
                0x4000_0101 => Regs { eax: 0x0004_0011, ..Default::default() },
                0x4000_0102 => Regs { eax: 1, ebx: 0x4000_0000, ..Default::default() },
                _ => Regs::default(),
            })
        });
        assert_eq!(describe(&h), "xen-4.17");
        let Hypervisor::Xen(info) = h else { panic!("not xen: {h:?}") };
        assert_eq!(info.base, 0x4000_0100);
        // The interface leaf is not "Hv#1": no Viridian.
        assert_eq!(info.viridian, None);
    }

    /// Xen 4.17 with `viridian = ["base", "apic_assist"]`: Hyper-V's leaves first.
    fn xen_with_viridian(leaf: u32) -> Regs {
        match leaf {
            0x4000_0000 => Regs { eax: 0x4000_0006, ebx: 0x7263_694d, ecx: 0x666f_736f, edx: 0x7648_2074 },
            0x4000_0001 => Regs { eax: 0x3123_7648, ..Default::default() },
            0x4000_0003 => Regs { eax: 0x870, ..Default::default() },
            0x4000_0100 => {
                Regs { eax: 0x4000_0105, ebx: XEN_SIGNATURE[0], ecx: XEN_SIGNATURE[1], edx: XEN_SIGNATURE[2] }
            }
            0x4000_0101 => Regs { eax: 0x0004_0011, ..Default::default() },
            0x4000_0102 => Regs { eax: 1, ebx: 0x4000_0200, ..Default::default() },
            _ => Regs::default(),
        }
    }

    #[test]
    fn viridian_below_xen_is_decoded() {
        let h = Hypervisor::detect_with(|leaf, _| hv_bit(leaf).unwrap_or(xen_with_viridian(leaf)));
        let Hypervisor::Xen(info) = h else { panic!("not xen: {h:?}") };
        assert_eq!((info.base, info.hypercall_msr), (0x4000_0100, 0x4000_0200));
        let v = info.viridian.expect("Viridian's leaves");
        assert!(v.offers_vp_assist());
    }

    #[test]
    fn xen_at_the_first_base_has_no_viridian() {
        // Xen's own block at 0x4000_0000 is not read as Hyper-V's.
        let h = Hypervisor::detect_with(|leaf, _| {
            hv_bit(leaf).unwrap_or(match leaf {
                0x4000_0000 => {
                    Regs { eax: 0x4000_0005, ebx: XEN_SIGNATURE[0], ecx: XEN_SIGNATURE[1], edx: XEN_SIGNATURE[2] }
                }
                0x4000_0001 => Regs { eax: 0x3123_7648, ..Default::default() },
                0x4000_0002 => Regs { eax: 1, ebx: 0x4000_0000, ..Default::default() },
                _ => Regs::default(),
            })
        });
        let Hypervisor::Xen(info) = h else { panic!("not xen: {h:?}") };
        assert_eq!(info.viridian, None);
    }

    #[test]
    fn unknown_signature_is_reported() {
        let h = Hypervisor::detect_with(|leaf, _| {
            hv_bit(leaf).unwrap_or(match leaf {
                0x4000_0000 => Regs { eax: 0x4000_0001, ebx: 0x4743_5454, ecx: 0x4743_5454, edx: 0x4743_5454 },
                _ => Regs::default(),
            })
        });
        assert_eq!(h.other_signature(), Some("TTCGTTCGTTCG"));
        assert_eq!(describe(&h), "none");
    }

    #[test]
    fn hypervisor_bit_without_leaves_is_none() {
        let h = Hypervisor::detect_with(|leaf, _| hv_bit(leaf).unwrap_or_default());
        assert_eq!(h, Hypervisor::None);
    }
}
