//! The client against local servers: exact echoes, and a server that corrupts replies.

use super::echo::check_echoes;
use super::*;
use std::io::{Read, Write};
use std::net::UdpSocket;

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

#[test]
fn mismatches_name_the_offsets() {
    let sent = pattern(100, 3);
    assert_eq!(Mismatch::of(&sent, &sent), None);
    let mut got = sent.clone();
    got[10] ^= 1;
    got[70] ^= 0x80;
    assert_eq!(Mismatch::of(&sent, &got), Some(Mismatch { got_len: 100, differ: Some((2, 10, 70)) }));
    assert_eq!(Mismatch::of(&sent, &sent[..40]), Some(Mismatch { got_len: 40, differ: None }));
    assert_ne!(pattern(64, 1), pattern(64, 2));
}

/// A local echo server (UDP and TCP on ephemeral ports) that corrupts one byte of
/// replies longer than `corrupt_over`: the client must report it, not retry it away.
fn echo_server(corrupt_over: usize) -> Endpoints {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (ua, ta) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    let flip = move |buf: &mut [u8]| {
        if buf.len() > corrupt_over {
            buf[corrupt_over] ^= 0xff;
        }
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            flip(&mut buf[..n]);
            let _ = udp.send_to(&buf[..n], from);
        }
    });
    std::thread::spawn(move || {
        for mut s in tcp.incoming().flatten() {
            let mut all = Vec::new();
            let _ = s.read_to_end(&mut all);
            flip(&mut all);
            let _ = s.write_all(&all);
        }
    });
    Endpoints { udp_echo: ua, tcp_echo: ta, discard: ta, udp_discard: ua, source: ta, control: ta, ping: None }
}

#[test]
fn echoes_are_exact_or_fail_with_their_offsets() {
    let ep = echo_server(usize::MAX);
    let mut r = NetReport::default();
    check_echoes(&ep, &mut r);
    assert_eq!(r.echoes.len(), 12);
    assert!(r.echoes.iter().all(Echo::exact), "{:?}", r.echoes);

    let ep = echo_server(1000);
    let mut r = NetReport::default();
    check_echoes(&ep, &mut r);
    let bad: Vec<_> = r.echoes.iter().filter(|e| !e.exact()).collect();
    assert_eq!(bad.len(), 2 + 4, "{bad:?}"); // UDP 1400, 1472; TCP 1460 .. 65536
    for e in bad {
        assert_eq!(e.mismatch, Some(Mismatch { got_len: e.bytes, differ: Some((1, 1000, 1000)) }), "{e:?}");
        assert_eq!(e.resent, 0, "a mismatch is never sent again");
    }
    assert!(!r.ok());
}
