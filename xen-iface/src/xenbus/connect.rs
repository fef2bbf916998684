//! The front end's side of the xenbus handshake, as a state machine the driver drives.
//!
//! The sequence (as Linux's netfront, without watches: the back end's state is read
//! every millisecond or so):
//! 1. read the front end's `backend` and `backend-id` keys;
//! 2. wait, with a deadline, for the back end to reach `InitWait`;
//! 3. [`Action::Allocate`]: the driver sets up its side (rings, grants, an event channel)
//!    and answers with the keys that describe it;
//! 4. write those keys and the front end's `state` = `Connected` in one transaction,
//!    started again when the commit meets a conflict (`EAGAIN`), at most
//!    [`MAX_COMMIT_ATTEMPTS`] times;
//! 5. wait, with a deadline, for the back end to reach `Connected`.
//!
//! Each [`Connect::step`] takes the answer to the previous [`Action`] and returns the
//! next one; the machine does no I/O and reads no clock, so every path is tested on the
//! host ([`super::run`] performs the store actions over a [`super::Store`]). The back end is
//! untrusted: a state key holding anything but a state, a back end that goes `Closing`
//! or `Closed`, or whose state key disappears, ends the handshake at once; one that
//! never moves ends it at the deadline, checked on every step.
//!
//! A failed handshake cleans up after itself before it reports [`Action::Failed`]: an
//! open transaction is ended without committing, and a front end that had already
//! published `Connected` writes `Closed` and gives the back end a moment
//! ([`CLOSE_WAIT_NS`] at most) to follow, so it lets go of the rings. The driver then
//! takes back what it lent (see [`crate::netfront::open`]).

use super::error::{ConnectError, StoreStep};
use super::XenbusState;
use crate::xenstore::wire::validate_path;
use crate::xenstore::{CallError, Error as XsError, XsErrno};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Commits tried before conflicts (`EAGAIN`) end the handshake.
pub const MAX_COMMIT_ATTEMPTS: u32 = 8;
/// Longest wait, after a failure, for the back end to follow the front end to `Closed`
/// (it unmaps the rings on the way, so they can be freed rather than leaked).
pub const CLOSE_WAIT_NS: u64 = 1_000_000_000;
/// `DOMID_FIRST_RESERVED`: domain ids from here up are special, never a back end's.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;

/// Keys the front end writes, relative to its own directory, with their values.
pub type Keys = Vec<(&'static str, String)>;

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read `path`; answer [`Answer::Read`].
    Read(String),
    /// Write `value` at `path` in transaction `tx` (0: none); answer [`Answer::Written`].
    Write {
        /// The path.
        path: String,
        /// The value.
        value: String,
        /// The transaction.
        tx: u32,
    },
    /// Start a transaction; answer [`Answer::Started`].
    StartTransaction,
    /// End transaction `tx`; answer [`Answer::Ended`].
    EndTransaction {
        /// The transaction.
        tx: u32,
        /// Commit, or throw away.
        commit: bool,
    },
    /// Wait about a millisecond; answer [`Answer::Paused`].
    Pause,
    /// Set up the rings, grants and event channel for back end `backend_id` (at
    /// `backend`); answer [`Answer::Allocated`] with the keys describing them, or
    /// [`Answer::AllocationFailed`].
    Allocate {
        /// The back end's directory.
        backend: String,
        /// The back end's domain.
        backend_id: u16,
    },
    /// The back end is connected: the device is ready. (Answer [`Answer::Abort`] if the
    /// driver fails afterwards, to close the front end again.)
    Connected,
    /// The handshake failed, and what it set up in xenstore is cleaned up; release the
    /// driver's side.
    Failed(ConnectError),
}

