//! Seeded fuzzing of the xenstore protocol (`xen_iface::xenstore`), bottom up: the
//! request encoder, the decoder that frames ring bytes, the interpretation of one reply,
//! the byte ring against a peer that moves its indexes at random, and the client against
//! a fake xenstored that is honest in some cases and hostile in the others.
//!
//! Everything xenstored writes is untrusted (`xenstore.rs`): whatever it does, the guest
//! must not panic, touch memory outside the page or the parts of it that are xenstored's,
//! spin, or report anything but a typed [`Error`], fatal exactly when the stream can no
//! longer be framed. When it behaves, every request must get exactly its reply.
//! See `fuzz/mod.rs` for the seed, budget and replay.

mod fakemem;
mod fuzz;
mod regressions;
mod xs_model;

use fakemem::CheckedPage;
use fuzz::{mutate, run, Rng};
use std::collections::VecDeque;
use xen_iface::xenstore::reply::interpret;
use xen_iface::xenstore::ring::{REQ, REQ_CONS, REQ_PROD, RING_SIZE, RSP, RSP_CONS, RSP_PROD};
use xen_iface::xenstore::wire::{encode, HEADER_SIZE, MSG_MAX, PAYLOAD_MAX};
use xen_iface::xenstore::{Client, Decoder, Error, Header, Message, MsgType, Outstanding, Reply, XsErrno, XsRing};
use xs_model::{frame, honest_event, honest_reply, own, Got, Req};

/// Most shared-memory accesses one ring or client call may make: both rings once over
/// and the four indexes. More means a loop that does not end, or bytes read twice.
const CALL_BUDGET: usize = 2 * RING_SIZE + 16;

/// What the guest may store to: its requests, its producer and its consumer index.
fn guest_owned() -> [std::ops::Range<usize>; 3] {
    [REQ..REQ + RING_SIZE, REQ_PROD..REQ_PROD + 4, RSP_CONS..RSP_CONS + 4]
}

/// Encoding a random request then decoding it gives back its header and payload; a
/// request the protocol refuses is refused with the caller's error and writes nothing.
#[test]
fn xs_encode_round_trip() {
    run("xs_encode_round_trip", regressions::XS_ENCODE_ROUND_TRIP, |rng| {
        let req = Req::random(rng);
        let any = rng.u32();
        let tx = *rng.pick(&[0, 0, 1, 7, u32::MAX, any]);
        let req_id = rng.edge_u32();
        let cap = if rng.one_in(4) { rng.len(64) } else { MSG_MAX + rng.len(8) };
        let mut buf = vec![0xa5u8; cap];
        let got = encode(&req.request(), req_id, tx, &mut buf);
        let want = req.expect(tx, cap);
        assert_eq!(got, want, "{req:?} tx {tx} into {cap} bytes");
        let Ok(total) = got else {
            assert!(buf.iter().all(|&b| b == 0xa5), "an encoding error wrote to the buffer");
            assert!(!got.unwrap_err().is_fatal(), "a caller's mistake is not fatal");
            return;
        };
        assert!(buf[total..].iter().all(|&b| b == 0xa5), "wrote past the message");
        assert_eq!(buf[..total], req.message(req_id, tx)[..]);
        // Back through the decoder, in random pieces.
        let mut dec = Decoder::new();
        let mut at = 0;
        while at < total {
            let n = rng.range(1, 64).min((total - at) as u64) as usize;
            assert_eq!(dec.push(&buf[at..at + n]), Ok(n));
            at += n;
        }
        let (h, p) = dec.take().expect("one whole message");
        assert_eq!(h, Header { ty: req.ty() as u32, req_id, tx_id: tx, len: (total - HEADER_SIZE) as u32 });
        assert_eq!(p, &req.payload()[..]);
    });
}

/// The messages a correct framer finds in `stream`, and the length of the header that
/// broke it, if one claims more than `PAYLOAD_MAX`.
fn reference_frames(stream: &[u8]) -> (Vec<(Header, Vec<u8>)>, Option<u32>) {
    let mut out = Vec::new();
    let mut rest = stream;
    while rest.len() >= HEADER_SIZE {
        let h = Header::from_bytes(rest[..HEADER_SIZE].try_into().unwrap());
        if h.len as usize > PAYLOAD_MAX {
            return (out, Some(h.len));
        }
        let end = HEADER_SIZE + h.len as usize;
        if rest.len() < end {
            break;
        }
        out.push((h, rest[HEADER_SIZE..end].to_vec()));
        rest = &rest[end..];
    }
    (out, None)
}

