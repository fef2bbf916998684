//! The network table of `hyrun --host xen`: each kind of network guest (a variant of ours,
//! the Linux peer) ran in several interleaved rounds (ours, Linux, ours, Linux, ...) in one
//! boot of the host, and every figure is the median over the rounds with its min and max.
//! dom0's instrument is the same for every guest (the agent's client); the kernel's own
//! figure stands beside it. Ratios against Linux divide medians of dom0's figures.
//!
//! One row per kind: hvm (virtio-net), hybrid with every network lever on, pvh and pv
//! (netfront like hybrid's), one hybrid row per lever of issue 14 flipped
//! (`net=no-offload`, ..., `net=lazy-timer`: each lever's effect is its row against
//! hybrid's), and Linux. A classic PV guest takes no VM exits: its row counts hypercalls
//! per packet instead, and says so.

use super::cut::Cut;
use harness::netbench::NetReport;
use harness::stats::Spread;
use harness::table::render_grid;
use harness::xen::cost::ExitCost;
use harness::xen::run::GuestRun;
use proto::cmdline::Mode;
use serde_json::{json, Value};

/// The driven benchmarks, their unit, and whether smaller is better.
const DRIVEN: [(&str, &str, bool); 4] =
    [("udp_rr", "ns", true), ("tcp_rr", "ns", true), ("tcp_stream", "Mbit/s", false), ("tcp_maerts", "Mbit/s", false)];

/// The bulk benchmarks, whose exits are also shown per 1460 bytes carried: into the guest
/// and out of it.
const BULK: [&str; 2] = ["tcp_stream", "tcp_maerts"];

/// A full-size TCP segment's payload on a 1500-byte MTU.
const MSS: u64 = 1460;

/// One round of a network guest, on whichever host ran it (the KVM host's rounds too).
pub trait NetRound {
    /// The guest's name.
    fn round_name(&self) -> &str;
    /// The client's report of its drive.
    fn report(&self) -> Option<&NetReport>;
    /// Its exits per packet in `bench`.
    fn cost(&self, bench: &str) -> Option<ExitCost>;
    /// Bytes its bulk transfers (each of them) were planned to carry.
    fn stream_bytes(&self) -> Option<u64>;
    /// Whether its cost is hypercalls, not VM exits (a classic PV guest).
    fn counts_hypercalls(&self) -> bool {
        false
    }
    /// What one packet of `bench` cost it: total exits, or hypercalls where it
    /// [counts hypercalls](Self::counts_hypercalls).
    fn per_packet(&self, bench: &str) -> Option<f64> {
        self.cost(bench).map(|c| c.total)
    }
}

impl NetRound for GuestRun {
    fn round_name(&self) -> &str {
        self.name()
    }
    fn report(&self) -> Option<&NetReport> {
        self.last().and_then(|a| a.net.as_ref())
    }
    fn cost(&self, bench: &str) -> Option<ExitCost> {
        self.phase(bench).and_then(ExitCost::of)
    }
    fn stream_bytes(&self) -> Option<u64> {
        Some(self.guest.plan.net.as_ref()?.plan.stream_bytes)
    }
    fn counts_hypercalls(&self) -> bool {
        self.guest.variant().is_some_and(|v| v.opts.mode == Mode::Pv)
    }
    fn per_packet(&self, bench: &str) -> Option<f64> {
        if self.counts_hypercalls() {
            self.phase(bench)?.hypercalls_per_op()
        } else {
            self.cost(bench).map(|c| c.total)
        }
    }
}

/// Network guests of one kind, in round order.
pub struct Kind<'a, R: ?Sized = GuestRun> {
    /// The variant's label, or `linux`.
    pub label: String,
    /// Its network levers as `net=` writes them (`default`: every lever on but the lazy
    /// timer), or `-` for Linux.
    pub levers: String,
    /// One guest per round.
    pub rounds: Vec<&'a R>,
}

