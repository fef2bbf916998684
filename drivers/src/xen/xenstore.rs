//! The xenstore driver: `xen_iface::xenstore::Session` given its shared page, the event
//! channel to xenstored, and the kernel's clock.
//!
//! The ring and its event channel come from HVM parameters for PVH and HVM guests
//! ([`XenStore::init`]), both checked before use; a classic PV guest maps the ring its
//! start info names and attaches to it ([`XenStore::attach`]). Requests are synchronous, one at a time under a lock,
//! each with a deadline the session checks on every iteration; a request that misses it
//! is abandoned (its late reply dropped by id) and the next one goes out as usual.
//!
//! Watches: the session keeps the events of the watches set ([`XenStore::watch`]) in a
//! bounded queue; anything else that is not the awaited reply is dropped and counted,
//! the first few logged. Once [`XenStore::listen`] connected xenstored's event channel,
//! its handler only notes that messages are waiting; a driver reads that flag
//! ([`XenStore::messages_waiting`], one load) wherever it likes and, only when it is
//! set, drains the ring for events ([`XenStore::take_events_for`]). No request goes out
//! to look for events.

use alloc::vec::Vec;
use arch::platform::{Clock, Irq, IrqError, IrqHandler};
use arch::xen::events::EventChannels;
use arch::xen::shared::SharedPage;
use arch::xen::Xen;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use spin::Mutex;
use xen_iface::hypercall::param;
use xen_iface::xenbus::Store;
use xen_iface::xenstore::ring::INTERFACE_SIZE;
use xen_iface::xenstore::session::{Counters, Dropped};
use xen_iface::xenstore::{CallError, Error as XsError, Session, Waiter};

/// How long a request may wait for its reply.
const REPLY_TIMEOUT_NS: u64 = 10_000_000_000;
/// Dropped messages logged; later ones are only counted.
const DROPS_LOGGED: u32 = 8;
/// The end of the identity map, where the ring page must lie.
const MAPPED: u64 = 1 << 32;

/// Why xenstore could not be attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// An HVM parameter could not be read.
    Param(u32, i64),
    /// The ring frame is 0 or not wholly inside the identity-mapped low 4 GiB.
    Unmapped(u64),
    /// The event channel parameter is not a port.
    BadPort(u64),
    /// The ring's indexes are impossible.
    Ring(XsError),
}

/// The xenstore connection.
pub struct XenStore {
    xen: Xen,
    clock: &'static dyn Clock,
    page: SharedPage,
    port: u32,
    session: Mutex<Session>,
    drops_logged: AtomicU32,
    waiting: MessagesWaiting,
}

/// xenstored's event channel handler: notes that bytes may be waiting in the ring.
struct MessagesWaiting(AtomicBool);

impl IrqHandler for MessagesWaiting {
    fn handle(&self, _port: Irq) {
        self.0.store(true, Ordering::Release);
    }
}

/// The kernel's side of a blocking call: its clock, xenstored's event channel, a spin.
struct Kernel<'a> {
    store: &'a XenStore,
}

impl Waiter for Kernel<'_> {
    fn now_ns(&mut self) -> u64 {
        self.store.clock.now_ns()
    }

    fn notify(&mut self) {
        self.store.xen.evtchn_send(self.store.port);
    }

    fn relax(&mut self) {
        core::hint::spin_loop();
    }

    fn dropped(&mut self, what: Dropped) {
        let n = self.store.drops_logged.fetch_add(1, Ordering::Relaxed);
        if n < DROPS_LOGGED {
            log::warn!("xenstore: dropped {what:?} (no watch of ours, or no request waits for it)");
        } else if n == DROPS_LOGGED {
            log::warn!("xenstore: further dropped messages are counted, not logged");
        }
    }
}

impl XenStore {
    /// Attaches to this domain's xenstore ring.
    pub fn init(xen: Xen, clock: &'static dyn Clock) -> Result<XenStore, StoreError> {
        let pfn = xen.hvm_param(param::STORE_PFN).map_err(|e| StoreError::Param(param::STORE_PFN, e))?;
        let port = xen.hvm_param(param::STORE_EVTCHN).map_err(|e| StoreError::Param(param::STORE_EVTCHN, e))?;
        let addr = param::page_address(pfn, MAPPED).ok_or(StoreError::Unmapped(pfn))?;
        let port = param::event_port(port).ok_or(StoreError::BadPort(port))?;
        // SAFETY: Xen names this frame as our xenstore ring; it lies in the identity-mapped
        // low 4 GiB (checked) and only this driver uses it.
        let page = unsafe { SharedPage::new(addr, INTERFACE_SIZE) };
        XenStore::attach(xen, clock, page, port)
    }

