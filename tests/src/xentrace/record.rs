//! The `xentrace` file format: windows of records, read and written.
//!
//! This is the bottom layer of [`super`]: [`read_records`] splits a file into [`Record`]s
//! (never panicking, stopping at the first [`TraceError`]) and [`write_window`] writes records
//! back in the same format (for `hytrace trim`). What a record's extra words mean is decoded
//! in `decode.rs`; the event ids the rest of the parser looks at are defined here.

use std::fmt;

/// `TRC_LOST_RECORDS`: Xen dropped records because a trace buffer was full. Extra words
/// (Xen 4.17 `insert_lost_records`): `u32 lost_records; u16 domid, u16 vcpu; u64 first_tsc`.
/// It carries its own TSC, the time Xen could write again; `first_tsc` is when the first
/// record was dropped.
pub const TRC_LOST_RECORDS: u32 = 0x0001_f001;
/// `TRC_TRACE_WRAP_BUFFER`: padding record at the end of a wrapped buffer.
pub const TRC_TRACE_WRAP_BUFFER: u32 = 0x0001_f002;
/// `TRC_TRACE_CPU_CHANGE`: written by `xentrace` at the start of each window.
pub const TRC_TRACE_CPU_CHANGE: u32 = 0x0001_f003;
/// `TRC_SCHED_SWITCH`: extra words prev domid, prev vcpu, next domid, next vcpu.
pub const TRC_SCHED_SWITCH: u32 = 0x0002_800a;
/// `TRC_HVM_VMENTRY` (not an exit).
pub const TRC_HVM_VMENTRY: u32 = 0x0008_1001;
/// `TRC_HVM_VMEXIT` (guest not in long mode): extra words exit code, eip.
pub const TRC_HVM_VMEXIT: u32 = 0x0008_1002;
/// `TRC_HVM_VMEXIT64` (guest in long mode): extra words exit code, rip low, rip high.
pub const TRC_HVM_VMEXIT64: u32 = TRC_HVM_VMEXIT | TRC_64_FLAG;
/// `TRC_64_FLAG`: the record is the 64-bit variant of an HVM event.
pub const TRC_64_FLAG: u32 = 0x100;
/// `TRC_HVM_NESTEDFLAG`: the event happened while the vCPU ran a nested (L2) guest.
pub const TRC_HVM_NESTEDFLAG: u32 = 0x400;
/// `TRC_HVM_CPUID`: extra words leaf, subleaf, then the four result registers.
pub const TRC_HVM_CPUID: u32 = 0x0008_200e;
/// `TRC_HVM_MSR_READ`: extra words MSR index, value low, value high (after an MSR exit).
pub const TRC_HVM_MSR_READ: u32 = 0x0008_200c;
/// `TRC_HVM_MSR_WRITE`: extra words MSR index, value low, value high (after an MSR exit).
pub const TRC_HVM_MSR_WRITE: u32 = 0x0008_200d;
/// `TRC_HVM_NPF`: extra words gpa low, gpa high, mfn low, mfn high, qualification, p2m type.
pub const TRC_HVM_NPF: u32 = 0x0008_2021;
/// `TRC_HVM_IOMEM_READ`: an emulated MMIO read; extra words address [, data]
/// (`| TRC_64_FLAG`: address low, address high [, data]).
pub const TRC_HVM_IOMEM_READ: u32 = 0x0008_2017;
/// `TRC_HVM_IOMEM_WRITE`: an emulated MMIO write; words as [`TRC_HVM_IOMEM_READ`].
pub const TRC_HVM_IOMEM_WRITE: u32 = 0x0008_2217;

/// `TRC_PV_HYPERCALL_V2`: a PV guest's hypercall; extra word 0 is the hypercall number in
/// bits 19:0 (bits 31:20 say which arguments follow), then the arguments. Needs the PV
/// class (`0x0020f000`) in the trace mask.
pub const TRC_PV_HYPERCALL_V2: u32 = 0x0020_100d;
/// The hypercall-number bits of `TRC_PV_HYPERCALL_V2`'s first word.
pub const PV_HYPERCALL_OP_MASK: u32 = 0x000f_ffff;

/// Header of the window records `xentrace` writes: `TRC_TRACE_CPU_CHANGE` with 2 extra words.
pub(super) const CPU_CHANGE_HEADER: u32 = TRC_TRACE_CPU_CHANGE | (2 << 28);
/// Most extra words a record can have.
const MAX_EXTRA: usize = 7;
/// Header bit saying a TSC follows.
const TSC_FLAG: u32 = 0x8000_0000;
/// Header bits of the event id.
const EVENT_MASK: u32 = 0x0fff_ffff;

