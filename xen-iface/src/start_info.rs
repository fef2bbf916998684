//! The PVH start-of-day structure (`arch-x86/hvm/start_info.h`).
//!
//! A PVH entry point (Xen's PVH domain builder, QEMU's `-kernel` PVH loader) gets the
//! physical address of an [`HvmStartInfo`] in `%ebx`. Version 1 adds the memory map.

use core::mem::size_of;

/// `XEN_HVM_START_MAGIC_VALUE` ("xEn3" with the 0x80 bit of the "E" set).
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// `struct hvm_start_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct HvmStartInfo {
    /// Must be [`XEN_HVM_START_MAGIC_VALUE`].
    pub magic: u32,
    /// Structure version; 1 and later carry the memory map.
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Number of modules.
    pub nr_modules: u32,
    /// Physical address of the module list.
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line, 0 if none.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, 0 if none.
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (version 1+).
    pub memmap_paddr: u64,
    /// Number of memory map entries (version 1+).
    pub memmap_entries: u32,
    /// Reserved.
    pub reserved: u32,
}
const _: () = assert!(size_of::<HvmStartInfo>() == 56);

/// `struct hvm_memmap_table_entry`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmMemmapEntry {
    /// Base address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// `XEN_HVM_MEMMAP_TYPE_*`.
    pub kind: u32,
    /// Reserved.
    pub reserved: u32,
}
const _: () = assert!(size_of::<HvmMemmapEntry>() == 24);

/// `XEN_HVM_MEMMAP_TYPE_RAM`.
pub const MEMMAP_TYPE_RAM: u32 = 1;

/// Why a start-info block was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// The magic value is wrong: this is not a PVH start.
    BadMagic(u32),
}

impl HvmStartInfo {
    /// Checks the magic value.
    pub fn validate(&self) -> Result<(), StartInfoError> {
        if self.magic != XEN_HVM_START_MAGIC_VALUE {
            return Err(StartInfoError::BadMagic(self.magic));
        }
        Ok(())
    }

    /// Number of memory map entries to read: 0 for version 0 structures.
    pub fn memmap_len(&self) -> usize {
        if self.version >= 1 && self.memmap_paddr != 0 {
            self.memmap_entries as usize
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn layout_matches_header() {
        assert_eq!(offset_of!(HvmStartInfo, modlist_paddr), 16);
        assert_eq!(offset_of!(HvmStartInfo, cmdline_paddr), 24);
        assert_eq!(offset_of!(HvmStartInfo, rsdp_paddr), 32);
        assert_eq!(offset_of!(HvmStartInfo, memmap_paddr), 40);
        assert_eq!(offset_of!(HvmStartInfo, memmap_entries), 48);
        assert_eq!(offset_of!(HvmMemmapEntry, kind), 16);
    }

    #[test]
    fn version_0_has_no_memmap() {
        let si = HvmStartInfo {
            magic: XEN_HVM_START_MAGIC_VALUE,
            version: 0,
            memmap_paddr: 0x1000,
            memmap_entries: 4,
            ..Default::default()
        };
        assert_eq!(si.validate(), Ok(()));
        assert_eq!(si.memmap_len(), 0);
        let v1 = HvmStartInfo { version: 1, ..si };
        assert_eq!(v1.memmap_len(), 4);
    }

    #[test]
    fn bad_magic() {
        let si = HvmStartInfo { magic: 0x2bad_b002, ..Default::default() };
        assert_eq!(si.validate(), Err(StartInfoError::BadMagic(0x2bad_b002)));
    }
}
