//! The memory access loops the memory benchmarks time (`kernel/src/bench/mem_*.rs`).
//!
//! - [`copy_volatile`] and [`fill_volatile`]: loops of 64-bit volatile stores, one per
//!   word, which the compiler may neither drop nor turn into `memcpy`/`memset` (the
//!   kernel's are `rep movs`/`rep stos`, fast on hardware but one element per step
//!   under an emulator such as QEMU's TCG).
//! - [`Chain`]: a buffer of 64-byte lines linked into one cycle and the dependent-load
//!   chase over it. The links are written here, from an order the benchmark chooses, so
//!   every address the chase loads from is one of the chain's own lines by construction.

use alloc::vec::Vec;

/// Copies `src` into `dst` word by word, each store a volatile 64-bit store (as many
/// words as the shorter of the two has).
#[inline]
pub fn copy_volatile(dst: &mut [u64], src: &[u64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        // SAFETY: d is a valid, exclusive reference; volatile keeps the loop a loop
        // (the compiler would otherwise turn it into a memcpy call).
        unsafe { core::ptr::write_volatile(d, *s) };
    }
}

/// Stores `value` into every word of `buf`, each a volatile 64-bit store.
#[inline]
pub fn fill_volatile(buf: &mut [u64], value: u64) {
    for w in buf.iter_mut() {
        // SAFETY: w is a valid, exclusive reference; volatile keeps the stores.
        unsafe { core::ptr::write_volatile(w, value) };
    }
}

/// A buffer of [`Chain::LINE`]-byte lines, each line's first word the address of the
/// next line of the chain.
pub struct Chain {
    /// Never written after `link`, never moved (a `Vec`'s heap buffer stays put).
    buf: Vec<usize>,
    start: usize,
}

impl Chain {
    /// Bytes per line.
    pub const LINE: usize = 64;
    const WORDS: usize = Self::LINE / core::mem::size_of::<usize>();

    /// Links the lines of `buf` in `order`: line `order[i]` points at line
    /// `order[i + 1]`, the last at `order[0]`, where the chase starts. Lines `order`
    /// does not name point at themselves. `None` if `order` is empty or names a line
    /// `buf` does not have.
    pub fn link(mut buf: Vec<usize>, order: &[u32]) -> Option<Chain> {
        let lines = buf.len() / Self::WORDS;
        let first = *order.first()? as usize;
        if order.iter().any(|&l| l as usize >= lines) {
            return None;
        }
        let base = buf.as_ptr().addr();
        for line in 0..lines {
            buf[line * Self::WORDS] = base + line * Self::LINE;
        }
        for (w, &from) in order.iter().enumerate() {
            let to = order[(w + 1) % order.len()] as usize;
            buf[from as usize * Self::WORDS] = base + to * Self::LINE;
        }
        // Exposed after the last write, so the provenance `chase` picks up is valid for
        // reading the whole buffer from now on.
        buf.as_ptr().expose_provenance();
        Some(Chain { start: base + first * Self::LINE, buf })
    }

    /// The address the chase starts from.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Follows `loads` links from the start, each load depending on the one before;
    /// returns the address reached.
    pub fn chase(&self, loads: usize) -> usize {
        let mut p = self.start;
        for _ in 0..loads {
            // SAFETY: `link` made every word followed here a line's first word in `buf` (owned,
            // pinned, never written again) and exposed `buf`'s provenance after its last write.
            p = unsafe { core::ptr::read_volatile(core::ptr::with_exposed_provenance::<usize>(p)) };
        }
        p
    }

    /// Bytes in the chain's buffer.
    pub fn len_bytes(&self) -> usize {
        self.buf.len() * core::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_and_fill_every_word() {
        let src: Vec<u64> = (0..100).collect();
        let mut dst = vec![0u64; 120];
        copy_volatile(&mut dst, &src);
        assert_eq!(&dst[..100], &src[..]);
        assert!(dst[100..].iter().all(|&w| w == 0));
        fill_volatile(&mut dst[10..20], 7);
        assert!(dst[10..20].iter().all(|&w| w == 7) && dst[20] == 20);
    }

    #[test]
    fn chase_follows_the_order_round_and_round() {
        let order = [2u32, 0, 3, 1];
        let chain = Chain::link(vec![0; 4 * Chain::WORDS], &order).unwrap();
        let line = |l: usize| chain.buf.as_ptr() as usize + l * Chain::LINE;
        assert_eq!(chain.start(), line(2));
        assert_eq!(chain.chase(0), line(2));
        assert_eq!(chain.chase(1), line(0));
        assert_eq!(chain.chase(3), line(1));
        assert_eq!(chain.chase(4), line(2));
        assert_eq!(chain.chase(4001), line(0));
        assert_eq!(chain.len_bytes(), 4 * Chain::LINE);
    }

    #[test]
    fn lines_left_out_loop_on_themselves_and_bad_orders_are_refused() {
        let chain = Chain::link(vec![0; 4 * Chain::WORDS], &[1, 1]).unwrap();
        assert_eq!(chain.chase(5), chain.start());
        assert_eq!(chain.buf[0], chain.buf.as_ptr() as usize);
        assert!(Chain::link(vec![0; 4 * Chain::WORDS], &[0, 4]).is_none());
        assert!(Chain::link(vec![0; 4 * Chain::WORDS], &[]).is_none());
        assert!(Chain::link(vec![0; 3], &[0]).is_none(), "not even one line");
    }
}
