//! The interrupt-load experiment of `hyrun --host xen` (the hybrid HVM slides' claim: at
//! ~12,000 NIC interrupts/s per vCPU, EOI and MSI/MSI-X masking take more than 60 % of a
//! plain HVM guest's interrupt handling). dom0 sends UDP datagrams at fixed rates into each
//! guest's UDP discard port; the guest reports what it received, the interrupts it took and
//! the time it spent halted; the host's trace gives every exit of each rate's window, per
//! interrupt. One table, one JSON file, and an SVG chart beside the JSON.

use super::cut::Cut;
use super::report::write_json;
use harness::netbench::LoadPoint;
use harness::svg::{Chart, Series};
use harness::table::render_grid;
use harness::xen::cost::{rate, ExitCost};
use harness::xen::guests::Variant;
use harness::xen::run::GuestRun;
use serde_json::{json, Value};
use std::path::Path;

/// Rates of the experiment (datagrams per second): the slides' figure, two below it, and one
/// above anything the nested host sustains (the sender then sends as fast as it can).
pub const RATES: [u32; 4] = [1000, 4000, 12_000, 100_000];
/// Seconds each rate runs.
pub const SECONDS: u32 = 3;
/// The rate the slides' figure is about.
pub(crate) const SLIDES_RATE: u32 = 12_000;

/// The variants the experiment compares: plain HVM (its virtio-net suppressing interrupts
/// in the queue, as a good driver does), with the slides' per-interrupt MSI-X masking, and
/// with interrupt moderation;
/// hybrid keeping the emulated virtio-net with its MSI through the LAPIC, over a PIRQ, and
/// over a PIRQ on the assisted per-vCPU vector; hybrid on Xen's netfront with each event
/// delivery.
pub fn variants() -> Vec<Variant> {
    vec![
        Variant::HVM,
        Variant::HVM_MSIMASK,
        Variant::HVM_IRQMOD,
        Variant::HYBRID_VIRTIO_LAPIC,
        Variant::HYBRID_PIRQ,
        Variant::HYBRID_PIRQ_ASSIST,
        Variant::HYBRID,
        Variant::HYBRID_PERCPU,
        Variant::HYBRID_ASSIST,
    ]
}

/// One guest's points, each with the exits of its window (from either host).
pub struct Row {
    /// The variant's label.
    pub label: String,
    /// The guest's name.
    pub guest: String,
    /// Its mode report.
    pub mode_report: Option<String>,
    /// Per rate: what the client and the kernel saw, and the exits per interrupt.
    pub points: Vec<(LoadPoint, Option<ExitCost>)>,
}

fn label(g: &GuestRun) -> String {
    g.guest.variant().map_or_else(|| g.name().to_string(), |v| v.label.to_string())
}

/// One row per load guest of the Xen host.
pub(crate) fn rows(guests: &[&GuestRun]) -> Vec<Row> {
    guests
        .iter()
        .map(|g| {
            let load = g.last().and_then(|a| a.net.as_ref()).map(|r| r.load.clone()).unwrap_or_default();
            let phases = g.phases("load");
            let points =
                load.into_iter().enumerate().map(|(i, p)| (p, phases.get(i).and_then(|ph| ExitCost::of(ph)))).collect();
            Row {
                label: label(g),
                guest: g.name().to_string(),
                mode_report: g.summary.mode.as_ref().map(ToString::to_string),
                points,
            }
        })
        .collect()
}

/// `row`'s point at `rate`, with its exits per interrupt.
pub(crate) fn at(row: &Row, rate: u32) -> Option<&(LoadPoint, Option<ExitCost>)> {
    row.points.iter().find(|(p, _)| p.rate == rate)
}

/// The share of the baseline's exits per interrupt a variant removes, at the slides' rate.
fn removed_share(base: &Row, row: &Row) -> Option<f64> {
    let b = at(base, SLIDES_RATE)?.1.as_ref()?.total;
    let v = at(row, SLIDES_RATE)?.1.as_ref()?.total;
    (b > 0.0).then(|| (b - v) / b)
}

/// Prints the table, writes the JSON and the chart, each saying which load guests `cut`
/// misses.
pub fn report(guests: &[&GuestRun], results: &Path, cut: &Cut<'_>) -> Result<(), String> {
    report_rows(&rows(guests), results, "xen", cut)
}

