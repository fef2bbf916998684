//! Seeded fuzzing of what the kernel and the host both speak (`hy-proto`): the command
//! line (`cmdline`), the console lines (`lines`) and the control protocol (`netctl`).
//!
//! Each parser gets random text built from its own vocabulary, valid lines rendered by
//! the crate's `Display` impls, and mutations of both. Properties: no panic; errors are
//! the typed ones, name words of the input and print as one line; whatever parses renders
//! back to text that parses to the same value (a fixed point); and every value in the
//! encoders' domain round-trips exactly through `Display` and back.
//!
//! The harness (seeded PRNG, mutators, runner, replay) is `xen-iface`'s, included by
//! path so that both crates share one: see `xen-iface/tests/fuzz/mod.rs`.

#[path = "../../xen-iface/tests/fuzz/mod.rs"]
mod fuzz;
mod regressions;

use fuzz::{mutate_str, run, words, Rng};
use proto::cmdline::{
    self, ApicChoice, BenchSet, CallbackChoice, Choice, ClockChoice, CmdlineError, Fault, Ipv4Cidr, Mode, NetLevers,
    Options, TimerChoice, BENCHMARKS, OPTION_NAMES,
};
use proto::lines::{BenchRecord, Line, ModeReport, Ready, MODE_KEYS};
use proto::netctl::{self, Command, CommandError, Counters, NetBench, ResultError, Stats};

/// Words of a command line.
const CMDLINE_WORDS: &[&str] = &[
    "mode=",
    "bench=",
    "ip=",
    "apic=",
    "timer=",
    "clock=",
    "eoi=",
    "callback=",
    "netwait=",
    "net=",
    "no-",
    "no-offload",
    "lazy-timer",
    "wscale,",
    "fault=",
    "auto",
    "hvm",
    "hybrid",
    "pvh",
    "pv",
    "all",
    "none",
    "cpuid",
    "net,clock",
    "mem_lat,",
    "xapic",
    "x2apic",
    "lapic",
    "tsc-deadline",
    "lapic-oneshot",
    "pvclock",
    "kvmclock",
    "tsc",
    "hpet",
    "global",
    "percpu",
    "panic-after-mode",
    "10.0.2.15/24",
    "1.2.3.4/33",
    "0",
    "120",
    "4294967296",
    "=",
    ",",
    "/",
];

/// Random options inside `Display`'s domain (a `netwait_s` of at least 1, a prefix of
/// at most 32, an `irqmod` of at most a second: what `parse` can produce).
fn options(rng: &mut Rng) -> Options {
    fn choice<T: Choice>(rng: &mut Rng) -> T {
        rng.pick(T::TABLE).1
    }
    let mut bench = if rng.coin() { BenchSet::ALL } else { BenchSet::NONE };
    for _ in 0..rng.len(12) {
        let name = *rng.pick(&BENCHMARKS);
        bench = bench.with(name, rng.coin());
    }
    Options {
        mode: choice(rng),
        bench,
        ip: rng.coin().then(|| Ipv4Cidr { addr: rng.u32().to_be_bytes(), prefix: rng.below(33) as u8 }),
        apic: choice(rng),
        timer: choice(rng),
        clock: choice(rng),
        eoi: choice(rng),
        callback: rng.coin().then(|| choice(rng)),
        nic: choice(rng),
        msi: choice(rng),
        msimask: choice(rng),
        hvm_pirqs: choice(rng),
        irqmod_us: if rng.coin() { 0 } else { rng.below(1_000_001) as u32 },
        net: {
            let mut net = NetLevers::DEFAULT;
            for _ in 0..rng.len(6) {
                net = net.with(choice(rng), rng.coin());
            }
            net
        },
        netwait_s: if rng.coin() { 120 } else { rng.edge_u32().max(1) },
        fault: choice(rng),
    }
}

/// A command line: a rendered one, words of the vocabulary, or either mutated.
fn cmdline_text(rng: &mut Rng) -> String {
    let base = if rng.coin() { options(rng).to_string() } else { words(rng, CMDLINE_WORDS, 10) };
    if rng.coin() {
        mutate_str(rng, &base, CMDLINE_WORDS)
    } else {
        base
    }
}

