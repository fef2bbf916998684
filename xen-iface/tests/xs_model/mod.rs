//! Random xenstore requests and replies for the fuzz targets of `fuzz_xenstore.rs`, with
//! what the wire codec must make of them written out from `io/xs_wire.h` rather than
//! taken from the crate: the expected encoding of a request, the rules a path must follow,
//! the reply a well-behaved xenstored sends, and what the client must hand out for it.
#![allow(dead_code)] // used by one test crate; kept apart to keep the targets short

use crate::fuzz::Rng;
use xen_iface::xenstore::wire::{ABS_PATH_MAX, HEADER_SIZE, PAYLOAD_MAX, REL_PATH_MAX};
use xen_iface::xenstore::{Error, Header, Message, MsgType, Reply, Request, XsErrno};

/// An owned [`Request`], so that a case can keep it across calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Req {
    /// `XS_READ`.
    Read(String),
    /// `XS_WRITE`.
    Write(String, Vec<u8>),
    /// `XS_DIRECTORY`.
    Directory(String),
    /// `XS_WATCH`: path, token.
    Watch(String, String),
    /// `XS_UNWATCH`: path, token.
    Unwatch(String, String),
    /// `XS_TRANSACTION_START`.
    TxStart,
    /// `XS_TRANSACTION_END`: commit?
    TxEnd(bool),
    /// `XS_RM`.
    Rm(String),
    /// `XS_MKDIR`.
    Mkdir(String),
}

/// Path pieces xenstored sees every day.
const SEGMENTS: &[&str] =
    &["device", "vif", "0", "1", "mac", "state", "backend", "local", "domain", "7", "a-b", "x_y", "@releaseDomain"];

/// A path: mostly well-formed, sometimes at or just past a length limit, sometimes with
/// characters xenstored refuses (space, dot, NUL, non-ASCII), sometimes empty.
pub fn path(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => String::new(),
        1 => {
            let abs = rng.coin();
            let max = if abs { ABS_PATH_MAX } else { REL_PATH_MAX };
            let n = max - 1 + rng.index(3);
            if abs {
                format!("/{}", "a".repeat(n - 1))
            } else {
                "b".repeat(n)
            }
        }
        2 => {
            let mut p = path_of_segments(rng);
            let at = rng.index(p.len() + 1);
            p.insert(at, *rng.pick(&[' ', '.', '\0', 'é', '\u{7f}', '\n', '*', '~']));
            p
        }
        _ => path_of_segments(rng),
    }
}

fn path_of_segments(rng: &mut Rng) -> String {
    let n = rng.range(1, 5) as usize;
    let segs: Vec<&str> = (0..n).map(|_| *rng.pick(SEGMENTS)).collect();
    let lead = if rng.coin() { "/" } else { "" };
    format!("{lead}{}", segs.join("/"))
}

/// A path xenstored accepts (`valid_chars` in xenstored_core.c, and the length limits).
pub fn path_ok(p: &str) -> bool {
    let max = if p.starts_with('/') { ABS_PATH_MAX } else { REL_PATH_MAX };
    !p.is_empty() && p.len() <= max && p.bytes().all(|c| c.is_ascii_alphanumeric() || b"-/_@".contains(&c))
}

/// A watch token: usually fine, sometimes empty or holding a NUL.
pub fn token(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => String::new(),
        1 => "a\0b".into(),
        2 => "tok én 1".into(),
        _ => format!("t{}", rng.below(1000)),
    }
}

