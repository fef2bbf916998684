//! What the dom0 agent found, written as JSON (`/mnt/results/results.json`) and read back
//! by the harness: per guest every attempt, how it ended and why, its timings, its files,
//! and what its network drive measured. Also the one rule for retrying.

use crate::netbench::NetReport;
use serde::{Deserialize, Serialize};

/// All guests of one run, in plan order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// One entry per planned guest.
    pub guests: Vec<GuestResult>,
    /// What the agent noticed about the run as a whole (a step of its own that failed).
    pub notes: Vec<String>,
}

/// One guest: every attempt, the last one counting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuestResult {
    /// Domain name.
    pub name: String,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
}

impl GuestResult {
    /// The attempt whose results count: the last one.
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// Attempts that were retried, with their reasons.
    pub fn retry_reasons(&self) -> Vec<&str> {
        self.attempts.iter().filter_map(|a| a.retried_because.as_deref()).collect()
    }
}

/// Seconds from the start of `xl create`, for the events of one attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// `xl create` had built the paused domain.
    pub created: Option<f64>,
    /// The first non-blank console line.
    pub first_line: Option<f64>,
    /// The ready line.
    pub ready: Option<f64>,
    /// The done line.
    pub done: Option<f64>,
    /// The domain was gone.
    pub gone: Option<f64>,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Outcome {
    /// It printed its done line and went away by itself.
    Finished,
    /// It went away without its done line.
    Died {
        /// Why, as far as the evidence goes.
        cause: DeathCause,
    },
    /// It was still there at its deadline and was destroyed.
    Hung {
        /// What the agent was waiting for.
        waiting_for: String,
    },
    /// `xl create` failed on its own (bad config, missing file): ours to fix.
    CreateFailed {
        /// xl's status and the tail of its output.
        detail: String,
    },
    /// A dom0 program the run depends on crashed or stopped (xl, xentrace): the host's
    /// failure, not the guest's.
    Dom0Failure {
        /// The step that failed.
        step: String,
        /// What happened.
        detail: String,
    },
}

/// Why a guest died.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DeathCause {
    /// It said so itself: `PANIC`, `ERROR` or a broken machine line on its console.
    Reported {
        /// Those lines.
        lines: Vec<String>,
    },
    /// Xen logged a triple fault for the domain and its console has no failure line:
    /// the signature of the nested test host (see `tests/xen/README.md`).
    TripleFault {
        /// Xen's line.
        xen_line: String,
    },
    /// Nothing says why.
    Unexplained,
}

impl Outcome {
    /// Why this outcome may be retried, or `None`. Only a failure with the host's
    /// signature is: a triple fault Xen logged while the guest printed no failure, or a
    /// dom0 program that failed. A guest that reported a failure, hung, or died without
    /// evidence is never retried: that may be a fault of ours.
    pub fn retry_reason(&self) -> Option<String> {
        match self {
            Outcome::Died { cause: DeathCause::TripleFault { xen_line } } => {
                Some(format!("host: Xen logged a triple fault and the guest printed no failure ({xen_line})"))
            }
            Outcome::Dom0Failure { step, detail } => Some(format!("dom0: {step}: {detail}")),
            _ => None,
        }
    }

    /// One line for tables and errors.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Finished => "finished".into(),
            Outcome::Died { cause: DeathCause::Reported { lines } } => format!("died: {}", lines.join(" | ")),
            Outcome::Died { cause: DeathCause::TripleFault { xen_line } } => format!("died: {xen_line}"),
            Outcome::Died { cause: DeathCause::Unexplained } => "died without a failure line or a Xen report".into(),
            Outcome::Hung { waiting_for } => format!("hung: no {waiting_for} before its deadline; destroyed"),
            Outcome::CreateFailed { detail } => format!("xl create failed: {detail}"),
            Outcome::Dom0Failure { step, detail } => format!("dom0 failed at {step}: {detail}"),
        }
    }
}

/// One boot of a guest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    /// Its domain id, once known.
    pub domid: Option<u32>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was run again, if it was (see [`Outcome::retry_reason`]).
    pub retried_because: Option<String>,
    /// When things happened.
    pub timing: Timing,
    /// Its primary console's lines, without prefixes (a file in the results directory).
    pub console_file: String,
    /// Every output of the guest (0xe9 lines, serial, PV console), for reading.
    pub all_output_file: String,
    /// Its xentrace file, if traced (in the results directory).
    pub trace_file: Option<String>,
    /// Whether xentrace ran from before the guest started until after it was gone.
    pub trace_complete: bool,
    /// Xen's log lines about this domain (`xl dmesg`).
    pub xen_log: Vec<String>,
    /// What its network drive measured, if it had one and got that far.
    pub net: Option<NetReport>,
    /// The plan's actions that ran: each `xl` command, how long it took and how it ended
    /// (`xl network-detach hy-x 0 (0.4 s): ok`).
    #[serde(default)]
    pub actions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hosts_signature_is_retried() {
        let tf = Outcome::Died { cause: DeathCause::TripleFault { xen_line: "d3v0 Triple fault".into() } };
        assert!(tf.retry_reason().unwrap().contains("triple fault"));
        let dom0 = Outcome::Dom0Failure { step: "xentrace".into(), detail: "exited early".into() };
        assert!(dom0.retry_reason().unwrap().starts_with("dom0: xentrace"));
        for never in [
            Outcome::Finished,
            Outcome::Died { cause: DeathCause::Reported { lines: vec!["PANIC: x".into()] } },
            Outcome::Died { cause: DeathCause::Unexplained },
            Outcome::Hung { waiting_for: "DONE".into() },
            Outcome::CreateFailed { detail: "status 1".into() },
        ] {
            assert_eq!(never.retry_reason(), None, "{never:?}");
        }
    }

    #[test]
    fn outcomes_serialise_with_their_kind() {
        let o = Outcome::Died { cause: DeathCause::Reported { lines: vec!["PANIC: boom".into()] } };
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(text, r#"{"kind":"died","cause":{"kind":"reported","lines":["PANIC: boom"]}}"#);
        assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), o);
        assert!(o.describe().contains("PANIC: boom"));
    }
}
