//! A line chart as a standalone SVG file: axes with ticks, one polyline with markers per
//! series, a legend. Enough for the results the harness writes beside its JSON (busy time
//! and exits per interrupt against the interrupt rate); no dependency, no scripting.

use std::fmt::Write;

/// One line of the chart: a name and its points, in x order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
}

/// A chart: title, axis labels and series.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

const W: f64 = 720.0;
const H: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `n` ticks over `span`.
fn tick_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Chart {
    /// The SVG document. Axes start at 0 and end at the first tick above the largest value.
    pub fn render(&self) -> String {
        let pts = || self.series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
        let x_max = pts().map(|p| p.0).fold(0.0, f64::max);
        let y_max = pts().map(|p| p.1).fold(0.0, f64::max);
        let (xs, ys) = (tick_step(x_max, 6.0), tick_step(y_max, 5.0));
        let (x_top, y_top) = ((x_max / xs).ceil().max(1.0) * xs, (y_max / ys).ceil().max(1.0) * ys);
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let px = |x: f64| LEFT + x / x_top * pw;
        let py = |y: f64| TOP + ph - y / y_top * ph;
        let mut o = String::new();
        let _ = writeln!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            o,
            r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{}</text>"#,
            W / 2.0,
            esc(&self.title)
        );
        let mut t = 0.0;
        while t <= x_top + xs / 2.0 {
            let x = px(t);
            let _ = writeln!(o, r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{TOP}" stroke="#eee"/>"##, TOP + ph);
            let _ = writeln!(
                o,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + ph + 16.0,
                fmt_tick(t)
            );
            t += xs;
        }
        let mut t = 0.0;
        while t <= y_top + ys / 2.0 {
            let y = py(t);
            let _ = writeln!(o, r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>"##, LEFT + pw);
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
            t += ys;
        }
        let _ = writeln!(o, r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#);
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 12.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            o,
            r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            let line: Vec<String> = s
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(o, r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#, line.join(" "));
            for p in &line {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(o, r#"<circle cx="{x}" cy="{y}" r="3" fill="{c}"/>"#);
            }
            let ly = TOP + 10.0 + 18.0 * i as f64;
            let lx = LEFT + pw + 14.0;
            let _ = writeln!(
                o,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"/>"#,
                lx + 20.0
            );
            let _ = writeln!(o, r#"<text x="{}" y="{}">{}</text>"#, lx + 26.0, ly + 4.0, esc(&s.name));
        }
        o.push_str("</svg>\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks() {
        assert_eq!(tick_step(12_000.0, 6.0), 2000.0);
        assert_eq!(tick_step(1.0, 5.0), 0.2);
        assert_eq!(tick_step(0.0, 5.0), 1.0);
        assert_eq!(fmt_tick(4000.0), "4k");
        assert_eq!(fmt_tick(0.5), "0.50");
    }

    #[test]
    fn renders_every_series_and_escapes_text() {
        let c = Chart {
            title: "busy <%>".into(),
            x_label: "interrupts/s".into(),
            y_label: "busy %".into(),
            series: vec![
                Series { name: "hvm".into(), points: vec![(1000.0, 5.0), (12000.0, 60.0)] },
                Series { name: "hybrid & pirq".into(), points: vec![(1000.0, 2.0), (12000.0, f64::NAN)] },
            ],
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3, "the NaN point is left out");
        assert!(svg.contains("busy &lt;%&gt;") && svg.contains("hybrid &amp; pirq"));
    }
}
