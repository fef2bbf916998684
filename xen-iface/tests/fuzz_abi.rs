//! Seeded fuzzing of the rest of the guest ABI in `xen-iface`: the grant table against
//! a Xen that sets and clears the peer's in-use bits anywhere, the event channel scan over
//! random bitmaps with Xen raising ports meanwhile, the pvclock reader against a writer
//! racing its accesses and the scaling arithmetic, the CPUID leaves, the start-info
//! structure, and the trace markers.
//!
//! Each is checked against the header it mirrors (a model written here) where the answer
//! is exact, and for the properties that hold whatever the input otherwise: no panic,
//! accesses only inside the shared page and to the guest's own parts of it, bounded work,
//! typed errors, and round trips where there is an encoder. See `fuzz/mod.rs` for the
//! seed, budget and replay.

mod fakemem;
mod fuzz;
mod regressions;

use fakemem::CheckedPage;
use fuzz::{run, Rng};
use std::collections::BTreeSet;
use xen_iface::cpuid::{hvm_feature, leaf, CpuidError, Regs, XenCpuidInfo, XEN_SIGNATURE};
use xen_iface::events::{self, EVTCHN_MASK, EVTCHN_PENDING, NR_PORTS, PENDING_SEL, UPCALL_PENDING, VCPU_INFO_SIZE};
use xen_iface::grant::*;
use xen_iface::pvclock::{self, scale_delta, TimeInfo, Torn, TIME_INFO_SIZE};
use xen_iface::start_info::{
    until_nul, HvmMemmapEntry, HvmStartInfo, Region, StartInfoError, MEMMAP_MAX_ENTRIES, XEN_HVM_START_MAGIC_VALUE,
};
use xen_iface::trace::*;

/// The state of one reference in the model of a grant table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ref {
    Free,
    Granted,
    Revoking,
}