impl<R: NetRound + ?Sized> Kind<'_, R> {
    fn reports(&self) -> Vec<NetReport> {
        self.rounds.iter().filter_map(|g| g.report().cloned()).collect()
    }

    /// The client's figure for `bench` over the rounds.
    pub fn host(&self, bench: &str) -> Option<Spread> {
        Spread::of(self.reports().iter().filter_map(|r| r.driven(bench).map(|d| d.host_value)))
    }

    /// The kernel's own figure for `bench` over the rounds.
    pub fn kernel(&self, bench: &str) -> Option<Spread> {
        Spread::of(self.reports().iter().filter_map(|r| r.driven(bench)?.kernel.as_ref().map(|k| k.value)))
    }

    /// Ping's mean round trip over the rounds (ms).
    pub fn ping(&self) -> Option<Spread> {
        Spread::of(self.reports().iter().filter_map(|r| r.ping.map(|p| p.avg_ms)))
    }

    /// A bulk benchmark's (`tcp_stream`, `tcp_maerts`) total exits per 1460 bytes it
    /// carried (one full-size segment on a 1500-byte MTU) over the rounds: with receive
    /// offloads a NIC frame may be a GSO segment of up to 64 KiB, so exits per frame alone
    /// do not compare levers.
    pub fn exits_per_mss(&self, bench: &str) -> Option<Spread> {
        Spread::of(self.rounds.iter().filter_map(|g| {
            let bytes = g.stream_bytes()?;
            let packets = g.cost(bench)?.iterations as f64;
            let per_packet = g.per_packet(bench)?;
            (bytes >= MSS).then(|| per_packet * packets / (bytes / MSS) as f64)
        }))
    }

    /// Total exits (hypercalls, for a PV guest) per packet of `bench` over the rounds.
    pub fn exits(&self, bench: &str) -> Option<Spread> {
        Spread::of(self.rounds.iter().filter_map(|g| g.per_packet(bench)))
    }

    /// The row's label: the kind's, marked where its cost column counts hypercalls.
    fn row_label(&self) -> String {
        if self.rounds.first().is_some_and(|g| g.counts_hypercalls()) {
            format!("{} (hypercalls, no exits)", self.label)
        } else {
            self.label.clone()
        }
    }
}

/// Groups the network guests by kind, in the order kinds first appear.
pub fn kinds<'a>(net: &[&'a GuestRun]) -> Vec<Kind<'a>> {
    let mut out: Vec<Kind<'a>> = Vec::new();
    for g in net {
        let label = g.guest.variant().map_or_else(|| "linux".to_string(), |v| v.label.to_string());
        let levers = g.guest.variant().map_or_else(|| "-".to_string(), |v| v.opts.net.to_string());
        match out.iter_mut().find(|k| k.label == label) {
            Some(k) => k.rounds.push(g),
            None => out.push(Kind { label, levers, rounds: vec![g] }),
        }
    }
    out
}

fn show(s: Option<Spread>, decimals: usize) -> String {
    s.map_or("-".into(), |s| s.show(decimals))
}

/// Prints the table, one row per kind: median [min-max] of dom0's figures, the kernel's
/// own medians, exits per packet, the rr figures' max/min across rounds, and ratios
/// against Linux; under it the network guests `cut` misses.
pub fn print(net: &[&GuestRun], cut: &Cut<'_>) {
    print_kinds(&kinds(net), "dom0", "hybrid-no-X/hybrid-lazy-timer: hybrid with one lever flipped", cut);
}

