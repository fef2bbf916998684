//! Why a xenbus handshake failed ([`super::connect`]), in words a log can show.

use super::XenbusState;
use crate::xenstore::CallError;
use alloc::string::String;
use core::fmt;

/// The xenstore operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreStep {
    /// Reading the front end's `backend` key.
    ReadBackend,
    /// Reading the front end's `backend-id` key.
    ReadBackendId,
    /// Reading the back end's `state`.
    ReadState,
    /// Starting the transaction.
    StartTransaction,
    /// Writing a key.
    Write(&'static str),
    /// Committing the transaction.
    Commit,
}

/// Why the handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// A xenstore operation failed.
    Store(StoreStep, CallError),
    /// The front end's `backend` key is not a xenstore path.
    BadBackendPath,
    /// The front end's `backend-id` key is not a domain id.
    BadBackendId(String),
    /// The back end's state key holds something that is not a xenbus state.
    BadState(String),
    /// The back end is closing or closed.
    BackendClosed(XenbusState),
    /// The back end's state key disappeared (the device was removed).
    BackendGone,
    /// The back end did not reach `waiting_for` by the deadline.
    Timeout {
        /// The state waited for.
        waiting_for: XenbusState,
        /// The last state read (`None`: the key never existed).
        last: Option<XenbusState>,
    },
    /// Every commit met a conflict.
    TransactionConflicts(u32),
    /// The driver could not set up its side.
    Allocation,
    /// The driver gave up ([`Answer::Abort`]).
    Aborted,
    /// The driver answered an action with the wrong kind of answer.
    Misuse,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Store(step, e) => write!(f, "xenstore failed at {step:?}: {e:?}"),
            ConnectError::BadBackendPath => write!(f, "the front end's backend key is not a xenstore path"),
            ConnectError::BadBackendId(v) => write!(f, "the front end's backend-id is {v:?}, not a domain id"),
            ConnectError::BadState(v) => write!(f, "the back end's state is {v:?}, not a xenbus state"),
            ConnectError::BackendClosed(s) => write!(f, "the back end went {s:?}"),
            ConnectError::BackendGone => write!(f, "the back end's state key disappeared (device removed)"),
            ConnectError::Timeout { waiting_for, last } => {
                write!(f, "the back end did not reach {waiting_for:?} in time (last state {last:?})")
            }
            ConnectError::TransactionConflicts(n) => write!(f, "{n} commits in a row met a conflict (EAGAIN)"),
            ConnectError::Allocation => write!(f, "the front end could not set up its rings"),
            ConnectError::Aborted => write!(f, "the driver gave up"),
            ConnectError::Misuse => write!(f, "the driver answered out of turn"),
        }
    }
}