/// One grant table case with `N` references of bookkeeping.
fn grant_case<const N: usize>(rng: &mut Rng) {
    let len = if rng.coin() { 4096 } else { 8 * rng.index(N + 4) + rng.index(8) };
    let page = CheckedPage::from_bytes(rng.bytes(len));
    let usable = N.min(len / ENTRY_SIZE);
    let first = NR_RESERVED_ENTRIES as usize;
    let reserved = page.snapshot()[..(first * ENTRY_SIZE).min(len)].to_vec();
    page.own_only(first * ENTRY_SIZE..usable.max(first) * ENTRY_SIZE);
    page.budget(N + 8);
    let mut t = GrantTable::<N>::new(&page);
    let mut model = vec![Ref::Free; usable.max(first)];
    let usable_refs = first..usable.max(first);
    for r in usable_refs.clone() {
        assert_eq!(page.get_u64(r * ENTRY_SIZE), 0, "entry {r} cleared");
    }
    let honest_xen = rng.coin();
    for _ in 0..rng.range(1, 200) {
        // Xen (or a hostile peer through it) sets and clears the in-use bits.
        if rng.coin() && usable > first {
            let r = rng.range(first as u64, usable as u64 - 1) as usize;
            let off = r * ENTRY_SIZE;
            let e = GrantEntryV1::from_u64(page.get_u64(off));
            let bit = *rng.pick(&[GTF_READING, GTF_WRITING]);
            if rng.coin() {
                if !honest_xen || e.flags & GTF_TYPE_MASK == GTF_PERMIT_ACCESS {
                    page.put_u16(off, e.flags | bit);
                }
            } else {
                page.put_u16(off, e.flags & !bit);
            }
            if !honest_xen && rng.one_in(8) {
                page.put_u64(off, rng.next_u64()); // anything at all
            }
        }
        let live = |m: &[Ref]| m.iter().filter(|s| **s != Ref::Free).count();
        let free = |m: &[Ref]| m[first..].iter().filter(|s| **s == Ref::Free).count();
        page.budget(16);
        if rng.coin() {
            let frame = if rng.one_in(10) { rng.edge_u64() } else { rng.below(1 << 32) };
            let (domid, ro) = (rng.u16(), rng.coin());
            match t.grant(&page, domid, frame, ro) {
                Ok(g) => {
                    assert!(frame <= u32::MAX as u64);
                    let g = g as usize;
                    assert!(usable_refs.contains(&g) && model[g] == Ref::Free, "granted {g}");
                    model[g] = Ref::Granted;
                    let flags = GTF_PERMIT_ACCESS | if ro { GTF_READONLY } else { 0 };
                    let want = GrantEntryV1 { flags, domid, frame: frame as u32 };
                    assert_eq!(t.entry(&page, g as GrantRef), Some(want));
                }
                Err(GrantError::FrameTooLarge) => assert!(frame > u32::MAX as u64),
                Err(GrantError::Exhausted) => assert!(frame <= u32::MAX as u64 && free(&model) == 0),
                Err(e) => panic!("grant returned {e:?}"),
            }
        } else {
            let held: Vec<usize> = (0..model.len()).filter(|&r| model[r] != Ref::Free).collect();
            let gref = match rng.below(4) {
                0 => rng.edge_u32(),
                1 => rng.below(usable as u64 + 2) as u32,
                _ if held.is_empty() => rng.below(usable as u64 + 2) as u32,
                _ => *rng.pick(&held) as u32,
            };
            let before = (gref as usize).checked_mul(ENTRY_SIZE).filter(|o| o + 8 <= len).map(|o| page.get_u64(o));
            let r = t.revoke(&page, gref);
            let state = model.get(gref as usize).copied().filter(|_| usable_refs.contains(&(gref as usize)));
            match (state, r) {
                (None, Err(GrantError::UnknownRef(g))) => assert_eq!(g, gref),
                (Some(Ref::Free), Err(GrantError::NotGranted(g))) => assert_eq!(g, gref),
                (Some(Ref::Granted | Ref::Revoking), r) => {
                    let old = before.unwrap();
                    let in_use = (GTF_READING | GTF_WRITING) as u64;
                    let now = page.get_u64(gref as usize * ENTRY_SIZE);
                    assert_eq!(now, old & (!0xffff | in_use), "only the guest's flags are cleared");
                    if old & in_use != 0 {
                        assert_eq!(r, Err(GrantError::Busy(gref)));
                        model[gref as usize] = Ref::Revoking;
                    } else {
                        assert_eq!(r, Ok(()));
                        model[gref as usize] = Ref::Free;
                    }
                }
                (state, r) => panic!("revoke {gref} in state {state:?} gave {r:?}"),
            }
        }
        assert_eq!((t.free_count(), t.live()), (free(&model), live(&model)));
        let g = rng.below(usable as u64 + 2) as GrantRef;
        assert_eq!(t.is_live(g), model.get(g as usize).is_some_and(|s| *s != Ref::Free));
        let off = g as usize * ENTRY_SIZE;
        assert_eq!(t.entry(&page, g), (off + 8 <= len).then(|| GrantEntryV1::from_u64(page.get_u64(off))));
    }
    assert_eq!(page.snapshot()[..reserved.len()], reserved[..], "reserved entries untouched");
}

/// The grant table against a Xen that marks entries in use (only granted ones, or any,
/// or scribbles): grants hand out each free, unreserved reference once, with the entry
/// the header describes; revoke succeeds exactly when the peer is not using the page and
/// otherwise keeps the reference; the counts follow; and nothing outside the usable
/// entries is ever written.
#[test]
fn grant_table_hostile() {
    run("grant_table_hostile", regressions::GRANT_TABLE_HOSTILE, |rng| match rng.below(4) {
        0 => grant_case::<4>(rng),
        1 => grant_case::<16>(rng),
        2 => grant_case::<64>(rng),
        _ => grant_case::<512>(rng),
    });
}

