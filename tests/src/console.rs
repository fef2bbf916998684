//! Parsing the kernel's console output.
//!
//! The kernel prints a few kinds of machine-readable lines among its log:
//! `MODE key=value…`, `BENCH {json}`, `SKIP name reason…`, `ERROR text`, `NET ready …`,
//! `DONE` and `POWEROFF status=…`. Everything else is log text.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// One benchmark result line.
#[derive(Clone, Debug, PartialEq)]
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

fn field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a Value, ParseError> {
    obj.get(key).ok_or_else(|| ParseError(format!("BENCH line without \"{key}\"")))
}

impl BenchLine {
    /// Parses `BENCH {json}`; `None` if the line is not a BENCH line at all.
    pub fn parse(line: &str) -> Option<Result<BenchLine, ParseError>> {
        let json = line.trim_end().strip_prefix("BENCH ")?;
        Some(Self::parse_json(json))
    }

    fn parse_json(json: &str) -> Result<BenchLine, ParseError> {
        let v: Value = serde_json::from_str(json).map_err(|e| ParseError(format!("BENCH json: {e}: {json}")))?;
        let obj = v.as_object().ok_or_else(|| ParseError(format!("BENCH json is not an object: {json}")))?;
        let text = |k: &str| -> Result<String, ParseError> {
            field(obj, k)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ParseError(format!("BENCH \"{k}\" is not a string")))
        };
        Ok(BenchLine {
            name: text("name")?,
            mode: text("mode")?,
            unit: text("unit")?,
            value: field(obj, "value")?.as_f64().ok_or_else(|| ParseError("BENCH \"value\" is not a number".into()))?,
            iterations: field(obj, "iterations")?
                .as_u64()
                .ok_or_else(|| ParseError("BENCH \"iterations\" is not a count".into()))?,
        })
    }

    /// Serialises back to the kernel's JSON shape (used in results files).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "name": self.name, "mode": self.mode, "unit": self.unit,
            "value": self.value, "iterations": self.iterations,
        })
    }
}

/// The mode report, as key/value pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeReport(pub BTreeMap<String, String>);

/// Keys every mode report has, in order.
pub const MODE_KEYS: [&str; 7] = ["hypervisor", "mode", "irq", "eoi", "clock", "timer", "nic"];

impl ModeReport {
    /// Parses `MODE k=v …`; `None` if not a mode line. Every key of [`MODE_KEYS`] must be
    /// present exactly once with a non-empty value.
    pub fn parse(line: &str) -> Option<Result<ModeReport, ParseError>> {
        let rest = line.trim_end().strip_prefix("MODE ")?;
        let mut map = BTreeMap::new();
        for word in rest.split_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                return Some(Err(ParseError(format!("MODE word without '=': {word}"))));
            };
            if v.is_empty() || map.insert(k.to_string(), v.to_string()).is_some() {
                return Some(Err(ParseError(format!("MODE key {k} empty or repeated"))));
            }
        }
        if let Some(missing) = MODE_KEYS.iter().find(|k| !map.contains_key(**k)) {
            return Some(Err(ParseError(format!("MODE line without {missing}="))));
        }
        Some(Ok(ModeReport(map)))
    }

    /// Value of `key` (`""` if absent).
    pub fn get(&self, key: &str) -> &str {
        self.0.get(key).map_or("", String::as_str)
    }
}

/// Everything recognised in one boot's console output.
#[derive(Clone, Debug, Default)]
pub struct BootSummary {
    /// The mode report, if printed.
    pub mode: Option<ModeReport>,
    /// Benchmark lines, in order.
    pub benches: Vec<BenchLine>,
    /// Lines that claimed to be BENCH or MODE lines but did not parse.
    pub malformed: Vec<String>,
    /// `ERROR …` lines.
    pub errors: Vec<String>,
    /// `SKIP …` lines.
    pub skips: Vec<String>,
    /// `PANIC: …` lines.
    pub panics: Vec<String>,
    /// True if `DONE` was printed.
    pub done: bool,
}

impl BootSummary {
    /// Scans console lines.
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> BootSummary {
        let mut s = BootSummary::default();
        for line in lines {
            let line = line.as_ref().trim_end();
            if let Some(r) = BenchLine::parse(line) {
                match r {
                    Ok(b) => s.benches.push(b),
                    Err(e) => s.malformed.push(format!("{line} ({e})")),
                }
            } else if let Some(r) = ModeReport::parse(line) {
                match r {
                    Ok(m) => s.mode = Some(m),
                    Err(e) => s.malformed.push(format!("{line} ({e})")),
                }
            } else if let Some(e) = line.strip_prefix("ERROR ") {
                s.errors.push(e.to_string());
            } else if let Some(k) = line.strip_prefix("SKIP ") {
                s.skips.push(k.to_string());
            } else if line.starts_with("PANIC") {
                s.panics.push(line.to_string());
            } else if line == "DONE" {
                s.done = true;
            }
        }
        s
    }

    /// The result named `name`.
    pub fn bench(&self, name: &str) -> Option<&BenchLine> {
        self.benches.iter().find(|b| b.name == name)
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
            "MODE hypervisor=none mode=hvm irq=x2apic eoi=x2apic-msr clock=tsc timer=lapic-oneshot nic=virtio-net",
            r#"BENCH {"name":"clock_read","mode":"hvm","unit":"ns","value":39.646,"iterations":200000}"#,
            r#"BENCH {"name":"interrupt","mode":"hvm","unit":"ns","value":1004.798,"iterations":20000}"#,
            "SKIP mem_lat_64m reason=heap (12 MiB free)",
            "DONE\r",
        ];
        let s = BootSummary::from_lines(&lines);
        let m = s.mode.as_ref().unwrap();
        assert_eq!((m.get("hypervisor"), m.get("mode"), m.get("nic")), ("none", "hvm", "virtio-net"));
        assert_eq!(s.benches.len(), 2);
        assert_eq!(s.bench("interrupt").unwrap().value, 1004.798);
        assert_eq!(s.skips, ["mem_lat_64m reason=heap (12 MiB free)"]);
        assert!(s.done && s.errors.is_empty() && s.malformed.is_empty());
    }

    #[test]
    fn malformed_lines_are_kept_not_dropped() {
        let lines = [
            "BENCH {\"name\":\"x\"",
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":"fast","iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1.0,"iterations":-4}"#,
            "MODE hypervisor=none mode=hvm",
            "MODE hypervisor=none hypervisor=kvm mode=hvm irq=a eoi=b clock=c timer=d nic=e",
            "ERROR cmdline: invalid value 'bogus' for mode= (accepted: auto, hvm, hybrid, pvh, pv)",
            "PANIC: panicked at kernel/src/x.rs:1:1:",
        ];
        let s = BootSummary::from_lines(&lines);
        assert_eq!(s.malformed.len(), 5, "{:?}", s.malformed);
        assert!(s.mode.is_none() && s.benches.is_empty() && !s.done);
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.panics.len(), 1);
    }

    #[test]
    fn json_round_trip() {
        let b = BenchLine::parse(r#"BENCH {"name":"a","mode":"hvm","unit":"MB/s","value":2.5,"iterations":3}"#)
            .unwrap()
            .unwrap();
        let again = BenchLine::parse(&format!("BENCH {}", b.to_json())).unwrap().unwrap();
        assert_eq!(b, again);
    }
}
