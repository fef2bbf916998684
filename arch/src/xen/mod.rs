//! Xen's interfaces that need no device: the hypercall page ([`hypercall`]), event
//! channels as interrupt controller ([`events`]), the pvclock ([`pvclock`]), the PV
//! one-shot timer ([`timer`]), shared memory ([`shared`]), Viridian's APIC assist
//! ([`viridian`]), classic PV's own calls and interrupt flag ([`pv`]), shutdown, trace records, the
//! feature bits, and the PIRQ calls that route an emulated device's MSI to an event channel.
//!
//! Typed wrappers around [`hypercall::hypercall`] for the calls the kernel makes; the ABI
//! structures come from `xen_iface::hypercall`.

pub mod events;
pub mod grants;
pub mod hypercall;
pub mod pv;
pub mod pvclock;
pub mod shared;
pub mod timer;
pub mod viridian;

use crate::platform::{ExitStatus, PhaseMarker, PowerControl};
use xen_iface::cpuid::XenCpuidInfo;
use xen_iface::features::{FeatureInfo, Features, XENVER_GET_FEATURES};
use xen_iface::grant::setup::{
    QuerySize, SetupTable, DOMID_SELF, GNTTABOP_QUERY_SIZE, GNTTABOP_SETUP_TABLE, GRANT_TABLE_OP,
};
use xen_iface::hypercall::{
    self as abi, evtchnop, vcpuop, AddToPhysmap, EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi,
    EvtchnBindVirq, EvtchnPort, EvtchnSend, EvtchnUpcallVector, HvmParam, HvmXentrace, RegisterVcpuInfo, SchedShutdown,
    ShutdownReason, SingleshotTimer,
};
use xen_iface::physdev::{
    EvtchnBindPirq, GetFreePirq, PhysdevEoi, MAP_PIRQ_TYPE_MSI, PHYSDEVOP_EOI, PHYSDEVOP_GET_FREE_PIRQ,
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

    /// `xen_version(XENVER_get_features)`: submap 0 of the features Xen offers this domain.
    pub fn features(&self) -> Result<Features, i64> {
        let mut fi = FeatureInfo { submap_idx: 0, submap: 0 };
        // SAFETY: fi is a live xen_feature_info that Xen fills in for the call's duration.
        let rc = unsafe {
            hypercall::hypercall(abi::XEN_VERSION, XENVER_GET_FEATURES as u64, &mut fi as *mut _ as u64, 0, 0, 0)
        };
        abi::status(rc).map(|()| Features(fi.submap))
    }

    /// Hypercall `nr`'s operation `cmd` on its argument structure `arg` (Xen may write it).
    /// Private: each caller passes the structure `cmd` expects.
    fn op<T>(&self, nr: u32, cmd: u32, arg: &mut T) -> Result<(), i64> {
        // SAFETY: every caller passes the structure `cmd` expects, live for the call.
        abi::status(unsafe { hypercall::hypercall(nr, cmd as u64, arg as *mut T as u64, 0, 0, 0) })
    }

    fn physdev_op<T>(&self, cmd: u32, arg: &mut T) -> Result<(), i64> {
        self.op(abi::PHYSDEV_OP, cmd, arg)
    }

    /// `PHYSDEVOP_get_free_pirq` for an MSI: a PIRQ of this domain, not yet bound.
    /// Needs `XENFEAT_hvm_pirqs` (`-ENOSYS` without).
    pub fn get_free_msi_pirq(&self) -> Result<u32, i64> {
        let mut a = GetFreePirq { kind: MAP_PIRQ_TYPE_MSI, pirq: 0 };
        self.physdev_op(PHYSDEVOP_GET_FREE_PIRQ, &mut a).map(|_| a.pirq)
    }

    /// `PHYSDEVOP_eoi` for `pirq`. Not needed for an emulated MSI's PIRQ (see
    /// `xen_iface::physdev`); kept for measuring that.
    pub fn pirq_eoi(&self, pirq: u32) -> Result<(), i64> {
        self.physdev_op(PHYSDEVOP_EOI, &mut PhysdevEoi { irq: pirq })
    }

    /// `SCHEDOP_shutdown` with `reason`; returns only if Xen refuses.
    pub fn shutdown(&self, reason: ShutdownReason) -> i64 {
        let arg = SchedShutdown { reason: reason as u32 };
        // SAFETY: arg is a live sched_shutdown for the call's duration.
        unsafe { hypercall::hypercall(abi::SCHED_OP, abi::SCHEDOP_SHUTDOWN as u64, &arg as *const _ as u64, 0, 0, 0) }
    }

    /// `HVMOP_get_param` for this domain: the parameter's value, or Xen's error code.
    pub fn hvm_param(&self, index: u32) -> Result<u64, i64> {
        let mut p = HvmParam { domid: abi::DOMID_SELF, pad: 0, index, value: 0 };
        self.op(abi::HVM_OP, abi::HVMOP_GET_PARAM, &mut p).map(|()| p.value)
    }

    /// `HVMOP_set_param` for this domain.
    pub fn set_hvm_param(&self, index: u32, value: u64) -> Result<(), i64> {
        self.op(abi::HVM_OP, abi::HVMOP_SET_PARAM, &mut HvmParam { domid: abi::DOMID_SELF, pad: 0, index, value })
    }

    /// `HVMOP_set_evtchn_upcall_vector`: per-vCPU upcalls on `vector` (via the LAPIC).
    pub fn set_upcall_vector(&self, vcpu: u32, vector: u8) -> Result<(), i64> {
        self.op(abi::HVM_OP, abi::HVMOP_SET_EVTCHN_UPCALL_VECTOR, &mut EvtchnUpcallVector { vcpu, vector })
    }

    /// `XENMEM_add_to_physmap`: maps item `idx` of `space` at guest frame `gpfn`.
    pub fn add_to_physmap(&self, space: u32, idx: u64, gpfn: u64) -> Result<(), i64> {
        let mut arg = AddToPhysmap { domid: abi::DOMID_SELF, size: 0, space, idx, gpfn };
        self.op(abi::MEMORY_OP, abi::XENMEM_ADD_TO_PHYSMAP, &mut arg)
    }

    /// `GNTTABOP_query_size` for this domain: its grant table's size and limit in frames.
    pub fn gnttab_query_size(&self) -> Result<QuerySize, i64> {
        let mut q = QuerySize { dom: DOMID_SELF, ..Default::default() };
        // SAFETY: `q` is the operation's structure, live for the call.
        let rc = unsafe {
            hypercall::hypercall(GRANT_TABLE_OP, GNTTABOP_QUERY_SIZE as u64, &mut q as *mut _ as u64, 1, 0, 0)
        };
        abi::status(rc).map(|()| q)
    }

    /// `GNTTABOP_setup_table` for this domain: the machine frames of the table's first
    /// `frames.len()` frames, written into `frames`; the answer's status is the caller's
    /// to check (`xen_iface::grant::setup::check_frames`).
    pub fn gnttab_setup_table(&self, frames: &mut [u64]) -> Result<SetupTable, i64> {
        let mut s = SetupTable {
            dom: DOMID_SELF,
            nr_frames: frames.len() as u32,
            status: 0,
            frame_list: frames.as_mut_ptr() as u64,
        };
        // SAFETY: `s` is live for the call and points at `frames`, room for exactly the
        // `nr_frames` entries Xen may write.
        let rc = unsafe {
            hypercall::hypercall(GRANT_TABLE_OP, GNTTABOP_SETUP_TABLE as u64, &mut s as *mut _ as u64, 1, 0, 0)
        };
        abi::status(rc).map(|()| s)
    }

    fn evtchn_op<T>(&self, cmd: u32, arg: &mut T) -> Result<(), i64> {
        self.op(abi::EVENT_CHANNEL_OP, cmd, arg)
    }

    /// `EVTCHNOP_bind_virq`: a port for virtual IRQ `virq` on `vcpu`.
    pub fn bind_virq(&self, virq: u32, vcpu: u32) -> Result<u32, i64> {
        let mut a = EvtchnBindVirq { virq, vcpu, port: 0 };
        self.evtchn_op(evtchnop::BIND_VIRQ, &mut a).map(|_| a.port)
    }

    /// `EVTCHNOP_bind_pirq`: a port raised whenever `pirq` fires (not shared).
    pub fn bind_pirq(&self, pirq: u32) -> Result<u32, i64> {
        let mut a = EvtchnBindPirq { pirq, flags: 0, port: 0 };
        self.evtchn_op(evtchnop::BIND_PIRQ, &mut a).map(|_| a.port)
    }

    /// `EVTCHNOP_bind_ipi`: a port that raises an event on `vcpu` when sent.
    pub fn bind_ipi(&self, vcpu: u32) -> Result<u32, i64> {
        let mut a = EvtchnBindIpi { vcpu, port: 0 };
        self.evtchn_op(evtchnop::BIND_IPI, &mut a).map(|_| a.port)
    }

    /// `EVTCHNOP_alloc_unbound`: a port `remote_dom` may bind to.
    pub fn alloc_unbound(&self, remote_dom: u16) -> Result<u32, i64> {
        let mut a = EvtchnAllocUnbound { dom: abi::DOMID_SELF, remote_dom, port: 0 };
        self.evtchn_op(evtchnop::ALLOC_UNBOUND, &mut a).map(|_| a.port)
    }

    /// `EVTCHNOP_bind_interdomain`: our end of `remote_dom`'s unbound `remote_port`.
    pub fn bind_interdomain(&self, remote_dom: u16, remote_port: u32) -> Result<u32, i64> {
        let mut a = EvtchnBindInterdomain { remote_dom, pad: 0, remote_port, local_port: 0 };
        self.evtchn_op(evtchnop::BIND_INTERDOMAIN, &mut a).map(|_| a.local_port)
    }

    /// `EVTCHNOP_unmask`: unmasks `port` and re-delivers it if it is pending.
    pub fn unmask(&self, port: u32) -> Result<(), i64> {
        self.evtchn_op(evtchnop::UNMASK, &mut EvtchnPort { port })
    }

    /// `EVTCHNOP_close`.
    pub fn close(&self, port: u32) -> Result<(), i64> {
        self.evtchn_op(evtchnop::CLOSE, &mut EvtchnPort { port })
    }

    fn vcpu_op<T>(&self, cmd: u32, vcpu: u32, arg: Option<&mut T>) -> Result<(), i64> {
        let ptr = arg.map_or(0, |a| a as *mut T as u64);
        // SAFETY: every caller passes the structure `cmd` expects (or none), live for the call.
        let rc = unsafe { hypercall::hypercall(abi::VCPU_OP, cmd as u64, vcpu as u64, ptr, 0, 0) };
        abi::status(rc)
    }

    /// `VCPUOP_set_singleshot_timer`: VIRQ_TIMER at Xen system time `abs_ns` (at once if
    /// that has passed).
    #[inline]
    pub fn set_singleshot_timer(&self, vcpu: u32, abs_ns: u64) -> Result<(), i64> {
        self.vcpu_op(
            vcpuop::SET_SINGLESHOT_TIMER,
            vcpu,
            Some(&mut SingleshotTimer { timeout_abs_ns: abs_ns, flags: 0 }),
        )
    }

    /// `VCPUOP_stop_singleshot_timer`.
    pub fn stop_singleshot_timer(&self, vcpu: u32) -> Result<(), i64> {
        self.vcpu_op::<()>(vcpuop::STOP_SINGLESHOT_TIMER, vcpu, None)
    }

    /// `VCPUOP_stop_periodic_timer`: no periodic VIRQ_TIMER ticks.
    pub fn stop_periodic_timer(&self, vcpu: u32) -> Result<(), i64> {
        self.vcpu_op::<()>(vcpuop::STOP_PERIODIC_TIMER, vcpu, None)
    }

    /// `VCPUOP_register_vcpu_info`: moves `vcpu`'s vcpu_info to `gpa` (within one page).
    pub fn register_vcpu_info(&self, vcpu: u32, gpa: u64) -> Result<(), i64> {
        let mut a = RegisterVcpuInfo { mfn: gpa >> 12, offset: (gpa & 0xfff) as u32, rsvd: 0 };
        self.vcpu_op(vcpuop::REGISTER_VCPU_INFO, vcpu, Some(&mut a))
    }

    /// `EVTCHNOP_send`: notifies the other end of local `port`.
    pub fn evtchn_send(&self, port: u32) -> i64 {
        let arg = EvtchnSend { port };
        // SAFETY: arg is a live evtchn_send for the call's duration.
        unsafe {
            hypercall::hypercall(abi::EVENT_CHANNEL_OP, abi::EVTCHNOP_SEND as u64, &arg as *const _ as u64, 0, 0, 0)
        }
    }

    /// `HVMOP_xentrace`: one record `TRC_GUEST | event` with `extra` in the host's trace.
    pub fn xentrace(&self, event: u16, extra: &[u8]) -> i64 {
        let rec = HvmXentrace::new(event, extra);
        // SAFETY: rec is a live xen_hvm_xentrace for the call's duration.
        unsafe { hypercall::hypercall(abi::HVM_OP, abi::HVMOP_XENTRACE as u64, &rec as *const _ as u64, 0, 0, 0) }
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
