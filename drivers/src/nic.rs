//! The `Nic` trait: what the network stack needs from a network device.
//!
//! Implemented by virtio-net and netfront. The network stack's adapter
//! (`kernel/src/net/device.rs`) sits above this trait; drivers never see smoltcp.

pub mod csum;

/// The largest frame a NIC with receive segmentation offload hands up: an IPv4 packet of
/// up to 64 KiB (a TCP segment the device did not split) and its Ethernet header.
pub const GSO_MAX_FRAME: usize = 14 + 65_535;

/// Why a NIC operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicError {
    /// No free transmit slot right now.
    Busy,
    /// The frame is larger than the device takes.
    TooLarge,
    /// The device misbehaved and was shut off; no further I/O.
    Broken,
    /// The device went away (its back end was detached) and was closed; no further I/O.
    Gone(Gone),
}

/// Why a device went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// The back end went `Closing` (the toolstack detaches the device).
    BackendClosing,
    /// The back end went `Closed`.
    BackendClosed,
    /// The back end's node disappeared (the device was removed).
    BackendRemoved,
}

impl Gone {
    /// One word for a console line (`NET down reason=...`).
    pub fn word(self) -> &'static str {
        match self {
            Gone::BackendClosing => "backend-closing",
            Gone::BackendClosed => "backend-closed",
            Gone::BackendRemoved => "backend-removed",
        }
    }
}

/// What one [`Nic::receive`] took from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Nothing was waiting.
    Nothing,
    /// A frame of this many bytes, now at the start of the caller's buffer.
    Frame(usize),
    /// A packet the device took but could not hand on (a runt, a bad checksum, one
    /// larger than the buffer): counted by the driver, dropped.
    Dropped,
}

/// Counters every NIC keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames transmitted.
    pub tx_frames: u64,
    /// Interrupts taken.
    pub interrupts: u64,
    /// Responses from the device dropped as invalid.
    pub bad_responses: u64,
    /// Grant references the driver holds (PV drivers; 0 for emulated devices).
    pub grants: u64,
}

/// A network interface.
pub trait Nic: Send {
    /// MAC address.
    fn mac(&self) -> [u8; 6];
    /// Largest IP packet (the Ethernet payload) the device carries.
    fn mtu(&self) -> usize;
    /// True if [`transmit`](Nic::transmit) would find a free slot.
    fn can_transmit(&mut self) -> bool;
    /// Sends one frame of `len` bytes, which `fill` writes.
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), NicError>;
    /// True if a received frame is waiting.
    fn can_receive(&mut self) -> bool;
    /// Copies the next received frame out of the device's memory into `into` (at least
    /// [`max_rx_frame`](Nic::max_rx_frame) bytes): the one copy a received byte takes
    /// before the stack's own buffers, and the end of the device's (or back end's) hold
    /// on it.
    fn receive(&mut self, into: &mut [u8]) -> Result<Received, NicError>;
    /// Re-arms the receive interrupt after the stack drained the queue. Returns `false`
    /// if the device has no interrupt and must be polled.
    fn enable_rx_interrupt(&mut self) -> bool;
    /// Under interrupt moderation, the clock time until which the last
    /// [`enable_rx_interrupt`](Nic::enable_rx_interrupt) left the receive interrupt off:
    /// the caller polls again then (and calls it again). `None`: armed, or polled.
    fn rx_interrupt_held_until_ns(&self) -> Option<u64> {
        None
    }
    /// True if the device hands up TCP segments it did not split (netfront's GSO,
    /// virtio-net's `GUEST_TSO4`), up to [`GSO_MAX_FRAME`].
    fn rx_segments(&self) -> bool {
        false
    }
    /// Largest frame [`receive`](Nic::receive) hands out: an Ethernet frame of the MTU,
    /// or a large segment where the device hands those up ([`rx_segments`](Nic::rx_segments)).
    fn max_rx_frame(&self) -> usize {
        if self.rx_segments() {
            GSO_MAX_FRAME
        } else {
            self.mtu() + 14
        }
    }
    /// True if the device checks received TCP/UDP checksums itself (or its back end
    /// vouched for them), so the stack must not: a frame whose checksum was left blank by
    /// a back end offloading it would fail the stack's check.
    fn rx_checksums_checked(&self) -> bool {
        false
    }
    /// Handles what the device's control path reported since the last call (a PV back
    /// end going away) and says whether the device is still there. The network loop
    /// calls it on every turn, so when nothing was reported it reads a flag and no more
    /// (no VM exit, no hypercall). `Err(NicError::Gone(_))` once the device is gone for
    /// good; every other call then fails or finds nothing.
    fn check_link(&mut self) -> Result<(), NicError> {
        Ok(())
    }
    /// Name for the mode report (`virtio-net`, `netfront`).
    fn name(&self) -> &'static str;
    /// Counters.
    fn stats(&self) -> NicStats;
}