/// A stream of xenstore messages, with garbage, oversized headers and mutations.
fn random_stream(rng: &mut Rng) -> Vec<u8> {
    let mut s = Vec::new();
    for _ in 0..rng.len(12) {
        match rng.below(10) {
            0 => s.extend(rng.some_bytes(40)),
            1 => {
                let len = PAYLOAD_MAX as u32 + 1 + rng.edge_u32() % 1000;
                s.extend(Header { ty: rng.u32(), req_id: 0, tx_id: 0, len }.to_bytes());
            }
            _ => {
                let n = if rng.one_in(10) { rng.index(PAYLOAD_MAX + 1) } else { rng.len(48) };
                let ty = if rng.coin() { rng.below(24) as u32 } else { rng.edge_u32() };
                s.extend(frame(ty, rng.edge_u32(), rng.u32(), &rng.bytes(n)));
            }
        }
    }
    if rng.one_in(4) {
        mutate(rng, &mut s, &[]);
    }
    s
}

/// The decoder frames any byte stream, fed in any pieces through `push` or
/// `spare`/`advance`, exactly as a reference framer does; an oversized header breaks it
/// for good (until `reset`), and nothing it does panics.
#[test]
fn xs_decoder_stream() {
    run("xs_decoder_stream", regressions::XS_DECODER_STREAM, |rng| {
        let stream = random_stream(rng);
        let mut dec = Decoder::new();
        let (mut pos, mut got, mut broken) = (0, Vec::new(), None);
        /// Takes a message if one is complete, checking `is_complete` says so.
        fn take(dec: &mut Decoder, got: &mut Vec<(Header, Vec<u8>)>) {
            let complete = dec.is_complete();
            let m = dec.take().map(|(h, p)| (h, p.to_vec()));
            assert_eq!(m.is_some(), complete, "take agrees with is_complete");
            if let Some((h, p)) = m {
                assert_eq!(h.len as usize, p.len());
                got.push((h, p));
            }
        }
        while pos < stream.len() {
            if rng.one_in(4) {
                take(&mut dec, &mut got);
                continue;
            }
            let want = (rng.range(1, 80) as usize).min(stream.len() - pos);
            let r = if rng.coin() {
                let r = dec.push(&stream[pos..pos + want]);
                if let Ok(used) = r {
                    assert!(used <= want);
                    if used == 0 {
                        assert!(dec.is_complete(), "push took nothing from a decoder that wants bytes");
                        take(&mut dec, &mut got);
                    }
                    pos += used;
                }
                r.map(drop)
            } else {
                let spare = dec.spare();
                assert!(spare.len() <= MSG_MAX);
                let n = spare.len().min(want);
                spare[..n].copy_from_slice(&stream[pos..pos + n]);
                let all = n == spare.len();
                // Claiming more than was offered is clamped (the decoder's contract).
                let claim = if all && rng.one_in(4) { n + rng.len(100) } else { n };
                pos += n;
                let r = dec.advance(claim);
                if r.is_ok() && n == 0 {
                    assert!(dec.is_complete(), "an empty spare with nothing to take");
                    take(&mut dec, &mut got);
                }
                r
            };
            if let Err(e) = r {
                let Error::PayloadTooLong(len) = e else { panic!("the decoder returned {e:?}") };
                assert!(len as usize > PAYLOAD_MAX && e.is_fatal());
                broken = Some(len);
                break;
            }
        }
        take(&mut dec, &mut got);
        let (want, want_broken) = reference_frames(if broken.is_some() { &stream } else { &stream[..pos] });
        assert_eq!(broken, want_broken, "broken exactly at an oversized header");
        assert_eq!(got, want, "the messages of the stream, in order");
        if let Some(len) = broken {
            assert!(dec.spare().is_empty() && dec.take().is_none());
            assert_eq!(dec.push(b"more"), Err(Error::PayloadTooLong(len)), "stays broken");
            assert_eq!(dec.advance(1), Err(Error::PayloadTooLong(len)));
            dec.reset();
            let m = frame(MsgType::Read as u32, 1, 0, b"ok");
            assert_eq!(dec.push(&m), Ok(m.len()), "reset forgets the broken state");
            assert_eq!(dec.take().map(|(h, p)| (h.len, p.to_vec())), Some((2, b"ok".to_vec())));
        }
    });
}

/// Any message type the header can name, as the outstanding request or the reply.
fn any_type(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => rng.edge_u32(),
        1 => *rng.pick(&[MsgType::Error as u32, MsgType::WatchEvent as u32, 20, 23, 0xffff]),
        _ => rng.below(23) as u32,
    }
}

