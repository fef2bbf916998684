//! The network drive of a guest the agent did not start: on the KVM host, L1's payload
//! script starts the L2 (our kernel or the Linux peer) and runs `hy-agent drive`, which
//! follows the guest's serial console until its serving line appears and then drives its
//! services with [`crate::netbench`], the client dom0 uses on the Xen host.

use super::tail::FileTail;
use crate::netbench::{self, Endpoints, NetReport};
use crate::xen::plan::GuestNet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Console poll period.
const POLL: Duration = Duration::from_millis(20);

/// Waits (until `limit` has passed, or `alive` says the guest is gone) for `net.serving` on
/// `console`, then drives the guest's services. A guest that never serves gets a report
/// whose error says what was waited for and the console's last line.
pub fn when_serving(net: &GuestNet, console: &Path, limit: Duration, alive: impl Fn() -> bool) -> NetReport {
    let deadline = Instant::now() + limit;
    let mut tail = FileTail::new(console.to_path_buf());
    let mut last = String::new();
    loop {
        for l in tail.poll() {
            if net.serving.matches(&l.text) {
                println!("HY-AGENT: serving ({}); driving {}", l.text, net.ip);
                return netbench::drive(&Endpoints::direct(net.ip), &net.plan);
            }
            if !l.text.trim().is_empty() {
                last = l.text;
            }
        }
        let gone = !alive();
        if gone || Instant::now() >= deadline {
            let why = if gone { "the guest ended first".to_string() } else { format!("not seen within {limit:?}") };
            let error = format!("waiting for {:?} on {}: {why} (last line: {last:?})", net.serving, console.display());
            return NetReport { errors: vec![error], ..NetReport::default() };
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netbench::NetPlan;
    use crate::xen::plan::LineMatch;
    use std::net::Ipv4Addr;

    #[test]
    fn a_guest_that_never_serves_is_an_error_naming_the_wait() {
        let dir = std::env::temp_dir().join(format!("hy-drive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let console = dir.join("g.serial");
        std::fs::write(&console, "MODE hypervisor=kvm\nERROR virtio-net: no device\n").unwrap();
        let net = GuestNet {
            ip: Ipv4Addr::new(10, 0, 0, 2),
            serving: LineMatch::Prefix("NET ready".into()),
            plan: NetPlan::default(),
        };
        let r = when_serving(&net, &console, Duration::from_millis(100), || true);
        assert_eq!(r.errors.len(), 1, "{r:?}");
        assert!(r.errors[0].contains("NET ready") && r.errors[0].contains("no device"), "{}", r.errors[0]);
        assert!(r.errors[0].contains("not seen within"), "{}", r.errors[0]);
        assert!(!r.ok());
        let r = when_serving(&net, &console, Duration::from_secs(60), || false);
        assert!(r.errors[0].contains("the guest ended first"), "{}", r.errors[0]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
