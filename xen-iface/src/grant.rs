//! Grant tables, version 1 (`grant_table.h`): how a guest lets another domain map or
//! copy one of its pages. The table is an array of 8-byte `grant_entry_v1` in frames
//! shared with Xen; a grant reference is an index into it.
//!
//! [`GrantTable`] keeps the guest's bookkeeping: a fixed-capacity free list of
//! references (the first [`NR_RESERVED_ENTRIES`] are the toolstack's, as in Linux), the
//! state of each, and the live count. Xen writes only `GTF_reading`/`GTF_writing` into an
//! entry, and only while `GTF_permit_access` is set.
//!
//! Ending access. The header's recipe is a 16-bit CMPXCHG of `flags` to 0, done only if
//! `GTF_reading|GTF_writing` are clear. [`SharedMem`] has no compare-and-swap, and needs
//! none: [`GrantTable::revoke`] clears every flag except those two with one atomic AND
//! on the whole 8-byte entry, and looks at the old value. If the peer was not using the
//! page, the entry is now 0 and the reference is free. If it was, `GTF_permit_access` is
//! gone, so the peer can map it no further (Xen's map and copy paths check it under
//! their own cmpxchg on the same word, so either they saw it before the AND, and the old
//! value shows their bit, or they fail); only its existing mapping remains, and Xen's
//! unmap clears the last bit. The reference stays allocated as "revoking" until a later
//! `revoke` finds the entry idle; the page must not be reused before that.
//!
//! [`loan`] holds pages together with their grants, so a driver takes them all back in
//! one call on every path, and never frees a page the peer may still map.
//! [`frames`] says which frame number an entry gives the peer (a PV guest's is a machine
//! frame), [`setup`] how a PV guest gets the table's frames.

pub mod frames;
pub mod loan;
pub mod setup;

use crate::shared::SharedMem;
use core::mem::size_of;
use core::sync::atomic::{fence, Ordering};

/// `grant_ref_t`.
pub type GrantRef = u32;

/// Bytes of `grant_entry_v1`.
pub const ENTRY_SIZE: usize = 8;
/// Offset of `flags` (u16).
pub const FLAGS: usize = 0;
/// Offset of `domid` (u16).
pub const DOMID: usize = 2;
/// Offset of `frame` (u32).
pub const FRAME: usize = 4;
/// v1 entries in one 4 KiB grant frame.
pub const ENTRIES_PER_FRAME: usize = 4096 / ENTRY_SIZE;
/// `GNTTAB_NR_RESERVED_ENTRIES`: references the toolstack may pre-populate.
pub const NR_RESERVED_ENTRIES: u32 = 8;
/// `GNTTAB_RESERVED_CONSOLE`.
pub const RESERVED_CONSOLE: GrantRef = 0;
/// `GNTTAB_RESERVED_XENSTORE`.
pub const RESERVED_XENSTORE: GrantRef = 1;

