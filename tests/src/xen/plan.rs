//! The guest plan: what the dom0 agent runs, written by the harness as JSON onto the
//! payload disk (`/mnt/plan.json`). Both sides compile these types, so the plan can only
//! say what the agent understands.

use crate::netbench::NetPlan;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Everything the agent runs in one boot of the host, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The guests, booted one at a time in this order.
    pub guests: Vec<GuestPlan>,
    /// dom0's end of the guests' bridge, `xenbr0` (address/prefix).
    pub bridge: BridgeAddr,
    /// How each guest is traced.
    pub trace: TraceSettings,
    /// Attempts per guest at most, counting the first, for failures with the host's
    /// signature (see [`crate::xen::results::Outcome::retry_reason`]); nothing else is
    /// ever retried.
    pub max_attempts: u32,
}

/// An IPv4 address with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeAddr {
    /// The address.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

/// `xentrace` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSettings {
    /// Event mask (`-e`): the default `0x080af000` is the guest, HVM and scheduler classes.
    pub mask: u32,
    /// Trace buffer pages per pCPU (`-S`).
    pub pages_per_cpu: u32,
}

impl Default for TraceSettings {
    fn default() -> Self {
        TraceSettings { mask: 0x080a_f000, pages_per_cpu: 256 }
    }
}

/// Which output of the guest is its console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsoleKind {
    /// The PV console (hvc0), as xenconsoled logs it.
    Pv,
    /// COM1 of an HVM guest, as qemu-xen writes it to a file.
    Serial,
}

/// How a console line is recognised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LineMatch {
    /// A line that starts with this text.
    Prefix(String),
    /// A line that is exactly this text.
    Exact(String),
    /// A line that contains this text (a log line, after its timestamp).
    Contains(String),
}

impl LineMatch {
    /// Whether `line` (without its line end) matches.
    pub fn matches(&self, line: &str) -> bool {
        match self {
            LineMatch::Prefix(p) => line.starts_with(p.as_str()),
            LineMatch::Exact(e) => line == e,
            LineMatch::Contains(c) => line.contains(c.as_str()),
        }
    }
}

/// One guest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestPlan {
    /// Domain name, also the stem of its result files.
    pub name: String,
    /// The xl config, relative to the payload disk.
    pub config: String,
    /// xl config overrides, `key=value` each.
    pub overrides: Vec<String>,
    /// Which output is its console.
    pub console: ConsoleKind,
    /// The line that says the guest is up (boot time ends there).
    pub ready: LineMatch,
    /// The line that says it finished what it was started for.
    pub done: LineMatch,
    /// Seconds from `xl create` until the agent destroys the domain.
    pub timeout_s: u32,
    /// The network drive, if the guest serves the network.
    pub net: Option<GuestNet>,
    /// Toolstack commands to run while the guest runs, each once, when its line appears.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Trace classes added to the run's mask while this guest runs: the PV class
    /// ([`TRACE_CLASS_PV`]) for a PV guest, whose cost is hypercalls, not VM exits.
    #[serde(default)]
    pub trace_classes: u32,
}

/// Xen's PV trace class (`TRC_PV`): a PV guest's hypercalls, traps and page faults.
pub const TRACE_CLASS_PV: u32 = 0x0020_f000;

/// `xl` commands the agent runs when a console line appears: how a test takes a device
/// away from a running guest, say. `{name}` in an argument is the domain's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The line that triggers it.
    pub on: LineMatch,
    /// The `xl` commands, in order, each an argument list (`["pause", "{name}"]`).
    pub xl: Vec<Vec<String>>,
}

/// The guest's network services and how dom0 drives them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestNet {
    /// The guest's address on the bridge.
    pub ip: Ipv4Addr,
    /// The line after which its services listen.
    pub serving: LineMatch,
    /// What to drive.
    pub plan: NetPlan,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lines() {
        assert!(LineMatch::Prefix("NET ready".into()).matches("NET ready ip=10.0.0.2/24"));
        assert!(!LineMatch::Exact("DONE".into()).matches("DONE!"));
        assert!(LineMatch::Exact("DONE".into()).matches("DONE"));
        assert!(LineMatch::Contains("netfront: rings".into()).matches("[ 0.1] INFO  x: netfront: rings granted"));
    }

    #[test]
    fn plan_round_trips_through_json() {
        let p = Plan {
            guests: vec![GuestPlan {
                name: "hy-pvh".into(),
                config: "pvh.cfg".into(),
                overrides: vec!["cmdline=\"mode=pvh bench=cpuid\"".into()],
                console: ConsoleKind::Pv,
                ready: LineMatch::Prefix("READY ".into()),
                done: LineMatch::Exact("DONE".into()),
                timeout_s: 300,
                net: None,
                actions: vec![],
                trace_classes: 0,
            }],
            bridge: BridgeAddr { ip: Ipv4Addr::new(10, 0, 0, 1), prefix: 24 },
            trace: TraceSettings::default(),
            max_attempts: 3,
        };
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("\"console\":\"pv\""), "{text}");
        assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), p);
        assert!(serde_json::from_str::<Plan>(&text.replace("\"pv\"", "\"vga\"")).is_err());
    }
}
