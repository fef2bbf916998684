//! Host tests of the handshake against the fake xenstored and a fake back end: honest,
//! never ready, never connecting, closing mid-handshake, writing garbage, disappearing,
//! and a xenstored that answers every commit with `EAGAIN`.

use super::connect::MAX_COMMIT_ATTEMPTS;
use super::fake::{Backend, FakeBus, BACK, FRONT, WAIT};
use super::XenbusState;
use super::{run, Action, Answer, Connect, ConnectError, Keys, StoreStep};
use crate::xenstore::{CallError, Error as XsError, XsErrno};

fn keys() -> Keys {
    vec![("tx-ring-ref", "8".into()), ("rx-ring-ref", "9".into()), ("event-channel", "17".into())]
}

/// Runs the handshake; returns its result and how often the driver was asked to allocate.
fn connect(bus: &mut FakeBus) -> (Result<(), ConnectError>, u32) {
    let mut allocations = 0;
    let mut c = Connect::new(FRONT, WAIT);
    let r = run(&mut c, bus, |backend, id| {
        assert_eq!((backend, id), (BACK, 0));
        allocations += 1;
        Some(keys())
    });
    (r, allocations)
}

#[test]
fn states_parse_strictly() {
    assert_eq!(XenbusState::parse(b"4"), Some(XenbusState::Connected));
    assert_eq!(XenbusState::parse(b" 2\n"), Some(XenbusState::InitWait));
    assert_eq!(XenbusState::parse(b"008"), Some(XenbusState::Reconfigured));
    for bad in [&b""[..], b"9", b"-1", b"4x", b"banana", b"\xff", b"1000", b"+4", b"4 4"] {
        assert_eq!(XenbusState::parse(bad), None, "{bad:?}");
    }
    assert_eq!(XenbusState::Closed.as_str(), "6");
}

#[test]
fn an_honest_back_end_connects() {
    let mut bus = FakeBus::new(Backend::Honest);
    assert_eq!(connect(&mut bus), (Ok(()), 1));
    assert_eq!(bus.front("state").as_deref(), Some("4"));
    assert_eq!(bus.front("tx-ring-ref").as_deref(), Some("8"));
    assert_eq!(bus.front("event-channel").as_deref(), Some("17"));
    assert_eq!((bus.xs.commits, bus.xs.aborts), (1, 0), "one transaction");
}

/// The exact sequence, step by step, and an answer out of turn.
#[test]
fn the_machine_asks_in_order() {
    let mut c = Connect::new(FRONT, 100);
    let front = |k: &str| format!("{FRONT}/{k}");
    assert_eq!(c.step(0, Answer::Begin), Action::Read(front("backend")));
    assert_eq!(c.step(0, Answer::Read(Ok(BACK.into()))), Action::Read(front("backend-id")));
    assert_eq!(c.step(0, Answer::Read(Ok(b"5".to_vec()))), Action::Read(format!("{BACK}/state")));
    assert_eq!(c.step(1, Answer::Read(Ok(b"1".to_vec()))), Action::Pause);
    assert_eq!(c.step(2, Answer::Paused), Action::Read(format!("{BACK}/state")));
    assert_eq!(c.step(3, Answer::Read(Ok(b"2".to_vec()))), Action::Allocate { backend: BACK.into(), backend_id: 5 });
    assert_eq!(c.step(3, Answer::Allocated(vec![("a", "1".into())])), Action::StartTransaction);
    assert_eq!(c.step(3, Answer::Started(Ok(7))), Action::Write { path: front("a"), value: "1".into(), tx: 7 });
    assert_eq!(c.step(3, Answer::Written(Ok(()))), Action::Write { path: front("state"), value: "4".into(), tx: 7 });
    assert_eq!(c.step(3, Answer::Written(Ok(()))), Action::EndTransaction { tx: 7, commit: true });
    assert_eq!(c.step(3, Answer::Ended(Ok(()))), Action::Read(format!("{BACK}/state")));
    assert_eq!(c.step(4, Answer::Read(Ok(b"4".to_vec()))), Action::Connected);
    // The driver fails afterwards: the front end closes again.
    assert_eq!(c.step(5, Answer::Abort), Action::Write { path: front("state"), value: "6".into(), tx: 0 });
    assert_eq!(c.step(5, Answer::Written(Ok(()))), Action::Read(format!("{BACK}/state")));
    assert_eq!(c.step(6, Answer::Read(Ok(b"4".to_vec()))), Action::Pause, "the back end has a moment");
    assert_eq!(c.step(7, Answer::Paused), Action::Read(format!("{BACK}/state")));
    assert_eq!(c.step(8, Answer::Read(Ok(b"6".to_vec()))), Action::Failed(ConnectError::Aborted));

    let mut c = Connect::new(FRONT, 100);
    c.step(0, Answer::Begin);
    assert_eq!(c.step(0, Answer::Paused), Action::Failed(ConnectError::Misuse));
    assert_eq!(c.step(0, Answer::Begin), Action::Failed(ConnectError::Misuse), "stays failed");
}

