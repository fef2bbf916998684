//! The project's Xen test host, seen from the harness.
//!
//! - [`plan`]: the typed plan the dom0 agent runs (shared with it).
//! - [`results`]: the typed results it writes, and the one retry rule (shared with it).
//! - [`guests`]: the guests as types: kernel variants and the Linux peer.
//! - [`host`]: building and booting the host with a payload.
//! - [`run`]: one run of guests, and what each left (attempts, console, trace).
//! - [`cost`]: VM exits per operation, totals first.

pub mod cost;
pub mod guests;
pub mod host;
pub mod plan;
pub mod results;
pub mod run;
