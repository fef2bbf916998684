//! Host tests of opening a netfront against the fake xenbus and a fake host whose grant
//! table, memory and event channels can run out, whose back end can map pages and go
//! away: whatever fails, every grant is revoked (the live count is back where it was),
//! no page is freed while the back end may still reach it, and the event channel is
//! closed.

use super::*;
use crate::grant::frames::PeerFrames;
use crate::grant::{GrantRef, GrantTable, ENTRY_SIZE, GTF_WRITING};
use crate::netfront::device::Received;
use crate::netfront::{NetfrontError, Violation};
use crate::ring::{RING, RSP_PROD};
use crate::shared::testing::FakePage;
use crate::xenbus::fake::{Backend, FakeBus, FRONT, WAIT};
use crate::xenbus::XenbusState;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// Pages the device needs: two rings, a transmit and a receive page per id.
pub(crate) const PAGES: usize = 2 + TX_IDS + RX_IDS;

/// The grant table, shared with the pages so a page can tell, when freed, whether it is
/// still granted.
pub(crate) struct Table {
    pub table: GrantTable<2048>,
    pub mem: FakePage,
    pub freed: Vec<u64>,
    pub freed_while_granted: Vec<u64>,
}

impl Table {
    /// True if some entry still grants `frame` or the peer still maps it.
    fn reaches(&self, frame: u64) -> bool {
        (0..self.mem.len() / ENTRY_SIZE).any(|r| {
            self.table.entry(&self.mem, r as GrantRef).is_some_and(|e| e.frame as u64 == frame && e.flags != 0)
        })
    }
}

pub(crate) struct TestPage {
    frame: u64,
    mem: Rc<FakePage>,
    table: Rc<RefCell<Table>>,
}

impl std::fmt::Debug for TestPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestPage({:#x})", self.frame)
    }
}

impl Frame for TestPage {
    fn frame(&self) -> u64 {
        self.frame
    }
}

impl SharedMem for TestPage {
    fn len(&self) -> usize {
        self.mem.len()
    }
    fn read_u8(&self, o: usize) -> u8 {
        self.mem.read_u8(o)
    }
    fn write_u8(&self, o: usize, v: u8) {
        self.mem.write_u8(o, v)
    }
    fn read_u32(&self, o: usize) -> u32 {
        self.mem.read_u32(o)
    }
    fn write_u32(&self, o: usize, v: u32) {
        self.mem.write_u32(o, v)
    }
    fn read_u64(&self, o: usize) -> u64 {
        self.mem.read_u64(o)
    }
    fn write_u64(&self, o: usize, v: u64) {
        self.mem.write_u64(o, v)
    }
    fn swap_u64(&self, o: usize, v: u64) -> u64 {
        self.mem.swap_u64(o, v)
    }
    fn fetch_and_u64(&self, o: usize, v: u64) -> u64 {
        self.mem.fetch_and_u64(o, v)
    }
    fn fetch_or_u64(&self, o: usize, v: u64) -> u64 {
        self.mem.fetch_or_u64(o, v)
    }
}

impl Drop for TestPage {
    fn drop(&mut self) {
        let mut t = self.table.borrow_mut();
        t.freed.push(self.frame);
        if t.reaches(self.frame) {
            t.freed_while_granted.push(self.frame);
        }
    }
}

/// The kernel's side: memory, grants, event channels; each operation counts as a step,
/// and one step can be made to fail.
pub(crate) struct FakeHost {
    pub table: Rc<RefCell<Table>>,
    next_frame: u64,
    steps: u64,
    fail_at: Option<u64>,
    pub open_ports: BTreeSet<u32>,
    notified: u32,
    /// The back end maps the ring pages as soon as they are granted.
    pub back_end_maps_rings: bool,
    granted: u32,
    /// How grant entries name the pages (a classic PV guest: machine frames).
    peer: PeerFrames,
}

impl FakeHost {
    /// A host whose grant table has `frames` frames.
    pub fn new(frames: usize) -> Self {
        let mem = FakePage::new(frames * 4096);
        let table = GrantTable::new(&mem);
        FakeHost {
            table: Rc::new(RefCell::new(Table { table, mem, freed: Vec::new(), freed_while_granted: Vec::new() })),
            next_frame: 0x1000,
            steps: 0,
            fail_at: None,
            open_ports: BTreeSet::new(),
            notified: 0,
            back_end_maps_rings: false,
            granted: 0,
            peer: PeerFrames::Guest,
        }
    }