/// The event channel scan over random pending, mask and selector bits of a vCPU whose
/// `vcpu_info` is in `shared_info` or its own page: without new events it hands out
/// exactly the pending, unmasked ports of the selected words, in order, once; with Xen
/// raising ports meanwhile it still ends within its rounds, clears each port before its
/// handler and hands out only unmasked ones. The bitmap helpers follow a model.
#[test]
fn event_scan() {
    run("event_scan", regressions::EVENT_SCAN, |rng| {
        let shared = CheckedPage::new(4096);
        let own_page = rng.coin();
        let vcpu_page = CheckedPage::new(4096);
        let vcpu_off = VCPU_INFO_SIZE * rng.index(if own_page { 4096 / VCPU_INFO_SIZE } else { 32 });
        let vcpu = if own_page { &vcpu_page } else { &shared };
        let density = rng.range(0, 64);
        let bits = |rng: &mut Rng| (0..64).fold(0u64, |w, i| w | ((rng.below(64) < density) as u64) << i);
        for w in 0..64 {
            shared.put_u64(EVTCHN_PENDING + 8 * w, bits(rng));
            shared.put_u64(EVTCHN_MASK + 8 * w, if rng.coin() { 0 } else { bits(rng) });
        }
        let sel = if rng.coin() { u64::MAX } else { bits(rng) };
        vcpu.put_u64(vcpu_off + PENDING_SEL, sel);
        vcpu.put_u8(vcpu_off + UPCALL_PENDING, rng.u8() & 1);
        let pending: Vec<u64> = (0..64).map(|w| shared.get_u64(EVTCHN_PENDING + 8 * w)).collect();
        let mask: Vec<u64> = (0..64).map(|w| shared.get_u64(EVTCHN_MASK + 8 * w)).collect();

        let max_rounds = rng.range(0, 6) as u32;
        let raises = if rng.coin() { 0 } else { rng.range(1, 5000) };
        let mut raiser = rng.fork();
        let mut handed = Vec::new();
        let mut raised = 0;
        // Per round: the flag, the selector, two words per selected word, one clear per
        // port; and four accesses per port Xen raises.
        let budget = (max_rounds as usize + 1) * (4 + 64 * 2 + NR_PORTS as usize) + 4 * raises as usize;
        shared.budget(budget);
        vcpu_page.budget(budget);
        let stats = events::scan(&shared, vcpu, vcpu_off, max_rounds, |p| {
            assert!(p < NR_PORTS);
            let (w, b) = (p as usize / 64, p % 64);
            assert_eq!(shared.get_u64(EVTCHN_PENDING + 8 * w) >> b & 1, 0, "port {p} cleared before its handler");
            assert_eq!(shared.get_u64(EVTCHN_MASK + 8 * w) >> b & 1, 0, "masked port {p} handed out");
            handed.push(p);
            if raised < raises && raiser.coin() {
                raised += 1;
                events::raise(&shared, vcpu, vcpu_off, raiser.below(NR_PORTS as u64 + 10) as u32);
            }
        });
        assert_eq!(stats.ports as usize, handed.len());
        assert!(
            stats.rounds <= max_rounds
                && stats.cut_short
                    == (stats.rounds == max_rounds && (max_rounds == 0 || vcpu.get_u8(vcpu_off + UPCALL_PENDING) != 0))
        );
        assert!(handed.len() as u64 <= stats.rounds as u64 * NR_PORTS as u64);
        if raised == 0 {
            // Exactly the pending, unmasked ports of the selected words, in order, once.
            let want: Vec<u32> = if max_rounds == 0 {
                Vec::new()
            } else {
                (0..NR_PORTS)
                    .filter(|&p| {
                        sel >> (p / 64) & 1 == 1
                            && (pending[p as usize / 64] & !mask[p as usize / 64]) >> (p % 64) & 1 == 1
                    })
                    .collect()
            };
            assert_eq!(handed, want);
            if max_rounds > 0 {
                assert_eq!((stats.rounds, stats.cut_short), (1, false));
                assert_eq!(vcpu.get_u64(vcpu_off + PENDING_SEL), 0);
                for w in 0..64 {
                    let cleared = if sel >> w & 1 == 1 { pending[w] & !mask[w] } else { 0 };
                    assert_eq!(shared.get_u64(EVTCHN_PENDING + 8 * w), pending[w] & !cleared, "word {w}");
                }
            }
        }

        // The bitmap helpers against a model, on any port number.
        let page = CheckedPage::new(4096);
        let (mut m_pending, mut m_mask) = (BTreeSet::new(), BTreeSet::new());
        page.own_only(EVTCHN_PENDING..EVTCHN_MASK + 512);
        for _ in 0..rng.len(100) {
            let port = if rng.coin() { rng.below(NR_PORTS as u64) as u32 } else { rng.edge_u32() };
            let ok = port < NR_PORTS;
            page.budget(4);
            match rng.below(5) {
                0 => {
                    assert_eq!(events::mask(&page, port), ok.then_some(()));
                    if ok {
                        m_mask.insert(port);
                    }
                }
                1 => {
                    assert_eq!(events::unmask(&page, port), ok.then(|| m_pending.contains(&port)));
                    m_mask.remove(&port);
                }
                2 => assert_eq!(events::is_pending(&page, port), m_pending.contains(&port)),
                3 => {
                    events::clear_pending(&page, port);
                    m_pending.remove(&port);
                }
                _ if ok => {
                    let (w, b) = (EVTCHN_PENDING + 8 * (port as usize / 64), port % 64);
                    page.put_u64(w, page.get_u64(w) | 1 << b); // Xen marks it pending
                    m_pending.insert(port);
                }
                _ => {}
            }
        }
    });
}