/// Checks one result of `interpret` against what `xs_wire.h` allows; returns nothing,
/// panics on a violation.
fn check_interpretation(hdr: &Header, payload: &[u8], out: Option<Outstanding>, r: &Result<Message<'_>, Error>) {
    let ty = MsgType::from_u32(hdr.ty);
    let answers = out.filter(|o| o.req_id == hdr.req_id);
    match r {
        Ok(Message::Event(e)) => {
            assert_eq!(ty, Some(MsgType::WatchEvent));
            assert!(!e.path.is_empty() && e.path.len() <= xen_iface::xenstore::wire::ABS_PATH_MAX);
            assert!(!e.path.contains('\0') && !e.token.contains('\0'));
            let head = [e.path.as_bytes(), b"\0", e.token.as_bytes(), b"\0"].concat();
            assert!(payload.starts_with(&head) && payload.ends_with(b"\0"), "{payload:?} -> {e:?}");
        }
        Ok(Message::Reply(reply)) => {
            let o = answers.expect("a reply only to the outstanding request");
            assert_eq!(ty, Some(o.ty), "a reply of the request's own type");
            match reply {
                Reply::Value(v) => assert!(o.ty == MsgType::Read && *v == payload),
                Reply::Directory(d) => {
                    assert_eq!(o.ty, MsgType::Directory);
                    let names: Vec<&str> = (*d).collect();
                    assert!(names.iter().all(|n| !n.is_empty() && !n.contains('\0')));
                    let joined: Vec<u8> = names.iter().flat_map(|n| n.bytes().chain([0])).collect();
                    assert_eq!(joined, payload);
                }
                Reply::TransactionStarted(id) => {
                    assert_eq!(o.ty, MsgType::TransactionStart);
                    let digits = payload.strip_suffix(b"\0").expect("terminated");
                    assert!(*id != 0 && !digits.is_empty() && digits.iter().all(u8::is_ascii_digit));
                    assert_eq!(std::str::from_utf8(digits).unwrap().parse::<u32>(), Ok(*id));
                }
                Reply::Done => assert_eq!(payload, b"OK\0"),
            }
        }
        Err(e) => {
            assert!(!e.is_fatal(), "one message costs only itself: {e:?}");
            match *e {
                Error::UnknownType(t) => assert!(t == hdr.ty && ty.is_none()),
                Error::UnexpectedReply { req_id } => {
                    assert!(req_id == hdr.req_id && answers.is_none() && ty != Some(MsgType::WatchEvent))
                }
                Error::TypeMismatch { expected, got } => {
                    let o = answers.expect("a mismatch is against the outstanding request");
                    assert!(expected == o.ty && Some(got) == ty && got != MsgType::Error && got != o.ty);
                }
                Error::Xs(errno) => {
                    assert!(answers.is_some() && ty == Some(MsgType::Error));
                    let name = payload.strip_suffix(b"\0").expect("terminated");
                    assert_eq!(errno, XsErrno::from_name(name));
                }
                Error::MissingNul | Error::BadPayload => assert!(ty.is_some()),
                other => panic!("interpret returned {other:?}"),
            }
        }
    }
}

/// One reply or event, well-formed, mutated or random, against a random outstanding
/// request: well-formed ones give exactly their message, and every result (a message or a
/// non-fatal error) is one the header and payload allow.
#[test]
fn xs_interpret() {
    fuzz::replay_inputs("xs_interpret", regressions::XS_INTERPRET, |&(ty, req_id, payload, out)| {
        let out = out.map(|(req_id, ty)| Outstanding { req_id, ty: MsgType::from_u32(ty).unwrap() });
        let hdr = Header { ty, req_id, tx_id: 0, len: payload.len() as u32 };
        check_interpretation(&hdr, payload, out, &interpret(&hdr, payload, out));
    });
    run("xs_interpret", &[], |rng| {
        let req = Req::random(rng);
        let req_id = rng.edge_u32();
        let out = (!rng.one_in(5)).then_some(Outstanding { req_id, ty: req.ty() });
        let (mut ty, mut payload, mut want) = match rng.below(3) {
            0 => {
                let (p, g) = honest_event(rng);
                (MsgType::WatchEvent as u32, p, Some(g))
            }
            _ => {
                let (t, p, g) = honest_reply(rng, &req);
                (t as u32, p, out.is_some().then_some(g))
            }
        };
        let mut hdr_req_id = if ty == MsgType::WatchEvent as u32 { 0 } else { req_id };
        if out.is_none() && ty != MsgType::WatchEvent as u32 {
            want = Some(Got::Err(Error::UnexpectedReply { req_id }));
        }
        if rng.one_in(3) {
            mutate(rng, &mut payload, &[b"\0", b"OK", b"\xff", b"ENOENT"]);
            want = None;
        }
        if rng.one_in(4) {
            ty = any_type(rng);
            let any = rng.u32();
            hdr_req_id = *rng.pick(&[0, req_id.wrapping_add(1), any, req_id]);
            want = None;
        }
        if rng.one_in(8) {
            payload = rng.some_bytes(40);
            want = None;
        }
        let hdr = Header { ty, req_id: hdr_req_id, tx_id: rng.u32(), len: payload.len() as u32 };
        let r = interpret(&hdr, &payload, out);
        check_interpretation(&hdr, &payload, out, &r);
        if let Some(want) = want {
            assert_eq!(own(r), want, "a well-formed message gives exactly its value");
        }
    });
}

