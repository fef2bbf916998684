//! The panic handler: print the message (fault reports arrive here too) and power off
//! with a failure status, so the host sees the failure instead of a hang.
//!
//! The report is one line, `PANIC: <message> at <file>:<line>:<column>`, so that the
//! host, which collects the lines that say a guest failed, gets the whole reason.

use arch::platform::ExitStatus;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::irqflag::disable();
    match info.location() {
        Some(l) => crate::console::emergency(format_args!(
            "PANIC: {} at {}:{}:{}\n",
            info.message(),
            l.file(),
            l.line(),
            l.column()
        )),
        None => crate::console::emergency(format_args!("PANIC: {}\n", info.message())),
    }
    crate::power::off(ExitStatus::Failure)
}
