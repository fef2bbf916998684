//! Receive checksums, for a NIC whose device may hand over packets it did not check.
//!
//! With receive checksum offload (netfront with `feature-no-csum-offload` off, virtio-net
//! with `VIRTIO_NET_F_GUEST_CSUM`), the device hands over packets whose TCP/UDP checksum
//! it vouches for (`NETRXF_data_validated`, `VIRTIO_NET_HDR_F_DATA_VALID`) or never filled
//! in (`NETRXF_csum_blank`, `VIRTIO_NET_HDR_F_NEEDS_CSUM`: a packet from a local stack,
//! the checksum field holding only the pseudo-header's sum). The stack above then cannot
//! check checksums itself, so the driver does it for the packets the device did not vouch
//! for: [`l4_checksum_ok`] over the Ethernet frame, as a NIC's receive checksum offload
//! would.

/// The Ethernet header's length.
const ETH_HLEN: usize = 14;
/// `ETH_P_IP`.
const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The ones' complement sum of `data` (as 16-bit big-endian words) added to `sum`,
/// not yet folded.
fn sum_words(mut sum: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u16::from_be_bytes([w[0], w[1]]) as u64;
    }
    if let [last] = words.remainder() {
        sum += (*last as u64) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// True unless `frame` is an IPv4 TCP or UDP packet whose checksum is wrong.
///
/// Anything else passes (other protocols are checked by the stack, or not at all): a
/// non-IPv4 frame, a fragment (its checksum covers the whole datagram), a UDP datagram
/// without checksum (0). A packet shorter than its IPv4 header says fails.
pub fn l4_checksum_ok(frame: &[u8]) -> bool {
    if be16(frame, 12) != Some(ETHERTYPE_IPV4) {
        return true;
    }
    let Some(ip) = frame.get(ETH_HLEN..) else { return true };
    let Some(&vihl) = ip.first() else { return false };
    let ihl = (vihl & 0x0f) as usize * 4;
    let (Some(total), Some(frag), Some(&proto)) = (be16(ip, 2), be16(ip, 6), ip.get(9)) else { return false };
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return true;
    }
    if frag & 0x3fff != 0 {
        return true; // more fragments, or not the first: no whole datagram to check
    }
    let total = total as usize;
    let (Some(src_dst), Some(l4)) = (ip.get(12..20), ip.get(ihl..total)) else { return false };
    if ihl < 20 {
        return false;
    }
    if proto == PROTO_UDP && be16(l4, 6) == Some(0) {
        return true;
    }
    let pseudo = sum_words(0, src_dst) + proto as u64 + l4.len() as u64;
    fold(sum_words(pseudo, l4)) == 0xffff
}

/// Frames for the drivers' host tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// `IPPROTO_TCP`.
    pub const TCP: u8 = PROTO_TCP;

    /// An Ethernet + IPv4 frame around `l4` with protocol `proto`; the L4 checksum
    /// (at `csum_at` in `l4`) filled in correctly.
    pub fn frame(proto: u8, mut l4: Vec<u8>, csum_at: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let total = 20 + l4.len();
        let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, proto, 0, 0];
        ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        l4[csum_at..csum_at + 2].copy_from_slice(&[0, 0]);
        let pseudo = sum_words(0, &ip[12..20]) + proto as u64 + l4.len() as u64;
        let c = !fold(sum_words(pseudo, &l4));
        l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&l4);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::testing::frame;
    use super::*;

    #[test]
    fn good_and_bad_tcp_and_udp() {
        let tcp = frame(PROTO_TCP, (0..41u8).collect(), 16);
        assert!(l4_checksum_ok(&tcp));
        let udp = frame(PROTO_UDP, (0..30u8).map(|b| b.wrapping_mul(7)).collect(), 6);
        assert!(l4_checksum_ok(&udp));
        for good in [tcp, udp] {
            for at in [14 + 12, 14 + 20, good.len() - 1] {
                let mut bad = good.clone();
                bad[at] ^= 0x10;
                assert!(!l4_checksum_ok(&bad), "byte {at} flipped");
            }
        }
    }

    #[test]
    fn what_is_not_checked_passes() {
        let mut udp = frame(PROTO_UDP, vec![0; 12], 6);
        udp[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]); // no checksum
        udp[14 + 20 + 9] = 1;
        assert!(l4_checksum_ok(&udp));
        let mut icmp = frame(1, vec![1, 2, 3, 4], 0);
        icmp[36] ^= 1;
        assert!(l4_checksum_ok(&icmp));
        let mut fragment = frame(PROTO_TCP, vec![9; 24], 16);
        fragment[14 + 6] = 0x20; // more fragments
        fragment[50] ^= 1;
        assert!(l4_checksum_ok(&fragment));
        assert!(l4_checksum_ok(&[0u8; 10]), "not IPv4");
    }

    #[test]
    fn short_or_lying_headers_fail() {
        let tcp = frame(PROTO_TCP, vec![5; 20], 16);
        assert!(!l4_checksum_ok(&tcp[..tcp.len() - 1]), "shorter than the IPv4 length");
        let mut ihl = tcp.clone();
        ihl[14] = 0x44;
        assert!(!l4_checksum_ok(&ihl), "header length below 20");
        assert!(!l4_checksum_ok(&tcp[..20]));
    }
}