/// An index a hostile xenstored writes: anything, or near the value a correct one would.
fn index_near(rng: &mut Rng, around: u32) -> u32 {
    match rng.below(3) {
        0 => rng.edge_u32(),
        _ => around.wrapping_add(rng.range(0, 2 * RING_SIZE as u64 + 2) as u32).wrapping_sub(RING_SIZE as u32 + 1),
    }
}

/// The byte ring against a peer that writes random indexes and bytes between the guest's
/// calls: `attach`, `write`, `read_bytes` and `read` accept exactly the indexes the
/// protocol allows, move exactly the bytes there is room or data for, store only to the
/// guest's parts of the page, and carry the bytes intact while the peer behaves.
#[test]
fn xs_ring_hostile() {
    run("xs_ring_hostile", regressions::XS_RING_HOSTILE, |rng| {
        let page = CheckedPage::new(4096);
        // Whatever an earlier boot stage or the toolstack left.
        let base = rng.edge_u32();
        let (req_prod, rsp_prod) = (base.wrapping_add(rng.u16() as u32), base.wrapping_sub(rng.u16() as u32));
        page.put_u32(REQ_PROD, req_prod);
        page.put_u32(REQ_CONS, index_near(rng, req_prod));
        page.put_u32(RSP_PROD, rsp_prod);
        page.put_u32(RSP_CONS, index_near(rng, rsp_prod));
        page.put_bytes(REQ, &rng.bytes(2 * RING_SIZE));
        page.own(&guest_owned());
        let before = page.snapshot();
        let (rc, rp) = (page.get_u32(REQ_CONS), page.get_u32(RSP_CONS));
        let bad = [(req_prod, rc), (rsp_prod, rp)].into_iter().find(|(p, c)| p.wrapping_sub(*c) as usize > RING_SIZE);
        page.budget(CALL_BUDGET);
        let attached = XsRing::attach(&page);
        let mut ring = match (attached, bad) {
            (Err(e), Some((prod, cons))) => {
                assert_eq!(e, Error::RingIndex { prod, cons });
                assert_eq!(page.snapshot(), before, "a refused attach writes nothing");
                return;
            }
            (Ok(ring), None) => ring,
            (r, bad) => panic!("attach gave {r:?} for indexes {bad:?}"),
        };
        assert_eq!(page.get_u32(RSP_CONS), rsp_prod, "stale replies are skipped");

        // The guest's view, mirrored: what it produced, and the peer's indexes it accepted.
        let (mut prod, mut cons_seen) = (req_prod, page.get_u32(REQ_CONS));
        let (mut rsp_cons, mut rsp_seen) = (rsp_prod, rsp_prod);
        let mut honest = true;
        let (mut peer_req_cons, mut peer_rsp_prod) = (cons_seen, rsp_prod);
        // Requests left in the ring by the earlier stage come first.
        let stale = (0..prod.wrapping_sub(cons_seen))
            .map(|i| page.get_u8(REQ + cons_seen.wrapping_add(i) as usize % RING_SIZE));
        let (mut sent, mut peer_got): (Vec<u8>, Vec<u8>) = (stale.collect(), Vec::new());
        let (mut peer_sent, mut guest_got): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
        let mut dec = Decoder::new();
        for _ in 0..rng.range(1, 60) {
            // The peer.
            match rng.below(8) {
                0 if rng.one_in(3) => {
                    honest = false;
                    page.put_u32(REQ_CONS, index_near(rng, prod));
                }
                1 if rng.one_in(3) => {
                    honest = false;
                    page.put_u32(RSP_PROD, index_near(rng, rsp_seen));
                }
                2 | 3 => {
                    // Consume some requests.
                    let avail = page.get_u32(REQ_PROD).wrapping_sub(peer_req_cons) as usize;
                    for _ in 0..rng.index(avail.min(RING_SIZE) + 1) {
                        peer_got.push(page.get_u8(REQ + peer_req_cons as usize % RING_SIZE));
                        peer_req_cons = peer_req_cons.wrapping_add(1);
                    }
                    if honest {
                        page.put_u32(REQ_CONS, peer_req_cons);
                    }
                }
                4 | 5 => {
                    // Produce some replies (any bytes: the ring does not frame).
                    let room = RING_SIZE.saturating_sub(peer_rsp_prod.wrapping_sub(page.get_u32(RSP_CONS)) as usize);
                    for _ in 0..rng.index(room + 1) {
                        let b = rng.u8();
                        page.put_u8(RSP + peer_rsp_prod as usize % RING_SIZE, b);
                        peer_sent.push(b);
                        peer_rsp_prod = peer_rsp_prod.wrapping_add(1);
                    }
                    if honest {
                        page.put_u32(RSP_PROD, peer_rsp_prod);
                    }
                }
                _ => {}
            }
            // The guest.
            page.budget(CALL_BUDGET);
            match rng.below(3) {
                0 => {
                    let bytes = rng.some_bytes(RING_SIZE + 100);
                    let cons = page.get_u32(REQ_CONS);
                    let valid = cons.wrapping_sub(cons_seen) <= prod.wrapping_sub(cons_seen);
                    match ring.write(&page, &bytes) {
                        Ok(n) => {
                            assert!(valid, "accepted req_cons {cons} (seen {cons_seen}, prod {prod})");
                            let room = RING_SIZE - prod.wrapping_sub(cons) as usize;
                            assert_eq!(n, room.min(bytes.len()));
                            cons_seen = cons;
                            prod = prod.wrapping_add(n as u32);
                            sent.extend_from_slice(&bytes[..n]);
                        }
                        Err(e) => {
                            assert!(!valid && e == Error::RingIndex { prod, cons }, "{e:?}");
                            return;
                        }
                    }
                    assert_eq!(page.get_u32(REQ_PROD), prod);
                }
                which => {
                    let p = page.get_u32(RSP_PROD);
                    let avail = p.wrapping_sub(rsp_cons) as usize;
                    let valid = (p.wrapping_sub(rsp_seen) as i32) >= 0 && avail <= RING_SIZE;
                    let at = rsp_cons;
                    let got = if which == 1 {
                        let mut out = vec![0; rng.len(RING_SIZE + 10)];
                        ring.read_bytes(&page, &mut out).map(|n| {
                            assert_eq!(n, avail.min(out.len()));
                            out.truncate(n);
                            out
                        })
                    } else {
                        match ring.read(&page, &mut dec) {
                            Ok(n) => {
                                // Up to a whole message or the end of the data.
                                assert!(n <= avail && (n == avail || dec.is_complete()));
                                dec.take();
                                Ok((0..n).map(|i| page.get_u8(RSP + (at as usize + i) % RING_SIZE)).collect())
                            }
                            Err(Error::PayloadTooLong(_)) => {
                                // Framing lost: fatal for a client, but the bytes were consumed.
                                dec.reset();
                                let n = page.get_u32(RSP_CONS).wrapping_sub(at) as usize;
                                Ok((0..n).map(|i| page.get_u8(RSP + (at as usize + i) % RING_SIZE)).collect())
                            }
                            Err(e) => Err(e),
                        }
                    };
                    match got {
                        Ok(bytes) => {
                            assert!(valid, "accepted rsp_prod {p} (seen {rsp_seen}, cons {rsp_cons})");
                            rsp_seen = p;
                            rsp_cons = rsp_cons.wrapping_add(bytes.len() as u32);
                            guest_got.extend(bytes);
                        }
                        Err(e) => {
                            assert!(!valid && e == Error::RingIndex { prod: p, cons: rsp_cons }, "{e:?}");
                            return;
                        }
                    }
                    assert_eq!(page.get_u32(RSP_CONS), rsp_cons);
                }
            }
            if honest {
                assert!(peer_got.len() <= sent.len() && sent.starts_with(&peer_got), "requests arrive intact");
                assert!(peer_sent.starts_with(&guest_got), "replies arrive intact");
            }
        }
    });
}

