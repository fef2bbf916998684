//! The network levers of issue 14 (`net=` on the command line) as the kernel applies
//! them: the netfront's (receive offloads, refill batching, event suppression) go to the
//! driver when the platform opens it, as do virtio-net's receive offloads
//! (`platform::common::virtio_config`); window scaling sizes the sockets in [`services`]
//! (super::services); the lazy timer changes how the network loop ([`super::serve`])
//! programs the timer. Every lever is on by default except the lazy timer, and the
//! network's ready line names those that are on (`proto`'s [`NetLevers::on_list`]).

use drivers::xen::netfront::NetfrontConfig;
use proto::cmdline::{Fault, NetLever, NetLevers, Options};

/// How long `fault=netfront-stall` holds the netfront between granting and publishing.
const STALL_NS: u64 = 5_000_000_000;

/// The netfront's configuration for `opts`.
pub fn netfront_config(opts: &Options) -> NetfrontConfig {
    NetfrontConfig {
        rx_offloads: opts.net.on(NetLever::Offload),
        rx_refill_batch: opts.net.on(NetLever::Batch),
        event_suppression: opts.net.on(NetLever::Suppress),
        // A test of the harness widens the window between granting and publishing the rings.
        stall_ns: if opts.fault == Fault::NetfrontStall { STALL_NS } else { 0 },
    }
}

/// Socket buffer sizes: with window scaling, the bulk (discard) sockets take 256 KiB, so
/// smoltcp offers a window shift (3); without, every TCP buffer stays at 65535 bytes,
/// the largest window without scaling, and smoltcp offers none.
pub struct Buffers {
    /// Each TCP echo socket's receive and send buffer.
    pub tcp_echo: usize,
    /// Each TCP discard socket's receive buffer.
    pub discard: usize,
}

impl Buffers {
    /// The sizes for `levers`.
    pub fn of(levers: NetLevers) -> Buffers {
        if levers.on(NetLever::Wscale) {
            Buffers { tcp_echo: 64 * 1024, discard: 256 * 1024 }
        } else {
            Buffers { tcp_echo: 65_535, discard: 65_535 }
        }
    }
}
