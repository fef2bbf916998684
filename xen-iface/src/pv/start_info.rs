//! The PV start info (`struct start_info` in `xen.h`): decoded from its bytes and checked
//! before anything it names is used.

use crate::start_info::until_nul;

/// `struct start_info` for x86_64 (`xen.h`), the fields this kernel reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvStartInfo {
    /// The magic's bytes before its NUL, e.g. `xen-3.0-x86_64`.
    pub magic: [u8; 32],
    /// Pages allocated to the domain.
    pub nr_pages: u64,
    /// Machine address of `shared_info`.
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Machine frame of the xenstore ring.
    pub store_mfn: u64,
    /// Event channel of the xenstore ring.
    pub store_evtchn: u32,
    /// Machine frame of the console ring.
    pub console_mfn: u64,
    /// Event channel of the console ring.
    pub console_evtchn: u32,
    /// Virtual address of the bootstrap L4 table.
    pub pt_base: u64,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// Virtual address of the pseudo-physical to machine frame list.
    pub mfn_list: u64,
    /// The command line, up to its NUL.
    pub cmd_line: [u8; CMDLINE_MAX],
}

impl Default for PvStartInfo {
    fn default() -> Self {
        PvStartInfo {
            magic: [0; 32],
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            store_mfn: 0,
            store_evtchn: 0,
            console_mfn: 0,
            console_evtchn: 0,
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            cmd_line: [0; CMDLINE_MAX],
        }
    }
}

/// `MAX_GUEST_CMDLINE`.
pub const CMDLINE_MAX: usize = 1024;

/// Why a PV start of day was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvStartError {
    /// The magic does not start with `xen-3.0-x86_64`: not a 64-bit PV start.
    BadMagic,
    /// No pages, or more than the kernel's map reaches.
    BadPageCount(u64),
    /// A bootstrap element lies outside the pseudo-physical memory.
    OutOfRange(&'static str, u64),
}

/// The highest pseudo-physical memory the kernel maps: one L3 entry's worth (1 GiB),
/// below the kernel's 4 GiB heap limit.
pub const MAX_MAPPED: u64 = 1 << 30;

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.iter_mut().zip(b.iter().skip(at)).for_each(|(d, s)| *d = *s);
    u64::from_le_bytes(w)
}

impl PvStartInfo {
    /// Bytes of the structure (up to and including `cmd_line`).
    pub const SIZE: usize = 128 + CMDLINE_MAX;

    /// Decodes the structure from its bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        let mut magic = [0u8; 32];
        magic.copy_from_slice(&b[..32]);
        let mut cmd_line = [0u8; CMDLINE_MAX];
        cmd_line.copy_from_slice(&b[128..]);
        PvStartInfo {
            magic,
            nr_pages: u64_at(b, 32),
            shared_info: u64_at(b, 40),
            flags: u64_at(b, 48) as u32,
            store_mfn: u64_at(b, 56),
            store_evtchn: u64_at(b, 64) as u32,
            console_mfn: u64_at(b, 72),
            console_evtchn: u64_at(b, 80) as u32,
            pt_base: u64_at(b, 88),
            nr_pt_frames: u64_at(b, 96),
            mfn_list: u64_at(b, 104),
            cmd_line,
        }
    }

    /// Checks what the kernel relies on: a 64-bit PV magic, a page count it can map, and
    /// the page tables and frame list inside the domain's pseudo-physical memory.
    pub fn validate(&self) -> Result<(), PvStartError> {
        if !self.magic.starts_with(b"xen-3.0-x86_64") {
            return Err(PvStartError::BadMagic);
        }
        if self.nr_pages == 0 || self.nr_pages > MAX_MAPPED >> 12 {
            return Err(PvStartError::BadPageCount(self.nr_pages));
        }
        let end = self.nr_pages << 12;
        let pt_end = self.nr_pt_frames.checked_mul(4096).and_then(|n| n.checked_add(self.pt_base));
        if self.nr_pt_frames == 0 || pt_end.is_none_or(|e| e > end) {
            return Err(PvStartError::OutOfRange("page tables", self.pt_base));
        }
        let list_end = self.mfn_list.checked_add(self.nr_pages * 8);
        if list_end.is_none_or(|e| e > end) || !self.mfn_list.is_multiple_of(8) {
            return Err(PvStartError::OutOfRange("frame list", self.mfn_list));
        }
        Ok(())
    }

    /// The command line (bytes before the NUL).
    pub fn cmdline(&self) -> &[u8] {
        until_nul(&self.cmd_line)
    }

    /// The first pseudo-physical frame after the bootstrap page tables.
    pub fn first_free_pfn(&self) -> u64 {
        self.pt_base.div_ceil(4096) + self.nr_pt_frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_info_bytes(si: &PvStartInfo) -> [u8; PvStartInfo::SIZE] {
        let mut b = [0u8; PvStartInfo::SIZE];
        b[..32].copy_from_slice(&si.magic);
        let words = [
            (32, si.nr_pages),
            (40, si.shared_info),
            (48, si.flags as u64),
            (56, si.store_mfn),
            (64, si.store_evtchn as u64),
            (72, si.console_mfn),
            (80, si.console_evtchn as u64),
            (88, si.pt_base),
            (96, si.nr_pt_frames),
            (104, si.mfn_list),
        ];
        for (at, w) in words {
            b[at..at + 8].copy_from_slice(&w.to_le_bytes());
        }
        b[128..].copy_from_slice(&si.cmd_line);
        b
    }

    fn good() -> PvStartInfo {
        let mut magic = [0u8; 32];
        magic[..14].copy_from_slice(b"xen-3.0-x86_64");
        let mut cmd_line = [0u8; CMDLINE_MAX];
        cmd_line[..7].copy_from_slice(b"mode=pv");
        PvStartInfo {
            magic,
            nr_pages: 8192,
            shared_info: 0x1234_5000,
            console_mfn: 0x777,
            console_evtchn: 2,
            pt_base: 0x50_0000,
            nr_pt_frames: 6,
            mfn_list: 0x48_0000,
            cmd_line,
            ..Default::default()
        }
    }

    #[test]
    fn decodes_the_header_layout() {
        let si = good();
        assert_eq!(PvStartInfo::from_bytes(&start_info_bytes(&si)), si);
        assert_eq!(si.cmdline(), b"mode=pv");
        assert_eq!(si.first_free_pfn(), 0x500 + 6);
        assert_eq!(si.validate(), Ok(()));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let mut si = good();
        si.magic[4] = b'2';
        assert_eq!(si.validate(), Err(PvStartError::BadMagic));
        let si2 = PvStartInfo { nr_pages: 0, ..good() };
        assert_eq!(si2.validate(), Err(PvStartError::BadPageCount(0)));
        let si3 = PvStartInfo { nr_pages: 1 << 40, ..good() };
        assert_eq!(si3.validate(), Err(PvStartError::BadPageCount(1 << 40)));
        let si4 = PvStartInfo { pt_base: u64::MAX - 10, ..good() };
        assert!(matches!(si4.validate(), Err(PvStartError::OutOfRange("page tables", _))));
        let si5 = PvStartInfo { mfn_list: 8192 * 4096 - 8, ..good() };
        assert!(matches!(si5.validate(), Err(PvStartError::OutOfRange("frame list", _))));
    }
}