/// Writes `t` as a `vcpu_time_info` at `at`.
fn put_time(b: &mut [u8], at: usize, t: &TimeInfo) {
    b[at..at + 4].copy_from_slice(&t.version.to_le_bytes());
    b[at + 8..at + 16].copy_from_slice(&t.tsc_timestamp.to_le_bytes());
    b[at + 16..at + 24].copy_from_slice(&t.system_time.to_le_bytes());
    b[at + 24..at + 28].copy_from_slice(&t.tsc_to_system_mul.to_le_bytes());
    b[at + 28] = t.tsc_shift as u8;
    b[at + 29] = t.flags;
}

fn random_time(rng: &mut Rng, version: u32) -> TimeInfo {
    TimeInfo {
        version,
        tsc_timestamp: rng.edge_u64(),
        system_time: rng.edge_u64(),
        tsc_to_system_mul: rng.edge_u32(),
        tsc_shift: rng.u8() as i8,
        flags: rng.u8(),
    }
}

/// The pvclock reader against Xen updating the record between (and during) its reads,
/// following the version protocol (odd while writing) or not: it makes at most seven
/// accesses per try, gives up after `tries`, and what it returns is one record Xen
/// published whole, at an even version.
#[test]
fn pvclock_read() {
    run("pvclock_read", regressions::PVCLOCK_READ, |rng| {
        let at = TIME_INFO_SIZE * rng.index(4096 / TIME_INFO_SIZE);
        let version = rng.u32() & !1;
        let first = random_time(rng, version);
        let mut b = rng.bytes(4096);
        put_time(&mut b, at, &first);
        let page = CheckedPage::from_bytes(b);
        page.own(&[]);
        let protocol = rng.coin();
        let published = std::rc::Rc::new(std::cell::RefCell::new(vec![first]));
        let racing = rng.coin();
        if racing {
            // Xen rewrites the record now and then: version odd, fields, version even.
            let (mut w, log) = (rng.fork(), published.clone());
            let odds = w.range(1, 12);
            let mut stage = 0;
            page.set_tamper(Some(Box::new(move |b: &mut [u8]| {
                if !w.one_in(odds) {
                    return;
                }
                let v = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
                if !protocol {
                    let v = w.u32();
                    let t = random_time(&mut w, v);
                    put_time(b, at, &t); // no protocol: torn at any time
                    return;
                }
                stage = (stage + 1) % 3;
                match stage {
                    1 => b[at..at + 4].copy_from_slice(&(v | 1).to_le_bytes()),
                    2 => {
                        let t = random_time(&mut w, v);
                        put_time(b, at, &t);
                    }
                    _ => {
                        let v = (v | 1).wrapping_add(1);
                        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                        let mut t = random_time(&mut w, v);
                        t.tsc_timestamp = u64::from_le_bytes(b[at + 8..at + 16].try_into().unwrap());
                        t.system_time = u64::from_le_bytes(b[at + 16..at + 24].try_into().unwrap());
                        t.tsc_to_system_mul = u32::from_le_bytes(b[at + 24..at + 28].try_into().unwrap());
                        (t.tsc_shift, t.flags) = (b[at + 28] as i8, b[at + 29]);
                        log.borrow_mut().push(t);
                    }
                }
            })));
        }
        let tries = rng.range(0, 8) as u32;
        page.budget(7 * tries as usize);
        match pvclock::read(&page, at, tries) {
            Ok(t) => {
                assert!(tries > 0 && t.version & 1 == 0);
                if protocol {
                    assert!(published.borrow().contains(&t), "{t:?} was never published whole");
                }
            }
            Err(Torn) => assert!(tries == 0 || racing, "a quiet, even record is read at once"),
        }
    });
}

