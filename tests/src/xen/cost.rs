//! What an operation costs in VM exits, counted honestly: **every exit recorded while the
//! guest performed it belongs to it**, whoever "caused" it (the VINTR exit Xen opens to
//! inject our event is our event's cost). Totals come first, then the split by reason
//! (MSR exits by index, NPF exits by address); ratios use totals.
//!
//! A secondary split, [`guest_caused`], is kept only as a second column with its rule
//! stated: exits of the guest's own instructions, leaving out host interrupts and the
//! interrupt windows Xen opens.

use crate::xentrace::{svm_exit_name, Phase, SVM_EXIT_MSR, SVM_EXIT_NPF, X2APIC_EOI_MSR};
use serde::Serialize;

/// The rule of the secondary split, printed wherever it is shown.
pub const GUEST_CAUSED_RULE: &str =
    "guest-caused = exits of the guest's own instructions: all but INTR, NMI, SMI, INIT and VINTR (host interrupts, \
     and the interrupt windows Xen opens to inject)";

/// Whether exit reason `name` is the guest's own instruction (see [`GUEST_CAUSED_RULE`]).
pub fn guest_caused(name: &str) -> bool {
    !matches!(name, "INTR" | "NMI" | "SMI" | "VINTR" | "INIT")
}

/// One exit reason's share of an operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reason {
    /// `MSR`, `VMMCALL`, `VINTR`, `NPF`, ...
    pub name: String,
    /// Exits of this reason per operation.
    pub per_op: f64,
    /// For MSR exits, the writes by index; for NPF exits, the faults by address.
    pub detail: Vec<(String, f64)>,
}

/// Exits per operation of one phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExitCost {
    /// All exits per operation.
    pub total: f64,
    /// By reason, largest first.
    pub reasons: Vec<Reason>,
    /// Local APIC EOI writes per operation (x2APIC MSR 0x80b, xAPIC MMIO 0xfee000b0).
    pub eoi: f64,
    /// Guest-caused exits per operation (secondary; see [`GUEST_CAUSED_RULE`]).
    pub guest_caused: f64,
    /// Operations.
    pub iterations: u64,
    /// Trace records were lost while the phase ran: its counts may be low.
    pub lost_records: bool,
}

fn label_msr(msr: u32) -> String {
    match msr {
        X2APIC_EOI_MSR => format!("wrmsr {msr:#x} (EOI)"),
        0x83f => format!("wrmsr {msr:#x} (self-IPI)"),
        0x830 => format!("wrmsr {msr:#x} (ICR)"),
        0x838 => format!("wrmsr {msr:#x} (timer count)"),
        0x6e0 => format!("wrmsr {msr:#x} (TSC deadline)"),
        _ => format!("wrmsr {msr:#x}"),
    }
}

impl ExitCost {
    /// The cost of phase `p`; `None` if it reported no operations.
    pub fn of(p: &Phase) -> Option<ExitCost> {
        let n = p.iterations;
        if n == 0 {
            return None;
        }
        let per = |v: u64| v as f64 / n as f64;
        let mut reasons: Vec<Reason> = p
            .exit_codes
            .iter()
            .map(|(&code, &count)| {
                let mut detail: Vec<(String, f64)> = match code {
                    SVM_EXIT_MSR => p.msr_writes.iter().map(|(&m, &c)| (label_msr(m), per(c))).collect(),
                    SVM_EXIT_NPF => p.npf_gpas.iter().map(|(&a, &c)| (format!("{a:#x}"), per(c))).collect(),
                    _ => Vec::new(),
                };
                detail.sort_by(|a, b| b.1.total_cmp(&a.1));
                Reason { name: svm_exit_name(code), per_op: per(count), detail }
            })
            .collect();
        reasons.sort_by(|a, b| b.per_op.total_cmp(&a.per_op));
        let guest: u64 = p.exit_codes.iter().filter(|(&c, _)| guest_caused(&svm_exit_name(c))).map(|(_, &v)| v).sum();
        Some(ExitCost {
            total: per(p.total_exits),
            eoi: per(p.eoi_exits()),
            guest_caused: per(guest),
            iterations: n,
            lost_records: p.overlaps_lost(),
            reasons,
        })
    }

    /// Exits of reason `name` per operation.
    pub fn of_reason(&self, name: &str) -> f64 {
        self.reasons.iter().find(|r| r.name == name).map_or(0.0, |r| r.per_op)
    }

    /// `"2.00 = MSR 2.00 [wrmsr 0x83f (self-IPI) 1.00, wrmsr 0x80b (EOI) 1.00]"`: the total,
    /// then every reason of at least 0.01 per operation, with its detail.
    pub fn describe(&self) -> String {
        let shown: Vec<String> = self
            .reasons
            .iter()
            .filter(|r| r.per_op >= 0.01)
            .map(|r| {
                let detail: Vec<String> =
                    r.detail.iter().filter(|d| d.1 >= 0.01).take(4).map(|(k, v)| format!("{k} {}", rate(*v))).collect();
                if detail.is_empty() {
                    format!("{} {}", r.name, rate(r.per_op))
                } else {
                    format!("{} {} [{}]", r.name, rate(r.per_op), detail.join(", "))
                }
            })
            .collect();
        let lost = if self.lost_records { " LOST RECORDS: counts may be low" } else { "" };
        if shown.is_empty() {
            format!("{}{lost}", rate(self.total))
        } else {
            format!("{} = {}{lost}", rate(self.total), shown.join(" + "))
        }
    }
}

