//! Where the kernel's text goes: the chosen consoles, `kprintln!`, and the `log` backend.
//!
//! Lines are written whole under one lock so that interleaved output stays readable.
//! [`emergency`] is for the panic path: it takes the lock if it can and writes anyway if
//! it cannot (the holder will never run again).

use arch::platform::Console;
use core::fmt::{self, Write};
use spin::Mutex;

const MAX_CONSOLES: usize = 3;

struct Sinks {
    list: [Option<&'static dyn Console>; MAX_CONSOLES],
}

impl Write for Sinks {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in self.list.iter().flatten() {
            c.write(s.as_bytes());
        }
        Ok(())
    }
}

static SINKS: Mutex<Sinks> = Mutex::new(Sinks { list: [None; MAX_CONSOLES] });

/// Sends all further output to `consoles` (at most three).
pub fn set(consoles: &[&'static dyn Console]) {
    let mut s = SINKS.lock();
    s.list = [None; MAX_CONSOLES];
    for (slot, c) in s.list.iter_mut().zip(consoles) {
        *slot = Some(*c);
    }
}

/// Writes formatted text (use [`kprintln!`]).
pub fn print(args: fmt::Arguments<'_>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let _ = SINKS.lock().write_fmt(args);
    });
}

/// Writes even if the console lock is held (panic path only).
pub fn emergency(args: fmt::Arguments<'_>) {
    if let Some(mut s) = SINKS.try_lock() {
        let _ = s.write_fmt(args);
        return;
    }
    // SAFETY: only called on the way to power-off with interrupts disabled; whoever
    // holds the lock was interrupted by this fault and never resumes.
    unsafe { SINKS.force_unlock() };
    let _ = SINKS.lock().write_fmt(args);
}

/// Waits (bounded) until every console has passed on what it was given: before power-off.
pub fn flush() {
    let list = match SINKS.try_lock() {
        Some(s) => s.list,
        None => return,
    };
    for c in list.iter().flatten() {
        c.flush();
    }
}

/// Prints a line to the consoles.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// The `log` backend: `[seconds.micros] LEVEL target: message`.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ns = crate::platform::try_get().map_or(0, |p| p.clock.now_ns());
        print(format_args!(
            "[{:5}.{:06}] {:5} {}: {}\n",
            ns / 1_000_000_000,
            (ns / 1000) % 1_000_000,
            record.level(),
            record.target(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the log backend at level Info.
pub fn init_logger() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}
