//! The PVH start-of-day structure (`arch-x86/hvm/start_info.h`).
//!
//! A PVH entry point (Xen's PVH domain builder, QEMU's `-kernel` PVH loader) gets the
//! physical address of an [`HvmStartInfo`] in `%ebx`. Version 1 adds the memory map.
//!
//! The structure's addresses and counts are the loader's word, and the kernel reads what
//! they point to before it has anything else: so they are bounded before use.
//! [`HvmStartInfo::memmap`] refuses a table of more than [`MEMMAP_MAX_ENTRIES`] entries or
//! one that does not lie wholly below the end of what the kernel maps (the address
//! arithmetic checked, never wrapping), and [`HvmStartInfo::cmdline`] gives the window the
//! command line's NUL is looked for in, no longer than the caller's limit.

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

/// Most memory map entries read: one page of them (PVH loaders give a handful).
pub const MEMMAP_MAX_ENTRIES: u32 = (4096 / size_of::<HvmMemmapEntry>()) as u32;

/// Why a start-info block was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// The magic value is wrong: this is not a PVH start.
    BadMagic(u32),
    /// `memmap_entries` claims more than [`MEMMAP_MAX_ENTRIES`].
    MemmapTooLong(u32),
    /// Something the loader points to does not lie below the end of the mapped memory
    /// (or its end does not fit in 64 bits).
    OutOfReach {
        /// What: `"start info"`, `"memory map"` or `"command line"`.
        what: &'static str,
        /// Its address.
        addr: u64,
    },
}

/// Where to read a table or string the start info points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Physical address of the first byte.
    pub addr: u64,
    /// Entries (the memory map) or bytes (the command line's window).
    pub len: usize,
}

/// Checks that `len` bytes at `addr` end at or below `limit`.
pub fn check_reach(what: &'static str, addr: u64, len: u64, limit: u64) -> Result<(), StartInfoError> {
    match addr.checked_add(len) {
        Some(end) if end <= limit => Ok(()),
        _ => Err(StartInfoError::OutOfReach { what, addr }),
    }
}

/// The bytes before the first NUL (all of them if there is none).
pub fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.get(..end).unwrap_or(bytes)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.iter_mut().zip(b.iter().skip(at)).for_each(|(d, s)| *d = *s);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u32_at(b, at) as u64 | (u32_at(b, at + 4) as u64) << 32
}

impl HvmMemmapEntry {
    /// Bytes of one entry.
    pub const SIZE: usize = size_of::<HvmMemmapEntry>();

    /// An entry from its little-endian bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        HvmMemmapEntry { addr: u64_at(b, 0), size: u64_at(b, 8), kind: u32_at(b, 16), reserved: u32_at(b, 20) }
    }
}

impl HvmStartInfo {
    /// Bytes of the structure.
    pub const SIZE: usize = size_of::<HvmStartInfo>();