/// The scaling arithmetic on any input: no panic; for a non-positive shift the result is
/// monotonic in the delta and at most `delta * mul >> 32`; and `scale_for` (any nonzero
/// rate) gives Xen's normalised scale, which turns one second of ticks into one second.
#[test]
fn pvclock_scale() {
    run("pvclock_scale", regressions::PVCLOCK_SCALE, |rng| {
        let (d1, d2) = (rng.edge_u64(), rng.edge_u64());
        let (mul, shift) = (rng.edge_u32(), rng.u8() as i8);
        let (a, b) = (scale_delta(d1.min(d2), mul, shift), scale_delta(d1.max(d2), mul, shift));
        if shift <= 0 {
            assert!(a <= b, "not monotonic: {d1} {d2} {mul} {shift}");
            assert!(b as u128 <= (d1.max(d2) as u128 * mul as u128) >> 32);
        }
        let t = random_time(rng, 0);
        let _ = t.ns_at(rng.edge_u64());
        let hz = rng.edge_u64().max(1); // scale_for(0) is None: see the regression test
        let (mul, shift) = scale_for(hz).expect("a nonzero rate has a scale");
        assert!(mul >= 1 << 31, "{hz} Hz: mul {mul} not normalised");
        let ns = scale_delta(hz, mul, shift);
        assert!(ns.abs_diff(1_000_000_000) <= 2, "{hz} Hz: one second is {ns} ns");
    });
}

/// `TimeInfo::scale_for`, called from one place so that a change of its signature (it
/// became an `Option` when its zero case was fixed) changes one line here.
fn scale_for(hz: u64) -> Option<(u32, i8)> {
    TimeInfo::scale_for(hz)
}

/// Regression: `TimeInfo::scale_for(0)` does not return: `while tps <= target { tps <<= 1;
/// shift += 1 }` never ends with `tps == 0`, so a debug build panics when the `i8` shift
/// overflows (pvclock.rs, `shift += 1`) and a release build spins for ever. Not reachable
/// from the kernel today (the function checks the arithmetic against Xen's numbers), but
/// public. Fixed: 0 Hz has no scale (`None`).
#[test]
fn regression_scale_for_zero_returns() {
    use std::sync::mpsc::RecvTimeoutError;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(scale_for(0)).unwrap());
    match rx.recv_timeout(std::time::Duration::from_secs(2)) {
        Ok(scale) => assert_eq!(scale, None),
        Err(RecvTimeoutError::Timeout) => panic!("scale_for(0) did not return within 2 s"),
        Err(RecvTimeoutError::Disconnected) => panic!("scale_for(0) panicked"),
    }
}

