//! The PVH entry stub and what it hands to Rust.
//!
//! `pvh.S` runs first (32-bit, paging off), identity-maps the low 4 GiB with 2 MiB pages,
//! enters long mode and calls the kernel's `kernel_entry(start_info_paddr)`. This module
//! carries the stub and reads the start-of-day data it was given: the command line and
//! the memory map from [`HvmStartInfo`]. [`crate::paging`] later takes over the page tables.

use xen_iface::start_info::{HvmMemmapEntry, HvmStartInfo, StartInfoError, MEMMAP_TYPE_RAM};

#[cfg(target_os = "none")]
core::arch::global_asm!(include_str!("pvh.S"), options(att_syntax));

/// A range of RAM the firmware reported, in physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Most memory map entries kept; PVH loaders give a handful.
pub const MAX_RAM_RANGES: usize = 32;
/// Longest command line kept; longer ones are cut at a character boundary.
pub const MAX_CMDLINE: usize = 1024;

/// What the kernel learns from the PVH start info, copied out of the loader's memory
/// once, so that memory can be reused afterwards.
pub struct BootInfo {
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// Physical address of the ACPI RSDP, if the loader passed one.
    pub rsdp: Option<u64>,
    ram: [RamRange; MAX_RAM_RANGES],
    ram_len: usize,
}

impl BootInfo {
    /// The RAM ranges, in the loader's order.
    pub fn ram(&self) -> &[RamRange] {
        &self.ram[..self.ram_len]
    }

    /// The kernel command line (empty if none was given).
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// Builds the boot info from an already copied start info and memory map.
    pub fn from_parts(
        si: &HvmStartInfo,
        memmap: impl Iterator<Item = HvmMemmapEntry>,
        cmdline: &[u8],
    ) -> Result<Self, StartInfoError> {
        si.validate()?;
        let mut ram = [RamRange { start: 0, end: 0 }; MAX_RAM_RANGES];
        let mut ram_len = 0;
        for e in memmap.filter(|e| e.kind == MEMMAP_TYPE_RAM && e.size != 0) {
            if ram_len == MAX_RAM_RANGES {
                break;
            }
            ram[ram_len] = RamRange { start: e.addr, end: e.addr.saturating_add(e.size) };
            ram_len += 1;
        }
        let mut cmd = [0u8; MAX_CMDLINE];
        let mut cmdline_len = cmdline.len().min(MAX_CMDLINE);
        while core::str::from_utf8(&cmdline[..cmdline_len]).is_err() {
            cmdline_len -= 1; // cut back to a character boundary (or drop non-UTF-8 tails)
        }
        cmd[..cmdline_len].copy_from_slice(&cmdline[..cmdline_len]);
        Ok(BootInfo { cmdline: cmd, cmdline_len, rsdp: (si.rsdp_paddr != 0).then_some(si.rsdp_paddr), ram, ram_len })
    }

    /// Reads the start info the PVH loader left at `paddr`.
    ///
    /// # Safety
    /// `paddr` must be the `%ebx` value of a PVH entry, with the low 4 GiB identity-mapped,
    /// and the memory it points to must stay untouched for the kernel's lifetime.
    pub unsafe fn read(paddr: u64) -> Result<Self, StartInfoError> {
        // SAFETY: the caller guarantees paddr points at a start info block (identity map).
        let si = unsafe { core::ptr::read_unaligned(paddr as *const HvmStartInfo) };
        si.validate()?;
        let entries = (0..si.memmap_len()).map(|i| {
            let at = si.memmap_paddr + (i * core::mem::size_of::<HvmMemmapEntry>()) as u64;
            // SAFETY: version >= 1 start infos carry memmap_entries valid entries at memmap_paddr.
            unsafe { core::ptr::read_unaligned(at as *const HvmMemmapEntry) }
        });
        let cmdline: &[u8] = if si.cmdline_paddr != 0 {
            // SAFETY: the loader passes a NUL-terminated string, untouched until copied below.
            unsafe { core::ffi::CStr::from_ptr(si.cmdline_paddr as *const core::ffi::c_char) }.to_bytes()
        } else {
            b""
        };
        Self::from_parts(&si, entries, cmdline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_iface::start_info::XEN_HVM_START_MAGIC_VALUE;

    #[test]
    fn keeps_only_ram() {
        let si =
            HvmStartInfo { magic: XEN_HVM_START_MAGIC_VALUE, version: 1, rsdp_paddr: 0xf5a00, ..Default::default() };
        let map = [
            HvmMemmapEntry { addr: 0, size: 0x9fc00, kind: 1, reserved: 0 },
            HvmMemmapEntry { addr: 0xf0000, size: 0x10000, kind: 2, reserved: 0 },
            HvmMemmapEntry { addr: 0x100000, size: 0x7ee0000, kind: 1, reserved: 0 },
            HvmMemmapEntry { addr: 0x200000, size: 0, kind: 1, reserved: 0 },
        ];
        let bi = BootInfo::from_parts(&si, map.into_iter(), b"mode=hvm").unwrap();
        assert_eq!(bi.ram(), &[RamRange { start: 0, end: 0x9fc00 }, RamRange { start: 0x100000, end: 0x7fe0000 }]);
        assert_eq!(bi.rsdp, Some(0xf5a00));
        assert_eq!(bi.cmdline(), "mode=hvm");
    }

    #[test]
    fn rejects_bad_magic() {
        let si = HvmStartInfo::default();
        assert!(BootInfo::from_parts(&si, core::iter::empty(), b"").is_err());
    }

    #[test]
    fn cmdline_is_copied_and_cut_safely() {
        let si = HvmStartInfo { magic: XEN_HVM_START_MAGIC_VALUE, ..Default::default() };
        let long = format!("x{}", "é".repeat(MAX_CMDLINE)); // the cut lands mid-character
        let bi = BootInfo::from_parts(&si, core::iter::empty(), long.as_bytes()).unwrap();
        assert_eq!(bi.cmdline().len(), MAX_CMDLINE - 1);
        let bad = BootInfo::from_parts(&si, core::iter::empty(), b"mode=hvm \xff").unwrap();
        assert_eq!(bad.cmdline(), "mode=hvm ");
        let raw = BootInfo::from_parts(&si, core::iter::empty(), &[b'a', 0xff]).unwrap();
        assert_eq!(raw.cmdline(), "a");
    }
}
