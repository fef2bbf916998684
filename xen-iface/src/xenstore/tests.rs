//! Host tests of the xenstore client against a fake xenstored on the other side of a
//! [`FakePage`], which can also misbehave.

use super::fake::FakeXenstored;
use super::reply::interpret;
use super::ring::{INTERFACE_SIZE, REQ_CONS, REQ_PROD, RING_SIZE, RSP_CONS, RSP_PROD};
use super::wire::{ABS_PATH_MAX, PAYLOAD_MAX};
use super::*;
use crate::shared::testing::FakePage;
use crate::shared::SharedMem;

/// A message, owned, so tests can collect them.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Value(Vec<u8>),
    Dir(Vec<String>),
    Done,
    Tx(u32),
    Event(String, String),
    Err(Error),
}

fn own(m: Result<Message<'_>, Error>) -> Got {
    match m {
        Ok(Message::Reply(Reply::Value(v))) => Got::Value(v.to_vec()),
        Ok(Message::Reply(Reply::Directory(d))) => Got::Dir(d.map(String::from).collect()),
        Ok(Message::Reply(Reply::Done)) => Got::Done,
        Ok(Message::Reply(Reply::TransactionStarted(t))) => Got::Tx(t),
        Ok(Message::Event(e)) => Got::Event(e.path.into(), e.token.into()),
        Err(e) => Got::Err(e),
    }
}

fn setup() -> (FakePage, Client, FakeXenstored) {
    let mem = FakePage::new(4096);
    let mut c = Client::new();
    c.attach(&mem).unwrap();
    (mem, c, FakeXenstored::new())
}

/// Runs both sides until nothing moves; returns the messages (or the fatal error).
fn run(mem: &FakePage, c: &mut Client, x: &mut FakeXenstored) -> Result<Vec<Got>, Error> {
    let mut got = Vec::new();
    for _ in 0..100 {
        x.service(mem);
        let p = c.poll(mem)?;
        let idle = !p.notify && p.message.is_none();
        got.extend(p.message.map(own));
        if idle && x.out.is_empty() {
            return Ok(got);
        }
    }
    panic!("no quiescence");
}

fn call(mem: &FakePage, c: &mut Client, x: &mut FakeXenstored, req: Request<'_>, tx: u32) -> Vec<Got> {
    c.send(mem, &req, tx).unwrap();
    run(mem, c, x).unwrap()
}

#[test]
fn happy_path() {
    let (mem, mut c, mut x) = setup();
    let v = |s: &str| Got::Value(s.as_bytes().to_vec());
    assert_eq!(
        call(&mem, &mut c, &mut x, Request::Read("device/vif/0/mac"), 0),
        [Got::Err(Error::Xs(XsErrno::NotFound))]
    );
    assert_eq!(c.outstanding(), None, "an error reply answers the request");
    assert_eq!(call(&mem, &mut c, &mut x, Request::Write("device/vif/0/mac", b"00:16:3e:00:00:01"), 0), [Got::Done]);
    assert_eq!(call(&mem, &mut c, &mut x, Request::Read("device/vif/0/mac"), 0), [v("00:16:3e:00:00:01")]);
    call(&mem, &mut c, &mut x, Request::Write("device/vif/0/state", b"1"), 0);
    call(&mem, &mut c, &mut x, Request::Mkdir("device/vbd"), 0);
    let dir = |s: &[&str]| Got::Dir(s.iter().map(|s| s.to_string()).collect());
    assert_eq!(call(&mem, &mut c, &mut x, Request::Directory("device"), 0), [dir(&["vbd", "vif"])]);
    assert_eq!(call(&mem, &mut c, &mut x, Request::Directory("device/vif/0"), 0), [dir(&["mac", "state"])]);
    assert_eq!(call(&mem, &mut c, &mut x, Request::Directory("nothing"), 0), [dir(&[])]);

    // A watch: the reply, the initial event, then one per change below the path.
    let w = Request::Watch { path: "device/vif/0", token: "vif0" };
    let ev = |p: &str| Got::Event(p.into(), "vif0".into());
    assert_eq!(call(&mem, &mut c, &mut x, w, 0), [Got::Done, ev("device/vif/0")]);
    assert_eq!(
        call(&mem, &mut c, &mut x, Request::Write("device/vif/0/state", b"4"), 0),
        [Got::Done, ev("device/vif/0/state")]
    );
    assert_eq!(call(&mem, &mut c, &mut x, Request::Unwatch { path: "device/vif/0", token: "vif0" }, 0), [Got::Done]);
    assert_eq!(call(&mem, &mut c, &mut x, Request::Rm("device/vif/0/state"), 0), [Got::Done]);

    // A transaction.
    let [Got::Tx(tx)] = call(&mem, &mut c, &mut x, Request::TransactionStart, 0)[..] else { panic!() };
    assert_eq!(tx, 42);
    assert_eq!(call(&mem, &mut c, &mut x, Request::Write("data/a", b"1"), tx), [Got::Done]);
    assert_eq!(call(&mem, &mut c, &mut x, Request::TransactionEnd { commit: true }, tx), [Got::Done]);
    let (h, p) = x.seen.last().unwrap();
    assert_eq!((h.ty, h.tx_id, &p[..]), (MsgType::TransactionEnd as u32, tx, &b"T\0"[..]));
    assert!(!c.is_broken());
}

