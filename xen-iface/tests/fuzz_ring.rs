//! Seeded fuzzing of the two generic rings a guest drives: the shared request/response
//! ring of `io/ring.h` ([`xen_iface::ring::FrontRing`], at several slot sizes) and the
//! PV console's output ring ([`xen_iface::console::ConsoleOut`]), each against a back
//! end that is honest in some cases and, in the others, writes random indexes, events and
//! slot contents between the front end's calls and, in some, between its single accesses.
//!
//! Properties: the front end never panics, stays inside the page and its own parts of it,
//! makes a bounded number of accesses per call, accepts exactly the indexes the protocol
//! allows (and is unchanged by one it refuses), never hands out more responses than it
//! published requests, and carries every byte intact while the back end behaves. See
//! `fuzz/mod.rs` for the seed, budget and replay.

mod fakemem;
mod fuzz;
mod regressions;

use fakemem::CheckedPage;
use fuzz::{run, Rng};
use std::collections::VecDeque;
use xen_iface::console::{Broken, ConsoleOut, INTERFACE_SIZE, OUT, OUT_CONS, OUT_PROD, OUT_SIZE};
use xen_iface::ring::{FrontRing, RingError, PAGE_SIZE, PVT, REQ_EVENT, REQ_PROD, RING, RSP_EVENT, RSP_PROD};

/// A value a hostile peer writes for an index: anything, or close to `around`.
fn index_near(rng: &mut Rng, around: u32, spread: u32) -> u32 {
    if rng.one_in(3) {
        rng.edge_u32()
    } else {
        around.wrapping_add(rng.range(0, 2 * spread as u64 + 2) as u32).wrapping_sub(spread + 1)
    }
}

