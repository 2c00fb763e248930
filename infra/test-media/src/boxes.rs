//! ISO BMFF boxes, written by hand: a size, a four-character type, a body.
//!
//! The generators build files from these few helpers rather than from the
//! parser the probe uses, so that a test of the probe reads bytes the probe's
//! own library did not write.

/// A box: 32-bit size, type, body.
pub fn plain(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(8 + body.len()).expect("box under 4 GiB");
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// A full box: version and 24-bit flags before the body.
pub fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(4 + body.len());
    inner.push(version);
    inner.extend_from_slice(&flags.to_be_bytes()[1..]);
    inner.extend_from_slice(body);
    plain(kind, &inner)
}

/// A container box holding `children` one after another.
pub fn container(kind: &[u8; 4], children: &[Vec<u8>]) -> Vec<u8> {
    plain(kind, &children.concat())
}

/// The header of a box whose body (`body_len` bytes) is written separately,
/// as `mdat` is: a 64-bit size when it does not fit 32 bits.
pub fn header(kind: &[u8; 4], body_len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    if body_len + 8 <= u64::from(u32::MAX) {
        out.extend_from_slice(&u32::try_from(body_len + 8).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(kind);
    } else {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(&(body_len + 16).to_be_bytes());
    }
    out
}

/// `ftyp` with a major brand and compatible brands.
pub fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
    let mut body = major.to_vec();
    body.extend_from_slice(&0u32.to_be_bytes());
    for brand in compatible {
        body.extend_from_slice(*brand);
    }
    plain(b"ftyp", &body)
}

/// Big-endian writer helpers for box bodies.
#[derive(Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    pub fn zeros(mut self, n: usize) -> Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// One box found by [`children`]: its type, where its body starts and the
/// body itself.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub kind: [u8; 4],
    /// Offset of the whole box within the slice searched.
    pub start: usize,
    pub body: &'a [u8],
}

/// The boxes laid one after another in `data` (a file, or a container's
/// body). Stops at the first box that does not fit.
pub fn children(data: &[u8]) -> Vec<Found<'_>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let kind = [data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]];
        let (header_len, total) = match size {
            0 => (8, data.len() - pos),
            1 => {
                let Some(large) = data.get(pos + 8..pos + 16) else {
                    break;
                };
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                (
                    16,
                    usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX),
                )
            }
            n => (8, n as usize),
        };
        if total < header_len || pos + total > data.len() {
            break;
        }
        out.push(Found {
            kind,
            start: pos,
            body: &data[pos + header_len..pos + total],
        });
        pos += total;
    }
    out
}

/// The first child box of type `kind`.
pub fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<Found<'a>> {
    children(data).into_iter().find(|b| &b.kind == kind)
}