#[test]
fn messages_larger_than_the_ring_arrive_in_pieces() {
    let (mem, mut c, mut x) = setup();
    let big: Vec<u8> = (0..PAYLOAD_MAX - 4).map(|i| (i % 251) as u8).collect();
    assert_eq!(call(&mem, &mut c, &mut x, Request::Write("big", &big), 0), [Got::Done]);
    assert_eq!(call(&mem, &mut c, &mut x, Request::Read("big"), 0), [Got::Value(big)]);
}

#[test]
fn the_decoder_takes_bytes_one_at_a_time() {
    let mut d = Decoder::new();
    let mut msg = Header { ty: MsgType::Read as u32, req_id: 3, tx_id: 0, len: 5 }.to_bytes().to_vec();
    msg.extend(b"hello");
    msg.extend(Header { ty: MsgType::WatchEvent as u32, req_id: 0, tx_id: 0, len: 4 }.to_bytes());
    msg.extend(b"a\0b\0");
    let mut got = Vec::new();
    let mut rest = &msg[..];
    while !rest.is_empty() {
        let n = d.push(&rest[..1]).unwrap();
        rest = &rest[n..];
        if let Some((h, p)) = d.take() {
            got.push(own(interpret(&h, p, Some(Outstanding { req_id: 3, ty: MsgType::Read }))));
        }
    }
    assert_eq!(got, [Got::Value(b"hello".to_vec()), Got::Event("a".into(), "b".into())]);
    // A complete message blocks further input until taken.
    assert_eq!(d.push(&Header::default().to_bytes()), Ok(16));
    assert_eq!(d.push(b"x"), Ok(0));
    assert!(d.take().is_some());
}

#[test]
fn payload_over_the_limit_is_fatal() {
    let (mem, mut c, mut x) = setup();
    c.send(&mem, &Request::Read("a"), 0).unwrap();
    x.swallow(&mem);
    x.queue(Header { ty: MsgType::Read as u32, req_id: 1, tx_id: 0, len: PAYLOAD_MAX as u32 + 1 }, b"");
    x.pump(&mem);
    assert_eq!(c.poll(&mem), Err(Error::PayloadTooLong(PAYLOAD_MAX as u32 + 1)));
    assert!(c.is_broken());
    assert_eq!(c.poll(&mem), Err(Error::Broken));
    assert_eq!(c.send(&mem, &Request::Read("a"), 0), Err(Error::Broken));
    assert!(Error::Broken.is_fatal() && !Error::MissingNul.is_fatal());
}

