//! A fake xenbus for host tests: a [`Store`] over a real [`Session`] talking to the fake
//! xenstored, on a simulated clock, with a fake back end that moves its state key as a
//! netback does, or misbehaves. Used by the handshake's tests and the netfront's.

use super::{Store, XenbusState};
use crate::shared::testing::FakePage;
use crate::xenstore::fake::FakeXenstored;
use crate::xenstore::session::{Session, Waiter};
use crate::xenstore::CallError;

/// The front end's directory.
pub(crate) const FRONT: &str = "device/vif/0";
/// The back end's directory.
pub(crate) const BACK: &str = "/local/domain/0/backend/vif/5/0";
/// How long one xenstore request may take.
pub(crate) const CALL_TIMEOUT: u64 = 10_000_000;
/// How long the handshake waits for the back end.
pub(crate) const WAIT: u64 = 50_000_000;

/// How the back end behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// InitWait at once; Connected once the front end is; Closed after it.
    Honest,
    /// Stays `Initialising`.
    NeverReady,
    /// No state key, ever.
    Absent,
    /// Stays in InitWait, whatever the front end does.
    NeverConnects,
    /// Goes Closing when the front end connects (and Closed after it).
    ClosesOnConnect,
    /// Writes this into its state key when the front end connects.
    Garbage(&'static str),
    /// Its directory disappears when the front end connects (`xl network-detach`).
    Removed,
    /// Connects; once closing (the toolstack wrote `Closing`), never reaches `Closed`.
    StaysClosing,
}

/// The store, xenstored and the back end, on one clock.
pub(crate) struct FakeBus {
    pub mem: FakePage,
    pub session: Session,
    pub xs: FakeXenstored,
    pub now: u64,
    pub backend: Backend,
    /// Pauses taken (each a millisecond).
    pub pauses: u64,
    /// xenstore requests made.
    pub calls: u64,
    /// What else the back end does when the front end says Closed (once): a test's
    /// netback unmapping its grants.
    pub on_front_closed: Option<Box<dyn FnMut()>>,
}

impl FakeBus {
    pub fn new(backend: Backend) -> Self {
        let mem = FakePage::new(4096);
        let mut session = Session::new();
        session.attach(&mem).unwrap();
        let mut xs = FakeXenstored::new();
        xs.set(&format!("{FRONT}/backend"), BACK);
        xs.set(&format!("{FRONT}/backend-id"), "0");
        xs.set(&format!("{FRONT}/mac"), "00:16:3e:5a:00:01");
        xs.set(&format!("{BACK}/ip"), "10.0.5.2");
        match backend {
            Backend::Absent => {}
            Backend::NeverReady => xs.set(&format!("{BACK}/state"), "1"),
            _ => xs.set(&format!("{BACK}/state"), "2"),
        }
        FakeBus { mem, session, xs, now: 0, backend, pauses: 0, calls: 0, on_front_closed: None }
    }

    /// The toolstack takes the device away (`xl network-detach`): the back end's state
    /// becomes `Closing`.
    pub fn detach(&mut self) {
        self.xs.set(&format!("{BACK}/state"), XenbusState::Closing.as_str());
    }

    /// The front end's value at `key`.
    pub fn front(&self, key: &str) -> Option<String> {
        self.xs.get(&format!("{FRONT}/{key}"))
    }

    /// The back end reacts to the front end's state.
    fn backend_acts(&mut self) {
        backend_acts(&mut self.xs, self.backend, &mut self.on_front_closed);
    }

    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut Session, &FakePage, &mut BusWaiter<'_>) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        self.calls += 1;
        assert!(self.calls < 100_000, "the handshake never ended");
        let mut w = BusWaiter {
            xs: &mut self.xs,
            mem: &self.mem,
            now: &mut self.now,
            backend: self.backend,
            on_front_closed: &mut self.on_front_closed,
        };
        f(&mut self.session, &self.mem, &mut w)
    }
}

fn backend_acts(xs: &mut FakeXenstored, backend: Backend, on_front_closed: &mut Option<Box<dyn FnMut()>>) {
    let front = xs.get(&format!("{FRONT}/state"));
    if front.as_deref() == Some("6") {
        if let Some(mut f) = on_front_closed.take() {
            f();
        }
    }
    let state = format!("{BACK}/state");
    // Connecting moves a back end only out of InitWait (not once the toolstack closes it).
    let waiting = xs.get(&state).as_deref() == Some("2");
    match (front.as_deref(), backend) {
        (Some("4"), Backend::Honest | Backend::StaysClosing) if waiting => {
            xs.set(&state, XenbusState::Connected.as_str())
        }
        (Some("6"), Backend::Honest | Backend::ClosesOnConnect) if xs.get(&state).is_some() => {
            xs.set(&state, XenbusState::Closed.as_str())
        }
        (Some("4"), Backend::ClosesOnConnect) => xs.set(&state, XenbusState::Closing.as_str()),
        (Some("4"), Backend::Garbage(v)) => xs.set(&state, v),
        (Some("4"), Backend::Removed) => xs.store.retain(|k, _| !k.starts_with(BACK)),
        _ => {}
    }
}

/// Between two polls of a request, xenstored and the back end run; each look at the
/// clock costs a microsecond.
struct BusWaiter<'a> {
    xs: &'a mut FakeXenstored,
    mem: &'a FakePage,
    now: &'a mut u64,
    backend: Backend,
    on_front_closed: &'a mut Option<Box<dyn FnMut()>>,
}

impl Waiter for BusWaiter<'_> {
    fn now_ns(&mut self) -> u64 {
        self.xs.service(self.mem);
        backend_acts(self.xs, self.backend, self.on_front_closed);
        *self.now += 1_000;
        *self.now
    }
    fn notify(&mut self) {}
    fn relax(&mut self) {
        *self.now += 10_000;
    }
}

impl Store for FakeBus {
    fn read(&mut self, path: &str) -> Result<Vec<u8>, CallError> {
        self.call(|s, mem, w| s.read(mem, path, CALL_TIMEOUT, w))
    }
    fn write(&mut self, path: &str, value: &[u8], tx: u32) -> Result<(), CallError> {
        self.call(|s, mem, w| s.write(mem, path, value, tx, CALL_TIMEOUT, w))
    }
    fn transaction_start(&mut self) -> Result<u32, CallError> {
        self.call(|s, mem, w| s.transaction_start(mem, CALL_TIMEOUT, w))
    }
    fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), CallError> {
        self.call(|s, mem, w| s.transaction_end(mem, tx, commit, CALL_TIMEOUT, w))
    }
    fn now_ns(&mut self) -> u64 {
        self.now
    }
    fn pause(&mut self) {
        self.pauses += 1;
        assert!(self.pauses < 1_000_000, "the handshake never ended");
        self.now += 1_000_000;
        self.backend_acts();
    }
}
