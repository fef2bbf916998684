//! Xen's interfaces that need no device: the hypercall page ([`hypercall`]), shutdown,
//! the version call, and trace records for the host.
//!
//! Typed wrappers around [`hypercall::hypercall`] for the calls the kernel makes; the ABI
//! structures come from `xen_iface::hypercall`.

pub mod hypercall;

use crate::platform::{ExitStatus, PhaseMarker, PowerControl};
use xen_iface::cpuid::XenCpuidInfo;
use xen_iface::hypercall::{
    self as abi, EvtchnSend, HvmParam, HvmXentrace, SchedShutdown, ShutdownReason,
};
use xen_iface::trace::{encode_marker, EVENT_PHASE_BEGIN, EVENT_PHASE_END};

/// Proof that the hypercall page is installed; the typed calls hang off it.
#[derive(Clone, Copy, Debug)]
pub struct Xen {
    _private: (),
}

impl Xen {
    /// Installs the hypercall page.
    pub fn init(info: &XenCpuidInfo) -> Xen {
        hypercall::init(info);
        Xen { _private: () }
    }

    /// `xen_version(XENVER_version)`: major << 16 | minor. The null hypercall.
    #[inline]
    pub fn version(&self) -> i64 {
        // SAFETY: the page is installed (self exists); XENVER_version takes no pointer.
        unsafe { hypercall::hypercall(abi::XEN_VERSION, abi::XENVER_VERSION as u64, 0, 0, 0, 0) }
    }

    /// `SCHEDOP_shutdown` with `reason`; returns only if Xen refuses.
    pub fn shutdown(&self, reason: ShutdownReason) -> i64 {
        let arg = SchedShutdown {
            reason: reason as u32,
        };
        // SAFETY: arg is a live sched_shutdown for the call's duration.
        unsafe {
            hypercall::hypercall(
                abi::SCHED_OP,
                abi::SCHEDOP_SHUTDOWN as u64,
                &arg as *const _ as u64,
                0,
                0,
                0,
            )
        }
    }

    /// `HVMOP_get_param` for this domain: the parameter's value, or Xen's error code.
    pub fn hvm_param(&self, index: u32) -> Result<u64, i64> {
        let mut p = HvmParam {
            domid: abi::DOMID_SELF,
            pad: 0,
            index,
            value: 0,
        };
        // SAFETY: p is a live xen_hvm_param that Xen fills in for the call's duration.
        let rc = unsafe {
            hypercall::hypercall(
                abi::HVM_OP,
                abi::HVMOP_GET_PARAM as u64,
                &mut p as *mut _ as u64,
                0,
                0,
                0,
            )
        };
        if rc < 0 {
            Err(rc)
        } else {
            Ok(p.value)
        }
    }

    /// `EVTCHNOP_send`: notifies the other end of local `port`.
    pub fn evtchn_send(&self, port: u32) -> i64 {
        let arg = EvtchnSend { port };
        // SAFETY: arg is a live evtchn_send for the call's duration.
        unsafe {
            hypercall::hypercall(
                abi::EVENT_CHANNEL_OP,
                abi::EVTCHNOP_SEND as u64,
                &arg as *const _ as u64,
                0,
                0,
                0,
            )
        }
    }

    /// `HVMOP_xentrace`: one record `TRC_GUEST | event` with `extra` in the host's trace.
    pub fn xentrace(&self, event: u16, extra: &[u8]) -> i64 {
        let rec = HvmXentrace::new(event, extra);
        // SAFETY: rec is a live xen_hvm_xentrace for the call's duration.
        unsafe {
            hypercall::hypercall(
                abi::HVM_OP,
                abi::HVMOP_XENTRACE as u64,
                &rec as *const _ as u64,
                0,
                0,
                0,
            )
        }
    }
}

/// Power-off by `SCHEDOP_shutdown`: poweroff on success, crash on failure, so the
/// toolstack sees the status.
pub struct XenPower(pub Xen);

impl PowerControl for XenPower {
    fn power_off(&self, status: ExitStatus) -> ! {
        let reason = match status {
            ExitStatus::Success => ShutdownReason::Poweroff,
            ExitStatus::Failure => ShutdownReason::Crash,
        };
        self.0.shutdown(reason);
        crate::cpu::halt_forever()
    }
}

/// Phase markers as `HVMOP_xentrace` records (see `xen_iface::trace`).
pub struct XenTraceMarker(pub Xen);

impl PhaseMarker for XenTraceMarker {
    fn begin(&self, name: &str, iterations: u64) {
        let m = encode_marker(name, iterations);
        self.0.xentrace(EVENT_PHASE_BEGIN, &m.bytes[..m.len]);
    }

    fn end(&self, name: &str, iterations: u64) {
        let m = encode_marker(name, iterations);
        self.0.xentrace(EVENT_PHASE_END, &m.bytes[..m.len]);
    }

    fn name(&self) -> &'static str {
        "xentrace"
    }
}