#[test]
fn a_back_end_that_never_gets_ready_times_out_before_anything_is_allocated() {
    for (backend, last) in [(Backend::NeverReady, Some(XenbusState::Initialising)), (Backend::Absent, None)] {
        let mut bus = FakeBus::new(backend);
        let (r, allocations) = connect(&mut bus);
        assert_eq!(r, Err(ConnectError::Timeout { waiting_for: XenbusState::InitWait, last }), "{backend:?}");
        assert_eq!(allocations, 0);
        assert!(bus.now > WAIT && bus.now < WAIT + 5_000_000, "ended at {} ns", bus.now);
        assert_eq!(bus.front("state"), None, "nothing published");
    }
}

#[test]
fn a_back_end_that_never_connects_times_out_and_the_front_end_closes() {
    let mut bus = FakeBus::new(Backend::NeverConnects);
    let (r, allocations) = connect(&mut bus);
    assert_eq!(
        r,
        Err(ConnectError::Timeout { waiting_for: XenbusState::Connected, last: Some(XenbusState::InitWait) })
    );
    assert_eq!(allocations, 1);
    // The wait for Connected, then as long again for the back end to follow to Closed.
    assert!(bus.now < 3 * WAIT + 5_000_000, "ended at {} ns", bus.now);
    assert_eq!(bus.front("state").as_deref(), Some("6"), "Closed, so the back end lets go of the rings");
}

#[test]
fn a_back_end_that_closes_or_vanishes_mid_handshake_ends_it_at_once() {
    for (backend, error) in [
        (Backend::ClosesOnConnect, ConnectError::BackendClosed(XenbusState::Closing)),
        (Backend::Removed, ConnectError::BackendGone),
        (Backend::Garbage("banana"), ConnectError::BadState("banana".into())),
        (Backend::Garbage("99"), ConnectError::BadState("99".into())),
    ] {
        let mut bus = FakeBus::new(backend);
        let (r, _) = connect(&mut bus);
        assert_eq!(r, Err(error), "{backend:?}");
        assert!(bus.pauses < 5, "{backend:?}: waited {} pauses", bus.pauses);
        assert_eq!(bus.front("state").as_deref(), Some("6"), "{backend:?}");
    }
}

#[test]
fn garbage_before_the_handshake_ends_it_too() {
    for (value, error) in [
        ("banana", ConnectError::BadState("banana".into())),
        ("5", ConnectError::BackendClosed(XenbusState::Closing)),
        ("6", ConnectError::BackendClosed(XenbusState::Closed)),
    ] {
        let mut bus = FakeBus::new(Backend::NeverConnects);
        bus.xs.set(&format!("{BACK}/state"), value);
        assert_eq!(connect(&mut bus), (Err(error), 0), "{value}");
        assert_eq!(bus.front("state"), None);
    }
    let mut bus = FakeBus::new(Backend::Honest);
    bus.xs.set(&format!("{FRONT}/backend-id"), "32752"); // DOMID_FIRST_RESERVED
    assert_eq!(connect(&mut bus).0, Err(ConnectError::BadBackendId("32752".into())));
    bus.xs.set(&format!("{FRONT}/backend"), "no spaces allowed");
    assert_eq!(connect(&mut bus).0, Err(ConnectError::BadBackendPath));
    bus.xs.store.remove(&format!("{FRONT}/backend"));
    assert_eq!(
        connect(&mut bus).0,
        Err(ConnectError::Store(StoreStep::ReadBackend, CallError::Xs(XsError::Xs(XsErrno::NotFound))))
    );
}