/// Sends `req`, lets the fake answer with `mangle` applied, returns what the client saw.
fn mangled(req: Request<'_>, mangle: fn(&mut Header, &mut Vec<u8>)) -> (Result<Vec<Got>, Error>, Client) {
    let (mem, mut c, mut x) = setup();
    c.send(&mem, &req, 0).unwrap();
    x.mangle = Some(mangle);
    let r = run(&mem, &mut c, &mut x);
    (r, c)
}

#[test]
fn bad_replies_cost_only_that_message() {
    let one = |r: Request<'static>, m: fn(&mut Header, &mut Vec<u8>)| {
        let (got, c) = mangled(r, m);
        assert!(!c.is_broken());
        let got = got.unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        got.into_iter().next().unwrap()
    };
    let ls = Request::Directory("a");
    // Unknown types: 20 (XS_RESTRICT, removed), past the end, XS_INVALID.
    for ty in [20, 23, 0xffff] {
        let m = match ty {
            20 => |h: &mut Header, _: &mut Vec<u8>| h.ty = 20,
            23 => |h: &mut Header, _: &mut Vec<u8>| h.ty = 23,
            _ => |h: &mut Header, _: &mut Vec<u8>| h.ty = 0xffff,
        };
        assert_eq!(one(Request::Read("a"), m), Got::Err(Error::UnknownType(ty)));
    }
    // Missing terminators: error string, OK, directory entry, transaction id.
    let m = |h: &mut Header, p: &mut Vec<u8>| {
        h.ty = MsgType::Error as u32;
        *p = b"ENOENT".to_vec();
        h.len = 6;
    };
    assert_eq!(one(Request::Read("a"), m), Got::Err(Error::MissingNul));
    let m = |h: &mut Header, p: &mut Vec<u8>| {
        p.pop();
        h.len -= 1;
    };
    assert_eq!(one(Request::Write("a", b"v"), m), Got::Err(Error::MissingNul));
    assert_eq!(one(Request::TransactionStart, m), Got::Err(Error::MissingNul));
    let m = |h: &mut Header, p: &mut Vec<u8>| {
        *p = b"x\0y".to_vec();
        h.len = 3;
    };
    assert_eq!(one(ls, m), Got::Err(Error::MissingNul));
    // Malformed payloads.
    let m = |h: &mut Header, p: &mut Vec<u8>| {
        *p = b"x\0\0y\0".to_vec();
        h.len = 5;
    };
    assert_eq!(one(ls, m), Got::Err(Error::BadPayload), "empty entry");
    let m = |h: &mut Header, p: &mut Vec<u8>| {
        *p = b"\xff\0".to_vec();
        h.len = 2;
    };
    assert_eq!(one(ls, m), Got::Err(Error::BadPayload), "not UTF-8");
    let m = |h: &mut Header, p: &mut Vec<u8>| {
        *p = b"NO\0".to_vec();
        h.len = 3;
    };
    assert_eq!(one(Request::Mkdir("a"), m), Got::Err(Error::BadPayload));
    for bad in [&b"0\0"[..], b"+5\0", b"x\0", b"99999999999\0", b"\0"] {
        let (mem, mut c, mut x) = setup();
        c.send(&mem, &Request::TransactionStart, 0).unwrap();
        x.swallow(&mem);
        x.queue(Header { ty: 6, req_id: 1, tx_id: 0, len: bad.len() as u32 }, bad);
        x.pump(&mem);
        assert_eq!(c.poll(&mem).unwrap().message, Some(Err(Error::BadPayload)), "{bad:?}");
    }
    // Wrong type for the request, and unknown error names.
    let m = |h: &mut Header, _: &mut Vec<u8>| h.ty = MsgType::Read as u32;
    assert_eq!(
        one(Request::Write("a", b""), m),
        Got::Err(Error::TypeMismatch { expected: MsgType::Write, got: MsgType::Read })
    );
    let m = |h: &mut Header, p: &mut Vec<u8>| {
        h.ty = MsgType::Error as u32;
        *p = b"EWHATEVER\0".to_vec();
        h.len = 10;
    };
    assert_eq!(one(Request::Read("a"), m), Got::Err(Error::Xs(XsErrno::Unknown)));
    // A reply with another request's id: dropped, and the request stays outstanding.
    let (got, c) = mangled(Request::Read("a"), |h, _| h.req_id += 7);
    assert_eq!(got.unwrap(), [Got::Err(Error::UnexpectedReply { req_id: 8 })]);
    assert_eq!(c.outstanding().map(|o| o.req_id), Some(1));
}

