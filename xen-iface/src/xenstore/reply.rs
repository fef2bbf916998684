//! What xenstored sends back: a [`Decoder`] that reassembles messages from ring bytes
//! arriving in pieces, and [`interpret`], which checks one message against the request
//! it should answer and turns it into a [`Message`].
//!
//! The decoder only frames: it holds one message (header and payload) in a fixed
//! [`MSG_MAX`]-byte buffer and refuses a header whose length exceeds
//! [`PAYLOAD_MAX`] (fatal: the stream cannot be framed after it). Everything else, the
//! type, the request id, the NUL terminators, is checked per message by [`interpret`],
//! whose errors only cost that message.

use super::wire::{Header, MsgType, Outstanding, ABS_PATH_MAX, HEADER_SIZE, MSG_MAX, PAYLOAD_MAX};
use super::Error;

/// Reassembles one message at a time from bytes in arrival order.
///
/// Fill it with [`Decoder::spare`] + [`Decoder::advance`] (or [`Decoder::push`]) until
/// [`Decoder::take`] returns the message; the next fill starts the next message.
#[derive(Clone, Debug)]
pub struct Decoder {
    buf: [u8; MSG_MAX],
    /// Bytes of the current message received so far.
    filled: usize,
    /// Bytes the current message has in all: the header until it is complete, then
    /// header + payload.
    want: usize,
    /// The complete message was handed out; the next fill starts afresh.
    taken: bool,
    /// A header claimed this many payload bytes: framing is lost for good.
    broken: Option<u32>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// An empty decoder, waiting for a header.
    pub const fn new() -> Self {
        Decoder { buf: [0; MSG_MAX], filled: 0, want: HEADER_SIZE, taken: false, broken: None }
    }

    /// Forgets any partial message and a broken state (for a reconnected ring).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    fn restart_if_taken(&mut self) {
        if self.taken {
            self.filled = 0;
            self.want = HEADER_SIZE;
            self.taken = false;
        }
    }

    /// True once a whole message is buffered and not yet taken.
    pub fn is_complete(&self) -> bool {
        !self.taken && self.broken.is_none() && self.filled == self.want && self.filled >= HEADER_SIZE
    }

    /// The buffer space the next bytes of the stream go to: the rest of the header, or
    /// once that is in, the rest of the payload. Empty when a message is complete (take
    /// it first) or the decoder is broken.
    pub fn spare(&mut self) -> &mut [u8] {
        self.restart_if_taken();
        if self.broken.is_some() {
            return &mut [];
        }
        self.buf.get_mut(self.filled..self.want).unwrap_or(&mut [])
    }

    /// Records that the first `n` bytes of [`Decoder::spare`] were filled (more than it
    /// offered is clamped). Parses the header when it completes.
    pub fn advance(&mut self, n: usize) -> Result<(), Error> {
        self.restart_if_taken();
        if let Some(len) = self.broken {
            return Err(Error::PayloadTooLong(len));
        }
        let was = self.filled;
        self.filled = self.filled.saturating_add(n).min(self.want);
        if was < HEADER_SIZE && self.filled == HEADER_SIZE {
            let len = self.header().len;
            if len as usize > PAYLOAD_MAX {
                self.broken = Some(len);
                return Err(Error::PayloadTooLong(len));
            }
            self.want = HEADER_SIZE + len as usize;
        }
        Ok(())
    }

    /// Copies as much of `bytes` as the current message still needs; returns how many
    /// were taken (fewer than offered once the message is complete).
    pub fn push(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        loop {
            let rest = bytes.get(used..).unwrap_or(&[]);
            let dst = self.spare();
            let n = dst.len().min(rest.len());
            if n == 0 {
                // Complete, broken, or out of input: `advance` reports a broken state.
                self.advance(0)?;
                return Ok(used);
            }
            for (d, s) in dst.iter_mut().zip(rest) {
                *d = *s;
            }
            used += n;
            self.advance(n)?;
        }
    }

    fn header(&self) -> Header {
        let mut h = [0u8; HEADER_SIZE];
        for (d, s) in h.iter_mut().zip(self.buf.iter()) {
            *d = *s;
        }
        Header::from_bytes(&h)
    }

    /// Hands out the complete message, if there is one; the next fill starts the next
    /// message.
    pub fn take(&mut self) -> Option<(Header, &[u8])> {
        if !self.is_complete() {
            return None;
        }
        self.taken = true;
        Some((self.header(), self.buf.get(HEADER_SIZE..self.want).unwrap_or(&[])))
    }
}

/// The error names of `xsd_errors[]` in `xs_wire.h`, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsErrno {
    /// `EINVAL`
    InvalidArgument,
    /// `EACCES`
    AccessDenied,
    /// `EEXIST`
    Exists,
    /// `EISDIR`
    IsDirectory,
    /// `ENOENT`
    NotFound,
    /// `ENOMEM`
    OutOfMemory,
    /// `ENOSPC`
    NoSpace,
    /// `EIO`
    Io,
    /// `ENOTEMPTY`
    NotEmpty,
    /// `ENOSYS`
    NotImplemented,
    /// `EROFS`
    ReadOnly,
    /// `EBUSY`
    Busy,
    /// `EAGAIN`: a transaction conflicted; redo it.
    Again,
    /// `EISCONN`
    IsConnected,
    /// `E2BIG`
    TooBig,
    /// `EPERM`
    NotPermitted,
    /// A name not in the header's list (still a failed request).
    Unknown,
}

