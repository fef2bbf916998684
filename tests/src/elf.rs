//! Just enough ELF64 reading for two facts about the kernel image: how many bytes it
//! loads (the `PT_LOAD` segments' memory sizes) and which notes it carries.

use std::fmt;

/// Why the file could not be read as the kernel image.
#[derive(Debug, PartialEq, Eq)]
pub struct ElfError(pub String);

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ElfError {}

/// A program header's interesting fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// `p_type`.
    pub kind: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_filesz`.
    pub file_size: u64,
    /// `p_memsz`.
    pub mem_size: u64,
}

/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PT_NOTE`.
pub const PT_NOTE: u32 = 4;

fn get<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], ElfError> {
    b.get(at..at + N).and_then(|s| s.try_into().ok()).ok_or_else(|| ElfError(format!("truncated at byte {at}")))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    Ok(u16::from_le_bytes(get(b, at)?))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    Ok(u32::from_le_bytes(get(b, at)?))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ElfError> {
    Ok(u64::from_le_bytes(get(b, at)?))
}

/// The program headers of a little-endian ELF64 file.
pub fn segments(b: &[u8]) -> Result<Vec<Segment>, ElfError> {
    if b.get(0..4) != Some(b"\x7fELF") || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err(ElfError("not a little-endian ELF64 file".into()));
    }
    let phoff = u64_at(b, 0x20)? as usize;
    let phentsize = u16_at(b, 0x36)? as usize;
    let phnum = u16_at(b, 0x38)? as usize;
    if phentsize < 56 {
        return Err(ElfError(format!("program header size {phentsize} < 56")));
    }
    (0..phnum)
        .map(|i| {
            let at = phoff + i * phentsize;
            Ok(Segment {
                kind: u32_at(b, at)?,
                offset: u64_at(b, at + 8)?,
                paddr: u64_at(b, at + 24)?,
                file_size: u64_at(b, at + 32)?,
                mem_size: u64_at(b, at + 40)?,
            })
        })
        .collect()
}

/// Bytes of memory the loaded image occupies.
pub fn loaded_bytes(b: &[u8]) -> Result<u64, ElfError> {
    Ok(segments(b)?.iter().filter(|s| s.kind == PT_LOAD).map(|s| s.mem_size).sum())
}

/// The physical address just past the loaded image (the end of its highest `PT_LOAD`).
pub fn load_end(b: &[u8]) -> Result<u64, ElfError> {
    segments(b)?
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .map(|s| s.paddr.saturating_add(s.mem_size))
        .max()
        .ok_or_else(|| ElfError("no PT_LOAD segment".into()))
}

/// One ELF note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Owner name without the NUL.
    pub name: String,
    /// Type.
    pub kind: u32,
    /// Descriptor bytes.
    pub desc: Vec<u8>,
}

/// All notes in the `PT_NOTE` segments.
pub fn notes(b: &[u8]) -> Result<Vec<Note>, ElfError> {
    let mut out = Vec::new();
    for seg in segments(b)?.into_iter().filter(|s| s.kind == PT_NOTE) {
        let mut at = seg.offset as usize;
        let end = at + seg.file_size as usize;
        while at + 12 <= end {
            let namesz = u32_at(b, at)? as usize;
            let descsz = u32_at(b, at + 4)? as usize;
            let kind = u32_at(b, at + 8)?;
            let name_at = at + 12;
            let desc_at = name_at + namesz.next_multiple_of(4);
            let name = b.get(name_at..name_at + namesz).ok_or_else(|| ElfError("note name out of file".into()))?;
            let desc = b.get(desc_at..desc_at + descsz).ok_or_else(|| ElfError("note desc out of file".into()))?;
            out.push(Note {
                name: String::from_utf8_lossy(name).trim_end_matches('\0').to_string(),
                kind,
                desc: desc.to_vec(),
            });
            at = desc_at + descsz.next_multiple_of(4);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with one PT_LOAD and one PT_NOTE holding a Xen PHYS32_ENTRY note.
    fn tiny() -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[0..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        let ph = |b: &mut Vec<u8>, at: usize, kind: u32, off: u64, fsz: u64, msz: u64| {
            b[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            b[at + 24..at + 32].copy_from_slice(&0x40_0000u64.to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&fsz.to_le_bytes());
            b[at + 40..at + 48].copy_from_slice(&msz.to_le_bytes());
        };
        ph(&mut b, 0x40, PT_LOAD, 0x100, 0x80, 0x3000);
        ph(&mut b, 0x78, PT_NOTE, 0x180, 24, 24);
        let note: Vec<u8> = [4u32.to_le_bytes(), 8u32.to_le_bytes(), 18u32.to_le_bytes()]
            .concat()
            .into_iter()
            .chain(*b"Xen\0")
            .chain(0x40_0000u64.to_le_bytes())
            .collect();
        b[0x180..0x180 + 24].copy_from_slice(&note);
        b
    }

    #[test]
    fn reads_loads_and_notes() {
        let b = tiny();
        assert_eq!(loaded_bytes(&b).unwrap(), 0x3000);
        let n = notes(&b).unwrap();
        assert_eq!(n, vec![Note { name: "Xen".into(), kind: 18, desc: 0x40_0000u64.to_le_bytes().to_vec() }]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(segments(b"hello").is_err());
        let mut b = tiny();
        b.truncate(0x90); // cuts the second program header
        assert!(segments(&b).is_err());
        let mut b = tiny();
        b[0x180..0x184].copy_from_slice(&0xffffu32.to_le_bytes()); // huge namesz
        assert!(notes(&b).is_err());
    }
}