#[test]
fn errno_names_follow_the_header() {
    for (name, e) in
        [("EINVAL", XsErrno::InvalidArgument), ("EAGAIN", XsErrno::Again), ("EPERM", XsErrno::NotPermitted)]
    {
        assert_eq!(XsErrno::from_name(name.as_bytes()), e);
        assert_eq!(e.name(), name);
    }
    assert_eq!(XsErrno::from_name(b"EINVALX"), XsErrno::Unknown);
    assert_eq!(XsErrno::from_name(b""), XsErrno::Unknown);
}

#[test]
fn unsolicited_and_malformed_events() {
    let (mem, mut c, mut x) = setup();
    // A reply when nothing was sent.
    x.queue(Header { ty: MsgType::Read as u32, req_id: 5, tx_id: 0, len: 2 }, b"hi");
    // Events: fine, token missing, path empty, no NUL at all, path overlong.
    x.event("a/b", "t");
    let long = format!("/{}\0t\0", "a".repeat(ABS_PATH_MAX));
    for bad in [&b"a/b\0"[..], b"\0t\0", b"a/b", long.as_bytes()] {
        x.queue(Header { ty: MsgType::WatchEvent as u32, req_id: 0, tx_id: 0, len: bad.len() as u32 }, bad);
    }
    // A reply for a request never sent, while another is outstanding.
    c.send(&mem, &Request::Read("k"), 0).unwrap();
    x.queue(Header { ty: MsgType::Read as u32, req_id: 77, tx_id: 0, len: 0 }, b"");
    let got = run(&mem, &mut c, &mut x).unwrap();
    assert_eq!(
        got,
        [
            Got::Err(Error::UnexpectedReply { req_id: 5 }),
            Got::Event("a/b".into(), "t".into()),
            Got::Err(Error::MissingNul),
            Got::Err(Error::BadPayload),
            Got::Err(Error::MissingNul),
            Got::Err(Error::BadPayload),
            Got::Err(Error::UnexpectedReply { req_id: 77 }),
            Got::Err(Error::Xs(XsErrno::NotFound)),
        ]
    );
    assert!(!c.is_broken());
}

#[test]
fn short_length_desynchronises_without_panicking() {
    // The header claims fewer bytes than sent: the rest is read as the next header.
    let (got, c) = mangled(Request::Read("a"), |h, p| {
        *p = b"abcdefghijklmnopqrstuvwxyz0123456789".to_vec();
        h.ty = MsgType::Read as u32;
        h.len = 2;
    });
    // "cdef..." parsed as a header: an absurd length, fatal.
    assert_eq!(got, Err(Error::PayloadTooLong(u32::from_le_bytes(*b"opqr"))));
    assert!(c.is_broken());
}

#[test]
fn long_length_swallows_the_next_message_without_panicking() {
    // The header claims more than sent: the decoder waits for the rest, which is the
    // start of the next message; framing is then off, and it ends in errors, not panics.
    let (mem, mut c, mut x) = setup();
    c.send(&mem, &Request::Read("a"), 0).unwrap();
    x.swallow(&mem);
    x.queue(Header { ty: MsgType::Read as u32, req_id: 1, tx_id: 0, len: 20 }, b"short");
    x.pump(&mem);
    assert_eq!(c.poll(&mem).unwrap().message, None, "still waiting for 15 bytes");
    x.event("p", "t"); // 16 + 4 bytes: 15 complete the reply, 5 start a "header"
    x.pump(&mem);
    let m = c.poll(&mem).unwrap().message;
    assert!(matches!(m, Some(Ok(Message::Reply(Reply::Value(v)))) if v.len() == 20));
    assert_eq!(c.poll(&mem).unwrap().message, None, "a partial header waits");
}