    fn step_fails(&mut self) -> bool {
        self.steps += 1;
        self.fail_at == Some(self.steps - 1)
    }

    pub fn live(&self) -> usize {
        self.table.borrow().table.live()
    }
}

impl GrantOps for FakeHost {
    fn grant(&mut self, domid: u16, frame: u64, readonly: bool) -> Result<GrantRef, GrantError> {
        if self.step_fails() {
            return Err(GrantError::Exhausted);
        }
        let frame = self.peer.peer_frame(frame)?;
        let mut t = self.table.borrow_mut();
        let Table { table, mem, .. } = &mut *t;
        let gref = table.grant(mem, domid, frame, readonly)?;
        self.granted += 1;
        if self.back_end_maps_rings && self.granted <= 2 {
            mem.fetch_or_u64(gref as usize * ENTRY_SIZE, GTF_WRITING as u64);
        }
        Ok(gref)
    }
    fn revoke(&mut self, gref: GrantRef) -> Result<(), GrantError> {
        let mut t = self.table.borrow_mut();
        let Table { table, mem, .. } = &mut *t;
        table.revoke(mem, gref)
    }
}

impl Host for FakeHost {
    type Page = TestPage;
    fn alloc_page(&mut self) -> Option<TestPage> {
        if self.step_fails() {
            return None;
        }
        self.next_frame += 1;
        Some(TestPage { frame: self.next_frame, mem: Rc::new(FakePage::new(4096)), table: self.table.clone() })
    }
    fn open_channel(&mut self, _domid: u16) -> Result<u32, i64> {
        if self.step_fails() {
            return Err(-28);
        }
        let port = 10 + self.open_ports.len() as u32;
        self.open_ports.insert(port);
        Ok(port)
    }
    fn close_channel(&mut self, port: u32) {
        assert!(self.open_ports.remove(&port), "closed a port never opened");
    }
    fn notify(&mut self, _port: u32) {
        self.notified += 1;
    }
}

pub(crate) fn open_with(host: &mut FakeHost, bus: &mut FakeBus) -> Result<Device<TestPage>, OpenFailure> {
    open(host, bus, FRONT, WAIT, true)
}

/// After a failed open: nothing granted, nothing freed while granted, no port open.
/// netback: maps the ring pages while connected, unmaps them when the front end closes.
pub(crate) fn netback_unmaps_on_close(host: &mut FakeHost, bus: &mut FakeBus) {
    host.back_end_maps_rings = true;
    let table = host.table.clone();
    bus.on_front_closed = Some(Box::new(move || {
        let t = table.borrow();
        for gref in 0..(t.mem.len() / ENTRY_SIZE) {
            t.mem.fetch_and_u64(gref * ENTRY_SIZE, !(GTF_WRITING as u64));
        }
    }));
}

fn assert_clean(host: &FakeHost, f: &OpenFailure, what: &str) {
    let t = host.table.borrow();
    assert_eq!(t.table.live(), f.returned.leaked, "{what}: live grants are the leaked pages only");
    assert!(t.freed_while_granted.is_empty(), "{what}: freed while granted: {:?}", t.freed_while_granted);
    assert!(host.open_ports.is_empty(), "{what}: event channel left open");
}

