//! The PVH entry stub and what it hands to Rust.
//!
//! `pvh.S` runs first (32-bit, paging off), identity-maps the low 4 GiB with 2 MiB pages,
//! enters long mode and calls the kernel's `kernel_entry(start_info_paddr)`. This module
//! carries the stub and reads the start-of-day data it was given: the command line and
//! the memory map from [`HvmStartInfo`]. [`crate::paging`] later takes over the page tables.
//!
//! What the loader's structure points to is read only where the checks of
//! `xen_iface::start_info` allow: below the end of the identity map, a memory map of at
//! most a page of entries, a command line of at most [`MAX_CMDLINE`] bytes. The reading
//! itself goes through one copy function ([`BootInfo::read_with`]), so host tests run it
//! over fake physical memory.

use xen_iface::start_info::{until_nul, HvmMemmapEntry, HvmStartInfo, StartInfoError, MEMMAP_TYPE_RAM};

/// The end of what the boot stub identity-maps: the low 4 GiB.
pub const IDENTITY_MAP_END: u64 = 1 << 32;

#[cfg(target_os = "none")]
core::arch::global_asm!(include_str!("pvh.S"), options(att_syntax));

#[cfg(target_os = "none")]
pub mod pv;

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
    /// Where the heap may start at the earliest (a PV guest's bootstrap elements and
    /// page-table pool lie after its image); 0 when the image's end decides.
    pub heap_floor: u64,
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
        Ok(BootInfo {
            cmdline: cmd,
            cmdline_len,
            rsdp: (si.rsdp_paddr != 0).then_some(si.rsdp_paddr),
            ram,
            ram_len,
            heap_floor: 0,
        })
    }

    /// The boot info of a classic PV guest: its command line, one range of RAM from 0 to
    /// `ram_end` (its pseudo-physical memory), no ACPI, and the heap from `heap_floor`.
    pub fn for_pv(cmdline: &[u8], ram_end: u64, heap_floor: u64) -> Self {
        let mut cmd = [0u8; MAX_CMDLINE];
        let mut len = cmdline.len().min(MAX_CMDLINE);
        while core::str::from_utf8(&cmdline[..len]).is_err() {
            len -= 1;
        }
        cmd[..len].copy_from_slice(&cmdline[..len]);
        let mut ram = [RamRange { start: 0, end: 0 }; MAX_RAM_RANGES];
        ram[0] = RamRange { start: 0, end: ram_end };
        BootInfo { cmdline: cmd, cmdline_len: len, rsdp: None, ram, ram_len: 1, heap_floor }
    }

    /// Reads the start info the PVH loader left at `paddr`.
    ///
    /// # Safety
    /// `paddr` must be the `%ebx` value of a PVH entry, with the low 4 GiB identity-mapped,
    /// and the memory it points to must stay untouched for the kernel's lifetime.
    pub unsafe fn read(paddr: u64) -> Result<Self, StartInfoError> {
        Self::read_with(paddr, IDENTITY_MAP_END, |addr, out| {
            for (i, b) in out.iter_mut().enumerate() {
                // SAFETY: `read_with` asks only for bytes below IDENTITY_MAP_END (of the start
                // info and what it points to), which the boot stub identity-maps (caller's contract).
                *b = unsafe { core::ptr::read_volatile((addr as usize + i) as *const u8) };
            }
        })
    }

    /// Reads the start info at `paddr` through `copy(addr, out)`, which fills `out` with
    /// the bytes at physical address `addr`. Asks only for bytes below `limit`: the start
    /// info itself, a memory map that `HvmStartInfo::memmap` accepted, and the command
    /// line up to its NUL or [`MAX_CMDLINE`] bytes, one byte at a time.
    pub fn read_with(paddr: u64, limit: u64, mut copy: impl FnMut(u64, &mut [u8])) -> Result<Self, StartInfoError> {
        xen_iface::start_info::check_reach("start info", paddr, HvmStartInfo::SIZE as u64, limit)?;
        let mut raw = [0u8; HvmStartInfo::SIZE];
        copy(paddr, &mut raw);
        let si = HvmStartInfo::from_bytes(&raw);
        si.validate()?;
        let memmap = si.memmap(limit)?;
        let mut cmd = [0u8; MAX_CMDLINE];
        let mut cmd_len = 0;
        if let Some(w) = si.cmdline(MAX_CMDLINE, limit)? {
            // Byte by byte, so nothing past the NUL is touched.
            for (i, b) in cmd.iter_mut().take(w.len).enumerate() {
                copy(w.addr + i as u64, core::slice::from_mut(b));
                if *b == 0 {
                    break;
                }
                cmd_len = i + 1;
            }
        }
        let (base, n) = memmap.map_or((0, 0), |m| (m.addr, m.len));
        let entries = (0..n).map(|i| {
            let mut raw = [0u8; HvmMemmapEntry::SIZE];
            copy(base + (i * HvmMemmapEntry::SIZE) as u64, &mut raw); // in reach: checked by memmap()
            HvmMemmapEntry::from_bytes(&raw)
        });
        let cmdline = until_nul(cmd.get(..cmd_len).unwrap_or(&[]));
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

    /// Physical memory for `read_with`: `mem` at address 0; a read past it fails the test.
    fn reader(mem: &[u8]) -> impl FnMut(u64, &mut [u8]) + '_ {
        move |addr, out| {
            for (i, b) in out.iter_mut().enumerate() {
                let at = addr as usize + i;
                *b = *mem.get(at).unwrap_or_else(|| panic!("read at {at:#x}, past the loader's memory"));
            }
        }
    }

    fn start_info_at(mem: &mut [u8], at: usize, si: &HvmStartInfo) {
        let words = [
            si.magic as u64 | (si.version as u64) << 32,
            si.flags as u64 | (si.nr_modules as u64) << 32,
            si.modlist_paddr,
            si.cmdline_paddr,
            si.rsdp_paddr,
            si.memmap_paddr,
            si.memmap_entries as u64 | (si.reserved as u64) << 32,
        ];
        for (i, w) in words.iter().enumerate() {
            mem[at + 8 * i..at + 8 * i + 8].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Issue 11, item 6: the memory map count and the command line's NUL search were
    /// unbounded.
    #[test]
    fn reads_only_what_the_checks_allow() {
        let mut mem = vec![0u8; 0x3000];
        let si = HvmStartInfo {
            magic: XEN_HVM_START_MAGIC_VALUE,
            version: 1,
            cmdline_paddr: 0x2000,
            memmap_paddr: 0x1000,
            memmap_entries: 2,
            ..Default::default()
        };
        start_info_at(&mut mem, 0x100, &si);
        let entry = |addr: u64, size: u64| [addr, size, MEMMAP_TYPE_RAM as u64].map(u64::to_le_bytes).concat();
        mem[0x1000..0x1018].copy_from_slice(&entry(0, 0x9fc00));
        mem[0x1018..0x1030].copy_from_slice(&entry(0x100000, 0x100000));
        mem[0x2000..0x200a].copy_from_slice(b"mode=hvm\0x");
        let bi = BootInfo::read_with(0x100, 0x3000, reader(&mem)).unwrap();
        assert_eq!(bi.ram(), &[RamRange { start: 0, end: 0x9fc00 }, RamRange { start: 0x100000, end: 0x200000 }]);
        assert_eq!(bi.cmdline(), "mode=hvm");

        // A huge count is refused before any entry is read.
        start_info_at(&mut mem, 0x100, &HvmStartInfo { memmap_entries: u32::MAX, ..si });
        assert_eq!(
            BootInfo::read_with(0x100, 0x3000, reader(&mem)).err(),
            Some(StartInfoError::MemmapTooLong(u32::MAX))
        );
        // A table that runs past the memory, or whose end wraps.
        start_info_at(&mut mem, 0x100, &HvmStartInfo { memmap_paddr: 0x2ff0, ..si });
        assert!(matches!(BootInfo::read_with(0x100, 0x3000, reader(&mem)), Err(StartInfoError::OutOfReach { .. })));
        start_info_at(&mut mem, 0x100, &HvmStartInfo { memmap_paddr: u64::MAX - 30, ..si });
        assert!(matches!(BootInfo::read_with(0x100, 0x3000, reader(&mem)), Err(StartInfoError::OutOfReach { .. })));
        // A command line without a NUL up to the end of memory: read to the end, no further.
        start_info_at(&mut mem, 0x100, &HvmStartInfo { cmdline_paddr: 0x2ff8, ..si });
        mem[0x2ff8..].copy_from_slice(b"abcdefgh");
        assert_eq!(BootInfo::read_with(0x100, 0x3000, reader(&mem)).unwrap().cmdline(), "abcdefgh");
        // ... and one longer than MAX_CMDLINE is cut there.
        let mut big = vec![b'a'; 0x2000 + MAX_CMDLINE + 100];
        start_info_at(&mut big, 0x100, &HvmStartInfo { cmdline_paddr: 0x2000, memmap_paddr: 0, ..si });
        assert_eq!(BootInfo::read_with(0x100, big.len() as u64, reader(&big)).unwrap().cmdline().len(), MAX_CMDLINE);
        // The start info itself must be in reach.
        assert!(BootInfo::read_with(0x2fe0, 0x3000, reader(&mem)).is_err());
    }

    #[test]
    fn pv_boot_info_keeps_the_floor() {
        let bi = BootInfo::for_pv(b"mode=pv \xff", 0x800_0000, 0x60_0000);
        assert_eq!(bi.cmdline(), "mode=pv ");
        assert_eq!(bi.ram(), &[RamRange { start: 0, end: 0x800_0000 }]);
        assert_eq!((bi.heap_floor, bi.rsdp), (0x60_0000, None));
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
