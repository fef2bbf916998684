//! `hyrun --host xen,kvm`: the Xen host's run, then the KVM host's, each printing its own
//! tables and writing its own files as alone, then the side-by-side view of both
//! ([`side`]) and `results/side-by-side.json`. A host whose run fails or ends incomplete
//! still leaves the other's columns printed, its own marked, and the run then fails naming
//! it.
//!
//! `--mode` is `all` (each host's `all`; columns Xen hvm, hybrid, pvh, pv and KVM hvm,
//! hybrid) or a comma list of hvm, hybrid, pvh, pv; the KVM host runs those of them it has
//! (hvm, hybrid), so at least one of those must be asked.

use super::side::{self, columns};
use super::{kvm, report, xen, Args};

/// The Xen host's modes, in column order.
const XEN_MODES: [&str; 4] = ["hvm", "hybrid", "pvh", "pv"];
/// The KVM host's modes, in column order.
const KVM_MODES: [&str; 2] = ["hvm", "hybrid"];

/// What `--mode` asks of each host.
#[derive(Debug, PartialEq)]
pub struct Modes {
    /// `--mode` for the Xen host.
    pub xen: String,
    /// `--mode` for the KVM host.
    pub kvm: String,
    /// The Xen columns.
    pub xen_columns: Vec<&'static str>,
    /// The KVM columns.
    pub kvm_columns: Vec<&'static str>,
}

/// Splits `--mode` between the hosts, or says what is wrong with it.
pub fn modes(mode: &str) -> Result<Modes, String> {
    if mode == "all" {
        return Ok(Modes {
            xen: "all".into(),
            kvm: "all".into(),
            xen_columns: XEN_MODES.to_vec(),
            kvm_columns: KVM_MODES.to_vec(),
        });
    }
    let mut asked: Vec<&'static str> = Vec::new();
    for m in mode.split(',') {
        let Some(&known) = XEN_MODES.iter().find(|k| **k == m) else {
            return Err(format!(
                "--mode {mode}: on --host xen,kvm the modes are all or a comma list of {} ('{m}' is none of them)",
                XEN_MODES.join(", ")
            ));
        };
        if asked.contains(&known) {
            return Err(format!("--mode {mode}: {m} is named twice"));
        }
        asked.push(known);
    }
    asked.sort_by_key(|m| XEN_MODES.iter().position(|k| k == m));
    let kvm: Vec<&'static str> = asked.iter().copied().filter(|m| KVM_MODES.contains(m)).collect();
    if kvm.is_empty() {
        return Err(format!(
            "--mode {mode}: the KVM host has no pvh or pv mode; on --host xen,kvm ask for hvm and/or hybrid too"
        ));
    }
    Ok(Modes { xen: asked.join(","), kvm: kvm.join(","), xen_columns: asked, kvm_columns: kvm })
}

/// Runs both hosts one after the other and prints the side-by-side view.
pub fn run(a: &Args) -> Result<(), String> {
    let m = modes(&a.mode)?;
    eprintln!("==> host 1 of 2: the Xen host, --mode {}", m.xen);
    let xen_end = xen::measure(&Args { host: "xen".into(), mode: m.xen.clone(), ..a.clone() });
    eprintln!("==> host 2 of 2: the KVM host, --mode {}", m.kvm);
    let kvm_end = kvm::measure(&Args { host: "kvm".into(), mode: m.kvm.clone(), ..a.clone() });
    let mut cols = columns::xen(&m.xen_columns, &xen_end);
    cols.extend(columns::kvm(&m.kvm_columns, &kvm_end));
    let rows = side::rows(&cols);
    println!("\n{}", side::render::totals(&cols, &rows));
    println!("\n{}", side::render::reasons(&cols, &rows));
    println!("{}", side::render::notes(&cols));
    let path = report::write_json(&a.results, "side-by-side", &side::render::json(&cols, &rows))?;
    println!("results written to {}", path.display());
    verdict(&xen_end, &kvm_end)
}

/// Whether the combined run counts: each host's own verdict, or its failure, named by host.
fn verdict(
    xen_end: &Result<xen::XenEnd, String>,
    kvm_end: &Result<Vec<harness::kvm::KvmRun>, String>,
) -> Result<(), String> {
    let xen = xen_end.as_ref().map_err(String::clone).and_then(|e| xen::verdict(&e.runs, e.incomplete.as_ref()));
    let kvm = kvm_end.as_ref().map_err(String::clone).and_then(|r| kvm::verdict(r));
    let failed: Vec<String> = [("the Xen host", xen), ("the KVM host", kvm)]
        .into_iter()
        .filter_map(|(host, r)| r.err().map(|e| format!("{host}: {e}")))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_split_between_the_hosts_in_column_order() {
        let m = modes("hybrid,hvm").unwrap();
        assert_eq!((m.xen.as_str(), m.kvm.as_str()), ("hvm,hybrid", "hvm,hybrid"));
        let m = modes("pv,hybrid").unwrap();
        assert_eq!((m.xen_columns, m.kvm_columns), (vec!["hybrid", "pv"], vec!["hybrid"]));
        let all = modes("all").unwrap();
        assert_eq!((all.xen.as_str(), all.xen_columns.len(), all.kvm_columns), ("all", 4, vec!["hvm", "hybrid"]));
    }

    #[test]
    fn nonsense_modes_are_refused_naming_what_is_wrong() {
        assert!(modes("pvh").unwrap_err().contains("the KVM host has no pvh or pv mode"));
        assert!(modes("hvm,hvm").unwrap_err().contains("hvm is named twice"));
        assert!(modes("hvm,auto").unwrap_err().contains("'auto' is none of them"));
        assert!(modes("").unwrap_err().contains("'' is none of them"));
        assert!(modes("all,hvm").is_err());
    }

    #[test]
    fn a_failed_host_fails_the_run_by_name() {
        let e = verdict(&Err("the Xen host run failed (exit status: 1)".into()), &Ok(Vec::new())).unwrap_err();
        assert_eq!(e, "the Xen host: the Xen host run failed (exit status: 1)");
        assert!(verdict(&Err("x".into()), &Err("y".into())).unwrap_err().contains("the KVM host: y"));
    }
}