#[test]
fn an_honest_back_end_gets_a_working_device() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    let mut dev = open_with(&mut host, &mut bus).unwrap();
    assert_eq!((dev.mac(), dev.ip(), dev.backend_id()), ([0, 0x16, 0x3e, 0x5a, 0, 1], Some("10.0.5.2"), 0));
    assert_eq!((host.live(), dev.grants()), (PAGES, PAGES));
    assert_eq!(dev.rings().rx_posted(), RX_IDS);
    assert_eq!(host.notified, 1, "the posted buffers were announced");
    assert_eq!(bus.front("event-channel"), Some(format!("{}", dev.port())));
    assert_eq!(bus.front("feature-sg").as_deref(), Some("1"));

    // The back end fills receive buffer 0 and answers on the ring.
    let frame: Vec<u8> = (0..60u8).collect();
    dev.rx_page(0).unwrap().write_bytes(14, &frame);
    let rx_ring = dev.ring_pages.get(1).unwrap().page().mem.clone();
    rx_ring.write_u32(RING, 14 << 16); // id 0, offset 14
    rx_ring.write_u32(RING + 4, 60 << 16); // flags 0, status 60
    rx_ring.write_u32(RSP_PROD, 1);
    let mut out = [0u8; 4096];
    assert!(dev.has_rx());
    assert_eq!(dev.receive(&mut out), Ok(Received::Frame { len: 60, validated: false }));
    assert_eq!(dev.rx_unpublished(), 1, "queued again, published in a batch");
    assert!(!dev.flush_rx());
    // A copy: the back end writing the page again changes nothing already received.
    dev.rx_page(0).unwrap().write_bytes(14, &[0xee; 60]);
    assert_eq!(&out[..60], &frame[..]);
    assert_eq!(dev.rings().rx_posted(), RX_IDS, "posted again");
    assert_eq!(dev.receive(&mut out), Ok(Received::Nothing));

    // Transmit fills a page and queues it.
    assert_eq!(dev.transmit(64, |p| p.write_bytes(0, &[1; 64])), Ok(true));
    assert_eq!(dev.transmit(0, |_| {}), Err(NetfrontError::Misuse));
    assert_eq!(dev.rings().tx_free(), TX_IDS - 1);

    // A back end that breaks the protocol: every page comes back.
    rx_ring.write_u32(RSP_PROD, 5000);
    assert!(matches!(dev.receive(&mut out), Err(NetfrontError::Broken(Violation::Ring(_)))));
    let r = dev.take_back(&mut host);
    assert_eq!((r, host.live(), dev.grants()), (Returned { revoked: PAGES, leaked: 0 }, 0, 0));
    assert!(host.table.borrow().freed_while_granted.is_empty());
    assert!(matches!(dev.transmit(64, |_| {}), Err(NetfrontError::Broken(_))));
}

/// Issue 11, item 1: a back end that never writes Connected; the pages used to go back
/// to the heap still granted.
#[test]
fn a_back_end_that_never_connects_gets_every_page_back() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::NeverConnects));
    let f = open_with(&mut host, &mut bus).unwrap_err();
    assert_eq!(
        f.error,
        OpenError::Connect(ConnectError::Timeout {
            waiting_for: XenbusState::Connected,
            last: Some(XenbusState::InitWait)
        })
    );
    assert_eq!(f.returned, Returned { revoked: PAGES, leaked: 0 });
    assert_clean(&host, &f, "never connects");
    assert_eq!(host.table.borrow().freed.len(), PAGES, "all freed, once revoked");
    assert_eq!(bus.front("state").as_deref(), Some("6"), "the front end closed");
    assert!(f.to_string().contains("did not reach Connected"), "{f}");
}

/// Issue 11, item 1: one grant frame holds 504 references, fewer than the 514 needed.
#[test]
fn a_grant_table_too_small_gets_every_page_back() {
    let (mut host, mut bus) = (FakeHost::new(1), FakeBus::new(Backend::Honest));
    let f = open_with(&mut host, &mut bus).unwrap_err();
    assert_eq!(f.error, OpenError::Grant(GrantError::Exhausted));
    assert_eq!(f.returned, Returned { revoked: 504, leaked: 0 });
    assert_clean(&host, &f, "small table");
    assert_eq!(bus.front("state"), None, "nothing published");
}

/// Pages the back end still maps are leaked and counted, never freed.
#[test]
fn pages_the_back_end_still_maps_are_leaked_not_freed() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::ClosesOnConnect));
    host.back_end_maps_rings = true;
    let f = open_with(&mut host, &mut bus).unwrap_err();
    assert_eq!(f.error, OpenError::Connect(ConnectError::BackendClosed(XenbusState::Closing)));
    assert_eq!(f.returned, Returned { revoked: PAGES - 2, leaked: 2 });
    assert_clean(&host, &f, "mapped rings");
    assert_eq!(host.table.borrow().freed.len(), PAGES - 2);
}

/// A back end that unmaps when the front end closes (as netback does): the wait for it
/// lets every page be freed.
#[test]
fn pages_the_back_end_lets_go_of_on_close_are_freed() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::ClosesOnConnect));
    netback_unmaps_on_close(&mut host, &mut bus);
    let f = open_with(&mut host, &mut bus).unwrap_err();
    assert_eq!(f.returned, Returned { revoked: PAGES, leaked: 0 });
    assert_clean(&host, &f, "unmapped on close");
}