/// A fake xenstored on the other side of a [`CheckedPage`]: answers each request once it
/// is whole, and, in a hostile case, also misbehaves in every way it can.
struct Xenstored {
    rng: Rng,
    /// 0: honest; otherwise misbehaves once in `hostility` steps.
    hostility: u64,
    req_cons: u32,
    rsp_prod: u32,
    inbuf: Vec<u8>,
    out: VecDeque<u8>,
    /// Requests received whole.
    received: Vec<Vec<u8>>,
    /// False once xenstored played with `req_cons`: only then may the request stream it
    /// receives differ from what the client sent.
    requests_intact: bool,
}

impl Xenstored {
    fn honest(&self) -> bool {
        self.hostility == 0
    }

    /// Takes request bytes; returns each request received whole.
    fn receive(&mut self, page: &CheckedPage) -> Vec<Vec<u8>> {
        let avail = page.get_u32(REQ_PROD).wrapping_sub(self.req_cons) as usize;
        if avail > RING_SIZE {
            assert!(!self.honest(), "the guest published more than the ring holds");
            self.req_cons = page.get_u32(REQ_PROD);
        } else {
            for _ in 0..avail {
                self.inbuf.push(page.get_u8(REQ + self.req_cons as usize % RING_SIZE));
                self.req_cons = self.req_cons.wrapping_add(1);
            }
        }
        page.put_u32(REQ_CONS, self.req_cons);
        let mut whole = Vec::new();
        while self.inbuf.len() >= HEADER_SIZE {
            let h = Header::from_bytes(self.inbuf[..HEADER_SIZE].try_into().unwrap());
            if h.len as usize > PAYLOAD_MAX {
                assert!(!self.honest(), "the guest sent a header of {} bytes", h.len);
                self.inbuf.clear();
                break;
            }
            let end = HEADER_SIZE + h.len as usize;
            if self.inbuf.len() < end {
                break;
            }
            whole.push(self.inbuf.drain(..end).collect());
        }
        self.received.extend(whole.iter().cloned());
        whole
    }