impl Req {
    /// A random request (see [`path`] and [`token`] for the strings).
    pub fn random(rng: &mut Rng) -> Req {
        match rng.below(9) {
            0 => Req::Read(path(rng)),
            1 => {
                let p = path(rng);
                // Sometimes right at the payload limit: PAYLOAD_MAX - len(path\0) +- 1.
                let n =
                    if rng.one_in(4) { (PAYLOAD_MAX + rng.index(3)).saturating_sub(p.len() + 2) } else { rng.len(200) };
                Req::Write(p, rng.bytes(n))
            }
            2 => Req::Directory(path(rng)),
            3 => Req::Watch(path(rng), token(rng)),
            4 => Req::Unwatch(path(rng), token(rng)),
            5 => Req::TxStart,
            6 => Req::TxEnd(rng.coin()),
            7 => Req::Rm(path(rng)),
            _ => Req::Mkdir(path(rng)),
        }
    }

    /// The borrowed form the crate takes.
    pub fn request(&self) -> Request<'_> {
        match self {
            Req::Read(p) => Request::Read(p),
            Req::Write(p, v) => Request::Write(p, v),
            Req::Directory(p) => Request::Directory(p),
            Req::Watch(path, token) => Request::Watch { path, token },
            Req::Unwatch(path, token) => Request::Unwatch { path, token },
            Req::TxStart => Request::TransactionStart,
            Req::TxEnd(commit) => Request::TransactionEnd { commit: *commit },
            Req::Rm(p) => Request::Rm(p),
            Req::Mkdir(p) => Request::Mkdir(p),
        }
    }

    /// The message type `xs_wire.h` gives this request.
    pub fn ty(&self) -> MsgType {
        match self {
            Req::Read(_) => MsgType::Read,
            Req::Write(..) => MsgType::Write,
            Req::Directory(_) => MsgType::Directory,
            Req::Watch(..) => MsgType::Watch,
            Req::Unwatch(..) => MsgType::Unwatch,
            Req::TxStart => MsgType::TransactionStart,
            Req::TxEnd(_) => MsgType::TransactionEnd,
            Req::Rm(_) => MsgType::Rm,
            Req::Mkdir(_) => MsgType::Mkdir,
        }
    }

    /// The payload on the wire (see `wire.rs`'s module notes).
    pub fn payload(&self) -> Vec<u8> {
        let cat = |parts: &[&[u8]]| parts.concat();
        match self {
            Req::Read(p) | Req::Directory(p) | Req::Rm(p) | Req::Mkdir(p) => cat(&[p.as_bytes(), b"\0"]),
            Req::Write(p, v) => cat(&[p.as_bytes(), b"\0", v]),
            Req::Watch(p, t) | Req::Unwatch(p, t) => cat(&[p.as_bytes(), b"\0", t.as_bytes(), b"\0"]),
            Req::TxStart => b"\0".to_vec(),
            Req::TxEnd(commit) => if *commit { b"T\0" } else { b"F\0" }.to_vec(),
        }
    }

    /// The whole message with these ids.
    pub fn message(&self, req_id: u32, tx_id: u32) -> Vec<u8> {
        let p = self.payload();
        let h = Header { ty: self.ty() as u32, req_id, tx_id, len: p.len() as u32 };
        [&h.to_bytes()[..], &p].concat()
    }

    /// What `encode` must return for this request in transaction `tx_id` with a
    /// `cap`-byte buffer: the caller's mistakes in the order the codec checks them, else
    /// the message's length.
    pub fn expect(&self, tx_id: u32, cap: usize) -> Result<usize, Error> {
        let path = |p: &str| if path_ok(p) { Ok(()) } else { Err(Error::InvalidPath) };
        match self {
            Req::Read(p) | Req::Write(p, _) | Req::Directory(p) | Req::Rm(p) | Req::Mkdir(p) => path(p)?,
            Req::Watch(p, t) | Req::Unwatch(p, t) => {
                path(p)?;
                if t.is_empty() || t.contains('\0') {
                    return Err(Error::InvalidToken);
                }
            }
            Req::TxStart if tx_id != 0 => return Err(Error::BadTransaction),
            Req::TxEnd(_) if tx_id == 0 => return Err(Error::BadTransaction),
            Req::TxStart | Req::TxEnd(_) => {}
        }
        let total = HEADER_SIZE + self.payload().len();
        if total - HEADER_SIZE > PAYLOAD_MAX {
            Err(Error::TooLong)
        } else if total > cap {
            Err(Error::BufferTooSmall)
        } else {
            Ok(total)
        }
    }
}

