//! The human-readable report of a [`Trace`]: what `hytrace summary` prints.
//!
//! Only formatting: the numbers come from [`Trace`]'s accessors (`mod.rs`) and [`Phase`]'s
//! methods (`phase.rs`).

use super::svm::svm_exit_name;
use super::{Phase, Trace, DOMID_IDLE, DOMID_UNKNOWN};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

impl Trace {
    /// A human-readable report: exits per domain and code, then every phase with exits per op.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} records on pCPUs {:?}, {} VM exits, {} lost records",
            self.records.len(),
            self.cpus,
            self.exits.len(),
            self.lost_records
        );
        for l in &self.lost {
            let end = l.end_tsc.map_or("end of trace".to_string(), |t| t.to_string());
            let _ = writeln!(s, "lost: {} records on pCPU {}, TSC {}..{end}", l.count, l.cpu, l.first_tsc);
        }
        for (dom, codes) in self.exits_by_domain() {
            let total: u64 = codes.values().sum();
            let _ = writeln!(s, "domain {}: {} exits", domain_label(dom), total);
            let mut sorted: Vec<(&u32, &u64)> = codes.iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (code, n) in sorted {
                let _ = writeln!(s, "  {:#06x} {:<16} {:>10}", code, svm_exit_name(*code), n);
            }
        }
        for (dom, msrs) in self.msr_writes_by_domain() {
            let _ = writeln!(s, "domain {}: MSR writes {}", domain_label(dom), top(&msrs));
        }
        for (dom, addrs) in self.mmio_writes_by_domain() {
            let _ = writeln!(s, "domain {}: MMIO writes {}", domain_label(dom), top(&addrs));
        }
        for (dom, n) in self.eoi_exits_by_domain() {
            let _ = writeln!(s, "domain {}: EOI exits {n}", domain_label(dom));
        }
        for p in &self.phases {
            let _ = writeln!(
                s,
                "phase {:?} domain {} iterations {}{}{}: {} exits, {} per op",
                p.name,
                domain_label(p.domain),
                p.iterations,
                if p.complete { "" } else { " (no END marker)" },
                lost_note(p),
                p.total_exits,
                p.total_exits_per_op().map_or("-".to_string(), |v| format!("{v:.4}"))
            );
            let per_op = p.exits_per_op();
            for (name, n) in &p.exits {
                let rate = per_op.get(name).map_or("-".to_string(), |v| format!("{v:.4}"));
                let _ = writeln!(s, "  {name:<16} {n:>10} {rate:>10}/op");
            }
            let per_op = |n: u64| {
                if p.iterations == 0 {
                    "-".to_string()
                } else {
                    format!("{:.4}", n as f64 / p.iterations as f64)
                }
            };
            for (msr, &n) in &p.msr_writes {
                let label = format!("wrmsr {msr:#x}");
                let _ = writeln!(s, "  {label:<16} {n:>10} {:>10}/op", per_op(n));
            }
            for (addr, &n) in &p.mmio_writes {
                let label = format!("mmio-w {addr:#x}");
                let _ = writeln!(s, "  {label:<16} {n:>10} {:>10}/op", per_op(n));
            }
            if !p.msr_writes.is_empty() || !p.mmio_writes.is_empty() {
                let n = p.eoi_exits();
                let _ = writeln!(s, "  {:<16} {n:>10} {:>10}/op", "EOI exits", per_op(n));
            }
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// The most frequent keys of a count map, as `key:count` (hex keys), for the summary.
fn top<K: Copy + Ord + fmt::LowerHex>(counts: &BTreeMap<K, u64>) -> String {
    const SHOWN: usize = 12;
    let mut v: Vec<(K, u64)> = counts.iter().map(|(&k, &n)| (k, n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<String> = v.iter().take(SHOWN).map(|(k, n)| format!("{k:#x}:{n}")).collect();
    if v.len() > SHOWN {
        out.push(format!("(+{} more)", v.len() - SHOWN));
    }
    out.join(" ")
}

/// What the summary says about a phase that may have lost records ("" if none).
fn lost_note(p: &Phase) -> String {
    match (p.lost_records, p.overlaps_lost()) {
        (_, false) => String::new(),
        (0, true) => " (overlaps lost records)".to_string(),
        (n, true) => format!(" ({n} records lost while open)"),
    }
}

/// A domain id as the summary shows it.
fn domain_label(dom: u16) -> String {
    match dom {
        DOMID_UNKNOWN => "?".to_string(),
        DOMID_IDLE => "idle".to_string(),
        d => d.to_string(),
    }
}
