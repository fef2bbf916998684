//! This domain's grant table (v1), mapped into its physical address space, and the
//! bookkeeping of the references handed out (`xen_iface::grant`).
//!
//! `XENMEM_add_to_physmap` with `XENMAPSPACE_grant_table` puts the table's frames over
//! a static, page-aligned array; the entries are then plain shared memory. Grants and
//! revocations go through one lock; the live count shows leaks (a PV driver that runs
//! 100,000 packets must end where it started).

use super::shared::SharedPage;
use super::Xen;
use spin::Mutex;
use xen_iface::grant::loan::GrantOps;
use xen_iface::grant::{GrantError, GrantRef, GrantTable, ENTRIES_PER_FRAME};
use xen_iface::hypercall::XENMAPSPACE_GRANT_TABLE;

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

/// The grant table.
pub struct Grants {
    page: SharedPage,
    table: Mutex<GrantTable<ENTRIES>>,
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
        Ok(Grants { page, table: Mutex::new(table) })
    }

    /// Lets `domid` access guest frame `frame`.
    pub fn grant(&self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
        self.table.lock().grant(&self.page, domid, frame, readonly)
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
