//! The benchmark control protocol on TCP port [`CONTROL_PORT`], and the arithmetic that
//! turns server-side counters into results.
//!
//! The host drives the network benchmarks; the kernel measures them from its side. The
//! host sends one command per line:
//!
//! | command        | reply                         | effect                                   |
//! |----------------|-------------------------------|------------------------------------------|
//! | `START <b>`    | `OK`                          | zero the counters of benchmark `b`       |
//! | `STOP <b>`     | `BENCH {json}` or `ERR why`   | compute `b` from its counters, print it  |
//! | `STATS`        | `STATS rx=… tx=… irqs=… bad=… grants=… idle_ns=… now_ns=…` | NIC counters, grants held, time halted and the clock |
//! | `QUIT`         | `BYE`                         | end the run (power off, success)         |
//!
//! Benchmarks: `udp_rr` (UDP echo on 7), `tcp_rr` (TCP echo on 7), `tcp_stream` (TCP
//! discard on 9), `load` (UDP discard on 9: datagrams sent at a fixed rate, the interrupt
//! load experiment; its trace phase counts interrupts, so its exits come out per interrupt,
//! and `STATS` before and after gives the interrupts and the time halted), `tcp_maerts`
//! (the reverse of `tcp_stream`, netperf's name for it: the host reads from the guest's
//! character source on TCP [`SOURCE_PORT`], which sends [`source_byte`]s until the host
//! closes; the guest counts the bytes it handed to TCP). For the
//! request-response ones the kernel timestamps each request as it
//! arrives; with the host sending the next request only after the previous echo came
//! back, the mean gap between requests is the round-trip time of one transaction.

use core::fmt;

/// TCP port of the control connection.
pub const CONTROL_PORT: u16 = 7070;
/// Longest command line accepted.
pub const MAX_LINE: usize = 128;
/// TCP port of the character source (`tcp_maerts`): chargen's port (RFC 864).
pub const SOURCE_PORT: u16 = 19;
/// Length of the source's repeating pattern: the 95 printable ASCII characters.
pub const SOURCE_PERIOD: usize = 95;

/// Byte `offset` of a source connection's stream: the printable ASCII characters from
/// space to `~`, over and over (chargen's character set, without its line breaks, so
/// that a byte's value follows from its offset alone and the receiver can check each).
pub fn source_byte(offset: u64) -> u8 {
    b' ' + (offset % SOURCE_PERIOD as u64) as u8
}

/// Fills `buf` with the source's bytes from stream offset `offset` on.
pub fn fill_source(buf: &mut [u8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = source_byte(offset.wrapping_add(i as u64));
    }
}

/// A network benchmark the host can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetBench {
    /// UDP request-response latency.
    UdpRr,
    /// TCP request-response latency.
    TcpRr,
    /// TCP bulk throughput into the kernel.
    TcpStream,
    /// UDP datagrams at a rate the host sets, into the UDP discard service.
    Load,
    /// TCP bulk throughput out of the kernel (its character source).
    TcpMaerts,
}

impl NetBench {
    /// All of them, in their counter-array order (new ones are appended).
    pub const ALL: [NetBench; 5] =
        [NetBench::UdpRr, NetBench::TcpRr, NetBench::TcpStream, NetBench::Load, NetBench::TcpMaerts];

    /// Wire and result name.
    pub fn name(self) -> &'static str {
        match self {
            NetBench::UdpRr => "udp_rr",
            NetBench::TcpRr => "tcp_rr",
            NetBench::TcpStream => "tcp_stream",
            NetBench::Load => "load",
            NetBench::TcpMaerts => "tcp_maerts",
        }
    }

    /// Index into counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A parsed control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Zero the counters.
    Start(NetBench),
    /// Report the result.
    Stop(NetBench),
    /// Report NIC counters.
    Stats,
    /// End the run.
    Quit,
}

impl fmt::Display for Command {
    /// The command line as the host sends it (without the newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Start(b) => write!(f, "START {}", b.name()),
            Command::Stop(b) => write!(f, "STOP {}", b.name()),
            Command::Stats => f.write_str("STATS"),
            Command::Quit => f.write_str("QUIT"),
        }
    }
}

/// The reply to `QUIT`.
pub const BYE: &str = "BYE";
/// The reply to `START`.
pub const OK: &str = "OK";

/// The counters a `STATS` reply carries: `STATS rx=… tx=… …`. The kernel sends every
/// field; a peer that has no such counter (the Linux peer has no grants to report)
/// leaves it out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames received.
    pub rx: u64,
    /// Frames sent.
    pub tx: u64,
    /// Interrupts (events) taken.
    pub irqs: Option<u64>,
    /// Responses the back end or device got wrong (each one a protocol violation).
    pub bad: Option<u64>,
    /// Grants the netfront holds.
    pub grants: Option<u64>,
    /// Payload bytes received.
    pub bytes: Option<u64>,
    /// Nanoseconds spent halted (waiting for an interrupt) since boot.
    pub idle_ns: Option<u64>,
    /// The clock when the counters were read, ns.
    pub now_ns: Option<u64>,
}

