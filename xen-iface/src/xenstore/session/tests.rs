//! Host tests of [`Session`] against the fake xenstored, honest and not: a flood of
//! watch events, a reply that comes late or never, a xenstored that stops reading.

use super::*;
use crate::shared::testing::FakePage;
use crate::shared::SharedMem;
use crate::xenstore::fake::FakeXenstored;
use crate::xenstore::ring::{RSP_CONS, RSP_PROD};
use crate::xenstore::{Event, MsgType, XsErrno};

const TIMEOUT: u64 = 10_000_000;

/// Time and xenstored for a call: xenstored runs between every two polls; each look at
/// the clock costs a microsecond, each pause a millisecond.
struct Env<'a> {
    mem: &'a FakePage,
    x: &'a mut FakeXenstored,
    now: u64,
    looks: u64,
    /// xenstored does not run at all (it stopped reading its ring).
    stopped: bool,
    dropped: Vec<Dropped>,
}

impl Waiter for Env<'_> {
    fn now_ns(&mut self) -> u64 {
        self.looks += 1;
        assert!(self.looks < 1_000_000, "the call never returned");
        if !self.stopped {
            self.x.service(self.mem);
        }
        self.now += 1_000;
        self.now
    }
    fn notify(&mut self) {}
    fn relax(&mut self) {
        self.now += 1_000_000;
    }
    fn dropped(&mut self, what: Dropped) {
        self.dropped.push(what);
    }
}

fn setup() -> (FakePage, Session, FakeXenstored) {
    let mem = FakePage::new(4096);
    let mut s = Session::new();
    s.attach(&mem).unwrap();
    let mut x = FakeXenstored::new();
    x.set("device/vif/0/mac", "00:16:3e:00:00:01");
    (mem, s, x)
}

fn env<'a>(mem: &'a FakePage, x: &'a mut FakeXenstored) -> Env<'a> {
    Env { mem, x, now: 0, looks: 0, stopped: false, dropped: Vec::new() }
}

#[test]
fn requests_are_answered() {
    let (mem, mut s, mut x) = setup();
    let mut e = env(&mem, &mut x);
    assert_eq!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e), Ok(b"00:16:3e:00:00:01".to_vec()));
    let tx = s.transaction_start(&mem, TIMEOUT, &mut e).unwrap();
    assert_eq!(s.write(&mem, "device/vif/0/state", b"4", tx, TIMEOUT, &mut e), Ok(()));
    assert_eq!(s.transaction_end(&mem, tx, true, TIMEOUT, &mut e), Ok(()));
    assert_eq!(
        s.call(&mem, &Request::Directory("device/vif/0"), 0, TIMEOUT, &mut e),
        Ok(Owned::Entries(vec!["mac".into(), "state".into()]))
    );
    assert_eq!(s.read(&mem, "nothing", TIMEOUT, &mut e), Err(CallError::Xs(Error::Xs(XsErrno::NotFound))));
    assert_eq!(s.read(&mem, "bad path!", TIMEOUT, &mut e), Err(CallError::Xs(Error::InvalidPath)));
    assert_eq!(s.counters(), Counters::default());
    assert_eq!(x.get("device/vif/0/state").as_deref(), Some("4"));
}

/// Issue 11, item 2: the deadline was checked only when a poll produced nothing, so a
/// xenstored that sends an event on every poll held the caller for ever.
#[test]
fn a_flood_of_events_cannot_hold_a_call_past_its_deadline() {
    let (mem, mut s, mut x) = setup();
    x.flood = true;
    x.silence = 1; // and the reply never comes
    let mut e = env(&mem, &mut x);
    assert_eq!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e), Err(CallError::Timeout));
    assert!(e.now <= TIMEOUT + 2_000_000, "returned {} ns after the deadline", e.now - TIMEOUT);
    let c = s.counters();
    assert!(c.events > 100 && c.timeouts == 1, "{c:?}");
    assert_eq!(e.dropped.len() as u64, c.events);
    assert!(e.dropped.iter().all(|d| *d == Dropped::Event));
    // With the flood still on, an answered request is answered.
    assert_eq!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e).map(|v| v.len()), Ok(17));
}

