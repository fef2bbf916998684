//! smoltcp's `Device`, implemented once over any [`Nic`].
//!
//! Tokens borrow the NIC through a `RefCell`, because smoltcp hands out a receive and a
//! transmit token together, and it may transmit (an ACK, an echo reply) while it still
//! processes the received frame. So the NIC copies a received frame out of its ring
//! straight into the adapter's own buffer (its only copy before smoltcp's socket buffers),
//! which frees the ring slot and the NIC before smoltcp looks at it; transmitted frames are
//! built in the NIC's buffer directly.
//!
//! The NIC says how large a received frame can be (netfront takes in GSO segments of up
//! to 64 KiB, which smoltcp accepts whatever the MTU) and whether it checks receive
//! checksums itself; smoltcp then only computes them on transmit.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use drivers::nic::{Nic, Received};
use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// A NIC as a smoltcp device.
pub struct NicDevice<'a> {
    nic: RefCell<&'a mut dyn Nic>,
    rx_frame: RefCell<Vec<u8>>,
    mtu: usize,
    rx_checksums_checked: bool,
}

impl<'a> NicDevice<'a> {
    /// Wraps `nic`.
    pub fn new(nic: &'a mut dyn Nic) -> Self {
        let (mtu, max_rx, rx_checksums_checked) = (nic.mtu(), nic.max_rx_frame(), nic.rx_checksums_checked());
        NicDevice {
            nic: RefCell::new(nic),
            rx_frame: RefCell::new(vec![0; max_rx.max(mtu + 14)]),
            mtu,
            rx_checksums_checked,
        }
    }

    /// The NIC, for calls outside smoltcp (interrupt re-arming, counters).
    pub fn nic(&mut self) -> &mut dyn Nic {
        *self.nic.get_mut()
    }
}

/// Receive token.
pub struct Rx<'b, 'a> {
    nic: &'b RefCell<&'a mut dyn Nic>,
    frame: &'b RefCell<Vec<u8>>,
}

/// Transmit token.
pub struct Tx<'b, 'a> {
    nic: &'b RefCell<&'a mut dyn Nic>,
}

impl phy::RxToken for Rx<'_, '_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let mut buf = self.frame.borrow_mut();
        // An error means the NIC is broken: nothing was received.
        let len = match self.nic.borrow_mut().receive(&mut buf) {
            // The NIC never writes past the buffer; clamp regardless.
            Ok(Received::Frame(len)) => len.min(buf.len()),
            Ok(Received::Nothing | Received::Dropped) | Err(_) => 0,
        };
        // An empty frame (nothing arrived after all) is dropped by smoltcp.
        f(&buf[..len])
    }
}

impl phy::TxToken for Tx<'_, '_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut f = Some(f);
        let mut result = None;
        let sent = self.nic.borrow_mut().transmit(len, &mut |buf| {
            if let Some(f) = f.take() {
                result = Some(f(buf));
            }
        });
        if let Err(e) = sent {
            log::debug!("transmit of {len} bytes dropped: {e:?}");
        }
        match (result, f) {
            (Some(r), _) => r,
            // The NIC refused before filling: build the frame into scratch and drop it.
            (None, Some(f)) => f(&mut vec![0u8; len]),
            (None, None) => unreachable!("the fill closure ran but left no result"),
        }
    }
}

impl<'a> Device for NicDevice<'a> {
    type RxToken<'b>
        = Rx<'b, 'a>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b, 'a>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if !self.nic.get_mut().can_receive() {
            return None;
        }
        Some((Rx { nic: &self.nic, frame: &self.rx_frame }, Tx { nic: &self.nic }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        if !self.nic.get_mut().can_transmit() {
            return None;
        }
        Some(Tx { nic: &self.nic })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        if self.rx_checksums_checked {
            caps.checksum.tcp = Checksum::Tx;
            caps.checksum.udp = Checksum::Tx;
        }
        caps
    }
}
