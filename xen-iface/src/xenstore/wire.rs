//! The xenstore wire format (`io/xs_wire.h`): message types, `struct xsd_sockmsg` (the
//! 16-byte header every message starts with), and the requests a guest sends, encoded
//! into a buffer the caller provides.
//!
//! Payloads are NUL-terminated strings: `path\0` for READ, DIRECTORY, RM and MKDIR;
//! `path\0value` for WRITE (the value is raw bytes, not terminated); `path\0token\0` for
//! WATCH and UNWATCH; `\0` for TRANSACTION_START; `T\0` or `F\0` (commit or abort) for
//! TRANSACTION_END. The header's `tx_id` names the transaction (0: none).

use super::Error;
use core::mem::size_of;

/// `XENSTORE_PAYLOAD_MAX`: most payload bytes in one message.
pub const PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: longest absolute path (without its NUL).
pub const ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: longest relative path (without its NUL).
pub const REL_PATH_MAX: usize = 2048;
/// Bytes of `struct xsd_sockmsg`.
pub const HEADER_SIZE: usize = 16;
/// Largest message: header and payload.
pub const MSG_MAX: usize = HEADER_SIZE + PAYLOAD_MAX;
/// `XS_TYPE_COUNT`: one past the last valid type.
pub const TYPE_COUNT: u32 = 23;
/// `XS_INVALID`: guaranteed never to be a valid type.
pub const TYPE_INVALID: u32 = 0xffff;

/// Offset of `xsd_sockmsg.type`.
pub const HDR_TYPE: usize = 0;
/// Offset of `xsd_sockmsg.req_id`.
pub const HDR_REQ_ID: usize = 4;
/// Offset of `xsd_sockmsg.tx_id`.
pub const HDR_TX_ID: usize = 8;
/// Offset of `xsd_sockmsg.len`.
pub const HDR_LEN: usize = 12;

/// `enum xsd_sockmsg_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MsgType {
    /// `XS_CONTROL` (also `XS_DEBUG`).
    Control = 0,
    /// `XS_DIRECTORY`: list a node's children.
    Directory = 1,
    /// `XS_READ`: read a node's value.
    Read = 2,
    /// `XS_GET_PERMS`.
    GetPerms = 3,
    /// `XS_WATCH`: register a watch.
    Watch = 4,
    /// `XS_UNWATCH`: remove a watch.
    Unwatch = 5,
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6,
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7,
    /// `XS_INTRODUCE` (toolstack only).
    Introduce = 8,
    /// `XS_RELEASE` (toolstack only).
    Release = 9,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10,
    /// `XS_WRITE`: write a node's value.
    Write = 11,
    /// `XS_MKDIR`: create a node.
    Mkdir = 12,
    /// `XS_RM`: remove a node and its children.
    Rm = 13,
    /// `XS_SET_PERMS`.
    SetPerms = 14,
    /// `XS_WATCH_EVENT`: a watch fired (unsolicited).
    WatchEvent = 15,
    /// `XS_ERROR`: the reply to a failed request.
    Error = 16,
    /// `XS_IS_DOMAIN_INTRODUCED`.
    IsDomainIntroduced = 17,
    /// `XS_RESUME`.
    Resume = 18,
    /// `XS_SET_TARGET`.
    SetTarget = 19,
    /// `XS_RESET_WATCHES` (20, `XS_RESTRICT`, was removed).
    ResetWatches = 21,
    /// `XS_DIRECTORY_PART`.
    DirectoryPart = 22,
}

impl MsgType {
    /// The type with wire value `v`, if `xs_wire.h` defines one.
    pub fn from_u32(v: u32) -> Option<Self> {
        use MsgType::*;
        Some(match v {
            0 => Control,
            1 => Directory,
            2 => Read,
            3 => GetPerms,
            4 => Watch,
            5 => Unwatch,
            6 => TransactionStart,
            7 => TransactionEnd,
            8 => Introduce,
            9 => Release,
            10 => GetDomainPath,
            11 => Write,
            12 => Mkdir,
            13 => Rm,
            14 => SetPerms,
            15 => WatchEvent,
            16 => Error,
            17 => IsDomainIntroduced,
            18 => Resume,
            19 => SetTarget,
            21 => ResetWatches,
            22 => DirectoryPart,
            _ => return None,
        })
    }
}

/// `struct xsd_sockmsg`: the header of every message, in either direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Header {
    /// `XS_*` message type (raw: a reply may carry an unknown one).
    pub ty: u32,
    /// Request identifier, echoed in xenstored's reply.
    pub req_id: u32,
    /// Transaction id (0 if not in a transaction).
    pub tx_id: u32,
    /// Payload bytes following the header.
    pub len: u32,
}
const _: () = assert!(size_of::<Header>() == HEADER_SIZE);

impl Header {
    /// The header as it goes on the wire (little-endian, as on x86).
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0; HEADER_SIZE];
        for (at, v) in [(HDR_TYPE, self.ty), (HDR_REQ_ID, self.req_id), (HDR_TX_ID, self.tx_id), (HDR_LEN, self.len)] {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Parses a header (no validation: see [`super::reply::Decoder`]).
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> Self {
        let w = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        Header { ty: w(HDR_TYPE), req_id: w(HDR_REQ_ID), tx_id: w(HDR_TX_ID), len: w(HDR_LEN) }
    }
}