/// The properties of one `cmdline::parse`: the error of a line is the error of its first
/// bad word (each word is parsed on its own), errors name words of the line, and options
/// that parse render back to themselves.
fn check_cmdline(line: &str) {
    let r = cmdline::parse(line);
    let first_bad = line.split_ascii_whitespace().map(cmdline::parse).find(Result::is_err);
    assert_eq!(r.as_ref().err(), first_bad.as_ref().and_then(|e| e.as_ref().err()), "{line:?}");
    match r {
        Ok(o) => {
            assert!(o.netwait_s >= 1 && o.ip.is_none_or(|ip| ip.prefix <= 32));
            let text = o.to_string();
            assert_eq!(cmdline::parse(&text), Ok(o), "{line:?} renders as {text:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "one line: {msg:?}");
            match e {
                CmdlineError::UnknownOption(w) => {
                    assert!(line.split_ascii_whitespace().any(|x| x == w), "{w:?} is not a word of {line:?}");
                    assert!(w.split_once('=').is_none_or(|(k, _)| !OPTION_NAMES.contains(&k)));
                    assert!(msg.contains(w));
                }
                CmdlineError::BadValue { option, value, accepted } => {
                    assert!(OPTION_NAMES.contains(&option) && !accepted.is_empty());
                    let mut values =
                        line.split_ascii_whitespace().filter_map(|x| x.strip_prefix(option)?.strip_prefix('='));
                    assert!(values.any(|v| v.contains(value)), "{option}={value:?} not in {line:?}");
                    assert!(msg.contains(value) && msg.contains(accepted));
                }
            }
        }
    }
}

/// `cmdline::parse` on random, rendered and mutated command lines, and `parse_address`
/// on the same words.
#[test]
fn cmdline_parse() {
    fuzz::replay_inputs("cmdline_parse", regressions::CMDLINE_PARSE, |line| check_cmdline(line));
    run("cmdline_parse", &[], |rng| {
        let line = cmdline_text(rng);
        check_cmdline(&line);
        for word in line.split(['=', ' ']) {
            let prefix = rng.coin().then(|| rng.below(40) as u8);
            if let Some(c) = cmdline::parse_address(word, prefix) {
                assert!(word.contains('/') && c.prefix <= 32 || Some(c.prefix) == prefix, "{word:?} -> {c:?}");
            }
        }
    });
}

/// Every `Options` in `Display`'s domain renders to a line that parses back to it, and
/// the benchmark set behaves as the set of its names.
#[test]
fn cmdline_render_round_trip() {
    run("cmdline_render_round_trip", regressions::CMDLINE_RENDER_ROUND_TRIP, |rng| {
        let o = options(rng);
        let line = o.to_string();
        assert!(line.starts_with("mode=") && line.contains(" bench="), "{line}");
        assert_eq!(cmdline::parse(&line), Ok(o), "{line}");
        // BenchSet against a set of names.
        let (mut set, mut model) = (BenchSet::NONE, std::collections::BTreeSet::new());
        for _ in 0..rng.len(20) {
            let name = if rng.one_in(8) { "bogus" } else { *rng.pick(&BENCHMARKS) };
            let on = rng.coin();
            set = set.with(name, on);
            if name != "bogus" {
                if on {
                    model.insert(name);
                } else {
                    model.remove(name);
                }
            }
            assert_eq!(set.is_empty(), model.is_empty());
            assert!(BENCHMARKS.iter().all(|b| set.contains(b) == model.contains(b)) && !set.contains("bogus"));
            let names: Vec<&str> = set.names().collect();
            let order: Vec<&str> = BENCHMARKS.iter().copied().filter(|b| model.contains(b)).collect();
            assert_eq!(names, order, "in BENCHMARKS order");
            assert_eq!(cmdline::parse(&format!("bench={set}")).map(|o| o.bench), Ok(set));
        }
        let word = words(rng, CMDLINE_WORDS, 1);
        names_round_trip::<Mode>(&word);
        names_round_trip::<ApicChoice>(&word);
        names_round_trip::<TimerChoice>(&word);
        names_round_trip::<ClockChoice>(&word);
        names_round_trip::<CallbackChoice>(&word);
        names_round_trip::<Fault>(&word);
    });
}

/// Each value of a [`Choice`] is named by its word and only by it, and its word is
/// listed in `ACCEPTED`; `other` names a value only if it is that value's word.
fn names_round_trip<T: Choice + std::fmt::Debug>(other: &str) {
    for &(word, v) in T::TABLE {
        assert_eq!((T::from_name(word), v.name()), (Some(v), word));
        assert!(T::ACCEPTED.split(", ").any(|w| w == word));
    }
    assert!(T::from_name(other).is_none_or(|v| v.name() == other));
}

/// Prefixes of the console lines, and some text that is almost one.
const LINE_WORDS: &[&str] = &[
    "MODE ",
    "READY",
    "READY boot_ns=",
    "BENCH ",
    "SKIP ",
    "NET ready",
    "NET down",
    "NET down reason=",
    "ERROR ",
    "PANIC",
    "DONE",
    "POWEROFF status=",
    "hypervisor=",
    "mode=",
    "irq=",
    "eoi=",
    "clock=",
    "timer=",
    "nic=",
    "{\"name\":",
    ",\"mode\":",
    ",\"unit\":",
    ",\"value\":",
    ",\"iterations\":",
    "}",
    "\"",
    "\\",
    "\\u00",
    "\\\"",
    "1.5",
    "-0.000",
    "1e300",
    "NaN",
    "\r",
    "\n",
];

/// A value of a mode report: non-empty and without ASCII whitespace (the words of the
/// line), but otherwise anything, `=` and non-ASCII included.
fn mode_value(rng: &mut Rng) -> String {
    let pool = ['a', 'z', '0', '-', '.', '=', '"', 'é', '\u{a0}', '\u{b}', '\u{2028}', '🦀'];
    let n = rng.range(1, 12);
    (0..n).map(|_| if rng.coin() { *rng.pick(&pool) } else { char::from(rng.range(0x21, 0x7e) as u8) }).collect()
}

/// Any string, control characters, quotes, backslashes and surrogate-free Unicode
/// included.
fn any_text(rng: &mut Rng) -> String {
    let n = rng.len(24);
    (0..n)
        .map(|_| match rng.below(4) {
            0 => *rng.pick(&['"', '\\', '\n', '\r', '\0', '\u{1f}', '\u{7f}', '}', ',', ':', 'é', '\u{ffff}']),
            1 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'),
            _ => char::from(rng.range(0x20, 0x7e) as u8),
        })
        .collect()
}

/// A value a benchmark could report: any finite or non-finite `f64`, often an edge.
fn any_f64(rng: &mut Rng) -> f64 {
    match rng.below(4) {
        0 => *rng.pick(&[0.0, -0.0, 1e-300, -1e300, f64::MAX, f64::MIN_POSITIVE, f64::NAN, f64::INFINITY, 0.0005]),
        1 => f64::from_bits(rng.next_u64()),
        _ => (rng.next_u64() >> 11) as f64 / 1e6,
    }
}

/// What the host must read back from a `BENCH` line written for `value`.
fn value_read_back(value: f64) -> f64 {
    let v = if value.is_finite() { value } else { 0.0 };
    format!("{v:.3}").parse().unwrap()
}

/// The properties of one `Line::classify`: the kind is the one the line's prefix names
/// (the table in `lines.rs`), and whatever parses renders back to a line that classifies
/// the same (for `BENCH`, after the value is rounded to what the line can carry).
fn check_line(line: &str) {
    let l = line.trim_end_matches(['\r', '\n']);
    let got = Line::classify(line);
    let prefix_ok = match &got {
        Line::Mode(_) => l.starts_with("MODE "),
        Line::Ready(_) => l.starts_with("READY"),
        Line::Bench(_) => l.starts_with("BENCH "),
        Line::Skip(rest) => l.strip_prefix("SKIP ") == Some(*rest),
        Line::NetReady(rest) => l.strip_prefix("NET ready").map(str::trim_start) == Some(*rest),
        Line::NetDown(_) => l.starts_with("NET down"),
        Line::Error(rest) => l.strip_prefix("ERROR ") == Some(*rest),
        Line::Panic(all) => l.starts_with("PANIC") && *all == l,
        Line::Done => l == "DONE",
        Line::PowerOff(status) => l.strip_prefix("POWEROFF status=") == Some(*status),
        Line::Log(all) => *all == l,
    };
    assert!(prefix_ok, "{line:?} classified as {got:?}");
    match got {
        Line::Mode(Ok(m)) => {
            for k in MODE_KEYS {
                let v = m.get(k).unwrap();
                assert!(!v.is_empty() && !v.contains(|c: char| c.is_ascii_whitespace()), "{k}={v:?}");
            }
            assert_eq!(Line::classify(&m.to_string()), Line::Mode(Ok(m)));
        }
        Line::Ready(Ok(r)) => assert_eq!(Line::classify(&r.to_string()), Line::Ready(Ok(r))),
        Line::Bench(Ok(b)) => {
            let text = b.to_string();
            let Line::Bench(Ok(b2)) = Line::classify(&text) else { panic!("{text:?} does not parse") };
            assert_eq!((&b2.name, &b2.mode, &b2.unit, b2.iterations), (&b.name, &b.mode, &b.unit, b.iterations));
            assert_eq!(b2.value.to_bits(), value_read_back(b.value).to_bits(), "{line:?}");
        }
        Line::NetDown(Ok(d)) => assert_eq!(Line::classify(&d.to_string()), Line::NetDown(Ok(d))),
        Line::Mode(Err(e)) | Line::Ready(Err(e)) | Line::Bench(Err(e)) | Line::NetDown(Err(e)) => {
            assert!(!e.to_string().is_empty())
        }
        _ => {}
    }
}

/// `Line::classify` on random, rendered and mutated console lines.
#[test]
fn lines_classify() {
    fuzz::replay_inputs("lines_classify", regressions::LINES_CLASSIFY, |line| check_line(line));
    run("lines_classify", &[], |rng| {
        let base = match rng.below(5) {
            0 => words(rng, LINE_WORDS, 12),
            1 => mode_line(rng).to_string(),
            2 => Ready { boot_ns: rng.edge_u64() }.to_string(),
            _ => {
                let (n, m, u) = (any_text(rng), any_text(rng), any_text(rng));
                BenchRecord::new(&n, &m, &u, any_f64(rng), rng.edge_u64()).to_string()
            }
        };
        let line = if rng.coin() { mutate_str(rng, &base, LINE_WORDS) } else { base };
        check_line(&line);
    });
}

/// An owned mode report of [`mode_value`]s.
struct OwnedMode([String; 8]);

impl OwnedMode {
    fn report(&self) -> ModeReport<'_> {
        let v = &self.0;
        ModeReport {
            hypervisor: &v[0],
            mode: &v[1],
            irq: &v[2],
            eoi: &v[3],
            clock: &v[4],
            timer: &v[5],
            nic: &v[6],
            msi: &v[7],
        }
    }
}