/// `GTF_invalid`: the entry grants nothing.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: `domid` may map or copy `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer` (not used here).
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_transitive` (not used here).
pub const GTF_TRANSITIVE: u16 = 3;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: read-only mappings and copies only.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: Xen: mapped or being copied for reading.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: Xen: mapped or being copied for writing.
pub const GTF_WRITING: u16 = 1 << 4;
/// `GTF_PWT` (x86 cache attribute).
pub const GTF_PWT: u16 = 1 << 5;
/// `GTF_PCD` (x86 cache attribute).
pub const GTF_PCD: u16 = 1 << 6;
/// `GTF_PAT` (x86 cache attribute).
pub const GTF_PAT: u16 = 1 << 7;
/// `GTF_sub_page`: copy-only access to part of the page.
pub const GTF_SUB_PAGE: u16 = 1 << 8;

/// `struct grant_entry_v1`, for the layout checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain being granted access.
    pub domid: u16,
    /// The guest frame number granted.
    pub frame: u32,
}
const _: () = assert!(size_of::<GrantEntryV1>() == ENTRY_SIZE);

impl GrantEntryV1 {
    /// The entry as one little-endian u64 (flags in bits 0-15, domid 16-31, frame 32-63).
    pub fn to_u64(self) -> u64 {
        self.flags as u64 | (self.domid as u64) << 16 | (self.frame as u64) << 32
    }

    /// The entry from its u64 form.
    pub fn from_u64(v: u64) -> Self {
        GrantEntryV1 { flags: v as u16, domid: (v >> 16) as u16, frame: (v >> 32) as u32 }
    }
}

/// Why a grant operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// No free reference.
    Exhausted,
    /// The frame number does not fit v1's 32 bits.
    FrameTooLarge,
    /// A reserved reference or one past the table.
    UnknownRef(GrantRef),
    /// The reference is not granted (e.g. revoked twice).
    NotGranted(GrantRef),
    /// The peer still has the page mapped or is copying it: the grant no longer admits
    /// new accesses; call `revoke` again later, and do not reuse the page until it
    /// succeeds.
    Busy(GrantRef),
    /// The page is not this domain's: its guest frame has no machine frame behind it
    /// (see [`frames::PeerFrames`]).
    NotOurs(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reserved or past the table.
    Unusable,
    Free,
    Granted,
    /// Access ended while the peer was still using it.
    Revoking,
}

/// Bookkeeping for the first `N` references of a v1 grant table.
#[derive(Clone, Debug)]
pub struct GrantTable<const N: usize> {
    state: [State; N],
    free: [GrantRef; N],
    nfree: usize,
    live: usize,
}

impl<const N: usize> GrantTable<N> {
    /// Takes over a table mapped in `mem`: references from [`NR_RESERVED_ENTRIES`] up to
    /// `N` or the end of `mem`, whichever is first, are free. Their entries are cleared.
    pub fn new(mem: &impl SharedMem) -> Self {
        let usable = N.min(mem.len() / ENTRY_SIZE);
        let mut t = GrantTable { state: [State::Unusable; N], free: [0; N], nfree: 0, live: 0 };
        // Highest first, so the lowest reference comes out first.
        for r in (NR_RESERVED_ENTRIES as usize..usable).rev() {
            mem.write_u64(r * ENTRY_SIZE, 0);
            if let (Some(s), Some(f)) = (t.state.get_mut(r), t.free.get_mut(t.nfree)) {
                *s = State::Free;
                *f = r as GrantRef;
                t.nfree += 1;
            }
        }
        t
    }

    /// References available for [`GrantTable::grant`].
    pub fn free_count(&self) -> usize {
        self.nfree
    }

    /// References granted and not yet revoked, including those still revoking.
    pub fn live(&self) -> usize {
        self.live
    }

    /// True if `gref` is granted or revoking.
    pub fn is_live(&self, gref: GrantRef) -> bool {
        matches!(self.state.get(gref as usize), Some(State::Granted | State::Revoking))
    }

    /// Lets `domid` access guest frame `frame` (read-only if `readonly`); returns the
    /// reference to hand to it. Writes `frame` and `domid`, then, after a write
    /// barrier, the flags (the header's "introducing a valid entry").
    pub fn grant(
        &mut self,
        mem: &impl SharedMem,
        domid: u16,
        frame: u64,
        readonly: bool,
    ) -> Result<GrantRef, GrantError> {
        let frame = u32::try_from(frame).map_err(|_| GrantError::FrameTooLarge)?;
        let top = self.nfree.checked_sub(1).ok_or(GrantError::Exhausted)?;
        let gref = *self.free.get(top).ok_or(GrantError::Exhausted)?;
        let state = self.state.get_mut(gref as usize).ok_or(GrantError::UnknownRef(gref))?;
        let off = gref as usize * ENTRY_SIZE;
        mem.write_u32(off + FRAME, frame);
        fence(Ordering::Release);
        let flags = GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 };
        // flags and domid in one store: Xen reads them as one word.
        mem.write_u32(off + FLAGS, flags as u32 | (domid as u32) << 16);
        *state = State::Granted;
        self.nfree = top;
        self.live += 1;
        Ok(gref)
    }

    /// Ends `domid`'s access to `gref` (`gnttab_end_foreign_access_ref`): succeeds, and
    /// frees the reference, only if the peer is neither reading nor writing the page.
    /// Otherwise returns [`GrantError::Busy`] with new accesses already refused; call
    /// again later (see the module notes).
    pub fn revoke(&mut self, mem: &impl SharedMem, gref: GrantRef) -> Result<(), GrantError> {
        let state = self.state.get_mut(gref as usize).ok_or(GrantError::UnknownRef(gref))?;
        match *state {
            State::Unusable => return Err(GrantError::UnknownRef(gref)),
            State::Free => return Err(GrantError::NotGranted(gref)),
            State::Granted | State::Revoking => {}
        }
        let in_use = (GTF_READING | GTF_WRITING) as u64;
        // Clear every flag but the peer's two, keeping domid and frame.
        let old = mem.fetch_and_u64(gref as usize * ENTRY_SIZE, !0xffff | in_use);
        if old & in_use != 0 {
            *state = State::Revoking;
            return Err(GrantError::Busy(gref));
        }
        *state = State::Free;
        let slot = self.free.get_mut(self.nfree).ok_or(GrantError::UnknownRef(gref))?;
        *slot = gref;
        self.nfree += 1;
        self.live = self.live.saturating_sub(1);
        Ok(())
    }

    /// The entry of `gref` as it is in the table now (for diagnostics).
    pub fn entry(&self, mem: &impl SharedMem, gref: GrantRef) -> Option<GrantEntryV1> {
        let off = (gref as usize).checked_mul(ENTRY_SIZE)?;
        (off + ENTRY_SIZE <= mem.len()).then(|| GrantEntryV1::from_u64(mem.read_u64(off)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::FakePage;
    use core::mem::offset_of;

    /// What Xen does when `domid` maps `gref`: the checks and the flag under its cmpxchg.
    fn xen_map(mem: &FakePage, gref: GrantRef, domid: u16, write: bool) -> bool {
        let off = gref as usize * ENTRY_SIZE;
        let e = GrantEntryV1::from_u64(mem.read_u64(off));
        if e.flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS || e.domid != domid || (write && e.flags & GTF_READONLY != 0) {
            return false;
        }
        mem.fetch_or_u64(off, (if write { GTF_WRITING } else { GTF_READING }) as u64);
        true
    }

    fn xen_unmap(mem: &FakePage, gref: GrantRef) {
        mem.fetch_and_u64(gref as usize * ENTRY_SIZE, !((GTF_READING | GTF_WRITING) as u64));
    }

    #[test]
    fn layout_matches_grant_table_h() {
        assert_eq!(offset_of!(GrantEntryV1, flags), FLAGS);
        assert_eq!(offset_of!(GrantEntryV1, domid), DOMID);
        assert_eq!(offset_of!(GrantEntryV1, frame), FRAME);
        let e = GrantEntryV1 { flags: 0x0105, domid: 7, frame: 0xdead_beef };
        assert_eq!(e.to_u64().to_le_bytes(), [0x05, 0x01, 7, 0, 0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(GrantEntryV1::from_u64(e.to_u64()), e);
        assert_eq!((GTF_READONLY, GTF_READING, GTF_WRITING, GTF_SUB_PAGE), (4, 8, 16, 256));
        assert_eq!(ENTRIES_PER_FRAME, 512);
    }

    #[test]
    fn grant_writes_the_entry_and_revoke_clears_it() {
        let mem = FakePage::new(4096);
        let mut t = GrantTable::<512>::new(&mem);
        assert_eq!((t.free_count(), t.live()), (504, 0));
        let g = t.grant(&mem, 3, 0x1234, false).unwrap();
        assert_eq!(g, NR_RESERVED_ENTRIES, "reserved references are never handed out");
        assert_eq!(t.entry(&mem, g), Some(GrantEntryV1 { flags: GTF_PERMIT_ACCESS, domid: 3, frame: 0x1234 }));
        let r = t.grant(&mem, 3, 0x99, true).unwrap();
        assert_eq!(t.entry(&mem, r).unwrap().flags, GTF_PERMIT_ACCESS | GTF_READONLY);
        assert_eq!(t.live(), 2);
        assert!(xen_map(&mem, r, 3, false));
        assert!(!xen_map(&mem, r, 3, true), "read-only");
        assert!(!xen_map(&mem, g, 4, false), "another domain");
        xen_unmap(&mem, r);
        assert_eq!(t.revoke(&mem, g), Ok(()));
        assert_eq!(t.revoke(&mem, r), Ok(()));
        assert_eq!(t.entry(&mem, g).unwrap().flags, 0);
        assert!(!xen_map(&mem, g, 3, false), "revoked");
        assert_eq!((t.free_count(), t.live()), (504, 0));
    }

    #[test]
    fn revoke_while_mapped_waits_for_the_unmap() {
        let mem = FakePage::new(4096);
        let mut t = GrantTable::<64>::new(&mem);
        let g = t.grant(&mem, 1, 5, false).unwrap();
        assert!(xen_map(&mem, g, 1, true));
        assert_eq!(t.revoke(&mem, g), Err(GrantError::Busy(g)));
        assert!(t.is_live(g));
        assert_eq!(t.live(), 1);
        // No new mapping is possible, the existing one still is.
        assert!(!xen_map(&mem, g, 1, false));
        assert_eq!(t.entry(&mem, g).unwrap().flags, GTF_WRITING);
        assert_eq!(t.revoke(&mem, g), Err(GrantError::Busy(g)));
        xen_unmap(&mem, g);
        assert_eq!(t.revoke(&mem, g), Ok(()));
        assert_eq!(t.entry(&mem, g), Some(GrantEntryV1 { flags: 0, domid: 1, frame: 5 }));
        assert_eq!((t.live(), t.free_count()), (0, 56));
    }

    #[test]
    fn errors() {
        let mem = FakePage::new(4096);
        let mut t = GrantTable::<16>::new(&mem);
        assert_eq!(t.free_count(), 8);
        assert_eq!(t.grant(&mem, 0, 1 << 32, false), Err(GrantError::FrameTooLarge));
        let refs: Vec<_> = (0..8).map(|i| t.grant(&mem, 0, i, false).unwrap()).collect();
        assert_eq!(refs, (8..16).collect::<Vec<_>>());
        assert_eq!(t.grant(&mem, 0, 0, false), Err(GrantError::Exhausted));
        assert_eq!(t.revoke(&mem, 9), Ok(()));
        assert_eq!(t.revoke(&mem, 9), Err(GrantError::NotGranted(9)), "double revoke");
        assert_eq!(t.revoke(&mem, RESERVED_XENSTORE), Err(GrantError::UnknownRef(1)));
        assert_eq!(t.revoke(&mem, 16), Err(GrantError::UnknownRef(16)));
        assert_eq!(t.revoke(&mem, u32::MAX), Err(GrantError::UnknownRef(u32::MAX)));
        assert_eq!(t.grant(&mem, 0, 0, false), Ok(9), "reused");
        assert_eq!(t.live(), 8);
    }

    #[test]
    fn capacity_is_bounded_by_the_mapped_frames() {
        let mem = FakePage::new(12 * ENTRY_SIZE);
        let mut t = GrantTable::<512>::new(&mem);
        assert_eq!(t.free_count(), 4);
        for _ in 0..4 {
            t.grant(&mem, 0, 0, false).unwrap();
        }
        assert_eq!(t.grant(&mem, 0, 0, false), Err(GrantError::Exhausted));
        assert_eq!(t.revoke(&mem, 12), Err(GrantError::UnknownRef(12)));
        assert_eq!(t.entry(&mem, 12), None);
    }
}
