//! kvmclock as the kernel's [`Clock`]: KVM keeps a `pvclock_vcpu_time_info` for the vCPU
//! at the guest-physical address written to `MSR_KVM_SYSTEM_TIME_NEW`. Its layout and
//! arithmetic are Xen's `vcpu_time_info` (`xen_iface::pvclock`), so the reading is
//! [`PvClock`]'s; only the registration differs. Reading it costs no exit.

use super::{msr, registration};
use crate::cpu;
use crate::platform::Clock;
use crate::xen::pvclock::PvClock;
use crate::xen::shared::SharedPage;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use xen_iface::pvclock::{self, TIME_INFO_SIZE};

/// vCPU 0's time record; KVM writes it while it is registered.
#[repr(C, align(32))]
struct TimeRecord([AtomicU32; TIME_INFO_SIZE / 4]);
const _: () = assert!(core::mem::size_of::<TimeRecord>() == TIME_INFO_SIZE);

static RECORD: TimeRecord = TimeRecord([const { AtomicU32::new(0) }; TIME_INFO_SIZE / 4]);
/// Set by the first [`KvmClock::enable`]: the record above backs one instance.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Spins waiting for KVM's first update of the record.
const FIRST_UPDATE_SPINS: u32 = 10_000_000;

/// Why kvmclock is not available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvmClockError {
    /// KVM does not offer `KVM_FEATURE_CLOCKSOURCE2`.
    NotOffered,
    /// The record is registered already.
    AlreadyEnabled,
    /// KVM never filled the record in.
    NoUpdate,
}

/// kvmclock: the pvclock reader over KVM's record, and the TSC rate it implies.
pub struct KvmClock {
    inner: PvClock,
    tsc_hz: u64,
}

impl KvmClock {
    /// Registers the record with KVM (the caller checked that KVM offers kvmclock:
    /// `offered`) and waits for KVM's first update.
    pub fn enable(offered: bool) -> Result<KvmClock, KvmClockError> {
        if !offered {
            return Err(KvmClockError::NotOffered);
        }
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(KvmClockError::AlreadyEnabled);
        }
        let gpa = (&raw const RECORD) as u64;
        // The kernel's RAM is identity-mapped: the static's address is its guest-physical one.
        let value = registration(gpa, 32).ok_or(KvmClockError::NoUpdate)?;
        // SAFETY: KVM offers the MSR (CLOCKSOURCE2); the record is a static of this
        // kernel's RAM, aligned, used for nothing else, so KVM may write it.
        unsafe { cpu::wrmsr(msr::SYSTEM_TIME_NEW, value) };
        // SAFETY: the record is mapped, shared with KVM, and only read through this page.
        let page: &'static SharedPage =
            alloc::boxed::Box::leak(alloc::boxed::Box::new(unsafe { SharedPage::new(gpa, TIME_INFO_SIZE) }));
        let mut spins = 0;
        let info = loop {
            match pvclock::read(page, 0, 1) {
                Ok(info) if info.version != 0 && info.tsc_to_system_mul != 0 => break info,
                _ if spins >= FIRST_UPDATE_SPINS => return Err(KvmClockError::NoUpdate),
                _ => {
                    spins += 1;
                    core::hint::spin_loop();
                }
            }
        };
        let tsc_hz = info.tsc_hz().ok_or(KvmClockError::NoUpdate)?;
        Ok(KvmClock { inner: PvClock::new(page, 0), tsc_hz })
    }

    /// The TSC rate in Hz that KVM's scale stands for.
    pub fn tsc_hz(&self) -> u64 {
        self.tsc_hz
    }
}

impl Clock for KvmClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.inner.now_ns()
    }

    fn name(&self) -> &'static str {
        "kvmclock"
    }
}
