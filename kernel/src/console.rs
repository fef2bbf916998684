//! Where the kernel's text goes: the chosen consoles, `kprintln!`, and the `log` backend.
//!
//! Lines are written whole under one lock so that interleaved output stays readable.
//! That lock guards no data: the list of consoles is copied out from under its own lock,
//! which is never held while anything is written. So [`emergency`], for the panic path,
//! can always write: it takes the line lock if it can and writes without it if the code
//! it interrupted holds it (that code never resumes), with no lock to break.

use arch::platform::Console;
use core::fmt::{self, Write};
use spin::Mutex;

const MAX_CONSOLES: usize = 3;

type List = [Option<&'static dyn Console>; MAX_CONSOLES];

/// The consoles in use. Held only to copy the list in or out, with interrupts off.
static LIST: Mutex<List> = Mutex::new([None; MAX_CONSOLES]);
/// Held while a line is written, so lines do not interleave.
static LINE: Mutex<()> = Mutex::new(());

/// Formatted text into every console of a list.
struct Sinks(List);

impl Write for Sinks {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in self.0.iter().flatten() {
            c.write(s.as_bytes());
        }
        Ok(())
    }
}

/// Sends all further output to `consoles` (at most three).
pub fn set(consoles: &[&'static dyn Console]) {
    let mut list: List = [None; MAX_CONSOLES];
    for (slot, c) in list.iter_mut().zip(consoles) {
        *slot = Some(*c);
    }
    arch::irqflag::without_interrupts(|| *LIST.lock() = list);
}

/// Writes formatted text (use [`kprintln!`]).
pub fn print(args: fmt::Arguments<'_>) {
    arch::irqflag::without_interrupts(|| {
        let _line = LINE.lock();
        let list = *LIST.lock(); // a copy: the list lock is not held while writing
        let _ = Sinks(list).write_fmt(args);
    });
}

/// Writes even if a line is being written (panic path only).
pub fn emergency(args: fmt::Arguments<'_>) {
    // The list lock is only ever held for a copy with interrupts off, so this finds it
    // free; if not, there is nowhere known to write.
    let Some(list) = LIST.try_lock().map(|l| *l) else { return };
    // Taken if free; if the interrupted code holds it, it never resumes: write anyway.
    let _line = LINE.try_lock();
    let _ = Sinks(list).write_fmt(args);
}

/// Waits (bounded) until every console has passed on what it was given: before power-off.
pub fn flush() {
    let Some(list) = LIST.try_lock().map(|l| *l) else { return };
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