/// The driver's answer to the last [`Action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The first step.
    Begin,
    /// The value read, or why not.
    Read(Result<Vec<u8>, CallError>),
    /// The write's outcome.
    Written(Result<(), CallError>),
    /// The transaction's id, or why not.
    Started(Result<u32, CallError>),
    /// The transaction end's outcome.
    Ended(Result<(), CallError>),
    /// Paused.
    Paused,
    /// The driver's side is set up: the keys to write.
    Allocated(Keys),
    /// The driver's side could not be set up.
    AllocationFailed,
    /// The driver gives up (instead of doing what was asked, or after `Connected`).
    Abort,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Begin,
    ReadBackend,
    ReadBackendId,
    /// Waiting for the back end to reach `target`: reading its state, or pausing.
    Wait {
        target: XenbusState,
        deadline: u64,
        reading: bool,
    },
    Allocate,
    Start,
    Write {
        tx: u32,
        next: usize,
    },
    Commit {
        tx: u32,
    },
    /// Cleaning up: ending transaction `tx` without committing.
    Abort {
        tx: u32,
        error: ConnectError,
    },
    /// Cleaning up: writing the front end's state `Closed`.
    Close {
        error: ConnectError,
    },
    /// Cleaning up: giving the back end a moment to reach `Closed` (and unmap the rings),
    /// reading its state or pausing.
    Closing {
        error: ConnectError,
        deadline: u64,
        reading: bool,
    },
    Connected,
    Failed(ConnectError),
}

/// The front end's handshake with its back end.
#[derive(Clone, Debug)]
pub struct Connect {
    frontend: String,
    timeout_ns: u64,
    phase: Phase,
    backend: String,
    backend_id: u16,
    keys: Keys,
    attempts: u32,
    /// The front end's `Connected` was committed: a failure must close it again.
    published: bool,
    /// The back end's last state read.
    last: Option<XenbusState>,
}

impl Connect {
    /// A handshake for the front end at `frontend` (`device/vif/0`); each wait for the
    /// back end lasts at most `timeout_ns`.
    pub fn new(frontend: &str, timeout_ns: u64) -> Self {
        Connect {
            frontend: frontend.into(),
            timeout_ns,
            phase: Phase::Begin,
            backend: String::new(),
            backend_id: 0,
            keys: Keys::new(),
            attempts: 0,
            published: false,
            last: None,
        }
    }

    /// The back end's directory (empty until read).
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The back end's domain (0 until read).
    pub fn backend_id(&self) -> u16 {
        self.backend_id
    }

    /// Commits tried so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Takes `answer` to the last action (at `now_ns`) and returns the next action.
    pub fn step(&mut self, now_ns: u64, answer: Answer) -> Action {
        let phase = core::mem::replace(&mut self.phase, Phase::Begin);
        self.phase = self.advance(phase, now_ns, answer);
        self.action()
    }

    fn action(&self) -> Action {
        let front = |key: &str| format!("{}/{key}", self.frontend);
        match &self.phase {
            Phase::Begin | Phase::ReadBackend => Action::Read(front("backend")),
            Phase::ReadBackendId => Action::Read(front("backend-id")),
            Phase::Wait { reading: true, .. } => Action::Read(format!("{}/state", self.backend)),
            Phase::Wait { reading: false, .. } => Action::Pause,
            Phase::Allocate => Action::Allocate { backend: self.backend.clone(), backend_id: self.backend_id },
            Phase::Start => Action::StartTransaction,
            Phase::Write { tx, next } => match self.keys.get(*next) {
                Some((key, value)) => Action::Write { path: front(key), value: value.clone(), tx: *tx },
                None => Action::Failed(ConnectError::Misuse),
            },
            Phase::Commit { tx } => Action::EndTransaction { tx: *tx, commit: true },
            Phase::Abort { tx, .. } => Action::EndTransaction { tx: *tx, commit: false },
            Phase::Close { .. } => {
                Action::Write { path: front("state"), value: XenbusState::Closed.as_str().into(), tx: 0 }
            }
            Phase::Closing { reading: true, .. } => Action::Read(format!("{}/state", self.backend)),
            Phase::Closing { reading: false, .. } => Action::Pause,
            Phase::Connected => Action::Connected,
            Phase::Failed(e) => Action::Failed(e.clone()),
        }
    }