/// Why a trace file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// The file ends inside a window header, a window or a record.
    Truncated {
        /// Byte offset of the structure that is cut short.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// A window does not start with the `TRC_TRACE_CPU_CHANGE` record `xentrace` writes.
    BadWindowHeader {
        /// Byte offset of the window.
        offset: usize,
        /// The header word found there.
        header: u32,
    },
    /// A record inside a window extends past the window's end (bogus sizes or counts).
    RecordOverrunsWindow {
        /// Byte offset of the record.
        offset: usize,
        /// Size of the record in bytes.
        record_size: usize,
        /// Byte offset where the window ends.
        window_end: usize,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Truncated { offset, what, needed, available } => {
                write!(f, "trace truncated at byte {offset}: {what} needs {needed} bytes, {available} left")
            }
            TraceError::BadWindowHeader { offset, header } => write!(
                f,
                "no xentrace window header at byte {offset} (found {header:#010x}, \
                 expected {CPU_CHANGE_HEADER:#010x})"
            ),
            TraceError::RecordOverrunsWindow { offset, record_size, window_end } => write!(
                f,
                "record at byte {offset} ({record_size} bytes) overruns its window, \
                 which ends at byte {window_end}"
            ),
        }
    }
}

impl std::error::Error for TraceError {}

/// One trace record, as read from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the record's header in the file.
    pub offset: usize,
    /// Index of the window it was read from (0 = the file's first window).
    pub window: usize,
    /// pCPU whose buffer held the record (from the enclosing window).
    pub cpu: u32,
    /// Event id (the header's low 28 bits).
    pub event: u32,
    /// TSC of the record, if it carries one.
    pub tsc: Option<u64>,
    n_extra: u8,
    extra: [u32; MAX_EXTRA],
}

impl Record {
    /// A record that is not from a file (offset and window 0); `None` if `event` does not fit
    /// in 28 bits or there are more than 7 extra words.
    pub fn new(cpu: u32, event: u32, tsc: Option<u64>, extra: &[u32]) -> Option<Record> {
        if event & !EVENT_MASK != 0 || extra.len() > MAX_EXTRA {
            return None;
        }
        let mut words = [0u32; MAX_EXTRA];
        words[..extra.len()].copy_from_slice(extra);
        Some(Record { offset: 0, window: 0, cpu, event, tsc, n_extra: extra.len() as u8, extra: words })
    }

    /// The record's extra data words.
    pub fn extra(&self) -> &[u32] {
        &self.extra[..usize::from(self.n_extra)]
    }

    /// Extra word `i`, or 0 if the record has fewer words.
    /// The hypercall number of a `TRC_PV_HYPERCALL_V2` record.
    pub(super) fn pv_hypercall(&self) -> Option<u32> {
        (self.event == TRC_PV_HYPERCALL_V2).then(|| self.word(0) & PV_HYPERCALL_OP_MASK)
    }

    pub(super) fn word(&self, i: usize) -> u32 {
        self.extra().get(i).copied().unwrap_or(0)
    }

    /// Extra words `i` (low) and `i + 1` (high) as one `u64`; missing words read as 0.
    pub(super) fn u64_at(&self, i: usize) -> u64 {
        (u64::from(self.word(i + 1)) << 32) | u64::from(self.word(i))
    }

    /// The record with extra word `i` replaced; `None` if it has no word `i`.
    pub fn with_word(mut self, i: usize, value: u32) -> Option<Record> {
        *self.extra[..usize::from(self.n_extra)].get_mut(i)? = value;
        Some(self)
    }

    /// Size of the record in the file, in bytes.
    pub fn size(&self) -> usize {
        4 + if self.tsc.is_some() { 8 } else { 0 } + 4 * usize::from(self.n_extra)
    }

    /// Appends the record in file format; reading it back gives the same record.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let tsc_flag = if self.tsc.is_some() { TSC_FLAG } else { 0 };
        let header = tsc_flag | (u32::from(self.n_extra) << 28) | (self.event & EVENT_MASK);
        out.extend_from_slice(&header.to_le_bytes());
        if let Some(t) = self.tsc {
            out.extend_from_slice(&(t as u32).to_le_bytes());
            out.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
        }
        for w in self.extra() {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
}

/// Appends one window, as `xentrace` writes it: the `TRC_TRACE_CPU_CHANGE` header for `cpu`
/// and the window's size, then the records (whatever their own `cpu` says). Nothing is
/// written for an empty window; `None` (and nothing written) if the records do not fit in a
/// window's 32-bit size.
pub fn write_window(out: &mut Vec<u8>, cpu: u32, records: &[Record]) -> Option<()> {
    let size = u32::try_from(records.iter().map(Record::size).sum::<usize>()).ok()?;
    if size == 0 {
        return Some(());
    }
    for word in [CPU_CHANGE_HEADER, cpu, size] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for r in records {
        r.write_to(out);
    }
    Some(())
}

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let b = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Splits a file into windows and records, in file order. Stops at the first error and
/// returns it with every complete record before it (also those of a window cut short).
pub fn read_records(bytes: &[u8]) -> (Vec<Record>, Option<TraceError>) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    let mut window = 0usize;
    while pos < bytes.len() {
        let left = bytes.len() - pos;
        if left < 12 {
            let e = TraceError::Truncated { offset: pos, what: "window header", needed: 12, available: left };
            return (records, Some(e));
        }
        // In bounds (left >= 12); unwrap_or keeps this free of panics anyway.
        let word = |o: usize| read_u32(bytes, o).unwrap_or(0);
        let (header, cpu, size) = (word(pos), word(pos + 4), word(pos + 8));
        if header != CPU_CHANGE_HEADER {
            return (records, Some(TraceError::BadWindowHeader { offset: pos, header }));
        }
        let start = pos + 12;
        let size = size as usize;
        let available = bytes.len() - start;
        // A window cut short is still read up to its last complete record (for parse_lenient).
        let end = start + size.min(available);
        let mut r = start;
        while r < end {
            match read_record(bytes, r, end, cpu) {
                Ok(rec) => {
                    r += rec.size();
                    records.push(Record { window, ..rec });
                }
                Err(e) => {
                    // If the window itself is cut short, report the truncation, not the record.
                    if size > available {
                        break;
                    }
                    return (records, Some(e));
                }
            }
        }
        if size > available {
            let e = TraceError::Truncated { offset: pos, what: "window", needed: size + 12, available: left };
            return (records, Some(e));
        }
        pos = start + size;
        window += 1;
    }
    (records, None)
}

