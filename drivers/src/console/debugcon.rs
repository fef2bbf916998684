//! The 0xe9 debug port: QEMU's `-debugcon` and Xen's guest log (`(dN)` lines in
//! `xl dmesg`). One `out` per byte, no status to poll.

use arch::platform::Console;
use x86_64::instructions::port::Port;

/// The debug port console.
pub struct DebugCon;

impl DebugCon {
    /// The port.
    pub const PORT: u16 = 0xe9;
}

impl Console for DebugCon {
    fn write(&self, bytes: &[u8]) {
        let mut port = Port::<u8>::new(Self::PORT);
        for &b in bytes {
            // SAFETY: port 0xe9 is the hypervisor/emulator debug port; elsewhere unused.
            unsafe { port.write(b) };
        }
    }

    fn name(&self) -> &'static str {
        "e9"
    }
}
