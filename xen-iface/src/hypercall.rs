//! Hypercall numbers and the argument structures of the hypercalls the kernel makes
//! (`xen.h`, `sched.h`, `hvm/hvm_op.h`, `version.h`); those of
//! `physdev.h` and `features.h` are in [`crate::physdev`] and [`crate::features`].
//!
//! Each structure mirrors its C definition; sizes and offsets are asserted here and
//! tested below against the headers' layout.

use core::mem::size_of;

/// `__HYPERVISOR_memory_op`.
pub const MEMORY_OP: u32 = 12;
/// `__HYPERVISOR_xen_version`.
pub const XEN_VERSION: u32 = 17;
/// `__HYPERVISOR_vcpu_op`.
pub const VCPU_OP: u32 = 24;
/// `__HYPERVISOR_sched_op`.
pub const SCHED_OP: u32 = 29;
/// `__HYPERVISOR_event_channel_op`.
pub const EVENT_CHANNEL_OP: u32 = 32;
/// `__HYPERVISOR_physdev_op` (its operations: [`crate::physdev`]).
pub const PHYSDEV_OP: u32 = 33;
/// `__HYPERVISOR_hvm_op`.
pub const HVM_OP: u32 = 34;
/// Size of one hypercall stub in the hypercall page.
pub const STUB_SIZE: usize = 32;

/// `XENVER_version`: returns major << 16 | minor. The cheapest hypercall.
pub const XENVER_VERSION: u32 = 0;

/// `SCHEDOP_shutdown`, argument [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u32 = 2;

/// Shutdown reasons (`SHUTDOWN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ShutdownReason {
    /// Exited normally.
    Poweroff = 0,
    /// Restart.
    Reboot = 1,
    /// Suspend.
    Suspend = 2,
    /// Crashed.
    Crash = 3,
}

/// `struct sched_shutdown`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedShutdown {
    /// A [`ShutdownReason`] value.
    pub reason: u32,
}
const _: () = assert!(size_of::<SchedShutdown>() == 4);

/// `HVMOP_xentrace`, argument [`HvmXentrace`].
pub const HVMOP_XENTRACE: u32 = 11;
/// `TRACE_EXTRA_MAX * sizeof(uint32_t)`.
pub const XENTRACE_EXTRA_MAX: usize = 28;

/// `struct xen_hvm_xentrace`: one guest record for the host's trace buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HvmXentrace {
    /// Event number (< 0x1000); the record id is `TRC_GUEST | event`.
    pub event: u16,
    /// Bytes of `extra` used.
    pub extra_bytes: u16,
    /// Payload.
    pub extra: [u8; XENTRACE_EXTRA_MAX],
}
const _: () = assert!(size_of::<HvmXentrace>() == 32);

impl HvmXentrace {
    /// A record for `event` carrying `extra` (cut to [`XENTRACE_EXTRA_MAX`] bytes).
    pub fn new(event: u16, extra: &[u8]) -> Self {
        let n = extra.len().min(XENTRACE_EXTRA_MAX);
        let mut r = HvmXentrace { event, extra_bytes: n as u16, extra: [0; XENTRACE_EXTRA_MAX] };
        r.extra[..n].copy_from_slice(&extra[..n]);
        r
    }
}

/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;

/// `HVMOP_get_param`, argument [`HvmParam`].
pub const HVMOP_GET_PARAM: u32 = 1;
/// `HVMOP_set_param`, argument [`HvmParam`].
pub const HVMOP_SET_PARAM: u32 = 0;

/// HVM parameter indexes (`hvm/params.h`).
pub mod param {
    /// Event delivery for the guest (`HVM_PARAM_CALLBACK_IRQ`).
    pub const CALLBACK_IRQ: u32 = 0;
    /// xenstore ring frame.
    pub const STORE_PFN: u32 = 1;
    /// xenstore event channel.
    pub const STORE_EVTCHN: u32 = 2;
    /// PV console ring frame.
    pub const CONSOLE_PFN: u32 = 17;
    /// PV console event channel.
    pub const CONSOLE_EVTCHN: u32 = 18;

    /// The address of the page a `*_PFN` parameter names, if the whole page lies below
    /// `limit` (the end of the identity map). Frame 0 names nothing; a frame number whose
    /// address does not fit in 64 bits is refused before any shift can drop its high
    /// bits.
    pub fn page_address(pfn: u64, limit: u64) -> Option<u64> {
        let addr = pfn.checked_mul(4096).filter(|_| pfn != 0)?;
        (addr.checked_add(4096)? <= limit).then_some(addr)
    }

