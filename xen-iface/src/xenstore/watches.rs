//! The watches a session has set, and the events xenstored sent for them: kept in a
//! small bounded queue until the driver takes them.
//!
//! xenstored sends an `XS_WATCH_EVENT` whenever a watched path (or one below it)
//! changes, once when the watch is set, and at any time: between a request and its
//! reply, or with no request outstanding at all. [`Watches`] keeps the events whose token
//! belongs to a watch this guest set, at most [`QUEUE_MAX`] of them; an event equal to
//! one already queued adds nothing (the driver re-reads the path either way), one more
//! than the queue holds is dropped and counted, and so is an event for a token nobody
//! set. Nothing here grows without bound, whatever xenstored sends.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// Watches one session may hold.
pub const WATCHES_MAX: usize = 8;
/// Events queued at most; later ones are dropped (and counted) until the driver takes some.
pub const QUEUE_MAX: usize = 16;

/// A watch event, owned: the path that changed and the token of the watch that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The path that changed (xenstored's word: the driver reads the path it watches,
    /// never this one).
    pub path: String,
    /// The watch's token.
    pub token: String,
}

/// What became of one event offered to [`Watches::offer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Queued for the driver.
    Queued,
    /// The same event was already queued.
    Coalesced,
    /// The queue is full: dropped.
    Overflow,
    /// No watch of this session has its token: dropped.
    Unwatched,
}

/// The watches set, and the events waiting for the driver.
#[derive(Clone, Debug, Default)]
pub struct Watches {
    tokens: Vec<String>,
    queue: VecDeque<Event>,
}

impl Watches {
    /// No watches, no events.
    pub const fn new() -> Self {
        Watches { tokens: Vec::new(), queue: VecDeque::new() }
    }

    /// Notes a watch with `token` (before it is sent, so that the event xenstored fires
    /// as it sets it is kept). False if [`WATCHES_MAX`] are set already; a token set
    /// already is set once.
    pub fn add(&mut self, token: &str) -> bool {
        if self.is_set(token) {
            return true;
        }
        if self.tokens.len() >= WATCHES_MAX {
            return false;
        }
        self.tokens.push(token.into());
        true
    }

    /// Forgets the watch with `token`, and its queued events.
    pub fn remove(&mut self, token: &str) {
        self.tokens.retain(|t| t != token);
        self.queue.retain(|e| e.token != token);
    }

    /// True if a watch with `token` is set.
    pub fn is_set(&self, token: &str) -> bool {
        self.tokens.iter().any(|t| t == token)
    }

    /// Offers an event that arrived.
    pub fn offer(&mut self, path: &str, token: &str) -> Offered {
        if !self.is_set(token) {
            return Offered::Unwatched;
        }
        if self.queue.iter().any(|e| e.path == path && e.token == token) {
            return Offered::Coalesced;
        }
        if self.queue.len() >= QUEUE_MAX {
            return Offered::Overflow;
        }
        self.queue.push_back(Event { path: path.into(), token: token.into() });
        Offered::Queued
    }

    /// Takes the oldest event queued.
    pub fn take(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    /// Takes every queued event of the watch `token`; returns how many there were.
    pub fn take_for(&mut self, token: &str) -> usize {
        let before = self.queue.len();
        self.queue.retain(|e| e.token != token);
        before - self.queue.len()
    }

    /// Events queued.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_set_watches_are_queued_and_the_queue_is_bounded() {
        let mut w = Watches::new();
        assert_eq!(w.offer("a", "t"), Offered::Unwatched);
        assert!(w.add("t"));
        assert_eq!(w.offer("a", "t"), Offered::Queued);
        assert_eq!(w.offer("a", "t"), Offered::Coalesced, "the same event adds nothing");
        for i in 1..QUEUE_MAX {
            assert_eq!(w.offer(&format!("a/{i}"), "t"), Offered::Queued);
        }
        assert_eq!(w.offer("a/more", "t"), Offered::Overflow);
        assert_eq!(w.queued(), QUEUE_MAX);
        assert_eq!(w.take(), Some(Event { path: "a".into(), token: "t".into() }), "oldest first");
        assert_eq!(w.offer("a/more", "t"), Offered::Queued, "room again");
        assert_eq!(w.take_for("t"), QUEUE_MAX);
        assert_eq!(w.take(), None);
    }

    #[test]
    fn watches_are_bounded_and_removing_one_drops_its_events() {
        let mut w = Watches::new();
        for i in 0..WATCHES_MAX {
            assert!(w.add(&format!("t{i}")));
        }
        assert!(w.add("t0"), "set already");
        assert!(!w.add("one-too-many"));
        assert_eq!(w.offer("p", "t1"), Offered::Queued);
        assert_eq!(w.offer("p", "t2"), Offered::Queued);
        w.remove("t1");
        assert!(!w.is_set("t1"));
        assert_eq!(w.offer("p", "t1"), Offered::Unwatched);
        assert_eq!(w.take().map(|e| e.token), Some("t2".into()));
        assert_eq!(w.take(), None);
    }
}
