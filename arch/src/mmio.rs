//! `Mmio<T>`: the one way this kernel touches memory-mapped device registers.
//!
//! Every access is a single volatile read or write of `T`, so the compiler neither merges,
//! splits nor reorders it against other MMIO accesses.

use core::marker::PhantomData;

/// A device register of type `T` at a fixed address.
#[derive(Debug)]
pub struct Mmio<T> {
    addr: usize,
    _t: PhantomData<T>,
}

impl<T: Copy> Mmio<T> {
    /// A register at `addr`.
    ///
    /// # Safety
    /// `addr` must be mapped, suitably aligned for `T`, and be a register that may be
    /// read and written as `T` for as long as this value is used.
    pub const unsafe fn at(addr: usize) -> Self {
        Mmio { addr, _t: PhantomData }
    }

    /// Reads the register.
    #[inline]
    pub fn read(&self) -> T {
        // SAFETY: `at`'s contract makes addr a mapped, aligned register of type T.
        unsafe { core::ptr::read_volatile(self.addr as *const T) }
    }

    /// Writes the register.
    #[inline]
    pub fn write(&self, value: T) {
        // SAFETY: `at`'s contract makes addr a mapped, aligned register of type T.
        unsafe { core::ptr::write_volatile(self.addr as *mut T, value) }
    }

    /// The register's address.
    pub fn addr(&self) -> usize {
        self.addr
    }
}
