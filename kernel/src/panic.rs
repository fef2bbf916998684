//! The panic handler: print the message (fault reports arrive here too) and power off
//! with a failure status, so the host sees the failure instead of a hang.

use arch::platform::ExitStatus;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    crate::console::emergency(format_args!("PANIC: {info}\n"));
    crate::power::off(ExitStatus::Failure)
}