/// Xen's CPUID leaves with random registers at any base the kernel scans: the decoder
/// answers exactly what `arch-x86/cpuid.h` says, and never asks for a leaf past the
/// signature leaf's maximum.
#[test]
fn cpuid_decode() {
    run("cpuid_decode", regressions::CPUID_DECODE, |rng| {
        let base = 0x4000_0000 + 0x100 * rng.below(0x101) as u32;
        let max_leaf = match rng.below(3) {
            0 => base + rng.below(8) as u32,
            1 => rng.edge_u32(),
            _ => base + rng.below(0x100) as u32,
        };
        let regs: Vec<Regs> =
            (0..8).map(|_| Regs { eax: rng.edge_u32(), ebx: rng.u32(), ecx: rng.edge_u32(), edx: rng.u32() }).collect();
        let xen = !rng.one_in(5);
        let mut sig = Regs { eax: max_leaf, ebx: XEN_SIGNATURE[0], ecx: XEN_SIGNATURE[1], edx: XEN_SIGNATURE[2] };
        if !xen {
            let v = rng.u32();
            match rng.below(3) {
                0 => sig.ebx = v,
                1 => sig.ecx = v,
                _ => sig.edx = v,
            }
        }
        let signature_ok = [sig.ebx, sig.ecx, sig.edx] == XEN_SIGNATURE;
        let mut asked = Vec::new();
        let r = XenCpuidInfo::decode(base, |l, sub| {
            asked.push((l, sub));
            if l == base {
                sig
            } else {
                l.checked_sub(base).and_then(|i| regs.get(i as usize)).copied().unwrap_or_default()
            }
        });
        if !signature_ok {
            assert_eq!(r, Err(CpuidError::NotXen));
            return;
        }
        if max_leaf < base + leaf::HYPERCALL {
            assert_eq!(r, Err(CpuidError::TooFewLeaves(max_leaf)));
            return;
        }
        let info = r.expect("a complete Xen leaf block");
        assert!(asked.iter().all(|&(l, sub)| sub == 0 && l >= base && l <= max_leaf.max(base)), "{asked:x?}");
        let leaf_regs = |i: u32| regs[i as usize];
        assert_eq!((info.base, info.max_leaf), (base, max_leaf));
        assert_eq!((info.major, info.minor), ((leaf_regs(1).eax >> 16) as u16, leaf_regs(1).eax as u16));
        assert_eq!((info.hypercall_pages, info.hypercall_msr), (leaf_regs(2).eax.max(1), leaf_regs(2).ebx));
        let tsc = (max_leaf >= base + leaf::TSC).then(|| leaf_regs(3).ecx).filter(|&k| k != 0);
        assert_eq!(info.tsc_khz, tsc);
        let hvm = (max_leaf >= base + leaf::HVM).then(|| leaf_regs(4));
        let f = hvm.map_or(0, |h| h.eax);
        assert_eq!(info.hvm_features, f);
        assert_eq!(info.vcpu_id, hvm.filter(|_| f & hvm_feature::VCPU_ID_PRESENT != 0).map(|h| h.ebx));
        assert_eq!(info.domid, hvm.filter(|_| f & hvm_feature::DOMID_PRESENT != 0).map(|h| h.ecx as u16));
        let flag = 1 << rng.below(32);
        assert_eq!(info.has_hvm_feature(flag), f & flag != 0);
    });
}

