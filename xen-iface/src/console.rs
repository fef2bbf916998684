//! The PV console ring (`io/console.h`): the guest writes bytes into `out`, advances
//! `out_prod` and notifies the console event channel; xenconsoled reads up to
//! `out_cons`.
//!
//! `out` is a [`crate::byte_ring`] ring with the guest as producer: the writer keeps its
//! own producer index and never reads it back from the page, reads the backend's consumer
//! index once per write, and refuses one that moves backwards or past what was written (a
//! broken or hostile backend): the console then goes quiet instead of overwriting what it
//! has not sent.

use crate::byte_ring::{Layout, Producer};
use crate::shared::SharedMem;

/// The backend's indexes are impossible.
pub use crate::byte_ring::IndexError as Broken;

/// Bytes in the `in` ring.
pub const IN_SIZE: usize = 1024;
/// Bytes in the `out` ring.
pub const OUT_SIZE: usize = 2048;
/// Offset of `out`.
pub const OUT: usize = IN_SIZE;
/// Offset of `in_cons`.
pub const IN_CONS: usize = IN_SIZE + OUT_SIZE;
/// Offset of `in_prod`.
pub const IN_PROD: usize = IN_CONS + 4;
/// Offset of `out_cons`.
pub const OUT_CONS: usize = IN_CONS + 8;
/// Offset of `out_prod`.
pub const OUT_PROD: usize = IN_CONS + 12;
/// Bytes of `struct xencons_interface`.
pub const INTERFACE_SIZE: usize = IN_CONS + 16;

/// Where `out` and its indexes are.
const OUT_RING: Layout = Layout { data: OUT, size: OUT_SIZE as u32, prod: OUT_PROD, cons: OUT_CONS };
const _: () = assert!(OUT_SIZE.is_power_of_two());

/// Writer state for the `out` ring.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleOut {
    out: Producer,
}

impl ConsoleOut {
    /// Takes over a ring, starting after whatever an earlier boot stage produced.
    pub fn attach(mem: &impl SharedMem) -> Result<Self, Broken> {
        Ok(ConsoleOut { out: Producer::attach(mem, OUT_RING)? })
    }

    /// Copies as much of `bytes` as fits into the ring and publishes it; returns how
    /// many bytes were taken (0 when the ring is full).
    pub fn write(&mut self, mem: &impl SharedMem, bytes: &[u8]) -> Result<usize, Broken> {
        self.out.write(mem, bytes)
    }

    /// True when the backend has consumed everything written.
    pub fn drained(&self, mem: &impl SharedMem) -> bool {
        self.out.drained(mem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::FakePage;

    fn page() -> FakePage {
        FakePage::new(4096)
    }

    /// The backend: takes everything produced, returns it.
    fn drain(mem: &FakePage) -> Vec<u8> {
        let (mut cons, prod) = (mem.read_u32(OUT_CONS), mem.read_u32(OUT_PROD));
        let mut out = Vec::new();
        while cons != prod {
            out.push(mem.read_u8(OUT + cons as usize % OUT_SIZE));
            cons = cons.wrapping_add(1);
        }
        mem.write_u32(OUT_CONS, cons);
        out
    }

    #[test]
    fn writes_and_wraps() {
        let mem = page();
        let mut w = ConsoleOut::attach(&mem).unwrap();
        let mut all = Vec::new();
        for i in 0..50u8 {
            let line: Vec<u8> = (0..100).map(|j| i.wrapping_add(j)).collect();
            assert_eq!(w.write(&mem, &line), Ok(100));
            all.extend_from_slice(&line);
            if i % 7 == 0 {
                assert_eq!(drain(&mem), all);
                all.clear();
                assert!(w.drained(&mem));
            }
        }
        assert_eq!(drain(&mem), all);
    }

    #[test]
    fn full_ring_takes_nothing_more() {
        let mem = page();
        let mut w = ConsoleOut::attach(&mem).unwrap();
        assert_eq!(w.write(&mem, &[b'x'; 3000]), Ok(OUT_SIZE));
        assert_eq!(w.write(&mem, b"more"), Ok(0));
        assert_eq!(drain(&mem).len(), OUT_SIZE);
        assert_eq!(w.write(&mem, b"more"), Ok(4));
    }

    #[test]
    fn index_wraparound_at_u32_max() {
        let mem = page();
        mem.write_u32(OUT_PROD, u32::MAX - 2);
        mem.write_u32(OUT_CONS, u32::MAX - 2);
        let mut w = ConsoleOut::attach(&mem).unwrap();
        assert_eq!(w.write(&mem, b"abcdef"), Ok(6));
        assert_eq!(drain(&mem), b"abcdef");
        assert_eq!(mem.read_u32(OUT_PROD), 3);
    }

    #[test]
    fn hostile_consumer_index_is_refused() {
        let mem = page();
        let mut w = ConsoleOut::attach(&mem).unwrap();
        w.write(&mem, b"hello").unwrap();
        mem.write_u32(OUT_CONS, 4000); // "consumed" bytes never produced
        assert_eq!(w.write(&mem, b"x"), Err(Broken { prod: 5, cons: 4000 }));
        mem.write_u32(OUT_CONS, 3);
        assert_eq!(w.write(&mem, b"x"), Ok(1));
        mem.write_u32(OUT_CONS, 2); // backwards: the same rule as xenstore's rings
        assert_eq!(w.write(&mem, b"x"), Err(Broken { prod: 6, cons: 2 }));
        mem.write_u32(OUT_PROD, 9000);
        mem.write_u32(OUT_CONS, 0);
        assert!(ConsoleOut::attach(&mem).is_err());
    }

    #[test]
    fn layout_matches_header() {
        assert_eq!((OUT, IN_CONS, OUT_PROD, INTERFACE_SIZE), (1024, 3072, 3084, 3088));
    }
}
