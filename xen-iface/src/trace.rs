//! Phase markers a guest writes into the host's xentrace buffer.
//!
//! This module is the specification of both kinds of marker: the kernel encodes them, the
//! host harness (`tests/src/xentrace/`) decodes them with these functions, and the Linux
//! peer's `tests/xen/peer/hyecho.c` keeps C copies of the CPUID constants.
//!
//! # Hypercall markers
//!
//! `HVMOP_xentrace` lets a domU add a record `TRC_GUEST | event` (0x0800_f000 | event,
//! event < 0x1000) with up to 28 bytes of extra data to the host's trace. The kernel
//! brackets each benchmark with a BEGIN and an END record, so that a host-side tool can
//! count the VM exits taken inside each benchmark and divide by its iterations.
//!
//! Extra data of both records: iterations as two little-endian `u32` words (low, high),
//! then the phase name, ASCII, at most [`NAME_MAX`] bytes, NUL-padded to a word.
//!
//! # CPUID markers
//!
//! A guest that cannot make hypercalls where it measures (the Linux peer's userspace)
//! executes CPUID with a reserved leaf instead: [`CPUID_MARK_BEGIN`]` + id` opens phase `id`
//! of [`CPUID_MARK_NAMES`], [`CPUID_MARK_END`]` + id` closes it with the iteration count in
//! the subleaf. Xen answers these leaves with zeros and traces the exit with its leaf and
//! subleaf (`TRC_HVM_CPUID`); that record is the marker.
//!
//! On KVM the kernel marks every benchmark this way (KVM has no trace hypercall; its
//! `kvm:kvm_cpuid` event records function and index), so the names after the peer's three
//! are the kernel's benchmarks. Ids are never reordered: the peer's C copies keep 0-2 and 16
//! (`tcp_maerts`, which came later and so was appended).

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

/// CPUID leaf base of the BEGIN markers: leaf `CPUID_MARK_BEGIN + id` opens phase `id`.
pub const CPUID_MARK_BEGIN: u32 = 0x4fff_f100;
/// CPUID leaf base of the END markers: leaf `CPUID_MARK_END + id` closes phase `id`, with
/// the iteration count in the subleaf.
pub const CPUID_MARK_END: u32 = 0x4fff_f200;
/// Phase names of the CPUID markers, by id.
pub const CPUID_MARK_NAMES: [&str; 17] = [
    "udp_rr",
    "tcp_rr",
    "tcp_stream",
    "cpuid",
    "clock_read",
    "interrupt",
    "interrupt_raise",
    "interrupt_idle",
    "timer_arm_to_fire",
    "timer_lateness",
    "null_hypercall",
    "evtchn_rr",
    "load",
    "mmu_map",
    "page_fault",
    "tlb_flush",
    "tcp_maerts",
];

/// Which end of a phase a marker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseEdge {
    /// The marker opens the phase.
    Begin,
    /// The marker closes the phase.
    End,
}

impl PhaseEdge {
    /// The edge a guest record's event number stands for ([`EVENT_PHASE_BEGIN`] or
    /// [`EVENT_PHASE_END`]); `None` for other events.
    pub fn from_event(event: u16) -> Option<Self> {
        match event {
            EVENT_PHASE_BEGIN => Some(PhaseEdge::Begin),
            EVENT_PHASE_END => Some(PhaseEdge::End),
            _ => None,
        }
    }

    /// The guest record's event number of this edge.
    pub fn event(self) -> u16 {
        match self {
            PhaseEdge::Begin => EVENT_PHASE_BEGIN,
            PhaseEdge::End => EVENT_PHASE_END,
        }
    }
}

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

/// Decodes a marker's extra data into (name, name length, iterations); `None` if it is too
/// short to hold the iteration count. The name ends at the first NUL or after [`NAME_MAX`]
/// bytes; bytes that are not printable ASCII (graphic or space) are replaced by `?`, so the
/// result is always printable.
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
        name[len] = if b.is_ascii_graphic() || b == b' ' { b } else { b'?' };
        len += 1;
    }
    Some((name, len, hi << 32 | lo))
}

/// A decoded CPUID phase marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidMarker {
    /// Whether it opens or closes the phase.
    pub edge: PhaseEdge,
    /// Phase id: index into [`CPUID_MARK_NAMES`].
    pub id: u32,
    /// Phase name ([`CPUID_MARK_NAMES`]`[id]`).
    pub name: &'static str,
    /// The subleaf: the iteration count of an END marker (BEGIN markers pass 0).
    pub value: u32,
}