fn read_record(bytes: &[u8], offset: usize, window_end: usize, cpu: u32) -> Result<Record, TraceError> {
    let window = &bytes[..window_end];
    let overrun = |record_size| TraceError::RecordOverrunsWindow { offset, record_size, window_end };
    let header = read_u32(window, offset).ok_or_else(|| overrun(4))?;
    let n_extra = ((header >> 28) & 7) as u8;
    let has_tsc = header & TSC_FLAG != 0;
    let size = 4 + if has_tsc { 8 } else { 0 } + 4 * usize::from(n_extra);
    if offset + size > window_end {
        return Err(overrun(size));
    }
    let mut p = offset + 4;
    let tsc = if has_tsc {
        let lo = read_u32(window, p).ok_or_else(|| overrun(size))?;
        let hi = read_u32(window, p + 4).ok_or_else(|| overrun(size))?;
        p += 8;
        Some(u64::from(hi) << 32 | u64::from(lo))
    } else {
        None
    };
    let mut extra = [0u32; MAX_EXTRA];
    for (i, slot) in extra.iter_mut().take(usize::from(n_extra)).enumerate() {
        *slot = read_u32(window, p + 4 * i).ok_or_else(|| overrun(size))?;
    }
    Ok(Record { offset, window: 0, cpu, event: header & EVENT_MASK, tsc, n_extra, extra })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the records back window by window, as `hytrace trim --all-kinds` would.
    fn rewrite(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in records.chunk_by(|a, b| a.window == b.window) {
            write_window(&mut out, w[0].cpu, w).unwrap();
        }
        out
    }

    #[test]
    fn real_traces_round_trip_byte_for_byte() {
        for bytes in [
            &include_bytes!("../../data/xentrace/pvh-100-allkinds.trace")[..],
            &include_bytes!("../../data/xentrace/pvh-irq500-xapic.trace")[..],
        ] {
            let (records, err) = read_records(bytes);
            assert_eq!(err, None);
            assert!(records.iter().any(|r| r.tsc.is_none()) && records.iter().any(|r| r.tsc.is_some()));
            assert!(records.last().unwrap().window > 1);
            assert_eq!(rewrite(&records), bytes);
        }
    }

    #[test]
    fn built_records_round_trip() {
        let recs = [
            Record::new(3, TRC_LOST_RECORDS, Some(0x1_0000_0005), &[17, 0x0001_0002, 4, 0]).unwrap(),
            Record::new(3, 0x0800_f101, None, &[1, 2, 3, 4, 5, 6, 7]).unwrap(),
            Record::new(3, 0x0fff_ffff, None, &[]).unwrap(),
        ];
        let mut bytes = Vec::new();
        write_window(&mut bytes, 3, &recs).unwrap();
        write_window(&mut bytes, 9, &[]).unwrap(); // empty windows are left out
        let (back, err) = read_records(&bytes);
        assert_eq!(err, None);
        assert_eq!(back.len(), 3);
        for (a, b) in recs.iter().zip(&back) {
            assert_eq!((a.cpu, a.event, a.tsc, a.extra()), (b.cpu, b.event, b.tsc, b.extra()));
        }
        assert_eq!(back[2].offset, bytes.len() - 4);
        assert_eq!(Record::new(0, 0x1000_0000, None, &[]), None);
        assert_eq!(Record::new(0, 1, None, &[0; 8]), None);
        let r = recs[1].with_word(6, 9).unwrap();
        assert_eq!((r.extra()[6], r.word(7), r.u64_at(5)), (9, 0, 9 << 32 | 6));
        assert_eq!(recs[2].with_word(0, 1), None);
    }
}
