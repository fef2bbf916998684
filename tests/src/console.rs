//! What a boot of the kernel printed, read with the one reader of its line formats
//! (`proto::lines`): the mode report, `READY`, results, skips, errors, panics and `DONE`.
//!
//! This module only turns the borrowed, parsed lines into owned values and collects them;
//! a line that claims a machine format but breaks it is kept in
//! [`BootSummary::malformed`], never dropped.

use proto::lines::{self, Line, LineError};
use serde::{Deserialize, Serialize};
use std::fmt;

pub use proto::lines::MODE_KEYS;

/// One benchmark result line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchLine {
    /// Benchmark name.
    pub name: String,
    /// Mode it ran in.
    pub mode: String,
    /// Unit of `value`.
    pub unit: String,
    /// The value.
    pub value: f64,
    /// Operations measured.
    pub iterations: u64,
}

/// Why a line could not be parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl From<LineError> for ParseError {
    fn from(e: LineError) -> Self {
        ParseError(e.to_string())
    }
}

impl From<lines::BenchRecord<'_>> for BenchLine {
    fn from(b: lines::BenchRecord<'_>) -> Self {
        BenchLine {
            name: b.name.into_owned(),
            mode: b.mode.into_owned(),
            unit: b.unit.into_owned(),
            value: b.value,
            iterations: b.iterations,
        }
    }
}

impl BenchLine {
    /// Parses `BENCH {json}`; `None` if the line is not a BENCH line at all.
    pub fn parse(line: &str) -> Option<Result<BenchLine, ParseError>> {
        match Line::classify(line) {
            Line::Bench(r) => Some(r.map(BenchLine::from).map_err(ParseError::from)),
            _ => None,
        }
    }
}

/// The mode report, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeReport {
    /// Values in [`MODE_KEYS`] order.
    pub values: Vec<String>,
}

impl ModeReport {
    /// Value of `key` (`""` if it is not one of [`MODE_KEYS`]).
    pub fn get(&self, key: &str) -> &str {
        MODE_KEYS.iter().position(|k| *k == key).and_then(|i| self.values.get(i)).map_or("", String::as_str)
    }
}

impl fmt::Display for ModeReport {
    /// The report as the kernel printed it, without the `MODE ` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in MODE_KEYS.iter().enumerate() {
            write!(f, "{}{k}={}", if i > 0 { " " } else { "" }, self.get(k))?;
        }
        Ok(())
    }
}

impl From<lines::ModeReport<'_>> for ModeReport {
    fn from(m: lines::ModeReport<'_>) -> Self {
        ModeReport { values: MODE_KEYS.iter().map(|k| m.get(k).unwrap_or("").to_string()).collect() }
    }
}

/// Everything recognised in one boot's console output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BootSummary {
    /// The mode report, if printed.
    pub mode: Option<ModeReport>,
    /// The kernel's own time from its entry point to `READY`, if printed.
    pub ready_boot_ns: Option<u64>,
    /// Benchmark lines, in order.
    pub benches: Vec<BenchLine>,
    /// Lines that claimed to be BENCH, MODE or READY lines but did not parse.
    pub malformed: Vec<String>,
    /// `ERROR …` lines.
    pub errors: Vec<String>,
    /// `SKIP …` lines.
    pub skips: Vec<String>,
    /// `PANIC…` lines.
    pub panics: Vec<String>,
    /// The `NET ready …` line's text, if printed.
    pub net_ready: Option<String>,
    /// The `NET down reason=…` line's reason, if printed.
    #[serde(default)]
    pub net_down: Option<String>,
    /// True if `DONE` was printed.
    pub done: bool,
}

