//! The 16550 UART, polled, 115200 8N1.

use arch::platform::Console;
use x86_64::instructions::port::Port;

const THR: u16 = 0;
const IER: u16 = 1;
const FCR: u16 = 2;
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const SCRATCH: u16 = 7;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// A UART at an I/O port base (COM1 is 0x3f8).
pub struct Uart16550 {
    base: u16,
}

impl Uart16550 {
    /// COM1's I/O base.
    pub const COM1: u16 = 0x3f8;

    /// COM1, programmed, if a UART answers there (see [`Self::probe`]).
    pub fn probe_com1() -> Option<Self> {
        // SAFETY: the PC's fixed I/O map: 0x3f8-0x3ff are COM1's registers, or unused
        // ports where the machine has no COM1 (a Xen PVH domain).
        unsafe { Self::probe(Self::COM1) }
    }

    /// COM1, programmed for 115200 8N1 (see [`Self::init`]).
    pub fn com1() -> Self {
        // SAFETY: as in `probe_com1`.
        unsafe { Self::init(Self::COM1) }
    }

    /// The UART at `base`, programmed, if one answers there: its scratch register keeps
    /// what is written to it, where a missing device reads back 0xff. A guest without one
    /// (a Xen PVH domain) then writes nothing to it, each byte of which would have cost
    /// two port I/O exits.
    ///
    /// # Safety
    /// `base` must be a 16550 UART's I/O base or unused ports.
    pub unsafe fn probe(base: u16) -> Option<Self> {
        let u = Uart16550 { base };
        for pattern in [0x5a, 0xa5] {
            u.out(SCRATCH, pattern);
            if u.inb(SCRATCH) != pattern {
                return None;
            }
        }
        // SAFETY: a UART answered at `base`.
        Some(unsafe { Self::init(base) })
    }

    /// Programs the UART at `base` for 115200 8N1 with FIFOs, interrupts off.
    ///
    /// # Safety
    /// `base` must be a 16550 UART's I/O base (or unused ports, where writes are lost).
    pub unsafe fn init(base: u16) -> Self {
        let u = Uart16550 { base };
        u.out(IER, 0x00);
        u.out(LCR, 0x80); // DLAB: divisor follows
        u.out(0, 0x01); // divisor 1 = 115200
        u.out(1, 0x00);
        u.out(LCR, 0x03); // 8N1
        u.out(FCR, 0xc7); // FIFOs on, cleared, 14-byte threshold
        u.out(MCR, 0x03); // DTR, RTS
        u
    }

    fn out(&self, reg: u16, value: u8) {
        // SAFETY: `init`'s contract makes base + reg a UART register.
        unsafe { Port::<u8>::new(self.base + reg).write(value) }
    }

    fn inb(&self, reg: u16) -> u8 {
        // SAFETY: as in `out`; reading LSR has no side effects.
        unsafe { Port::<u8>::new(self.base + reg).read() }
    }

    fn put(&self, byte: u8) {
        // Bounded wait: a missing UART reads 0xff (THR empty) and never blocks us.
        for _ in 0..100_000 {
            if self.inb(LSR) & LSR_THR_EMPTY != 0 {
                break;
            }
        }
        self.out(THR, byte);
    }
}

impl Console for Uart16550 {
    fn write(&self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    fn name(&self) -> &'static str {
        "com1"
    }
}
