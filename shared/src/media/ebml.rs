//! EBML (the binary format of WebM and Matroska): variable-length integers
//! and element headers, for detection and the video probe.

/// The EBML magic: the ID of the EBML header element.
pub const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// An element size meaning "unknown" (live streams, `MediaRecorder`): the
/// element runs to the end of its parent.
pub const UNKNOWN_SIZE: u64 = u64::MAX;

/// Reads an EBML variable-length integer. With `strip_marker` the length
/// marker bit is removed (sizes); without it the raw value is kept (IDs are
/// written with their marker). Returns the value and its length in bytes.
pub fn read_vint(b: &[u8], strip_marker: bool) -> Option<(u64, usize)> {
    let first = *b.first()?;
    if first == 0 {
        return None;
    }
    let len = first.leading_zeros() as usize + 1;
    let bytes = b.get(0..len)?;
    let mut value: u64 = if strip_marker {
        u64::from(first) & ((1u64 << (8 - len)) - 1)
    } else {
        u64::from(first)
    };
    for &byte in &bytes[1..] {
        value = (value << 8) | u64::from(byte);
    }
    Some((value, len))
}

/// An element's header: its ID, its body size ([`UNKNOWN_SIZE`] when the
/// size field is all ones) and the header's length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u64,
    pub size: u64,
    pub len: usize,
}

/// Reads the element header at the start of `b`.
pub fn read_header(b: &[u8]) -> Option<Header> {
    let (id, id_len) = read_vint(b, false)?;
    let (size, size_len) = read_vint(b.get(id_len..)?, true)?;
    // All value bits set: unknown size.
    let all_ones = (1u64 << (7 * size_len)) - 1;
    let size = if size == all_ones { UNKNOWN_SIZE } else { size };
    Some(Header {
        id,
        size,
        len: id_len + size_len,
    })
}

/// A big-endian unsigned integer element body (at most 8 bytes).
pub fn read_uint(body: &[u8]) -> Option<u64> {
    if body.len() > 8 {
        return None;
    }
    Some(body.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// A float element body (4 or 8 bytes).
pub fn read_float(body: &[u8]) -> Option<f64> {
    match body.len() {
        4 => Some(f64::from(f32::from_be_bytes(body.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(body.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vint_reading() {
        assert_eq!(read_vint(&[0x81], true), Some((1, 1)));
        assert_eq!(read_vint(&[0x40, 0x02], true), Some((2, 2)));
        assert_eq!(read_vint(&[0x42, 0x82], false), Some((0x4282, 2)));
        assert_eq!(read_vint(&[0x00], true), None);
        assert_eq!(read_vint(&[0x40], true), None);
    }

    #[test]
    fn headers_with_known_and_unknown_sizes() {
        assert_eq!(
            read_header(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]),
            Some(Header {
                id: 0x1A45_DFA3,
                size: 31,
                len: 5
            })
        );
        let unknown = read_header(&[
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        assert_eq!(unknown.map(|h| h.size), Some(UNKNOWN_SIZE));
        assert_eq!(
            read_header(&[0x1F, 0x43, 0xB6, 0x75, 0xFF]).map(|h| h.size),
            Some(UNKNOWN_SIZE)
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(read_uint(&[0x0F, 0x42, 0x40]), Some(1_000_000));
        assert_eq!(read_uint(&[0; 9]), None);
        assert_eq!(read_float(&2.5f64.to_be_bytes()), Some(2.5));
        assert_eq!(read_float(&2.5f32.to_be_bytes()), Some(2.5));
        assert_eq!(read_float(&[0; 3]), None);
    }
}