    /// Receives what arrived and queues the reply to each whole request (the one in
    /// `current`), and what the client must make of it in `expected`.
    fn serve(&mut self, page: &CheckedPage, current: &mut Option<(Req, u32)>, expected: &mut VecDeque<Got>) {
        for msg in self.receive(page) {
            let Some((req, id)) = current.take() else {
                assert!(!self.honest(), "a request nobody sent");
                continue;
            };
            if self.honest() {
                let h = Header::from_bytes(msg[..HEADER_SIZE].try_into().unwrap());
                assert_eq!((h.ty, h.req_id), (req.ty() as u32, id), "the request as encoded");
            }
            let (ty, payload, got) = honest_reply(&mut self.rng, &req);
            self.out.extend(frame(ty as u32, id, 0, &payload));
            expected.push_back(got);
        }
    }

    /// Writes queued bytes into the reply ring as far as there is room.
    fn pump(&mut self, page: &CheckedPage) {
        let used = self.rsp_prod.wrapping_sub(page.get_u32(RSP_CONS)) as usize;
        let mut room = RING_SIZE.saturating_sub(used);
        while room > 0 {
            let Some(b) = self.out.pop_front() else { break };
            page.put_u8(RSP + self.rsp_prod as usize % RING_SIZE, b);
            self.rsp_prod = self.rsp_prod.wrapping_add(1);
            room -= 1;
        }
        page.put_u32(RSP_PROD, self.rsp_prod);
    }

    /// One misdeed, if this step is one.
    fn misbehave(&mut self, page: &CheckedPage, current: Option<u32>) {
        if self.honest() || !self.rng.one_in(self.hostility) {
            return;
        }
        let rng = &mut self.rng;
        // An early reply (to a request still being written) is the likeliest misdeed.
        let what = if current.is_some() && rng.one_in(3) { 4 } else { rng.below(9) };
        match what {
            0 => page.put_u32(RSP_PROD, index_near(rng, self.rsp_prod)),
            1 => {
                self.requests_intact = false;
                page.put_u32(REQ_CONS, index_near(rng, self.req_cons));
            }
            2 => self.out.extend(rng.some_bytes(40)),
            3 => self.out.extend(Header { ty: rng.u32(), req_id: 0, tx_id: 0, len: rng.edge_u32() }.to_bytes()),
            4 => {
                // A reply to the request in flight, whether it arrived whole or not.
                let (ty, payload) = (any_type(rng), rng.some_bytes(12));
                self.out.extend(frame(ty, current.unwrap_or_else(|| rng.u32()), 0, &payload));
            }
            5 => {
                let (mut p, _) = honest_event(rng);
                mutate(rng, &mut p, &[b"\0"]);
                self.out.extend(frame(MsgType::WatchEvent as u32, 0, 0, &p));
            }
            6 => {
                // Scribbles over reply bytes not yet consumed.
                let at = RSP + rng.index(RING_SIZE);
                page.put_u8(at, rng.u8());
            }
            7 => {
                // A header whose length does not match what follows.
                let n = rng.len(30);
                let h = Header { ty: MsgType::Read as u32, req_id: current.unwrap_or(0), tx_id: 0, len: n as u32 };
                self.out.extend(h.to_bytes());
                self.out.extend(rng.some_bytes(30));
            }
            _ => {
                self.requests_intact = false;
                let mut rng = rng.fork();
                let odds = rng.range(2, 64);
                page.set_tamper(Some(Box::new(move |b: &mut [u8]| {
                    if rng.one_in(odds) {
                        let at = *rng.pick(&[REQ_CONS, RSP_PROD]);
                        let v = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
                        let v = v.wrapping_add(rng.range(0, 3) as u32).wrapping_sub(1);
                        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                    }
                })));
            }
        }
    }
}