/// Issue 11, item 3: after one lost reply every later request was refused (`Busy`) for
/// good, and the late reply was never read.
#[test]
fn a_timed_out_request_is_abandoned_and_its_late_reply_dropped() {
    let (mem, mut s, mut x) = setup();
    x.silence = 1;
    let mut e = env(&mem, &mut x);
    assert_eq!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e), Err(CallError::Timeout));
    assert_eq!(s.write(&mem, "data/a", b"1", 0, TIMEOUT, &mut e), Ok(()), "the next request goes out");
    // The lost reply turns up while another request waits: dropped by id.
    e.x.release_held(&mem);
    assert_eq!(s.read(&mem, "data/a", TIMEOUT, &mut e), Ok(b"1".to_vec()));
    assert_eq!(e.dropped, [Dropped::LateReply { req_id: 1 }]);
    assert_eq!(s.counters(), Counters { late_replies: 1, timeouts: 1, ..Counters::default() });
    assert_eq!(s.broken(), None);
}

/// A request that xenstored never took out of the ring cannot be abandoned without
/// losing the framing of the stream: the session ends, and says why.
#[test]
fn a_request_stuck_in_the_ring_breaks_the_session_clearly() {
    let (mem, mut s, mut x) = setup();
    let mut e = env(&mem, &mut x);
    e.stopped = true;
    let big = vec![b'v'; 2000]; // more than the 1 KiB ring
    assert_eq!(s.write(&mem, "k", &big, 0, TIMEOUT, &mut e), Err(CallError::Broken(Error::Stalled)));
    assert_eq!(s.broken(), Some(Error::Stalled));
    e.stopped = false;
    assert_eq!(s.read(&mem, "k", TIMEOUT, &mut e), Err(CallError::Broken(Error::Stalled)), "for good");
    // A short request that did go into the ring is abandoned normally.
    let (mem, mut s, mut x) = setup();
    let mut e = env(&mem, &mut x);
    e.stopped = true;
    assert_eq!(s.read(&mem, "k", TIMEOUT, &mut e), Err(CallError::Timeout));
    assert_eq!(s.broken(), None);
}

#[test]
fn bad_messages_are_counted_and_fatal_ones_break_for_good() {
    let (mem, mut s, mut x) = setup();
    // A reply nobody asked for, then the real one.
    x.queue(crate::xenstore::Header { ty: MsgType::Read as u32, req_id: 99, tx_id: 0, len: 0 }, b"");
    let mut e = env(&mem, &mut x);
    assert!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e).is_ok());
    assert_eq!(e.dropped, [Dropped::Bad(Error::UnexpectedReply { req_id: 99 })]);
    assert_eq!(s.counters().bad_messages, 1);
    // xenstored's producer index jumps past the ring.
    mem.write_u32(RSP_PROD, mem.read_u32(RSP_CONS).wrapping_add(5000));
    e.stopped = true;
    let r = s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e);
    assert!(matches!(r, Err(CallError::Broken(Error::RingIndex { .. }))), "{r:?}");
    assert_eq!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e), r, "the first fatal error, for good");
}

/// A watch's events are kept, whether they arrive during a call or with no request
/// outstanding; nothing else is.
#[test]
fn watch_events_are_queued_during_calls_and_drained_between_them() {
    let (mem, mut s, mut x) = setup();
    x.set("backend/vif/0/state", "4");
    let mut e = env(&mem, &mut x);
    assert_eq!(s.watch(&mem, "backend/vif/0/state", "vif0", TIMEOUT, &mut e), Ok(()));
    // xenstored fires a new watch once, after its reply: it comes in with the next drain.
    assert_eq!(s.drain(&mem, &mut e), Ok(1));
    assert_eq!(s.take_event(), Some(Event { path: "backend/vif/0/state".into(), token: "vif0".into() }));
    assert_eq!(s.take_event(), None);
    // The back end changes its state while no request waits: drained, not lost.
    e.x.set("backend/vif/0/state", "5");
    e.x.event("backend/vif/0/state", "vif0");
    e.x.event("elsewhere", "not-ours");
    e.x.pump(&mem);
    assert_eq!(s.drain(&mem, &mut e), Ok(1));
    assert_eq!(s.take_events_for("vif0"), 1);
    assert_eq!(s.drain(&mem, &mut e), Ok(0), "nothing more");
    // An event that arrives while a call waits for its reply is kept too.
    e.x.event("backend/vif/0/state", "vif0");
    assert_eq!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e).map(|v| v.len()), Ok(17));
    assert_eq!(s.take_events_for("vif0"), 1);
    let c = s.counters();
    assert_eq!((c.events_queued, c.events, c.bad_events, c.events_overflowed), (3, 1, 0, 0), "{c:?}");
    // Unwatched: xenstored forgets it, and so does the session.
    assert_eq!(s.unwatch(&mem, "backend/vif/0/state", "vif0", TIMEOUT, &mut e), Ok(()));
    assert!(e.x.watches.is_empty());
    e.x.event("backend/vif/0/state", "vif0");
    e.x.pump(&mem);
    assert_eq!(s.drain(&mem, &mut e), Ok(0));
    assert_eq!(s.counters().events, 2);
}

