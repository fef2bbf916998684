//! 2-level event channels (`xen.h`, `event_channel.h`): the pending and mask bitmaps in
//! `shared_info`, the per-vCPU selector and upcall flag in `vcpu_info`, and the scan an
//! upcall runs.
//!
//! Xen raises port `p` by setting bit `p % 64` of `evtchn_pending[p / 64]`; if the port is
//! unmasked it then sets bit `p / 64` of the vCPU's `evtchn_pending_sel` and its
//! `evtchn_upcall_pending`, and delivers the upcall. The guest acknowledges by clearing
//! those bits in shared memory: no EOI, no exit. [`scan`] finds every pending unmasked
//! port, clears its bit and hands it to a handler, and goes round again if Xen raised
//! more while it worked.

use crate::shared::SharedMem;

/// Size of `struct vcpu_info`.
pub const VCPU_INFO_SIZE: usize = 64;
/// `vcpu_info.evtchn_upcall_pending` (u8).
pub const UPCALL_PENDING: usize = 0;
/// `vcpu_info.evtchn_upcall_mask` (u8).
pub const UPCALL_MASK: usize = 1;
/// `vcpu_info.evtchn_pending_sel` (u64).
pub const PENDING_SEL: usize = 8;
/// `vcpu_info.time`: the vCPU's `vcpu_time_info`.
pub const VCPU_TIME: usize = 32;
/// `shared_info.vcpu_info` entries (`XEN_LEGACY_MAX_VCPUS`).
pub const LEGACY_MAX_VCPUS: usize = 32;
/// `shared_info.evtchn_pending`.
pub const EVTCHN_PENDING: usize = LEGACY_MAX_VCPUS * VCPU_INFO_SIZE;
/// `shared_info.evtchn_mask`.
pub const EVTCHN_MASK: usize = EVTCHN_PENDING + 64 * 8;
/// Ports of the 2-level ABI on a 64-bit guest.
pub const NR_PORTS: u32 = 64 * 64;

/// Bitmap word offset and bit of `port`.
fn word_bit(base: usize, port: u32) -> (usize, u64) {
    (base + 8 * (port as usize / 64), 1u64 << (port % 64))
}

/// Masks `port` (`None` if it is out of range).
pub fn mask(shared: &impl SharedMem, port: u32) -> Option<()> {
    if port >= NR_PORTS {
        return None;
    }
    let (w, b) = word_bit(EVTCHN_MASK, port);
    shared.fetch_or_u64(w, b);
    Some(())
}

/// Unmasks `port` in shared memory. Returns `Some(true)` if the port is pending: then
/// an event may have been dropped while masked, and the caller must ask Xen to deliver it
/// (`EVTCHNOP_unmask`). The common case, nothing pending, needs no hypercall.
pub fn unmask(shared: &impl SharedMem, port: u32) -> Option<bool> {
    if port >= NR_PORTS {
        return None;
    }
    let (m, b) = word_bit(EVTCHN_MASK, port);
    shared.fetch_and_u64(m, !b);
    let (p, _) = word_bit(EVTCHN_PENDING, port);
    Some(shared.read_u64(p) & b != 0)
}

/// True if `port` is pending.
pub fn is_pending(shared: &impl SharedMem, port: u32) -> bool {
    port < NR_PORTS && {
        let (p, b) = word_bit(EVTCHN_PENDING, port);
        shared.read_u64(p) & b != 0
    }
}

/// Clears `port`'s pending bit.
pub fn clear_pending(shared: &impl SharedMem, port: u32) {
    if port < NR_PORTS {
        let (p, b) = word_bit(EVTCHN_PENDING, port);
        shared.fetch_and_u64(p, !b);
    }
}

/// What one [`scan`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Rounds over the selector.
    pub rounds: u32,
    /// Ports handed to the handler.
    pub ports: u32,
    /// True if it stopped at `max_rounds` with the upcall still pending.
    pub cut_short: bool,
}

/// Handles the pending, unmasked ports of one vCPU. `vcpu` holds its `vcpu_info` at
/// `vcpu_off` (in `shared_info` or where `VCPUOP_register_vcpu_info` put it). Each
/// port's pending bit is cleared before `handler` runs, so an event raised during the
/// handler is seen again. At most `max_rounds` passes; the upcall flag stays set if it
/// stops early, so the next upcall carries on.
pub fn scan(
    shared: &impl SharedMem,
    vcpu: &impl SharedMem,
    vcpu_off: usize,
    max_rounds: u32,
    mut handler: impl FnMut(u32),
) -> ScanStats {
    let mut stats = ScanStats::default();
    while stats.rounds < max_rounds {
        stats.rounds += 1;
        vcpu.write_u8(vcpu_off + UPCALL_PENDING, 0);
        let mut sel = vcpu.swap_u64(vcpu_off + PENDING_SEL, 0);
        while sel != 0 {
            let word = sel.trailing_zeros();
            sel &= sel - 1;
            let at = 8 * word as usize;
            let mut ready = shared.read_u64(EVTCHN_PENDING + at) & !shared.read_u64(EVTCHN_MASK + at);
            while ready != 0 {
                let bit = ready.trailing_zeros();
                ready &= ready - 1;
                shared.fetch_and_u64(EVTCHN_PENDING + at, !(1u64 << bit));
                stats.ports += 1;
                handler(word * 64 + bit);
            }
        }
        if vcpu.read_u8(vcpu_off + UPCALL_PENDING) == 0 {
            return stats;
        }
    }
    stats.cut_short = true;
    stats
}