/// The client against a fake xenstored: honest in a quarter of the cases (then every
/// request gets exactly its reply, every event arrives, the request stream is intact and
/// the client never breaks), hostile otherwise (then `send` and `poll` still keep their
/// contracts: typed errors, fatal ones only from `poll`/`send` and then for good,
/// replies only to the outstanding request, memory accessed only where allowed, and,
/// unless xenstored moved `req_cons` itself, requests that reach it whole and in order,
/// early replies and garbage on the reply ring notwithstanding).
#[test]
fn xs_client_hostile() {
    run("xs_client_hostile", regressions::XS_CLIENT_HOSTILE, |rng| {
        let page = CheckedPage::new(4096);
        page.own(&guest_owned());
        let mut c = Client::new();
        c.attach(&page).expect("a zeroed page");
        let hostility = if rng.one_in(4) { 0 } else { rng.range(1, 12) };
        let mut x = Xenstored {
            rng: rng.fork(),
            hostility,
            req_cons: 0,
            rsp_prod: 0,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            received: Vec::new(),
            requests_intact: true,
        };
        let (mut expected, mut sent): (VecDeque<Got>, Vec<Vec<u8>>) = (VecDeque::new(), Vec::new());
        let mut next_id = 1u32;
        let mut current: Option<(Req, u32)> = None;
        for step in 0..rng.range(1, 80) {
            // The guest sends, sometimes while busy or with a request it must refuse.
            if rng.one_in(3) {
                let req = Req::random(rng);
                let tx = if rng.one_in(3) { rng.range(1, 9) as u32 } else { 0 };
                let (broken, busy) = (c.is_broken(), c.outstanding().is_some());
                page.budget(CALL_BUDGET);
                let r = c.send(&page, &req.request(), tx);
                match r {
                    _ if broken => assert_eq!(r, Err(Error::Broken)),
                    _ if busy => assert_eq!(r, Err(Error::Busy)),
                    Ok(id) => {
                        assert_eq!(req.expect(tx, MSG_MAX), Ok(HEADER_SIZE + req.payload().len()));
                        assert_eq!(id, next_id, "request ids count up");
                        next_id = id.wrapping_add(1).max(1);
                        assert_eq!(c.outstanding(), Some(Outstanding { req_id: id, ty: req.ty() }));
                        sent.push(req.message(id, tx));
                        current = Some((req, id));
                    }
                    Err(e) if e.is_fatal() => {
                        assert!(c.is_broken() && matches!(e, Error::RingIndex { .. } | Error::Stalled))
                    }
                    Err(e) => {
                        assert_eq!(Err(e), req.expect(tx, MSG_MAX).map(drop), "{req:?}");
                        assert_eq!(c.outstanding(), None, "a refused request is not outstanding");
                    }
                }
            }
            // xenstored answers what arrived whole, sends events, misbehaves.
            x.serve(&page, &mut current, &mut expected);
            if x.requests_intact {
                let n = x.received.len();
                assert!(n <= sent.len() && x.received[..] == sent[..n], "the request stream, framed, at step {step}");
            }
            if x.rng.one_in(6) {
                let (p, got) = honest_event(&mut x.rng);
                x.out.extend(frame(MsgType::WatchEvent as u32, 0, 0, &p));
                expected.push_back(got);
            }
            x.misbehave(&page, current.as_ref().map(|(_, id)| *id));
            x.pump(&page);
            // The guest polls.
            for _ in 0..rng.range(1, 4) {
                let before = c.outstanding();
                let broken = c.is_broken();
                page.budget(CALL_BUDGET);
                let polled = c.poll(&page).map(|p| (p.notify, p.message.map(own)));
                match polled {
                    Err(e) => {
                        assert!(e.is_fatal() && c.is_broken(), "poll fails only fatally, and for good: {e:?}");
                        assert!(!broken || e == Error::Broken);
                        assert!(!x.honest(), "an honest xenstored broke the client: {e:?} at step {step}");
                    }
                    Ok((_, None)) => {}
                    Ok((_, Some(got))) => {
                        match &got {
                            Got::Err(e) => assert!(!e.is_fatal(), "{e:?} handed out as a message"),
                            Got::Event(..) => assert_eq!(c.outstanding(), before),
                            reply => {
                                let o = before.expect("a reply with nothing outstanding");
                                assert_eq!(c.outstanding(), None, "a reply ends the request");
                                let fits = match reply {
                                    Got::Value(_) => o.ty == MsgType::Read,
                                    Got::Dir(_) => o.ty == MsgType::Directory,
                                    Got::Tx(_) => o.ty == MsgType::TransactionStart,
                                    _ => {
                                        !matches!(o.ty, MsgType::Read | MsgType::Directory | MsgType::TransactionStart)
                                    }
                                };
                                assert!(fits, "{reply:?} for {o:?}");
                            }
                        }
                        if x.honest() {
                            assert_eq!(Some(got), expected.pop_front(), "at step {step}");
                        }
                    }
                }
            }
            x.pump(&page);
            if c.is_broken() {
                assert_eq!(c.poll(&page).map(drop), Err(Error::Broken));
                assert_eq!(c.send(&page, &Req::TxStart.request(), 0), Err(Error::Broken));
                return;
            }
        }
        if x.honest() {
            // Drain: everything queued arrives, and the request stream was intact.
            page.set_tamper(None);
            for _ in 0..64 {
                x.serve(&page, &mut current, &mut expected);
                x.pump(&page);
                page.budget(CALL_BUDGET);
                let p = c.poll(&page).expect("honest xenstored");
                if let Some(m) = p.message.map(own) {
                    assert_eq!(Some(m), expected.pop_front());
                }
            }
            assert!(expected.is_empty(), "messages lost: {expected:?}");
            assert_eq!(x.received, sent, "the requests, whole and in order");
        }
    });
}