/// The start-info structure as the loader leaves it, any bytes: `from_bytes` reads the
/// header's layout, `validate` accepts exactly the magic value, and the bounded views
/// (`memmap`, `cmdline`) hand out only regions that lie wholly below the mapped limit,
/// with no address arithmetic wrapping, and a memory map of at most
/// `MEMMAP_MAX_ENTRIES`; `until_nul` cuts at the first NUL.
#[test]
fn start_info() {
    run("start_info", regressions::START_INFO, |rng| {
        let mut b = [0u8; HvmStartInfo::SIZE];
        for w in b.chunks_mut(8) {
            let v = rng.edge_u64().to_le_bytes();
            w.copy_from_slice(&v[..w.len()]);
        }
        if rng.coin() {
            b[..4].copy_from_slice(&XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
        }
        if rng.coin() {
            let n = rng.range(0, MEMMAP_MAX_ENTRIES as u64 + 2) as u32;
            b[48..52].copy_from_slice(&n.to_le_bytes());
        }
        let si = HvmStartInfo::from_bytes(&b);
        let (u32_at, u64_at) = (
            |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()),
            |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()),
        );
        assert_eq!((si.magic, si.version, si.flags, si.nr_modules), (u32_at(0), u32_at(4), u32_at(8), u32_at(12)));
        assert_eq!((si.modlist_paddr, si.cmdline_paddr, si.rsdp_paddr), (u64_at(16), u64_at(24), u64_at(32)));
        assert_eq!((si.memmap_paddr, si.memmap_entries, si.reserved), (u64_at(40), u32_at(48), u32_at(52)));
        let magic_ok = si.magic == XEN_HVM_START_MAGIC_VALUE;
        assert_eq!(si.validate(), if magic_ok { Ok(()) } else { Err(StartInfoError::BadMagic(si.magic)) });

        let limit = if rng.coin() { rng.edge_u64() } else { si.memmap_paddr.wrapping_add(rng.below(1 << 16)) };
        let absent = si.version == 0 || si.memmap_paddr == 0;
        let bytes = si.memmap_entries as u64 * HvmMemmapEntry::SIZE as u64;
        let reach = si.memmap_paddr.checked_add(bytes).is_some_and(|end| end <= limit);
        match si.memmap(limit) {
            Ok(None) => assert!(absent),
            Ok(Some(r)) => {
                assert!(!absent && si.memmap_entries <= MEMMAP_MAX_ENTRIES && reach);
                assert_eq!(r, Region { addr: si.memmap_paddr, len: si.memmap_entries as usize });
            }
            Err(StartInfoError::MemmapTooLong(n)) => {
                assert!(!absent && n == si.memmap_entries && n > MEMMAP_MAX_ENTRIES)
            }
            Err(StartInfoError::OutOfReach { what, addr }) => {
                assert!(!absent && what == "memory map" && addr == si.memmap_paddr && !reach)
            }
            Err(e) => panic!("memmap gave {e:?}"),
        }
        assert!(si.memmap_len() <= si.memmap_entries as usize && (!absent || si.memmap_len() == 0));

        let limit = if rng.coin() { rng.edge_u64() } else { si.cmdline_paddr.wrapping_add(rng.below(1 << 12)) };
        let max = rng.len(4096);
        match si.cmdline(max, limit) {
            Ok(None) => assert_eq!(si.cmdline_paddr, 0),
            Ok(Some(r)) => {
                assert!(si.cmdline_paddr != 0 && r.addr == si.cmdline_paddr && r.len <= max);
                assert!(r.addr.checked_add(r.len as u64).is_some_and(|end| end <= limit), "{r:?} past {limit:#x}");
                assert_eq!(r.len as u64, (max as u64).min(limit - r.addr), "the whole window that fits");
            }
            Err(StartInfoError::OutOfReach { what, addr }) => {
                assert!(what == "command line" && addr == si.cmdline_paddr && addr != 0 && addr >= limit)
            }
            Err(e) => panic!("cmdline gave {e:?}"),
        }

        let text = rng.some_bytes(40);
        let cut = until_nul(&text);
        assert!(text.starts_with(cut) && !cut.contains(&0) && text.get(cut.len()).is_none_or(|&b| b == 0));
        let e: [u8; HvmMemmapEntry::SIZE] = rng.bytes(HvmMemmapEntry::SIZE).try_into().unwrap();
        let m = HvmMemmapEntry::from_bytes(&e);
        let want = (u64::from_le_bytes(e[..8].try_into().unwrap()), u64::from_le_bytes(e[8..16].try_into().unwrap()));
        assert_eq!(
            (m.addr, m.size, m.kind.to_le_bytes(), m.reserved.to_le_bytes()),
            (want.0, want.1, le4(&e[16..]), le4(&e[20..]))
        );
    });
}