    /// The port an `*_EVTCHN` parameter names, if it is one the 2-level event channel
    /// ABI has (port 0 is never bound).
    pub fn event_port(value: u64) -> Option<u32> {
        u32::try_from(value).ok().filter(|&p| p != 0 && p < crate::events::NR_PORTS)
    }
}

/// `struct xen_hvm_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HvmParam {
    /// Domain (`DOMID_SELF`).
    pub domid: u16,
    /// Padding.
    pub pad: u16,
    /// Parameter index.
    pub index: u32,
    /// Value (in for set, out for get).
    pub value: u64,
}
const _: () = assert!(size_of::<HvmParam>() == 16);

/// `EVTCHNOP_send`, argument [`EvtchnSend`].
pub const EVTCHNOP_SEND: u32 = 4;

/// `struct evtchn_send`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EvtchnSend {
    /// Local port to notify through.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnSend>() == 4);

/// `HVMOP_set_evtchn_upcall_vector`, argument [`EvtchnUpcallVector`].
pub const HVMOP_SET_EVTCHN_UPCALL_VECTOR: u32 = 23;

/// `struct xen_hvm_evtchn_upcall_vector`: a per-vCPU upcall vector (delivered through
/// the local APIC, so it needs an EOI).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EvtchnUpcallVector {
    /// vCPU.
    pub vcpu: u32,
    /// Vector.
    pub vector: u8,
}
const _: () = assert!(size_of::<EvtchnUpcallVector>() == 8);

/// Xen's return convention: a negative value is `-errno`, anything else success (the
/// value itself is the call's answer only for the few calls that return one).
pub fn status(rc: i64) -> Result<(), i64> {
    if rc < 0 {
        Err(rc)
    } else {
        Ok(())
    }
}

/// `HVM_PARAM_CALLBACK_IRQ` value for the global callback vector (type 2 in bits
/// 63:56): Xen injects `vector` itself, without the local APIC, so it needs no EOI.
pub fn callback_via_vector(vector: u8) -> u64 {
    (2u64 << 56) | vector as u64
}

/// Event channel operations (`event_channel.h`).
pub mod evtchnop {
    /// `EVTCHNOP_bind_interdomain`.
    pub const BIND_INTERDOMAIN: u32 = 0;
    /// `EVTCHNOP_bind_virq`.
    pub const BIND_VIRQ: u32 = 1;
    /// `EVTCHNOP_bind_pirq` (argument: [`crate::physdev::EvtchnBindPirq`]).
    pub const BIND_PIRQ: u32 = crate::physdev::EVTCHNOP_BIND_PIRQ;
    /// `EVTCHNOP_close`.
    pub const CLOSE: u32 = 3;
    /// `EVTCHNOP_send`.
    pub const SEND: u32 = 4;
    /// `EVTCHNOP_alloc_unbound`.
    pub const ALLOC_UNBOUND: u32 = 6;
    /// `EVTCHNOP_bind_ipi`.
    pub const BIND_IPI: u32 = 7;
    /// `EVTCHNOP_unmask`.
    pub const UNMASK: u32 = 9;
}

/// `VIRQ_TIMER`: the vCPU's timer (and time updates).
pub const VIRQ_TIMER: u32 = 0;

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindVirq {
    /// Virtual IRQ.
    pub virq: u32,
    /// vCPU to deliver on.
    pub vcpu: u32,
    /// Out: the bound port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindVirq>() == 12);

/// `struct evtchn_bind_ipi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindIpi {
    /// vCPU to deliver on.
    pub vcpu: u32,
    /// Out: the bound port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnBindIpi>() == 8);

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnAllocUnbound {
    /// This domain (`DOMID_SELF`).
    pub dom: u16,
    /// The domain allowed to bind the other end.
    pub remote_dom: u16,
    /// Out: the new port.
    pub port: u32,
}
const _: () = assert!(size_of::<EvtchnAllocUnbound>() == 8);

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnBindInterdomain {
    /// Remote domain.
    pub remote_dom: u16,
    /// Padding (the C struct aligns the next field).
    pub pad: u16,
    /// Its unbound port.
    pub remote_port: u32,
    /// Out: our end.
    pub local_port: u32,
}
const _: () = assert!(size_of::<EvtchnBindInterdomain>() == 12);

/// `struct evtchn_unmask` / `evtchn_close`: one port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EvtchnPort {
    /// The port.
    pub port: u32,
}

