//! The xenstore client driver: requests over the shared ring, replies waited for with a
//! deadline. The driver sets no watches; a watch event on the ring is logged and dropped.
//!
//! The ring and its event channel come from HVM parameters (for PVH and HVM guests
//! alike). The protocol is `xen_iface::xenstore`'s; this module adds the memory, the
//! notifications, the waiting, and owned copies of what comes back. Requests are
//! synchronous: one at a time, under a lock.

use alloc::string::String;
use alloc::vec::Vec;
use arch::platform::Clock;
use arch::xen::shared::SharedPage;
use arch::xen::Xen;
use spin::Mutex;
use xen_iface::hypercall::param;
use xen_iface::xenstore::ring::INTERFACE_SIZE;
use xen_iface::xenstore::{Client, Error as XsError, Message, Reply, Request};

/// How long a request may wait for its reply.
const REPLY_TIMEOUT_NS: u64 = 10_000_000_000;

/// Why a xenstore operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The protocol layer refused or xenstored answered with an error.
    Xs(XsError),
    /// No reply within the deadline.
    Timeout,
    /// An HVM parameter could not be read.
    Param(u32, i64),
    /// The ring frame is outside the identity-mapped low 4 GiB.
    Unmapped(u64),
    /// The reply was not the kind the request expects.
    Unexpected,
}

impl From<XsError> for StoreError {
    fn from(e: XsError) -> Self {
        StoreError::Xs(e)
    }
}

/// A reply, copied out of the ring.
enum Owned {
    Value(Vec<u8>),
    /// A listing, not kept: no request of this driver asks for one.
    Directory,
    Done,
    Transaction(u32),
}

/// The xenstore connection.
pub struct XenStore {
    xen: Xen,
    clock: &'static dyn Clock,
    page: SharedPage,
    port: u32,
    client: Mutex<Client>,
}

impl XenStore {
    /// Attaches to this domain's xenstore ring.
    pub fn init(xen: Xen, clock: &'static dyn Clock) -> Result<XenStore, StoreError> {
        let pfn = xen.hvm_param(param::STORE_PFN).map_err(|e| StoreError::Param(param::STORE_PFN, e))?;
        let port = xen.hvm_param(param::STORE_EVTCHN).map_err(|e| StoreError::Param(param::STORE_EVTCHN, e))?;
        let addr = pfn << 12;
        if pfn == 0 || addr >= 1 << 32 {
            return Err(StoreError::Unmapped(addr));
        }
        // SAFETY: Xen names this frame as our xenstore ring; it lies in the identity-mapped
        // low 4 GiB and only this driver uses it.
        let page = unsafe { SharedPage::new(addr, INTERFACE_SIZE) };
        let mut client = Client::new();
        client.attach(&page)?;
        Ok(XenStore { xen, clock, page, port: port as u32, client: Mutex::new(client) })
    }

    fn request(&self, req: &Request<'_>, tx: u32) -> Result<Owned, StoreError> {
        let mut c = self.client.lock();
        c.send(&self.page, req, tx)?;
        self.xen.evtchn_send(self.port);
        let deadline = self.clock.now_ns().saturating_add(REPLY_TIMEOUT_NS);
        loop {
            let polled = c.poll(&self.page)?;
            if polled.notify {
                self.xen.evtchn_send(self.port);
            }
            let outcome = match polled.message {
                Some(Ok(Message::Reply(r))) => Some(Ok(match r {
                    Reply::Value(v) => Owned::Value(v.to_vec()),
                    Reply::Directory(_) => Owned::Directory,
                    Reply::Done => Owned::Done,
                    Reply::TransactionStarted(id) => Owned::Transaction(id),
                })),
                Some(Ok(Message::Event(_))) => {
                    log::warn!("xenstore: dropped a watch event (this driver sets no watches)");
                    None
                }
                Some(Err(e)) => Some(Err(e)),
                None if self.clock.now_ns() > deadline => return Err(StoreError::Timeout),
                None => {
                    core::hint::spin_loop();
                    None
                }
            };
            match outcome {
                Some(Ok(reply)) => return Ok(reply),
                // A bad message that answered our request is the answer; a stray one is dropped.
                Some(Err(e)) if c.outstanding().is_none() => return Err(e.into()),
                Some(Err(e)) => log::warn!("xenstore: dropped a bad message ({e:?})"),
                None => {}
            }
        }
    }

    /// Reads the value at `path`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        match self.request(&Request::Read(path), 0)? {
            Owned::Value(v) => Ok(v),
            _ => Err(StoreError::Unexpected),
        }
    }

    /// Reads the value at `path` as text.
    pub fn read_string(&self, path: &str) -> Result<String, StoreError> {
        String::from_utf8(self.read(path)?).map_err(|_| StoreError::Xs(XsError::BadPayload))
    }

    /// Writes `value` at `path`, in transaction `tx` (0: none).
    pub fn write(&self, path: &str, value: &str, tx: u32) -> Result<(), StoreError> {
        match self.request(&Request::Write(path, value.as_bytes()), tx)? {
            Owned::Done => Ok(()),
            _ => Err(StoreError::Unexpected),
        }
    }

    /// Starts a transaction; returns its id.
    pub fn transaction_start(&self) -> Result<u32, StoreError> {
        match self.request(&Request::TransactionStart, 0)? {
            Owned::Transaction(id) => Ok(id),
            _ => Err(StoreError::Unexpected),
        }
    }

    /// Ends transaction `tx`: commits if `commit`. `Xs(Xs(EAGAIN))` means "conflict,
    /// start again".
    pub fn transaction_end(&self, tx: u32, commit: bool) -> Result<(), StoreError> {
        match self.request(&Request::TransactionEnd { commit }, tx)? {
            Owned::Done => Ok(()),
            _ => Err(StoreError::Unexpected),
        }
    }

    /// Reads `path` until `accept` likes its value or `timeout_ns` passes; returns the
    /// last value read.
    pub fn wait_for(&self, path: &str, timeout_ns: u64, accept: impl Fn(&str) -> bool) -> Result<String, StoreError> {
        let deadline = self.clock.now_ns().saturating_add(timeout_ns);
        loop {
            let v = self.read_string(path).unwrap_or_default();
            if accept(&v) {
                return Ok(v);
            }
            if self.clock.now_ns() > deadline {
                return Err(StoreError::Timeout);
            }
            let pause = self.clock.now_ns() + 1_000_000;
            while self.clock.now_ns() < pause {
                core::hint::spin_loop();
            }
        }
    }
}
