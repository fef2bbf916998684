//! Inputs that once failed (or nearly did), replayed first by every fuzz run of
//! `xen-iface`, before the random cases.
//!
//! Two kinds of entries: raw inputs of the pure parsers, replayed through the same checks
//! as random ones; and case keys (printed by `fuzz::run` when a case fails) of the
//! stateful targets, which replay a whole case as long as the target draws its random
//! numbers in the same order. When a target's generator changes, re-derive its keys (the
//! failure message gives the new one) or turn the case into a unit test.
//!
//! A case that fails because of a bug not yet fixed lives in an `#[ignore]`d test of its
//! target's file instead, with a comment, so that the suite stays green until the fix
//! (none today: `scale_for(0)` in `fuzz_abi.rs` and an early xenstore reply in
//! `fuzz_xenstore.rs` were fixed and run as plain regression tests).
//!
//! Besides what failed, the raw tables hold the edge inputs of the crates' own unit tests
//! that the random generators reach only rarely.
#![allow(dead_code)] // each test crate replays only its own tables

/// Case keys of `xs_encode_round_trip`.
pub const XS_ENCODE_ROUND_TRIP: &[u64] = &[];
/// Case keys of `xs_decoder_stream`.
pub const XS_DECODER_STREAM: &[u64] = &[];
/// Case keys of `xs_ring_hostile`.
pub const XS_RING_HOSTILE: &[u64] = &[
    // Requests left in `req` by the earlier boot stage at attach: the first version of the
    // target expected xenstored to receive only the guest's own bytes.
    0xf540_71f7_723a_739d,
];
/// Case keys of `xs_client_hostile`.
pub const XS_CLIENT_HOSTILE: &[u64] = &[];

/// One raw input of `xs_interpret`: header type, header `req_id`, payload, and the
/// outstanding request as (`req_id`, type), if any.
pub type Interpretation = (u32, u32, &'static [u8], Option<(u32, u32)>);

/// Raw inputs of `xs_interpret`.
pub const XS_INTERPRET: &[Interpretation] = &[
    (15, 0, b"a\0\0", None),               // an event with an empty token
    (15, 0, b"a\0b\0c\0", Some((0, 2))),   // an event with a third part, req_id of the request
    (15, 9, b"a/b", None),                 // an event without its NUL
    (15, 0, b"\0t\0", None),               // an event with an empty path
    (6, 1, b"007\0", Some((1, 6))),        // a transaction id with leading zeros
    (6, 1, b"+5\0", Some((1, 6))),         // a sign u32::from_str accepts
    (6, 1, b"4294967296\0", Some((1, 6))), // an id past u32
    (1, 1, b"", Some((1, 1))),             // an empty directory
    (1, 1, b"x\0\0y\0", Some((1, 1))),     // an empty directory entry
    (1, 1, b"\xff\0", Some((1, 1))),       // a name that is not UTF-8
    (16, 1, b"ENOENT", Some((1, 2))),      // an error name without its NUL
    (16, 1, b"\0", Some((1, 2))),          // an empty error name
    (20, 1, b"", Some((1, 2))),            // XS_RESTRICT, removed from the header
    (0xffff, 1, b"", Some((1, 2))),        // XS_INVALID
    (2, 8, b"hi", Some((1, 2))),           // another request's reply
    (11, 1, b"OK", Some((1, 11))),         // "OK" without its NUL
];

/// Case keys of `front_ring_hostile`.
pub const FRONT_RING_HOSTILE: &[u64] = &[];
/// Case keys of `console_hostile`.
pub const CONSOLE_HOSTILE: &[u64] = &[];

/// Case keys of `netif_checks`.
pub const NETIF_CHECKS: &[u64] = &[];
/// Case keys of `netfront_hostile`.
pub const NETFRONT_HOSTILE: &[u64] = &[];

/// Case keys of `grant_table_hostile`.
pub const GRANT_TABLE_HOSTILE: &[u64] = &[];
/// Case keys of `event_scan`.
pub const EVENT_SCAN: &[u64] = &[];
/// Case keys of `pvclock_read`.
pub const PVCLOCK_READ: &[u64] = &[];
/// Case keys of `pvclock_scale`.
pub const PVCLOCK_SCALE: &[u64] = &[];
/// Case keys of `cpuid_decode`.
pub const CPUID_DECODE: &[u64] = &[];
/// Case keys of `start_info`.
pub const START_INFO: &[u64] = &[];
/// Raw extra data of `trace_markers`, through `decode_marker`.
pub const TRACE_MARKERS: &[&[u8]] = &[
    b"",
    &[1, 2, 3, 4, 5, 6, 7],
    &[0; 8],
    &[5, 0, 0, 0, 0, 0, 0, 0, b'x', 0xff, b'y'],
    &[0, 0, 0, 0, 0, 0, 0, 0, b'a', b' ', b'\n', b'b'],
    &[b'z'; 64],
    &[0xff; 28],
];
