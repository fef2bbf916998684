//! Benchmark phases marked for L1's trace on KVM: a CPUID of a reserved leaf, which exits
//! and which KVM's `kvm:kvm_cpuid` event records with its function and index. The leaves
//! and the phase ids are `xen_iface::trace`'s CPUID markers (the same ones the Linux peer
//! uses on Xen); the iteration count rides in the subleaf. The host's parser leaves the
//! marker's own exit out of the phase. A phase without a marker id is not marked.

use crate::cpu;
use crate::platform::PhaseMarker;
use xen_iface::trace::{cpuid_marker_leaf, PhaseEdge};

/// Phase markers as CPUID exits.
pub struct CpuidMarker;

impl CpuidMarker {
    fn mark(edge: PhaseEdge, name: &str, iterations: u64) {
        if let Some(leaf) = cpuid_marker_leaf(edge, name) {
            let count = u32::try_from(iterations).unwrap_or(u32::MAX);
            cpu::cpuid(leaf, if edge == PhaseEdge::End { count } else { 0 });
        }
    }
}

impl PhaseMarker for CpuidMarker {
    fn begin(&self, name: &str, iterations: u64) {
        Self::mark(PhaseEdge::Begin, name, iterations);
    }

    fn end(&self, name: &str, iterations: u64) {
        Self::mark(PhaseEdge::End, name, iterations);
    }

    fn name(&self) -> &'static str {
        "cpuid"
    }
}
