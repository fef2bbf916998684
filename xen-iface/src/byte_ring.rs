//! A byte ring shared with a peer: a power-of-two byte array and a pair of free-running
//! u32 indexes, one written by the producer and one by the consumer. The PV console's
//! `out` ring ([`crate::console`]) and both xenstore rings ([`crate::xenstore::ring`])
//! are this, at different offsets.
//!
//! [`Producer`] is our side of a ring we write into, [`Consumer`] of one we read from.
//! Each keeps its own index and never reads it back from the page; the peer's index is
//! read once per call and must stay consistent with everything seen so far:
//! - a consumer index may only move forwards, and never past what we produced;
//! - a producer index may only move forwards, and never more than a ring ahead of what
//!   we consumed.
//!
//! An index that breaks these rules is an [`IndexError`]: the ring cannot be trusted any
//! more, and the caller stops using it.

use crate::shared::SharedMem;
use core::sync::atomic::{fence, Ordering};

/// Where a byte ring lives in its shared page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the byte array.
    pub data: usize,
    /// Bytes in the array (a power of two).
    pub size: u32,
    /// Offset of the producer index (u32).
    pub prod: usize,
    /// Offset of the consumer index (u32).
    pub cons: usize,
}

impl Layout {
    /// Position of free-running index `idx` in the byte array.
    fn at(&self, idx: u32) -> usize {
        self.data + (idx & self.size.wrapping_sub(1)) as usize
    }
}

/// The peer's index is impossible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexError {
    /// The producer index (ours for a [`Producer`], the peer's for a [`Consumer`]).
    pub prod: u32,
    /// The consumer index (the peer's for a [`Producer`], ours for a [`Consumer`]).
    pub cons: u32,
}

/// Checks a pair of indexes as found in the page: at most a ring apart.
fn check_pair(layout: &Layout, prod: u32, cons: u32) -> Result<(), IndexError> {
    if prod.wrapping_sub(cons) > layout.size {
        return Err(IndexError { prod, cons });
    }
    Ok(())
}

/// Our side of a ring we produce into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Producer {
    layout: Layout,
    prod: u32,
    /// The peer's consumer index as last accepted.
    cons_seen: u32,
}

impl Producer {
    /// A producer over a ring not yet attached, all indexes 0 (what attaching to a
    /// zeroed page gives).
    pub const fn detached(layout: Layout) -> Self {
        Producer { layout, prod: 0, cons_seen: 0 }
    }

    /// Takes over the ring as an earlier user left it (bytes already in it stay there
    /// for the peer). Reads both indexes, writes nothing.
    pub fn attach(mem: &impl SharedMem, layout: Layout) -> Result<Self, IndexError> {
        let (prod, cons) = (mem.read_u32(layout.prod), mem.read_u32(layout.cons));
        check_pair(&layout, prod, cons)?;
        Ok(Producer { layout, prod, cons_seen: cons })
    }

    /// Our producer index.
    pub fn prod(&self) -> u32 {
        self.prod
    }

    /// Reads the peer's consumer index once and checks it: forwards only, never past
    /// `prod`. Returns the bytes of free space.
    fn room(&mut self, mem: &impl SharedMem) -> Result<usize, IndexError> {
        let cons = mem.read_u32(self.layout.cons);
        fence(Ordering::Acquire); // the index before reusing the space it frees
        if cons.wrapping_sub(self.cons_seen) > self.prod.wrapping_sub(self.cons_seen) {
            return Err(IndexError { prod: self.prod, cons });
        }
        self.cons_seen = cons;
        Ok(self.layout.size.saturating_sub(self.prod.wrapping_sub(cons)) as usize)
    }

    /// Copies as much of `bytes` as there is room for and publishes it; returns how many
    /// were taken (0 when the ring is full).
    pub fn write(&mut self, mem: &impl SharedMem, bytes: &[u8]) -> Result<usize, IndexError> {
        let n = self.room(mem)?.min(bytes.len());
        for (i, &b) in bytes.iter().take(n).enumerate() {
            mem.write_u8(self.layout.at(self.prod.wrapping_add(i as u32)), b);
        }
        if n > 0 {
            fence(Ordering::Release); // the bytes before the index that publishes them
            self.prod = self.prod.wrapping_add(n as u32);
            mem.write_u32(self.layout.prod, self.prod);
        }
        Ok(n)
    }

