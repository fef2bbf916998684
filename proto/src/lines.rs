//! The kernel's machine-readable console lines: written by the kernel, read by the host.
//!
//! | line | meaning |
//! |---|---|
//! | `MODE hypervisor=… mode=… irq=… eoi=… clock=… timer=… nic=… msi=…` | what the platform chose for each trait |
//! | `READY boot_ns=N` | the kernel is up (platform chosen, interrupts on), `N` ns after its entry point, before any benchmark |
//! | `BENCH {"name":…,"mode":…,"unit":…,"value":…,"iterations":…}` | one result |
//! | `SKIP name reason…` | a benchmark that could not run |
//! | `NET ready ip=…` | the network services listen |
//! | `NET down reason=…` | the network device went away (its back end was detached); serving stopped |
//! | `ERROR text` | a failure the kernel detected; the run fails |
//! | `PANIC: text` | the panic handler (fault reports end here too) |
//! | `DONE` | every selected benchmark ran |
//! | `POWEROFF status=success\|failure` | last line |
//!
//! [`Line::classify`] is the one reader of these formats; the `Display` impls are the one
//! writer. Parsing is strict: a line that claims to be `MODE`, `READY` or `BENCH` but does
//! not have exactly the written shape is an error the host reports, never dropped.

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt;

/// Why a machine-readable line did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError(pub Cow<'static, str>);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: &'static str) -> LineError {
    LineError(Cow::Borrowed(msg))
}

/// One console line, classified.
#[derive(Clone, Debug, PartialEq)]
pub enum Line<'a> {
    /// `MODE …`.
    Mode(Result<ModeReport<'a>, LineError>),
    /// `READY …`.
    Ready(Result<Ready, LineError>),
    /// `BENCH {…}`.
    Bench(Result<BenchRecord<'a>, LineError>),
    /// `SKIP …`: the text after `SKIP `.
    Skip(&'a str),
    /// `NET ready …`: the text after `NET ready`.
    NetReady(&'a str),
    /// `NET down reason=…`.
    NetDown(Result<NetDown<'a>, LineError>),
    /// `ERROR …`: the text after `ERROR `.
    Error(&'a str),
    /// `PANIC…`: the whole line.
    Panic(&'a str),
    /// `DONE`.
    Done,
    /// `POWEROFF status=…`: the status word.
    PowerOff(&'a str),
    /// Anything else: log text.
    Log(&'a str),
}

impl<'a> Line<'a> {
    /// Classifies one line (a trailing `\r` or newline is ignored).
    pub fn classify(line: &'a str) -> Line<'a> {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(rest) = line.strip_prefix("MODE ") {
            Line::Mode(ModeReport::parse_fields(rest))
        } else if let Some(rest) = line.strip_prefix("READY") {
            Line::Ready(Ready::parse_fields(rest))
        } else if let Some(rest) = line.strip_prefix("BENCH ") {
            Line::Bench(BenchRecord::parse_json(rest))
        } else if let Some(rest) = line.strip_prefix("SKIP ") {
            Line::Skip(rest)
        } else if let Some(rest) = line.strip_prefix("NET down") {
            Line::NetDown(NetDown::parse_fields(rest))
        } else if let Some(rest) = line.strip_prefix("NET ready") {
            Line::NetReady(rest.trim_start())
        } else if let Some(rest) = line.strip_prefix("ERROR ") {
            Line::Error(rest)
        } else if line.starts_with("PANIC") {
            Line::Panic(line)
        } else if line == "DONE" {
            Line::Done
        } else if let Some(rest) = line.strip_prefix("POWEROFF status=") {
            Line::PowerOff(rest)
        } else {
            Line::Log(line)
        }
    }
}

/// Keys of the mode report, in the order they are written.
pub const MODE_KEYS: [&str; 8] = ["hypervisor", "mode", "irq", "eoi", "clock", "timer", "nic", "msi"];

/// The mode report: what the platform chose for each trait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeReport<'a> {
    /// `none`, `xen-4.17`, `kvm`, …
    pub hypervisor: &'a str,
    /// The mode in use.
    pub mode: &'a str,
    /// Interrupt delivery.
    pub irq: &'a str,
    /// End-of-interrupt mechanism.
    pub eoi: &'a str,
    /// Clock.
    pub clock: &'a str,
    /// Timer.
    pub timer: &'a str,
    /// Network device, or `none`.
    pub nic: &'a str,
    /// How a device's MSI arrives: `lapic` (with its EOI) or `pirq` (an event channel).
    pub msi: &'a str,
}

impl<'a> ModeReport<'a> {
    /// The value of `key` (one of [`MODE_KEYS`]).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        Some(match key {
            "hypervisor" => self.hypervisor,
            "mode" => self.mode,
            "irq" => self.irq,
            "eoi" => self.eoi,
            "clock" => self.clock,
            "timer" => self.timer,
            "nic" => self.nic,
            "msi" => self.msi,
            _ => return None,
        })
    }

    fn parse_fields(rest: &'a str) -> Result<ModeReport<'a>, LineError> {
        let mut values: [Option<&'a str>; MODE_KEYS.len()] = [None; MODE_KEYS.len()];
        for word in rest.split_ascii_whitespace() {
            let (k, v) = word.split_once('=').ok_or(err("MODE word without '='"))?;
            let i = MODE_KEYS.iter().position(|key| *key == k).ok_or(err("MODE key not in MODE_KEYS"))?;
            if v.is_empty() || values[i].replace(v).is_some() {
                return Err(err("MODE key empty or repeated"));
            }
        }
        let v = |i: usize| values[i].ok_or(err("MODE line without one of its keys"));
        Ok(ModeReport {
            hypervisor: v(0)?,
            mode: v(1)?,
            irq: v(2)?,
            eoi: v(3)?,
            clock: v(4)?,
            timer: v(5)?,
            nic: v(6)?,
            msi: v(7)?,
        })
    }
}

impl fmt::Display for ModeReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MODE")?;
        for key in MODE_KEYS {
            write!(f, " {key}={}", self.get(key).unwrap_or("?"))?;
        }
        Ok(())
    }
}

/// The kernel is up: printed once, after the mode report and before any benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    /// Nanoseconds from the kernel's entry point to this line, on its own clock.
    pub boot_ns: u64,
}

impl Ready {
    fn parse_fields(rest: &str) -> Result<Ready, LineError> {
        let v = rest.strip_prefix(" boot_ns=").ok_or(err("READY line without ' boot_ns='"))?;
        let boot_ns = count(v).ok_or(err("READY boot_ns= is not a count of ns"))?;
        Ok(Ready { boot_ns })
    }
}

impl fmt::Display for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "READY boot_ns={}", self.boot_ns)
    }
}

/// The network device went away and the network loop stopped serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetDown<'a> {
    /// Why, one word of lowercase letters, digits and `-` (`backend-closing`, ...).
    pub reason: &'a str,
}