/// vCPU operations (`vcpu.h`).
pub mod vcpuop {
    /// `VCPUOP_stop_periodic_timer`.
    pub const STOP_PERIODIC_TIMER: u32 = 7;
    /// `VCPUOP_set_singleshot_timer`.
    pub const SET_SINGLESHOT_TIMER: u32 = 8;
    /// `VCPUOP_stop_singleshot_timer`.
    pub const STOP_SINGLESHOT_TIMER: u32 = 9;
    /// `VCPUOP_register_vcpu_info`.
    pub const REGISTER_VCPU_INFO: u32 = 10;
}

/// `struct vcpu_set_singleshot_timer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleshotTimer {
    /// Absolute Xen system time, ns.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
}
const _: () = assert!(size_of::<SingleshotTimer>() == 16);

/// `struct vcpu_register_vcpu_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterVcpuInfo {
    /// Guest frame of the page holding the vcpu_info.
    pub mfn: u64,
    /// Offset within the page.
    pub offset: u32,
    /// Unused.
    pub rsvd: u32,
}
const _: () = assert!(size_of::<RegisterVcpuInfo>() == 16);

/// `XENMEM_add_to_physmap`, argument [`AddToPhysmap`].
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;

/// `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AddToPhysmap {
    /// Domain (`DOMID_SELF`).
    pub domid: u16,
    /// Number of pages (for ranges).
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index in the space.
    pub idx: u64,
    /// Guest frame to map it at.
    pub gpfn: u64,
}
const _: () = assert!(size_of::<AddToPhysmap>() == 24);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn a_negative_return_is_the_error_and_anything_else_success() {
        assert_eq!(status(-22), Err(-22));
        assert_eq!(status(-1), Err(-1));
        assert_eq!(status(0), Ok(()));
        assert_eq!(status(3), Ok(()), "some calls return a count or a value");
    }

    /// Issue 11, item 7: `pfn << 12` dropped a huge frame number's high bits before the
    /// 4 GiB check, and `port as u32` cut a port's.
    #[test]
    fn parameters_out_of_range_are_refused() {
        const LOW_4G: u64 = 1 << 32;
        assert_eq!(param::page_address(0xfeffc, LOW_4G), Some(0xfeff_c000));
        assert_eq!(param::page_address(0xfffff, LOW_4G), Some(0xffff_f000));
        assert_eq!(param::page_address(0x100000, LOW_4G), None);
        assert_eq!(param::page_address(0, LOW_4G), None);
        let wraps = (1u64 << 52) | 1; // << 12 would give 0x1000
        assert_eq!(wraps << 12, 0x1000);
        assert_eq!(param::page_address(wraps, LOW_4G), None);
        assert_eq!(param::page_address(u64::MAX, u64::MAX), None);
        assert_eq!(param::event_port(3), Some(3));
        assert_eq!(param::event_port((1 << 32) | 3), None, "would be cut to port 3");
        assert_eq!(param::event_port(0), None);
        assert_eq!(param::event_port(crate::events::NR_PORTS as u64), None);
    }

    #[test]
    fn layouts_match_headers() {
        assert_eq!(offset_of!(HvmXentrace, extra_bytes), 2);
        assert_eq!(offset_of!(HvmXentrace, extra), 4);
        assert_eq!(ShutdownReason::Crash as u32, 3);
        assert_eq!(offset_of!(HvmParam, index), 4);
        assert_eq!(offset_of!(HvmParam, value), 8);
        assert_eq!(offset_of!(EvtchnBindInterdomain, remote_port), 4);
        assert_eq!(offset_of!(EvtchnAllocUnbound, port), 4);
        assert_eq!(offset_of!(AddToPhysmap, idx), 8);
        assert_eq!(offset_of!(AddToPhysmap, gpfn), 16);
        assert_eq!(offset_of!(SingleshotTimer, flags), 8);
        assert_eq!(offset_of!(RegisterVcpuInfo, offset), 8);
        assert_eq!(offset_of!(EvtchnUpcallVector, vector), 4);
        assert_eq!(callback_via_vector(0xf3), 0x0200_0000_0000_00f3);
    }

    #[test]
    fn xentrace_payload_is_cut() {
        let r = HvmXentrace::new(0x100, &[7u8; 40]);
        assert_eq!(r.extra_bytes, 28);
        let small = HvmXentrace::new(0x101, &[1, 2, 3, 4]);
        assert_eq!((small.extra_bytes, &small.extra[..5]), (4, &[1, 2, 3, 4, 0][..]));
    }
}
