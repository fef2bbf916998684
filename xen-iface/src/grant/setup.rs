//! How a classic PV guest gets its grant table (`grant_table.h`): it cannot place the
//! table's frames in its physical address space the way an HVM guest does with
//! `XENMEM_add_to_physmap`, so it asks `GNTTABOP_query_size` how many frames it may have,
//! `GNTTABOP_setup_table` for the machine frames of that many, and maps them itself.
//!
//! This module holds the hypercall's number, the two operations' argument structures (their
//! layout asserted against the header's) and the checks of what Xen writes back.

use core::mem::{offset_of, size_of};

/// `__HYPERVISOR_grant_table_op`: `(cmd, uop, count)`.
pub const GRANT_TABLE_OP: u32 = 20;
/// `GNTTABOP_setup_table`, argument [`SetupTable`].
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
/// `GNTTABOP_query_size`, argument [`QuerySize`].
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;
/// `GNTST_okay`.
pub const GNTST_OKAY: i16 = 0;

/// `struct gnttab_setup_table` (x86_64): Xen writes up to `nr_frames` machine frame
/// numbers at `frame_list`, and `status`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetupTable {
    /// `domid_t dom`: [`DOMID_SELF`].
    pub dom: u16,
    /// Frames wanted.
    pub nr_frames: u32,
    /// `GNTST_*` (out).
    pub status: i16,
    /// Guest address of a `xen_pfn_t` array of `nr_frames` entries (out).
    pub frame_list: u64,
}
const _: () = assert!(size_of::<SetupTable>() == 24);
const _: () = assert!(offset_of!(SetupTable, nr_frames) == 4 && offset_of!(SetupTable, status) == 8);
const _: () = assert!(offset_of!(SetupTable, frame_list) == 16);

/// `struct gnttab_query_size`: the table's current and largest size in frames.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuerySize {
    /// `domid_t dom`: [`DOMID_SELF`].
    pub dom: u16,
    /// Frames in use now (out).
    pub nr_frames: u32,
    /// The most this domain may have (out).
    pub max_nr_frames: u32,
    /// `GNTST_*` (out).
    pub status: i16,
}
const _: () = assert!(size_of::<QuerySize>() == 16);
const _: () = assert!(offset_of!(QuerySize, max_nr_frames) == 8 && offset_of!(QuerySize, status) == 12);

/// Why the table's frames could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The hypercall itself failed (Xen's error code).
    Hypercall(i64),
    /// Xen answered with a `GNTST_*` status other than okay.
    Status(i16),
    /// Xen allows this domain no frame at all.
    NoFrames,
    /// A frame Xen returned is 0 or beyond what a page-table entry can hold.
    BadFrame(u64),
}

/// How many frames to ask for: `wanted`, or fewer if Xen allows fewer.
pub fn frames_to_ask(q: &QuerySize, wanted: usize) -> Result<usize, SetupError> {
    if q.status != GNTST_OKAY {
        return Err(SetupError::Status(q.status));
    }
    match wanted.min(q.max_nr_frames as usize) {
        0 => Err(SetupError::NoFrames),
        n => Ok(n),
    }
}

/// Checks `setup_table`'s answer: its status and every frame it named (a machine frame
/// must fit a page-table entry's 40 bits of frame number and may not be 0).
pub fn check_frames(s: &SetupTable, frames: &[u64]) -> Result<(), SetupError> {
    if s.status != GNTST_OKAY {
        return Err(SetupError::Status(s.status));
    }
    match frames.iter().find(|&&f| f == 0 || f >= 1 << 40) {
        Some(&f) => Err(SetupError::BadFrame(f)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_frames_when_xen_allows_fewer() {
        let q = QuerySize { dom: DOMID_SELF, nr_frames: 1, max_nr_frames: 32, status: 0 };
        assert_eq!(frames_to_ask(&q, 4), Ok(4));
        assert_eq!(frames_to_ask(&QuerySize { max_nr_frames: 2, ..q }, 4), Ok(2));
        assert_eq!(frames_to_ask(&QuerySize { max_nr_frames: 0, ..q }, 4), Err(SetupError::NoFrames));
        assert_eq!(frames_to_ask(&QuerySize { status: -1, ..q }, 4), Err(SetupError::Status(-1)));
    }

    #[test]
    fn the_frames_xen_names_are_checked() {
        let s = SetupTable { dom: DOMID_SELF, nr_frames: 3, status: 0, frame_list: 0x1000 };
        assert_eq!(check_frames(&s, &[0x1234, 0x1235, 0x1236]), Ok(()));
        assert_eq!(check_frames(&s, &[0x1234, 0, 0x1236]), Err(SetupError::BadFrame(0)));
        assert_eq!(check_frames(&s, &[1 << 40]), Err(SetupError::BadFrame(1 << 40)));
        assert_eq!(check_frames(&SetupTable { status: -4, ..s }, &[1]), Err(SetupError::Status(-4)));
    }
}
