//! Synchronous xenstore requests with a deadline, over a [`Client`]: what a driver needs
//! to read and write keys, and the policy for everything else that arrives meanwhile.
//!
//! [`Session::call`] sends one request and polls until its reply, notifying xenstored
//! when the client says so and relaxing when nothing arrived; a [`Waiter`] supplies the
//! time, the notification and the pause (the kernel spins on its clock, host tests run a
//! fake xenstored). The deadline is checked on every iteration, whatever arrives, so a
//! xenstored that keeps sending cannot hold a caller past it. A request that misses its
//! deadline is abandoned: its late reply is dropped by id, and the next request goes out
//! as usual. Watch events (the kernel sets no watches) and malformed or unexpected
//! messages are dropped and counted, never queued. A fatal error (xenstored's indexes or
//! framing broken) ends the session for good, and every later call says so.

use super::client::Client;
use super::reply::{Message, Reply};
use super::wire::Request;
use super::Error;
use crate::shared::SharedMem;
use alloc::string::String;
use alloc::vec::Vec;

/// What a blocking call needs from its environment.
pub trait Waiter {
    /// The current time, ns (monotonic).
    fn now_ns(&mut self) -> u64;
    /// Notifies xenstored's event channel: bytes moved in the rings.
    fn notify(&mut self);
    /// Nothing arrived: wait a little before polling again.
    fn relax(&mut self);
    /// A message that was not the reply awaited was dropped (for the log; it is counted
    /// in [`Counters`] as well).
    fn dropped(&mut self, _what: Dropped) {}
}

/// A message dropped while a request waited for its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// A watch event: no watch is registered.
    Event,
    /// The reply to an abandoned request.
    LateReply {
        /// Its request id.
        req_id: u32,
    },
    /// A message that failed its checks, or answered no request.
    Bad(Error),
}

/// What a session dropped or gave up, since it attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Watch events dropped.
    pub events: u64,
    /// Replies to abandoned requests dropped.
    pub late_replies: u64,
    /// Other messages dropped.
    pub bad_messages: u64,
    /// Requests abandoned at their deadline.
    pub timeouts: u64,
}

/// A reply, copied out of the client's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owned {
    /// READ: the value.
    Value(Vec<u8>),
    /// DIRECTORY: the child names.
    Entries(Vec<String>),
    /// Done.
    Done,
    /// TRANSACTION_START: the transaction's id.
    Transaction(u32),
}

impl Owned {
    fn from_reply(r: Reply<'_>) -> Self {
        match r {
            Reply::Value(v) => Owned::Value(v.to_vec()),
            Reply::Directory(d) => Owned::Entries(d.map(String::from).collect()),
            Reply::Done => Owned::Done,
            Reply::TransactionStarted(id) => Owned::Transaction(id),
        }
    }
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The request was refused before it was sent (a bad path, a payload too long),
    /// xenstored answered `XS_ERROR`, or its reply was malformed. The session carries on.
    Xs(Error),
    /// No reply by the deadline: the request was abandoned. The session carries on.
    Timeout,
    /// The connection is broken (this fatal error, now or earlier): no request will be
    /// answered any more.
    Broken(Error),
    /// The reply is not of the kind the request asks for (a bug in the caller).
    Unexpected,
}

/// What one poll produced, owned.
enum Step {
    Answer(Result<Owned, Error>),
    Drop(Dropped),
    Idle,
}

/// The guest's xenstore connection, one synchronous request at a time.
#[derive(Clone, Debug, Default)]
pub struct Session {
    client: Client,
    /// The last request abandoned, whose reply may still come.
    abandoned: Option<u32>,
    /// The fatal error that broke the session.
    broken: Option<Error>,
    counters: Counters,
}

impl Session {
    /// A session not yet attached to a page.
    pub const fn new() -> Self {
        Session {
            client: Client::new(),
            abandoned: None,
            broken: None,
            counters: Counters { events: 0, late_replies: 0, bad_messages: 0, timeouts: 0 },
        }
    }

    /// Attaches to the xenstore page (see [`Client::attach`]).
    pub fn attach(&mut self, mem: &impl SharedMem) -> Result<(), Error> {
        *self = Self::new();
        self.client.attach(mem)
    }

    /// What was dropped so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The fatal error that broke the session, if one did.
    pub fn broken(&self) -> Option<Error> {
        self.broken
    }

    fn fatal(&mut self, e: Error) -> CallError {
        let first = *self.broken.get_or_insert(e);
        CallError::Broken(first)
    }