impl<'a> NetDown<'a> {
    fn parse_fields(rest: &'a str) -> Result<NetDown<'a>, LineError> {
        let reason = rest.strip_prefix(" reason=").ok_or(err("NET down line without ' reason='"))?;
        let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if reason.is_empty() || !reason.chars().all(word) {
            return Err(err("NET down reason= is not one word of [a-z0-9-]"));
        }
        Ok(NetDown { reason })
    }
}

impl fmt::Display for NetDown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NET down reason={}", self.reason)
    }
}

/// One benchmark result.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRecord<'a> {
    /// Benchmark name, e.g. `interrupt` or `mem_lat_64k`.
    pub name: Cow<'a, str>,
    /// Mode it ran in.
    pub mode: Cow<'a, str>,
    /// Unit of `value`: `ns`, `MB/s`, `Mbit/s`, …
    pub unit: Cow<'a, str>,
    /// The measurement (mean per operation, or a rate).
    pub value: f64,
    /// Operations measured.
    pub iterations: u64,
}

impl<'a> BenchRecord<'a> {
    /// A record of borrowed strings (what the kernel prints).
    pub fn new(name: &'a str, mode: &'a str, unit: &'a str, value: f64, iterations: u64) -> Self {
        BenchRecord { name: name.into(), mode: mode.into(), unit: unit.into(), value, iterations }
    }