#[test]
fn indexes_past_the_ring_are_fatal() {
    let (mem, mut c, mut x) = setup();
    c.send(&mem, &Request::Read("a"), 0).unwrap();
    x.service(&mem);
    mem.write_u32(RSP_PROD, mem.read_u32(RSP_CONS).wrapping_add(RING_SIZE as u32 + 1));
    assert!(matches!(c.poll(&mem), Err(Error::RingIndex { .. })));
    assert!(c.is_broken());

    let (mem, mut c, _x) = setup();
    c.send(&mem, &Request::Read("a"), 0).unwrap();
    mem.write_u32(REQ_CONS, 1000); // consumed more than was produced
    assert!(matches!(c.poll(&mem), Err(Error::RingIndex { .. })));

    // A request that does not fit waits for room instead of overwriting.
    let (mem, mut c, mut x) = setup();
    let big = vec![b'v'; 3000];
    c.send(&mem, &Request::Write("k", &big), 0).unwrap();
    assert_eq!(mem.read_u32(REQ_PROD), RING_SIZE as u32);
    assert_eq!(c.send(&mem, &Request::Read("k"), 0), Err(Error::Busy));
    assert_eq!(run(&mem, &mut c, &mut x), Ok(vec![Got::Done]));
    assert_eq!(x.store.get("k").map(Vec::len), Some(3000));
}

#[test]
fn caller_errors_send_nothing() {
    let (mem, mut c, _x) = setup();
    let long = "a".repeat(PAYLOAD_MAX);
    assert_eq!(c.send(&mem, &Request::Read(&long), 0), Err(Error::InvalidPath));
    assert_eq!(c.send(&mem, &Request::Write("k", long.as_bytes()), 0), Err(Error::TooLong));
    assert_eq!(c.send(&mem, &Request::Read("bad\0path"), 0), Err(Error::InvalidPath));
    assert_eq!(mem.read_u32(REQ_PROD), 0);
    assert_eq!(c.outstanding(), None);
    assert_eq!(INTERFACE_SIZE, 2076);
}

/// A reply that comes before its request went into the ring whole (a misbehaving
/// xenstored) used to let the next request be written over the unsent rest.
#[test]
fn an_early_reply_keeps_the_request_stream_framed() {
    let (mem, mut c, mut x) = setup();
    let big = vec![b'v'; 3000];
    let id = c.send(&mem, &Request::Write("k", &big), 0).unwrap();
    x.swallow(&mem); // takes the first KiB, answers at once
    x.queue(Header { ty: MsgType::Write as u32, req_id: id, tx_id: 0, len: 3 }, b"OK\0");
    x.pump(&mem);
    assert_eq!(c.poll(&mem).unwrap().message.map(own), Some(Got::Done));
    c.send(&mem, &Request::Read("k"), 0).unwrap();
    // From now on xenstored reads every byte the guest writes.
    let mut received = Vec::new();
    for _ in 0..20 {
        c.poll(&mem).unwrap();
        let (mut cons, prod) = (mem.read_u32(REQ_CONS), mem.read_u32(REQ_PROD));
        while cons != prod {
            received.push(mem.read_u8(super::ring::REQ + cons as usize % RING_SIZE));
            cons = cons.wrapping_add(1);
        }
        mem.write_u32(REQ_CONS, prod);
    }
    // After the first KiB: the write's rest, then the read.
    let want_rest = super::wire::HEADER_SIZE + 2 + 3000 - RING_SIZE;
    assert_eq!(received.len(), want_rest + super::wire::HEADER_SIZE + 2);
    assert!(received[..want_rest].iter().all(|&b| b == b'v'), "the rest of the write");
    assert_eq!(&received[want_rest + super::wire::HEADER_SIZE..], b"k\0", "then the read, whole");
}