    /// Sends `req` in transaction `tx` (0: none) and waits for its reply, at most
    /// `timeout_ns`.
    pub fn call(
        &mut self,
        mem: &impl SharedMem,
        req: &Request<'_>,
        tx: u32,
        timeout_ns: u64,
        w: &mut impl Waiter,
    ) -> Result<Owned, CallError> {
        if let Some(e) = self.broken {
            return Err(CallError::Broken(e));
        }
        let deadline = w.now_ns().saturating_add(timeout_ns);
        match self.client.send(mem, req, tx) {
            Ok(_) => {}
            Err(e) if e.is_fatal() => return Err(self.fatal(e)),
            Err(e) => return Err(CallError::Xs(e)),
        }
        w.notify();
        loop {
            let step = match self.client.poll(mem) {
                Err(e) => return Err(self.fatal(e)),
                Ok(polled) => {
                    if polled.notify {
                        w.notify();
                    }
                    let answered = polled.answered;
                    match polled.message {
                        None => Step::Idle,
                        Some(Ok(Message::Reply(r))) => Step::Answer(Ok(Owned::from_reply(r))),
                        Some(Ok(Message::Event(_))) => Step::Drop(Dropped::Event),
                        // A bad message that answered the request is its answer.
                        Some(Err(e)) if answered => Step::Answer(Err(e)),
                        Some(Err(Error::UnexpectedReply { req_id })) if Some(req_id) == self.abandoned => {
                            Step::Drop(Dropped::LateReply { req_id })
                        }
                        Some(Err(e)) => Step::Drop(Dropped::Bad(e)),
                    }
                }
            };
            let idle = matches!(step, Step::Idle);
            match step {
                Step::Answer(r) => return r.map_err(CallError::Xs),
                Step::Drop(what) => {
                    match what {
                        Dropped::Event => self.counters.events += 1,
                        Dropped::LateReply { .. } => self.counters.late_replies += 1,
                        Dropped::Bad(_) => self.counters.bad_messages += 1,
                    }
                    w.dropped(what);
                }
                Step::Idle => {}
            }
            // Every iteration, whatever arrived.
            if w.now_ns() > deadline {
                self.counters.timeouts += 1;
                return match self.client.abandon() {
                    Ok(id) => {
                        self.abandoned = id;
                        Err(CallError::Timeout)
                    }
                    Err(e) => Err(self.fatal(e)),
                };
            }
            if idle {
                w.relax();
            }
        }
    }

    /// Reads the value at `path`.
    pub fn read(
        &mut self,
        mem: &impl SharedMem,
        path: &str,
        timeout_ns: u64,
        w: &mut impl Waiter,
    ) -> Result<Vec<u8>, CallError> {
        match self.call(mem, &Request::Read(path), 0, timeout_ns, w)? {
            Owned::Value(v) => Ok(v),
            _ => Err(CallError::Unexpected),
        }
    }

    /// Writes `value` at `path` in transaction `tx` (0: none).
    pub fn write(
        &mut self,
        mem: &impl SharedMem,
        path: &str,
        value: &[u8],
        tx: u32,
        timeout_ns: u64,
        w: &mut impl Waiter,
    ) -> Result<(), CallError> {
        match self.call(mem, &Request::Write(path, value), tx, timeout_ns, w)? {
            Owned::Done => Ok(()),
            _ => Err(CallError::Unexpected),
        }
    }

    /// Starts a transaction; returns its id.
    pub fn transaction_start(
        &mut self,
        mem: &impl SharedMem,
        timeout_ns: u64,
        w: &mut impl Waiter,
    ) -> Result<u32, CallError> {
        match self.call(mem, &Request::TransactionStart, 0, timeout_ns, w)? {
            Owned::Transaction(id) => Ok(id),
            _ => Err(CallError::Unexpected),
        }
    }

    /// Ends transaction `tx`, committing it if `commit`. `Xs(Xs(XsErrno::Again))` means
    /// "conflict: start again".
    pub fn transaction_end(
        &mut self,
        mem: &impl SharedMem,
        tx: u32,
        commit: bool,
        timeout_ns: u64,
        w: &mut impl Waiter,
    ) -> Result<(), CallError> {
        match self.call(mem, &Request::TransactionEnd { commit }, tx, timeout_ns, w)? {
            Owned::Done => Ok(()),
            _ => Err(CallError::Unexpected),
        }
    }
}

#[cfg(test)]
mod tests;
