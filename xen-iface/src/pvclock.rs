//! The paravirtual clock: `struct vcpu_time_info` (`xen.h`), also KVM's kvmclock.
//!
//! Xen publishes, per vCPU, a TSC timestamp, the system time (ns since boot) at that
//! timestamp, and a scale: `ns = system_time + ((tsc - tsc_timestamp) << shift) * mul >> 32`
//! (a negative shift shifts right). The record is updated under a version counter: odd
//! while Xen writes, so a reader takes the version, the fields, the version again, and
//! retries unless both versions are equal and even.

use crate::shared::SharedMem;
use core::sync::atomic::{fence, Ordering};

/// Size of `struct vcpu_time_info`.
pub const TIME_INFO_SIZE: usize = 32;
/// `XEN_PVCLOCK_TSC_STABLE_BIT`: the TSC is synchronised across vCPUs.
pub const FLAG_TSC_STABLE: u8 = 1 << 0;

/// One consistent copy of a `vcpu_time_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeInfo {
    /// Version it was read at (even).
    pub version: u32,
    /// TSC at the last update.
    pub tsc_timestamp: u64,
    /// System time (ns) at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC-to-ns multiplier, 32.32 fixed point.
    pub tsc_to_system_mul: u32,
    /// Pre-shift of the TSC delta.
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*` flags.
    pub flags: u8,
}

/// The record kept changing (or stayed odd) for every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn;

/// Scales a TSC delta to nanoseconds with `mul` and `shift`.
pub fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let shifted =
        if shift >= 0 { delta.checked_shl(shift as u32).unwrap_or(0) } else { delta >> (-(shift as i32)).min(63) };
    ((shifted as u128 * mul as u128) >> 32) as u64
}

impl TimeInfo {
    /// Nanoseconds of system time at TSC value `tsc` (no earlier than `system_time`).
    ///
    /// The delta is taken modulo 2^64, as Xen and Linux take it: an HVM domain's TSC
    /// offset added to a host stamp older than the domain gives a stamp "before" the
    /// guest's TSC origin, a wrapped, huge `tsc_timestamp` (seen in every other PVH
    /// boot, whose first record predates Xen's next calibration). A TSC genuinely
    /// before the stamp (a wrapped delta of 2^63 or more) reads as the stamp.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp);
        let delta = if delta > i64::MAX as u64 { 0 } else { delta };
        self.system_time.wrapping_add(scale_delta(delta, self.tsc_to_system_mul, self.tsc_shift))
    }

    /// The TSC rate this record's scale stands for, in Hz: the inverse of
    /// [`scale_for`](Self::scale_for) (KVM states no TSC rate elsewhere; Linux's
    /// `pvclock_tsc_khz` does the same). `None` for a zero multiplier.
    pub fn tsc_hz(&self) -> Option<u64> {
        if self.tsc_to_system_mul == 0 {
            return None;
        }
        let hz = (1_000_000_000u128 << 32) / self.tsc_to_system_mul as u128;
        let hz = if self.tsc_shift >= 0 {
            hz >> (self.tsc_shift as u32).min(127)
        } else {
            hz.checked_shl(-(self.tsc_shift as i32) as u32).unwrap_or(u128::MAX)
        };
        u64::try_from(hz).ok()
    }

    /// The scale Xen would publish for a TSC of `hz`: its `set_time_scale` algorithm
    /// (shift until 1 GHz < rate <= 2 GHz, then `div_frac`, a truncated 32-bit fraction).
    /// Used to check the arithmetic against Xen's own numbers. `None` for 0 Hz, which
    /// has no scale (the doubling would never reach 1 GHz).
    pub fn scale_for(hz: u64) -> Option<(u32, i8)> {
        if hz == 0 {
            return None;
        }
        let mut tps = hz;
        let mut shift: i8 = 0;
        let target = 1_000_000_000u64;
        while tps > target * 2 {
            tps >>= 1;
            shift -= 1;
        }
        while tps <= target {
            tps <<= 1;
            shift += 1;
        }
        // 1 GHz < tps <= 2 GHz here, so the fraction is below 2^32 and the shift within ±64.
        Some(((((target as u128) << 32) / tps as u128) as u32, shift))
    }
}

/// Reads the record at `offset` of `mem` under its version protocol (at most `tries`
/// attempts).
pub fn read(mem: &impl SharedMem, offset: usize, tries: u32) -> Result<TimeInfo, Torn> {
    for _ in 0..tries {
        let v1 = mem.read_u32(offset);
        fence(Ordering::Acquire);
        let info = TimeInfo {
            version: v1,
            tsc_timestamp: mem.read_u64(offset + 8),
            system_time: mem.read_u64(offset + 16),
            tsc_to_system_mul: mem.read_u32(offset + 24),
            tsc_shift: mem.read_u8(offset + 28) as i8,
            flags: mem.read_u8(offset + 29),
        };
        fence(Ordering::Acquire);
        let v2 = mem.read_u32(offset);
        if v1 == v2 && v1 & 1 == 0 {
            return Ok(info);
        }
        core::hint::spin_loop();
    }
    Err(Torn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::testing::FakePage;

    #[test]
    fn scale_matches_xen_for_real_rates() {
        // (TSC Hz, Xen's mul, shift) as Xen's set_time_scale computes them.
        assert_eq!(TimeInfo::scale_for(2_445_430_000), Some((3_512_647_915, -1)));
        assert_eq!(TimeInfo::scale_for(1_000_000_000), Some((2_147_483_648, 1)));
        assert_eq!(TimeInfo::scale_for(3_000_000_000), Some((2_863_311_530, -1)));
        for hz in [1_000_000u64, 999_999_999, 2_112_000_000, 4_000_000_000, 10_000_000_000] {
            let (mul, shift) = TimeInfo::scale_for(hz).unwrap();
            // One second of TSC ticks must scale to one second, within 1 ppm.
            let ns = scale_delta(hz, mul, shift) as i64;
            assert!((ns - 1_000_000_000).abs() <= 1000, "{hz} Hz: {ns} ns");
        }
    }

    #[test]
    fn tsc_rate_inverts_the_scale() {
        for hz in [1_000_000u64, 999_999_999, 2_112_000_000, 2_445_430_000, 3_000_000_000, 10_000_000_000] {
            let (mul, shift) = TimeInfo::scale_for(hz).unwrap();
            let t = TimeInfo { tsc_to_system_mul: mul, tsc_shift: shift, ..Default::default() };
            let back = t.tsc_hz().unwrap();
            assert!(back.abs_diff(hz) <= hz / 1_000_000 + 1, "{hz} Hz came back as {back}");
        }
        assert_eq!(TimeInfo::default().tsc_hz(), None);
    }

    /// Issue 11, item 7: 0 Hz doubled for ever (and overflowed the shift).
    #[test]
    fn rates_at_the_edges_have_a_scale_or_none() {
        assert_eq!(TimeInfo::scale_for(0), None);
        assert_eq!(TimeInfo::scale_for(1), Some((4_000_000_000, 30)));
        let (mul, shift) = TimeInfo::scale_for(u64::MAX).unwrap();
        assert_eq!(shift, -34);
        assert!(mul > 1 << 31);
    }

    #[test]
    fn worked_example() {
        // 2.5 GHz TSC: shift -1 (1.25 GHz), mul = 0.8 * 2^32.
        let t = TimeInfo {
            version: 2,
            tsc_timestamp: 1_000,
            system_time: 5_000_000,
            tsc_to_system_mul: 3_435_973_837,
            tsc_shift: -1,
            flags: 0,
        };
        assert_eq!(t.ns_at(1_000), 5_000_000);
        assert_eq!(t.ns_at(1_000 + 2_500), 5_000_000 + 1_000); // 2500 ticks = 1 us
        assert_eq!(t.ns_at(1_000 + 2_500_000_000), 5_000_000 + 1_000_000_000);
        assert_eq!(t.ns_at(10), 5_000_000); // a TSC before the stamp reads as the stamp
    }

    /// A PVH guest's first record on the Xen test host (hy-pvh, 2026-11-29): Xen added
    /// the domain's TSC offset to a calibration stamp taken before the domain existed.
    /// Saturating the delta to 0 held the clock still until Xen's next record, up to a
    /// second later (a 10,000-CPUID loop measured as 0 ns).
    #[test]
    fn a_stamp_before_the_guests_tsc_origin_still_advances() {
        let t = TimeInfo {
            version: 4,
            tsc_timestamp: 18_446_744_073_583_903_756, // -125,647,860 ticks
            system_time: 62_692_635_815,
            tsc_to_system_mul: 3_308_727_360, // 2.596 GHz
            tsc_shift: -1,
            flags: 0,
        };
        let at = |tsc: u64| t.ns_at(tsc) - t.system_time;
        assert_eq!(at(0), scale_delta(125_647_860, t.tsc_to_system_mul, -1)); // ~48 ms
        let span = at(1_105_656_344 + 2_596_150_000) - at(1_105_656_344);
        assert!(span.abs_diff(1_000_000_000) < 1_000_000, "one second of TSC read as {span} ns");
    }

    #[test]
    fn large_deltas_do_not_overflow() {
        let t = TimeInfo { tsc_to_system_mul: u32::MAX, tsc_shift: 0, ..Default::default() };
        let max = i64::MAX as u64;
        assert_eq!(t.ns_at(max), ((max as u128 * u32::MAX as u128) >> 32) as u64);
        assert_eq!(t.ns_at(max + 1), 0); // 2^63 ticks on: read as before the stamp
        assert_eq!(scale_delta(1, 1 << 31, 40), 1 << 39);
        assert_eq!(scale_delta(1 << 62, 1 << 31, 5), 0); // shifted out: documented as 0
        assert_eq!(scale_delta(u64::MAX, 1 << 31, -64), 0);
    }

    fn page_with(t: &TimeInfo) -> FakePage {
        let p = FakePage::new(64);
        p.write_u32(0, t.version);
        p.write_u64(8, t.tsc_timestamp);
        p.write_u64(16, t.system_time);
        p.write_u32(24, t.tsc_to_system_mul);
        p.write_u8(28, t.tsc_shift as u8);
        p.write_u8(29, t.flags);
        p
    }

    #[test]
    fn reads_consistent_records_only() {
        let t = TimeInfo {
            version: 6,
            tsc_timestamp: 77,
            system_time: 88,
            tsc_to_system_mul: 99,
            tsc_shift: -2,
            flags: FLAG_TSC_STABLE,
        };
        assert_eq!(read(&page_with(&t), 0, 3), Ok(t));
        let busy = TimeInfo { version: 7, ..t }; // odd: being updated, forever
        assert_eq!(read(&page_with(&busy), 0, 5), Err(Torn));
    }
}
