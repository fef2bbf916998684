//! Result rows, the table printed to the terminal and the JSON results file.

use serde_json::{json, Value};
use std::fmt::Write;

/// One result row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Benchmark name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Value.
    pub value: f64,
    /// Operations measured (0 where not meaningful).
    pub iterations: u64,
    /// Who measured it: `kernel` or `host`.
    pub source: &'static str,
    /// Extra context (e.g. the host's view of a driven benchmark).
    pub note: String,
}

impl Row {
    /// A row measured by the kernel.
    pub fn kernel(b: &crate::console::BenchLine) -> Row {
        Row {
            name: b.name.clone(),
            unit: b.unit.clone(),
            value: b.value,
            iterations: b.iterations,
            source: "kernel",
            note: String::new(),
        }
    }

    /// A row measured on the host.
    pub fn host(name: &str, unit: &str, value: f64, note: &str) -> Row {
        Row { name: name.into(), unit: unit.into(), value, iterations: 0, source: "host", note: note.into() }
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Renders rows as an aligned text table under `title`.
pub fn render(title: &str, rows: &[Row]) -> String {
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(9);
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "{:<name_w$}  {:>12}  {:<7}  {:>10}  {:<6}  note",
        "benchmark", "value", "unit", "iterations", "by"
    );
    let _ = writeln!(out, "{}", "-".repeat(name_w + 50));
    for r in rows {
        let iters = if r.iterations == 0 { "-".to_string() } else { r.iterations.to_string() };
        let _ = writeln!(
            out,
            "{:<name_w$}  {:>12}  {:<7}  {:>10}  {:<6}  {}",
            r.name,
            fmt_value(r.value),
            r.unit,
            iters,
            r.source,
            r.note
        );
    }
    out
}

/// Renders a grid of text cells with a header row, columns aligned (numbers and text
/// alike left-aligned after the first column, which is the row label).
pub fn render_grid(title: &str, header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![0usize; cols];
    for r in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |r: &[String]| {
        let cells: Vec<String> = (0..cols)
            .map(|i| {
                let c = r.get(i).map_or("", String::as_str);
                format!("{c:<w$}", w = width[i])
            })
            .collect();
        cells.join("  ").trim_end().to_string()
    };
    let mut out = format!("{title}\n{}\n{}\n", line(header), "-".repeat(width.iter().sum::<usize>() + 2 * (cols - 1)));
    for r in rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// The results file's JSON.
pub fn results_json(host: &str, mode: &str, mode_report: &str, rows: &[Row]) -> Value {
    json!({
        "host": host,
        "mode": mode,
        "mode_report": mode_report,
        "results": rows.iter().map(|r| json!({
            "name": r.name, "unit": r.unit, "value": r.value, "iterations": r.iterations,
            "source": r.source, "note": r.note,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_aligns_columns() {
        let header: Vec<String> = ["benchmark", "hvm", "pvh"].map(String::from).to_vec();
        let rows = vec![
            vec!["cpuid".to_string(), "88789 ns".into(), "84680 ns".into()],
            vec!["interrupt".to_string(), "2.00 (MSR 2.00)".into()],
        ];
        let g = render_grid("t", &header, &rows);
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(lines[1], "benchmark  hvm              pvh");
        assert_eq!(lines[3], "cpuid      88789 ns         84680 ns");
        assert_eq!(lines[4], "interrupt  2.00 (MSR 2.00)");
    }

    #[test]
    fn renders_aligned_rows() {
        let rows = vec![
            Row {
                name: "interrupt".into(),
                unit: "ns".into(),
                value: 1004.8,
                iterations: 20000,
                source: "kernel",
                note: String::new(),
            },
            Row::host("image_loaded", "KiB", 344.0, "PT_LOAD sum"),
        ];
        let t = render("qemu / hvm", &rows);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines[0], "qemu / hvm");
        assert!(lines[3].starts_with("interrupt") && lines[3].contains(" 1005 ") && lines[3].contains("20000"));
        assert!(lines[4].contains("344.0") && lines[4].contains("host") && lines[4].ends_with("PT_LOAD sum"));
        let j = results_json("qemu", "hvm", "MODE …", &rows);
        assert_eq!(j["results"][1]["source"], "host");
        assert_eq!(j["results"][0]["iterations"], 20000);
    }
}
