//! After the handshake: what the back end's state key says about a connected device
//! ([`judge`]), and the front end's side of closing it ([`close`]).
//!
//! A connected front end watches `<backend>/state`. The toolstack takes a device away
//! (`xl network-detach`) by writing `Closing` there (or, late, removing the node), and
//! then waits for the back end to reach `Closed`; Linux's netback gets there only once
//! the front end has: it disconnects (unmaps the rings, ends its grant mappings) when
//! the front end says `Closing`, and goes `Closed` when the front end says `Closed`. So
//! the front end answers as Linux's `xenbus_dev_shutdown` does: `Closing`, a bounded
//! wait for the back end to be `Closing` or further, `Closed`, and a bounded wait for
//! the back end's `Closed` (or its node's removal). Only then are the pages worth
//! taking back; a back end that never gets there costs the wait and the pages it still
//! maps, never a hang.
//!
//! The value is the peer's: [`judge`] parses it once. A value that is not a state, or a
//! read that fails, is [`Watched::Ignored`]: the front end keeps serving, because the
//! data path does not depend on the key (every ring access is checked), a real removal
//! writes `Closing`/`Closed` or removes the node (both acted on), and Linux's netfront
//! ignores what it cannot parse too (it reads as `Unknown`).

use super::{Store, XenbusState};
use crate::xenstore::{CallError, Error as XsError, XsErrno};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest each of the close protocol's two waits for the back end lasts.
pub const CLOSE_STEP_WAIT_NS: u64 = 2_000_000_000;

/// What a connected front end learns from its back end's state key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watched {
    /// A state other than `Closing` or `Closed`: nothing to do.
    Stays(XenbusState),
    /// `Closing` or `Closed`: the device is going away.
    Closes(XenbusState),
    /// The key is gone (`ENOENT`): the device was removed.
    Removed,
    /// Not a state (the value, shown), or the read failed: ignored (see the module notes).
    Ignored(String),
}

/// Judges one read of `<backend>/state` by a connected front end.
pub fn judge(read: Result<Vec<u8>, CallError>) -> Watched {
    match read {
        Ok(v) => match XenbusState::parse(&v) {
            Some(s @ (XenbusState::Closing | XenbusState::Closed)) => Watched::Closes(s),
            Some(s) => Watched::Stays(s),
            None => Watched::Ignored(format!("the value {:?} is not a xenbus state", shown(&v))),
        },
        Err(CallError::Xs(XsError::Xs(XsErrno::NotFound))) => Watched::Removed,
        Err(e) => Watched::Ignored(format!("the read failed: {e:?}")),
    }
}

/// Where the back end was when the close protocol ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendEnd {
    /// It reached `Closed`: it let go of everything.
    Closed,
    /// Its state key disappeared (the toolstack removed the device).
    Removed,
    /// It did not reach `Closed` within [`CLOSE_STEP_WAIT_NS`]; the last state read
    /// (`None`: unreadable, or not a state).
    Stuck(Option<XenbusState>),
}

/// What closing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closing {
    /// The front end's `Closed` was written (else xenstore refused: the back end may
    /// never learn of it).
    pub front_closed: bool,
    /// Where the back end ended.
    pub backend: BackendEnd,
    /// How long the protocol took, ns.
    pub took_ns: u64,
}

/// Closes the front end at `frontend` whose back end is at `backend`: `Closing`, wait for
/// the back end to be `Closing` or further, `Closed`, wait for the back end's `Closed`;
/// each wait at most `wait_ns` (see the module notes). Store failures are carried over
/// (the next step is tried all the same) and end up in the result.
pub fn close(store: &mut impl Store, frontend: &str, backend: &str, wait_ns: u64) -> Closing {
    let start = store.now_ns();
    let front = format!("{frontend}/state");
    let back = format!("{backend}/state");
    let _ = store.write(&front, XenbusState::Closing.as_str().as_bytes(), 0);
    // This wait only decides when to go on (at once after a detach: the toolstack wrote
    // Closing); netback reaches Closed only after the front end's Closed, waited for next.
    let _ = wait(store, &back, wait_ns, |s| s >= XenbusState::Closing);
    let front_closed = store.write(&front, XenbusState::Closed.as_str().as_bytes(), 0).is_ok();
    let backend = wait(store, &back, wait_ns, |s| s == XenbusState::Closed);
    Closing { front_closed, backend, took_ns: store.now_ns().saturating_sub(start) }
}

/// Reads the back end's state until `done` holds of it or the key disappears, pausing
/// between reads, at most `wait_ns`. A state that satisfies `done` but is not `Closed`
/// ends as `Stuck` with that state (only the first wait asks for one).
fn wait(store: &mut impl Store, back: &str, wait_ns: u64, done: impl Fn(XenbusState) -> bool) -> BackendEnd {
    let deadline = store.now_ns().saturating_add(wait_ns);
    let mut last = None;
    loop {
        match judge(store.read(back)) {
            Watched::Removed => return BackendEnd::Removed,
            Watched::Stays(s) | Watched::Closes(s) => {
                last = Some(s);
                if done(s) {
                    return if s == XenbusState::Closed { BackendEnd::Closed } else { BackendEnd::Stuck(last) };
                }
            }
            Watched::Ignored(_) => {}
        }
        if store.now_ns() > deadline {
            return BackendEnd::Stuck(last);
        }
        store.pause();
    }
}

/// A peer's value for a message: lossy text, at most 32 characters.
fn shown(v: &[u8]) -> String {
    String::from_utf8_lossy(v).chars().take(32).collect()
}