    /// Attaches to the xenstore ring `page` (mapped by the caller, used by nothing else)
    /// whose event channel to xenstored is `port`; the ring's indexes are checked first.
    pub fn attach(xen: Xen, clock: &'static dyn Clock, page: SharedPage, port: u32) -> Result<XenStore, StoreError> {
        let mut session = Session::new();
        session.attach(&page).map_err(StoreError::Ring)?;
        Ok(XenStore {
            xen,
            clock,
            page,
            port,
            session: Mutex::new(session),
            drops_logged: AtomicU32::new(0),
            waiting: MessagesWaiting(AtomicBool::new(false)),
        })
    }

    /// Connects xenstored's event channel to the handler that notes messages waiting
    /// (and unmasks it): from now on a watch event wakes the CPU.
    pub fn listen(&'static self, events: &'static EventChannels) -> Result<(), IrqError> {
        events.bind(self.port, &self.waiting)
    }

    /// True if xenstored notified since the last [`XenStore::take_events_for`]: a load,
    /// no more.
    #[inline]
    pub fn messages_waiting(&self) -> bool {
        self.waiting.0.load(Ordering::Acquire)
    }

    /// Sets a watch on `path` whose events carry `token`.
    pub fn watch(&self, path: &str, token: &str) -> Result<(), CallError> {
        self.session.lock().watch(&self.page, path, token, REPLY_TIMEOUT_NS, &mut Kernel { store: self })
    }

    /// Removes the watch on `path` with `token`.
    pub fn unwatch(&self, path: &str, token: &str) -> Result<(), CallError> {
        self.session.lock().unwatch(&self.page, path, token, REPLY_TIMEOUT_NS, &mut Kernel { store: self })
    }

    /// Reads what xenstored sent (clearing the flag first, so a notification that comes
    /// meanwhile is seen next time) and takes the events queued for the watch `token`;
    /// returns how many there were.
    pub fn take_events_for(&self, token: &str) -> Result<usize, CallError> {
        self.waiting.0.store(false, Ordering::Release);
        let mut session = self.session.lock();
        session.drain(&self.page, &mut Kernel { store: self })?;
        Ok(session.take_events_for(token))
    }

    /// Reads the value at `path`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, CallError> {
        self.session.lock().read(&self.page, path, REPLY_TIMEOUT_NS, &mut Kernel { store: self })
    }

    /// Writes `value` at `path`, in transaction `tx` (0: none).
    pub fn write(&self, path: &str, value: &[u8], tx: u32) -> Result<(), CallError> {
        self.session.lock().write(&self.page, path, value, tx, REPLY_TIMEOUT_NS, &mut Kernel { store: self })
    }

    /// Starts a transaction; returns its id.
    pub fn transaction_start(&self) -> Result<u32, CallError> {
        self.session.lock().transaction_start(&self.page, REPLY_TIMEOUT_NS, &mut Kernel { store: self })
    }

    /// Ends transaction `tx`, committing it if `commit`.
    pub fn transaction_end(&self, tx: u32, commit: bool) -> Result<(), CallError> {
        self.session.lock().transaction_end(&self.page, tx, commit, REPLY_TIMEOUT_NS, &mut Kernel { store: self })
    }

    /// What the session dropped so far.
    pub fn counters(&self) -> Counters {
        self.session.lock().counters()
    }
}

/// The xenbus handshake's access to xenstore.
impl Store for &XenStore {
    fn read(&mut self, path: &str) -> Result<Vec<u8>, CallError> {
        XenStore::read(self, path)
    }

    fn write(&mut self, path: &str, value: &[u8], tx: u32) -> Result<(), CallError> {
        XenStore::write(self, path, value, tx)
    }

    fn transaction_start(&mut self) -> Result<u32, CallError> {
        XenStore::transaction_start(self)
    }

    fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<(), CallError> {
        XenStore::transaction_end(self, tx, commit)
    }

    fn now_ns(&mut self) -> u64 {
        self.clock.now_ns()
    }

    fn pause(&mut self) {
        let until = self.clock.now_ns().saturating_add(1_000_000);
        while self.clock.now_ns() < until {
            core::hint::spin_loop();
        }
    }
}
