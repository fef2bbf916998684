//! The kernel's network services and their counters.
//!
//! - echo on UDP and TCP port 7 (RFC 862): every byte comes back;
//! - discard on TCP port 9 (RFC 863): every byte is dropped; and on UDP port 9, where
//!   datagrams are counted for the interrupt-load experiment (`load`);
//! - a character source on TCP port 19 ([`SOURCE_PORT`], chargen's, RFC 864): from the
//!   connection on, it sends `proto::netctl::source_byte`s as fast as the peer's window
//!   takes them, until the peer closes; the bytes it hands to TCP count for `tcp_maerts`,
//!   the bulk benchmark out of the guest;
//! - the benchmark control protocol on TCP [`CONTROL_PORT`] (see `proto::netctl`).
//!
//! Each service counts what it sees into the [`Counters`] of its benchmark, so the
//! control connection can turn a START..STOP window into a result.

use super::levers::Buffers;
use crate::platform::Platform;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;
use drivers::nic::NicStats;
use proto::cmdline::Choice;
use proto::lines::BenchRecord;
use proto::netctl::{self, Command, Counters, NetBench, CONTROL_PORT, MAX_LINE, SOURCE_PORT};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};

const ECHO_PORT: u16 = 7;
const DISCARD_PORT: u16 = 9;
const TCP_ECHO_SOCKETS: usize = 4;
const DISCARD_SOCKETS: usize = 2;
const SOURCE_SOCKETS: usize = 2;
const UDP_BUF: usize = 64 * 1024;
const UDP_PACKETS: usize = 64;
/// Control sockets: three, so that one still listens while another serves and a third is
/// torn down. smoltcp has no backlog: a SYN that finds no socket listening is reset, and a
/// socket whose last ACK arrives in a poll listens again only after it, so with fewer a
/// client that reconnects at once was now and then refused.
const CONTROL_SOCKETS: usize = 3;

/// What the services want from the loop after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing new on the control connection.
    Idle,
    /// The host's driver spoke.
    Activity,
    /// The host asked to end the run.
    Quit,
}

fn tcp_socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; rx]), tcp::SocketBuffer::new(vec![0; tx]));
    s.set_nagle_enabled(false);
    s.set_ack_delay(None);
    s
}

/// The services' sockets and state.
pub struct Services {
    udp_echo: SocketHandle,
    tcp_echo: [SocketHandle; TCP_ECHO_SOCKETS],
    discard: [SocketHandle; DISCARD_SOCKETS],
    /// The character source's sockets, each with the stream offset it has sent up to.
    source: [(SocketHandle, u64); SOURCE_SOCKETS],
    /// The control sockets, each with the command line it is reading.
    control: [(SocketHandle, Vec<u8>); CONTROL_SOCKETS],
    /// The control socket that was told QUIT, once one was.
    farewell: Option<SocketHandle>,
    scratch: Vec<u8>,
    /// UDP discard (port 9): the sink of the interrupt-load experiment.
    udp_discard: SocketHandle,
    counters: [Counters; NetBench::ALL.len()],
    /// What each benchmark's trace phase counts, when it started: NIC frames (rx + tx),
    /// so that its exits come out per packet; for `load`, interrupts taken.
    phase_base: [u64; NetBench::ALL.len()],
}

/// What a benchmark's trace phase counts (see [`Services::phase_base`]).
fn phase_count(b: NetBench, nic: &NicStats) -> u64 {
    match b {
        NetBench::Load => nic.interrupts,
        _ => nic.rx_frames + nic.tx_frames,
    }
}