    /// Parses the JSON object of a `BENCH` line, exactly as [`fmt::Display`] writes it.
    pub fn parse_json(json: &'a str) -> Result<BenchRecord<'a>, LineError> {
        let mut c = Cursor(json.trim_end());
        c.expect("{\"name\":")?;
        let name = c.string()?;
        c.expect(",\"mode\":")?;
        let mode = c.string()?;
        c.expect(",\"unit\":")?;
        let unit = c.string()?;
        c.expect(",\"value\":")?;
        let value = json_number(c.number()?).ok_or(err("BENCH \"value\" is not a finite JSON number"))?;
        c.expect(",\"iterations\":")?;
        let iterations = count(c.number()?).ok_or(err("BENCH \"iterations\" is not a count"))?;
        c.expect("}")?;
        if !c.0.is_empty() {
            return Err(err("BENCH line has text after its object"));
        }
        Ok(BenchRecord { name, mode, unit, value, iterations })
    }
}

/// A decimal count: digits only (no sign, no blanks), within u64.
fn count(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A number in JSON's grammar (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) whose value
/// is finite: no `NaN`, `inf`, leading `+` or `.5`, and no `1e999`.
fn json_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = usize::from(b.first() == Some(&b'-'));
    match digits(i) {
        0 => return None,
        n if n > 1 && b[i] == b'0' => return None,
        n => i += n,
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    let v: f64 = s.parse().ok()?;
    (i == b.len() && v.is_finite()).then_some(v)
}

/// A reader over the fixed-shape JSON the kernel writes.
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn expect(&mut self, lit: &'static str) -> Result<(), LineError> {
        self.0 = self.0.strip_prefix(lit).ok_or(LineError(Cow::Owned(alloc::format!("BENCH: expected {lit}"))))?;
        Ok(())
    }

    fn number(&mut self) -> Result<&'a str, LineError> {
        let end = self.0.find([',', '}']).ok_or(err("BENCH number not terminated"))?;
        let (n, rest) = self.0.split_at(end);
        self.0 = rest;
        Ok(n)
    }

    /// A JSON string with the escapes [`JsonStr`] writes (`\"`, `\\`, `\uXXXX`).
    fn string(&mut self) -> Result<Cow<'a, str>, LineError> {
        let s = self.0.strip_prefix('"').ok_or(err("BENCH string without its opening quote"))?;
        let end = s.find(['"', '\\']).ok_or(err("BENCH string not terminated"))?;
        if s.as_bytes()[end] == b'"' {
            self.0 = &s[end + 1..];
            return Ok(Cow::Borrowed(&s[..end]));
        }
        let mut out = String::from(&s[..end]);
        let mut chars = s[end..].char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.0 = &s[end + i + 1..];
                    return Ok(Cow::Owned(out));
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('u') => {
                        let mut code = 0u32;
                        for _ in 0..4 {
                            let d =
                                chars.next().and_then(|(_, c)| c.to_digit(16)).ok_or(err("BENCH bad \\u escape"))?;
                            code = code << 4 | d;
                        }
                        out.push(char::from_u32(code).ok_or(err("BENCH \\u escape is not a character"))?);
                    }
                    _ => return Err(err("BENCH string has an unknown escape")),
                },
                c => out.push(c),
            }
        }
        Err(err("BENCH string not terminated"))
    }
}

