//! A xenstore client over the shared page: one request outstanding at a time, watch
//! events delivered whenever they arrive.
//!
//! [`Client::send`] encodes a request into the client's own buffer and writes what fits
//! into the ring; [`Client::poll`] writes the rest, drains replies into the
//! [`Decoder`] and interprets at most one message per call. The driver notifies
//! xenstored's event channel when a call says so, and calls `poll` again until it
//! returns no message (xenstored does not notify again for bytes already in the ring).
//! A fatal error marks the client broken; every later call then fails with
//! [`Error::Broken`]. A request whose reply does not come is given up with
//! [`Client::abandon`]; [`super::session`] does that at its deadline.

use super::reply::{interpret, Decoder, Message};
use super::ring::XsRing;
use super::wire::{encode, MsgType, Outstanding, Request, MSG_MAX};
use super::Error;
use crate::shared::SharedMem;

/// What one [`Client::poll`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polled<'a> {
    /// Bytes moved in either ring: notify xenstored's event channel.
    pub notify: bool,
    /// The message interpreted in this call, if one was complete: a reply to the
    /// outstanding request, a watch event, or the error that cost that message
    /// (never fatal; the client carries on).
    pub message: Option<Result<Message<'a>, Error>>,
    /// The message answered the outstanding request (a reply, or an error in its place):
    /// nothing is outstanding any more.
    pub answered: bool,
    /// The message was an `XS_WATCH_EVENT`, well-formed or not (a malformed one is an
    /// event lost, not a bad reply).
    pub event: bool,
}

/// The guest's xenstore connection (about 12 KiB: keep it in a static or a box).
#[derive(Clone, Debug)]
pub struct Client {
    ring: XsRing,
    dec: Decoder,
    /// Request bytes not yet in the ring: the current request, after the rest of an
    /// earlier one that xenstored answered before taking all of it.
    out: [u8; 2 * MSG_MAX],
    out_len: usize,
    out_sent: usize,
    next_req_id: u32,
    outstanding: Option<Outstanding>,
    broken: bool,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client not yet attached to a page.
    pub const fn new() -> Self {
        Client {
            ring: XsRing::new(),
            dec: Decoder::new(),
            out: [0; 2 * MSG_MAX],
            out_len: 0,
            out_sent: 0,
            next_req_id: 1,
            outstanding: None,
            broken: false,
        }
    }

    /// Attaches to the xenstore page (see [`XsRing::attach`]), forgetting any earlier state.
    pub fn attach(&mut self, mem: &impl SharedMem) -> Result<(), Error> {
        let ring = XsRing::attach(mem)?;
        *self = Self::new();
        self.ring = ring;
        Ok(())
    }

    /// True after a fatal error.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The request awaiting its reply, if any.
    pub fn outstanding(&self) -> Option<Outstanding> {
        self.outstanding
    }

    fn fail(&mut self, e: Error) -> Error {
        if e.is_fatal() {
            self.broken = true;
        }
        e
    }

    /// Sends `req` in transaction `tx_id` (0: none); returns its `req_id`. Notify
    /// xenstored afterwards; whatever did not fit in the ring goes out in later polls.
    /// If xenstored answered the previous request before taking all of it, the rest of
    /// that request goes first, so the stream stays framed.
    pub fn send(&mut self, mem: &impl SharedMem, req: &Request<'_>, tx_id: u32) -> Result<u32, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        if self.outstanding.is_some() {
            return Err(Error::Busy);
        }
        let req_id = self.next_req_id;
        let rest = self.out_len.saturating_sub(self.out_sent);
        if rest > MSG_MAX {
            // Early answers to two requests while xenstored took the bytes of neither.
            return Err(self.fail(Error::Stalled));
        }
        self.out.copy_within(self.out_sent..self.out_len.max(self.out_sent), 0);
        (self.out_sent, self.out_len) = (0, rest);
        let room = self.out.get_mut(rest..rest + MSG_MAX).ok_or(Error::BufferTooSmall)?;
        self.out_len = rest + encode(req, req_id, tx_id, room)?;
        self.next_req_id = req_id.wrapping_add(1).max(1);
        self.outstanding = Some(Outstanding { req_id, ty: req.msg_type() });
        self.flush(mem).map_err(|e| self.fail(e))?;
        Ok(req_id)
    }

    /// Writes what is left of the current request; returns the bytes written. Checks
    /// xenstored's `req_cons` even when nothing is left.
    fn flush(&mut self, mem: &impl SharedMem) -> Result<usize, Error> {
        let rest = self.out.get(self.out_sent..self.out_len).unwrap_or(&[]);
        let n = self.ring.write(mem, rest)?;
        self.out_sent += n;
        Ok(n)
    }

    /// Gives up waiting for the outstanding request's reply (its deadline passed) and
    /// returns its id: a late reply then answers nothing and comes out of [`Client::poll`]
    /// as [`Error::UnexpectedReply`] with that id, and the next request can be sent. If
    /// part of the request never went into the ring (xenstored stopped taking bytes),
    /// the request stream can no longer be framed: the client is broken
    /// ([`Error::Stalled`]).
    pub fn abandon(&mut self) -> Result<Option<u32>, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        let Some(o) = self.outstanding.take() else { return Ok(None) };
        if self.out_sent < self.out_len {
            return Err(self.fail(Error::Stalled));
        }
        Ok(Some(o.req_id))
    }

    /// Moves bytes both ways and interprets at most one complete message. `Err` only
    /// for fatal errors.
    pub fn poll(&mut self, mem: &impl SharedMem) -> Result<Polled<'_>, Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        let wrote = self.flush(mem).map_err(|e| self.fail(e))?;
        let read = self.ring.read(mem, &mut self.dec).map_err(|e| self.fail(e))?;
        let notify = wrote > 0 || read > 0;
        let outstanding = self.outstanding;
        let Some((hdr, payload)) = self.dec.take() else {
            return Ok(Polled { notify, message: None, answered: false, event: false });
        };
        let result = interpret(&hdr, payload, outstanding);
        let event = hdr.ty == MsgType::WatchEvent as u32;
        let answered = matches!(outstanding, Some(o) if o.req_id == hdr.req_id) && !event;
        if answered {
            // Answered, well-formed or not: a bad reply is still the reply.
            self.outstanding = None;
        }
        Ok(Polled { notify, message: Some(result), answered, event })
    }
}
