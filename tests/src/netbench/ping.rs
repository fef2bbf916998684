//! Ping from this host with iputils `ping`, and its summary line.

use serde::{Deserialize, Serialize};
use std::io;
use std::net::Ipv4Addr;
use std::process::Command as Process;

/// Ping statistics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PingStats {
    /// Echo requests sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
    /// Mean round trip in ms.
    pub avg_ms: f64,
}

/// Parses the summary of iputils `ping`.
pub fn parse_ping(output: &str) -> Option<PingStats> {
    let counts = output.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = counts.split(',').map(|p| p.split_whitespace().next().and_then(|n| n.parse::<u32>().ok()));
    let sent = nums.next()??;
    let received = nums.next()??;
    let avg_ms = output
        .lines()
        .find(|l| l.starts_with("rtt") || l.starts_with("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Some(PingStats { sent, received, avg_ms })
}

/// Pings `ip` `count` times (needs `ping` from iputils).
pub fn ping(ip: Ipv4Addr, count: u32) -> io::Result<PingStats> {
    let out = Process::new("ping")
        .args(["-c", &count.to_string(), "-i", "0.2", "-W", "2", &ip.to_string()])
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running ping: {e} (install iputils-ping)")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).ok_or_else(|| io::Error::other(format!("unreadable ping output: {text}")))
}
