//! The xenstore protocol (`io/xs_wire.h`): how a guest reads and writes the shared
//! configuration tree, watches it, and groups changes in transactions.
//!
//! Requests and replies are framed messages (a 16-byte [`wire::Header`] and up to
//! [`wire::PAYLOAD_MAX`] bytes) streamed through two 1 KiB byte rings in one shared page.
//! The pieces, from the bottom up:
//! - [`wire`]: message types, the header, requests encoded into a caller's buffer.
//! - [`reply`]: a decoder that reassembles messages from ring bytes arriving in pieces,
//!   and the interpretation of a reply against the request it answers.
//! - [`ring`]: `struct xenstore_domain_interface` and the byte-ring writer/reader that
//!   validate xenstored's indexes.
//! - [`client`]: one request at a time over the ring, watch events on the side.
//! - [`session`]: synchronous requests with a deadline, watches; what is neither the
//!   awaited reply nor an event of a watch set is dropped and counted.
//! - [`watches`]: the watches set and their events, in a bounded queue.
//!
//! Everything xenstored sends is untrusted: a violation is an [`Error`], never a panic.
//! [`Error::is_fatal`] tells the driver whether to mark the connection broken (the
//! stream can no longer be framed) or just drop the message.

pub mod client;
pub mod reply;
pub mod ring;
pub mod session;
pub mod watches;
pub mod wire;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub use client::{Client, Polled};
pub use reply::{Decoder, DirEntries, Message, Reply, WatchEvent, XsErrno};
pub use ring::XsRing;
pub use session::{CallError, Owned, Session, Waiter};
pub use watches::Event;
pub use wire::{encode, Header, MsgType, Outstanding, Request};

/// Everything that can go wrong talking to xenstored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    // -- The caller's mistakes (nothing was sent).
    /// A path is empty, too long, contains NUL or a character xenstored refuses.
    InvalidPath,
    /// A watch token is empty or contains NUL.
    InvalidToken,
    /// The request's payload would exceed [`wire::PAYLOAD_MAX`].
    TooLong,
    /// The output buffer cannot hold the encoded request.
    BufferTooSmall,
    /// `TRANSACTION_START` inside a transaction, or `TRANSACTION_END` outside one.
    BadTransaction,
    /// A request is already outstanding.
    Busy,
    /// The session holds as many watches as it may ([`watches::WATCHES_MAX`]).
    TooManyWatches,
    // -- Fatal: the stream or the ring can no longer be trusted.
    /// xenstored's index is impossible (past the ring, or going backwards).
    RingIndex {
        /// Producer index.
        prod: u32,
        /// Consumer index.
        cons: u32,
    },
    /// A message header claims more than [`wire::PAYLOAD_MAX`] bytes.
    PayloadTooLong(u32),
    /// An earlier fatal error broke the connection.
    Broken,
    /// A request was abandoned before xenstored took all of its bytes: the request
    /// stream cannot be framed any more.
    Stalled,
    // -- One bad message (dropped; the connection carries on).
    /// A message type that is not in `xs_wire.h` (or was removed from it).
    UnknownType(u32),
    /// A reply when none was outstanding, or for a request id other than the outstanding one.
    UnexpectedReply {
        /// The reply's `req_id`.
        req_id: u32,
    },
    /// The reply's type is neither the request's nor `XS_ERROR`.
    TypeMismatch {
        /// Type of the outstanding request.
        expected: MsgType,
        /// Type of the reply.
        got: MsgType,
    },
    /// A string the message type requires to be NUL-terminated is not.
    MissingNul,
    /// The payload is malformed for its type (not UTF-8, empty names, not "OK", bad id).
    BadPayload,
    // -- xenstored refused the request.
    /// An `XS_ERROR` reply.
    Xs(XsErrno),
}

impl Error {
    /// True if the connection must be marked broken: the peer's indexes or framing can
    /// no longer be trusted, so no later byte can be interpreted.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::RingIndex { .. } | Error::PayloadTooLong(_) | Error::Broken | Error::Stalled)
    }
}