/// Prints the table of `rows` measured on `host` (`xen`, `kvm`) and under it the guests
/// `cut` misses, writes `<host>-interrupt-load.json` (marked by `cut`) and its two charts.
pub fn report_rows(rows: &[Row], results: &Path, host: &str, cut: &Cut<'_>) -> Result<(), String> {
    let header: Vec<String> =
        ["variant", "rate", "sent/s", "received/s", "interrupts/s", "busy %", "exits/interrupt: total = by reason"]
            .map(String::from)
            .to_vec();
    let mut grid = Vec::new();
    for r in rows {
        for (p, cost) in &r.points {
            grid.push(vec![
                r.label.clone(),
                p.rate.to_string(),
                format!("{:.0}", p.sent_per_s),
                format!("{:.0}", p.received_per_s()),
                format!("{:.0}", p.interrupts_per_s()),
                p.busy.map_or("-".into(), |b| format!("{:.1}", b * 100.0)),
                cost.as_ref().map_or("no phase".into(), ExitCost::describe),
            ]);
        }
    }
    println!(
        "\n{}",
        render_grid(
            &format!(
                "interrupt load: UDP datagrams at fixed rates for {SECONDS} s each into the guest's UDP discard port"
            ),
            &header,
            &grid
        )
    );
    cut.print();
    // The baseline is the best plain HVM guest (hvm); hvm-msimask, the slides' pattern, is
    // the second column.
    let find = |name: &str| rows.iter().find(|r| r.label == name);
    let (base, slides) = (find("hvm"), find("hvm-msimask"));
    if base.is_some() || slides.is_some() {
        println!(
            "at {SLIDES_RATE}/s, the share of hvm's (and hvm-msimask's) total exits per interrupt each variant \
             removes (the slides: EOI and MSI/MSI-X masking > 60 % of interrupt handling):"
        );
        for r in rows {
            let busy =
                at(r, SLIDES_RATE).and_then(|(p, _)| p.busy).map_or("-".into(), |b| format!("{:.1} %", b * 100.0));
            let exits = at(r, SLIDES_RATE).and_then(|(_, c)| c.as_ref()).map_or("-".into(), |c| rate(c.total));
            let share = |b: Option<&Row>| {
                b.and_then(|b| removed_share(b, r)).map_or("-".into(), |s| format!("{:.0} %", s * 100.0))
            };
            println!(
                "  {:<22} exits/interrupt {exits:<6} busy {busy:<8} removed {:<6} (of hvm-msimask's: {})",
                r.label,
                share(base),
                share(slides)
            );
        }
    }
    let mut doc = json!({
        "host": host,
        "experiment": "interrupt load",
        "seconds_per_rate": SECONDS,
        "variants": rows.iter().map(|r| json!({
            "variant": r.label,
            "guest": r.guest,
            "mode_report": r.mode_report,
            "points": r.points.iter().map(|(p, c)| json!({
                "rate": p.rate, "sent_per_s": p.sent_per_s, "received_per_s": p.received_per_s(),
                "interrupts_per_s": p.interrupts_per_s(), "busy": p.busy, "raw": p, "exits_per_interrupt": c,
            })).collect::<Vec<Value>>(),
            "removed_share_of_hvm_at_12k": base.and_then(|b| removed_share(b, r)),
            "removed_share_of_hvm_msimask_at_12k": slides.and_then(|b| removed_share(b, r)),
        })).collect::<Vec<Value>>(),
    });
    cut.mark(&mut doc);
    let path = write_json(results, &format!("{host}-interrupt-load"), &doc)?;
    println!("results written to {}", path.display());
    let series = |y: fn(&LoadPoint, Option<&ExitCost>) -> Option<f64>| -> Vec<Series> {
        rows.iter()
            .map(|r| Series {
                name: r.label.clone(),
                points: r.points.iter().filter_map(|(p, c)| Some((p.interrupts_per_s(), y(p, c.as_ref())?))).collect(),
            })
            .collect()
    };
    for (file, title, y_label, s) in [
        (
            format!("{host}-interrupt-load-busy.svg"),
            "busy time against interrupt rate",
            "busy % of the vCPU",
            series(|p, _| p.busy.map(|b| b * 100.0)),
        ),
        (
            format!("{host}-interrupt-load-exits.svg"),
            "exits per interrupt against interrupt rate",
            "exits per interrupt",
            series(|_, c| c.map(|c| c.total)),
        ),
    ] {
        let chart =
            Chart { title: title.into(), x_label: "interrupts per second".into(), y_label: y_label.into(), series: s };
        let out = results.join(&file);
        std::fs::write(&out, chart.render()).map_err(|e| format!("{}: {e}", out.display()))?;
        println!("chart written to {}", out.display());
    }
    Ok(())
}