/// Issue 11, item 1: a failure at each step of the set-up (every page allocation, every
/// grant, the event channel), and at the handshake's own steps.
#[test]
fn a_failure_at_any_step_gets_every_page_back() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    open_with(&mut host, &mut bus).unwrap();
    let steps = host.steps;
    assert_eq!(steps, 2 * PAGES as u64 + 1);
    let sample = (0..12).chain(250..262).chain(510..530).chain(steps - 12..steps);
    for k in sample {
        let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
        host.fail_at = Some(k);
        let f = open_with(&mut host, &mut bus).unwrap_err();
        // Steps: two ring pages, their two grants, then a page and its grant per id,
        // then the event channel.
        let expected = if k == steps - 1 {
            OpenError::EventChannel(-28)
        } else if k < 2 || (k >= 4 && k % 2 == 0) {
            OpenError::NoMemory
        } else {
            OpenError::Grant(GrantError::Exhausted)
        };
        assert_eq!(f.error, expected, "step {k}");
        assert_eq!(f.returned.leaked, 0, "step {k}");
        assert_clean(&host, &f, &format!("step {k}"));
        assert_eq!(bus.front("state"), None, "step {k}");
    }
    // The handshake's steps.
    type Breakage = (&'static str, fn(&mut FakeBus));
    let cases: [Breakage; 4] = [
        ("commit conflicts for ever", |b| b.xs.eagain = u32::MAX),
        ("back end removed", |b| b.backend = Backend::Removed),
        ("garbage state", |b| b.backend = Backend::Garbage("x")),
        ("lost reply", |b| b.xs.silence = 1),
    ];
    for (what, break_it) in cases {
        let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
        break_it(&mut bus);
        let f = open_with(&mut host, &mut bus).unwrap_err();
        assert_clean(&host, &f, what);
        assert_eq!(f.returned.revoked + f.returned.leaked, if what == "lost reply" { 0 } else { PAGES }, "{what}");
    }
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    bus.xs.silence = 1;
    let f = open_with(&mut host, &mut bus).unwrap_err();
    assert_eq!(f.error, OpenError::Mac(CallError::Timeout));
    let mut bus = FakeBus::new(Backend::Honest);
    bus.xs.set(&format!("{FRONT}/mac"), "00:16:3e:5a:00");
    assert_eq!(open_with(&mut host, &mut bus).unwrap_err().error, OpenError::BadMac("00:16:3e:5a:00".into()));
}

#[test]
fn macs() {
    assert_eq!(parse_mac("00:16:3e:0a:0b:ff\n"), Some([0, 0x16, 0x3e, 0x0a, 0x0b, 0xff]));
    assert_eq!(parse_mac("00:16:3e:0a:0b"), None);
    assert_eq!(parse_mac("00:16:3e:0a:0b:ff:01"), None);
    assert_eq!(parse_mac("zz:16:3e:0a:0b:ff"), None);
    assert_eq!(parse_mac("0:16:3e:0a:0b:ff"), None);
    assert_eq!(parse_mac("+0:16:3e:0a:0b:ff"), None);
}

/// Issue 14: a GSO segment over three slots (data, its extra-info slot, data) comes out
/// as one frame gathered from both pages, checksum vouched for; a packet whose remaining
/// slots never come breaks the device instead of leaving half a frame.
#[test]
fn a_large_segment_is_gathered_from_its_slots() {
    use crate::netif::{NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA};
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    let mut dev = open_with(&mut host, &mut bus).unwrap();
    let rx_ring = dev.ring_pages.get(1).unwrap().page().mem.clone();
    let respond = |at: u32, lo: u32, hi: u32| {
        rx_ring.write_u32(RING + at as usize * 8, lo);
        rx_ring.write_u32(RING + at as usize * 8 + 4, hi);
    };
    // Buffers were posted in id order, so index i holds id i.
    let head: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
    dev.rx_page(0).unwrap().write_bytes(0, &head);
    dev.rx_page(2).unwrap().write_bytes(0, &[0xab; 300]);
    let first = (NETRXF_MORE_DATA | NETRXF_EXTRA_INFO | NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED) as u32;
    respond(0, 0, first | 4096 << 16); // id 0, offset 0; 4096 bytes
    respond(1, 1 | 1460 << 16, 0); // extra-info: GSO, size 1460 (uses id 1)
    respond(2, 2, 300 << 16); // id 2: the last 300 bytes
    rx_ring.write_u32(RSP_PROD, 3);
    let mut out = vec![0u8; 65_549];
    assert_eq!(dev.receive(&mut out), Ok(Received::Frame { len: 4396, validated: true }));
    assert_eq!(&out[..4096], &head[..]);
    assert!(out[4096..4396].iter().all(|&b| b == 0xab));
    assert_eq!((dev.rings().rx_posted(), dev.rx_unpublished()), (RX_IDS, 3), "all three queued again");
    dev.flush_rx();

    // Too large for the caller's buffer: dropped whole, every buffer back.
    respond(3, 3, first | 4096 << 16);
    respond(4, 1, 0);
    respond(5, 5, 300 << 16);
    rx_ring.write_u32(RSP_PROD, 6);
    assert_eq!(dev.receive(&mut out[..4000]), Ok(Received::Dropped));
    assert_eq!(dev.rings().rx_posted(), RX_IDS);

    // More data announced, never published.
    respond(6, 6, NETRXF_MORE_DATA as u32 | 100 << 16);
    rx_ring.write_u32(RSP_PROD, 7);
    assert_eq!(dev.receive(&mut out), Err(NetfrontError::Broken(Violation::Truncated)));
    let r = dev.take_back(&mut host);
    assert_eq!((r.leaked, host.live()), (0, 0));
}