/// Prints the table of `kinds`, whose client ran in `instrument` (`dom0`, `L1`), `note`
/// ending the title, and under it the guests `cut` misses.
pub fn print_kinds<R: NetRound>(kinds: &[Kind<'_, R>], instrument: &str, note: &str, cut: &Cut<'_>) {
    let linux = kinds.iter().find(|k| k.label == "linux");
    let rounds = kinds.iter().map(|k| k.rounds.len()).max().unwrap_or(0);
    let mut header = vec!["guest".to_string(), "net=".to_string(), "ping ms".to_string()];
    for (bench, unit, _) in DRIVEN {
        header.extend([format!("{bench} {unit} ({instrument})"), "kernel's own".into(), "exits/packet".into()]);
    }
    header.extend([
        "stream exits/1460 B".to_string(),
        "maerts exits/1460 B".to_string(),
        "udp_rr max/min".to_string(),
        "tcp_rr max/min".to_string(),
        format!("vs linux (medians, {instrument})"),
    ]);
    let mut grid = Vec::new();
    for k in kinds {
        let mut row = vec![k.row_label(), k.levers.clone(), show(k.ping(), 2)];
        let mut ratios = Vec::new();
        for (bench, _, _) in DRIVEN {
            row.extend([show(k.host(bench), 0), show(k.kernel(bench), 0), show(k.exits(bench), 2)]);
            if let (Some(v), Some(l), false) = (k.host(bench), linux.and_then(|l| l.host(bench)), k.label == "linux") {
                ratios.push(format!("{bench} x{:.2}", v.median / l.median));
            }
        }
        for bench in BULK {
            row.push(show(k.exits_per_mss(bench), 3));
        }
        for bench in ["udp_rr", "tcp_rr"] {
            row.push(k.host(bench).and_then(|s| s.max_over_min()).map_or("-".into(), |m| format!("{m:.2}")));
        }
        row.push(ratios.join(", "));
        grid.push(row);
    }
    let title = format!(
        "network, {rounds} interleaved round(s) in one host boot: median [min-max] of {instrument}'s figures \
         (rr: ns per transaction; stream: Mbit/s into the guest; maerts: Mbit/s out of it, at the receiver), the kernel's own medians, total exits per packet; \
         {note}"
    );
    println!("\n{}", render_grid(&title, &header, &grid));
    cut.print();
    for g in kinds.iter().flat_map(|k| k.rounds.iter()) {
        if let Some(f) = g.report().and_then(|r| r.flood) {
            println!(
                "{}: flood of {} datagrams, {} received; live grants {:?} before, {:?} after",
                g.round_name(),
                f.sent,
                f.rx,
                f.grants.0,
                f.grants.1
            );
        }
    }
}

/// The network JSON: per kind, the spread of every figure, and every round's drive with
/// its attempts (over every boot of the host) and exits per packet; marked by `cut`.
pub fn json(net: &[&GuestRun], cut: &Cut<'_>) -> Value {
    let kinds: Vec<Value> = kinds(net)
        .iter()
        .map(|k| {
            let figures: serde_json::Map<String, Value> = DRIVEN
                .iter()
                .map(|(b, unit, _)| {
                    (b.to_string(), json!({ "unit": unit, "dom0": k.host(b), "kernel": k.kernel(b), "exits_per_packet": k.exits(b) }))
                })
                .collect();
            let stream_exits = k.exits_per_mss("tcp_stream");
            let maerts_exits = k.exits_per_mss("tcp_maerts");
            let rounds: Vec<Value> = k
                .rounds
                .iter()
                .map(|g| {
                    json!({
                        "guest": g.name(),
                        "attempts": g.attempt_count(),
                        "retry_reasons": g.retry_reasons(),
                        "boot": g.boot,
                        "lost_to_host_freeze": g.lost_to_freeze(),
                        "drive": g.last().and_then(|a| a.net.clone()),
                        "exits_per_packet": DRIVEN.iter().map(|(b, _, _)| (b.to_string(), json!(g.phase(b).and_then(ExitCost::of)))).collect::<serde_json::Map<_, _>>(),
                    })
                })
                .collect();
            let unit = if k.rounds.first().is_some_and(|g| g.counts_hypercalls()) { "hypercalls" } else { "exits" };
            json!({ "kind": k.label, "net": k.levers, "cost_unit": unit, "ping_ms": k.ping(), "figures": figures, "stream_exits_per_1460_bytes": stream_exits, "maerts_exits_per_1460_bytes": maerts_exits, "rounds": rounds })
        })
        .collect();
    let mut doc = json!({ "host": "xen", "network": kinds });
    cut.mark(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use harness::xen::results::{DeathCause, Outcome};
    use harness::xen::run::FrozenBoot;

    #[test]
    fn a_round_s_attempts_are_counted_over_every_boot() {
        let work = fixture::scratch("net-attempts");
        let (runs, _) = fixture::replay(&work.0, None).into_parts();
        let mut g = runs.into_iter().find(|g| g.name() == "hy-hybrid-net-r1").unwrap();
        // As if boot 1 had retried it once (a triple fault) and then frozen while its
        // second attempt ran: the attempt that counts is boot 2's.
        let mut died = g.result.attempts[0].clone();
        died.outcome = Outcome::Died { cause: DeathCause::TripleFault { xen_line: "d9v0 Triple fault".into() } };
        died.retried_because = died.outcome.retry_reason();
        g.frozen = vec![FrozenBoot { boot: 1, dir: work.0.join("out.froze1"), attempts: vec![died], running: true }];
        g.boot = 2;
        let doc = json(&[&g], &Cut::default());
        let round = &doc["network"][0]["rounds"][0];
        assert_eq!(round["guest"], "hy-hybrid-net-r1");
        assert_eq!(round["attempts"], 3, "boot 1's ended and lost attempts, then boot 2's: {round}");
        assert_eq!(round["retry_reasons"].as_array().unwrap().len(), 1, "{round}");
        assert!(round["retry_reasons"][0].as_str().unwrap().contains("triple fault"), "{round}");
        assert_eq!((&round["boot"], &round["lost_to_host_freeze"]), (&json!(2), &json!(1)));
        assert_eq!(round["drive"]["quit"], "BYE", "the drive of the attempt that counts");
        assert_eq!((&doc["complete"], &doc["incomplete"]), (&json!(true), &Value::Null), "a complete run");
    }
}
