//! Finds the S5 (soft-off) sleep type in the DSDT without an AML interpreter.
//!
//! Power-off writes `SLP_TYPa | SLP_EN` to PM1a_CNT; SLP_TYPa comes from the `_S5_`
//! object, which firmware defines as `Name (_S5, Package () { a, b, ... })`. This module
//! recognises that one encoding: NameOp (0x08), an optional root prefix, `_S5_`,
//! PackageOp (0x12), a PkgLength, NumElements, then integers as ZeroOp, OneOp, BytePrefix
//! (0x0A) + byte, or a raw byte. Anything else yields `None`, and power-off falls back to
//! the other methods.

/// SLP_TYP values for the S5 state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepType {
    /// For PM1a_CNT.
    pub a: u8,
    /// For PM1b_CNT.
    pub b: u8,
}

/// Decodes one small integer term; returns (value, bytes used).
fn integer(aml: &[u8]) -> Option<(u8, usize)> {
    match *aml.first()? {
        0x00 => Some((0, 1)),
        0x01 => Some((1, 1)),
        0x0a => Some((*aml.get(1)?, 2)),
        0xff => None, // OnesOp: not a valid SLP_TYP
        b if b < 0x08 => Some((b, 1)),
        _ => None,
    }
}

/// Looks for `Name(_S5_, Package(){a, b, ...})` in an AML byte stream.
pub fn find(aml: &[u8]) -> Option<SleepType> {
    let at = aml.windows(4).position(|w| w == b"_S5_")?;
    // NameOp right before, possibly with a root prefix '\\' between.
    let named = match at {
        0 => false,
        1 => aml[0] == 0x08,
        _ => aml[at - 1] == 0x08 || (aml[at - 1] == b'\\' && aml[at - 2] == 0x08),
    };
    if !named {
        return None;
    }
    let mut p = at + 4;
    if *aml.get(p)? != 0x12 {
        return None;
    }
    p += 1;
    // PkgLength: bits 7:6 of the lead byte give the number of extra bytes.
    let lead = *aml.get(p)?;
    p += 1 + (lead >> 6) as usize;
    let count = *aml.get(p)?;
    p += 1;
    if count < 1 {
        return None;
    }
    let (a, used) = integer(aml.get(p..)?)?;
    p += used;
    let b = if count >= 2 { integer(aml.get(p..)?).map_or(0, |(v, _)| v) } else { 0 };
    Some(SleepType { a, b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_style_package() {
        // QEMU: Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero })
        let aml = [0x10, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(find(&aml), Some(SleepType { a: 0, b: 0 }));
    }

    #[test]
    fn byte_prefix_and_root() {
        let aml = [0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x07, 0, 0];
        assert_eq!(find(&aml), Some(SleepType { a: 5, b: 7 }));
    }

    #[test]
    fn two_byte_pkglength() {
        let aml = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x01, 0x02, 0x01, 0x0a, 0x03];
        assert_eq!(find(&aml), Some(SleepType { a: 1, b: 3 }));
    }

    #[test]
    fn rejects_other_shapes() {
        assert_eq!(find(b""), None);
        assert_eq!(find(b"_S5_"), None); // no NameOp
        assert_eq!(find(&[0x08, b'_', b'S', b'5', b'_', 0x14, 0x00]), None); // a method
        assert_eq!(find(&[0x08, b'_', b'S', b'5', b'_', 0x12]), None); // truncated
        assert_eq!(find(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x02, 0x00]), None); // no elements
        assert_eq!(find(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x03, 0x01, 0x0a]), None);
        // cut integer
    }
}