impl Stats {
    /// Parses a `STATS` reply; `None` if it is not one or a field is not a count.
    /// Unknown keys are ignored (a newer peer may count more).
    pub fn parse(line: &str) -> Option<Stats> {
        let rest = line.trim_end().strip_prefix("STATS")?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        let (mut s, mut have) = (Stats::default(), (false, false));
        for word in rest.split_ascii_whitespace() {
            let (k, v) = word.split_once('=')?;
            let v: u64 =
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) { v.parse().ok()? } else { return None };
            match k {
                "rx" => (s.rx, have.0) = (v, true),
                "tx" => (s.tx, have.1) = (v, true),
                "irqs" => s.irqs = Some(v),
                "bad" => s.bad = Some(v),
                "grants" => s.grants = Some(v),
                "bytes" => s.bytes = Some(v),
                "idle_ns" => s.idle_ns = Some(v),
                "now_ns" => s.now_ns = Some(v),
                _ => {}
            }
        }
        (have.0 && have.1).then_some(s)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "STATS rx={} tx={}", self.rx, self.tx)?;
        let fields = [
            ("irqs", self.irqs),
            ("bad", self.bad),
            ("grants", self.grants),
            ("bytes", self.bytes),
            ("idle_ns", self.idle_ns),
            ("now_ns", self.now_ns),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                write!(f, " {k}={v}")?;
            }
        }
        Ok(())
    }
}

/// Why a command line was refused; `Display` is the text after `ERR `.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandError<'a> {
    /// Not a command this protocol has.
    Unknown(&'a str),
    /// `START`/`STOP` without a known benchmark.
    BadBenchmark(&'a str),
}

impl fmt::Display for CommandError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(w) => write!(f, "unknown command '{w}' (commands: START, STOP, STATS, QUIT)"),
            CommandError::BadBenchmark(b) => {
                write!(f, "unknown benchmark '{b}' (udp_rr, tcp_rr, tcp_stream, load, tcp_maerts)")
            }
        }
    }
}

/// Parses one line (without its newline; a trailing `\r` is ignored).
pub fn parse(line: &str) -> Result<Command, CommandError<'_>> {
    let mut words = line.trim_end_matches('\r').split_ascii_whitespace();
    let verb = words.next().unwrap_or("");
    let cmd = match verb {
        "START" => Command::Start(bench(words.next())?),
        "STOP" => Command::Stop(bench(words.next())?),
        "STATS" => Command::Stats,
        "QUIT" => Command::Quit,
        other => return Err(CommandError::Unknown(other)),
    };
    match words.next() {
        Some(extra) => Err(CommandError::Unknown(extra)),
        None => Ok(cmd),
    }
}

fn bench(word: Option<&str>) -> Result<NetBench, CommandError<'_>> {
    let name = word.unwrap_or("");
    NetBench::ALL.into_iter().find(|b| b.name() == name).ok_or(CommandError::BadBenchmark(name))
}

/// What a service counted between START and STOP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests (rr), receive events (stream) or sends (maerts).
    pub events: u64,
    /// Payload bytes received (handed to TCP, for maerts).
    pub bytes: u64,
    /// Clock at the first event, ns.
    pub first_ns: u64,
    /// Clock at the last event, ns.
    pub last_ns: u64,
}

impl Counters {
    /// Records one event of `bytes` bytes at `now_ns`.
    pub fn record(&mut self, bytes: usize, now_ns: u64) {
        if self.events == 0 {
            self.first_ns = now_ns;
        }
        self.events += 1;
        self.bytes += bytes as u64;
        self.last_ns = now_ns;
    }
}

/// A computed result: (unit, value, iterations).
pub type NetResult = (&'static str, f64, u64);

/// Why no result could be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultError {
    /// Fewer than two events: no interval to measure.
    TooFewEvents(u64),
    /// All events at the same instant.
    NoTimeElapsed,
}

impl fmt::Display for ResultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultError::TooFewEvents(n) => write!(f, "only {n} events counted; need at least 2"),
            ResultError::NoTimeElapsed => write!(f, "no time elapsed between first and last event"),
        }
    }
}