const ERRNO_NAMES: [(&str, XsErrno); 16] = [
    ("EINVAL", XsErrno::InvalidArgument),
    ("EACCES", XsErrno::AccessDenied),
    ("EEXIST", XsErrno::Exists),
    ("EISDIR", XsErrno::IsDirectory),
    ("ENOENT", XsErrno::NotFound),
    ("ENOMEM", XsErrno::OutOfMemory),
    ("ENOSPC", XsErrno::NoSpace),
    ("EIO", XsErrno::Io),
    ("ENOTEMPTY", XsErrno::NotEmpty),
    ("ENOSYS", XsErrno::NotImplemented),
    ("EROFS", XsErrno::ReadOnly),
    ("EBUSY", XsErrno::Busy),
    ("EAGAIN", XsErrno::Again),
    ("EISCONN", XsErrno::IsConnected),
    ("E2BIG", XsErrno::TooBig),
    ("EPERM", XsErrno::NotPermitted),
];

impl XsErrno {
    /// The errno named `name` (without its NUL); `Unknown` for any other name.
    pub fn from_name(name: &[u8]) -> Self {
        ERRNO_NAMES.iter().find(|(n, _)| n.as_bytes() == name).map_or(XsErrno::Unknown, |&(_, e)| e)
    }

    /// The name on the wire (`"UNKNOWN"` for [`XsErrno::Unknown`]).
    pub fn name(&self) -> &'static str {
        ERRNO_NAMES.iter().find(|(_, e)| e == self).map_or("UNKNOWN", |&(n, _)| n)
    }
}

/// The names in a DIRECTORY reply, in xenstored's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntries<'a> {
    rest: &'a str,
}

impl<'a> Iterator for DirEntries<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let (name, rest) = self.rest.split_once('\0')?;
        self.rest = rest;
        Some(name)
    }
}

/// A successful reply to the outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// READ: the value (raw bytes, no terminator).
    Value(&'a [u8]),
    /// DIRECTORY: the child names.
    Directory(DirEntries<'a>),
    /// WRITE, MKDIR, RM, WATCH, UNWATCH, TRANSACTION_END: done.
    Done,
    /// TRANSACTION_START: the new transaction's id.
    TransactionStarted(u32),
}

/// A watch fired: `XS_WATCH_EVENT`, unsolicited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchEvent<'a> {
    /// The path that changed.
    pub path: &'a str,
    /// The token the watch was registered with.
    pub token: &'a str,
}

/// One message from xenstored, interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// The reply to the outstanding request.
    Reply(Reply<'a>),
    /// A watch event (arrives at any time, also between a request and its reply).
    Event(WatchEvent<'a>),
}

/// `payload` as UTF-8 text that ends in a NUL; returns the text before that NUL.
fn terminated(payload: &[u8]) -> Result<&str, Error> {
    let Some((&0, body)) = payload.split_last() else {
        return Err(Error::MissingNul);
    };
    utf8(body)
}

fn utf8(b: &[u8]) -> Result<&str, Error> {
    core::str::from_utf8(b).map_err(|_| Error::BadPayload)
}

/// Interprets one message. Watch events are accepted at any time (whatever their
/// `req_id`: xenstored sends 0; the path must be non-empty and within
/// [`ABS_PATH_MAX`]); anything else must answer `outstanding`: the same
/// `req_id`, and the request's type or `XS_ERROR`. Payloads are checked for the
/// terminators and shape their type requires.
pub fn interpret<'a>(hdr: &Header, payload: &'a [u8], outstanding: Option<Outstanding>) -> Result<Message<'a>, Error> {
    let ty = MsgType::from_u32(hdr.ty).ok_or(Error::UnknownType(hdr.ty))?;
    if ty == MsgType::WatchEvent {
        let mut parts = terminated(payload)?.split('\0');
        return match (parts.next(), parts.next()) {
            (Some(path), Some(token)) if !path.is_empty() && path.len() <= ABS_PATH_MAX => {
                Ok(Message::Event(WatchEvent { path, token }))
            }
            (Some(_), Some(_)) => Err(Error::BadPayload),
            _ => Err(Error::MissingNul),
        };
    }
    let expected = match outstanding {
        Some(o) if o.req_id == hdr.req_id => o.ty,
        _ => return Err(Error::UnexpectedReply { req_id: hdr.req_id }),
    };
    if ty == MsgType::Error {
        return Err(Error::Xs(XsErrno::from_name(terminated(payload)?.as_bytes())));
    }
    if ty != expected {
        return Err(Error::TypeMismatch { expected, got: ty });
    }
    let reply = match ty {
        MsgType::Read => Reply::Value(payload),
        MsgType::Directory => {
            // Each name ends in a NUL; `rest` keeps the terminators for the iterator.
            let rest = if payload.is_empty() { "" } else { terminated(payload).and_then(|_| utf8(payload))? };
            let entries = DirEntries { rest };
            if entries.clone().any(str::is_empty) {
                return Err(Error::BadPayload);
            }
            Reply::Directory(entries)
        }
        MsgType::TransactionStart => {
            let id = terminated(payload)?;
            let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
            match id.parse::<u32>() {
                Ok(id) if digits && id != 0 => Reply::TransactionStarted(id),
                _ => return Err(Error::BadPayload),
            }
        }
        _ => {
            if terminated(payload)? != "OK" {
                return Err(Error::BadPayload);
            }
            Reply::Done
        }
    };
    Ok(Message::Reply(reply))
}
