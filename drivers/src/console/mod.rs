//! Consoles: the 16550 UART (COM1) and the 0xe9 debug port.
//!
//! Both implement [`arch::platform::Console`]. Neither allocates nor locks, so the kernel
//! can print from a fault handler; serialising whole lines is the logger's job.

mod debugcon;
mod uart16550;

pub use debugcon::DebugCon;
pub use uart16550::Uart16550;