/// The result of `bench` from its counters: ns per transaction for the rr benchmarks,
/// Mbit/s of payload for the stream (received) and for maerts (handed to TCP).
pub fn result(bench: NetBench, c: &Counters) -> Result<NetResult, ResultError> {
    if c.events < 2 {
        return Err(ResultError::TooFewEvents(c.events));
    }
    let span = c.last_ns.saturating_sub(c.first_ns);
    if span == 0 {
        return Err(ResultError::NoTimeElapsed);
    }
    Ok(match bench {
        NetBench::UdpRr | NetBench::TcpRr => ("ns", span as f64 / (c.events - 1) as f64, c.events - 1),
        // The first event's bytes arrived (or, for maerts, filled the empty send buffer)
        // before the clock started.
        NetBench::TcpStream | NetBench::TcpMaerts => {
            let bits = (c.bytes.saturating_sub(c.bytes / c.events)) as f64 * 8.0;
            ("Mbit/s", bits * 1000.0 / span as f64, c.bytes)
        }
        // Datagrams per second after the first; the iterations are all datagrams counted.
        NetBench::Load => ("pkt/s", (c.events - 1) as f64 * 1e9 / span as f64, c.events),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("START udp_rr"), Ok(Command::Start(NetBench::UdpRr)));
        assert_eq!(parse("STOP tcp_stream\r"), Ok(Command::Stop(NetBench::TcpStream)));
        assert_eq!(parse("QUIT"), Ok(Command::Quit));
        assert_eq!(parse("STATS"), Ok(Command::Stats));
    }

    #[test]
    fn commands_and_stats_round_trip() {
        for c in [Command::Start(NetBench::TcpRr), Command::Stop(NetBench::UdpRr), Command::Stats, Command::Quit] {
            assert_eq!(parse(&alloc::format!("{c}")), Ok(c));
        }
        let s = Stats {
            rx: 5,
            tx: 4,
            irqs: Some(3),
            bad: Some(0),
            grants: Some(514),
            bytes: None,
            idle_ns: Some(7),
            now_ns: Some(9),
        };
        let line = alloc::format!("{s}");
        assert_eq!(line, "STATS rx=5 tx=4 irqs=3 bad=0 grants=514 idle_ns=7 now_ns=9");
        assert_eq!(Stats::parse(&line), Some(s));
        let linux = Stats::parse("STATS rx=10 tx=9 bytes=640\n").unwrap();
        assert_eq!((linux.rx, linux.grants, linux.bytes), (10, None, Some(640)));
        assert_eq!(Stats::parse("STATS rx=1"), None);
        assert_eq!(Stats::parse("STATS rx=1 tx=x"), None);
        assert_eq!(Stats::parse("STATSrx=1 tx=2"), None);
        assert_eq!(Stats::parse("STATS rx=+1 tx=2"), None);
        assert_eq!(Stats::parse("OK"), None);
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(parse(""), Err(CommandError::Unknown("")));
        assert_eq!(parse("start udp_rr"), Err(CommandError::Unknown("start")));
        assert_eq!(parse("START"), Err(CommandError::BadBenchmark("")));
        assert_eq!(parse("STOP sctp"), Err(CommandError::BadBenchmark("sctp")));
        assert_eq!(parse("QUIT now"), Err(CommandError::Unknown("now")));
        assert!(parse("START x").unwrap_err().to_string().contains("udp_rr, tcp_rr, tcp_stream, load, tcp_maerts"));
        // Every benchmark's name parses back to it, and its index is its place in ALL.
        for (i, b) in NetBench::ALL.into_iter().enumerate() {
            assert_eq!((parse(&alloc::format!("STOP {}", b.name())), b.index()), (Ok(Command::Stop(b)), i));
        }
        assert_eq!(parse("START tcp_maerts"), Ok(Command::Start(NetBench::TcpMaerts)));
    }

    #[test]
    fn rr_result_is_mean_gap() {
        let mut c = Counters::default();
        for i in 0..5 {
            c.record(64, 1_000 + i * 250);
        }
        assert_eq!(result(NetBench::UdpRr, &c), Ok(("ns", 250.0, 4)));
    }

    #[test]
    fn stream_result_excludes_first_chunk() {
        let c = Counters { events: 4, bytes: 4_000_000, first_ns: 0, last_ns: 24_000_000 };
        // 3 MB after the first event in 24 ms = 1000 Mbit/s.
        let (unit, v, iters) = result(NetBench::TcpStream, &c).unwrap();
        assert_eq!((unit, iters), ("Mbit/s", 4_000_000));
        assert!((v - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn maerts_result_is_the_streams_arithmetic() {
        let c = Counters { events: 8, bytes: 8_000_000, first_ns: 0, last_ns: 56_000_000 };
        // 7 MB after the first send in 56 ms = 1000 Mbit/s; every byte handed is counted.
        let (unit, v, iters) = result(NetBench::TcpMaerts, &c).unwrap();
        assert_eq!((unit, iters), ("Mbit/s", 8_000_000));
        assert!((v - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn the_source_pattern_follows_from_the_offset() {
        assert_eq!((source_byte(0), source_byte(94), source_byte(95), source_byte(96)), (b' ', b'~', b' ', b'!'));
        let mut a = [0u8; 300];
        fill_source(&mut a, 0);
        let mut b = [0u8; 200];
        fill_source(&mut b, 100);
        assert_eq!(&a[100..], &b[..], "a fill from an offset continues the stream");
        assert!(a.iter().all(|c| c.is_ascii_graphic() || *c == b' '));
        // Offsets past 2^32 (a long connection) and at the end of u64 do not panic.
        assert_eq!(source_byte(u64::MAX), b' ' + (u64::MAX % 95) as u8);
        fill_source(&mut b, u64::MAX - 5);
    }

    #[test]
    fn degenerate_counters() {
        assert_eq!(result(NetBench::TcpRr, &Counters::default()), Err(ResultError::TooFewEvents(0)));
        let same = Counters { events: 3, bytes: 3, first_ns: 7, last_ns: 7 };
        assert_eq!(result(NetBench::TcpRr, &same), Err(ResultError::NoTimeElapsed));
    }
}
