//! Malformed input: errors, never panics.

use super::*;

#[test]
fn empty_file_is_an_empty_trace() {
    let t = parse(&[]).unwrap();
    assert!(t.records().is_empty());
    assert!(t.exits().is_empty());
    assert!(t.all_phases().is_empty());
}

#[test]
fn truncation_is_an_error_not_a_panic() {
    let bytes = simple_trace();
    for len in 1..bytes.len() {
        let cut = &bytes[..len];
        let err = parse(cut).unwrap_err();
        assert!(matches!(err, TraceError::Truncated { .. }), "len {len}: {err}");
        let (partial, e) = parse_lenient(cut);
        assert_eq!(e, Some(err));
        assert!(partial.records().len() <= 19);
    }
    // parse_lenient keeps the complete records of a cut window.
    let (partial, _) = parse_lenient(&bytes[..bytes.len() - 3]);
    assert_eq!(partial.records().len(), 18);
    assert_eq!(partial.exits_by_domain()[&3][&0x72], 3);
}

#[test]
fn bogus_sizes_and_headers_are_errors() {
    // Window header that is not TRC_TRACE_CPU_CHANGE.
    let mut b = simple_trace();
    b[0] ^= 1;
    assert!(matches!(parse(&b), Err(TraceError::BadWindowHeader { offset: 0, .. })));
    // Window size larger than the file.
    let mut b = simple_trace();
    b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse(&b), Err(TraceError::Truncated { what: "window", .. })));
    // Window size that cuts a record in half, followed by more data.
    let mut b = Builder::default().window(0, &[exit(1, 0x72), exit(2, 0x72)]).bytes;
    b[8..12].copy_from_slice(&30u32.to_le_bytes());
    assert!(matches!(parse(&b), Err(TraceError::RecordOverrunsWindow { offset: 32, .. })));
    // A record claiming 7 extra words + TSC at the end of its window.
    let mut b = Builder::default().window(0, &[rec(0x1234, None, &[1])]).bytes;
    b[12..16].copy_from_slice(&0xf000_1234u32.to_le_bytes());
    let e = parse(&b).unwrap_err();
    assert!(matches!(e, TraceError::RecordOverrunsWindow { record_size: 40, .. }));
    assert!(e.to_string().contains("overruns"));
    // Huge pCPU numbers are just numbers.
    let b = Builder::default().window(u32::MAX, &[exit(1, 0x72)]).bytes;
    assert_eq!(parse(&b).unwrap().cpus(), &[u32::MAX]);
}

#[test]
fn random_garbage_never_panics() {
    let base = simple_trace();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let mut b = base.clone();
        for _ in 0..(next() % 8 + 1) {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        let len = (next() as usize) % (b.len() + 1);
        let _ = parse(&b[..len]);
        let _ = parse_lenient(&b);
        let junk: Vec<u8> = (0..(next() % 200)).map(|_| next() as u8).collect();
        let _ = parse_lenient(&junk);
    }
}