/// The first four bytes of `b`.
fn le4(b: &[u8]) -> [u8; 4] {
    b[..4].try_into().unwrap()
}

/// Phase markers: `encode_marker` then `decode_marker` gives back the iterations and the
/// name (cut to `NAME_MAX`) for any printable name; `decode_marker` of any bytes gives a
/// printable name of at most `NAME_MAX` bytes, and `None` exactly when there is no room
/// for the iterations; the CPUID markers round-trip and no other leaf decodes as one.
#[test]
fn trace_markers() {
    fuzz::replay_inputs("trace_markers", regressions::TRACE_MARKERS, |extra| check_decoded(extra));
    run("trace_markers", &[], |rng| {
        let printable = |rng: &mut Rng| char::from(rng.range(0x20, 0x7e) as u8);
        let name: String = (0..rng.len(30)).map(|_| printable(rng)).collect();
        let iterations = rng.edge_u64();
        let m = encode_marker(&name, iterations);
        assert!(m.len & 3 == 0 && m.len >= 8 && m.len <= EXTRA_MAX);
        let (n, len, it) = decode_marker(&m.bytes[..m.len]).expect("room for the iterations");
        assert_eq!((&n[..len], it), (&name.as_bytes()[..name.len().min(NAME_MAX)], iterations));
        // Any name, any bytes: no panic, and decoding stays printable.
        let any: String = fuzz::mutate_str(rng, &name, &["\0", "é", "\u{7f}"]);
        let m = encode_marker(&any, iterations);
        check_decoded(&m.bytes[..m.len]);
        let mut extra = m.bytes[..m.len].to_vec();
        fuzz::mutate(rng, &mut extra, &[]);
        check_decoded(&extra);
        // CPUID markers.
        let leaf = match rng.below(3) {
            0 => CPUID_MARK_BEGIN + rng.below(0x200) as u32,
            1 => rng.edge_u32(),
            _ => CPUID_MARK_BEGIN - 8 + rng.below(0x210) as u32,
        };
        let sub = rng.u32();
        let m = decode_cpuid_marker(leaf, sub);
        let (edge, id) = match leaf.wrapping_sub(CPUID_MARK_BEGIN) {
            id if (id as usize) < CPUID_MARK_NAMES.len() => (Some(PhaseEdge::Begin), id),
            _ => match leaf.wrapping_sub(CPUID_MARK_END) {
                id if (id as usize) < CPUID_MARK_NAMES.len() => (Some(PhaseEdge::End), id),
                _ => (None, 0),
            },
        };
        match (edge, m) {
            (None, None) => {}
            (Some(edge), Some(m)) => {
                assert_eq!((m.edge, m.id, m.name, m.value), (edge, id, CPUID_MARK_NAMES[id as usize], sub));
                assert_eq!(cpuid_marker_leaf(edge, m.name), Some(leaf));
                assert_eq!(PhaseEdge::from_event(edge.event()), Some(edge));
            }
            (want, got) => panic!("leaf {leaf:#x}: want {want:?}, got {got:?}"),
        }
        let e = rng.u16();
        assert_eq!(PhaseEdge::from_event(e).map(PhaseEdge::event), Some(e).filter(|e| (0x100..=0x101).contains(e)));
    });
}

/// The properties of `decode_marker` on any extra data.
fn check_decoded(extra: &[u8]) {
    match decode_marker(extra) {
        None => assert!(extra.len() < 8),
        Some((name, len, it)) => {
            assert!(extra.len() >= 8 && len <= NAME_MAX);
            assert_eq!(it, u64::from_le_bytes(extra[..8].try_into().unwrap()));
            assert!(name[..len].iter().all(|&b| b.is_ascii_graphic() || b == b' '), "{:?}", &name[..len]);
            let body = &extra[8..];
            let want = body.iter().take(NAME_MAX).position(|&b| b == 0).unwrap_or(body.len().min(NAME_MAX));
            assert_eq!(len, want, "the name ends at the first NUL or NAME_MAX");
        }
    }
}