impl std::fmt::Display for OwnedMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.report().fmt(f)
    }
}

fn mode_line(rng: &mut Rng) -> OwnedMode {
    OwnedMode(std::array::from_fn(|_| mode_value(rng)))
}

/// Every value the kernel can write renders to a line the host reads back exactly: mode
/// reports of non-empty whitespace-free values, `READY` with any count, and `BENCH`
/// records of any strings, any count and any value (rounded to three decimals, a
/// non-finite one written as 0).
#[test]
fn lines_render_round_trip() {
    run("lines_render_round_trip", regressions::LINES_RENDER_ROUND_TRIP, |rng| {
        let m = mode_line(rng);
        assert_eq!(Line::classify(&m.to_string()), Line::Mode(Ok(m.report())));
        let r = Ready { boot_ns: rng.edge_u64() };
        assert_eq!(Line::classify(&format!("{r}\r\n")), Line::Ready(Ok(r)));
        let (n, mo, u) = (any_text(rng), any_text(rng), any_text(rng));
        let (value, iterations) = (any_f64(rng), rng.edge_u64());
        let text = BenchRecord::new(&n, &mo, &u, value, iterations).to_string();
        assert!(!text.contains(['\n', '\r']), "one line: {text:?}");
        let Line::Bench(Ok(b)) = Line::classify(&text) else { panic!("{text:?} does not parse") };
        assert_eq!(
            (b.name.as_ref(), b.mode.as_ref(), b.unit.as_ref(), b.iterations),
            (&n[..], &mo[..], &u[..], iterations)
        );
        assert_eq!(b.value.to_bits(), value_read_back(value).to_bits(), "{value:e} in {text}");
    });
}

