//! Interrupt load: UDP datagrams sent at a fixed rate for a fixed time into the guest's
//! UDP discard port, the experiment of the hybrid HVM slides (a 10 GbE NIC at ~12,000
//! interrupts/s per vCPU). The window is one `load` benchmark of the control protocol,
//! so the host's trace counts the exits it cost; the guest's counters before and after
//! (`STATS`) give the interrupts it took and the time it spent halted.

use super::control::Control;
use super::Endpoints;
use proto::netctl::{Command, NetBench, Stats};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// One rate of the experiment, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadPoint {
    /// Datagrams per second asked for.
    pub rate: u32,
    /// Datagrams sent.
    pub sent: u64,
    /// The rate the sender achieved (datagrams per second).
    pub sent_per_s: f64,
    /// Datagrams the guest received in the window.
    pub received: u64,
    /// Interrupts (events) the guest took in the window.
    pub interrupts: u64,
    /// Length of the window on the guest's clock, ns.
    pub span_ns: u64,
    /// The share of the window the guest was not halted (0..1), if it reports idle time.
    pub busy: Option<f64>,
}

impl LoadPoint {
    /// Interrupts per second on the guest's clock.
    pub fn interrupts_per_s(&self) -> f64 {
        self.interrupts as f64 * 1e9 / self.span_ns.max(1) as f64
    }

    /// Datagrams received per second on the guest's clock.
    pub fn received_per_s(&self) -> f64 {
        self.received as f64 * 1e9 / self.span_ns.max(1) as f64
    }
}

/// Sends 64-byte datagrams to `ep.udp_discard` at `rate` per second for `duration`,
/// pacing each send against a clock (bursts only to catch up, never ahead of time);
/// returns how many were sent and the time it took.
pub fn paced(ep: &Endpoints, rate: u32, duration: Duration) -> io::Result<(u64, Duration)> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.connect(ep.udp_discard)?;
    let payload = [0x4c_u8; 64];
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let t0 = Instant::now();
    let mut sent = 0u64;
    loop {
        let due = t0 + gap.mul_f64(sent as f64);
        let now = Instant::now();
        if now.duration_since(t0) >= duration {
            break;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        match s.send(&payload) {
            Ok(_) => sent += 1,
            // A full socket buffer or an ICMP error from an earlier datagram: the rate is
            // what the path takes; go on.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::ConnectionRefused) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((sent, t0.elapsed()))
}

/// The window's counters: `after - before`, and the busy share from the idle time.
fn point(rate: u32, sent: u64, took: Duration, before: &Stats, after: &Stats, received: u64) -> LoadPoint {
    let span_ns = match (before.now_ns, after.now_ns) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => took.as_nanos() as u64,
    };
    let busy = match (before.idle_ns, after.idle_ns) {
        (Some(a), Some(b)) if span_ns > 0 => Some(1.0 - (b.saturating_sub(a) as f64 / span_ns as f64).min(1.0)),
        _ => None,
    };
    LoadPoint {
        rate,
        sent,
        sent_per_s: sent as f64 / took.as_secs_f64().max(1e-9),
        received,
        interrupts: after.irqs.unwrap_or(0).saturating_sub(before.irqs.unwrap_or(0)),
        span_ns,
        busy,
    }
}

/// Runs the experiment at each of `rates` for `seconds` each.
pub fn run(ep: &Endpoints, ctl: &mut Control, rates: &[u32], seconds: u32) -> io::Result<Vec<LoadPoint>> {
    let mut out = Vec::new();
    for &rate in rates {
        let before = ctl.stats()?;
        let start = Command::Start(NetBench::Load);
        match ctl.command(start)?.as_str() {
            proto::netctl::OK => {}
            r => return Err(io::Error::other(format!("{start} answered '{r}'"))),
        }
        let (sent, took) = paced(ep, rate, Duration::from_secs(u64::from(seconds)))?;
        std::thread::sleep(Duration::from_millis(200)); // the last datagrams arrive
        let received = ctl.stop_count(NetBench::Load)?;
        let after = ctl.stats()?;
        out.push(point(rate, sent, took, &before, &after, received));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_from_counters() {
        let before = Stats {
            rx: 10,
            tx: 0,
            irqs: Some(100),
            idle_ns: Some(5_000_000_000),
            now_ns: Some(10_000_000_000),
            ..Stats::default()
        };
        let after = Stats {
            rx: 12_010,
            tx: 0,
            irqs: Some(12_100),
            idle_ns: Some(5_400_000_000),
            now_ns: Some(11_000_000_000),
            ..Stats::default()
        };
        let p = point(12_000, 12_000, Duration::from_secs(1), &before, &after, 12_000);
        assert_eq!((p.interrupts, p.span_ns), (12_000, 1_000_000_000));
        assert!((p.busy.unwrap() - 0.6).abs() < 1e-9);
        assert!((p.interrupts_per_s() - 12_000.0).abs() < 1e-6);
        assert!((p.received_per_s() - 12_000.0).abs() < 1e-6);
    }

    #[test]
    fn pacing_holds_the_rate() {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = sink.local_addr().unwrap();
        let ep = Endpoints { udp_echo: a, tcp_echo: a, discard: a, udp_discard: a, source: a, control: a, ping: None };
        let (sent, took) = paced(&ep, 2000, Duration::from_millis(300)).unwrap();
        let rate = sent as f64 / took.as_secs_f64();
        assert!((1800.0..=2200.0).contains(&rate), "{sent} in {took:?}");
    }
}
