//! What single records say: VM exits, exit handler details and phase markers.
//!
//! [`Record`] (from `record.rs`) only knows words; the methods added here read the record kinds
//! the analysis in `phase.rs` uses. Phase marker payloads are not decoded here but by
//! [`xen_iface::trace`], the specification the guest side encodes them with.

use super::record::{
    Record, TRC_64_FLAG, TRC_HVM_CPUID, TRC_HVM_IOMEM_READ, TRC_HVM_IOMEM_WRITE, TRC_HVM_MSR_READ, TRC_HVM_MSR_WRITE,
    TRC_HVM_NESTEDFLAG, TRC_HVM_NPF, TRC_HVM_VMEXIT,
};
use xen_iface::trace::{decode_cpuid_marker, decode_marker, PhaseEdge, EXTRA_MAX, TRC_GUEST};

/// x2APIC EOI register (MSR `0x800 + 0xb0 / 16`).
pub const X2APIC_EOI_MSR: u32 = 0x80b;
/// xAPIC EOI register at the default APIC base `0xfee00000`.
pub const XAPIC_EOI_GPA: u64 = 0xfee0_00b0;

/// What an exit handler detail record says (see [`Record::exit_detail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDetail {
    /// `TRC_HVM_MSR_READ`: the guest read `msr` and got `value`.
    MsrRead {
        /// MSR index.
        msr: u32,
        /// Value returned.
        value: u64,
    },
    /// `TRC_HVM_MSR_WRITE`: the guest wrote `value` to `msr`.
    MsrWrite {
        /// MSR index.
        msr: u32,
        /// Value written.
        value: u64,
    },
    /// `TRC_HVM_NPF`: a nested page fault at guest physical address `gpa`.
    Npf {
        /// Faulting guest physical address (exact, not page aligned).
        gpa: u64,
        /// Machine frame it maps to (`u64::MAX`: none, e.g. emulated MMIO).
        mfn: u64,
        /// Xen's p2m type of the page (4 = `p2m_mmio_dm`).
        p2m_type: u32,
    },
    /// `TRC_HVM_IOMEM_READ`: Xen emulated an MMIO read at `addr`.
    MmioRead {
        /// Guest physical address.
        addr: u64,
        /// Value read (low 32 bits), unless it went straight to guest memory.
        data: Option<u32>,
    },
    /// `TRC_HVM_IOMEM_WRITE`: Xen emulated an MMIO write to `addr`.
    MmioWrite {
        /// Guest physical address.
        addr: u64,
        /// Value written (low 32 bits), unless it came straight from guest memory.
        data: Option<u32>,
    },
}

impl ExitDetail {
    /// Whether this is a local APIC end-of-interrupt write: x2APIC MSR [`X2APIC_EOI_MSR`] or an
    /// MMIO write to [`XAPIC_EOI_GPA`].
    pub fn is_eoi(&self) -> bool {
        matches!(
            *self,
            ExitDetail::MsrWrite { msr: X2APIC_EOI_MSR, .. } | ExitDetail::MmioWrite { addr: XAPIC_EOI_GPA, .. }
        )
    }
}

/// Which of the two ways a guest marked a phase edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkerKind {
    /// An `HVMOP_xentrace` record; the hypercall's VMMCALL exit delivered it.
    Hypercall,
    /// A `TRC_HVM_CPUID` record of a marker leaf; the CPUID exit is the marker.
    Cpuid,
}

/// A decoded phase marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Marker {
    /// Whether it opens or closes a phase.
    pub edge: PhaseEdge,
    /// How it was written.
    pub kind: MarkerKind,
    /// Phase name (printable ASCII, at most `NAME_MAX` bytes).
    pub name: String,
    /// Iterations it reports (CPUID BEGIN markers: 0).
    pub iterations: u64,
    /// Extra bytes of a hypercall marker, if too few to hold the iteration count (the missing
    /// ones were read as zeros).
    pub short_payload: Option<usize>,
}

impl Record {
    /// For a guest (`HVMOP_xentrace`) record, its event number (`id & 0xfff`).
    pub fn guest_event(&self) -> Option<u32> {
        (self.event & 0x0fff_f000 == TRC_GUEST).then_some(self.event & 0xfff)
    }

    /// Whether the record is an HVM VM exit (32- or 64-bit form, nested or not).
    pub fn is_vmexit(&self) -> bool {
        self.event & !(TRC_64_FLAG | TRC_HVM_NESTEDFLAG) == TRC_HVM_VMEXIT
    }

    /// Guest instruction pointer of a VM exit record (32- or 64-bit form).
    pub(super) fn exit_rip(&self) -> u64 {
        if self.event & TRC_64_FLAG != 0 {
            self.u64_at(1)
        } else {
            u64::from(self.word(1))
        }
    }

    /// Decodes an exit handler detail record (MSR access, NPF, emulated MMIO access); `None`
    /// for other records and for detail records too short to say what they are about.
    pub fn exit_detail(&self) -> Option<ExitDetail> {
        let n = self.extra().len();
        match self.event {
            TRC_HVM_MSR_READ | TRC_HVM_MSR_WRITE if n >= 1 => {
                let (msr, value) = (self.word(0), self.u64_at(1));
                Some(if self.event == TRC_HVM_MSR_WRITE {
                    ExitDetail::MsrWrite { msr, value }
                } else {
                    ExitDetail::MsrRead { msr, value }
                })
            }
            TRC_HVM_NPF if n >= 2 => {
                Some(ExitDetail::Npf { gpa: self.u64_at(0), mfn: self.u64_at(2), p2m_type: self.word(5) })
            }
            ev if ev & !TRC_64_FLAG == TRC_HVM_IOMEM_READ || ev & !TRC_64_FLAG == TRC_HVM_IOMEM_WRITE => {
                let wide = ev & TRC_64_FLAG != 0;
                let addr_words = if wide { 2 } else { 1 };
                if n < addr_words {
                    return None;
                }
                let addr = if wide { self.u64_at(0) } else { u64::from(self.word(0)) };
                let data = (n > addr_words).then(|| self.word(addr_words));
                Some(if ev & !TRC_64_FLAG == TRC_HVM_IOMEM_WRITE {
                    ExitDetail::MmioWrite { addr, data }
                } else {
                    ExitDetail::MmioRead { addr, data }
                })
            }
            _ => None,
        }
    }

    /// Decodes a phase marker of either kind; `None` for every other record.
    pub(super) fn phase_marker(&self) -> Option<Marker> {
        if let Some(ev) = self.guest_event() {
            let edge = PhaseEdge::from_event(u16::try_from(ev).ok()?)?;
            let mut payload = [0u8; EXTRA_MAX];
            for (chunk, w) in payload.chunks_exact_mut(4).zip(self.extra()) {
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            // A payload too short for the iteration count is read as if zero padded.
            let len = 4 * self.extra().len();
            let (name, name_len, iterations) = decode_marker(&payload[..len.max(8)])?;
            let name = String::from_utf8_lossy(&name[..name_len]).into_owned();
            let short_payload = (len < 8).then_some(len);
            return Some(Marker { edge, kind: MarkerKind::Hypercall, name, iterations, short_payload });
        }
        if self.event != TRC_HVM_CPUID || self.extra().is_empty() {
            return None;
        }
        let m = decode_cpuid_marker(self.word(0), self.word(1))?;
        let iterations = if m.edge == PhaseEdge::End { u64::from(m.value) } else { 0 };
        Some(Marker {
            edge: m.edge,
            kind: MarkerKind::Cpuid,
            name: m.name.to_string(),
            iterations,
            short_payload: None,
        })
    }
}
