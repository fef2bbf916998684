//! Phase markers a guest writes into the host's xentrace buffer.
//!
//! `HVMOP_xentrace` lets a domU add a record `TRC_GUEST | event` (0x0800_f000 | event,
//! event < 0x1000) with up to 28 bytes of extra data to the host's trace. The kernel
//! brackets each benchmark with a BEGIN and an END record, so that a host-side tool can
//! count the VM exits taken inside each benchmark and divide by its iterations.
//!
//! Extra data of both records: iterations as two little-endian `u32` words (low, high),
//! then the phase name, ASCII, at most [`NAME_MAX`] bytes, NUL-padded to a word.

/// `TRC_GUEST`: the trace class of guest-written records.
pub const TRC_GUEST: u32 = 0x0800_f000;
/// Event number of a phase start.
pub const EVENT_PHASE_BEGIN: u16 = 0x100;
/// Event number of a phase end.
pub const EVENT_PHASE_END: u16 = 0x101;
/// Longest phase name carried in a marker.
pub const NAME_MAX: usize = 20;
/// Largest extra payload of one `HVMOP_xentrace` record.
pub const EXTRA_MAX: usize = 28;

/// The extra bytes of one marker record and how many of them are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkerPayload {
    /// Payload bytes.
    pub bytes: [u8; EXTRA_MAX],
    /// Bytes used, a multiple of 4.
    pub len: usize,
}

/// Encodes a marker's extra data; names longer than [`NAME_MAX`] are cut.
pub fn encode_marker(name: &str, iterations: u64) -> MarkerPayload {
    let mut bytes = [0u8; EXTRA_MAX];
    bytes[0..4].copy_from_slice(&(iterations as u32).to_le_bytes());
    bytes[4..8].copy_from_slice(&((iterations >> 32) as u32).to_le_bytes());
    let name = &name.as_bytes()[..name.len().min(NAME_MAX)];
    bytes[8..8 + name.len()].copy_from_slice(name);
    let len = 8 + name.len().div_ceil(4) * 4;
    MarkerPayload { bytes, len }
}

/// Decodes a marker's extra data into (name, iterations); `None` if it is too short.
/// Non-ASCII name bytes are replaced by `?` so the result is always printable.
pub fn decode_marker(extra: &[u8]) -> Option<([u8; NAME_MAX], usize, u64)> {
    if extra.len() < 8 {
        return None;
    }
    let lo = u32::from_le_bytes([extra[0], extra[1], extra[2], extra[3]]) as u64;
    let hi = u32::from_le_bytes([extra[4], extra[5], extra[6], extra[7]]) as u64;
    let mut name = [0u8; NAME_MAX];
    let mut len = 0;
    for &b in extra[8..].iter().take(NAME_MAX) {
        if b == 0 {
            break;
        }
        name[len] = if b.is_ascii_graphic() { b } else { b'?' };
        len += 1;
    }
    Some((name, len, hi << 32 | lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = encode_marker("irq_eoi", 0x1_0000_0002);
        assert_eq!(m.len, 16);
        let (name, len, iters) = decode_marker(&m.bytes[..m.len]).unwrap();
        assert_eq!(&name[..len], b"irq_eoi");
        assert_eq!(iters, 0x1_0000_0002);
    }

    #[test]
    fn long_names_are_cut() {
        let m = encode_marker("a_very_long_benchmark_name_indeed", 1);
        assert_eq!(m.len, EXTRA_MAX);
        let (name, len, _) = decode_marker(&m.bytes).unwrap();
        assert_eq!(&name[..len], b"a_very_long_benchmar");
    }

    #[test]
    fn short_or_garbage_payloads() {
        assert_eq!(decode_marker(&[1, 2, 3]), None);
        let (name, len, iters) = decode_marker(&[5, 0, 0, 0, 0, 0, 0, 0, b'x', 0xff, b'y']).unwrap();
        assert_eq!((&name[..len], iters), (&b"x?y"[..], 5));
    }
}