/// A request a guest sends. Paths are checked by [`validate_path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Read the value at a path.
    Read(&'a str),
    /// Write a value (raw bytes) at a path, creating it if needed.
    Write(&'a str, &'a [u8]),
    /// List the children of a path.
    Directory(&'a str),
    /// Watch a path (and its descendants); events carry `token`.
    Watch {
        /// Path to watch (or a special `@...` watch).
        path: &'a str,
        /// Returned in every event for this watch.
        token: &'a str,
    },
    /// Remove a watch registered with the same path and token.
    Unwatch {
        /// The watched path.
        path: &'a str,
        /// The watch's token.
        token: &'a str,
    },
    /// Start a transaction; the reply carries its id.
    TransactionStart,
    /// End the transaction named by the header's `tx_id`.
    TransactionEnd {
        /// Commit (`T`) or abort (`F`).
        commit: bool,
    },
    /// Remove a path and everything below it.
    Rm(&'a str),
    /// Create a path (with an empty value).
    Mkdir(&'a str),
}

impl Request<'_> {
    /// The message type that carries this request.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Request::Read(_) => MsgType::Read,
            Request::Write(..) => MsgType::Write,
            Request::Directory(_) => MsgType::Directory,
            Request::Watch { .. } => MsgType::Watch,
            Request::Unwatch { .. } => MsgType::Unwatch,
            Request::TransactionStart => MsgType::TransactionStart,
            Request::TransactionEnd { .. } => MsgType::TransactionEnd,
            Request::Rm(_) => MsgType::Rm,
            Request::Mkdir(_) => MsgType::Mkdir,
        }
    }
}

/// The request a reply is expected for: what [`super::reply::interpret`] checks against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    /// The request's `req_id`.
    pub req_id: u32,
    /// The request's type.
    pub ty: MsgType,
}

/// Characters xenstored accepts in a path (`valid_chars` in xenstored_core.c).
fn valid_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// Checks a path before it is sent: non-empty, no NUL, only characters xenstored
/// accepts, and no longer than [`ABS_PATH_MAX`] (starting with `/`) or [`REL_PATH_MAX`]
/// (relative to the domain's home, or a special `@...` watch path).
pub fn validate_path(path: &str) -> Result<(), Error> {
    let max = if path.starts_with('/') { ABS_PATH_MAX } else { REL_PATH_MAX };
    if path.is_empty() || path.len() > max || !path.bytes().all(valid_path_char) {
        return Err(Error::InvalidPath);
    }
    Ok(())
}

/// Checks a watch token: non-empty, no NUL.
fn validate_token(token: &str) -> Result<(), Error> {
    if token.is_empty() || token.bytes().any(|b| b == 0) {
        return Err(Error::InvalidToken);
    }
    Ok(())
}