/// A xenstored that floods events of a real watch, or sends malformed ones, fills a
/// bounded queue and counters, nothing more; a malformed event costs only itself.
#[test]
fn a_flood_of_events_is_bounded_and_malformed_events_are_counted() {
    let (mem, mut s, mut x) = setup();
    let mut e = env(&mem, &mut x);
    assert_eq!(s.watch(&mem, "data", "t", TIMEOUT, &mut e), Ok(()));
    assert_eq!(s.drain(&mem, &mut e), Ok(1));
    assert_eq!(s.take_event().map(|ev| ev.token), Some("t".into()));
    let n = crate::xenstore::watches::QUEUE_MAX + 10;
    for i in 0..n {
        e.x.event(&format!("data/{i}"), "t");
        e.x.event("data/0", "t"); // the same event again: coalesced
    }
    // Malformed: no token, and a path without its terminator.
    let h =
        |len: usize| crate::xenstore::Header { ty: MsgType::WatchEvent as u32, req_id: 0, tx_id: 0, len: len as u32 };
    e.x.queue(h(5), b"data\0");
    e.x.queue(h(6), b"data\0t");
    // Drained a ring's worth at a time (the fake writes what fits in 1 KiB).
    let mut queued = 0;
    for _ in 0..20 {
        e.x.pump(&mem);
        queued += s.drain(&mem, &mut e).unwrap();
    }
    assert_eq!(queued, crate::xenstore::watches::QUEUE_MAX);
    let c = s.counters();
    assert_eq!(c.events_overflowed, 10, "{c:?}");
    assert_eq!(c.bad_events, 2, "{c:?}");
    assert_eq!(c.bad_messages, 0, "{c:?}");
    assert!(e.dropped.contains(&Dropped::BadEvent(Error::MissingNul)), "{:?}", e.dropped);
    assert_eq!(s.take_events_for("t"), crate::xenstore::watches::QUEUE_MAX);
    // The session carries on.
    assert_eq!(s.read(&mem, "device/vif/0/mac", TIMEOUT, &mut e).map(|v| v.len()), Ok(17));
}

#[test]
fn watches_are_limited_and_a_refused_watch_is_not_kept() {
    let (mem, mut s, mut x) = setup();
    let mut e = env(&mem, &mut x);
    for i in 0..crate::xenstore::watches::WATCHES_MAX {
        assert_eq!(s.watch(&mem, "data", &format!("t{i}"), TIMEOUT, &mut e), Ok(()));
    }
    assert_eq!(s.watch(&mem, "data", "more", TIMEOUT, &mut e), Err(CallError::Xs(Error::TooManyWatches)));
    assert_eq!(s.watch(&mem, "bad path!", "t0", TIMEOUT, &mut e), Err(CallError::Xs(Error::InvalidPath)));
    let (mem, mut s, mut x) = setup();
    let mut e = env(&mem, &mut x);
    assert_eq!(s.watch(&mem, "bad path!", "t", TIMEOUT, &mut e), Err(CallError::Xs(Error::InvalidPath)));
    e.x.event("data", "t");
    e.x.pump(&mem);
    assert_eq!(s.drain(&mem, &mut e), Ok(0), "the refused watch's token is not ours");
}
