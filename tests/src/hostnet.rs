//! The host end of the guest's network.
//!
//! As root, a tap device (`hytap0`, 10.0.77.1/24) puts the guest on a real link the
//! host can ping and reach directly at 10.0.77.2. Otherwise QEMU's user-mode network
//! forwards host ports on 127.0.0.1 to the guest's services (no ICMP then).

use crate::netbench::{port, Endpoints};
use crate::qemu::HarnessError;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;

/// Name of the tap device.
pub const TAP: &str = "hytap0";
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 77, 1);
const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 77, 2);
const USER_GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

/// How the host reaches the guest.
#[derive(Debug)]
pub enum HostNet {
    /// A tap device owned by this value (deleted on drop).
    Tap,
    /// QEMU user networking with host port forwards: (udp echo, tcp echo, discard, control,
    /// udp discard, source).
    User([u16; 6]),
}

fn ip(args: &[&str]) -> Result<(), HarnessError> {
    let out =
        Command::new("ip").args(args).output().map_err(|e| HarnessError(format!("ip {}: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
    }
}

fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError(format!("finding a free port: {e}")))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

impl HostNet {
    /// A tap device if this process may create one, else user-mode networking.
    pub fn setup() -> Result<HostNet, HarnessError> {
        if is_root() && std::path::Path::new("/dev/net/tun").exists() {
            let _ = ip(&["link", "del", TAP]);
            ip(&["tuntap", "add", "dev", TAP, "mode", "tap"])?;
            ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", TAP])?;
            ip(&["link", "set", TAP, "up"])?;
            return Ok(HostNet::Tap);
        }
        Ok(HostNet::User([free_port()?, free_port()?, free_port()?, free_port()?, free_port()?, free_port()?]))
    }

    /// QEMU arguments for the guest's virtio-net device.
    pub fn qemu_args(&self) -> Vec<String> {
        let netdev = match self {
            HostNet::Tap => format!("tap,id=n0,ifname={TAP},script=no,downscript=no"),
            HostNet::User([u7, t7, t9, c, u9, t19]) => format!(
                "user,id=n0,hostfwd=udp:127.0.0.1:{u7}-:{},hostfwd=tcp:127.0.0.1:{t7}-:{},hostfwd=tcp:127.0.0.1:{t9}-:{},hostfwd=tcp:127.0.0.1:{c}-:{},hostfwd=udp:127.0.0.1:{u9}-:{},hostfwd=tcp:127.0.0.1:{t19}-:{}",
                port::ECHO, port::ECHO, port::DISCARD, port::CONTROL, port::DISCARD, port::SOURCE
            ),
        };
        vec!["-netdev".into(), netdev, "-device".into(), "virtio-net-pci,netdev=n0".into()]
    }

    /// The guest's `ip=` option.
    pub fn guest_cmdline(&self) -> String {
        match self {
            HostNet::Tap => format!("ip={GUEST_IP}/24"),
            HostNet::User(_) => format!("ip={USER_GUEST_IP}/24"),
        }
    }

    /// Where the guest's services are, seen from this host.
    pub fn endpoints(&self) -> Endpoints {
        match self {
            HostNet::Tap => Endpoints::direct(GUEST_IP),
            HostNet::User([u7, t7, t9, c, u9, t19]) => {
                let at = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
                Endpoints {
                    udp_echo: at(*u7),
                    tcp_echo: at(*t7),
                    discard: at(*t9),
                    udp_discard: at(*u9),
                    source: at(*t19),
                    control: at(*c),
                    ping: None,
                }
            }
        }
    }

    /// Short description for logs.
    pub fn describe(&self) -> String {
        match self {
            HostNet::Tap => format!("tap {TAP} {HOST_IP}/24 <-> guest {GUEST_IP}"),
            HostNet::User(p) => format!("QEMU user network, host ports {p:?}"),
        }
    }
}

impl Drop for HostNet {
    fn drop(&mut self) {
        if let HostNet::Tap = self {
            let _ = ip(&["link", "del", TAP]);
        }
    }
}