/// A per-operation figure, with as many digits as it needs.
pub fn rate(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 0.001 || v == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// What one interrupt costs, from the `interrupt` phase (raise, delivery and
/// acknowledgement, one by one) and the `interrupt_raise` phase (the raises alone,
/// coalesced into one delivery). All from totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InterruptCost {
    /// All exits per interrupt.
    pub total: f64,
    /// All exits per raise (measured alone).
    pub raise: f64,
    /// Delivery and acknowledgement: `total - raise`, both measured.
    pub deliver_ack: f64,
    /// VINTR exits per interrupt (the window Xen opens to inject).
    pub vintr: f64,
    /// EOI writes per interrupt.
    pub eoi: f64,
    /// Guest-caused exits per interrupt (secondary, see [`GUEST_CAUSED_RULE`]).
    pub guest_caused: f64,
    /// Host TSC cycles per interrupt between the phase markers, if they carry a TSC.
    pub cycles: Option<f64>,
}

impl InterruptCost {
    /// The cost from the two phases; `None` if either is empty.
    pub fn of(round_trip: &Phase, raise: &Phase) -> Option<InterruptCost> {
        let (rt, r) = (ExitCost::of(round_trip)?, ExitCost::of(raise)?);
        Some(InterruptCost {
            total: rt.total,
            raise: r.total,
            deliver_ack: rt.total - r.total,
            vintr: rt.of_reason("VINTR"),
            eoi: rt.eoi,
            guest_caused: rt.guest_caused,
            cycles: round_trip.tsc_ticks().map(|t| t as f64 / round_trip.iterations as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, iterations: u64, exits: &[(u32, u64)], tsc: (u64, u64)) -> Phase {
        let mut p = Phase::new(name.into(), 1, iterations, Some(tsc.0));
        p.end_tsc = Some(tsc.1);
        for &(code, n) in exits {
            p.exit_codes.insert(code, n);
            p.exits.insert(svm_exit_name(code), n);
            p.total_exits += n;
        }
        p
    }

    const VMMCALL: u32 = 0x81;
    const VINTR: u32 = 0x64;
    const INTR: u32 = 0x60;

    #[test]
    fn hvm_interrupt_is_raise_plus_eoi() {
        let mut rt = phase("interrupt", 100, &[(SVM_EXIT_MSR, 200), (INTR, 3)], (1000, 51_000));
        rt.msr_writes.insert(0x83f, 100);
        rt.msr_writes.insert(X2APIC_EOI_MSR, 100);
        let raise = phase("interrupt_raise", 100, &[(SVM_EXIT_MSR, 100), (INTR, 2)], (0, 1));
        let c = InterruptCost::of(&rt, &raise).unwrap();
        assert_eq!((c.total, c.raise, c.eoi, c.cycles), (2.03, 1.02, 1.0, Some(500.0)));
        assert!((c.deliver_ack - 1.01).abs() < 1e-9);
        assert_eq!(c.guest_caused, 2.0);
        let d = ExitCost::of(&rt).unwrap().describe();
        assert_eq!(d, "2.03 = MSR 2.00 [wrmsr 0x80b (EOI) 1.00, wrmsr 0x83f (self-IPI) 1.00] + INTR 0.03");
    }

    #[test]
    fn the_window_xen_opens_is_counted_against_the_event() {
        // Hybrid, global callback: the send is a VMMCALL, and every injection opens an
        // interrupt window: 2 exits per event, not 1.
        let rt = phase("interrupt", 100, &[(VMMCALL, 100), (VINTR, 100)], (0, 100));
        let raise = phase("interrupt_raise", 100, &[(VMMCALL, 100), (VINTR, 1)], (0, 1));
        let c = InterruptCost::of(&rt, &raise).unwrap();
        assert_eq!((c.total, c.vintr, c.eoi), (2.0, 1.0, 0.0));
        assert!((c.deliver_ack - 0.99).abs() < 1e-9 && c.guest_caused == 1.0);
        let empty = phase("interrupt_raise", 0, &[], (0, 0));
        assert!(InterruptCost::of(&rt, &empty).is_none());
    }

    #[test]
    fn lost_records_are_shown() {
        let mut p = phase("cpuid", 10, &[(0x72, 10)], (0, 1));
        assert_eq!(ExitCost::of(&p).unwrap().describe(), "1.00 = CPUID 1.00");
        p.lost_records = 5;
        assert!(ExitCost::of(&p).unwrap().describe().ends_with("LOST RECORDS: counts may be low"));
    }
}