/// A message as the client hands it out, owned so that a case can collect them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// `Reply::Value`.
    Value(Vec<u8>),
    /// `Reply::Directory`.
    Dir(Vec<String>),
    /// `Reply::Done`.
    Done,
    /// `Reply::TransactionStarted`.
    Tx(u32),
    /// `Message::Event`: path, token.
    Event(String, String),
    /// An error that cost one message.
    Err(Error),
}

/// The owned form of one interpreted message.
pub fn own(m: Result<Message<'_>, Error>) -> Got {
    match m {
        Ok(Message::Reply(Reply::Value(v))) => Got::Value(v.to_vec()),
        Ok(Message::Reply(Reply::Directory(d))) => Got::Dir(d.map(String::from).collect()),
        Ok(Message::Reply(Reply::Done)) => Got::Done,
        Ok(Message::Reply(Reply::TransactionStarted(t))) => Got::Tx(t),
        Ok(Message::Event(e)) => Got::Event(e.path.into(), e.token.into()),
        Err(e) => Got::Err(e),
    }
}

/// The error names of `xsd_errors[]`, and one that is not there.
pub const ERRNO_NAMES: &[&str] = &[
    "EINVAL",
    "EACCES",
    "EEXIST",
    "EISDIR",
    "ENOENT",
    "ENOMEM",
    "ENOSPC",
    "EIO",
    "ENOTEMPTY",
    "ENOSYS",
    "EROFS",
    "EBUSY",
    "EAGAIN",
    "EISCONN",
    "E2BIG",
    "EPERM",
    "EWHATEVER",
];

/// A reply a well-behaved xenstored could send to `req`: its type, payload, and what the
/// client must make of it.
pub fn honest_reply(rng: &mut Rng, req: &Req) -> (MsgType, Vec<u8>, Got) {
    if rng.one_in(6) {
        let name = *rng.pick(ERRNO_NAMES);
        return (
            MsgType::Error,
            format!("{name}\0").into_bytes(),
            Got::Err(Error::Xs(XsErrno::from_name(name.as_bytes()))),
        );
    }
    match req {
        Req::Read(_) => {
            let n = if rng.one_in(16) { rng.index(PAYLOAD_MAX + 1) } else { rng.len(64) };
            let v = rng.bytes(n);
            (MsgType::Read, v.clone(), Got::Value(v))
        }
        Req::Directory(_) => {
            let names: Vec<String> = (0..rng.len(8)).map(|_| rng.pick(SEGMENTS).to_string()).collect();
            let payload = names.iter().flat_map(|n| n.bytes().chain([0])).collect();
            (MsgType::Directory, payload, Got::Dir(names))
        }
        Req::TxStart => {
            let id = rng.range(1, u32::MAX as u64) as u32;
            (MsgType::TransactionStart, format!("{id}\0").into_bytes(), Got::Tx(id))
        }
        other => (other.ty(), b"OK\0".to_vec(), Got::Done),
    }
}

/// A watch event a well-behaved xenstored could send, with what the client must make of it.
pub fn honest_event(rng: &mut Rng) -> (Vec<u8>, Got) {
    let mut p = path_of_segments(rng);
    if rng.one_in(50) {
        p = format!("/{}", "e".repeat(ABS_PATH_MAX - 1));
    }
    let t = format!("w{}", rng.below(100));
    (format!("{p}\0{t}\0").into_bytes(), Got::Event(p, t))
}

/// Header and payload as one message.
pub fn frame(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let h = Header { ty, req_id, tx_id, len: payload.len() as u32 };
    [&h.to_bytes()[..], payload].concat()
}
