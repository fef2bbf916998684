//! The side-by-side view of `hyrun --host xen,kvm`: one column per host and mode (Xen hvm,
//! Xen hybrid, Xen pvh and pv where asked, KVM hvm, KVM hybrid), one row per local
//! benchmark, per network figure (ping, udp_rr, tcp_rr, tcp_stream, tcp_maerts: medians over the
//! rounds) and for the interrupt-load experiment at 12,000 datagrams/s. A cell holds the
//! value and the TOTAL exits per operation; the split by reason is the second table
//! ([`render`]). Every figure comes from the hosts' own types: [`ExitCost`] of a phase, the
//! network table's [`Kind`] over [`NetRound`]s, the load experiment's [`load::Row`]; nothing
//! is derived again here. A cell a column does not have says why ([`Cell::Absent`]), never
//! a blank that reads as zero. [`columns`] builds the columns from each host's run.

pub mod columns;
pub mod render;
#[cfg(test)]
mod tests;

use super::load::{self, SLIDES_RATE};
use super::network::{Kind, NetRound};
use super::{kvm, report};
use harness::console::BootSummary;
use harness::kvm::KvmRun;
use harness::stats::Spread;
use harness::xen::cost::{rate, ExitCost};
use harness::xen::run::GuestRun;

/// A host of the combined run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// The Xen test host.
    Xen,
    /// The KVM test host.
    Kvm,
}

impl Host {
    /// As the JSON and `--host` write it.
    pub fn key(self) -> &'static str {
        match self {
            Host::Xen => "xen",
            Host::Kvm => "kvm",
        }
    }

    /// As a column's title writes it.
    pub fn name(self) -> &'static str {
        match self {
            Host::Xen => "Xen",
            Host::Kvm => "KVM",
        }
    }

    /// Where the network client ran.
    pub fn instrument(self) -> &'static str {
        match self {
            Host::Xen => "dom0",
            Host::Kvm => "L1",
        }
    }

    /// Why this host has no `bench` at all, where that is the host's nature rather than a
    /// guest's failure.
    fn lacks(self, bench: &str) -> Option<&'static str> {
        match (self, bench) {
            (Host::Kvm, "evtchn_rr") => Some("no event channels on KVM"),
            (Host::Kvm, "null_hypercall") => Some("no Xen hypercalls on KVM"),
            (Host::Kvm, b) if b.starts_with("mem_") => Some("no memory benchmarks on the KVM host yet"),
            _ => None,
        }
    }
}

/// How a column's host run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Every guest of the host's run ended.
    Ran,
    /// The host froze in its last boot: what ended is shown, the rest says it is missing.
    Incomplete(String),
    /// The host's run failed: no results.
    Failed(String),
}

/// What a column's figures come from, or why it has none.
pub type Source<T> = Result<T, String>;

/// A guest that ran the local benchmarks, on either host.
pub trait Local: NetRound {
    /// Its console's machine lines.
    fn summary(&self) -> &BootSummary;
    /// Its cost of `bench` as its host's own table writes it (total = by reason), or why
    /// there is none.
    fn split(&self, bench: &str) -> String;
    /// Why its results cannot be used, if they cannot.
    fn problem(&self) -> Option<String>;
}

impl Local for GuestRun {
    fn summary(&self) -> &BootSummary {
        &self.summary
    }
    fn split(&self, bench: &str) -> String {
        report::exits(self, bench)
    }
    fn problem(&self) -> Option<String> {
        GuestRun::problem(self)
    }
}

impl Local for KvmRun {
    fn summary(&self) -> &BootSummary {
        &self.console
    }
    fn split(&self, bench: &str) -> String {
        kvm::exits(self, bench)
    }
    fn problem(&self) -> Option<String> {
        KvmRun::problem(self)
    }
}