/// Encodes `req` as one message with the given ids into `out`; returns its length
/// (header included). `tx_id` must be 0 for `TransactionStart` and non-zero for
/// `TransactionEnd`. Nothing is written on error.
pub fn encode(req: &Request<'_>, req_id: u32, tx_id: u32, out: &mut [u8]) -> Result<usize, Error> {
    const NUL: &[u8] = b"\0";
    // The payload as up to four pieces, concatenated.
    let pieces: [&[u8]; 4] = match *req {
        Request::Read(p) | Request::Directory(p) | Request::Rm(p) | Request::Mkdir(p) => {
            validate_path(p)?;
            [p.as_bytes(), NUL, &[], &[]]
        }
        Request::Write(p, value) => {
            validate_path(p)?;
            [p.as_bytes(), NUL, value, &[]]
        }
        Request::Watch { path, token } | Request::Unwatch { path, token } => {
            validate_path(path)?;
            validate_token(token)?;
            [path.as_bytes(), NUL, token.as_bytes(), NUL]
        }
        Request::TransactionStart => {
            if tx_id != 0 {
                return Err(Error::BadTransaction);
            }
            [NUL, &[], &[], &[]]
        }
        Request::TransactionEnd { commit } => {
            if tx_id == 0 {
                return Err(Error::BadTransaction);
            }
            [if commit { b"T" } else { b"F" }, NUL, &[], &[]]
        }
    };
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    if len > PAYLOAD_MAX {
        return Err(Error::TooLong);
    }
    let total = HEADER_SIZE + len;
    let Some(dst) = out.get_mut(..total) else {
        return Err(Error::BufferTooSmall);
    };
    let header = Header { ty: req.msg_type() as u32, req_id, tx_id, len: len as u32 };
    let (hdr, mut rest) = dst.split_at_mut(HEADER_SIZE);
    hdr.copy_from_slice(&header.to_bytes());
    for piece in pieces {
        let (d, r) = rest.split_at_mut(piece.len());
        d.copy_from_slice(piece);
        rest = r;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    fn enc(req: Request<'_>, tx: u32) -> Result<Vec<u8>, Error> {
        let mut buf = [0u8; MSG_MAX];
        encode(&req, 7, tx, &mut buf).map(|n| buf[..n].to_vec())
    }

    fn payload(req: Request<'_>, tx: u32) -> Vec<u8> {
        let m = enc(req, tx).unwrap();
        let h = Header::from_bytes(m[..16].try_into().unwrap());
        assert_eq!((h.ty, h.req_id, h.tx_id, h.len as usize), (req.msg_type() as u32, 7, tx, m.len() - 16));
        m[16..].to_vec()
    }

    #[test]
    fn header_layout_matches_xs_wire_h() {
        assert_eq!(offset_of!(Header, ty), HDR_TYPE);
        assert_eq!(offset_of!(Header, req_id), HDR_REQ_ID);
        assert_eq!(offset_of!(Header, tx_id), HDR_TX_ID);
        assert_eq!(offset_of!(Header, len), HDR_LEN);
        let h = Header { ty: 1, req_id: 0x0203_0405, tx_id: 9, len: 4096 };
        assert_eq!(Header::from_bytes(&h.to_bytes()), h);
        assert_eq!(h.to_bytes()[4..8], [5, 4, 3, 2]);
    }

    #[test]
    fn type_numbers_match_xs_wire_h() {
        assert_eq!(MsgType::Directory as u32, 1);
        assert_eq!(MsgType::Write as u32, 11);
        assert_eq!(MsgType::WatchEvent as u32, 15);
        assert_eq!(MsgType::Error as u32, 16);
        assert_eq!(MsgType::ResetWatches as u32, 21);
        for v in 0..TYPE_COUNT {
            assert_eq!(MsgType::from_u32(v).map(|t| t as u32), if v == 20 { None } else { Some(v) });
        }
        assert_eq!(MsgType::from_u32(TYPE_COUNT), None);
        assert_eq!(MsgType::from_u32(TYPE_INVALID), None);
    }

    #[test]
    fn payloads() {
        assert_eq!(payload(Request::Read("device/vif/0/mac"), 0), b"device/vif/0/mac\0");
        assert_eq!(payload(Request::Write("a/b", b"x\0y"), 3), b"a/b\0x\0y");
        assert_eq!(payload(Request::Directory("/local/domain/1"), 0), b"/local/domain/1\0");
        assert_eq!(payload(Request::Watch { path: "@releaseDomain", token: "t 1" }, 0), b"@releaseDomain\0t 1\0");
        assert_eq!(payload(Request::Unwatch { path: "a", token: "tok" }, 0), b"a\0tok\0");
        assert_eq!(payload(Request::TransactionStart, 0), b"\0");
        assert_eq!(payload(Request::TransactionEnd { commit: true }, 5), b"T\0");
        assert_eq!(payload(Request::TransactionEnd { commit: false }, 5), b"F\0");
        assert_eq!(payload(Request::Rm("a/b"), 2), b"a/b\0");
        assert_eq!(payload(Request::Mkdir("a/b"), 0), b"a/b\0");
    }

    #[test]
    fn paths_are_validated() {
        assert_eq!(validate_path(""), Err(Error::InvalidPath));
        assert_eq!(validate_path("a\0b"), Err(Error::InvalidPath));
        assert_eq!(validate_path("a b"), Err(Error::InvalidPath));
        assert_eq!(validate_path("a.b"), Err(Error::InvalidPath));
        let rel = "a".repeat(REL_PATH_MAX);
        assert_eq!(validate_path(&rel), Ok(()));
        assert_eq!(validate_path(&(rel + "a")), Err(Error::InvalidPath));
        let abs = "/".to_string() + &"a".repeat(ABS_PATH_MAX - 1);
        assert_eq!(validate_path(&abs), Ok(()));
        assert_eq!(validate_path(&(abs + "a")), Err(Error::InvalidPath));
        assert_eq!(enc(Request::Read("x\0"), 0), Err(Error::InvalidPath));
        assert_eq!(enc(Request::Watch { path: "x", token: "" }, 0), Err(Error::InvalidToken));
        assert_eq!(enc(Request::Watch { path: "x", token: "a\0" }, 0), Err(Error::InvalidToken));
    }

    #[test]
    fn limits_and_buffers() {
        let big = [b'v'; PAYLOAD_MAX];
        assert_eq!(enc(Request::Write("k", &big[..PAYLOAD_MAX - 2]), 0).map(|m| m.len()), Ok(MSG_MAX));
        assert_eq!(enc(Request::Write("k", &big[..PAYLOAD_MAX - 1]), 0), Err(Error::TooLong));
        let mut small = [0xaau8; 20];
        assert_eq!(encode(&Request::Read("abcde"), 1, 0, &mut small), Err(Error::BufferTooSmall));
        assert_eq!(small, [0xaa; 20], "nothing written on error");
        assert_eq!(encode(&Request::Read("abc"), 1, 0, &mut small), Ok(20));
        assert_eq!(enc(Request::TransactionStart, 4), Err(Error::BadTransaction));
        assert_eq!(enc(Request::TransactionEnd { commit: true }, 0), Err(Error::BadTransaction));
    }
}