/// A tamper hook that now and then nudges the u32 at one of `offsets` (a peer racing
/// the front end's accesses).
fn racing_peer(rng: &mut Rng, offsets: &'static [usize]) -> fakemem::Tamper {
    let mut rng = rng.fork();
    let odds = rng.range(2, 40);
    Box::new(move |b: &mut [u8]| {
        if rng.one_in(odds) {
            let at = *rng.pick(offsets);
            let v = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            let v = if rng.one_in(4) { rng.edge_u32() } else { v.wrapping_add(rng.range(0, 4) as u32).wrapping_sub(2) };
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    })
}

/// One case of the shared ring with `SLOT`-byte slots.
fn front_ring_case<const SLOT: usize>(rng: &mut Rng) {
    let size = FrontRing::<SLOT>::SIZE;
    // Garbage before init; a region shorter than a page is refused.
    let len = if rng.one_in(10) { rng.index(PAGE_SIZE) } else { PAGE_SIZE + 8 * rng.len(8) };
    let page = CheckedPage::from_bytes(rng.bytes(len));
    page.budget(64);
    let Ok(mut ring) = FrontRing::<SLOT>::init(&page) else {
        assert!(len < PAGE_SIZE, "init refused a {len}-byte region");
        return;
    };
    assert!(len >= PAGE_SIZE);
    let header: Vec<u32> = (0..RING).step_by(4).map(|o| page.get_u32(o)).collect();
    assert_eq!(header[..4], [0, 1, 0, 1], "req_prod, req_event, rsp_prod, rsp_event");
    assert!(header[PVT / 4..].iter().all(|&w| w == 0));
    assert_eq!((ring.size(), ring.free_requests(), ring.in_flight()), (size, size, 0));
    page.own(&[REQ_PROD..REQ_PROD + 4, RSP_EVENT..RSP_EVENT + 4, RING..RING + size as usize * SLOT]);

    let slot = |i: u32| RING + (i % size) as usize * SLOT;
    let hostility = if rng.one_in(3) { 0 } else { rng.range(1, 10) };
    let racing = hostility != 0 && rng.one_in(3);
    if racing {
        page.set_tamper(Some(racing_peer(rng, &[RSP_PROD, REQ_EVENT])));
    }
    // The front end's indexes as the test sees them, and the back end's.
    let (mut published, mut accepted) = (0u32, 0u32);
    let (mut back_cons, mut back_prod) = (0u32, 0u32);
    let mut requests: VecDeque<Vec<u8>> = VecDeque::new(); // pushed, not yet consumed by the back end
    let mut responses: VecDeque<Vec<u8>> = VecDeque::new(); // produced, not yet consumed by the front end
    let mut honest = hostility == 0;
    for _ in 0..rng.range(1, 120) {
        // The back end.
        if hostility != 0 && rng.one_in(hostility) {
            honest = false;
            match rng.below(4) {
                0 => page.put_u32(RSP_PROD, index_near(rng, back_prod, size + 1)),
                1 => page.put_u32(REQ_EVENT, rng.edge_u32()),
                2 => {
                    let at = slot(rng.u32()) + rng.index(SLOT);
                    page.put_u8(at, rng.u8());
                }
                _ => back_prod = back_prod.wrapping_add(rng.range(1, 3) as u32),
            }
        } else if rng.coin() {
            // Consume some requests, answer them in their slots, publish the answers.
            let avail = page.get_u32(REQ_PROD).wrapping_sub(back_cons).min(size);
            for _ in 0..rng.range(0, avail as u64) {
                let got: Vec<u8> = (0..SLOT).map(|i| page.get_u8(slot(back_cons) + i)).collect();
                if honest {
                    assert_eq!(Some(got), requests.pop_front(), "request {back_cons} intact");
                }
                back_cons = back_cons.wrapping_add(1);
                let rsp = rng.bytes(SLOT);
                page.put_bytes(slot(back_prod), &rsp);
                responses.push_back(rsp);
                back_prod = back_prod.wrapping_add(1);
            }
            page.put_u32(REQ_EVENT, back_cons.wrapping_add(1));
            if rng.coin() || honest {
                page.put_u32(RSP_PROD, back_prod);
            }
        }
        // The front end.
        let (cons_before, pvt_before) = (ring.rsp_cons(), ring.req_prod_pvt());
        page.budget(SLOT + 8);
        match rng.below(5) {
            0 => {
                let fill = rng.bytes(SLOT);
                let r = ring.push_request_with(&page, |s| s.copy_from_slice(&fill));
                if pvt_before.wrapping_sub(cons_before) == size {
                    assert_eq!(r, Err(RingError::Full));
                } else {
                    assert_eq!(r, Ok(pvt_before));
                    requests.push_back(fill);
                }
            }
            1 => {
                let event = page.get_u32(REQ_EVENT);
                let notify = ring.push_requests_and_check_notify(&page);
                let new = ring.req_prod_pvt();
                assert_eq!(page.get_u32(REQ_PROD), new, "published");
                if !racing {
                    assert_eq!(notify, new.wrapping_sub(event) < new.wrapping_sub(published), "req_event {event}");
                }
                published = new;
            }
            2 | 3 => {
                let prod = page.get_u32(RSP_PROD);
                match ring.poll_responses(&page) {
                    Ok(n) => {
                        assert!(n <= published.wrapping_sub(cons_before), "{n} responses to {published} requests");
                        if !racing {
                            assert!(prod.wrapping_sub(accepted) <= published.wrapping_sub(accepted));
                            assert_eq!(n, prod.wrapping_sub(cons_before));
                        }
                        accepted = cons_before.wrapping_add(n);
                    }
                    Err(e) => {
                        assert!(!honest, "an honest back end refused: {e:?}");
                        let ahead = if racing { None } else { Some(prod.wrapping_sub(accepted)) };
                        match e {
                            RingError::Backwards { prod: p, seen } => {
                                assert!(ahead.is_none_or(|a| (a as i32) < 0 && p == prod && seen == accepted))
                            }
                            RingError::Overflow { prod: p, cons, req_prod } => assert!(
                                ahead.is_none_or(|a| a > published.wrapping_sub(accepted) && p == prod)
                                    && cons == cons_before
                                    && req_prod == published
                            ),
                            other => panic!("poll_responses returned {other:?}"),
                        }
                    }
                }
                // Take some of what was accepted.
                for _ in 0..rng.range(0, 4) {
                    page.budget(SLOT + 8);
                    let before = ring.rsp_cons();
                    match ring.next_response(&page) {
                        Some(r) => {
                            assert_ne!(before, accepted, "a response beyond rsp_prod");
                            if honest {
                                assert_eq!(Some(r.to_vec()), responses.pop_front(), "response {before} intact");
                            }
                        }
                        None => assert_eq!(before, accepted, "an accepted response withheld"),
                    }
                }
            }
            _ => match ring.final_check_for_responses(&page) {
                Ok(ready) => {
                    if !racing && !ready {
                        assert_eq!(page.get_u32(RSP_EVENT), ring.rsp_cons().wrapping_add(1), "asks for the next one");
                    }
                    // What it accepted is no longer known exactly when racing: re-learn it.
                    let mut n = 0;
                    loop {
                        page.budget(SLOT + 8);
                        let Some(r) = ring.next_response(&page) else { break };
                        n += 1;
                        if honest {
                            assert_eq!(Some(r.to_vec()), responses.pop_front(), "response intact");
                        }
                    }
                    assert_eq!(ready, n > 0, "final check said {ready}, {n} ready");
                    accepted = ring.rsp_cons();
                }
                Err(e) => assert!(!honest && matches!(e, RingError::Backwards { .. } | RingError::Overflow { .. })),
            },
        }
        // Invariants whatever the back end did.
        let in_flight = ring.req_prod_pvt().wrapping_sub(ring.rsp_cons());
        assert_eq!(ring.in_flight(), in_flight);
        assert!(in_flight <= size && ring.free_requests() == size - in_flight);
        assert!(
            ring.rsp_cons().wrapping_sub(cons_before) <= published.wrapping_sub(cons_before),
            "consumed unpublished"
        );
        assert!(published.wrapping_sub(ring.rsp_cons()) <= in_flight, "rsp_cons past req_prod");
    }
}

/// The shared ring at slot sizes 4 (512 slots), 8 and 12 (256, as netif), 112 (32),
/// 1024 (2) and 4032 (1) against an honest, a hostile and a racing back end.
#[test]
fn front_ring_hostile() {
    run("front_ring_hostile", regressions::FRONT_RING_HOSTILE, |rng| match rng.below(6) {
        0 => front_ring_case::<4>(rng),
        1 => front_ring_case::<8>(rng),
        2 => front_ring_case::<12>(rng),
        3 => front_ring_case::<112>(rng),
        4 => front_ring_case::<1024>(rng),
        _ => front_ring_case::<4032>(rng),
    });
}

/// The console writer against xenconsoled: `attach` accepts exactly the indexes that
/// leave at most a ring in flight, `write` exactly the consumer indexes that move
/// forwards and not past `out_prod` (the byte ring's rule), both take exactly the bytes
/// there is room for, store only to `out` and `out_prod`, and the honest consumer reads back
/// exactly what was written.
#[test]
fn console_hostile() {
    run("console_hostile", regressions::CONSOLE_HOSTILE, |rng| {
        let len = if rng.coin() { INTERFACE_SIZE } else { 4096 };
        let page = CheckedPage::from_bytes(rng.bytes(len));
        let prod = rng.edge_u32();
        let cons = index_near(rng, prod, OUT_SIZE as u32 + 1);
        page.put_u32(OUT_PROD, prod);
        page.put_u32(OUT_CONS, cons);
        page.own(&[]);
        page.budget(8);
        let Ok(mut w) = ConsoleOut::attach(&page) else {
            assert!(prod.wrapping_sub(cons) as usize > OUT_SIZE, "refused {prod}/{cons}");
            return;
        };
        assert!(prod.wrapping_sub(cons) as usize <= OUT_SIZE, "accepted {prod}/{cons}");
        page.own(&[OUT..OUT + OUT_SIZE, OUT_PROD..OUT_PROD + 4]);
        let hostility = if rng.one_in(3) { 0 } else { rng.range(1, 10) };
        let racing = hostility != 0 && rng.one_in(3);
        if racing {
            page.set_tamper(Some(racing_peer(rng, &[OUT_CONS])));
        }
        // Bytes left by the earlier stage, then ours; what the consumer read.
        let mut stream: Vec<u8> =
            (0..prod.wrapping_sub(cons)).map(|i| page.get_u8(OUT + cons.wrapping_add(i) as usize % OUT_SIZE)).collect();
        let (mut prod, mut read, mut back_cons) = (prod, Vec::new(), cons);
        // The consumer index the writer last accepted (unknown once a racing peer changed
        // it during an accepted call).
        let mut cons_seen = Some(cons);
        let mut honest = hostility == 0;
        for _ in 0..rng.range(1, 60) {
            if hostility != 0 && rng.one_in(hostility) {
                honest = false;
                page.put_u32(OUT_CONS, index_near(rng, prod, OUT_SIZE as u32 + 1));
            } else if rng.coin() {
                // xenconsoled takes some bytes.
                let avail = page.get_u32(OUT_PROD).wrapping_sub(back_cons).min(OUT_SIZE as u32);
                for _ in 0..rng.range(0, avail as u64) {
                    read.push(page.get_u8(OUT + back_cons as usize % OUT_SIZE));
                    back_cons = back_cons.wrapping_add(1);
                }
                page.put_u32(OUT_CONS, back_cons);
            }
            let bytes = rng.some_bytes(3000);
            let cons = page.get_u32(OUT_CONS);
            page.budget(OUT_SIZE + 8);
            let r = w.write(&page, &bytes);
            let used = prod.wrapping_sub(cons) as usize;
            match r {
                Ok(n) => {
                    if !racing {
                        assert!(used <= OUT_SIZE, "accepted out_cons {cons} with out_prod {prod}");
                        if let Some(s) = cons_seen {
                            assert!(cons.wrapping_sub(s) <= prod.wrapping_sub(s), "accepted out_cons {cons} after {s}");
                        }
                        assert_eq!(n, (OUT_SIZE - used).min(bytes.len()));
                    }
                    cons_seen = if racing { None } else { Some(cons) };
                    assert!(n <= bytes.len() && n <= OUT_SIZE);
                    stream.extend_from_slice(&bytes[..n]);
                    prod = prod.wrapping_add(n as u32);
                }
                Err(Broken { prod: p, cons: c }) => {
                    assert!(!honest && p == prod);
                    if let Some(s) = cons_seen {
                        assert!(c.wrapping_sub(s) > p.wrapping_sub(s), "refused out_cons {c} within [{s}, {p}]");
                    }
                    assert!(racing || c == cons);
                }
            }
            assert_eq!(page.get_u32(OUT_PROD), prod, "out_prod published");
            assert_eq!(w.drained(&page), page.get_u32(OUT_CONS) == prod);
            if honest {
                assert!(stream.starts_with(&read), "the console carries bytes intact");
            }
        }
    });
}