/// One column: a host in one mode.
pub struct Column<'a> {
    /// The host.
    pub host: Host,
    /// The mode (`hvm`, `hybrid`, `pvh`, `pv`).
    pub mode: &'static str,
    /// How the host's run ended.
    pub status: Status,
    /// The guest that ran the local benchmarks.
    pub local: Source<&'a dyn Local>,
    /// The network guest's rounds.
    pub net: Source<Kind<'a, dyn NetRound + 'a>>,
    /// The interrupt-load guest's points.
    pub load: Source<load::Row>,
}

impl Column<'_> {
    /// `Xen hvm`, marked `(INCOMPLETE)` or `(FAILED)`.
    pub fn title(&self) -> String {
        let mark = match self.status {
            Status::Ran => "",
            Status::Incomplete(_) => " (INCOMPLETE)",
            Status::Failed(_) => " (FAILED)",
        };
        format!("{} {}{mark}", self.host.name(), self.mode)
    }
}

/// What one operation cost a column.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// Total exits per operation, or hypercalls for a classic PV guest.
    pub per_op: f64,
    /// Whether [`Cost::per_op`] counts hypercalls (PV: no VM exits).
    pub hypercalls: bool,
    /// The total then the split by reason, as the host's own table writes it.
    pub split: String,
    /// The exits in full, where they are VM exits.
    pub exits: Option<ExitCost>,
}

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A value and its cost per operation, or why the cost is unknown.
    Have {
        /// The figure, in the row's unit.
        value: f64,
        /// Its cost, or why there is none (`NO TRACE`, `no phase`).
        cost: Result<Cost, String>,
    },
    /// No value, and why.
    Absent(String),
}

/// Which part of the view a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// A local benchmark.
    Local,
    /// A network figure, the median over the rounds.
    Network,
    /// The interrupt-load experiment at 12,000/s.
    Load,
}

impl Section {
    /// As the JSON writes it.
    pub fn key(self) -> &'static str {
        match self {
            Section::Local => "local",
            Section::Network => "network",
            Section::Load => "load",
        }
    }
}

/// One row: a figure across the columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its part.
    pub section: Section,
    /// The benchmark or figure.
    pub name: String,
    /// The values' unit.
    pub unit: String,
    /// Decimals of the values.
    pub decimals: usize,
    /// One per column, in column order.
    pub cells: Vec<Cell>,
}

/// The network figures: name, unit, decimals.
const NET: [(&str, &str, usize); 5] = [
    ("ping", "ms", 2),
    ("udp_rr", "ns", 0),
    ("tcp_rr", "ns", 0),
    ("tcp_stream", "Mbit/s", 0),
    ("tcp_maerts", "Mbit/s", 0),
];