impl Services {
    /// Creates and opens the sockets, the TCP ones with `buffers`.
    pub fn new(sockets: &mut SocketSet<'static>, buffers: &Buffers) -> Self {
        let mut udp = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUF]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUF]),
        );
        // Binding a fresh socket to a non-zero port cannot fail.
        let _ = udp.bind(ECHO_PORT);
        let udp_echo = sockets.add(udp);
        let mut sink = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUF]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 1], vec![0; 64]),
        );
        let _ = sink.bind(DISCARD_PORT);
        let udp_discard = sockets.add(sink);
        let tcp_echo = core::array::from_fn(|_| sockets.add(tcp_socket(buffers.tcp_echo, buffers.tcp_echo)));
        let discard = core::array::from_fn(|_| sockets.add(tcp_socket(buffers.discard, 1024)));
        // The source sends as much ahead as a discard socket takes in: the bulk size.
        let source = core::array::from_fn(|_| (sockets.add(tcp_socket(1024, buffers.discard)), 0));
        let control = core::array::from_fn(|_| (sockets.add(tcp_socket(4096, 4096)), Vec::with_capacity(MAX_LINE)));
        // Listening before `NET ready` is printed: a client may connect on that line,
        // before the loop's first turn.
        let tcp = tcp_echo.iter().map(|h| (*h, ECHO_PORT)).chain(discard.iter().map(|h| (*h, DISCARD_PORT)));
        let tcp = tcp.chain(source.iter().map(|(h, _)| (*h, SOURCE_PORT)));
        for (h, port) in tcp.chain(control.iter().map(|(h, _)| (*h, CONTROL_PORT))) {
            Self::relisten(sockets.get_mut::<tcp::Socket>(h), port);
        }
        Services {
            udp_echo,
            tcp_echo,
            discard,
            source,
            control,
            farewell: None,
            udp_discard,
            scratch: vec![0; UDP_BUF],
            counters: [Counters::default(); NetBench::ALL.len()],
            phase_base: [0; NetBench::ALL.len()],
        }
    }

    /// Serves whatever the last poll brought in; `idle_ns` is the time the loop has spent
    /// halted so far (reported by `STATS`).
    pub fn run(&mut self, sockets: &mut SocketSet<'static>, p: &Platform, nic: NicStats, idle_ns: u64) -> Outcome {
        let now = p.clock.now_ns();
        self.udp(sockets, now);
        self.sink(sockets, now);
        for h in self.tcp_echo {
            self.tcp_echo(sockets.get_mut::<tcp::Socket>(h), now);
        }
        for h in self.discard {
            self.discard(sockets.get_mut::<tcp::Socket>(h), now);
        }
        for i in 0..SOURCE_SOCKETS {
            let h = self.source[i].0;
            self.source[i].1 = self.source(sockets.get_mut::<tcp::Socket>(h), self.source[i].1, now);
        }
        let mut outcome = Outcome::Idle;
        for i in 0..CONTROL_SOCKETS {
            let (h, mut line) = (self.control[i].0, core::mem::take(&mut self.control[i].1));
            match self.control(sockets.get_mut::<tcp::Socket>(h), &mut line, p, nic, idle_ns) {
                Outcome::Quit => {
                    self.farewell = Some(h);
                    outcome = Outcome::Quit;
                }
                Outcome::Activity if outcome == Outcome::Idle => outcome = Outcome::Activity,
                _ => {}
            }
            self.control[i].1 = line;
        }
        outcome
    }

    /// UDP discard: counts every datagram for `load`, and drops it.
    fn sink(&mut self, sockets: &mut SocketSet<'static>, now: u64) {
        let sock = sockets.get_mut::<udp::Socket>(self.udp_discard);
        while let Ok((data, _)) = sock.recv() {
            self.counters[NetBench::Load.index()].record(data.len(), now);
        }
    }

    /// True once the host has acknowledged the FIN that closed the control connection
    /// after QUIT, and so everything before it: the BYE reached the host.
    pub fn farewell_acknowledged(&self, sockets: &SocketSet<'static>) -> bool {
        use tcp::State::{Closed, FinWait2, TimeWait};
        self.farewell.is_some_and(|h| matches!(sockets.get::<tcp::Socket>(h).state(), FinWait2 | TimeWait | Closed))
    }

    fn udp(&mut self, sockets: &mut SocketSet<'static>, now: u64) {
        let sock = sockets.get_mut::<udp::Socket>(self.udp_echo);
        while sock.can_send() {
            let Ok((n, meta)) = sock.recv_slice(&mut self.scratch) else {
                break;
            };
            self.counters[NetBench::UdpRr.index()].record(n, now);
            // A full transmit buffer drops the echo, as UDP may.
            let _ = sock.send_slice(&self.scratch[..n], meta.endpoint);
        }
    }

    fn relisten(sock: &mut tcp::Socket, port: u16) {
        if !sock.is_open() {
            // Listening on a closed socket with a non-zero port cannot fail.
            let _ = sock.listen(port);
        }
    }

    fn tcp_echo(&mut self, sock: &mut tcp::Socket, now: u64) {
        Self::relisten(sock, ECHO_PORT);
        if sock.can_recv() && sock.can_send() {
            let room = sock.send_capacity() - sock.send_queue();
            let want = room.min(self.scratch.len());
            if let Ok(n) = sock.recv_slice(&mut self.scratch[..want]) {
                if n > 0 {
                    self.counters[NetBench::TcpRr.index()].record(n, now);
                    let _ = sock.send_slice(&self.scratch[..n]);
                }
            }
        }
        if !sock.may_recv() && sock.may_send() && sock.send_queue() == 0 {
            sock.close(); // the peer finished and everything was echoed
        }
    }

    fn discard(&mut self, sock: &mut tcp::Socket, now: u64) {
        Self::relisten(sock, DISCARD_PORT);
        while sock.can_recv() {
            match sock.recv(|data| (data.len(), data.len())) {
                Ok(n) if n > 0 => self.counters[NetBench::TcpStream.index()].record(n, now),
                _ => break,
            }
        }
        if !sock.may_recv() && sock.may_send() {
            sock.close();
        }
    }

    /// The character source: fills the send buffer with the stream from `offset` on and
    /// returns the offset it reached (0 again once the connection is gone).
    fn source(&mut self, sock: &mut tcp::Socket, offset: u64, now: u64) -> u64 {
        Self::relisten(sock, SOURCE_PORT);
        match sock.state() {
            tcp::State::Established => {}
            // The peer closed: what is still queued has no reader.
            tcp::State::CloseWait => {
                sock.abort();
                return 0;
            }
            // Listening, connecting or gone: the next connection starts at offset 0.
            _ => return 0,
        }
        // Whatever the peer sends is read and dropped, as chargen does.
        while sock.can_recv() {
            if !matches!(sock.recv(|d| (d.len(), d.len())), Ok(n) if n > 0) {
                break;
            }
        }
        let mut offset = offset;
        while sock.can_send() {
            match sock.send(|buf| {
                netctl::fill_source(buf, offset);
                (buf.len(), buf.len())
            }) {
                Ok(n) if n > 0 => {
                    offset = offset.wrapping_add(n as u64);
                    self.counters[NetBench::TcpMaerts.index()].record(n, now);
                }
                _ => break,
            }
        }
        offset
    }

    /// One control connection: `line` holds what it sent of the command being read.
    fn control(
        &mut self,
        sock: &mut tcp::Socket,
        line: &mut Vec<u8>,
        p: &Platform,
        nic: NicStats,
        idle_ns: u64,
    ) -> Outcome {
        Self::relisten(sock, CONTROL_PORT);
        let mut outcome = Outcome::Idle;
        while sock.can_recv() {
            let mut byte = [0u8; 1];
            if sock.recv_slice(&mut byte) != Ok(1) {
                break;
            }
            if byte[0] != b'\n' {
                if line.len() == MAX_LINE {
                    let _ = sock.send_slice(b"ERR line too long\n");
                    sock.close();
                    line.clear();
                    return Outcome::Activity;
                }
                line.push(byte[0]);
                continue;
            }
            outcome = Outcome::Activity;
            let reply = self.command(line, p, nic, idle_ns);
            line.clear();
            let _ = sock.send_slice(reply.0.as_bytes());
            if reply.1 {
                sock.close();
                return Outcome::Quit;
            }
        }
        if !sock.may_recv() && sock.may_send() {
            sock.close();
        }
        outcome
    }

    /// Runs the command `line`; returns the reply and whether to quit.
    fn command(&mut self, line: &[u8], p: &Platform, nic: NicStats, idle_ns: u64) -> (String, bool) {
        let mut reply = String::new();
        let line = core::str::from_utf8(line).unwrap_or("\u{fffd}");
        match netctl::parse(line) {
            Ok(Command::Start(b)) => {
                self.counters[b.index()] = Counters::default();
                self.phase_base[b.index()] = phase_count(b, &nic);
                p.marker.begin(b.name(), 0);
                reply.push_str("OK\n");
            }
            Ok(Command::Stop(b)) => match netctl::result(b, &self.counters[b.index()]) {
                Ok((unit, value, iterations)) => {
                    // The trace phase counts packets (interrupts for `load`), so its exits
                    // come out per packet (per interrupt).
                    let count = phase_count(b, &nic).saturating_sub(self.phase_base[b.index()]);
                    p.marker.end(b.name(), count);
                    let rec = BenchRecord::new(b.name(), p.mode.name(), unit, value, iterations);
                    kprintln!("{rec}");
                    let _ = writeln!(reply, "{rec}");
                }
                Err(e) => {
                    let _ = writeln!(reply, "ERR {}: {e}", b.name());
                }
            },
            Ok(Command::Stats) => {
                let stats = netctl::Stats {
                    rx: nic.rx_frames,
                    tx: nic.tx_frames,
                    irqs: Some(nic.interrupts),
                    bad: Some(nic.bad_responses),
                    grants: Some(nic.grants),
                    bytes: None,
                    idle_ns: Some(idle_ns),
                    now_ns: Some(p.clock.now_ns()),
                };
                let _ = writeln!(reply, "{stats}");
            }
            Ok(Command::Quit) => {
                let _ = writeln!(reply, "{}", netctl::BYE);
                return (reply, true);
            }
            Err(e) => {
                let _ = writeln!(reply, "ERR {e}");
            }
        }
        (reply, false)
    }
}
