//! The legacy 8259 PICs: remapped away from the exception vectors and masked.
//!
//! The kernel uses the APICs; the PICs only need to stay silent. They are remapped to
//! vectors 0x20–0x2f first so that a spurious interrupt they raise anyway can't be taken
//! for an exception.

use x86_64::instructions::port::Port;

/// Remaps and masks both PICs.
pub fn disable() {
    // SAFETY: ports 0x20/0x21/0xa0/0xa1 are the PICs on every PC; the ICW sequence below
    // is the standard initialisation, ending with all lines masked.
    unsafe {
        let (mut c1, mut d1) = (Port::<u8>::new(0x20), Port::<u8>::new(0x21));
        let (mut c2, mut d2) = (Port::<u8>::new(0xa0), Port::<u8>::new(0xa1));
        c1.write(0x11);
        c2.write(0x11);
        d1.write(0x20);
        d2.write(0x28);
        d1.write(4);
        d2.write(2);
        d1.write(1);
        d2.write(1);
        d1.write(0xff);
        d2.write(0xff);
    }
}
