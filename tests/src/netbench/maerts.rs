//! `tcp_maerts`, the bulk benchmark out of the guest (netperf's TCP_MAERTS, the reverse of
//! `tcp_stream`): inside one `START`..`STOP` window the client connects to the guest's
//! character source (TCP [`SOURCE_PORT`](proto::netctl::SOURCE_PORT)), reads exactly the
//! plan's bytes, checking each against [`source_byte`] at its offset, and closes. The
//! figure is Mbit/s at the receiver, from the connection to the last byte read.

use super::control::Control;
use super::Endpoints;
use proto::netctl::{fill_source, source_byte, Command, NetBench, SOURCE_PERIOD};
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Largest read.
const CHUNK: usize = 64 * 1024;

/// What one transfer read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Received {
    /// Mbit/s at the receiver.
    pub mbit_s: f64,
    /// Bytes read, every one as the pattern has it.
    pub bytes: u64,
}

/// Reads `bytes` from `src`, each checked against the source's pattern; an early end or a
/// byte off the pattern is an error naming its offset.
fn read_checked(src: &mut impl Read, bytes: u64) -> io::Result<u64> {
    // The pattern from every phase: offset `o` of the stream starts at `expected[o % 95]`.
    let mut expected = vec![0u8; CHUNK + SOURCE_PERIOD];
    fill_source(&mut expected, 0);
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < bytes {
        let want = (bytes - got).min(CHUNK as u64) as usize;
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the source closed after {got} of {bytes} bytes"),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("after {got} of {bytes} bytes: {e}"))),
        };
        let phase = (got % SOURCE_PERIOD as u64) as usize;
        if buf[..n] != expected[phase..phase + n] {
            let i = (0..n).find(|&i| buf[i] != expected[phase + i]).unwrap_or(0);
            let at = got + i as u64;
            return Err(io::Error::other(format!(
                "byte {at} is {:#04x}, the source's pattern has {:#04x} there",
                buf[i],
                source_byte(at)
            )));
        }
        got += n as u64;
    }
    Ok(got)
}

/// Connects to the source and reads `bytes` from it, checked; Mbit/s from the connection
/// to the last byte.
pub(super) fn receive(ep: &Endpoints, bytes: u64) -> io::Result<Received> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&ep.source, Duration::from_secs(5))
        .map_err(|e| io::Error::new(e.kind(), format!("connecting to the source {}: {e}", ep.source)))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let got = read_checked(&mut s, bytes)?;
    let secs = t0.elapsed().as_secs_f64();
    // Closing with unread bytes queued resets the connection: the source stops at once.
    drop(s);
    Ok(Received { mbit_s: got as f64 * 8.0 / secs / 1e6, bytes: got })
}

/// The benchmark: `START tcp_maerts`, the transfer, then the caller's `STOP`.
pub(super) fn tcp_maerts(ep: &Endpoints, ctl: &mut Control, bytes: u64) -> io::Result<Received> {
    ctl.expect_ok(Command::Start(NetBench::TcpMaerts))?;
    receive(ep, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{SocketAddr, TcpListener};

    /// A local source that writes `limit` bytes of the pattern (flipping byte `corrupt`,
    /// if set) per connection, then closes.
    fn source(limit: u64, corrupt: Option<u64>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = vec![0u8; 10_000];
                let mut off = 0u64;
                while off < limit {
                    let n = (limit - off).min(buf.len() as u64) as usize;
                    fill_source(&mut buf[..n], off);
                    if let Some(c) = corrupt.filter(|c| (off..off + n as u64).contains(c)) {
                        buf[(c - off) as usize] ^= 0x40;
                    }
                    if s.write_all(&buf[..n]).is_err() {
                        break; // the reader closed
                    }
                    off += n as u64;
                }
            }
        });
        a
    }

    fn at(source: SocketAddr) -> Endpoints {
        let a = source;
        Endpoints { udp_echo: a, tcp_echo: a, discard: a, udp_discard: a, source, control: a, ping: None }
    }

    #[test]
    fn reads_exactly_the_planned_bytes_of_an_endless_source() {
        let ep = at(source(u64::MAX, None));
        let r = receive(&ep, 3 << 20).unwrap();
        assert_eq!(r.bytes, 3 << 20);
        assert!(r.mbit_s.is_finite() && r.mbit_s > 0.0, "{r:?}");
        // An odd size, not a multiple of a read or of the pattern.
        assert_eq!(receive(&ep, 100_003).unwrap().bytes, 100_003);
    }

    #[test]
    fn a_byte_off_the_pattern_is_named_by_its_offset() {
        let ep = at(source(u64::MAX, Some(1_000_000)));
        let e = receive(&ep, 2 << 20).unwrap_err().to_string();
        let want = source_byte(1_000_000);
        assert_eq!(e, format!("byte 1000000 is {:#04x}, the source's pattern has {want:#04x} there", want ^ 0x40));
    }

    #[test]
    fn a_source_that_stops_early_is_an_error_with_the_count() {
        let ep = at(source(5000, None));
        let e = receive(&ep, 6000).unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string()),
            (io::ErrorKind::UnexpectedEof, "the source closed after 5000 of 6000 bytes".into())
        );
    }
}
