//! Unit tests of the whole parser, on synthetic traces and on real samples.
//!
//! This module builds synthetic `xentrace` files ([`Builder`] and the record helpers below);
//! `analysis` checks attribution, phases, details, markers, lost records and warnings on them,
//! `malformed` checks that bad input is an error and never a panic, `real` checks the samples
//! in `tests/data/xentrace/`, and `trim` checks `hytrace trim`. Tests of one layer alone live
//! next to it (`record.rs`, `merge.rs`, `svm.rs`).

use super::record::CPU_CHANGE_HEADER;
use super::*;

mod analysis;
mod malformed;
mod real;
mod trim;

/// Builds xentrace files: windows of records.
#[derive(Default)]
struct Builder {
    bytes: Vec<u8>,
}

fn rec(event: u32, tsc: Option<u64>, extra: &[u32]) -> Vec<u8> {
    assert!(extra.len() <= 7);
    let mut h = event | ((extra.len() as u32) << 28);
    if tsc.is_some() {
        h |= 0x8000_0000;
    }
    let mut v = h.to_le_bytes().to_vec();
    if let Some(t) = tsc {
        v.extend_from_slice(&(t as u32).to_le_bytes());
        v.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
    }
    for w in extra {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

fn switch(tsc: u64, prev: (u32, u32), next: (u32, u32)) -> Vec<u8> {
    rec(TRC_SCHED_SWITCH, Some(tsc), &[prev.0, prev.1, next.0, next.1])
}

fn exit(tsc: u64, code: u32) -> Vec<u8> {
    rec(TRC_HVM_VMEXIT, Some(tsc), &[code, 0x1000])
}

fn entry(tsc: u64) -> Vec<u8> {
    rec(TRC_HVM_VMENTRY, Some(tsc), &[])
}

fn marker(tsc: Option<u64>, ev: u32, iterations: u64, name: &str) -> Vec<u8> {
    let mut b = [0u8; 28];
    b[..4].copy_from_slice(&(iterations as u32).to_le_bytes());
    b[4..8].copy_from_slice(&((iterations >> 32) as u32).to_le_bytes());
    b[8..8 + name.len()].copy_from_slice(name.as_bytes());
    let words: Vec<u32> = b.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    rec(TRC_GUEST | ev, tsc, &words)
}

impl Builder {
    fn window(mut self, cpu: u32, recs: &[Vec<u8>]) -> Self {
        let body: Vec<u8> = recs.concat();
        self.bytes.extend_from_slice(&CPU_CHANGE_HEADER.to_le_bytes());
        self.bytes.extend_from_slice(&cpu.to_le_bytes());
        self.bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&body);
        self
    }
}

/// Marker hypercall: VMMCALL exit, the marker record, VM entry.
fn hypercall_marker(t: u64, ev: u32, iterations: u64, name: &str) -> Vec<Vec<u8>> {
    vec![exit(t, SVM_EXIT_VMMCALL), marker(Some(t + 1), ev, iterations, name), entry(t + 2)]
}

/// One pCPU: dom0 -> dom 3, a 3-iteration CPUID phase, then an INTR outside it.
fn simple_trace() -> Vec<u8> {
    let mut recs = vec![switch(10, (0, 0), (3, 0)), exit(20, 0x7b), entry(21)];
    recs.extend(hypercall_marker(30, GUEST_PHASE_BEGIN, 3, "cpuid"));
    for k in 0..3 {
        recs.push(exit(40 + 10 * k, 0x72));
        recs.push(entry(41 + 10 * k));
    }
    recs.push(exit(70, 0x60));
    recs.push(entry(71));
    recs.extend(hypercall_marker(80, GUEST_PHASE_END, 3, "cpuid"));
    recs.push(exit(90, 0x60));
    recs.push(switch(100, (3, 0), (DOMID_IDLE as u32, 0)));
    Builder::default().window(0, &recs).bytes
}

fn msr_write(msr: u32, value: u64) -> Vec<u8> {
    rec(TRC_HVM_MSR_WRITE, None, &[msr, value as u32, (value >> 32) as u32])
}

fn npf(gpa: u64) -> Vec<u8> {
    let (lo, hi) = (gpa as u32, (gpa >> 32) as u32);
    rec(TRC_HVM_NPF, None, &[lo, hi, !0, !0, 0, 4])
}
