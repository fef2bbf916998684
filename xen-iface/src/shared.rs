//! Memory shared with another domain, seen through offsets.
//!
//! The protocols in this crate never hold references into shared memory: every access is
//! one load or store through [`SharedMem`], which the kernel implements with volatile
//! accesses on the real page and host tests implement over plain buffers (and use to
//! play a misbehaving peer). A frame the peer wrote is copied out with
//! [`SharedMem::read_bytes`] into memory the peer cannot reach before anyone looks at it
//! as a slice: a `&[u8]` over memory another domain may write at the same time would be
//! undefined behaviour.

/// A page (or several) shared with a peer domain.
pub trait SharedMem {
    /// Size in bytes.
    fn len(&self) -> usize;
    /// True if the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Loads a byte. Offsets are within `len()`; implementations may return 0 otherwise.
    fn read_u8(&self, offset: usize) -> u8;
    /// Stores a byte (ignored outside `len()`).
    fn write_u8(&self, offset: usize, value: u8);
    /// Copies `out.len()` bytes starting at `offset` into `out`: the one way to see a
    /// run of shared bytes as a slice (a private copy, which the peer cannot change
    /// under the reader). Bytes outside `len()` read as 0. Implementations may read
    /// wider than a byte; the default reads byte by byte.
    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = offset.checked_add(i).map_or(0, |at| self.read_u8(at));
        }
    }
    /// Copies `bytes` into the memory at `offset` (bytes outside `len()` are dropped).
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            if let Some(at) = offset.checked_add(i) {
                self.write_u8(at, *b);
            }
        }
    }
    /// Loads an aligned little-endian u32 as one access.
    fn read_u32(&self, offset: usize) -> u32;
    /// Stores an aligned little-endian u32 as one access.
    fn write_u32(&self, offset: usize, value: u32);
    /// Loads an aligned u64 as one access.
    fn read_u64(&self, offset: usize) -> u64;
    /// Stores an aligned u64 as one access.
    fn write_u64(&self, offset: usize, value: u64);
    /// Atomically replaces an aligned u64, returning the old value (the peer may be
    /// setting bits in it concurrently).
    fn swap_u64(&self, offset: usize, value: u64) -> u64;
    /// Atomically ANDs `mask` into an aligned u64, returning the old value.
    fn fetch_and_u64(&self, offset: usize, mask: u64) -> u64;
    /// Atomically ORs `bits` into an aligned u64, returning the old value.
    fn fetch_or_u64(&self, offset: usize, bits: u64) -> u64;
}

#[cfg(test)]
pub(crate) mod testing {
    use super::SharedMem;
    use std::cell::RefCell;

    /// A shared page in host memory.
    pub struct FakePage(pub RefCell<Vec<u8>>);

    impl FakePage {
        pub fn new(len: usize) -> Self {
            FakePage(RefCell::new(vec![0; len]))
        }
    }

    impl SharedMem for FakePage {
        fn len(&self) -> usize {
            self.0.borrow().len()
        }
        fn read_u8(&self, offset: usize) -> u8 {
            self.0.borrow().get(offset).copied().unwrap_or(0)
        }
        fn write_u8(&self, offset: usize, value: u8) {
            if let Some(b) = self.0.borrow_mut().get_mut(offset) {
                *b = value;
            }
        }
        fn read_u32(&self, offset: usize) -> u32 {
            let b = self.0.borrow();
            b.get(offset..offset + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        }
        fn write_u32(&self, offset: usize, value: u32) {
            if let Some(s) = self.0.borrow_mut().get_mut(offset..offset + 4) {
                s.copy_from_slice(&value.to_le_bytes());
            }
        }
        fn read_u64(&self, offset: usize) -> u64 {
            let b = self.0.borrow();
            b.get(offset..offset + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
        }
        fn write_u64(&self, offset: usize, value: u64) {
            if let Some(s) = self.0.borrow_mut().get_mut(offset..offset + 8) {
                s.copy_from_slice(&value.to_le_bytes());
            }
        }
        fn swap_u64(&self, offset: usize, value: u64) -> u64 {
            let old = self.read_u64(offset);
            self.write_u64(offset, value);
            old
        }
        fn fetch_and_u64(&self, offset: usize, mask: u64) -> u64 {
            let old = self.read_u64(offset);
            self.write_u64(offset, old & mask);
            old
        }
        fn fetch_or_u64(&self, offset: usize, bits: u64) -> u64 {
            let old = self.read_u64(offset);
            self.write_u64(offset, old | bits);
            old
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FakePage;
    use super::SharedMem;

    #[test]
    fn byte_copies_stay_inside_the_memory() {
        let mem = FakePage::new(16);
        mem.write_bytes(12, b"abcdefgh"); // the last four bytes are dropped
        let mut out = [0xffu8; 8];
        mem.read_bytes(12, &mut out);
        assert_eq!(&out, b"abcd\0\0\0\0");
        mem.read_bytes(usize::MAX - 2, &mut out); // offsets that overflow read as 0
        assert_eq!(out, [0; 8]);
        mem.write_bytes(usize::MAX - 2, b"xyz");
        assert!(!mem.0.borrow().contains(&b'x'));
    }
}
