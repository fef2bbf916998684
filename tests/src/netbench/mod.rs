//! The network client: the one implementation of the host's side of the guest's network
//! services, used on the QEMU host (from the build machine) and on the Xen host (from
//! dom0, by the agent), against the kernel and the Linux peer alike.
//!
//! It checks echoes byte for byte (a mismatch is a failure with the offsets that differ,
//! never retried; only a datagram that never came back is sent again), drives the
//! request-response and bulk benchmarks through the control protocol of `proto::netctl`,
//! floods the echo port, reads the peer's counters, pings, and ends the run with `QUIT`.
//! The kernel measures the driven benchmarks itself and answers `STOP` with its `BENCH`
//! line; the host's own figure for the same window stands next to it.
//!
//! - [`echo`]: exact echo checks (UDP and TCP) and where a reply differs.
//! - [`control`]: the control connection and the driven benchmarks.
//! - [`maerts`]: the bulk transfer out of the guest, read and checked byte by byte.
//! - [`ping`]: iputils `ping` and its summary.

mod control;
mod echo;
mod load;
mod maerts;
mod ping;

pub use control::Control;
use control::{bench, flood};
use echo::check_echoes;
pub use echo::{pattern, tcp_echo, udp_echo, Echo, Mismatch, TCP_ECHO_SIZES, UDP_ECHO_SIZES};
pub use load::{paced, LoadPoint};
pub use ping::{parse_ping, ping, PingStats};

use crate::console::BenchLine;
use proto::netctl::{Command, NetBench, BYE, CONTROL_PORT};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The guest's service ports.
pub mod port {
    /// Echo (UDP and TCP).
    pub const ECHO: u16 = 7;
    /// Discard (TCP).
    pub const DISCARD: u16 = 9;
    /// The character source (TCP), `tcp_maerts`'s.
    pub const SOURCE: u16 = proto::netctl::SOURCE_PORT;
    /// Benchmark control (TCP).
    pub const CONTROL: u16 = super::CONTROL_PORT;
}

/// Where the guest's services are, as this host reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// UDP echo.
    pub udp_echo: SocketAddr,
    /// TCP echo.
    pub tcp_echo: SocketAddr,
    /// TCP discard.
    pub discard: SocketAddr,
    /// UDP discard (the interrupt-load experiment's sink).
    pub udp_discard: SocketAddr,
    /// The character source (`tcp_maerts`).
    pub source: SocketAddr,
    /// The control connection.
    pub control: SocketAddr,
    /// The address to ping, where ICMP reaches the guest.
    pub ping: Option<Ipv4Addr>,
}

impl Endpoints {
    /// The services of a guest reachable directly at `ip`.
    pub fn direct(ip: Ipv4Addr) -> Endpoints {
        let at = |port| SocketAddr::new(IpAddr::V4(ip), port);
        Endpoints {
            udp_echo: at(port::ECHO),
            tcp_echo: at(port::ECHO),
            discard: at(port::DISCARD),
            udp_discard: at(port::DISCARD),
            source: at(port::SOURCE),
            control: at(port::CONTROL),
            ping: Some(ip),
        }
    }
}

/// Who serves: the kernel answers `STOP` with its own measurement; the Linux peer
/// (`tests/xen/peer/hyecho.c`) only marks the benchmark in the host's trace and answers `OK`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    /// hykernel.
    #[default]
    Hykernel,
    /// The Linux peer running hyecho.
    Linux,
}

/// What to drive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetPlan {
    /// Who serves.
    pub server: Server,
    /// Echo requests to ping with (0: no ping).
    pub ping: u32,
    /// Check echoes of every size (UDP 1 B to 1472 B, TCP 1 B to 64 KiB).
    pub echo: bool,
    /// Round trips per request-response benchmark.
    pub rr: u32,
    /// Bytes of the bulk transfer.
    pub stream_bytes: u64,
    /// Datagrams of the flood (0: none).
    pub flood: u64,
    /// Rates (datagrams per second) of the interrupt-load experiment, in order (empty: none).
    #[serde(default)]
    pub load_rates: Vec<u32>,
    /// Seconds each load rate runs.
    #[serde(default)]
    pub load_seconds: u32,
}

