//! What Xen offers this domain: `XENVER_get_features` and its bits (`version.h`,
//! `features.h`).
//!
//! The kernel asks once at boot for submap 0 (the only one Xen 4.17 defines,
//! `XENFEAT_NR_SUBMAPS` = 1) and decides from [`Features`] which paravirtual paths it can
//! take. The one that shapes a choice today is [`XENFEAT_HVM_PIRQS`]: MSIs of emulated
//! devices delivered as event channels (see [`crate::physdev`]).

use core::mem::size_of;

/// `XENVER_get_features`, argument [`FeatureInfo`].
pub const XENVER_GET_FEATURES: u32 = 6;

/// `struct xen_feature_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FeatureInfo {
    /// In: which 32-bit submap to return.
    pub submap_idx: u32,
    /// Out: the submap.
    pub submap: u32,
}
const _: () = assert!(size_of::<FeatureInfo>() == 8);

/// `XENFEAT_hvm_callback_vector`: the vector-type `HVM_PARAM_CALLBACK_IRQ`.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// `XENFEAT_hvm_safe_pvclock`: the pvclock is usable in an HVM guest.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// `XENFEAT_hvm_pirqs`: PIRQs (and MSI over event channels) for an HVM guest. On by
/// default up to Xen 4.18; from 4.19 only if the domain was built with it.
pub const XENFEAT_HVM_PIRQS: u32 = 10;

/// Submap 0 of the feature bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features(pub u32);

impl Features {
    /// True if feature bit `bit` (< 32) is set.
    pub fn has(&self, bit: u32) -> bool {
        bit < 32 && self.0 & (1 << bit) != 0
    }

    /// True if Xen routes an HVM guest's emulated MSIs over event channels.
    pub fn hvm_pirqs(&self) -> bool {
        self.has(XENFEAT_HVM_PIRQS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn layout_matches_version_h() {
        assert_eq!(offset_of!(FeatureInfo, submap), 4);
    }

    #[test]
    fn the_test_hosts_bitmap() {
        // What Xen 4.17.5 gave an HVM domU on the project's host (issue 13).
        let f = Features(0x12705);
        assert!(f.hvm_pirqs() && f.has(XENFEAT_HVM_CALLBACK_VECTOR) && f.has(XENFEAT_HVM_SAFE_PVCLOCK));
        assert!(!Features(0x12305).hvm_pirqs());
        assert!(!f.has(32) && !Features(u32::MAX).has(40));
    }
}
