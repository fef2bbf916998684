//! The `virtio_net_hdr` in front of every received packet (virtio 1.2, 5.1.6), and the
//! receive offloads that give its fields a meaning.
//!
//! Without offloads the driver reads nothing from it. With them, `flags` says whether the
//! device vouched for the packet's TCP/UDP checksum (`DATA_VALID`) or left it to be
//! completed (`NEEDS_CSUM`: a packet from a local stack), `gso_type` whether the packet
//! is a large TCP segment the device did not split, and `num_buffers` how many receive
//! buffers the packet fills (`MRG_RXBUF`). The device is untrusted: [`RxHeader::check`]
//! refuses what the negotiated features do not allow.

/// Size of `struct virtio_net_hdr` with VERSION_1 (includes `num_buffers`).
pub const HDR_LEN: usize = 12;

/// `VIRTIO_NET_F_GUEST_CSUM`: the device may hand over packets with partial checksums.
pub const F_GUEST_CSUM: u64 = 1 << 1;
/// `VIRTIO_NET_F_GUEST_TSO4`: the device may hand over TCPv4 segments of up to 64 KiB.
pub const F_GUEST_TSO4: u64 = 1 << 7;
/// `VIRTIO_NET_F_MRG_RXBUF`: a packet may fill several receive buffers.
pub const F_MRG_RXBUF: u64 = 1 << 15;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
const FLAG_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`.
const FLAG_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
const GSO_TCPV4: u8 = 1;

/// The receive offloads the device accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxOffloads {
    /// `GUEST_CSUM`: the driver checks the checksums the device did not vouch for.
    pub csum: bool,
    /// `GUEST_TSO4`: packets up to [`crate::nic::GSO_MAX_FRAME`].
    pub tso4: bool,
    /// `MRG_RXBUF`: `num_buffers` counts the packet's buffers.
    pub merged: bool,
}

impl RxOffloads {
    /// The offloads to ask for among the device's `offered` features, if the driver
    /// wants them: checksums and merged buffers where offered, and TCPv4 segments only
    /// with both (a 64 KiB segment needs merged buffers to land in 2 KiB ones, and the
    /// specification ties it to `GUEST_CSUM`).
    pub fn wanted(offered: u64, want: bool) -> u64 {
        if !want {
            return 0;
        }
        let base = offered & (F_GUEST_CSUM | F_MRG_RXBUF);
        if base == F_GUEST_CSUM | F_MRG_RXBUF {
            base | (offered & F_GUEST_TSO4)
        } else {
            base
        }
    }

    /// The offloads in effect after negotiation settled on `accepted`.
    pub fn from_features(accepted: u64) -> RxOffloads {
        RxOffloads {
            csum: accepted & F_GUEST_CSUM != 0,
            tso4: accepted & F_GUEST_TSO4 != 0,
            merged: accepted & F_MRG_RXBUF != 0,
        }
    }
}

/// The fields of a received header the driver acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxHeader {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Buffers the packet fills (meaningful with `MRG_RXBUF` only).
    pub num_buffers: u16,
}

/// What the device did wrong in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// `num_buffers` of 0, or more than the queue has buffers.
    BufferCount(u16),
    /// A segmentation type the driver did not accept.
    GsoType(u8),
}

impl RxHeader {
    /// The header at the start of a receive buffer's first `HDR_LEN` bytes.
    pub fn parse(b: &[u8; HDR_LEN]) -> RxHeader {
        RxHeader { flags: b[0], gso_type: b[1], num_buffers: u16::from_le_bytes([b[10], b[11]]) }
    }

    /// How many buffers the packet fills, under `offloads`, on a queue of `queue_size`.
    pub fn buffers(&self, offloads: RxOffloads, queue_size: u16) -> Result<u16, HeaderError> {
        if !offloads.merged {
            return Ok(1);
        }
        match self.num_buffers {
            0 => Err(HeaderError::BufferCount(0)),
            n if n > queue_size => Err(HeaderError::BufferCount(n)),
            n => Ok(n),
        }
    }

    /// Checks the segmentation type against `offloads`; then says whether the device
    /// vouched for the checksum (or left it for a local stack to fill in), so that the
    /// driver need not check it. Without `GUEST_CSUM` the flags mean nothing (the stack
    /// checks every checksum).
    pub fn check(&self, offloads: RxOffloads) -> Result<bool, HeaderError> {
        match self.gso_type {
            GSO_NONE => {}
            GSO_TCPV4 if offloads.tso4 => {}
            other => return Err(HeaderError::GsoType(other)),
        }
        Ok(offloads.csum && self.flags & (FLAG_NEEDS_CSUM | FLAG_DATA_VALID) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: RxOffloads = RxOffloads { csum: true, tso4: true, merged: true };

    fn header(flags: u8, gso_type: u8, num_buffers: u16) -> RxHeader {
        let mut b = [0u8; HDR_LEN];
        b[0] = flags;
        b[1] = gso_type;
        b[10..12].copy_from_slice(&num_buffers.to_le_bytes());
        RxHeader::parse(&b)
    }

    #[test]
    fn segments_are_asked_for_only_with_merged_buffers_and_checksums() {
        let all = F_GUEST_CSUM | F_GUEST_TSO4 | F_MRG_RXBUF;
        assert_eq!(RxOffloads::wanted(all | 1 << 0, true), all);
        assert_eq!(RxOffloads::wanted(all, false), 0);
        assert_eq!(RxOffloads::wanted(F_GUEST_CSUM | F_GUEST_TSO4, true), F_GUEST_CSUM);
        assert_eq!(RxOffloads::wanted(F_MRG_RXBUF | F_GUEST_TSO4, true), F_MRG_RXBUF);
        assert_eq!(RxOffloads::from_features(all), ALL);
        assert_eq!(RxOffloads::from_features(0), RxOffloads::default());
    }

    #[test]
    fn the_buffer_count_is_bounded_by_the_queue() {
        assert_eq!(header(0, 0, 0).buffers(RxOffloads::default(), 256), Ok(1)); // not merged: ignored
        assert_eq!(header(0, 0, 33).buffers(ALL, 256), Ok(33));
        assert_eq!(header(0, 0, 0).buffers(ALL, 256), Err(HeaderError::BufferCount(0)));
        assert_eq!(header(0, 0, 257).buffers(ALL, 256), Err(HeaderError::BufferCount(257)));
    }

    #[test]
    fn only_accepted_segments_pass_and_flags_count_only_with_checksum_offload() {
        assert_eq!(header(FLAG_NEEDS_CSUM, GSO_TCPV4, 1).check(ALL), Ok(true));
        assert_eq!(header(FLAG_DATA_VALID, GSO_NONE, 1).check(ALL), Ok(true));
        assert_eq!(header(0, GSO_NONE, 1).check(ALL), Ok(false));
        let csum_only = RxOffloads { csum: true, ..Default::default() };
        assert_eq!(header(0, GSO_TCPV4, 1).check(csum_only), Err(HeaderError::GsoType(GSO_TCPV4)));
        for other in [3u8 /* UDP */, 4 /* TCPv6 */, 0x81 /* ECN */] {
            assert_eq!(header(0, other, 1).check(ALL), Err(HeaderError::GsoType(other)));
        }
        assert_eq!(header(FLAG_DATA_VALID, GSO_NONE, 1).check(RxOffloads::default()), Ok(false));
    }
}
