//! Synchronous xenstore requests with a deadline, over a [`Client`]: what a driver needs
//! to read and write keys and watch them, and the policy for everything else that
//! arrives meanwhile.
//!
//! [`Session::call`] sends one request and polls until its reply, notifying xenstored
//! when the client says so and relaxing when nothing arrived; a [`Waiter`] supplies the
//! time, the notification and the pause (the kernel spins on its clock, host tests run a
//! fake xenstored). The deadline is checked on every iteration, whatever arrives, so a
//! xenstored that keeps sending cannot hold a caller past it. A request that misses its
//! deadline is abandoned: its late reply is dropped by id, and the next request goes out
//! as usual. A fatal error (xenstored's indexes or framing broken) ends the session for
//! good, and every later call says so.
//!
//! Watches ([`Session::watch`], [`Session::unwatch`]): an event for a watch of this
//! session is kept in a bounded queue ([`super::watches`]) whenever it arrives, during a
//! call or in [`Session::drain`], which reads what xenstored sent with no request
//! outstanding (the driver calls it when xenstored's event channel fired). Events for
//! no watch of ours, malformed events, events beyond the queue's room, and every other
//! message that is not the awaited reply are dropped and counted, never queued.

use super::client::Client;
use super::reply::{Message, Reply};
use super::watches::{Event, Offered, Watches};
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
    /// A watch event for a token no watch of this session has.
    Event,
    /// A watch event of ours, with the queue full.
    Overflow,
    /// A watch event that failed its checks.
    BadEvent(Error),
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
    /// Watch events for no watch of ours dropped.
    pub events: u64,
    /// Watch events of ours queued.
    pub events_queued: u64,
    /// Watch events of ours dropped because the queue was full.
    pub events_overflowed: u64,
    /// Malformed watch events dropped.
    pub bad_events: u64,
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
    /// An event was queued, or a message dropped.
    Handled,
    Idle,
}

/// Messages [`Session::drain`] reads at most per call (a xenstored that keeps sending
/// cannot hold the caller).
pub const DRAIN_MAX: usize = 64;

/// The guest's xenstore connection, one synchronous request at a time.
#[derive(Clone, Debug, Default)]
pub struct Session {
    client: Client,
    /// The last request abandoned, whose reply may still come.
    abandoned: Option<u32>,
    /// The fatal error that broke the session.
    broken: Option<Error>,
    counters: Counters,
    watches: Watches,
}

impl Session {
    /// A session not yet attached to a page.
    pub const fn new() -> Self {
        Session {
            client: Client::new(),
            abandoned: None,
            broken: None,
            counters: Counters {
                events: 0,
                events_queued: 0,
                events_overflowed: 0,
                bad_events: 0,
                late_replies: 0,
                bad_messages: 0,
                timeouts: 0,
            },
            watches: Watches::new(),
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
            let step = self.poll_once(mem, w)?;
            if let Step::Answer(r) = step {
                return r.map_err(CallError::Xs);
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
            if matches!(step, Step::Idle) {
                w.relax();
            }
        }
    }

    /// Polls the client once: a reply that answers the request, an event queued, a
    /// message dropped (and counted), or nothing.
    fn poll_once(&mut self, mem: &impl SharedMem, w: &mut impl Waiter) -> Result<Step, CallError> {
        let dropped = match self.client.poll(mem) {
            Err(e) => return Err(self.fatal(e)),
            Ok(polled) => {
                if polled.notify {
                    w.notify();
                }
                let (answered, event) = (polled.answered, polled.event);
                match polled.message {
                    None => return Ok(Step::Idle),
                    Some(Ok(Message::Reply(r))) => return Ok(Step::Answer(Ok(Owned::from_reply(r)))),
                    Some(Ok(Message::Event(e))) => match self.watches.offer(e.path, e.token) {
                        Offered::Queued => {
                            self.counters.events_queued += 1;
                            return Ok(Step::Handled);
                        }
                        Offered::Coalesced => return Ok(Step::Handled),
                        Offered::Overflow => Dropped::Overflow,
                        Offered::Unwatched => Dropped::Event,
                    },
                    // A bad message that answered the request is its answer.
                    Some(Err(e)) if answered => return Ok(Step::Answer(Err(e))),
                    Some(Err(e)) if event => Dropped::BadEvent(e),
                    Some(Err(Error::UnexpectedReply { req_id })) if Some(req_id) == self.abandoned => {
                        Dropped::LateReply { req_id }
                    }
                    Some(Err(e)) => Dropped::Bad(e),
                }
            }
        };
        let counter = match dropped {
            Dropped::Event => &mut self.counters.events,
            Dropped::Overflow => &mut self.counters.events_overflowed,
            Dropped::BadEvent(_) => &mut self.counters.bad_events,
            Dropped::LateReply { .. } => &mut self.counters.late_replies,
            Dropped::Bad(_) => &mut self.counters.bad_messages,
        };
        *counter += 1;
        w.dropped(dropped);
        Ok(Step::Handled)
    }

    /// Reads what xenstored sent while no request waits (its event channel fired): queues
    /// the events of our watches, drops the rest; at most [`DRAIN_MAX`] messages. Returns
    /// the events queued now (see [`Session::take_event`]).
    pub fn drain(&mut self, mem: &impl SharedMem, w: &mut impl Waiter) -> Result<usize, CallError> {
        if let Some(e) = self.broken {
            return Err(CallError::Broken(e));
        }
        let before = self.counters.events_queued;
        for _ in 0..DRAIN_MAX {
            match self.poll_once(mem, w)? {
                Step::Idle => break,
                // No request is outstanding, so nothing answers one.
                Step::Answer(_) | Step::Handled => {}
            }
        }
        Ok((self.counters.events_queued - before) as usize)
    }

    /// Sets a watch on `path` (and everything below it) whose events carry `token`.
    /// xenstored fires it once at once; that event is queued like the later ones.
    pub fn watch(
        &mut self,
        mem: &impl SharedMem,
        path: &str,
        token: &str,
        timeout_ns: u64,
        w: &mut impl Waiter,
    ) -> Result<(), CallError> {
        let was_set = self.watches.is_set(token);
        if !self.watches.add(token) {
            return Err(CallError::Xs(Error::TooManyWatches));
        }
        match self.call(mem, &Request::Watch { path, token }, 0, timeout_ns, w) {
            Ok(Owned::Done) => Ok(()),
            other => {
                if !was_set {
                    self.watches.remove(token);
                }
                Err(other.err().unwrap_or(CallError::Unexpected))
            }
        }
    }

    /// Removes the watch on `path` with `token`, and drops its queued events (whatever
    /// xenstored answers: this session keeps no more of them).
    pub fn unwatch(
        &mut self,
        mem: &impl SharedMem,
        path: &str,
        token: &str,
        timeout_ns: u64,
        w: &mut impl Waiter,
    ) -> Result<(), CallError> {
        let r = self.call(mem, &Request::Unwatch { path, token }, 0, timeout_ns, w);
        self.watches.remove(token);
        match r? {
            Owned::Done => Ok(()),
            _ => Err(CallError::Unexpected),
        }
    }

    /// Takes the oldest queued event.
    pub fn take_event(&mut self) -> Option<Event> {
        self.watches.take()
    }

    /// Takes every queued event of the watch `token`; returns how many there were.
    pub fn take_events_for(&mut self, token: &str) -> usize {
        self.watches.take_for(token)
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
