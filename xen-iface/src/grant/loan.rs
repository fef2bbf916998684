//! Pages lent to a peer through grants, and taken back.
//!
//! A driver that shares pages with a back end grants each one, and must end every grant
//! before the page goes back to the heap; a page whose grant cannot end (the peer still
//! maps it) must never go back at all, or the peer writes into whatever the heap puts
//! there next. [`Loans`] keeps each page with its grant, so that taking them back is one
//! call on every path, success or failure: each grant is revoked, each page whose grant
//! ended is dropped (freed), and each other page is leaked on purpose and counted.
//!
//! Dropping [`Loans`] without [`Loans::take_back`] leaks every page it still holds: a
//! forgotten call costs memory, never a page freed while granted.

use super::{GrantError, GrantRef};
use alloc::vec::Vec;
use core::mem::ManuallyDrop;

/// Grant table operations, as [`super::GrantTable`] provides them on the real table.
pub trait GrantOps {
    /// Lets `domid` access guest frame `frame` (read-only if `readonly`).
    fn grant(&mut self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError>;
    /// Ends the access granted by `gref`; [`GrantError::Busy`] while the peer maps it.
    fn revoke(&mut self, gref: GrantRef) -> Result<(), GrantError>;
}

/// A page that can be granted.
pub trait Frame {
    /// Its guest frame number.
    fn frame(&self) -> u64;
}

/// A page and the grant that lends it.
#[derive(Debug)]
pub struct Loan<P> {
    page: P,
    gref: GrantRef,
}

impl<P> Loan<P> {
    /// The page.
    pub fn page(&self) -> &P {
        &self.page
    }

    /// The page, mutably (to fill it while the peer has no reason to look at it).
    pub fn page_mut(&mut self) -> &mut P {
        &mut self.page
    }

    /// The grant reference handed to the peer.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }
}

/// What taking pages back did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Returned {
    /// Grants ended; their pages were freed.
    pub revoked: usize,
    /// Grants that would not end (the peer still maps the page): their pages are leaked,
    /// never freed nor reused.
    pub leaked: usize,
}

impl Returned {
    /// Both counts added.
    pub fn plus(self, other: Returned) -> Returned {
        Returned { revoked: self.revoked + other.revoked, leaked: self.leaked + other.leaked }
    }
}

/// Pages lent to one peer domain.
#[derive(Debug)]
pub struct Loans<P> {
    domid: u16,
    loans: Vec<ManuallyDrop<Loan<P>>>,
}

impl<P: Frame> Loans<P> {
    /// No pages yet, to be lent to domain `domid`.
    pub fn new(domid: u16) -> Self {
        Loans { domid, loans: Vec::new() }
    }

    /// Grants `page` to the peer and keeps it; returns the reference. If the grant
    /// fails, the page was never lent and is dropped here.
    pub fn lend(&mut self, grants: &mut impl GrantOps, page: P, readonly: bool) -> Result<GrantRef, GrantError> {
        let gref = grants.grant(self.domid, page.frame(), readonly)?;
        self.loans.push(ManuallyDrop::new(Loan { page, gref }));
        Ok(gref)
    }
}

impl<P> Loans<P> {
    /// The domain the pages are lent to.
    pub fn domid(&self) -> u16 {
        self.domid
    }

    /// Loan `i` (in the order lent).
    pub fn get(&self, i: usize) -> Option<&Loan<P>> {
        self.loans.get(i).map(|l| &**l)
    }

    /// Loan `i`, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Loan<P>> {
        self.loans.get_mut(i).map(|l| &mut **l)
    }

    /// Pages held.
    pub fn len(&self) -> usize {
        self.loans.len()
    }

    /// True if no page is held.
    pub fn is_empty(&self) -> bool {
        self.loans.is_empty()
    }

    /// Revokes every grant: frees the pages whose grant ended, leaks the others (see the
    /// module notes). Holds nothing afterwards.
    pub fn take_back(&mut self, grants: &mut impl GrantOps) -> Returned {
        let mut r = Returned::default();
        for loan in self.loans.drain(..) {
            if grants.revoke(loan.gref).is_ok() {
                r.revoked += 1;
                drop(ManuallyDrop::into_inner(loan));
            } else {
                // Busy (still mapped) or unknown to the table: either way the peer may
                // still reach the page. `ManuallyDrop` keeps it out of the heap for good.
                r.leaked += 1;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{GrantTable, GTF_WRITING};
    use crate::shared::testing::FakePage;
    use crate::shared::SharedMem;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A page that records its frame when freed.
    struct Page(u64, Rc<RefCell<Vec<u64>>>);
    impl Frame for Page {
        fn frame(&self) -> u64 {
            self.0
        }
    }
    impl Drop for Page {
        fn drop(&mut self) {
            self.1.borrow_mut().push(self.0);
        }
    }

    struct Table(GrantTable<16>, FakePage);
    impl GrantOps for Table {
        fn grant(&mut self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
            self.0.grant(&self.1, domid, frame, readonly)
        }
        fn revoke(&mut self, gref: GrantRef) -> Result<(), GrantError> {
            self.0.revoke(&self.1, gref)
        }
    }

    #[test]
    fn pages_come_back_unless_the_peer_still_maps_them() {
        let freed = Rc::new(RefCell::new(Vec::new()));
        let mem = FakePage::new(4096);
        let mut t = Table(GrantTable::new(&mem), mem);
        let mut loans = Loans::new(3);
        for f in 100..106 {
            loans.lend(&mut t, Page(f, freed.clone()), f % 2 == 0).unwrap();
        }
        assert_eq!((loans.len(), t.0.live()), (6, 6));
        assert_eq!(loans.get(2).map(|l| (l.page().0, l.gref())), Some((102, 10)));
        // The peer maps frames 101 and 104.
        for gref in [9, 12] {
            t.1.fetch_or_u64(gref as usize * 8, GTF_WRITING as u64);
        }
        assert_eq!(loans.take_back(&mut t), Returned { revoked: 4, leaked: 2 });
        assert_eq!(*freed.borrow(), [100, 102, 103, 105], "the mapped pages are never freed");
        assert!(loans.is_empty() && t.0.live() == 2);
        assert_eq!(loans.take_back(&mut t), Returned::default());
    }

    #[test]
    fn a_failed_grant_drops_the_page_and_a_dropped_ledger_leaks() {
        let freed = Rc::new(RefCell::new(Vec::new()));
        let mem = FakePage::new(12 * 8); // 4 usable references
        let mut t = Table(GrantTable::new(&mem), mem);
        let mut loans = Loans::new(0);
        for f in 0..4 {
            loans.lend(&mut t, Page(f, freed.clone()), false).unwrap();
        }
        assert_eq!(loans.lend(&mut t, Page(4, freed.clone()), false), Err(GrantError::Exhausted));
        assert_eq!(*freed.borrow(), [4], "never granted: freed at once");
        drop(loans);
        assert_eq!(*freed.borrow(), [4], "forgotten loans are leaked, not freed");
        assert_eq!(Returned { revoked: 1, leaked: 2 }.plus(Returned { revoked: 3, leaked: 0 }).revoked, 4);
    }
}
