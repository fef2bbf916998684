//! Hypercall numbers and the argument structures of the hypercalls the kernel makes
//! (`xen.h`, `sched.h`, `hvm/hvm_op.h`, `version.h`).
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
        let mut r = HvmXentrace {
            event,
            extra_bytes: n as u16,
            extra: [0; XENTRACE_EXTRA_MAX],
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn layouts_match_headers() {
        assert_eq!(offset_of!(HvmXentrace, extra_bytes), 2);
        assert_eq!(offset_of!(HvmXentrace, extra), 4);
        assert_eq!(ShutdownReason::Crash as u32, 3);
        assert_eq!(offset_of!(HvmParam, index), 4);
        assert_eq!(offset_of!(HvmParam, value), 8);
    }

    #[test]
    fn xentrace_payload_is_cut() {
        let r = HvmXentrace::new(0x100, &[7u8; 40]);
        assert_eq!(r.extra_bytes, 28);
        let small = HvmXentrace::new(0x101, &[1, 2, 3, 4]);
        assert_eq!(
            (small.extra_bytes, &small.extra[..5]),
            (4, &[1, 2, 3, 4, 0][..])
        );
    }
}