/// Decodes a CPUID leaf and subleaf as a phase marker; `None` for every leaf that is not one
/// (including marker leaves with an id beyond [`CPUID_MARK_NAMES`]).
pub fn decode_cpuid_marker(leaf: u32, subleaf: u32) -> Option<CpuidMarker> {
    let (edge, id) = if let Some(id) = leaf.checked_sub(CPUID_MARK_BEGIN).filter(|&id| id < 0x100) {
        (PhaseEdge::Begin, id)
    } else {
        (PhaseEdge::End, leaf.checked_sub(CPUID_MARK_END).filter(|&id| id < 0x100)?)
    };
    let name = CPUID_MARK_NAMES.get(id as usize)?;
    Some(CpuidMarker { edge, id, name, value: subleaf })
}

/// The CPUID leaf that marks `edge` of phase `name`; `None` if `name` has no CPUID marker.
pub fn cpuid_marker_leaf(edge: PhaseEdge, name: &str) -> Option<u32> {
    let id = CPUID_MARK_NAMES.iter().position(|&n| n == name)? as u32;
    Some(id + if edge == PhaseEdge::Begin { CPUID_MARK_BEGIN } else { CPUID_MARK_END })
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
        let (name, len, _) = decode_marker(&[0, 0, 0, 0, 0, 0, 0, 0, b'a', b' ', b'\n', b'b']).unwrap();
        assert_eq!(&name[..len], b"a ?b");
        // Nothing past NAME_MAX name bytes is read, even from a longer slice.
        let (_, len, _) = decode_marker(&[b'z'; 64]).unwrap();
        assert_eq!(len, NAME_MAX);
    }

    #[test]
    fn phase_edges_and_events() {
        assert_eq!(PhaseEdge::from_event(0x100), Some(PhaseEdge::Begin));
        assert_eq!(PhaseEdge::from_event(0x101), Some(PhaseEdge::End));
        assert_eq!(PhaseEdge::from_event(0x102), None);
        assert_eq!(PhaseEdge::End.event(), EVENT_PHASE_END);
        assert_eq!(TRC_GUEST | u32::from(PhaseEdge::Begin.event()), 0x0800_f100);
    }

    #[test]
    fn cpuid_markers() {
        let m = decode_cpuid_marker(0x4fff_f100, 0).unwrap();
        assert_eq!((m.edge, m.id, m.name, m.value), (PhaseEdge::Begin, 0, "udp_rr", 0));
        let m = decode_cpuid_marker(0x4fff_f202, 1234).unwrap();
        assert_eq!((m.edge, m.id, m.name, m.value), (PhaseEdge::End, 2, "tcp_stream", 1234));
        assert_eq!(decode_cpuid_marker(0x4fff_f201, 7).map(|m| m.name), Some("tcp_rr"));
        assert_eq!(decode_cpuid_marker(0x4fff_f20c, 3).map(|m| m.name), Some("load"));
        assert_eq!(decode_cpuid_marker(0x4fff_f10f, 0).map(|m| m.name), Some("tlb_flush"));
        assert_eq!(decode_cpuid_marker(0x4fff_f210, 5).map(|m| (m.id, m.name)), Some((16, "tcp_maerts")));
        // Ordinary leaves, ids without a name, and the neighbours of the ranges are no markers.
        for leaf in [0, 1, 0x4000_0000, 0x4fff_f0ff, 0x4fff_f111, 0x4fff_f1ff, 0x4fff_f211, 0x4fff_f300, u32::MAX] {
            assert_eq!(decode_cpuid_marker(leaf, 0), None, "{leaf:#x}");
        }
    }

    #[test]
    fn cpuid_marker_leaves_round_trip() {
        for (id, name) in CPUID_MARK_NAMES.iter().enumerate() {
            for edge in [PhaseEdge::Begin, PhaseEdge::End] {
                let leaf = cpuid_marker_leaf(edge, name).unwrap();
                let m = decode_cpuid_marker(leaf, 9).unwrap();
                assert_eq!((m.edge, m.id as usize, m.name, m.value), (edge, id, *name, 9));
            }
        }
        assert_eq!(cpuid_marker_leaf(PhaseEdge::Begin, "udp_rr"), Some(CPUID_MARK_BEGIN));
        assert_eq!(cpuid_marker_leaf(PhaseEdge::End, "tcp_stream"), Some(CPUID_MARK_END + 2));
        assert_eq!(cpuid_marker_leaf(PhaseEdge::End, "cpuid"), Some(CPUID_MARK_END + 3));
        assert_eq!(cpuid_marker_leaf(PhaseEdge::Begin, "mem_bw_read"), None);
    }
}
