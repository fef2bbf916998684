//! Following a guest's console file as it grows (xenconsoled's log of the PV console, or
//! the file qemu-xen writes COM1 to): complete lines, each with the moment it was seen.
//!
//! The file may not exist yet when following starts (xenconsoled creates it when the
//! guest first writes); a line counts once its newline is there, except the last
//! unterminated one, which [`FileTail::finish`] returns when the guest is gone.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Instant;

/// A console line and when the agent saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenLine {
    /// The line, without its line end and carriage returns.
    pub text: String,
    /// When it was read.
    pub at: Instant,
}

/// A file followed from its start.
#[derive(Debug)]
pub struct FileTail {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    partial: Vec<u8>,
}

/// Longest line kept whole; longer ones are split (a runaway guest cannot grow memory).
const MAX_LINE: usize = 64 * 1024;

impl FileTail {
    /// Follows `path` (which may not exist yet).
    pub fn new(path: PathBuf) -> FileTail {
        FileTail { path, file: None, offset: 0, partial: Vec::new() }
    }

    /// The complete lines appended since the last poll.
    pub fn poll(&mut self) -> Vec<SeenLine> {
        let now = Instant::now();
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else { return Vec::new() };
        // A file that shrank was replaced or truncated: start over.
        if f.metadata().map(|m| m.len() < self.offset).unwrap_or(false) {
            self.offset = 0;
            self.partial.clear();
        }
        let mut fresh = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_ok() {
            let _ = f.read_to_end(&mut fresh);
        }
        self.offset += fresh.len() as u64;
        let mut out = Vec::new();
        for &b in &fresh {
            if b == b'\n' || self.partial.len() >= MAX_LINE {
                out.push(SeenLine { text: clean(&self.partial), at: now });
                self.partial.clear();
                if b == b'\n' {
                    continue;
                }
            }
            self.partial.push(b);
        }
        out
    }

    /// The remaining lines, the unterminated last one included (the writer is gone).
    pub fn finish(&mut self) -> Vec<SeenLine> {
        let mut out = self.poll();
        if !self.partial.is_empty() {
            out.push(SeenLine { text: clean(&self.partial), at: Instant::now() });
            self.partial.clear();
        }
        out
    }
}

fn clean(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace('\r', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_a_growing_file() {
        let dir = std::env::temp_dir().join(format!("hy-tail-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("console.log");
        let _ = std::fs::remove_file(&path);
        let mut t = FileTail::new(path.clone());
        assert!(t.poll().is_empty(), "no file yet");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"MODE a=b\r\nREA").unwrap();
        let text = |v: Vec<SeenLine>| v.into_iter().map(|l| l.text).collect::<Vec<_>>();
        assert_eq!(text(t.poll()), ["MODE a=b"]);
        f.write_all(b"DY boot_ns=1\nDONE").unwrap();
        assert_eq!(text(t.poll()), ["READY boot_ns=1"]);
        assert_eq!(text(t.finish()), ["DONE"]);
        // Truncated and rewritten: read from the start again.
        let mut f = File::create(&path).unwrap();
        f.write_all(b"x\n").unwrap();
        assert_eq!(text(t.poll()), ["x"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