    /// Where a failure in `phase` leads: through the clean-up it needs, to `Failed`.
    fn fail(&self, phase: &Phase, error: ConnectError) -> Phase {
        match *phase {
            Phase::Write { tx, .. } | Phase::Commit { tx } => Phase::Abort { tx, error },
            _ if self.published => Phase::Close { error },
            _ => Phase::Failed(error),
        }
    }

    fn advance(&mut self, phase: Phase, now: u64, answer: Answer) -> Phase {
        use Answer as A;
        match (phase, answer) {
            // Clean-up: its own failures change nothing, the first error is reported.
            (Phase::Abort { error, .. }, A::Ended(_) | A::Abort) if self.published => Phase::Close { error },
            (Phase::Abort { error, .. }, A::Ended(_) | A::Abort) => Phase::Failed(error),
            (Phase::Close { error }, A::Written(Ok(()))) => Phase::Closing {
                error,
                deadline: now.saturating_add(self.timeout_ns.min(CLOSE_WAIT_NS)),
                reading: true,
            },
            (Phase::Close { error }, A::Written(Err(_)) | A::Abort) => Phase::Failed(error),
            (Phase::Closing { error, deadline, reading: true }, A::Read(r)) => {
                let closed = match r {
                    Ok(v) => XenbusState::parse(&v).is_none_or(|s| s == XenbusState::Closed),
                    Err(_) => true, // gone, or xenstore failing: nothing more to wait for
                };
                if closed || now > deadline {
                    Phase::Failed(error)
                } else {
                    Phase::Closing { error, deadline, reading: false }
                }
            }
            (Phase::Closing { error, deadline, reading: false }, A::Paused) if now <= deadline => {
                Phase::Closing { error, deadline, reading: true }
            }
            (Phase::Closing { error, .. }, _) => Phase::Failed(error),
            (p @ Phase::Failed(_), _) => p,
            (Phase::Connected, A::Abort) => Phase::Close { error: ConnectError::Aborted },
            (p @ Phase::Connected, _) => p,
            (p, A::Abort) => self.fail(&p, ConnectError::Aborted),

            (Phase::Begin, A::Begin) => Phase::ReadBackend,
            (p @ Phase::ReadBackend, A::Read(r)) => match r {
                Ok(v) => match core::str::from_utf8(&v).ok().filter(|s| validate_path(s).is_ok()) {
                    Some(path) => {
                        self.backend = path.into();
                        Phase::ReadBackendId
                    }
                    None => self.fail(&p, ConnectError::BadBackendPath),
                },
                Err(e) => self.fail(&p, ConnectError::Store(StoreStep::ReadBackend, e)),
            },
            (p @ Phase::ReadBackendId, A::Read(r)) => match r {
                Ok(v) => match parse_domid(&v) {
                    Some(id) => {
                        self.backend_id = id;
                        self.wait_for(XenbusState::InitWait, now)
                    }
                    None => self.fail(&p, ConnectError::BadBackendId(shown(&v))),
                },
                Err(e) => self.fail(&p, ConnectError::Store(StoreStep::ReadBackendId, e)),
            },
            (p @ Phase::Wait { target, deadline, reading: true }, A::Read(r)) => match self.observe(target, r) {
                Ok(true) if target == XenbusState::InitWait => Phase::Allocate,
                Ok(true) => Phase::Connected,
                Ok(false) if now > deadline => self.timeout(&p, target),
                Ok(false) => Phase::Wait { target, deadline, reading: false },
                Err(e) => self.fail(&p, e),
            },
            (p @ Phase::Wait { target, deadline, reading: false }, A::Paused) => {
                if now > deadline {
                    self.timeout(&p, target)
                } else {
                    Phase::Wait { target, deadline, reading: true }
                }
            }
            (Phase::Allocate, A::Allocated(keys)) => {
                self.keys = keys;
                self.keys.push(("state", XenbusState::Connected.as_str().into()));
                Phase::Start
            }
            (p @ Phase::Allocate, A::AllocationFailed) => self.fail(&p, ConnectError::Allocation),
            (p @ Phase::Start, A::Started(r)) => match r {
                Ok(tx) => Phase::Write { tx, next: 0 },
                Err(e) => self.fail(&p, ConnectError::Store(StoreStep::StartTransaction, e)),
            },
            (p @ Phase::Write { tx, next }, A::Written(r)) => match r {
                Ok(()) if next + 1 < self.keys.len() => Phase::Write { tx, next: next + 1 },
                Ok(()) => Phase::Commit { tx },
                Err(e) => {
                    let key = self.keys.get(next).map_or("?", |(k, _)| k);
                    self.fail(&p, ConnectError::Store(StoreStep::Write(key), e))
                }
            },
            (Phase::Commit { .. }, A::Ended(r)) => {
                self.attempts += 1;
                match r {
                    Ok(()) => {
                        self.published = true;
                        self.wait_for(XenbusState::Connected, now)
                    }
                    // The conflicting transaction is gone: start another, a bounded number of times.
                    Err(CallError::Xs(XsError::Xs(XsErrno::Again))) if self.attempts < MAX_COMMIT_ATTEMPTS => {
                        Phase::Start
                    }
                    Err(CallError::Xs(XsError::Xs(XsErrno::Again))) => {
                        self.fail(&Phase::Start, ConnectError::TransactionConflicts(self.attempts))
                    }
                    Err(e) => self.fail(&Phase::Start, ConnectError::Store(StoreStep::Commit, e)),
                }
            }
            (p, _) => self.fail(&p, ConnectError::Misuse),
        }
    }

