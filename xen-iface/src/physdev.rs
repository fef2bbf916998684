//! MSI of an emulated PCI device over a PIRQ and an event channel (`physdev.h`,
//! `event_channel.h`; Xen's `hvm_inject_msi` in `xen/arch/x86/hvm/irq.c` is the other
//! side).
//!
//! With `XENFEAT_hvm_pirqs` ([`crate::features`]), an HVM guest asks Xen for a free PIRQ
//! (`PHYSDEVOP_get_free_pirq`, [`MAP_PIRQ_TYPE_MSI`]), binds an event channel to it
//! (`EVTCHNOP_bind_pirq`), and programs the device's MSI(-X) entry once with the message
//! [`pirq_msi_message`] computes: vector 0, the PIRQ in the destination-ID bits. qemu-xen
//! turns the device's message into `XEN_DMOP_inject_msi`; Xen sees vector 0, takes the
//! PIRQ back out of the address ([`pirq_of_msi`] mirrors it) and raises the event
//! channel. From then on the interrupt is masked and acknowledged as an event channel,
//! in shared memory, never at the device.
//!
//! Xen keeps PIRQ bits 8 and up in address bits 40 and up; qemu-xen's MSI window ends at
//! 32 bits and drops them, so a PIRQ of 256 or more cannot be reached and is refused.
//!
//! `PHYSDEVOP_eoi` does nothing for such a PIRQ on Xen 4.17 (it has no host IRQ, and its
//! emulated IRQ is `IRQ_MSI_EMU`, not a GSI); `PHYSDEVOP_irq_status_query` answers
//! `needs_eoi` for every PIRQ regardless, so it cannot tell. The kernel does not call it
//! (measured on the host: issue 13).

use core::mem::size_of;

/// `PHYSDEVOP_eoi`, argument [`PhysdevEoi`].
pub const PHYSDEVOP_EOI: u32 = 12;
/// `PHYSDEVOP_get_free_pirq`, argument [`GetFreePirq`].
pub const PHYSDEVOP_GET_FREE_PIRQ: u32 = 23;
/// `MAP_PIRQ_TYPE_MSI`.
pub const MAP_PIRQ_TYPE_MSI: i32 = 0;

/// `struct physdev_eoi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PhysdevEoi {
    /// The PIRQ.
    pub irq: u32,
}
const _: () = assert!(size_of::<PhysdevEoi>() == 4);

/// `struct physdev_get_free_pirq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GetFreePirq {
    /// In: `MAP_PIRQ_TYPE_*`.
    pub kind: i32,
    /// Out: the PIRQ.
    pub pirq: u32,
}
const _: () = assert!(size_of::<GetFreePirq>() == 8);

/// `EVTCHNOP_bind_pirq`, argument [`EvtchnBindPirq`].
pub const EVTCHNOP_BIND_PIRQ: u32 = 2;

/// `struct evtchn_bind_pirq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindPirq {
    /// In: the PIRQ.
    pub pirq: u32,
    /// In: `BIND_PIRQ__*` (0: not shared).
    pub flags: u32,
    /// Out: the bound port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindPirq>() == 12);

/// The MSI address window of the local APICs.
const MSI_BASE: u64 = 0xfee0_0000;
/// Destination-ID field of an MSI address (bits 19:12).
const DEST_SHIFT: u32 = 12;
/// Mask of the data's vector field.
const VECTOR_MASK: u32 = 0xff;
/// The first PIRQ whose message qemu-xen cannot carry.
pub const PIRQ_LIMIT: u32 = 256;

/// Why a PIRQ has no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PirqMsiError {
    /// PIRQ 0: Xen refuses it (`-ERANGE`).
    Zero,
    /// A PIRQ of [`PIRQ_LIMIT`] or more: its bits 8+ would go in address bits 40+,
    /// which qemu-xen drops, so the device would raise another PIRQ.
    OutOfReach(u32),
}

/// The MSI message (address, data) that raises `pirq`: a fixed, physical-destination
/// message with vector 0 and the PIRQ in the destination-ID bits.
pub fn pirq_msi_message(pirq: u32) -> Result<(u64, u32), PirqMsiError> {
    match pirq {
        0 => Err(PirqMsiError::Zero),
        p if p >= PIRQ_LIMIT => Err(PirqMsiError::OutOfReach(p)),
        p => Ok((MSI_BASE | (p as u64) << DEST_SHIFT, 0)),
    }
}

/// The PIRQ Xen raises for MSI message (`address`, `data`), as `hvm_inject_msi` reads
/// it: `None` for a message with a vector (an ordinary LAPIC MSI) or for PIRQ 0.
pub fn pirq_of_msi(address: u64, data: u32) -> Option<u32> {
    if data & VECTOR_MASK != 0 {
        return None;
    }
    let dest = (address as u32 >> DEST_SHIFT) & 0xff;
    let pirq = ((address >> 32) as u32 & 0xffff_ff00) | dest;
    (pirq > 0).then_some(pirq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn layouts_match_the_headers() {
        assert_eq!(offset_of!(GetFreePirq, pirq), 4);
        assert_eq!(offset_of!(EvtchnBindPirq, flags), 4);
        assert_eq!(offset_of!(EvtchnBindPirq, port), 8);
    }

    #[test]
    fn the_message_carries_the_pirq_in_the_destination_id() {
        // What the prototype of issue 13 saw: PIRQ 55, address 0xfee37000, data 0.
        assert_eq!(pirq_msi_message(55), Ok((0xfee3_7000, 0)));
        assert_eq!(pirq_msi_message(255), Ok((0xfeef_f000, 0)));
        for p in [1, 16, 55, 200, 255] {
            let (a, d) = pirq_msi_message(p).unwrap();
            assert_eq!(pirq_of_msi(a, d), Some(p), "Xen reads back PIRQ {p}");
            assert_eq!(a >> 32, 0, "fits qemu-xen's 32-bit MSI window");
        }
    }

    #[test]
    fn pirqs_qemu_xen_cannot_reach_are_refused() {
        assert_eq!(pirq_msi_message(0), Err(PirqMsiError::Zero));
        assert_eq!(pirq_msi_message(256), Err(PirqMsiError::OutOfReach(256)));
        assert_eq!(pirq_msi_message(u32::MAX), Err(PirqMsiError::OutOfReach(u32::MAX)));
        // Xen would want PIRQ 300 as bit 8 in address bit 40; with those bits dropped
        // the device would raise PIRQ 44 instead.
        let xen_wants = 1u64 << 40 | MSI_BASE | (300 & 0xff) << 12; // bit 8 of 300 in address bit 40
        assert_eq!(pirq_of_msi(xen_wants, 0), Some(300));
        assert_eq!(pirq_of_msi(xen_wants & 0xffff_ffff, 0), Some(44));
    }

    #[test]
    fn a_message_with_a_vector_is_no_pirq() {
        assert_eq!(pirq_of_msi(0xfee0_0000, 0x41), None);
        assert_eq!(pirq_of_msi(0xfee0_0000, 0), None, "PIRQ 0");
    }
}
