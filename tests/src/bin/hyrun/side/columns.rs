//! The columns of the side-by-side view from each host's run: per mode asked, the guest
//! that ran the local benchmarks, the network guest's rounds and the load guest, found by
//! their variant's label (`hvm`, `hybrid`, ...) the way each host's own tables group them
//! ([`xen::part`], [`network::kinds`], [`kvm::parts`]). A host whose run failed gives every
//! one of its columns the failure; a Xen run cut short by a freeze gives each guest that
//! never ended the reason [`Missing::why`] states.

use super::{Column, Host, Local, Source, Status};
use crate::kvm;
use crate::load;
use crate::network::{self, Kind, NetRound};
use crate::xen::{self, Part, XenEnd};
use harness::kvm::KvmRun;
use harness::xen::guests::Guest;
use harness::xen::run::{GuestRun, Missing};

/// What a mode's column lacks when its host's run did not plan it.
const NOT_PLANNED: &str = "not in this host's plan";

/// A column of `host` in `mode` whose host's run failed with `error`.
fn failed<'a>(host: Host, mode: &'static str, error: &str) -> Column<'a> {
    let why = format!("{} host run failed (see below)", host.name());
    Column {
        host,
        mode,
        status: Status::Failed(error.to_string()),
        local: Err(why.clone()),
        net: Err(why.clone()),
        load: Err(why),
    }
}

/// Every round of `k` as a network round of either host.
fn erase<'a, R: NetRound + 'a>(k: Kind<'a, R>) -> Kind<'a, dyn NetRound + 'a> {
    Kind { label: k.label, levers: k.levers, rounds: k.rounds.into_iter().map(|r| r as &dyn NetRound).collect() }
}

/// Takes the kind labelled `mode` out of `kinds`.
fn take_kind<'a, R: NetRound + 'a>(kinds: &mut Vec<Kind<'a, R>>, mode: &str) -> Option<Kind<'a, dyn NetRound + 'a>> {
    let i = kinds.iter().position(|k| k.label == mode)?;
    Some(erase(kinds.remove(i)))
}

/// Takes the load row labelled `mode` out of `rows`.
fn take_row(rows: &mut Vec<load::Row>, mode: &str) -> Option<load::Row> {
    let i = rows.iter().position(|r| r.label == mode)?;
    Some(rows.remove(i))
}

fn label(g: &Guest) -> Option<&'static str> {
    g.variant().map(|v| v.label)
}

/// The Xen host's columns for `modes`, from its run `end` or its failure.
pub fn xen<'a>(modes: &[&'static str], end: &'a Result<XenEnd, String>) -> Vec<Column<'a>> {
    let end = match end {
        Ok(end) => end,
        Err(e) => return modes.iter().map(|m| failed(Host::Xen, m, e)).collect(),
    };
    let of = |p: Part| -> Vec<&'a GuestRun> { end.runs.iter().filter(|g| xen::part(&g.guest) == p).collect() };
    let mut kinds = network::kinds(&of(Part::Network));
    let mut rows = load::rows(&of(Part::Load));
    let local = of(Part::Local);
    let missing: &[Missing] = end.incomplete.as_ref().map_or(&[], |i| &i.missing);
    let why = |p: Part, mode: &str| -> String {
        missing
            .iter()
            .find(|m| xen::part(&m.guest) == p && label(&m.guest) == Some(mode))
            .map_or(NOT_PLANNED.into(), |m| format!("missing: {}", m.why()))
    };
    let status = end.incomplete.as_ref().map_or(Status::Ran, |i| Status::Incomplete(i.describe()));
    modes
        .iter()
        .map(|&mode| {
            let l: Source<&'a dyn Local> = local
                .iter()
                .find(|g| label(&g.guest) == Some(mode))
                .map(|g| *g as &dyn Local)
                .ok_or_else(|| why(Part::Local, mode));
            Column {
                host: Host::Xen,
                mode,
                status: status.clone(),
                local: l,
                net: take_kind(&mut kinds, mode).ok_or_else(|| why(Part::Network, mode)),
                load: take_row(&mut rows, mode).ok_or_else(|| why(Part::Load, mode)),
            }
        })
        .collect()
}

/// The KVM host's columns for `modes`, from its runs or its failure.
pub fn kvm<'a>(modes: &[&'static str], runs: &'a Result<Vec<KvmRun>, String>) -> Vec<Column<'a>> {
    let runs = match runs {
        Ok(runs) => runs,
        Err(e) => return modes.iter().map(|m| failed(Host::Kvm, m, e)).collect(),
    };
    let [local, net, loaded] = kvm::parts(runs);
    let mut kinds = kvm::kinds(&net);
    let mut rows = kvm::load_rows(&loaded);
    modes
        .iter()
        .map(|&mode| {
            let l: Source<&'a dyn Local> = local
                .iter()
                .find(|r| r.guest.label() == mode)
                .map(|r| *r as &dyn Local)
                .ok_or_else(|| NOT_PLANNED.to_string());
            Column {
                host: Host::Kvm,
                mode,
                status: Status::Ran,
                local: l,
                net: take_kind(&mut kinds, mode).ok_or_else(|| NOT_PLANNED.to_string()),
                load: take_row(&mut rows, mode).ok_or_else(|| NOT_PLANNED.to_string()),
            }
        })
        .collect()
}
