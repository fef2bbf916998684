//! L1's tracefs text on the KVM test host, as exits per benchmark phase.
//!
//! The KVM host's L1 records `kvm:kvm_exit`, `kvm:kvm_msr`, `kvm:kvm_cpuid`,
//! `kvm:kvm_pv_eoi` and `kvm:kvm_inj_virq` while our kernel runs as its L2 guest, and
//! copies the ring's text (`/sys/kernel/tracing/trace`) out. [`event`] reads one line of it
//! into an [`Event`]; [`phases`] walks the events and cuts them into benchmark phases at
//! the kernel's CPUID markers (`xen_iface::trace`'s, the same the Linux peer uses on Xen),
//! filling the Xen side's [`Phase`] (exits by SVM exit code and MSR writes by index), so
//! both hosts' rows have one shape and one set of derived numbers ([`Phase::eoi_exits`],
//! [`Phase::total_exits_per_op`], ...). KVM-only counts (PV EOIs taken, injections) ride
//! beside it in [`KvmPhase`].

mod event;
mod phase;
#[cfg(test)]
mod tests;

pub use event::{event, exit_code, Event};
pub use phase::{phases, KvmPhase, KvmTrace, TraceError};

use crate::xentrace::Phase;