/// Issue 11, item 5: the transaction was started again for as long as xenstored said
/// EAGAIN.
#[test]
fn eagain_for_ever_ends_after_a_bounded_number_of_commits() {
    let mut bus = FakeBus::new(Backend::Honest);
    bus.xs.eagain = u32::MAX;
    let (r, allocations) = connect(&mut bus);
    assert_eq!(r, Err(ConnectError::TransactionConflicts(MAX_COMMIT_ATTEMPTS)));
    assert_eq!(allocations, 1);
    let ends = bus.xs.seen.iter().filter(|(h, _)| h.ty == crate::xenstore::MsgType::TransactionEnd as u32).count();
    assert_eq!(ends, MAX_COMMIT_ATTEMPTS as usize);
    assert_eq!(bus.front("state"), None, "never published");

    // A few conflicts are retried.
    let mut bus = FakeBus::new(Backend::Honest);
    bus.xs.eagain = 3;
    let mut c = Connect::new(FRONT, WAIT);
    assert_eq!(run(&mut c, &mut bus, |_, _| Some(keys())), Ok(()));
    assert_eq!((c.attempts(), bus.xs.commits), (4, 1));
}

#[test]
fn a_failure_inside_the_transaction_throws_it_away() {
    let mut bus = FakeBus::new(Backend::Honest);
    let mut c = Connect::new(FRONT, WAIT);
    let r = run(&mut c, &mut bus, |_, _| Some(vec![("ok", "1".into()), ("bad key!", "2".into())]));
    assert_eq!(r, Err(ConnectError::Store(StoreStep::Write("bad key!"), CallError::Xs(XsError::InvalidPath))));
    assert_eq!((bus.xs.commits, bus.xs.aborts), (0, 1));
    assert_eq!(bus.front("ok"), None);

    let mut bus = FakeBus::new(Backend::Honest);
    let mut c = Connect::new(FRONT, WAIT);
    assert_eq!(run(&mut c, &mut bus, |_, _| None), Err(ConnectError::Allocation));
    assert!(bus.xs.pending.is_empty() && bus.xs.commits == 0 && bus.front("state").is_none());
}

#[test]
fn xenstore_failures_during_the_wait_are_reported() {
    let mut bus = FakeBus::new(Backend::NeverConnects);
    bus.xs.silence = 1; // the first reply is lost
    let (r, _) = connect(&mut bus);
    assert_eq!(r, Err(ConnectError::Store(StoreStep::ReadBackend, CallError::Timeout)));
    let mut c = Connect::new(FRONT, WAIT);
    c.step(0, Answer::Begin);
    c.step(0, Answer::Read(Ok(BACK.into())));
    c.step(0, Answer::Read(Ok(b"0".to_vec())));
    let broken = CallError::Broken(XsError::Stalled);
    assert_eq!(c.step(0, Answer::Read(Err(broken))), Action::Failed(ConnectError::Store(StoreStep::ReadState, broken)));
    assert!(ConnectError::Timeout { waiting_for: XenbusState::Connected, last: None }
        .to_string()
        .contains("did not reach Connected"));
}

/// A connected front end's reading of its back end's state: closing and removal are
/// acted on; anything that is not a state, or a failed read, is ignored (and said why).
#[test]
fn a_connected_front_end_judges_its_back_ends_state_once() {
    use super::close::{judge, Watched};
    use crate::xenstore::{CallError, Error as XsError, XsErrno};
    assert_eq!(judge(Ok(b"4".to_vec())), Watched::Stays(XenbusState::Connected));
    assert_eq!(judge(Ok(b" 5\n".to_vec())), Watched::Closes(XenbusState::Closing));
    assert_eq!(judge(Ok(b"6".to_vec())), Watched::Closes(XenbusState::Closed));
    assert_eq!(judge(Err(CallError::Xs(XsError::Xs(XsErrno::NotFound)))), Watched::Removed);
    for garbage in [&b"banana"[..], b"9", b"", b"-5", b"\xff5"] {
        assert!(matches!(judge(Ok(garbage.to_vec())), Watched::Ignored(ref why) if why.contains("not a xenbus state")));
    }
    assert!(matches!(judge(Err(CallError::Timeout)), Watched::Ignored(ref why) if why.contains("Timeout")));
    assert!(matches!(judge(Err(CallError::Xs(XsError::Xs(XsErrno::AccessDenied)))), Watched::Ignored(_)));
}
