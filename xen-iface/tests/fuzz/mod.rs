//! A small, dependency-free fuzzing harness: a seeded PRNG, byte and text mutators, and a
//! runner that spends a time budget on one target and says how to replay a failure.
//!
//! Shared by the integration tests of `xen-iface` (`mod fuzz;`) and of `hy-proto`
//! (`#[path]` include), so it uses `std` only and nothing of either crate.
//!
//! Case `n` of a target draws all its randomness from one [`Rng`] whose starting state,
//! the case *key*, is derived from the run seed, the target's name and `n`; a case is
//! therefore replayed exactly by its seed and number, or by its key alone (what the
//! regression tables in `tests/regressions/` keep). Environment:
//!
//! | variable        | meaning                                                    | default |
//! |-----------------|------------------------------------------------------------|---------|
//! | `HY_FUZZ_SEED`  | run seed, decimal or `0x` hex                              | [`DEFAULT_SEED`] (CI is repeatable) |
//! | `HY_FUZZ_MS`    | time budget of each target, ms                             | [`DEFAULT_MS`] |
//! | `HY_FUZZ_CASES` | run exactly this many cases per target instead of timing   | unset   |
//! | `HY_FUZZ_CASE`  | replay only case `n` of the seed                           | unset   |
//! | `HY_FUZZ_HANG_MS` | one case running longer than this is reported as a hang and the process exits | 20000 |
//!
//! Every failure prints the target, seed, case number and key with the command that
//! replays it. A case that never returns (a parser looping forever) is caught by a
//! watchdog thread, which prints the same and exits the test process.
#![allow(dead_code)] // each test crate uses a different subset of these helpers

use std::io::Write;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The run seed when `HY_FUZZ_SEED` is unset.
pub const DEFAULT_SEED: u64 = 0x4859_5f46_555a_5a31; // "HY_FUZZ1"
/// Each target's time budget when `HY_FUZZ_MS` is unset: every target of both crates
/// together stays well under 30 s of a debug `cargo test` on two cores.
pub const DEFAULT_MS: u64 = 1000;
/// Cases run even when the budget is already spent (a slow or loaded machine).
pub const MIN_CASES: u64 = 16;
/// The hang threshold when `HY_FUZZ_HANG_MS` is unset.
pub const DEFAULT_HANG_MS: u64 = 20_000;

/// A deterministic pseudo-random generator: SplitMix64 (Steele, Lea and Flood), whose
/// every state is valid and whose output passes BigCrush, in four lines.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting at `key` (a case key printed by the runner).
    pub fn from_key(key: u64) -> Self {
        Rng(key)
    }

    /// The key of case `case` of `target` in the run seeded with `seed`.
    pub fn case_key(seed: u64, target: &str, case: u64) -> u64 {
        // FNV-1a of the name, so that targets of one run do not share cases.
        let name = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let mut r = Rng(seed ^ name.rotate_left(17));
        r.0 ^= r.next_u64() ^ case.wrapping_mul(0xd6e8_feb8_6659_fd93);
        r.next_u64()
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A generator for a second actor of the same case (a peer), independent of this one.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2^-64 * n).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `0..n` as a `usize`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "Rng::range({lo}, {hi})");
        match (hi - lo).checked_add(1) {
            Some(n) => lo + self.below(n),
            None => self.next_u64(),
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// 32 random bits.
    pub fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    /// 16 random bits.
    pub fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    /// 8 random bits.
    pub fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// One of `items`, uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// A length in `0..=max`, small more often than large (half the time at most 16).
    pub fn len(&mut self, max: usize) -> usize {
        if self.coin() {
            self.index(max.min(16) + 1)
        } else {
            self.index(max + 1)
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.u8()).collect()
    }

    /// Up to `max` random bytes, as many as [`Rng::len`] picks.
    pub fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.len(max);
        self.bytes(n)
    }

    /// A value that breaks arithmetic more often than a uniform one: 0, 1, the extremes,
    /// powers of two and their neighbours, small numbers, or anything.
    pub fn edge_u64(&mut self) -> u64 {
        match self.below(6) {
            0 => *self.pick(&[0, 1, 2, u64::MAX, u64::MAX - 1, i64::MAX as u64, 1 << 63]),
            1 => 1u64 << self.below(64),
            2 => (1u64 << self.below(64)).wrapping_sub(1),
            3 => self.below(300),
            4 => (1u64 << self.below(64)).wrapping_add(1),
            _ => self.next_u64(),
        }
    }

    /// [`Rng::edge_u64`] cut to 32 bits (also yielding `u32::MAX` and `1 << 31`).
    pub fn edge_u32(&mut self) -> u32 {
        match self.below(4) {
            0 => *self.pick(&[0, 1, u32::MAX, u32::MAX - 1, i32::MAX as u32, 1 << 31]),
            _ => self.edge_u64() as u32,
        }
    }

    /// [`Rng::edge_u64`] cut to 16 bits.
    pub fn edge_u16(&mut self) -> u16 {
        match self.below(4) {
            0 => *self.pick(&[0, 1, u16::MAX, u16::MAX - 1, i16::MAX as u16, 1 << 15]),
            _ => self.edge_u64() as u16,
        }
    }
}

