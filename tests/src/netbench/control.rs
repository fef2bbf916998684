//! The control connection (`proto::netctl`) and the benchmarks driven through it: each
//! one opens its window with `START`, runs, and closes it with `STOP`, whose reply is the
//! kernel's own figure (or `OK` from the Linux peer).

use super::maerts::tcp_maerts;
use super::{Driven, Endpoints, NetPlan, Server};
use crate::console::BenchLine;
use proto::netctl::{Command, NetBench, Stats, OK};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The benchmark control connection.
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Control {
    /// Connects, retrying until `timeout` (the guest may still be setting up).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Control> {
        let deadline = Instant::now() + timeout;
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(60)))?;
                    s.set_nodelay(true)?;
                    return Ok(Control { writer: s.try_clone()?, reader: BufReader::new(s) });
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(e.kind(), format!("control port {addr}: {e} (for {timeout:?})")))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Sends one command and returns the reply line.
    pub fn command(&mut self, cmd: Command) -> io::Result<String> {
        self.writer.write_all(format!("{cmd}\n").as_bytes())?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("control connection closed after {cmd}")));
        }
        Ok(reply.trim_end().to_string())
    }

    pub(super) fn expect_ok(&mut self, cmd: Command) -> io::Result<()> {
        match self.command(cmd)? {
            r if r == OK => Ok(()),
            r => Err(io::Error::other(format!("{cmd} answered '{r}'"))),
        }
    }

    /// The peer's counters.
    pub fn stats(&mut self) -> io::Result<Stats> {
        let reply = self.command(Command::Stats)?;
        Stats::parse(&reply).ok_or_else(|| io::Error::other(format!("STATS answered '{reply}'")))
    }

    /// Ends the window of `bench` (the kernel's own benchmark) and returns what the kernel
    /// counted in it (its result line's iterations).
    pub fn stop_count(&mut self, bench: NetBench) -> io::Result<u64> {
        match self.stop(Server::Hykernel, bench)? {
            Some(b) => Ok(b.iterations),
            None => Err(io::Error::other(format!("STOP {}: no count in the reply", bench.name()))),
        }
    }

    /// Ends a benchmark window: the kernel's result, or `None` from a peer that answers `OK`.
    fn stop(&mut self, server: Server, bench: NetBench) -> io::Result<Option<BenchLine>> {
        let cmd = Command::Stop(bench);
        let reply = self.command(cmd)?;
        match (server, BenchLine::parse(&reply)) {
            (Server::Hykernel, Some(Ok(b))) => Ok(Some(b)),
            (Server::Linux, None) if reply == OK => Ok(None),
            (_, Some(Err(e))) => Err(io::Error::other(format!("{cmd}: {e}"))),
            _ => Err(io::Error::other(format!("{cmd} answered '{reply}'"))),
        }
    }
}

/// UDP request-response: `count` round trips of `size`-byte datagrams; ns per round trip.
fn udp_rr(ep: &Endpoints, ctl: &mut Control, count: u32, size: usize) -> io::Result<f64> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    sock.connect(ep.udp_echo)?;
    let req = vec![0x5a; size];
    let mut buf = vec![0u8; 65536];
    sock.send(&req)?;
    sock.recv(&mut buf)?; // warms the ARP cache and the path before the measured window
    ctl.expect_ok(Command::Start(NetBench::UdpRr))?;
    let t0 = Instant::now();
    for i in 0..count {
        sock.send(&req)?;
        let n = sock.recv(&mut buf).map_err(|e| io::Error::new(e.kind(), format!("udp_rr round trip {i}: {e}")))?;
        if n != size {
            return Err(io::Error::other(format!("udp_rr: echo of {size} bytes came back as {n}")));
        }
    }
    Ok(t0.elapsed().as_nanos() as f64 / f64::from(count.max(1)))
}

/// TCP request-response: `count` round trips of `size` bytes on one connection.
fn tcp_rr(ep: &Endpoints, ctl: &mut Control, count: u32, size: usize) -> io::Result<f64> {
    let mut s = TcpStream::connect_timeout(&ep.tcp_echo, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = vec![0xa5; size];
    let mut back = vec![0u8; size];
    s.write_all(&req)?;
    s.read_exact(&mut back)?;
    ctl.expect_ok(Command::Start(NetBench::TcpRr))?;
    let t0 = Instant::now();
    for _ in 0..count {
        s.write_all(&req)?;
        s.read_exact(&mut back)?;
    }
    Ok(t0.elapsed().as_nanos() as f64 / f64::from(count.max(1)))
}

/// TCP bulk: `bytes` into the discard service; Mbit/s at the sender, until the service
/// closed after consuming everything.
fn tcp_stream(ep: &Endpoints, ctl: &mut Control, bytes: u64) -> io::Result<f64> {
    ctl.expect_ok(Command::Start(NetBench::TcpStream))?;
    let mut s = TcpStream::connect_timeout(&ep.discard, Duration::from_secs(5))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let chunk = vec![0x3c; 64 * 1024];
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = (chunk.len() as u64).min(bytes - sent) as usize;
        s.write_all(&chunk[..n])?;
        sent += n as u64;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let mut sink = [0u8; 16];
    let _ = s.read(&mut sink)?;
    Ok(bytes as f64 * 8.0 / t0.elapsed().as_secs_f64() / 1e6)
}

/// Sends `n` small datagrams to the echo port as fast as the socket takes them, draining
/// the echoes now and then so this side's buffer never fills.
pub(super) fn flood(ep: &Endpoints, n: u64) -> io::Result<u64> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_nonblocking(true)?;
    s.connect(ep.udp_echo)?;
    let (req, mut buf) = ([0x11u8; 64], [0u8; 2048]);
    let mut sent = 0;
    while sent < n {
        match s.send(&req) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
        if sent % 64 == 0 {
            while s.recv(&mut buf).is_ok() {}
        }
    }
    Ok(sent)
}

pub(super) fn bench(ep: &Endpoints, ctl: &mut Control, plan: &NetPlan, b: NetBench) -> io::Result<Driven> {
    let mut bytes = None;
    let (host_value, unit) = match b {
        NetBench::UdpRr => (udp_rr(ep, ctl, plan.rr, 64)?, "ns"),
        NetBench::TcpRr => (tcp_rr(ep, ctl, plan.rr, 64)?, "ns"),
        NetBench::TcpStream => (tcp_stream(ep, ctl, plan.stream_bytes)?, "Mbit/s"),
        NetBench::TcpMaerts => {
            let r = tcp_maerts(ep, ctl, plan.stream_bytes)?;
            bytes = Some(r.bytes);
            (r.mbit_s, "Mbit/s")
        }
        NetBench::Load => {
            return Err(io::Error::other("load is a rate experiment (netbench::load), not a driven benchmark"))
        }
    };
    let kernel = ctl.stop(plan.server, b)?;
    if let (NetBench::TcpStream, Some(k)) = (b, &kernel) {
        if k.iterations != plan.stream_bytes {
            return Err(io::Error::other(format!(
                "tcp_stream: sent {} bytes, the kernel counted {}",
                plan.stream_bytes, k.iterations
            )));
        }
    }
    // The host cannot have read more than the kernel handed to TCP.
    if let (NetBench::TcpMaerts, Some(k), Some(read)) = (b, &kernel, bytes) {
        if k.iterations < read {
            return Err(io::Error::other(format!(
                "tcp_maerts: read {read} bytes, the kernel counted only {} handed to TCP",
                k.iterations
            )));
        }
    }
    Ok(Driven { name: b.name().into(), host_value, unit: unit.into(), kernel, bytes })
}