/// One driven benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Driven {
    /// `udp_rr`, `tcp_rr`, `tcp_stream` or `tcp_maerts`.
    pub name: String,
    /// The host's figure: ns per transaction, or Mbit/s at the sender (stream) or at the
    /// receiver (maerts).
    pub host_value: f64,
    /// Unit of `host_value`.
    pub unit: String,
    /// The kernel's own figure (its `STOP` reply); `None` for the Linux peer.
    pub kernel: Option<BenchLine>,
    /// Bytes the host read and found as the source's pattern has them (`tcp_maerts`).
    #[serde(default)]
    pub bytes: Option<u64>,
}

/// What a flood did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flood {
    /// Datagrams sent.
    pub sent: u64,
    /// Frames the guest counted meanwhile.
    pub rx: u64,
    /// Grants the netfront held before and after (kernel on Xen only).
    pub grants: (Option<u64>, Option<u64>),
    /// Responses the back end got wrong, after the flood.
    pub bad: Option<u64>,
}

/// Everything one drive of a guest's services measured and found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetReport {
    /// Host-to-guest ping.
    pub ping: Option<PingStats>,
    /// Every echo check, in order.
    pub echoes: Vec<Echo>,
    /// The driven benchmarks, in order.
    pub bench: Vec<Driven>,
    /// The flood, if one ran.
    pub flood: Option<Flood>,
    /// The interrupt-load experiment, one point per rate.
    #[serde(default)]
    pub load: Vec<LoadPoint>,
    /// The reply to `QUIT`.
    pub quit: Option<String>,
    /// Every step that failed, with why. Empty: the drive succeeded.
    pub errors: Vec<String>,
}

impl NetReport {
    /// The driven benchmark `name`.
    pub fn driven(&self, name: &str) -> Option<&Driven> {
        self.bench.iter().find(|d| d.name == name)
    }

    /// True if every step ran, every echo came back exactly and the guest said `BYE`.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.echoes.iter().all(Echo::exact) && self.quit.as_deref() == Some(BYE)
    }
}

/// Drives every step of `plan` against the services at `ep`, in order: ping, echoes,
/// the four benchmarks (`tcp_maerts` last), the flood, `QUIT`. A failed step is recorded and the next one
/// still runs where it can, so one report shows everything that went wrong.
pub fn drive(ep: &Endpoints, plan: &NetPlan) -> NetReport {
    let mut r = NetReport::default();
    if let (Some(ip), true) = (ep.ping, plan.ping > 0) {
        match ping(ip, plan.ping) {
            Ok(p) => r.ping = Some(p),
            Err(e) => r.errors.push(format!("ping: {e}")),
        }
    }
    if plan.echo {
        check_echoes(ep, &mut r);
    }
    let mut ctl = match Control::connect(ep.control, Duration::from_secs(30)) {
        Ok(c) => c,
        Err(e) => {
            r.errors.push(format!("control connection: {e}"));
            return r;
        }
    };
    if plan.rr > 0 || plan.stream_bytes > 0 {
        for b in [NetBench::UdpRr, NetBench::TcpRr, NetBench::TcpStream, NetBench::TcpMaerts] {
            match bench(ep, &mut ctl, plan, b) {
                Ok(d) => r.bench.push(d),
                Err(e) => r.errors.push(format!("{}: {e}", b.name())),
            }
        }
    }
    if !plan.load_rates.is_empty() {
        match load::run(ep, &mut ctl, &plan.load_rates, plan.load_seconds.max(1)) {
            Ok(points) => r.load = points,
            Err(e) => r.errors.push(format!("load: {e}")),
        }
    }
    if plan.flood > 0 {
        let mut run = || -> io::Result<Flood> {
            let before = ctl.stats()?;
            let sent = flood(ep, plan.flood)?;
            std::thread::sleep(Duration::from_secs(1));
            let after = ctl.stats()?;
            Ok(Flood {
                sent,
                rx: after.rx.saturating_sub(before.rx),
                grants: (before.grants, after.grants),
                bad: after.bad,
            })
        };
        match run() {
            Ok(f) => r.flood = Some(f),
            Err(e) => r.errors.push(format!("flood: {e}")),
        }
    }
    match ctl.command(Command::Quit) {
        Ok(bye) => r.quit = Some(bye),
        Err(e) => r.errors.push(format!("QUIT: {e}")),
    }
    r
}

#[cfg(test)]
mod tests;