/// Applies one to four random edits to `data`: flip a bit, overwrite, insert or delete
/// bytes, truncate, duplicate or swap a range, or splice in a token of `dict`.
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, dict: &[&[u8]]) {
    for _ in 0..rng.range(1, 4) {
        let len = data.len();
        let at = rng.index(len + 1);
        match rng.below(9) {
            0 if len > 0 => data[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => {
                let any = rng.u8();
                data[at.min(len - 1)] = *rng.pick(&[0, 0xff, 0x7f, 0x80, b' ', b'=', b'\n', any]);
            }
            2 => {
                let n = rng.len(8);
                let new = rng.bytes(n);
                data.splice(at..at, new);
            }
            3 => {
                let end = (at + rng.len(8)).min(len);
                data.drain(at..end);
            }
            4 => data.truncate(at),
            5 if len > 0 => {
                let (a, b) = (rng.index(len), rng.index(len));
                data.swap(a, b);
            }
            6 => {
                let end = (at + rng.len(16)).min(len);
                let copy = data[at..end].to_vec();
                let to = rng.index(len + 1);
                data.splice(to..to, copy);
            }
            _ if !dict.is_empty() => {
                let token = rng.pick(dict).to_vec();
                data.splice(at..at, token);
            }
            _ => data.push(rng.u8()),
        }
    }
}

/// [`mutate`] on text; bytes that are no longer UTF-8 become U+FFFD (half the time) or
/// are dropped.
pub fn mutate_str(rng: &mut Rng, text: &str, dict: &[&str]) -> String {
    let dict: Vec<&[u8]> = dict.iter().map(|t| t.as_bytes()).collect();
    let mut bytes = text.as_bytes().to_vec();
    mutate(rng, &mut bytes, &dict);
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) if rng.coin() => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        Err(e) => e.into_bytes().into_iter().filter(u8::is_ascii).map(char::from).collect(),
    }
}

/// Random text: up to `max_words` tokens of `dict` (or random ASCII), joined by spaces,
/// tabs, `=` or nothing.
pub fn words(rng: &mut Rng, dict: &[&str], max_words: usize) -> String {
    let mut s = String::new();
    for i in 0..rng.len(max_words) {
        if i > 0 {
            let sep = *rng.pick(&[" ", " ", " ", "  ", "\t", "=", ",", ""]);
            s.push_str(sep);
        }
        if !dict.is_empty() && !rng.one_in(8) {
            let word = *rng.pick(dict);
            s.push_str(word);
        } else {
            let n = rng.len(6);
            s.extend((0..n).map(|_| char::from(rng.range(0x20, 0x7e) as u8)));
        }
    }
    s
}

/// The run's settings, from the environment (see the module notes).
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `HY_FUZZ_SEED`.
    pub seed: u64,
    /// `HY_FUZZ_MS`.
    pub budget: Duration,
    /// `HY_FUZZ_CASES`.
    pub cases: Option<u64>,
    /// `HY_FUZZ_CASE`.
    pub only: Option<u64>,
    /// `HY_FUZZ_HANG_MS`.
    pub hang: Duration,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => v.replace('_', "").parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number (decimal or 0x hex)")))
}

impl Config {
    /// Reads the `HY_FUZZ_*` variables.
    pub fn from_env() -> Self {
        Config {
            seed: env_u64("HY_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
            budget: Duration::from_millis(env_u64("HY_FUZZ_MS").unwrap_or(DEFAULT_MS)),
            cases: env_u64("HY_FUZZ_CASES"),
            only: env_u64("HY_FUZZ_CASE"),
            hang: Duration::from_millis(env_u64("HY_FUZZ_HANG_MS").unwrap_or(DEFAULT_HANG_MS)),
        }
    }
}

/// Which case a target is in, for the messages.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// A key from the regression table.
    Regression(u64),
    /// Case `n` of the run seed, with its key.
    Random(u64, u64),
}