    /// True when the peer has consumed every byte produced.
    pub fn drained(&self, mem: &impl SharedMem) -> bool {
        mem.read_u32(self.layout.cons) == self.prod
    }
}

/// Our side of a ring we consume from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumer {
    layout: Layout,
    cons: u32,
    /// The peer's producer index as last accepted.
    prod_seen: u32,
    /// `cons` as last published.
    published: u32,
}

impl Consumer {
    /// A consumer over a ring not yet attached, all indexes 0 (what attaching to a
    /// zeroed page gives).
    pub const fn detached(layout: Layout) -> Self {
        Consumer { layout, cons: 0, prod_seen: 0, published: 0 }
    }

    /// Takes over the ring as an earlier user left it. Reads both indexes, writes
    /// nothing; bytes already in the ring are accepted, to be read (or dropped with
    /// [`Consumer::skip`]).
    pub fn attach(mem: &impl SharedMem, layout: Layout) -> Result<Self, IndexError> {
        let (prod, cons) = (mem.read_u32(layout.prod), mem.read_u32(layout.cons));
        check_pair(&layout, prod, cons)?;
        Ok(Consumer { layout, cons, prod_seen: prod, published: cons })
    }

    /// Our consumer index.
    pub fn cons(&self) -> u32 {
        self.cons
    }

    /// Reads the peer's producer index once and checks it: forwards only, at most a ring
    /// ahead of `cons`. Returns the bytes available.
    pub fn available(&mut self, mem: &impl SharedMem) -> Result<usize, IndexError> {
        let prod = mem.read_u32(self.layout.prod);
        fence(Ordering::Acquire); // the index before the bytes it publishes
        let avail = prod.wrapping_sub(self.cons);
        if (prod.wrapping_sub(self.prod_seen) as i32) < 0 || avail > self.layout.size {
            return Err(IndexError { prod, cons: self.cons });
        }
        self.prod_seen = prod;
        Ok(avail as usize)
    }

    /// Copies up to `out.len()` of the bytes accepted by the last
    /// [`Consumer::available`] into `out` and counts them consumed (not yet published);
    /// returns how many.
    pub fn take(&mut self, mem: &impl SharedMem, out: &mut [u8]) -> usize {
        let n = (self.prod_seen.wrapping_sub(self.cons) as usize).min(out.len());
        for (i, d) in out.iter_mut().take(n).enumerate() {
            *d = mem.read_u8(self.layout.at(self.cons.wrapping_add(i as u32)));
        }
        self.cons = self.cons.wrapping_add(n as u32);
        n
    }

    /// Hands the space of the bytes taken back to the peer (writes our consumer index if
    /// it moved); true if it did (notify the peer: it may be waiting for room).
    pub fn publish(&mut self, mem: &impl SharedMem) -> bool {
        if self.cons == self.published {
            return false;
        }
        fence(Ordering::Release); // done reading the bytes before handing the space back
        mem.write_u32(self.layout.cons, self.cons);
        self.published = self.cons;
        true
    }

    /// Reads what is available into `out` and publishes; returns how many bytes.
    pub fn read(&mut self, mem: &impl SharedMem, out: &mut [u8]) -> Result<usize, IndexError> {
        self.available(mem)?;
        let n = self.take(mem, out);
        self.publish(mem);
        Ok(n)
    }