/// Issue 14's `net=no-offload`: the front end offers none of the receive offloads, and a
/// back end that sends a multi-slot packet anyway breaks the device.
#[test]
fn without_offloads_nothing_is_offered_and_a_multi_slot_packet_is_a_violation() {
    use crate::netif::NETRXF_MORE_DATA;
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    let mut dev = open(&mut host, &mut bus, FRONT, WAIT, false).unwrap();
    assert_eq!(bus.front("feature-sg").as_deref(), Some("0"));
    assert_eq!(bus.front("feature-gso-tcpv4").as_deref(), Some("0"));
    assert_eq!(bus.front("feature-no-csum-offload").as_deref(), Some("1"));
    assert_eq!(bus.front("feature-rx-notify").as_deref(), Some("1"));
    let rx_ring = dev.ring_pages.get(1).unwrap().page().mem.clone();
    rx_ring.write_u32(RING, 0);
    rx_ring.write_u32(RING + 4, NETRXF_MORE_DATA as u32 | 100 << 16);
    rx_ring.write_u32(RSP_PROD, 1);
    let mut out = [0u8; 4096];
    assert_eq!(dev.receive(&mut out), Err(NetfrontError::Broken(Violation::Unnegotiated { flags: NETRXF_MORE_DATA })));
    let r = dev.take_back(&mut host);
    assert_eq!((r.leaked, host.live()), (0, 0));
}

/// A classic PV guest's p2m: guest frame `f` is machine frame `0x80000 + 3 * f`; frame
/// `hole`, if given, has none.
fn p2m(hole: Option<u64>) -> &'static [u64] {
    let list: Vec<u64> =
        (0..0x1000 + PAGES as u64 + 2).map(|f| if Some(f) == hole { u64::MAX } else { 0x80000 + 3 * f }).collect();
    Box::leak(list.into_boxed_slice())
}

/// Issue 16: the same open, its grants naming machine frames, as a PV guest's must; every
/// page's entry names its own machine frame, none its guest frame.
#[test]
fn a_pv_guest_grants_machine_frames() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    host.peer = PeerFrames::Machine(p2m(None));
    let mut dev = open_with(&mut host, &mut bus).unwrap();
    assert_eq!(host.live(), PAGES);
    let t = host.table.borrow();
    let named: BTreeSet<u32> = (0..4 * 512).filter_map(|r| t.table.entry(&t.mem, r)).map(|e| e.frame).collect();
    let want: BTreeSet<u32> = (0x1001..=0x1000 + PAGES as u32).map(|f| 0x80000 + 3 * f).collect();
    assert_eq!(named.len(), PAGES + 1, "every page's own machine frame, and the empty entries' 0");
    assert!(want.iter().all(|f| named.contains(f)));
    drop(t);
    assert_eq!(dev.take_back(&mut host).revoked, PAGES);
}

/// A page with no machine frame behind it is never granted: the open fails, named, and
/// everything granted before it comes back.
#[test]
fn a_page_outside_the_p2m_fails_the_open_cleanly() {
    let (mut host, mut bus) = (FakeHost::new(4), FakeBus::new(Backend::Honest));
    host.peer = PeerFrames::Machine(p2m(Some(0x1005)));
    let f = open_with(&mut host, &mut bus).unwrap_err();
    assert_eq!(f.error, OpenError::Grant(GrantError::NotOurs(0x1005)));
    assert_eq!(f.returned, Returned { revoked: 4, leaked: 0 }, "the four pages granted before it");
    assert_clean(&host, &f, "p2m hole");
    assert_eq!(bus.front("state"), None, "nothing published");
}