/// Every row of `cols`: the local benchmarks in the order first printed, then the network
/// figures and the load experiment where any column has them.
pub fn rows(cols: &[Column<'_>]) -> Vec<Row> {
    let mut names: Vec<(&str, &str)> = Vec::new();
    for c in cols {
        for b in c.local.iter().flat_map(|l| &l.summary().benches) {
            if !names.iter().any(|(n, _)| *n == b.name) {
                names.push((&b.name, &b.unit));
            }
        }
    }
    let row = |section, name: &str, unit: &str, decimals, cell: &dyn Fn(&Column<'_>) -> Cell| Row {
        section,
        name: name.to_string(),
        unit: unit.to_string(),
        decimals,
        cells: cols.iter().map(cell).collect(),
    };
    let mut out: Vec<Row> =
        names.iter().map(|&(name, unit)| row(Section::Local, name, unit, 1, &|c| local_cell(c, name))).collect();
    if cols.iter().any(|c| c.net.is_ok()) {
        for (name, unit, decimals) in NET {
            out.push(row(Section::Network, name, unit, decimals, &|c| net_cell(c, name)));
        }
    }
    if cols.iter().any(|c| c.load.is_ok()) {
        out.push(row(Section::Load, &format!("load {SLIDES_RATE}/s"), "interrupts/s", 0, &load_cell));
    }
    out
}

fn local_cell(c: &Column<'_>, bench: &str) -> Cell {
    let l = match &c.local {
        Ok(l) => *l,
        Err(why) => return Cell::Absent(why.clone()),
    };
    match l.summary().bench(bench) {
        None => Cell::Absent(why_not(c.host, bench, l)),
        Some(b) => {
            let cost = match l.per_packet(bench) {
                None => Err(l.split(bench)),
                Some(per_op) => Ok(Cost {
                    per_op,
                    hypercalls: l.counts_hypercalls(),
                    split: l.split(bench),
                    exits: l.cost(bench).filter(|_| !l.counts_hypercalls()),
                }),
            };
            Cell::Have { value: b.value, cost }
        }
    }
}

/// Why guest `l` of `host` printed no `bench`: the host does not have it, the kernel
/// skipped it (its `SKIP` line's reason), or the guest failed.
fn why_not(host: Host, bench: &str, l: &dyn Local) -> String {
    if let Some(why) = host.lacks(bench) {
        return why.into();
    }
    if let Some(skip) = l.summary().skips.iter().find_map(|k| k.strip_prefix(bench)?.strip_prefix(' ')) {
        return format!("skipped: {}", skip.trim_start_matches("reason="));
    }
    match l.problem() {
        Some(p) => format!("not printed; the guest failed: {p}"),
        None => "not printed by this guest".into(),
    }
}

fn net_cell(c: &Column<'_>, bench: &str) -> Cell {
    let k = match &c.net {
        Ok(k) => k,
        Err(why) => return Cell::Absent(why.clone()),
    };
    let value = if bench == "ping" { k.ping() } else { k.host(bench) };
    let Some(value) = value else {
        return Cell::Absent(format!("no {bench} figure in its {} round(s)", k.rounds.len()));
    };
    let cost = if bench == "ping" { Err("not traced".into()) } else { net_cost(k, bench) };
    Cell::Have { value: value.median, cost }
}

/// The median over the rounds of the total per packet, split by reason as in the round
/// closest to that median.
fn net_cost(k: &Kind<'_, dyn NetRound + '_>, bench: &str) -> Result<Cost, String> {
    let Some(spread) = k.exits(bench) else {
        return Err(format!("no exit counts in its {} round(s)", k.rounds.len()));
    };
    let hypercalls = k.rounds.first().is_some_and(|r| r.counts_hypercalls());
    let distance = |v: f64| (v - spread.median).abs();
    let nearest = k
        .rounds
        .iter()
        .filter_map(|r| Some((*r, r.per_packet(bench)?)))
        .min_by(|a, b| distance(a.1).total_cmp(&distance(b.1)))
        .map(|(r, _)| r);
    let exits = nearest.and_then(|r| r.cost(bench)).filter(|_| !hypercalls);
    let split = match (&exits, nearest) {
        (Some(e), Some(r)) => {
            format!("{} (round {}, nearest the median {})", e.describe(), r.round_name(), show(&spread))
        }
        _ => format!("{} {} per packet", show(&spread), if hypercalls { "hypercalls" } else { "exits" }),
    };
    Ok(Cost { per_op: spread.median, hypercalls, split, exits })
}

fn show(s: &Spread) -> String {
    format!("{} [{}-{}] over {} round(s)", rate(s.median), rate(s.min), rate(s.max), s.rounds)
}

fn load_cell(c: &Column<'_>) -> Cell {
    let r = match &c.load {
        Ok(r) => r,
        Err(why) => return Cell::Absent(why.clone()),
    };
    let Some((p, cost)) = load::at(r, SLIDES_RATE) else {
        return Cell::Absent(format!("no point at {SLIDES_RATE}/s"));
    };
    let busy = p.busy.map_or("-".into(), |b| format!("{:.1} %", b * 100.0));
    let cost = cost
        .as_ref()
        .map(|e| Cost {
            per_op: e.total,
            hypercalls: false,
            split: format!("{} per interrupt; busy {busy}", e.describe()),
            exits: Some(e.clone()),
        })
        .ok_or_else(|| "no phase".to_string());
    Cell::Have { value: p.interrupts_per_s(), cost }
}
