//! Echo checks: the bytes sent, the bytes back, and where they differ. A reply that differs
//! is reported with its offsets and never sent again; only a datagram that never came back
//! is (UDP loses datagrams, it does not change them).

use super::{Endpoints, NetReport};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// UDP echo sizes checked: the smallest, a few in between, the largest unfragmented.
pub const UDP_ECHO_SIZES: [usize; 6] = [1, 2, 64, 512, 1400, 1472];
/// TCP echo sizes checked, up to 64 KiB (many segments, window updates).
pub const TCP_ECHO_SIZES: [usize; 6] = [1, 7, 1460, 4096, 16384, 65536];

/// Where an echo differs from what was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Bytes that came back.
    pub got_len: usize,
    /// Offsets that differ, where both have a byte: (count, first, last).
    pub differ: Option<(usize, usize, usize)>,
}

impl Mismatch {
    /// Compares `got` with `sent`; `None` if they are equal.
    pub fn of(sent: &[u8], got: &[u8]) -> Option<Mismatch> {
        if sent == got {
            return None;
        }
        let diffs: Vec<usize> = sent.iter().zip(got).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect();
        let differ = match (diffs.first(), diffs.last()) {
            (Some(&f), Some(&l)) => Some((diffs.len(), f, l)),
            _ => None,
        };
        Some(Mismatch { got_len: got.len(), differ })
    }
}

/// One echo check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// `udp` or `tcp`.
    pub proto: String,
    /// Bytes sent.
    pub bytes: usize,
    /// Datagrams sent again because no reply came within the timeout (UDP only).
    pub resent: u32,
    /// `None`: the echo came back exactly.
    pub mismatch: Option<Mismatch>,
    /// Set when nothing usable came back (timeout, connection error).
    pub error: Option<String>,
}

impl Echo {
    /// True if the echo came back byte for byte.
    pub fn exact(&self) -> bool {
        self.mismatch.is_none() && self.error.is_none()
    }
}

/// The bytes of an echo of `n` bytes: a pattern that differs at every offset and per
/// `seed`, so a shifted, truncated or foreign reply cannot match.
pub fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> (seed % 24) ^ seed) as u8).collect()
}

/// Sends `payload` to a UDP echo service and returns the reply and how many times it was
/// sent again because no reply came within `timeout` (up to 2 times). A reply that came
/// back different is returned as it is: the caller compares, and never retries.
pub fn udp_echo(addr: SocketAddr, payload: &[u8], timeout: Duration) -> io::Result<(Vec<u8>, u32)> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.set_read_timeout(Some(timeout))?;
    sock.connect(addr)?;
    let mut buf = vec![0u8; 65536];
    for resent in 0..3 {
        sock.send(payload)?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok((buf, resent));
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, format!("no UDP echo within {timeout:?}, sent 3 times")))
}

/// Sends `payload` over a new TCP connection to an echo service and reads back exactly
/// as many bytes (writing and reading concurrently, so large payloads cannot deadlock);
/// the server must then close.
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
        let mut back = Vec::with_capacity(payload.len());
        let r = (&mut reader).take(payload.len() as u64 + 1).read_to_end(&mut back);
        w.join().map_err(|_| io::Error::other("writer thread panicked"))??;
        r?;
        Ok(back)
    })
}

pub(super) fn check_echoes(ep: &Endpoints, r: &mut NetReport) {
    for (i, &n) in UDP_ECHO_SIZES.iter().enumerate() {
        let sent = pattern(n, i as u32);
        let e = match udp_echo(ep.udp_echo, &sent, Duration::from_secs(5)) {
            Ok((got, resent)) => {
                Echo { proto: "udp".into(), bytes: n, resent, mismatch: Mismatch::of(&sent, &got), error: None }
            }
            Err(e) => Echo { proto: "udp".into(), bytes: n, resent: 2, mismatch: None, error: Some(e.to_string()) },
        };
        r.echoes.push(e);
    }
    for (i, &n) in TCP_ECHO_SIZES.iter().enumerate() {
        let sent = pattern(n, 100 + i as u32);
        let e = match tcp_echo(ep.tcp_echo, &sent, Duration::from_secs(20)) {
            Ok(got) => {
                Echo { proto: "tcp".into(), bytes: n, resent: 0, mismatch: Mismatch::of(&sent, &got), error: None }
            }
            Err(e) => Echo { proto: "tcp".into(), bytes: n, resent: 0, mismatch: None, error: Some(e.to_string()) },
        };
        r.echoes.push(e);
    }
}
