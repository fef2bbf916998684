//! A fake xenstored for host tests, on the other side of a [`FakePage`]: a flat map of
//! paths that answers requests as xenstored does, and can also misbehave (mangle a reply,
//! leave requests unanswered and answer them late, flood watch events, answer every
//! commit with `EAGAIN`). Used by the tests of the client, the session, and the xenbus
//! handshake.

use super::ring::{REQ, REQ_CONS, REQ_PROD, RING_SIZE, RSP, RSP_CONS, RSP_PROD};
use super::wire::HEADER_SIZE;
use super::{Header, MsgType};
use crate::shared::testing::FakePage;
use crate::shared::SharedMem;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A tiny xenstored: a flat map of paths, watches, and transactions (writes in a
/// transaction land at its commit; reads do not see them before).
#[derive(Default)]
pub(crate) struct FakeXenstored {
    pub store: BTreeMap<String, Vec<u8>>,
    pub watches: Vec<(String, String)>,
    pub next_tx: u32,
    pub inbuf: Vec<u8>,
    pub out: VecDeque<u8>,
    /// Requests seen: header and payload.
    pub seen: Vec<(Header, Vec<u8>)>,
    /// Applied to the next reply (not events) before it is queued.
    pub mangle: Option<fn(&mut Header, &mut Vec<u8>)>,
    /// Misbehaviour: requests to leave unanswered (their replies are kept in `held`).
    pub silence: u32,
    /// Replies held back by `silence`, to be sent late with [`FakeXenstored::release_held`].
    pub held: Vec<(Header, Vec<u8>)>,
    /// Misbehaviour: a watch event for a watch nobody set, queued on every service.
    pub flood: bool,
    /// Misbehaviour: commits answered with `EAGAIN` (`u32::MAX`: for ever).
    pub eagain: u32,
    /// Writes of open transactions, by id.
    pub pending: BTreeMap<u32, Vec<(String, Vec<u8>)>>,
    /// Transactions committed.
    pub commits: u32,
    /// Transactions ended without committing.
    pub aborts: u32,
}

impl FakeXenstored {
    pub fn new() -> Self {
        FakeXenstored { next_tx: 41, ..Default::default() }
    }

    /// The value at `path` as text, if there is one.
    pub fn get(&self, path: &str) -> Option<String> {
        self.store.get(path).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Sets `path` to `value` (the other side of the store: a back end, the toolstack).
    pub fn set(&mut self, path: &str, value: &str) {
        self.store.insert(path.into(), value.as_bytes().to_vec());
    }

    /// Answers the requests held back by `silence`, late.
    pub fn release_held(&mut self, mem: &FakePage) {
        for (h, p) in core::mem::take(&mut self.held) {
            self.handle(&h, &p);
        }
        self.pump(mem);
    }

    pub fn queue(&mut self, h: Header, payload: &[u8]) {
        self.out.extend(h.to_bytes());
        self.out.extend(payload);
    }

    fn reply(&mut self, req: &Header, ty: MsgType, payload: &[u8]) {
        let mut h = Header { ty: ty as u32, req_id: req.req_id, tx_id: req.tx_id, len: payload.len() as u32 };
        let mut p = payload.to_vec();
        if let Some(m) = self.mangle.take() {
            m(&mut h, &mut p);
        }
        self.queue(h, &p);
    }

    pub fn event(&mut self, path: &str, token: &str) {
        let p = format!("{path}\0{token}\0");
        self.queue(Header { ty: MsgType::WatchEvent as u32, req_id: 0, tx_id: 0, len: p.len() as u32 }, p.as_bytes());
    }

    fn fire(&mut self, path: &str) {
        let hits: Vec<_> = self
            .watches
            .iter()
            .filter(|(w, _)| path == w || path.starts_with(&format!("{w}/")))
            .map(|(_, t)| t.clone())
            .collect();
        for t in hits {
            self.event(path, &t);
        }
    }

    /// Takes the request bytes, answers complete requests, writes what fits of the replies.
    pub fn service(&mut self, mem: &FakePage) {
        let (mut cons, prod) = (mem.read_u32(REQ_CONS), mem.read_u32(REQ_PROD));
        while cons != prod {
            self.inbuf.push(mem.read_u8(REQ + cons as usize % RING_SIZE));
            cons = cons.wrapping_add(1);
        }
        mem.write_u32(REQ_CONS, cons);
        while self.inbuf.len() >= HEADER_SIZE {
            let h = Header::from_bytes(self.inbuf[..HEADER_SIZE].try_into().unwrap());
            let end = HEADER_SIZE + h.len as usize;
            if self.inbuf.len() < end {
                break;
            }
            let p: Vec<u8> = self.inbuf.drain(..end).skip(HEADER_SIZE).collect();
            self.seen.push((h, p.clone()));
            if self.silence > 0 {
                self.silence -= 1;
                self.held.push((h, p));
            } else {
                self.handle(&h, &p);
            }
        }
        if self.flood {
            self.event("some/path", "nobody-set-this");
        }
        self.pump(mem);
    }

    fn handle(&mut self, h: &Header, p: &[u8]) {
        let strs: Vec<String> = p.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        let path = strs[0].clone();
        let ok = |x: &mut Self| x.reply(h, MsgType::from_u32(h.ty).unwrap(), b"OK\0");
        match MsgType::from_u32(h.ty).unwrap() {
            MsgType::Read => match self.store.get(&path).cloned() {
                Some(v) => self.reply(h, MsgType::Read, &v),
                None => self.reply(h, MsgType::Error, b"ENOENT\0"),
            },
            MsgType::Write if h.tx_id != 0 => {
                let value = p[path.len() + 1..].to_vec();
                match self.pending.get_mut(&h.tx_id) {
                    Some(writes) => {
                        writes.push((path, value));
                        ok(self);
                    }
                    None => self.reply(h, MsgType::Error, b"ENOENT\0"),
                }
            }
            MsgType::Write => {
                let value = &p[path.len() + 1..];
                self.store.insert(path.clone(), value.to_vec());
                ok(self);
                self.fire(&path);
            }
            MsgType::Mkdir => {
                self.store.entry(path.clone()).or_default();
                ok(self);
            }
            MsgType::Rm => {
                let before = self.store.len();
                self.store.retain(|k, _| k != &path && !k.starts_with(&format!("{path}/")));
                if self.store.len() == before {
                    self.reply(h, MsgType::Error, b"ENOENT\0");
                } else {
                    ok(self);
                    self.fire(&path);
                }
            }
            MsgType::Directory => {
                let prefix = format!("{path}/");
                let kids: BTreeSet<&str> = self
                    .store
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .map(|rest| rest.split('/').next().unwrap())
                    .collect();
                let body: Vec<u8> = kids.iter().flat_map(|k| k.bytes().chain([0])).collect();
                self.reply(h, MsgType::Directory, &body);
            }
            MsgType::Watch => {
                self.watches.push((path.clone(), strs[1].clone()));
                ok(self);
                self.event(&path, &strs[1]); // xenstored fires every new watch once
            }
            MsgType::Unwatch => {
                self.watches.retain(|(w, t)| !(w == &path && t == &strs[1]));
                ok(self);
            }
            MsgType::TransactionStart => {
                self.next_tx += 1;
                self.pending.insert(self.next_tx, Vec::new());
                let id = format!("{}\0", self.next_tx);
                self.reply(h, MsgType::TransactionStart, id.as_bytes());
            }
            MsgType::TransactionEnd => {
                let Some(writes) = self.pending.remove(&h.tx_id) else {
                    return self.reply(h, MsgType::Error, b"ENOENT\0");
                };
                if p.first() != Some(&b'T') {
                    self.aborts += 1;
                    return ok(self);
                }
                if self.eagain > 0 {
                    if self.eagain != u32::MAX {
                        self.eagain -= 1;
                    }
                    return self.reply(h, MsgType::Error, b"EAGAIN\0");
                }
                self.commits += 1;
                for (path, value) in writes {
                    self.store.insert(path.clone(), value);
                    self.fire(&path);
                }
                ok(self)
            }
            _ => self.reply(h, MsgType::Error, b"ENOSYS\0"),
        }
    }

    /// Takes the request bytes without answering.
    pub fn swallow(&mut self, mem: &FakePage) {
        mem.write_u32(REQ_CONS, mem.read_u32(REQ_PROD));
    }

    /// Writes queued reply bytes into `rsp` as far as there is room.
    pub fn pump(&mut self, mem: &FakePage) {
        let (cons, mut prod) = (mem.read_u32(RSP_CONS), mem.read_u32(RSP_PROD));
        while prod.wrapping_sub(cons) < RING_SIZE as u32 {
            let Some(b) = self.out.pop_front() else { break };
            mem.write_u8(RSP + prod as usize % RING_SIZE, b);
            prod = prod.wrapping_add(1);
        }
        mem.write_u32(RSP_PROD, prod);
    }
}