fn describe(target: &str, seed: u64, case: Case) -> String {
    let test = env!("CARGO_CRATE_NAME");
    let pkg = env!("CARGO_PKG_NAME");
    let dir = env!("CARGO_MANIFEST_DIR");
    match case {
        Case::Regression(key) => format!(
            "fuzz: `{target}` failed on regression key {key:#018x} (tests/regressions/)\n  \
             replay: cargo test -p {pkg} --test {test} -- {target}"
        ),
        Case::Random(n, key) => format!(
            "fuzz: `{target}` failed at case {n} of seed {seed:#x} (case key {key:#018x})\n  \
             replay: HY_FUZZ_SEED={seed:#x} HY_FUZZ_CASE={n} cargo test -p {pkg} --test {test} -- {target}\n  \
             keep it: add {key:#018x} to {table} in {dir}/tests/regressions/mod.rs",
            table = target.to_uppercase()
        ),
    }
}

/// Reports a case that does not return, bypassing the test harness's output capture (the
/// process exits before the harness would print it).
struct Watchdog {
    /// The case in progress: (generation, bumped per case; case number, or `u64::MAX`
    /// for a regression key; case key).
    state: Arc<(AtomicU64, AtomicU64, AtomicU64)>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(target: &str, cfg: Config) -> Self {
        let state = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, target) = (state.clone(), stop.clone(), target.to_owned());
        let thread = thread::spawn(move || {
            let (mut seen, mut since) = (u64::MAX, Instant::now());
            while !st.load(Ordering::Acquire) {
                thread::park_timeout(Duration::from_millis(100));
                let generation = s.0.load(Ordering::Acquire);
                if generation != seen {
                    (seen, since) = (generation, Instant::now());
                } else if since.elapsed() > cfg.hang && !st.load(Ordering::Acquire) {
                    let (n, key) = (s.1.load(Ordering::Acquire), s.2.load(Ordering::Acquire));
                    let case = if n == u64::MAX { Case::Regression(key) } else { Case::Random(n, key) };
                    let msg = describe(&target, cfg.seed, case);
                    let _ = writeln!(std::io::stderr(), "{msg}\n  the case ran for more than {:?}: a hang", cfg.hang);
                    std::process::exit(101);
                }
            }
        });
        Watchdog { state, stop, thread: Some(thread) }
    }

    fn enter(&self, case: Case) {
        let (n, key) = match case {
            Case::Regression(key) => (u64::MAX, key),
            Case::Random(n, key) => (n, key),
        };
        self.state.1.store(n, Ordering::Release);
        self.state.2.store(key, Ordering::Release);
        self.state.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Runs `body` on every key of `regressions`, then on random cases until the budget is
/// spent; a panicking case is reported (target, seed, case, key, replay command) and
/// fails the test.
pub fn run(target: &str, regressions: &[u64], mut body: impl FnMut(&mut Rng)) {
    let cfg = Config::from_env();
    let dog = Watchdog::start(target, cfg);
    let mut one = |case: Case| {
        let key = match case {
            Case::Regression(key) | Case::Random(_, key) => key,
        };
        dog.enter(case);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(&mut Rng::from_key(key)))) {
            eprintln!("{}", describe(target, cfg.seed, case));
            resume_unwind(panic);
        }
    };
    let start = Instant::now();
    for &key in regressions {
        one(Case::Regression(key));
    }
    if let Some(n) = cfg.only {
        one(Case::Random(n, Rng::case_key(cfg.seed, target, n)));
        return;
    }
    let mut n = 0;
    loop {
        let done = match cfg.cases {
            Some(max) => n >= max,
            None => n >= MIN_CASES && start.elapsed() >= cfg.budget,
        };
        if done {
            break;
        }
        one(Case::Random(n, Rng::case_key(cfg.seed, target, n)));
        n += 1;
    }
    println!(
        "fuzz: {target}: {} regressions, {n} cases in {:?} (seed {:#x})",
        regressions.len(),
        start.elapsed(),
        cfg.seed
    );
}

/// Runs `check` on every input of a regression table of raw inputs (for the parsers),
/// saying which one failed.
pub fn replay_inputs<T: std::fmt::Debug>(target: &str, inputs: &[T], mut check: impl FnMut(&T)) {
    for (i, input) in inputs.iter().enumerate() {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
            eprintln!("fuzz: `{target}` failed on regression input #{i}: {input:?}");
            resume_unwind(panic);
        }
    }
    println!("fuzz: {target}: {} regression inputs", inputs.len());
}