/// Words of the control protocol.
const NETCTL_WORDS: &[&str] = &[
    "START",
    "STOP",
    "STATS",
    "QUIT",
    "udp_rr",
    "tcp_rr",
    "tcp_stream",
    "load",
    "tcp_maerts",
    "rx=",
    "tx=",
    "irqs=",
    "bad=",
    "grants=",
    "bytes=",
    "\r",
    "1",
    "18446744073709551616",
];

/// The properties of one `netctl::parse`.
fn check_command(line: &str) {
    let words: Vec<&str> = line.trim_end_matches('\r').split_ascii_whitespace().collect();
    match netctl::parse(line) {
        Ok(c) => {
            let text = c.to_string();
            assert_eq!(text.split(' ').collect::<Vec<_>>(), words, "{line:?} is {c:?}");
            assert_eq!(netctl::parse(&text), Ok(c));
        }
        Err(e) => {
            let (CommandError::Unknown(w) | CommandError::BadBenchmark(w)) = e;
            assert!(w.is_empty() || words.contains(&w), "{w:?} is not a word of {line:?}");
            assert!(!e.to_string().is_empty());
        }
    }
    if let Some(s) = Stats::parse(line) {
        assert_eq!(Stats::parse(&s.to_string()), Some(s), "{line:?}");
    }
}

