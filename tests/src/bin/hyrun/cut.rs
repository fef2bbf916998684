//! What a table and a JSON file of `hyrun` say when the nested host froze in its last boot
//! and the run is incomplete ([`Incomplete`]): the table's guests that never ended, each
//! with why, printed under the table; and a top-level `complete`/`incomplete` pair in the
//! JSON. A complete run's [`Cut`] is empty: nothing printed, `"complete": true`.

use harness::xen::guests::Guest;
use harness::xen::run::{Incomplete, Missing};
use serde_json::{json, Value};

/// A table's or a file's view of an incomplete run.
#[derive(Debug, Default)]
pub struct Cut<'a> {
    /// The freeze that ended the run ([`Incomplete::describe`]); `None`: the run is complete.
    pub froze: Option<String>,
    /// The guests of this table or file that never ended, in the plan's order.
    pub missing: Vec<&'a Missing>,
    /// Every guest of the run that never ended.
    pub run_missing: Vec<&'a str>,
}

impl<'a> Cut<'a> {
    /// The view of `run` (`None`: complete) for the guests `keep` selects.
    pub fn of(run: Option<&'a Incomplete>, keep: impl Fn(&Guest) -> bool) -> Cut<'a> {
        let Some(run) = run else { return Cut::default() };
        Cut {
            froze: Some(run.describe()),
            missing: run.missing.iter().filter(|m| keep(&m.guest)).collect(),
            run_missing: run.missing_names(),
        }
    }

    /// Whether the run is complete.
    pub fn complete(&self) -> bool {
        self.froze.is_none()
    }

    /// The lines under a table: its guests that never ended, each with why; empty when
    /// none of them is missing.
    pub fn lines(&self) -> String {
        let Some(froze) = self.froze.as_ref().filter(|_| !self.missing.is_empty()) else { return String::new() };
        let mut out =
            format!("missing from this table ({} guest(s)); the run is incomplete: {froze}", self.missing.len());
        for m in &self.missing {
            out.push_str(&format!("\n  {}: {}", m.name(), m.why()));
        }
        out
    }

    /// Prints [`Cut::lines`], if there are any.
    pub fn print(&self) {
        let lines = self.lines();
        if !lines.is_empty() {
            println!("{lines}");
        }
    }

    /// Marks the JSON document `doc` (an object): `"complete"`, and `"incomplete"` with the
    /// freeze, this file's missing guests (each with why and its attempts) and every guest
    /// the run misses; `null` for a complete run.
    pub fn mark(&self, doc: &mut Value) {
        let incomplete = self.froze.as_ref().map(|froze| {
            let missing: Vec<Value> = self
                .missing
                .iter()
                .map(|m| json!({ "guest": m.name(), "why": m.why(), "attempts": m.attempt_count(), "history": m.history() }))
                .collect();
            json!({ "host_froze": froze, "missing": missing, "missing_in_run": self.run_missing })
        });
        if let Some(o) = doc.as_object_mut() {
            o.insert("complete".into(), json!(self.complete()));
            o.insert("incomplete".into(), json!(incomplete));
        }
    }
}
