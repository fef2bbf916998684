//! The HPET main counter as a [`Clock`]: a fixed-rate counter at an MMIO address from
//! ACPI. Under a hypervisor every read is an emulated MMIO access (a VM exit), which is
//! what makes it a useful point of comparison for the TSC and the pvclock.

use crate::mmio::Mmio;
use crate::platform::Clock;

const CAPABILITIES: usize = 0x00;
const CONFIG: usize = 0x10;
const MAIN_COUNTER: usize = 0xf0;
const ENABLE: u64 = 1;

/// The HPET.
pub struct Hpet {
    counter: Mmio<u64>,
    femtos_per_tick: u64,
    origin: u64,
}

/// Why the HPET is unusable.
#[derive(Clone, Copy, Debug)]
pub enum HpetError {
    /// Its page could not be mapped.
    Map(crate::paging::MapError),
    /// It states an impossible period.
    BadPeriod(u64),
}

impl Hpet {
    /// Maps the HPET at `base`, starts its counter and makes a clock of it.
    ///
    /// # Safety
    /// `base` must be an HPET's register block, as ACPI's HPET table gives it.
    pub unsafe fn new(base: u64) -> Result<Hpet, HpetError> {
        crate::paging::map_mmio(base, 0x400).map_err(HpetError::Map)?;
        // SAFETY: the caller vouches for base; the registers are 64-bit and were mapped.
        let (caps, config, counter) = unsafe {
            (
                Mmio::<u64>::at(base as usize + CAPABILITIES),
                Mmio::<u64>::at(base as usize + CONFIG),
                Mmio::<u64>::at(base as usize + MAIN_COUNTER),
            )
        };
        let femtos = caps.read() >> 32;
        if femtos == 0 || femtos > 100_000_000 {
            return Err(HpetError::BadPeriod(femtos));
        }
        config.write(config.read() | ENABLE);
        let origin = counter.read();
        Ok(Hpet { counter, femtos_per_tick: femtos, origin })
    }
}

impl Clock for Hpet {
    fn now_ns(&self) -> u64 {
        let ticks = self.counter.read().wrapping_sub(self.origin);
        ((ticks as u128 * self.femtos_per_tick as u128) / 1_000_000) as u64
    }

    fn name(&self) -> &'static str {
        "hpet"
    }
}