/// Control commands and `STATS` replies: random, rendered and mutated lines parse
/// without panicking to values that render back to themselves; every command and every
/// `Stats` round-trips; the result arithmetic accepts any counters.
#[test]
fn netctl_parse() {
    fuzz::replay_inputs("netctl_parse", regressions::NETCTL_PARSE, |line| check_command(line));
    run("netctl_parse", &[], |rng| {
        let bench = *rng.pick(&NetBench::ALL);
        let c = *rng.pick(&[Command::Start(bench), Command::Stop(bench), Command::Stats, Command::Quit]);
        assert_eq!(netctl::parse(&format!("{c}\r")), Ok(c));
        let opt = |rng: &mut Rng| rng.coin().then(|| rng.edge_u64());
        let s = Stats {
            rx: rng.edge_u64(),
            tx: rng.edge_u64(),
            irqs: opt(rng),
            bad: opt(rng),
            grants: opt(rng),
            bytes: opt(rng),
            idle_ns: opt(rng),
            now_ns: opt(rng),
        };
        assert_eq!(Stats::parse(&s.to_string()), Some(s));
        let base = match rng.below(3) {
            0 => c.to_string(),
            1 => s.to_string(),
            _ => words(rng, NETCTL_WORDS, 8),
        };
        let line = if rng.coin() { mutate_str(rng, &base, NETCTL_WORDS) } else { base };
        check_command(&line);

        // Counters as a service records them, and as anything at all.
        let mut k = Counters::default();
        let mut now = rng.edge_u64() >> 2;
        for _ in 0..rng.len(50) {
            now += rng.below(1_000_000);
            k.record(rng.index(65_536), now);
        }
        let arbitrary = Counters {
            events: rng.edge_u64(),
            bytes: rng.edge_u64(),
            first_ns: rng.edge_u64(),
            last_ns: rng.edge_u64(),
        };
        for c in [k, arbitrary] {
            match netctl::result(bench, &c) {
                Ok((unit, value, iterations)) => {
                    assert!(c.events >= 2 && c.last_ns > c.first_ns);
                    assert!(value.is_finite() && value >= 0.0, "{value}");
                    let expected = match bench {
                        NetBench::UdpRr | NetBench::TcpRr => ("ns", c.events - 1),
                        NetBench::TcpStream | NetBench::TcpMaerts => ("Mbit/s", c.bytes),
                        NetBench::Load => ("pkt/s", c.events),
                    };
                    assert_eq!((unit, iterations), expected);
                }
                Err(ResultError::TooFewEvents(n)) => assert!(n == c.events && n < 2),
                Err(ResultError::NoTimeElapsed) => assert!(c.events >= 2 && c.last_ns <= c.first_ns),
            }
        }
    });
}

/// Regression: `Options` outside `parse`'s domain (`netwait_s` 0, a prefix above 32) once
/// rendered to lines that silently did not round-trip. `Display` now documents them as
/// outside its domain: the line it writes is refused by `parse`, naming that option, and
/// is never changed into some other valid line.
#[test]
fn regression_options_outside_the_domain_are_refused_by_name() {
    for (o, option) in [
        (Options { netwait_s: 0, ..Options::default() }, "netwait"),
        (Options { ip: Some(Ipv4Cidr { addr: [10, 0, 0, 1], prefix: 33 }), ..Options::default() }, "ip"),
    ] {
        match cmdline::parse(&o.to_string()) {
            Err(cmdline::CmdlineError::BadValue { option: got, .. }) => assert_eq!(got, option, "{o}"),
            other => panic!("{o}: {other:?}"),
        }
    }
}

/// Regression: `BenchRecord::parse_json` reads the value with `f64::from_str`, so a
/// `BENCH` line carrying `NaN`, `inf`, `infinity` or `1e999` parses, although `Display`
/// never writes one (a non-finite value is written as `0.000`: JSON has no such numbers)
/// and the lines module promises strict parsing ("exactly the written shape"). On the
/// host an infinity then passes the `b.value > 0.0` checks of the boot tests
/// (`tests/tests/xen_host.rs`, `qemu_boot.rs`) and a NaN drops silently out of the
/// statistics (`tests/src/stats.rs` filters NaN). Such a line is now a
/// `Line::Bench(Err(_))`: the value must be a finite number in JSON's grammar.
#[test]
fn regression_bench_value_is_finite() {
    for v in ["NaN", "inf", "-inf", "infinity", "1e999", "+1.000", ".5"] {
        let line = format!(r#"BENCH {{"name":"x","mode":"hvm","unit":"ns","value":{v},"iterations":1}}"#);
        assert!(matches!(Line::classify(&line), Line::Bench(Err(_))), "{line}");
    }
}
