//! Shared memory that checks the front end: a [`CheckedPage`] implements
//! [`xen_iface::shared::SharedMem`] over a host buffer and panics on any access the
//! crate's protocols must never make.
//!
//! The crate's own fake (`shared::testing::FakePage`) is private to its unit tests and
//! forgiving by contract (out-of-range accesses read 0). This one is strict, so that the
//! fuzz targets can state "never reads or writes outside the shared page" and "never
//! loops forever" as checks rather than hopes:
//! - every access lies inside the page, and u32/u64 accesses are aligned (the trait's
//!   contract, and what one atomic access on real hardware needs);
//! - stores go only to the ranges the front end owns ([`CheckedPage::own`]): the peer's
//!   indexes and the bytes it produces are never written;
//! - each front-end call makes at most a budgeted number of accesses
//!   ([`CheckedPage::budget`]), so a loop that does not end fails instead of hanging;
//! - a hostile peer can act between any two accesses of one call
//!   ([`CheckedPage::set_tamper`]), as a real concurrent peer can.
//!
//! The peer itself uses the inherent `get_*`/`put_*` methods, which bypass the checks.
#![allow(dead_code)] // each test crate uses a different subset of these helpers

use std::cell::{Cell, RefCell};
use std::ops::Range;
use xen_iface::shared::SharedMem;

/// What the peer does between the front end's accesses: it sees the whole page.
pub type Tamper = Box<dyn FnMut(&mut [u8])>;

/// A shared page (or several) in host memory that checks every front-end access.
pub struct CheckedPage {
    bytes: RefCell<Vec<u8>>,
    owned: RefCell<Vec<Range<usize>>>,
    /// Accesses left in the current call; `None`: unlimited.
    left: Cell<Option<usize>>,
    tamper: RefCell<Option<Tamper>>,
    /// Front-end accesses so far.
    accesses: Cell<u64>,
}

impl CheckedPage {
    /// A zeroed region of `len` bytes the front end owns entirely, with no budget.
    pub fn new(len: usize) -> Self {
        Self::from_bytes(vec![0; len])
    }

    /// A region holding `bytes`, owned entirely by the front end.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        CheckedPage {
            bytes: RefCell::new(bytes),
            owned: RefCell::new(Vec::from_iter(Some(0..len))),
            left: Cell::new(None),
            tamper: RefCell::new(None),
            accesses: Cell::new(0),
        }
    }

    /// From now on the front end may store only inside `ranges`.
    pub fn own(&self, ranges: &[Range<usize>]) {
        *self.owned.borrow_mut() = ranges.to_vec();
    }

    /// From now on the front end may store only inside `range`.
    pub fn own_only(&self, range: Range<usize>) {
        *self.owned.borrow_mut() = Vec::from_iter(Some(range));
    }

    /// The next front-end call may make at most `accesses` accesses.
    pub fn budget(&self, accesses: usize) {
        self.left.set(Some(accesses));
    }

    /// Lets `tamper` run before every front-end access (replacing any earlier one).
    pub fn set_tamper(&self, tamper: Option<Tamper>) {
        *self.tamper.borrow_mut() = tamper;
    }

    /// Front-end accesses made so far.
    pub fn accesses(&self) -> u64 {
        self.accesses.get()
    }

    /// Checks one front-end access of `size` bytes at `at`, after letting the peer act.
    fn access(&self, what: &str, at: usize, size: usize, store: bool) {
        self.accesses.set(self.accesses.get() + 1);
        if let Some(left) = self.left.get() {
            assert!(left > 0, "{what} at {at:#x}: the call made more shared-memory accesses than its budget");
            self.left.set(Some(left - 1));
        }
        if let Some(t) = self.tamper.borrow_mut().as_mut() {
            t(&mut self.bytes.borrow_mut());
        }
        let len = self.bytes.borrow().len();
        assert!(at.checked_add(size).is_some_and(|end| end <= len), "{what} at {at:#x}: outside the {len}-byte page");
        assert!(at & (size - 1) == 0, "{what} at {at:#x}: not aligned to {size} bytes");
        if store {
            let owned = self.owned.borrow();
            assert!(
                owned.iter().any(|r| r.start <= at && at + size <= r.end),
                "{what} at {at:#x}: a store outside what the front end owns ({owned:x?})"
            );
        }
    }

    /// The peer reads a byte.
    pub fn get_u8(&self, at: usize) -> u8 {
        self.bytes.borrow()[at]
    }

    /// The peer writes a byte.
    pub fn put_u8(&self, at: usize, v: u8) {
        self.bytes.borrow_mut()[at] = v;
    }

    /// The peer reads a little-endian u16.
    pub fn get_u16(&self, at: usize) -> u16 {
        let b = self.bytes.borrow();
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    /// The peer writes a little-endian u16.
    pub fn put_u16(&self, at: usize, v: u16) {
        self.bytes.borrow_mut()[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    /// The peer reads a little-endian u32.
    pub fn get_u32(&self, at: usize) -> u32 {
        let b = self.bytes.borrow();
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// The peer writes a little-endian u32.
    pub fn put_u32(&self, at: usize, v: u32) {
        self.bytes.borrow_mut()[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// The peer reads a little-endian u64.
    pub fn get_u64(&self, at: usize) -> u64 {
        let b = self.bytes.borrow();
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// The peer writes a little-endian u64.
    pub fn put_u64(&self, at: usize, v: u64) {
        self.bytes.borrow_mut()[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// The peer writes `bytes` at `at`.
    pub fn put_bytes(&self, at: usize, bytes: &[u8]) {
        self.bytes.borrow_mut()[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// A copy of the whole region.
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }
}

fn le<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N].try_into().unwrap()
}

impl SharedMem for CheckedPage {
    fn len(&self) -> usize {
        self.bytes.borrow().len()
    }
    fn read_u8(&self, offset: usize) -> u8 {
        self.access("read_u8", offset, 1, false);
        self.bytes.borrow()[offset]
    }
    fn write_u8(&self, offset: usize, value: u8) {
        self.access("write_u8", offset, 1, true);
        self.bytes.borrow_mut()[offset] = value;
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.access("read_u32", offset, 4, false);
        u32::from_le_bytes(le(&self.bytes.borrow(), offset))
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.access("write_u32", offset, 4, true);
        self.bytes.borrow_mut()[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn read_u64(&self, offset: usize) -> u64 {
        self.access("read_u64", offset, 8, false);
        u64::from_le_bytes(le(&self.bytes.borrow(), offset))
    }
    fn write_u64(&self, offset: usize, value: u64) {
        self.access("write_u64", offset, 8, true);
        self.bytes.borrow_mut()[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    }
    fn swap_u64(&self, offset: usize, value: u64) -> u64 {
        self.access("swap_u64", offset, 8, true);
        let old = u64::from_le_bytes(le(&self.bytes.borrow(), offset));
        self.bytes.borrow_mut()[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
        old
    }
    fn fetch_and_u64(&self, offset: usize, mask: u64) -> u64 {
        self.access("fetch_and_u64", offset, 8, true);
        let old = u64::from_le_bytes(le(&self.bytes.borrow(), offset));
        self.bytes.borrow_mut()[offset..offset + 8].copy_from_slice(&(old & mask).to_le_bytes());
        old
    }
    fn fetch_or_u64(&self, offset: usize, bits: u64) -> u64 {
        self.access("fetch_or_u64", offset, 8, true);
        let old = u64::from_le_bytes(le(&self.bytes.borrow(), offset));
        self.bytes.borrow_mut()[offset..offset + 8].copy_from_slice(&(old | bits).to_le_bytes());
        old
    }
}
