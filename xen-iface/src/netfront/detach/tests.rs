//! Host tests of closing an open netfront whose back end goes away: the close protocol in
//! xenstore, every page back (or leaked and counted while the back end maps it), the
//! event channel closed, and a device that says it is closed from then on.

use super::*;
use crate::netfront::open::tests::{netback_unmaps_on_close, open_with, FakeHost, PAGES};
use crate::netfront::NetfrontError;
use crate::xenbus::close::{judge, BackendEnd, Watched, CLOSE_STEP_WAIT_NS};
use crate::xenbus::fake::{Backend, FakeBus, BACK, FRONT};
use crate::xenbus::{Store, XenbusState};
use crate::xenstore::MsgType;

/// The values the front end wrote into its state key, in order.
fn front_states(bus: &FakeBus) -> Vec<String> {
    let key = format!("{FRONT}/state\0");
    bus.xs
        .seen
        .iter()
        .filter(|(h, _)| h.ty == MsgType::Write as u32 && h.tx_id == 0)
        .filter_map(|(_, p)| p.strip_prefix(key.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect()
}

#[test]
fn a_detached_back_end_gets_the_close_protocol_and_every_page_back() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    netback_unmaps_on_close(&mut host, &mut bus);
    let mut dev = open_with(&mut host, &mut bus).unwrap();
    assert_eq!(host.live(), PAGES);
    bus.detach();
    assert_eq!(judge(bus.read(&format!("{BACK}/state"))), Watched::Closes(XenbusState::Closing));
    let d = dev.detach(&mut host, &mut bus, FRONT, CLOSE_STEP_WAIT_NS).expect("open, so closed now");
    assert!(d.closing.front_closed);
    assert_eq!(d.closing.backend, BackendEnd::Closed);
    assert!(d.closing.took_ns < 100_000_000, "no wait ran out: {} ns", d.closing.took_ns);
    assert_eq!(d.returned, Returned { revoked: PAGES, leaked: 0 });
    assert_eq!(front_states(&bus), ["5", "6"], "Closing, then Closed (after the handshake's transaction)");
    assert_eq!(bus.front("state").as_deref(), Some("6"));
    assert_eq!((host.live(), dev.grants()), (0, 0));
    assert!(host.table.borrow().freed_while_granted.is_empty());
    assert!(host.open_ports.is_empty(), "the event channel closed");
    // From now on the device says it is closed; nothing is touched.
    let mut out = [0u8; 64];
    assert!(!dev.has_rx());
    assert_eq!(dev.receive(&mut out), Err(NetfrontError::Closed));
    assert_eq!(dev.transmit(64, |_| panic!("no page to fill")), Err(NetfrontError::Closed));
    assert_eq!(dev.tx_reclaim(), Err(NetfrontError::Closed));
    assert!(!dev.flush_rx() && !dev.arm_rx());
    assert_eq!(dev.detach(&mut host, &mut bus, FRONT, CLOSE_STEP_WAIT_NS), None, "closed once");
}

/// A back end that stays `Closing` and keeps its mappings: the protocol's waits end at
/// their deadline, the mapped pages are leaked and counted, the rest freed.
#[test]
fn a_back_end_that_never_lets_go_costs_two_bounded_waits_and_its_mapped_pages() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::StaysClosing));
    host.back_end_maps_rings = true;
    let mut dev = open_with(&mut host, &mut bus).unwrap();
    bus.detach();
    let wait = 20_000_000;
    let d = dev.detach(&mut host, &mut bus, FRONT, wait).unwrap();
    assert_eq!(d.closing.backend, BackendEnd::Stuck(Some(XenbusState::Closing)));
    assert!(d.closing.front_closed);
    assert!(d.closing.took_ns >= wait && d.closing.took_ns <= 2 * wait + 5_000_000, "{} ns", d.closing.took_ns);
    assert_eq!(d.returned, Returned { revoked: PAGES - 2, leaked: 2 });
    assert_eq!(host.live(), 2, "live grants are the leaked pages only");
    assert!(host.table.borrow().freed_while_granted.is_empty());
    assert!(host.open_ports.is_empty());
}

/// The toolstack removed the back end's node: nothing to wait for.
#[test]
fn a_removed_back_end_is_closed_without_waiting() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    let mut dev = open_with(&mut host, &mut bus).unwrap();
    bus.xs.store.retain(|k, _| !k.starts_with(BACK));
    let d = dev.detach(&mut host, &mut bus, FRONT, CLOSE_STEP_WAIT_NS).unwrap();
    assert_eq!(d.closing.backend, BackendEnd::Removed);
    assert!(d.closing.took_ns < 100_000_000, "{} ns", d.closing.took_ns);
    assert_eq!(d.returned, Returned { revoked: PAGES, leaked: 0 });
    assert!(host.open_ports.is_empty());
}
