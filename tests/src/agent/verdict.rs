//! How an attempt ended, from the evidence: the pure rule, kept apart from the running
//! so it can be tested case by case.
//!
//! Order of the evidence: a dom0 failure or a deadline decided while running stands; a
//! guest that printed its done line and went away finished; one that went away without
//! it died, and why is read from its own console first (a `PANIC`/`ERROR` line is the
//! guest's), then from Xen's log (a triple fault with a silent console is the nested
//! host's signature), else it is unexplained. Only [`Outcome::retry_reason`] decides
//! what may run again.

use crate::xen::results::{DeathCause, Outcome};
use proto::lines::Line;

/// What the agent saw of one attempt.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// An outcome decided while running (deadline, dom0 failure, create failure).
    pub decided: Option<Outcome>,
    /// The done line was seen.
    pub done: bool,
    /// Console lines that say the guest failed.
    pub failure_lines: Vec<String>,
    /// Xen's triple-fault line for the domain, if it logged one.
    pub triple_fault: Option<String>,
    /// The trace did not cover the whole attempt (xentrace exited or was killed early).
    pub trace_broken: Option<String>,
}

/// Whether a console line says the guest failed: the kernel's `PANIC`/`ERROR` lines, a
/// machine line it printed broken, or Linux's `Kernel panic`.
pub fn is_failure_line(line: &str) -> bool {
    match Line::classify(line) {
        Line::Panic(_) | Line::Error(_) => true,
        Line::Mode(r) => r.is_err(),
        Line::Ready(r) => r.is_err(),
        Line::Bench(r) => r.is_err(),
        Line::NetDown(r) => r.is_err(),
        _ => line.contains("Kernel panic"),
    }
}

/// The outcome the evidence supports.
pub fn judge(e: Evidence) -> Outcome {
    if let Some(o) = e.decided {
        return o;
    }
    if let Some(why) = e.trace_broken {
        return Outcome::Dom0Failure { step: "xentrace".into(), detail: why };
    }
    if e.done {
        return Outcome::Finished;
    }
    let cause = if !e.failure_lines.is_empty() {
        DeathCause::Reported { lines: e.failure_lines }
    } else if let Some(xen_line) = e.triple_fault {
        DeathCause::TripleFault { xen_line }
    } else {
        DeathCause::Unexplained
    };
    Outcome::Died { cause }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines() {
        assert!(is_failure_line("PANIC: panicked at kernel/src/entry.rs:101:9:"));
        assert!(is_failure_line("ERROR cmdline: unknown option 'colour=blue'"));
        assert!(is_failure_line("BENCH {\"name\":"));
        assert!(is_failure_line("[    2.1] Kernel panic - not syncing: Attempted to kill init!"));
        assert!(!is_failure_line(
            "MODE hypervisor=xen-4.17 mode=pvh irq=evtchn eoi=none clock=pvclock timer=xen-oneshot nic=none msi=none"
        ));
        assert!(!is_failure_line("DONE"));
        assert!(!is_failure_line("[ 0.1] INFO  errors: none"));
    }

    #[test]
    fn the_rule() {
        let tf = Some("(XEN) d3v0 Triple fault - invoking HVM shutdown action 1".to_string());
        // Finished: done and gone.
        assert_eq!(judge(Evidence { done: true, ..Default::default() }), Outcome::Finished);
        // A triple fault after a silent console: the host's signature, retried.
        let o = judge(Evidence { triple_fault: tf.clone(), ..Default::default() });
        assert!(matches!(o, Outcome::Died { cause: DeathCause::TripleFault { .. } }));
        assert!(o.retry_reason().is_some());
        // A panic, even with a triple fault logged after it: ours, never retried.
        let o = judge(Evidence { failure_lines: vec!["PANIC: boom".into()], triple_fault: tf, ..Default::default() });
        assert!(matches!(o, Outcome::Died { cause: DeathCause::Reported { .. } }));
        assert_eq!(o.retry_reason(), None);
        // Gone without a word: unexplained, not retried.
        assert_eq!(judge(Evidence::default()), Outcome::Died { cause: DeathCause::Unexplained });
        // A broken trace makes even a finished guest a dom0 failure (its counts would be
        // missing): retried.
        let o = judge(Evidence { done: true, trace_broken: Some("exited early".into()), ..Default::default() });
        assert!(matches!(o, Outcome::Dom0Failure { .. }) && o.retry_reason().is_some());
        // A decision taken while running stands.
        let hung = Outcome::Hung { waiting_for: "DONE".into() };
        assert_eq!(judge(Evidence { decided: Some(hung.clone()), done: true, ..Default::default() }), hung);
    }
}