/// What Xen does to raise `port` for the vCPU whose `vcpu_info` is at `vcpu_off`;
/// host tests use it to play the hypervisor.
pub fn raise(shared: &impl SharedMem, vcpu: &impl SharedMem, vcpu_off: usize, port: u32) {
    if port >= NR_PORTS {
        return;
    }
    let (p, b) = word_bit(EVTCHN_PENDING, port);
    let was = shared.fetch_or_u64(p, b);
    let (m, _) = word_bit(EVTCHN_MASK, port);
    if was & b == 0 && shared.read_u64(m) & b == 0 {
        vcpu.fetch_or_u64(vcpu_off + PENDING_SEL, 1 << (port / 64));
        vcpu.write_u8(vcpu_off + UPCALL_PENDING, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::FakePage;

    fn shared() -> FakePage {
        FakePage::new(4096)
    }

    #[test]
    fn layout_matches_header() {
        assert_eq!((EVTCHN_PENDING, EVTCHN_MASK, VCPU_TIME), (2048, 2560, 32));
    }

    #[test]
    fn delivers_each_pending_port_once() {
        let s = shared();
        for port in [3, 64, 65, 4095, 700] {
            raise(&s, &s, 0, port);
        }
        let mut got = Vec::new();
        let st = scan(&s, &s, 0, 8, |p| got.push(p));
        assert_eq!(got, [3, 64, 65, 700, 4095]);
        assert_eq!((st.rounds, st.ports, st.cut_short), (1, 5, false));
        assert_eq!(s.read_u8(UPCALL_PENDING), 0);
        assert!(!is_pending(&s, 700));
        assert_eq!(scan(&s, &s, 0, 8, |_| panic!("nothing is pending")).ports, 0);
    }

    #[test]
    fn masked_ports_wait_for_unmask() {
        let s = shared();
        mask(&s, 9).unwrap();
        raise(&s, &s, 0, 9);
        raise(&s, &s, 0, 10);
        let mut got = Vec::new();
        scan(&s, &s, 0, 8, |p| got.push(p));
        assert_eq!(got, [10]);
        assert!(is_pending(&s, 9));
        // Unmasking finds it pending: the caller must have Xen re-deliver it.
        assert_eq!(unmask(&s, 9), Some(true));
        assert_eq!(unmask(&s, 10), Some(false));
        assert_eq!(mask(&s, NR_PORTS), None);
        assert_eq!(unmask(&s, NR_PORTS), None);
    }

    #[test]
    fn event_raised_during_the_scan_is_handled() {
        let s = shared();
        raise(&s, &s, 0, 1);
        let mut got = Vec::new();
        let st = scan(&s, &s, 0, 8, |p| {
            got.push(p);
            if p == 1 {
                // Xen raises two more ports while the handler runs: one in the word
                // being scanned, one in a word the selector no longer shows.
                raise(&s, &s, 0, 2);
                raise(&s, &s, 0, 200);
            }
        });
        assert_eq!(got, [1, 2, 200]);
        assert!(st.rounds >= 2 && !st.cut_short);
    }

    #[test]
    fn the_same_port_raised_again_is_seen_again() {
        let s = shared();
        raise(&s, &s, 0, 5);
        let mut n = 0;
        scan(&s, &s, 0, 8, |p| {
            n += 1;
            if n < 3 {
                raise(&s, &s, 0, p); // e.g. a backend notifying again at once
            }
        });
        assert_eq!(n, 3);
    }

    #[test]
    fn a_storm_is_cut_short_but_not_lost() {
        let s = shared();
        raise(&s, &s, 0, 7);
        let st = scan(&s, &s, 0, 4, |p| raise(&s, &s, 0, p));
        assert!(st.cut_short);
        assert_eq!(st.rounds, 4);
        assert_eq!(s.read_u8(UPCALL_PENDING), 1, "left pending for the next upcall");
    }

    #[test]
    fn separate_vcpu_info_page() {
        let s = shared();
        let v = FakePage::new(4096);
        raise(&s, &v, 128, 42);
        assert_eq!(v.read_u8(128 + UPCALL_PENDING), 1);
        let mut got = Vec::new();
        scan(&s, &v, 128, 8, |p| got.push(p));
        assert_eq!(got, [42]);
    }
}