impl BootSummary {
    /// Scans console lines.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> BootSummary {
        let mut s = BootSummary::default();
        for line in lines {
            let line = line.as_ref();
            let bad = |e: LineError| format!("{} ({e})", line.trim_end());
            match Line::classify(line) {
                Line::Mode(Ok(m)) => s.mode = Some(m.into()),
                Line::Ready(Ok(r)) => s.ready_boot_ns = Some(r.boot_ns),
                Line::Bench(Ok(b)) => s.benches.push(b.into()),
                Line::NetDown(Ok(d)) => s.net_down = Some(d.reason.to_string()),
                Line::Mode(Err(e)) | Line::Ready(Err(e)) | Line::Bench(Err(e)) | Line::NetDown(Err(e)) => {
                    s.malformed.push(bad(e))
                }
                Line::Skip(k) => s.skips.push(k.to_string()),
                Line::NetReady(n) => s.net_ready = Some(n.to_string()),
                Line::Error(e) => s.errors.push(e.to_string()),
                Line::Panic(p) => s.panics.push(p.to_string()),
                Line::Done => s.done = true,
                Line::PowerOff(_) | Line::Log(_) => {}
            }
        }
        s
    }

    /// The result named `name`.
    pub fn bench(&self, name: &str) -> Option<&BenchLine> {
        self.benches.iter().find(|b| b.name == name)
    }

    /// The lines that say the kernel failed: `PANIC`, `ERROR` and malformed machine lines.
    pub fn failures(&self) -> Vec<&str> {
        self.panics.iter().chain(&self.errors).chain(&self.malformed).map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_boot() {
        let lines = [
            "SeaBIOS (version 1.16.3)",
            "[    0.000000] INFO  hykernel::entry: hykernel 0.1.0",
            "MODE hypervisor=none mode=hvm irq=x2apic eoi=x2apic-msr clock=tsc timer=lapic-oneshot nic=virtio-net msi=lapic",
            "READY boot_ns=52000000",
            r#"BENCH {"name":"clock_read","mode":"hvm","unit":"ns","value":39.646,"iterations":200000}"#,
            r#"BENCH {"name":"interrupt","mode":"hvm","unit":"ns","value":1004.798,"iterations":20000}"#,
            "SKIP mem_lat_64m reason=heap (12 MiB free)",
            "NET ready ip=10.0.77.2/24",
            "DONE\r",
        ];
        let s = BootSummary::from_lines(&lines);
        let m = s.mode.as_ref().unwrap();
        assert_eq!((m.get("hypervisor"), m.get("mode"), m.get("nic")), ("none", "hvm", "virtio-net"));
        assert_eq!(m.to_string(), lines[2].strip_prefix("MODE ").unwrap());
        assert_eq!(s.ready_boot_ns, Some(52_000_000));
        assert_eq!(s.benches.len(), 2);
        assert_eq!(s.bench("interrupt").unwrap().value, 1004.798);
        assert_eq!(s.skips, ["mem_lat_64m reason=heap (12 MiB free)"]);
        assert_eq!(s.net_ready.as_deref(), Some("ip=10.0.77.2/24"));
        assert!(s.done && s.errors.is_empty() && s.malformed.is_empty() && s.failures().is_empty());
    }

    #[test]
    fn malformed_lines_are_kept_not_dropped() {
        let lines = [
            "BENCH {\"name\":\"x\"",
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":"fast","iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1.0,"iterations":-4}"#,
            "MODE hypervisor=none mode=hvm",
            "MODE hypervisor=none hypervisor=kvm mode=hvm irq=a eoi=b clock=c timer=d nic=e",
            "READY soon",
            "ERROR cmdline: invalid value 'bogus' for mode= (accepted: auto, hvm, hybrid, pvh, pv)",
            "PANIC: panicked at kernel/src/x.rs:1:1:",
        ];
        let s = BootSummary::from_lines(&lines);
        assert_eq!(s.malformed.len(), 6, "{:?}", s.malformed);
        assert!(s.mode.is_none() && s.benches.is_empty() && !s.done && s.ready_boot_ns.is_none());
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.panics.len(), 1);
        assert_eq!(s.failures().len(), 8);
    }

    #[test]
    fn stop_replies_parse_as_bench_lines() {
        let b = BenchLine::parse(r#"BENCH {"name":"a","mode":"hvm","unit":"MB/s","value":2.5,"iterations":3}"#)
            .unwrap()
            .unwrap();
        assert_eq!((b.name.as_str(), b.unit.as_str(), b.value, b.iterations), ("a", "MB/s", 2.5, 3));
        assert!(BenchLine::parse("OK").is_none());
        assert!(BenchLine::parse("BENCH {}").unwrap().is_err());
    }
}
