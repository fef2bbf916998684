//! xenbus (`io/xenbus.h`): how the two halves of a split driver find each other through
//! xenstore. Each half publishes a [`XenbusState`] under its own directory, the front end
//! in `device/<class>/<n>`, the back end in the path the toolstack wrote into the front
//! end's `backend` key; each half reads the other's state and moves its own along.
//!
//! - [`connect`]: the front end's side of the handshake as a pure state machine, which
//!   the driver drives through a [`Store`] ([`run`], [`perform`]).
//! - [`error`]: why a handshake failed.
//! - [`close`]: after the handshake: judging the back end's state, and closing.
//!
//! The back end's state key is the peer's data like any other: a value that is not a
//! state, a back end that closes or disappears, and one that never answers are all ends
//! of the handshake with a clear error, never a hang.

pub mod close;
pub mod connect;
pub mod error;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub use connect::{Action, Answer, Connect, Keys};
pub use error::{ConnectError, StoreStep};

use crate::xenstore::CallError;
use alloc::vec::Vec;

/// `enum xenbus_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum XenbusState {
    /// `XenbusStateUnknown`.
    Unknown = 0,
    /// `XenbusStateInitialising`.
    Initialising = 1,
    /// `XenbusStateInitWait`: the back end waits for the front end's details.
    InitWait = 2,
    /// `XenbusStateInitialised`.
    Initialised = 3,
    /// `XenbusStateConnected`.
    Connected = 4,
    /// `XenbusStateClosing`: the device is going away.
    Closing = 5,
    /// `XenbusStateClosed`.
    Closed = 6,
    /// `XenbusStateReconfiguring`.
    Reconfiguring = 7,
    /// `XenbusStateReconfigured`.
    Reconfigured = 8,
}

impl XenbusState {
    /// Parses a state key's value: a decimal number `xenbus.h` defines, optionally
    /// surrounded by whitespace. Anything else is `None`.
    pub fn parse(value: &[u8]) -> Option<Self> {
        let text = core::str::from_utf8(value).ok()?.trim();
        if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(match text.parse::<u8>().ok()? {
            0 => XenbusState::Unknown,
            1 => XenbusState::Initialising,
            2 => XenbusState::InitWait,
            3 => XenbusState::Initialised,
            4 => XenbusState::Connected,
            5 => XenbusState::Closing,
            6 => XenbusState::Closed,
            7 => XenbusState::Reconfiguring,
            8 => XenbusState::Reconfigured,
            _ => return None,
        })
    }

    /// The value written into a state key.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"].get(self as usize).copied().unwrap_or("0")
    }
}

/// Synchronous xenstore access, as the handshake needs it: each call returns within its
/// own deadline (see [`crate::xenstore::session`]).
pub trait Store {
    /// Reads the value at `path`.
    fn read(&mut self, path: &str) -> Result<Vec<u8>, CallError>;
    /// Writes `value` at `path` in transaction `tx` (0: none).
    fn write(&mut self, path: &str, value: &[u8], tx: u32) -> Result<(), CallError>;
    /// Starts a transaction; returns its id.
    fn transaction_start(&mut self) -> Result<u32, CallError>;
    /// Ends transaction `tx`, committing it if `commit`.
    fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), CallError>;
    /// The current time, ns (monotonic).
    fn now_ns(&mut self) -> u64;
    /// Waits a little (about a millisecond) before the back end's state is read again.
    fn pause(&mut self);
}

/// Performs one store action over `store` and returns its answer; `None` for the actions
/// only the driver can answer ([`Action::Allocate`], [`Action::Connected`],
/// [`Action::Failed`]).
pub fn perform(store: &mut impl Store, action: &Action) -> Option<Answer> {
    Some(match action {
        Action::Read(path) => Answer::Read(store.read(path)),
        Action::Write { path, value, tx } => Answer::Written(store.write(path, value.as_bytes(), *tx)),
        Action::StartTransaction => Answer::Started(store.transaction_start()),
        Action::EndTransaction { tx, commit } => Answer::Ended(store.transaction_end(*tx, *commit)),
        Action::Pause => {
            store.pause();
            Answer::Paused
        }
        Action::Allocate { .. } | Action::Connected | Action::Failed(_) => return None,
    })
}

/// Runs the handshake to its end over `store`, calling `allocate(backend, backend_id)`
/// for the driver's side (which returns the keys to write, or `None` if it failed).
pub fn run(
    c: &mut Connect,
    store: &mut impl Store,
    mut allocate: impl FnMut(&str, u16) -> Option<Keys>,
) -> Result<(), ConnectError> {
    let mut answer = Answer::Begin;
    loop {
        let now = store.now_ns();
        let action = c.step(now, answer);
        answer = match perform(store, &action) {
            Some(a) => a,
            None => match action {
                Action::Allocate { backend, backend_id } => match allocate(&backend, backend_id) {
                    Some(keys) => Answer::Allocated(keys),
                    None => Answer::AllocationFailed,
                },
                Action::Connected => return Ok(()),
                Action::Failed(e) => return Err(e),
                _ => Answer::Abort,
            },
        };
    }
}