    /// Drops every byte accepted so far without reading it (what an earlier user left)
    /// and publishes; returns how many. Does not re-read the producer index.
    pub fn skip(&mut self, mem: &impl SharedMem) -> usize {
        let n = self.prod_seen.wrapping_sub(self.cons) as usize;
        self.cons = self.prod_seen;
        self.publish(mem);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::FakePage;

    const L: Layout = Layout { data: 0, size: 16, prod: 64, cons: 68 };

    #[test]
    fn bytes_pass_through_across_index_wraparound() {
        let mem = FakePage::new(128);
        let start = u32::MAX - 5;
        mem.write_u32(L.prod, start);
        mem.write_u32(L.cons, start);
        let mut p = Producer::attach(&mem, L).unwrap();
        let mut c = Consumer::attach(&mem, L).unwrap();
        let mut got = Vec::new();
        for round in 0..20u8 {
            let data: Vec<u8> = (0..(round % 7 + 3)).map(|i| round.wrapping_mul(31).wrapping_add(i)).collect();
            assert_eq!(p.write(&mem, &data), Ok(data.len()));
            let mut out = [0u8; 5];
            while let Ok(n @ 1..) = c.read(&mem, &mut out) {
                got.extend_from_slice(&out[..n]);
            }
            assert!(p.drained(&mem));
            assert_eq!(&got[got.len() - data.len()..], &data[..]);
        }
        assert!(p.prod() < start && c.cons() == p.prod(), "both wrapped");
    }

    #[test]
    fn a_full_ring_takes_nothing_more() {
        let mem = FakePage::new(128);
        let mut p = Producer::attach(&mem, L).unwrap();
        assert_eq!(p.write(&mem, &[1; 40]), Ok(16));
        assert_eq!(p.write(&mem, &[2]), Ok(0));
        mem.write_u32(L.cons, 3);
        assert_eq!(p.write(&mem, &[2; 5]), Ok(3));
        assert!(!p.drained(&mem));
    }

    #[test]
    fn attach_refuses_indexes_more_than_a_ring_apart_and_writes_nothing() {
        let mem = FakePage::new(128);
        mem.write_u32(L.prod, 17);
        assert_eq!(Producer::attach(&mem, L), Err(IndexError { prod: 17, cons: 0 }));
        assert_eq!(Consumer::attach(&mem, L), Err(IndexError { prod: 17, cons: 0 }));
        mem.write_u32(L.prod, 0);
        mem.write_u32(L.cons, 1); // consumer ahead of producer
        assert!(Producer::attach(&mem, L).is_err() && Consumer::attach(&mem, L).is_err());
        assert_eq!((mem.read_u32(L.prod), mem.read_u32(L.cons)), (0, 1));
    }

    #[test]
    fn a_hostile_consumer_index_is_refused() {
        let mem = FakePage::new(128);
        let mut p = Producer::attach(&mem, L).unwrap();
        p.write(&mem, b"hello").unwrap();
        mem.write_u32(L.cons, 6); // consumed a byte never produced
        assert_eq!(p.write(&mem, b"x"), Err(IndexError { prod: 5, cons: 6 }));
        mem.write_u32(L.cons, 3);
        assert_eq!(p.write(&mem, b"x"), Ok(1));
        mem.write_u32(L.cons, 2); // backwards, though still within a ring of prod
        assert_eq!(p.write(&mem, b"x"), Err(IndexError { prod: 6, cons: 2 }));
        mem.write_u32(L.cons, 0x8000_0000);
        assert!(p.write(&mem, b"x").is_err());
        assert_eq!(mem.read_u32(L.prod), 6, "nothing published after a refusal");
    }

    #[test]
    fn a_hostile_producer_index_is_refused() {
        let mem = FakePage::new(128);
        let mut c = Consumer::attach(&mem, L).unwrap();
        mem.write_u32(L.prod, 17);
        assert_eq!(c.read(&mem, &mut [0; 8]), Err(IndexError { prod: 17, cons: 0 }));
        mem.write_u32(L.prod, 10);
        assert_eq!(c.read(&mem, &mut [0; 4]), Ok(4));
        mem.write_u32(L.prod, 8); // backwards, though still ahead of cons
        assert_eq!(c.read(&mem, &mut [0; 4]), Err(IndexError { prod: 8, cons: 4 }));
        mem.write_u32(L.prod, 2); // behind cons
        assert!(c.available(&mem).is_err());
        assert_eq!(mem.read_u32(L.cons), 4);
    }

    #[test]
    fn bytes_found_at_attach_are_taken_or_skipped() {
        let mem = FakePage::new(128);
        mem.write_bytes(0, b"abcdefgh");
        mem.write_u32(L.prod, 8);
        let mut c = Consumer::attach(&mem, L).unwrap();
        let mut out = [0; 3];
        assert_eq!(c.take(&mem, &mut out), 3);
        assert_eq!(&out, b"abc");
        assert_eq!(mem.read_u32(L.cons), 0, "not yet published");
        assert!(c.publish(&mem) && !c.publish(&mem));
        assert_eq!(mem.read_u32(L.cons), 3);
        assert_eq!(c.skip(&mem), 5);
        assert_eq!((c.cons(), mem.read_u32(L.cons)), (8, 8));
        assert_eq!(c.take(&mem, &mut out), 0);
    }
}
