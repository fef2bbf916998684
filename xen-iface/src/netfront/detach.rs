//! Closing an open netfront whose back end goes away after the handshake (`xl
//! network-detach`): the rings stopped, the xenbus close protocol
//! ([`crate::xenbus::close::close`]), then every page taken back and the event channel
//! closed.
//!
//! The pages come back only after the close protocol, when the back end has had its
//! chance to unmap them (netback unmaps when the front end says `Closing`, and is done
//! when it says `Closed`): each grant that ends frees its page, each page the back end
//! still maps is leaked and counted ([`crate::grant::loan`]), never freed. The device
//! then holds nothing, and every call on it fails with [`super::NetfrontError::Closed`].

use super::device::Device;
use super::open::Host;
use crate::grant::loan::{Frame, Returned};
use crate::shared::SharedMem;
use crate::xenbus::close::{close, Closing};
use crate::xenbus::Store;

/// What closing an open netfront did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detached {
    /// The close protocol's end.
    pub closing: Closing,
    /// Pages taken back: freed, or leaked because the back end still maps them.
    pub returned: Returned,
    /// The event channel closed.
    pub port: u32,
}

impl<P: Frame + SharedMem> Device<P> {
    /// Closes the device whose front end is at `frontend`: stops the rings, runs the
    /// close protocol (each of its waits at most `wait_ns`), takes every page back and
    /// closes the event channel. `None` if it was closed already.
    pub fn detach<H: Host<Page = P>>(
        &mut self,
        host: &mut H,
        store: &mut impl Store,
        frontend: &str,
        wait_ns: u64,
    ) -> Option<Detached> {
        if self.rings.is_closed() {
            return None;
        }
        self.rings.close();
        let closing = close(store, frontend, &self.backend, wait_ns);
        let returned = self.take_back(host);
        host.close_channel(self.port);
        Some(Detached { closing, returned, port: self.port })
    }
}

#[cfg(test)]
mod tests;
