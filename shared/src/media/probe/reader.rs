//! Ranged reads for the probe: one window from the start of the object,
//! kept, and exact reads for anything else, counted.

use bytes::Bytes;

use super::ProbeError;
use crate::storage::ChunkSource;

/// How much of the start of the object the first read takes: a `ftyp` and,
/// in a file written for streaming, its whole `moov`; or a WebM file's
/// headers. Small enough to cost nothing next to an upload.
pub const PROBE_WINDOW: u64 = 256 * 1024;

/// Largest single header read (an MP4 `moov`, a WebM `Tracks`): an hour of
/// 60 fps video has a `moov` of a few megabytes.
pub const MAX_HEADER_BYTES: u64 = 64 * 1024 * 1024;

/// Reads byte ranges of one object through a [`ChunkSource`], keeping the
/// first window and counting what it reads.
pub struct RangeReader<'a, S> {
    source: &'a S,
    size: u64,
    head: Option<Bytes>,
    reads: u32,
    bytes_read: u64,
}

impl<'a, S: ChunkSource> RangeReader<'a, S> {
    /// A reader of `source`, an object of `size` bytes; nothing is read
    /// yet.
    pub fn new(source: &'a S, size: u64) -> Self {
        Self {
            source,
            size,
            head: None,
            reads: 0,
            bytes_read: 0,
        }
    }

    /// The object's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many ranged reads were made so far.
    pub fn reads(&self) -> u32 {
        self.reads
    }

    /// How many bytes those reads fetched, in all.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The first [`PROBE_WINDOW`] bytes (fewer in a smaller object).
    pub async fn head(&mut self) -> Result<Bytes, ProbeError> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        let end = self.size.min(PROBE_WINDOW);
        let head = if end == 0 {
            Bytes::new()
        } else {
            self.fetch(0, end).await?
        };
        self.head = Some(head.clone());
        Ok(head)
    }

    /// Bytes `start..start + len`, cut at the end of the object: from the
    /// first window when it holds them, else one ranged read.
    pub async fn read(&mut self, start: u64, len: u64) -> Result<Bytes, ProbeError> {
        if len > MAX_HEADER_BYTES {
            return Err(ProbeError::Unreadable(format!(
                "a header of {len} bytes is larger than the {MAX_HEADER_BYTES} read"
            )));
        }
        let end = start.saturating_add(len).min(self.size);
        if start >= end {
            return Ok(Bytes::new());
        }
        let head = self.head().await?;
        if end <= head.len() as u64 {
            return Ok(head.slice(start as usize..end as usize));
        }
        self.fetch(start, end).await
    }

    async fn fetch(&mut self, start: u64, end: u64) -> Result<Bytes, ProbeError> {
        let bytes = self.source.read_range(start, end).await?;
        self.reads += 1;
        self.bytes_read += bytes.len() as u64;
        Ok(bytes)
    }
}