    fn wait_for(&mut self, target: XenbusState, now: u64) -> Phase {
        Phase::Wait { target, deadline: now.saturating_add(self.timeout_ns), reading: true }
    }

    fn timeout(&self, phase: &Phase, waiting_for: XenbusState) -> Phase {
        self.fail(phase, ConnectError::Timeout { waiting_for, last: self.last })
    }

    /// Judges a read of the back end's state: `Ok(true)` once it reached `target`.
    fn observe(&mut self, target: XenbusState, r: Result<Vec<u8>, CallError>) -> Result<bool, ConnectError> {
        let not_found = CallError::Xs(XsError::Xs(XsErrno::NotFound));
        match r {
            Ok(v) => {
                let state = XenbusState::parse(&v).ok_or_else(|| ConnectError::BadState(shown(&v)))?;
                self.last = Some(state);
                match state {
                    XenbusState::Closing | XenbusState::Closed => Err(ConnectError::BackendClosed(state)),
                    XenbusState::InitWait | XenbusState::Initialised if target == XenbusState::InitWait => Ok(true),
                    s => Ok(s == XenbusState::Connected),
                }
            }
            // Not created yet, while the toolstack sets the back end up.
            Err(e) if e == not_found && self.last.is_none() && target == XenbusState::InitWait => Ok(false),
            Err(e) if e == not_found => Err(ConnectError::BackendGone),
            Err(e) => Err(ConnectError::Store(StoreStep::ReadState, e)),
        }
    }
}

/// A domain id as xenstore holds it: decimal, below [`DOMID_FIRST_RESERVED`].
fn parse_domid(v: &[u8]) -> Option<u16> {
    let text = core::str::from_utf8(v).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&id| id < DOMID_FIRST_RESERVED)
}

/// A peer's value for an error message: lossy text, at most 32 characters.
fn shown(v: &[u8]) -> String {
    String::from_utf8_lossy(v).chars().take(32).collect()
}