    /// The structure from its little-endian bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        HvmStartInfo {
            magic: u32_at(b, 0),
            version: u32_at(b, 4),
            flags: u32_at(b, 8),
            nr_modules: u32_at(b, 12),
            modlist_paddr: u64_at(b, 16),
            cmdline_paddr: u64_at(b, 24),
            rsdp_paddr: u64_at(b, 32),
            memmap_paddr: u64_at(b, 40),
            memmap_entries: u32_at(b, 48),
            reserved: u32_at(b, 52),
        }
    }

    /// The memory map to read, checked: at most [`MEMMAP_MAX_ENTRIES`] entries, all below
    /// `limit`. `None` for a version 0 structure or a null address.
    pub fn memmap(&self, limit: u64) -> Result<Option<Region>, StartInfoError> {
        if self.version < 1 || self.memmap_paddr == 0 {
            return Ok(None);
        }
        if self.memmap_entries > MEMMAP_MAX_ENTRIES {
            return Err(StartInfoError::MemmapTooLong(self.memmap_entries));
        }
        let bytes = self.memmap_entries as u64 * HvmMemmapEntry::SIZE as u64;
        check_reach("memory map", self.memmap_paddr, bytes, limit)?;
        Ok(Some(Region { addr: self.memmap_paddr, len: self.memmap_entries as usize }))
    }

    /// The window the command line's NUL is looked for in: at most `max` bytes from
    /// `cmdline_paddr`, cut at `limit`. `None` without a command line.
    pub fn cmdline(&self, max: usize, limit: u64) -> Result<Option<Region>, StartInfoError> {
        if self.cmdline_paddr == 0 {
            return Ok(None);
        }
        check_reach("command line", self.cmdline_paddr, 1, limit)?;
        let room = limit - self.cmdline_paddr; // > 0: checked above
        Ok(Some(Region { addr: self.cmdline_paddr, len: (max as u64).min(room) as usize }))
    }

    /// Checks the magic value.
    pub fn validate(&self) -> Result<(), StartInfoError> {
        if self.magic != XEN_HVM_START_MAGIC_VALUE {
            return Err(StartInfoError::BadMagic(self.magic));
        }
        Ok(())
    }

    /// Number of memory map entries the structure claims: 0 for version 0 structures.
    /// Unchecked: read the table through [`HvmStartInfo::memmap`].
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

    /// Issue 11, item 6: a huge `memmap_entries` was used as is, and the address
    /// arithmetic could wrap.
    #[test]
    fn the_memory_map_is_bounded() {
        const LIMIT: u64 = 1 << 32;
        let si = HvmStartInfo { version: 1, memmap_paddr: 0x1000, memmap_entries: 5, ..Default::default() };
        assert_eq!(si.memmap(LIMIT), Ok(Some(Region { addr: 0x1000, len: 5 })));
        let huge = HvmStartInfo { memmap_entries: u32::MAX, ..si };
        assert_eq!(huge.memmap(LIMIT), Err(StartInfoError::MemmapTooLong(u32::MAX)));
        let page = HvmStartInfo { memmap_entries: MEMMAP_MAX_ENTRIES, ..si };
        assert!(page.memmap(LIMIT).is_ok() && MEMMAP_MAX_ENTRIES == 170);
        let high = HvmStartInfo { memmap_paddr: LIMIT - 24, memmap_entries: 2, ..si };
        assert_eq!(high.memmap(LIMIT), Err(StartInfoError::OutOfReach { what: "memory map", addr: LIMIT - 24 }));
        let wraps = HvmStartInfo { memmap_paddr: u64::MAX - 8, memmap_entries: 1, ..si };
        assert!(wraps.memmap(u64::MAX).is_err());
        assert_eq!(HvmStartInfo { version: 0, ..huge }.memmap(LIMIT), Ok(None));
    }

    #[test]
    fn the_command_line_window_is_bounded() {
        let si = HvmStartInfo { cmdline_paddr: 0x2000, ..Default::default() };
        assert_eq!(si.cmdline(1024, 1 << 32), Ok(Some(Region { addr: 0x2000, len: 1024 })));
        assert_eq!(si.cmdline(1024, 0x2010), Ok(Some(Region { addr: 0x2000, len: 16 })));
        assert!(si.cmdline(1024, 0x2000).is_err());
        assert_eq!(HvmStartInfo::default().cmdline(1024, 1 << 32), Ok(None));
        assert_eq!(until_nul(b"mode=hvm\0junk"), b"mode=hvm");
        assert_eq!(until_nul(b"no end"), b"no end");
    }

    #[test]
    fn structures_parse_from_bytes() {
        let mut b = [0u8; HvmStartInfo::SIZE];
        b[..4].copy_from_slice(&XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
        b[4] = 1;
        b[24..32].copy_from_slice(&0x1234_5678_9abc_u64.to_le_bytes());
        b[48] = 3;
        let si = HvmStartInfo::from_bytes(&b);
        assert_eq!(
            (si.magic, si.version, si.cmdline_paddr, si.memmap_entries),
            (XEN_HVM_START_MAGIC_VALUE, 1, 0x1234_5678_9abc, 3)
        );
        let mut e = [0u8; HvmMemmapEntry::SIZE];
        e[8] = 0x10;
        e[16] = 1;
        assert_eq!(HvmMemmapEntry::from_bytes(&e), HvmMemmapEntry { addr: 0, size: 0x10, kind: 1, reserved: 0 });
    }

    #[test]
    fn bad_magic() {
        let si = HvmStartInfo { magic: 0x2bad_b002, ..Default::default() };
        assert_eq!(si.validate(), Err(StartInfoError::BadMagic(0x2bad_b002)));
    }
}
