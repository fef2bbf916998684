//! The side-by-side view printed and written: the first table gives each cell's value and
//! its TOTAL exits per operation (the project's rule: totals lead; ratios use totals), the
//! second the same cells split by reason; under them how each host's run ended and each
//! column's mode report; and `results/side-by-side.json` with the same columns and rows.

use super::{Cell, Column, Row, Section, Status};
use harness::table::render_grid;
use harness::xen::cost::rate;
use serde_json::{json, Value};

/// The text of an absent cost or cell in a value's place: never a blank or a zero.
const NO_VALUE: &str = "n/a";

fn row_name(r: &Row) -> String {
    match r.section {
        Section::Local => r.name.clone(),
        Section::Network => format!("net {}", r.name),
        Section::Load => r.name.clone(),
    }
}

/// Whether column `i` counts hypercalls (a classic PV guest) rather than VM exits.
fn counts_hypercalls(rows: &[Row], i: usize) -> bool {
    rows.iter().any(|r| matches!(&r.cells[i], Cell::Have { cost: Ok(c), .. } if c.hypercalls))
}

/// The first table: per column the value and the total exits (hypercalls for PV) per
/// operation, or why the cell has none.
pub fn totals(cols: &[Column<'_>], rows: &[Row]) -> String {
    let mut header = vec!["benchmark".to_string(), "unit".to_string()];
    for (i, c) in cols.iter().enumerate() {
        header.push(c.title());
        header.push(if counts_hypercalls(rows, i) { "hypercalls/op" } else { "exits/op (total)" }.into());
    }
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut line = vec![row_name(r), r.unit.clone()];
            for cell in &r.cells {
                match cell {
                    Cell::Have { value, cost } => {
                        line.push(format!("{value:.0$}", r.decimals));
                        line.push(cost.as_ref().map_or_else(Clone::clone, |c| rate(c.per_op)));
                    }
                    Cell::Absent(why) => line.extend([why.clone(), NO_VALUE.into()]),
                }
            }
            line
        })
        .collect();
    let instruments: Vec<String> =
        dedup(cols.iter().map(|c| format!("{}: {}", c.host.name(), c.host.instrument())).collect());
    let title = format!(
        "side by side: each benchmark's value and its TOTAL exits per operation (every exit traced in its phase; \
         split by reason below); net: medians over the rounds of the client's figure ({}) and total exits per packet; \
         load: interrupts/s and total exits per NIC interrupt",
        instruments.join(", ")
    );
    render_grid(&title, &header, &grid)
}

/// The second table: per column the exits per operation split by reason, the total first.
pub fn reasons(cols: &[Column<'_>], rows: &[Row]) -> String {
    let mut header = vec!["benchmark".to_string()];
    header.extend(cols.iter().map(Column::title));
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut line = vec![row_name(r)];
            line.extend(r.cells.iter().map(|cell| match cell {
                Cell::Have { cost: Ok(c), .. } => c.split.clone(),
                Cell::Have { cost: Err(why), .. } | Cell::Absent(why) => why.clone(),
            }));
            line
        })
        .collect();
    render_grid("exits per operation by reason: total = reasons (MSR exits by index)", &header, &grid)
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    v.retain(|s| {
        let new = !seen.contains(s);
        seen.push(s.clone());
        new
    });
    v
}

/// How each host's run ended (once per host) and each column's mode report.
pub fn notes(cols: &[Column<'_>]) -> String {
    let mut ends = Vec::new();
    for c in cols {
        let line = match &c.status {
            Status::Ran => continue,
            Status::Incomplete(why) => format!("{}: THE RUN IS INCOMPLETE: {why}", c.host.name()),
            Status::Failed(why) => format!("{}: THE HOST RUN FAILED: {why}", c.host.name()),
        };
        ends.push(line);
    }
    let mut out = dedup(ends);
    for c in cols {
        let mode = c.local.as_ref().ok().and_then(|l| l.summary().mode.as_ref());
        out.push(format!("{}: {}", c.title(), mode.map_or("no mode report".into(), ToString::to_string)));
    }
    out.join("\n")
}

fn status_json(s: &Status) -> (&'static str, Option<&str>) {
    match s {
        Status::Ran => ("ran", None),
        Status::Incomplete(why) => ("incomplete", Some(why)),
        Status::Failed(why) => ("failed", Some(why)),
    }
}

fn cell_json(cell: &Cell) -> Value {
    match cell {
        Cell::Absent(why) => json!({ "absent": why }),
        Cell::Have { value, cost: Err(why) } => json!({ "value": value, "exits_per_op": null, "no_exits": why }),
        Cell::Have { value, cost: Ok(c) } => json!({
            "value": value,
            "exits_per_op": {
                "total": c.per_op,
                "unit": if c.hypercalls { "hypercalls" } else { "exits" },
                "split": c.split,
                "by_reason": c.exits,
            },
        }),
    }
}

/// The view as JSON: the columns in order (host, mode, how the run ended), and the rows,
/// each with one cell per column: a value with its total and split, a value whose exits
/// are unknown (`no_exits`: why), or `absent` with why. `complete`: every host ran to the
/// end.
pub fn json(cols: &[Column<'_>], rows: &[Row]) -> Value {
    let columns: Vec<Value> = cols
        .iter()
        .map(|c| {
            let (status, why) = status_json(&c.status);
            json!({
                "host": c.host.key(),
                "mode": c.mode,
                "title": c.title(),
                "status": status,
                "why": why,
                "mode_report": c.local.as_ref().ok().and_then(|l| l.summary().mode.as_ref()).map(ToString::to_string),
            })
        })
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "section": r.section.key(),
                "name": r.name,
                "unit": r.unit,
                "cells": r.cells.iter().map(cell_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "view": "side by side",
        "exit_counting": "every exit recorded between a phase's markers counts; totals first",
        "columns": columns,
        "rows": rows,
        "complete": cols.iter().all(|c| c.status == Status::Ran),
    })
}
