//! The Xen PV console as a [`Console`]: bytes into the shared ring, then an event-channel
//! notification so xenconsoled picks them up (into `xl console` and its log files).
//!
//! The ring's frame and event channel come from HVM parameters, so this works for PVH
//! and HVM guests alike; a classic PV guest hands over its mapped ring ([`XenConsole::from_ring`]). A full ring is waited out for a bounded time; after that, or if
//! the backend's indexes turn impossible, output is dropped rather than blocking the
//! kernel. Before power-off, [`Console::flush`] waits (bounded) for xenconsoled to drain
//! the ring, or a panic's last lines would go with the domain.

use arch::platform::Console;
use arch::xen::shared::SharedPage;
use arch::xen::Xen;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;
use xen_iface::console::{ConsoleOut, INTERFACE_SIZE};
use xen_iface::hypercall::param;

/// Polls of a full ring before output is dropped.
const FULL_RING_SPINS: u32 = 2_000_000;
/// Polls of the ring before power-off gives up waiting for xenconsoled to drain it (about
/// a second; xenconsoled is a dom0 process and may take a while to be scheduled).
const FLUSH_SPINS: u32 = 50_000_000;

/// Why the console is unavailable.
#[derive(Clone, Copy, Debug)]
pub enum XenConsoleError {
    /// The HVM parameter could not be read.
    Param(u32, i64),
    /// The ring frame (this number) is 0 or not wholly inside the identity-mapped low 4 GiB.
    Unmapped(u64),
    /// The event channel parameter is not a port.
    BadPort(u64),
    /// The ring's indexes are impossible.
    Broken,
}

/// The PV console.
pub struct XenConsole {
    xen: Xen,
    page: SharedPage,
    port: u32,
    out: Mutex<ConsoleOut>,
    broken: AtomicBool,
}

impl XenConsole {
    /// Attaches to this domain's console ring.
    pub fn new(xen: Xen) -> Result<Self, XenConsoleError> {
        let pfn = xen.hvm_param(param::CONSOLE_PFN).map_err(|e| XenConsoleError::Param(param::CONSOLE_PFN, e))?;
        let port =
            xen.hvm_param(param::CONSOLE_EVTCHN).map_err(|e| XenConsoleError::Param(param::CONSOLE_EVTCHN, e))?;
        let addr = param::page_address(pfn, 1 << 32).ok_or(XenConsoleError::Unmapped(pfn))?;
        let port = param::event_port(port).ok_or(XenConsoleError::BadPort(port))?;
        // SAFETY: Xen names this frame as our console ring; it lies in the identity-mapped
        // low 4 GiB (checked) and only this driver touches it.
        let page = unsafe { SharedPage::new(addr, INTERFACE_SIZE) };
        Self::from_ring(xen, page, port)
    }

    /// Attaches to a ring mapped already: a classic PV guest's, whose machine frame and
    /// event channel come from its start info (`arch::boot::pv` maps it).
    pub fn from_ring(xen: Xen, page: SharedPage, port: u32) -> Result<Self, XenConsoleError> {
        let out = ConsoleOut::attach(&page).map_err(|_| XenConsoleError::Broken)?;
        Ok(XenConsole { xen, page, port, out: Mutex::new(out), broken: AtomicBool::new(false) })
    }
}

impl Console for XenConsole {
    fn write(&self, mut bytes: &[u8]) {
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        let Some(mut out) = self.out.try_lock() else {
            return;
        };
        let mut spins = 0;
        while !bytes.is_empty() {
            match out.write(&self.page, bytes) {
                Ok(0) => {
                    spins += 1;
                    if spins > FULL_RING_SPINS {
                        return; // the backend is not draining: drop the rest
                    }
                    core::hint::spin_loop();
                }
                Ok(n) => {
                    bytes = bytes.get(n..).unwrap_or(&[]);
                    self.xen.evtchn_send(self.port);
                }
                Err(_) => {
                    self.broken.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    fn flush(&self) {
        let Some(out) = self.out.try_lock() else { return };
        for _ in 0..FLUSH_SPINS {
            if self.broken.load(Ordering::Relaxed) || out.drained(&self.page) {
                return;
            }
            core::hint::spin_loop();
        }
    }

    fn name(&self) -> &'static str {
        "xen-console"
    }
}
