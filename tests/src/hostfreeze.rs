//! Whether a boot of a nested test host froze, and which guest it was running then.
//!
//! The L0 QEMU 7.2 (TCG) now and then freezes: its console goes silent and its vCPU
//! thread sleeps, so no timer of the host's ever runs again (`tests/xen/README.md`).
//! `tests/xen/run-host.sh` then stops QEMU and writes [`MARK`] into the boot's console
//! log ([`CONSOLE_LOG`]). That line is the host's signature, never a guest's: only for it
//! do the Xen run ([`crate::xen::run`]) and the KVM run ([`crate::kvm`]) boot the host
//! once more, for the guests it had not finished. Which guest was running is read from
//! the payload's progress lines (the dom0 agent's, [`xen_agent_step`]; the KVM payload's,
//! [`kvm_payload_step`]).

use std::path::Path;

/// The console log `run-host.sh` leaves in a boot's output directory.
pub const CONSOLE_LOG: &str = "host-console.log";

/// How `run-host.sh` marks, in [`CONSOLE_LOG`], that it stopped a silent (frozen) host.
pub const MARK: &str = "[ silent ] run-host: the host's console was silent for ";

/// What a progress line of the payload says about the guest being run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// This guest is being run (an attempt of it started, or is about to).
    Started(&'a str),
    /// The guest being run ended.
    Ended,
}

/// Where in its payload the host froze.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Froze {
    /// No guest had started.
    BeforeFirstGuest,
    /// The last guest had ended, the next one had not started.
    BetweenGuests,
    /// While this guest ran.
    During(String),
}

impl Froze {
    /// The guest that was running, if one was.
    pub fn guest(&self) -> Option<&str> {
        match self {
            Froze::During(g) => Some(g),
            _ => None,
        }
    }

    /// "while NAME ran", "between guests" or "before the first guest".
    pub fn describe(&self) -> String {
        match self {
            Froze::BeforeFirstGuest => "before the first guest".into(),
            Froze::BetweenGuests => "between guests".into(),
            Froze::During(g) => format!("while {g} ran"),
        }
    }
}

/// The text of a console-log line after its `[seconds] ` prefix: the host's own lines
/// (a guest's are further prefixed, `(dN) ...`, so a guest cannot pose as the payload).
fn text(line: &str) -> Option<&str> {
    line.strip_prefix('[')?.split_once("] ").map(|(_, t)| t)
}

/// The dom0 agent's progress lines (`tests/src/agent/`): `NAME: attempt N` and
/// `NAME: running it again: ...` start a guest's attempt, `attempt N: OUTCOME` ends it.
pub fn xen_agent_step(line: &str) -> Option<Step<'_>> {
    let rest = text(line)?.strip_prefix("HY-AGENT: ")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((n, _)) = rest.strip_prefix("attempt ").and_then(|r| r.split_once(": ")) {
        return digits(n).then_some(Step::Ended);
    }
    let (name, what) = rest.split_once(": ")?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    let started = what.strip_prefix("attempt ").is_some_and(digits) || what.starts_with("running it again: ");
    started.then_some(Step::Started(name))
}

/// The KVM payload's progress lines (`tests/kvm/payload/run.sh`): `guest NAME start: ...`
/// and `guest NAME exit=N`.
pub fn kvm_payload_step(line: &str) -> Option<Step<'_>> {
    let rest = text(line)?.strip_prefix("HY-KVM: guest ")?;
    let name = rest.split([' ', ':']).next().filter(|n| !n.is_empty())?;
    if rest[name.len()..].starts_with(" exit=") {
        Some(Step::Ended)
    } else if rest[name.len()..].starts_with(" start") {
        Some(Step::Started(name))
    } else {
        None
    }
}

/// Whether the boot whose console log is `log` froze (`run-host.sh` wrote [`MARK`]), and
/// where: the guest `step` says was running last.
pub fn detect(log: &str, step: fn(&str) -> Option<Step<'_>>) -> Option<Froze> {
    if !log.lines().any(|l| l.starts_with(MARK)) {
        return None;
    }
    let mut at = Froze::BeforeFirstGuest;
    for line in log.lines() {
        match step(line) {
            Some(Step::Started(g)) => at = Froze::During(g.to_string()),
            Some(Step::Ended) => at = Froze::BetweenGuests,
            None => {}
        }
    }
    Some(at)
}

/// [`detect`] on the console log in a boot's output directory `out`; `None` also when
/// there is no log (the boot never started QEMU).
pub fn read(out: &Path, step: fn(&str) -> Option<Step<'_>>) -> Option<Froze> {
    detect(&std::fs::read_to_string(out.join(CONSOLE_LOG)).ok()?, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_running_when_the_xen_host_froze_is_named() {
        let during = include_str!("../data/hostfreeze/xen-froze-during-guest.log");
        // A guest's own line posing as the agent's is not read as one.
        assert_eq!(detect(during, xen_agent_step), Some(Froze::During("hy-hybrid-pirq-load".into())));
        let again = include_str!("../data/hostfreeze/xen-froze-between-attempts.log");
        assert_eq!(detect(again, xen_agent_step), Some(Froze::During("hy-hybrid".into())));
        let between = include_str!("../data/hostfreeze/xen-froze-between-guests.log");
        assert_eq!(detect(between, xen_agent_step), Some(Froze::BetweenGuests));
        let booting = include_str!("../data/hostfreeze/xen-froze-booting.log");
        assert_eq!(detect(booting, xen_agent_step), Some(Froze::BeforeFirstGuest));
    }

    #[test]
    fn only_run_host_s_own_mark_is_a_freeze() {
        let fine = include_str!("../data/hostfreeze/xen-not-frozen.log");
        assert!(fine.contains("the host's console was silent"));
        assert_eq!(detect(fine, xen_agent_step), None);
        assert_eq!(detect("", kvm_payload_step), None);
    }

    #[test]
    fn the_guest_running_when_the_kvm_host_froze_is_named() {
        let log = include_str!("../data/hostfreeze/kvm-froze-during-guest.log");
        assert_eq!(detect(log, kvm_payload_step), Some(Froze::During("hy-kvm-hybrid".into())));
        assert_eq!(detect(log, xen_agent_step), Some(Froze::BeforeFirstGuest));
    }

    #[test]
    fn progress_lines_are_parsed_exactly() {
        assert_eq!(xen_agent_step("[ 1.0] HY-AGENT: hy-hvm: attempt 2"), Some(Step::Started("hy-hvm")));
        assert_eq!(xen_agent_step("[ 1.0] HY-AGENT: attempt 2: hung: no DONE"), Some(Step::Ended));
        assert_eq!(xen_agent_step("[ 1.0] HY-AGENT: hy-hvm: serving; driving its network from dom0"), None);
        assert_eq!(xen_agent_step("[ 1.0] HY-AGENT: hy-hvm: attempt x"), None);
        assert_eq!(xen_agent_step("HY-AGENT: hy-hvm: attempt 1"), None);
        assert_eq!(kvm_payload_step("[ 2.0] HY-KVM: guest a exit=0"), Some(Step::Ended));
        assert_eq!(kvm_payload_step("[ 2.0] HY-KVM: guest a start: mode=hvm"), Some(Step::Started("a")));
        assert_eq!(kvm_payload_step("[ 2.0] HY-KVM: guest a"), None);
        assert_eq!(Froze::During("x".into()).describe(), "while x ran");
    }
}
