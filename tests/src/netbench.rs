//! The host's side of the guest's network services: echo clients that check every byte,
//! the benchmark control connection, the three driven benchmarks, and ping.
//!
//! The kernel measures the driven benchmarks itself (see `hykernel::netctl`); the host
//! also times its own side, reported next to the kernel's figure.

use crate::console::BenchLine;
use crate::hostnet::HostNet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// Sends `payload` to a UDP echo service and returns the reply.
pub fn udp_echo(addr: SocketAddr, payload: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.set_read_timeout(Some(timeout))?;
    sock.connect(addr)?;
    sock.send(payload)?;
    let mut buf = vec![0u8; 65536];
    let n = sock.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Sends `payload` over a new TCP connection to an echo service and reads back exactly
/// as many bytes (writing and reading concurrently, so large payloads cannot deadlock).
pub fn tcp_echo(addr: SocketAddr, payload: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = stream;
    std::thread::scope(|s| {
        let w = s.spawn(move || -> io::Result<()> {
            writer.write_all(payload)?;
            writer.shutdown(std::net::Shutdown::Write)
        });
        let mut back = vec![0u8; payload.len()];
        let r = reader.read_exact(&mut back);
        let wr = w.join().map_err(|_| io::Error::other("writer thread panicked"))?;
        wr?;
        r?;
        // After the whole echo, the server must close: nothing more may arrive.
        let mut extra = [0u8; 1];
        match reader.read(&mut extra) {
            Ok(0) => Ok(back),
            Ok(_) => Err(io::Error::other("echo returned more bytes than were sent")),
            Err(e) => Err(e),
        }
    })
}

/// The benchmark control connection.
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Control {
    /// Connects, retrying until `timeout` (the guest may still be booting).
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Control> {
        let deadline = Instant::now() + timeout;
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(60)))?;
                    s.set_nodelay(true)?;
                    return Ok(Control { writer: s.try_clone()?, reader: BufReader::new(s) });
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Sends one command and returns the reply line.
    pub fn command(&mut self, line: &str) -> io::Result<String> {
        self.writer.write_all(format!("{line}\n").as_bytes())?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("control connection closed after '{line}'"),
            ));
        }
        Ok(reply.trim_end().to_string())
    }

    fn expect_ok(&mut self, line: &str) -> io::Result<()> {
        match self.command(line)? {
            r if r == "OK" => Ok(()),
            r => Err(io::Error::other(format!("'{line}' answered '{r}'"))),
        }
    }

    fn stop(&mut self, bench: &str) -> io::Result<BenchLine> {
        let reply = self.command(&format!("STOP {bench}"))?;
        match BenchLine::parse(&reply) {
            Some(Ok(b)) => Ok(b),
            Some(Err(e)) => Err(io::Error::other(format!("STOP {bench}: {e}"))),
            None => Err(io::Error::other(format!("STOP {bench} answered '{reply}'"))),
        }
    }
}

/// A driven benchmark: the kernel's result and the host's own view of it.
#[derive(Clone, Debug)]
pub struct DrivenResult {
    /// What the kernel measured.
    pub kernel: BenchLine,
    /// The host's figure in the same unit.
    pub host_value: f64,
}

/// UDP request-response: `count` round trips of `size`-byte datagrams.
pub fn udp_rr(net: &HostNet, ctl: &mut Control, count: u32, size: usize) -> io::Result<DrivenResult> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    sock.connect(net.udp_echo())?;
    let req = vec![0x5a; size];
    let mut buf = vec![0u8; 65536];
    sock.send(&req)?;
    sock.recv(&mut buf)?; // warm the ARP cache and the path before the measured window
    ctl.expect_ok("START udp_rr")?;
    let t0 = Instant::now();
    for i in 0..count {
        sock.send(&req)?;
        let n = sock.recv(&mut buf).map_err(|e| io::Error::new(e.kind(), format!("udp_rr round trip {i}: {e}")))?;
        if n != size {
            return Err(io::Error::other(format!("udp_rr: echo of {size} bytes came back as {n}")));
        }
    }
    let host_ns = t0.elapsed().as_nanos() as f64 / count as f64;
    Ok(DrivenResult { kernel: ctl.stop("udp_rr")?, host_value: host_ns })
}

/// TCP request-response: `count` round trips of `size` bytes on one connection.
pub fn tcp_rr(net: &HostNet, ctl: &mut Control, count: u32, size: usize) -> io::Result<DrivenResult> {
    let mut s = TcpStream::connect_timeout(&net.tcp_echo(), Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = vec![0xa5; size];
    let mut back = vec![0u8; size];
    s.write_all(&req)?;
    s.read_exact(&mut back)?;
    ctl.expect_ok("START tcp_rr")?;
    let t0 = Instant::now();
    for _ in 0..count {
        s.write_all(&req)?;
        s.read_exact(&mut back)?;
    }
    let host_ns = t0.elapsed().as_nanos() as f64 / count as f64;
    let kernel = ctl.stop("tcp_rr")?;
    Ok(DrivenResult { kernel, host_value: host_ns })
}

/// TCP bulk: `bytes` into the discard service; the host's figure is Mbit/s at the sender.
pub fn tcp_stream(net: &HostNet, ctl: &mut Control, bytes: usize) -> io::Result<DrivenResult> {
    ctl.expect_ok("START tcp_stream")?;
    let mut s = TcpStream::connect_timeout(&net.discard(), Duration::from_secs(5))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let chunk = vec![0x3c; 64 * 1024];
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        let n = chunk.len().min(bytes - sent);
        s.write_all(&chunk[..n])?;
        sent += n;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    // The service closes once it has consumed everything: then the count is complete.
    let mut sink = [0u8; 16];
    let _ = s.read(&mut sink)?;
    let secs = t0.elapsed().as_secs_f64();
    let kernel = ctl.stop("tcp_stream")?;
    if kernel.iterations != bytes as u64 {
        return Err(io::Error::other(format!(
            "tcp_stream: sent {bytes} bytes, the kernel counted {}",
            kernel.iterations
        )));
    }
    Ok(DrivenResult { kernel, host_value: bytes as f64 * 8.0 / secs / 1e6 })
}

/// Ping statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
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
    let out = Command::new("ping")
        .args(["-c", &count.to_string(), "-i", "0.2", "-W", "2", &ip.to_string()])
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running ping: {e} (install iputils-ping)")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).ok_or_else(|| io::Error::other(format!("unreadable ping output: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iputils_ping() {
        let out = "PING 10.0.77.2 (10.0.77.2) 56(84) bytes of data.\n\
                   64 bytes from 10.0.77.2: icmp_seq=1 ttl=64 time=5.15 ms\n\n\
                   --- 10.0.77.2 ping statistics ---\n\
                   3 packets transmitted, 3 received, 0% packet loss, time 2023ms\n\
                   rtt min/avg/max/mdev = 0.299/1.941/5.150/2.269 ms\n";
        assert_eq!(parse_ping(out), Some(PingStats { sent: 3, received: 3, avg_ms: 1.941 }));
        let lost = "3 packets transmitted, 0 received, 100% packet loss, time 2040ms\n";
        assert_eq!(parse_ping(lost), Some(PingStats { sent: 3, received: 0, avg_ms: 0.0 }));
        assert_eq!(parse_ping("ping: connect: Network is unreachable"), None);
    }
}