/// Regression: a reply that arrives before its request was written whole (a misbehaving
/// xenstored answering early) ends the request, and the next `Client::send` then encodes
/// over the unsent rest of the earlier one (`out_sent = 0`, `client.rs`): xenstored sees
/// a truncated request followed by the next one, so the stream to it is no longer framed
/// and the client waits for a reply that will not come. Only a xenstored that breaks the
/// protocol can cause it. Fixed: `send` queues the new request after the unsent rest;
/// `xs_client_hostile` now checks the request stream in its hostile cases too.
#[test]
fn regression_early_reply_keeps_the_request_stream_framed() {
    let page = CheckedPage::new(4096);
    page.own(&guest_owned());
    let mut c = Client::new();
    c.attach(&page).unwrap();
    let write = Req::Write("k".into(), vec![b'v'; 3000]);
    let id = c.send(&page, &write.request(), 0).unwrap();
    // xenstored takes what fits, and answers at once.
    let mut seen: Vec<u8> = (0..RING_SIZE).map(|i| page.get_u8(REQ + i)).collect();
    page.put_u32(REQ_CONS, RING_SIZE as u32);
    let reply = frame(MsgType::Write as u32, id, 0, b"OK\0");
    page.put_bytes(RSP, &reply);
    page.put_u32(RSP_PROD, reply.len() as u32);
    assert_eq!(c.poll(&page).unwrap().message.map(own), Some(Got::Done));
    let read = Req::Read("k".into());
    let id2 = c.send(&page, &read.request(), 0).unwrap();
    // xenstored takes everything the guest writes from now on.
    for _ in 0..8 {
        let (cons, prod) = (page.get_u32(REQ_CONS), page.get_u32(REQ_PROD));
        seen.extend((cons..prod).map(|i| page.get_u8(REQ + i as usize % RING_SIZE)));
        page.put_u32(REQ_CONS, prod);
        c.poll(&page).unwrap();
    }
    let want = [write.message(id, 0), read.message(id2, 0)].concat();
    assert_eq!(seen.len(), want.len(), "bytes xenstored received");
    assert!(seen == want, "the request stream is no longer framed");
}
