//! Inputs that once failed (or nearly did), replayed first by every fuzz run of
//! `hy-proto`, before the random cases: raw lines of the parsers, replayed through the
//! same checks as random ones, and case keys (printed by `fuzz::run` when a case fails)
//! of the round-trip targets, which replay a whole case as long as the target draws its
//! random numbers in the same order.
//!
//! A case that fails because of a bug not yet fixed lives in an `#[ignore]`d test of
//! `fuzz.rs` instead, with a comment, so that the suite stays green until the fix (today:
//! `Options` outside `parse`'s domain, non-finite `BENCH` values).
//!
//! Besides what failed, the raw tables hold the edge inputs of the crate's own unit tests
//! that the random generators reach only rarely.

/// Command lines for `cmdline_parse`.
pub const CMDLINE_PARSE: &[&str] = &[
    "",
    "mode=",
    "bench=",
    "bench=clock,,net",
    "bench=all,net",
    "ip=10.0.0.300/24",
    "ip=1.2.3.4/33",
    "ip=1.2.3.4",
    "ip==1.2.3.4/24",
    "netwait=0",
    "netwait=4294967296",
    "netwait=+5",
    // The same key twice, the bad value second: the error names the second word (the
    // first version of the target looked only at the first).
    "mode=hvm mode=bogus",
    "quiet",
    "\u{a0}mode=hvm",
    "mode=hvm\u{b}bench=all",
];
/// Case keys of `cmdline_render_round_trip`.
pub const CMDLINE_RENDER_ROUND_TRIP: &[u64] = &[];
/// Console lines for `lines_classify`.
pub const LINES_CLASSIFY: &[&str] = &[
    "BENCH {\"name\":\"x\"",
    r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":"fast","iterations":1}"#,
    r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1.0,"iterations":-4}"#,
    r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1.0,"iterations":4} tail"#,
    r#"BENCH {"name":"x\q","mode":"hvm","unit":"ns","value":1.0,"iterations":4}"#,
    r#"BENCH {"name":"x\u12","mode":"hvm","unit":"ns","value":1.0,"iterations":4}"#,
    r#"BENCH {"name":"\ud800","mode":"hvm","unit":"ns","value":1.0,"iterations":4}"#,
    r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":NaN,"iterations":1}"#,
    r#"BENCH {"name":"x","mode":"hvm","unit":"ns","value":1e999,"iterations":1}"#,
    "MODE hypervisor=none mode=hvm",
    "MODE hypervisor==x mode=hvm irq=a eoi=b clock=c timer=d nic=e",
    "MODE hypervisor= mode=hvm irq=a eoi=b clock=c timer=d nic=e",
    "MODE hypervisor=x mode=hvm irq=a eoi=b clock=c timer=d nic=e\r\n",
    "READY",
    "READY boot_ns=-1",
    "READY boot_ns=+5",
    "READYNESS",
    "NET readyness",
    "DONE and more",
    "PANIC",
    "\r",
];
/// Case keys of `lines_render_round_trip`.
pub const LINES_RENDER_ROUND_TRIP: &[u64] = &[];
/// Control lines for `netctl_parse`.
pub const NETCTL_PARSE: &[&str] = &[
    "",
    "\r",
    "START",
    "START udp_rr extra",
    "START\tudp_rr\r",
    "start udp_rr",
    "STATS rx=1",
    "STATS rx=1 tx=x",
    "STATS rx=1 tx=2 rx=3",
    "STATSrx=1 tx=2",
    "STATS rx=18446744073709551616 tx=0",
];
