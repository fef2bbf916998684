//! This domain's grant table (v1), mapped over a static area, and the bookkeeping of the
//! references handed out (`xen_iface::grant`).
//!
//! How the table's frames get under the static area depends on the kind of guest, and so
//! does the frame number an entry gives the peer (`xen_iface::grant::frames`); both are
//! chosen once, by the constructor the platform calls:
//! - [`Grants::init`] (HVM, PVH): `XENMEM_add_to_physmap` with `XENMAPSPACE_grant_table`
//!   puts the frames in the physical address space; entries name guest frames.
//! - [`Grants::init_pv`] (classic PV): `GNTTABOP_query_size` and `GNTTABOP_setup_table`
//!   give the frames' machine numbers, mapped with `update_va_mapping`; entries name
//!   machine frames, looked up in the domain's frame list.
//!
//! The entries are then plain shared memory. Grants and revocations go through one lock;
//! the live count shows leaks (a PV driver that runs 100,000 packets must end where it
//! started).

use super::shared::SharedPage;
use super::Xen;
use spin::Mutex;
use xen_iface::grant::frames::PeerFrames;
use xen_iface::grant::loan::GrantOps;
use xen_iface::grant::setup::{self, SetupError};
use xen_iface::grant::{GrantError, GrantRef, GrantTable, ENTRIES_PER_FRAME};
use xen_iface::hypercall::XENMAPSPACE_GRANT_TABLE;
use xen_iface::pv::pte;
use xen_iface::shared::SharedMem;

/// Grant frames mapped: 4 frames, 2048 v1 entries.
pub const FRAMES: usize = 4;
const ENTRIES: usize = FRAMES * ENTRIES_PER_FRAME;

#[repr(C, align(4096))]
struct Frames([u8; FRAMES * 4096]);

/// The frames the grant table is mapped over (their RAM is given up to Xen).
static mut FRAMES_AREA: Frames = Frames([0; FRAMES * 4096]);

/// Why the grant table could not be mapped.
#[derive(Clone, Copy, Debug)]
pub struct GrantMapError {
    /// Frames mapped before the failure.
    pub mapped: usize,
    /// Xen's error code.
    pub code: i64,
}

/// Why a PV guest's grant table could not be mapped.
#[derive(Clone, Copy, Debug)]
pub enum PvGrantError {
    /// Xen would not give the frames.
    Setup(SetupError),
    /// Frame `0` (of the table) could not be mapped: Xen's error code `1`.
    Map(usize, i64),
}

/// The grant table.
pub struct Grants {
    page: SharedPage,
    table: Mutex<GrantTable<ENTRIES>>,
    peer: PeerFrames,
}

impl Grants {
    /// Maps the table's frames (as many of [`FRAMES`] as Xen allows, at least one).
    pub fn init(xen: Xen) -> Result<Grants, GrantMapError> {
        let base = (&raw const FRAMES_AREA) as u64;
        let mut mapped = 0;
        for i in 0..FRAMES {
            match xen.add_to_physmap(XENMAPSPACE_GRANT_TABLE, i as u64, (base >> 12) + i as u64) {
                Ok(()) => mapped += 1,
                Err(code) if mapped == 0 => return Err(GrantMapError { mapped, code }),
                Err(_) => break,
            }
        }
        // SAFETY: Xen now backs the first `mapped` frames of this static area with the
        // grant table; only this value uses them.
        let page = unsafe { SharedPage::new(base, mapped * 4096) };
        let table = GrantTable::new(&page);
        Ok(Grants { page, table: Mutex::new(table), peer: PeerFrames::Guest })
    }

    /// A classic PV guest's table: as many of [`FRAMES`] frames as Xen allows, their
    /// machine frames from `GNTTABOP_setup_table` mapped over the static area with
    /// `update_va_mapping`; entries name the machine frames `p2m` (the domain's frame
    /// list) gives.
    pub fn init_pv(xen: Xen, p2m: &'static [u64]) -> Result<Grants, PvGrantError> {
        let err = PvGrantError::Setup;
        let q = xen.gnttab_query_size().map_err(|e| err(SetupError::Hypercall(e)))?;
        let n = setup::frames_to_ask(&q, FRAMES).map_err(err)?;
        let mut mfns = [0u64; FRAMES];
        let s = xen.gnttab_setup_table(&mut mfns[..n]).map_err(|e| err(SetupError::Hypercall(e)))?;
        setup::check_frames(&s, &mfns[..n]).map_err(err)?;
        let base = (&raw const FRAMES_AREA) as u64;
        for (i, mfn) in mfns[..n].iter().enumerate() {
            let va = base + 4096 * i as u64;
            // SAFETY: the page is this module's static area, used by nothing else (its own
            // frame is given up); Xen checks the entry (a frame it shares with this domain).
            unsafe { xen.pv().update_va_mapping(va, mfn << 12 | pte::DATA) }.map_err(|e| PvGrantError::Map(i, e))?;
        }
        // SAFETY: the first `n` pages of the static area now map the table's frames; only
        // this value uses them.
        let page = unsafe { SharedPage::new(base, n * 4096) };
        let table = GrantTable::new(&page);
        Ok(Grants { page, table: Mutex::new(table), peer: PeerFrames::Machine(p2m) })
    }

    /// Lets `domid` access guest frame `frame` (named to it as this domain names its
    /// frames: see the module header).
    pub fn grant(&self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
        let frame = self.peer.peer_frame(frame)?;
        self.table.lock().grant(&self.page, domid, frame, readonly)
    }

    /// Frames mapped and what their entries name, for the log.
    pub fn describe(&self) -> (usize, &'static str) {
        (self.page.len() / 4096, self.peer.name())
    }

    /// Ends the access granted by `gref` (see `GrantTable::revoke`).
    pub fn revoke(&self, gref: GrantRef) -> Result<(), GrantError> {
        self.table.lock().revoke(&self.page, gref)
    }

    /// References granted and not yet revoked.
    pub fn live(&self) -> usize {
        self.table.lock().live()
    }

    /// References still free.
    pub fn free(&self) -> usize {
        self.table.lock().free_count()
    }
}

/// The table as `xen_iface::grant::loan` uses it (drivers lend pages through this).
impl GrantOps for &Grants {
    fn grant(&mut self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
        Grants::grant(self, domid, frame, readonly)
    }

    fn revoke(&mut self, gref: GrantRef) -> Result<(), GrantError> {
        Grants::revoke(self, gref)
    }
}