struct JsonStr<'a>(&'a str);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Display for BenchRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // JSON has no NaN or infinity; a broken measurement shows as 0, which the host
        // rejects as out of bounds.
        let value = if self.value.is_finite() { self.value } else { 0.0 };
        write!(
            f,
            "BENCH {{\"name\":{},\"mode\":{},\"unit\":{},\"value\":{:.3},\"iterations\":{}}}",
            JsonStr(&self.name),
            JsonStr(&self.mode),
            JsonStr(&self.unit),
            value,
            self.iterations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn bench(line: &str) -> BenchRecord<'_> {
        match Line::classify(line) {
            Line::Bench(Ok(b)) => b,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn bench_line_round_trip() {
        let r = BenchRecord::new("interrupt", "hvm", "ns", 1234.5678, 10000);
        let text = r.to_string();
        assert_eq!(text, r#"BENCH {"name":"interrupt","mode":"hvm","unit":"ns","value":1234.568,"iterations":10000}"#);
        let back = bench(&text);
        assert_eq!((back.name.as_ref(), back.value, back.iterations), ("interrupt", 1234.568, 10000));
        assert!(matches!(back.name, Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_and_non_finite() {
        let r = BenchRecord::new("a\"b\\c\n", "hvm", "ns", f64::NAN, 1);
        let text = r.to_string();
        assert_eq!(text, r#"BENCH {"name":"a\"b\\c\u000a","mode":"hvm","unit":"ns","value":0.000,"iterations":1}"#);
        assert_eq!(bench(&text).name, "a\"b\\c\n");
    }

    #[test]
    fn malformed_bench_lines_are_errors() {
        for line in [
            "BENCH {\"name\":\"x\"",
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":"fast","iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1.0,"iterations":-4}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1.0,"iterations":4} tail"#,
            r#"BENCH {"mode":"hvm","name":"x","unit":"ns","value":1.0,"iterations":4}"#,
            r#"BENCH {"name":"x\q","mode":"hvm","unit":"ns","value":1.0,"iterations":4}"#,
            r#"BENCH {"name":"x\u12","mode":"hvm","unit":"ns","value":1.0,"iterations":4}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":NaN,"iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":inf,"iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1e999,"iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":+1.0,"iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":.5,"iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":01.5,"iterations":1}"#,
            r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1.0,"iterations":+4}"#,
        ] {
            assert!(matches!(Line::classify(line), Line::Bench(Err(_))), "{line}");
        }
    }

    #[test]
    fn mode_line() {
        let m = ModeReport {
            hypervisor: "none",
            mode: "hvm",
            irq: "x2apic",
            eoi: "x2apic-msr",
            clock: "tsc",
            timer: "tsc-deadline",
            nic: "virtio-net",
            msi: "lapic",
        };
        let text = m.to_string();
        assert_eq!(
            text,
            "MODE hypervisor=none mode=hvm irq=x2apic eoi=x2apic-msr clock=tsc timer=tsc-deadline nic=virtio-net msi=lapic"
        );
        assert_eq!(Line::classify(&text), Line::Mode(Ok(m)));
        for bad in [
            "MODE hypervisor=none mode=hvm",
            "MODE hypervisor=none hypervisor=kvm mode=hvm irq=a eoi=b clock=c timer=d nic=e msi=f",
            "MODE hypervisor=none mode=hvm irq=a eoi=b clock=c timer=d nic=e msi=f colour=blue",
            "MODE hypervisor= mode=hvm irq=a eoi=b clock=c timer=d nic=e msi=f",
            "MODE hypervisor=none mode=hvm irq=a eoi=b clock=c timer=d nic=e",
        ] {
            assert!(matches!(Line::classify(bad), Line::Mode(Err(_))), "{bad}");
        }
    }

    #[test]
    fn ready_line() {
        let r = Ready { boot_ns: 1_234_567 };
        assert_eq!(r.to_string(), "READY boot_ns=1234567");
        assert_eq!(Line::classify("READY boot_ns=1234567\r"), Line::Ready(Ok(r)));
        assert!(matches!(Line::classify("READY"), Line::Ready(Err(_))));
        assert!(matches!(Line::classify("READY boot_ns=-1"), Line::Ready(Err(_))));
        assert!(matches!(Line::classify("READY boot_ns=+5"), Line::Ready(Err(_))));
        assert_eq!(json_number("-0.25e-3"), Some(-0.25e-3));
        assert_eq!(json_number("1234.568"), Some(1234.568));
    }

    #[test]
    fn net_down_line() {
        let d = NetDown { reason: "backend-closing" };
        assert_eq!(d.to_string(), "NET down reason=backend-closing");
        assert_eq!(Line::classify("NET down reason=backend-closing\r"), Line::NetDown(Ok(d)));
        for bad in ["NET down", "NET down reason=", "NET down reason=Gone", "NET down reason=a b", "NET downreason=x"] {
            assert!(matches!(Line::classify(bad), Line::NetDown(Err(_))), "{bad}");
        }
        assert_eq!(Line::classify("NET ready ip=1"), Line::NetReady("ip=1"), "not confused with NET down");
    }

    #[test]
    fn other_lines() {
        assert_eq!(Line::classify("DONE\r"), Line::Done);
        assert_eq!(Line::classify("SKIP net reason=no-nic"), Line::Skip("net reason=no-nic"));
        assert_eq!(Line::classify("ERROR cmdline: x"), Line::Error("cmdline: x"));
        assert_eq!(Line::classify("PANIC: at x.rs"), Line::Panic("PANIC: at x.rs"));
        assert_eq!(Line::classify("NET ready ip=10.0.0.2/24"), Line::NetReady("ip=10.0.0.2/24"));
        assert_eq!(Line::classify("POWEROFF status=failure"), Line::PowerOff("failure"));
        assert_eq!(Line::classify("[ 0.1] INFO hello"), Line::Log("[ 0.1] INFO hello"));
        assert_eq!(Line::classify("DONE and more"), Line::Log("DONE and more"));
    }
}
