//! Byte sources: where the bytes of a video come from, as ranges. The
//! chunked upload reads them through [`ChunkSource`], whether they sit in S3
//! ([`super::S3Object`]), in a local file ([`FileSource`]) or in memory
//! ([`BytesSource`]).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

/// A failed read from a [`ChunkSource`].
///
/// Sources decide whether trying again could help (a throttled S3 GET) or not
/// (the object is shorter than the plan says), because only they know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    message: String,
    retryable: bool,
}

impl SourceError {
    /// A failure described by `message`; `retryable` when trying again could
    /// help.
    pub fn new(message: impl Into<String>, retryable: bool) -> Self {
        Self {
            message: message.into(),
            retryable,
        }
    }

    /// A failure that may pass (throttling, a network hiccup).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(message, true)
    }

    /// A failure that will happen again (missing object, short file).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(message, false)
    }

    /// Whether trying the same read again could succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// What went wrong, for logs and the job's last error.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An I/O error, retryable only for the kinds that describe a passing state.
    fn from_io(context: &str, err: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        let retryable = matches!(
            err.kind(),
            ErrorKind::Interrupted
                | ErrorKind::TimedOut
                | ErrorKind::WouldBlock
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
        );
        Self::new(format!("{context}: {err}"), retryable)
    }
}

/// A source of byte ranges of the video, so that the uploader does not care
/// whether the bytes come from S3 ranged GETs, a local file or memory.
pub trait ChunkSource: Send + Sync {
    /// Reads bytes [start, end) exactly.
    fn read_range(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Bytes, SourceError>> + Send;
}

/// Checks that `start..end` is a non-inverted range within `len` bytes and
/// returns its length as a `usize`.
fn range_len(start: u64, end: u64, len: u64) -> Result<usize, SourceError> {
    if start > end || end > len {
        return Err(SourceError::permanent(format!(
            "range {start}..{end} is outside the {len}-byte video"
        )));
    }
    usize::try_from(end - start)
        .map_err(|_| SourceError::permanent(format!("range {start}..{end} does not fit in memory")))
}

/// A video in a local file, read with positional reads on the blocking pool
/// so that the read of the next chunk can run while the current one is sent.
/// Used by the CLI and the benchmarks.
#[derive(Debug, Clone)]
pub struct FileSource {
    file: Arc<std::fs::File>,
    len: u64,
}

impl FileSource {
    /// Opens `path` and notes its length (which the plan should be built from).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let file = tokio::fs::File::open(path.as_ref())
            .await
            .map_err(|e| SourceError::from_io("cannot open the video file", &e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| SourceError::from_io("cannot read the video file's size", &e))?
            .len();
        let file = file.into_std().await;
        Ok(Self {
            file: Arc::new(file),
            len,
        })
    }

    /// Size of the file when it was opened, in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file was empty when it was opened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl ChunkSource for FileSource {
    fn read_range(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Bytes, SourceError>> + Send {
        let file = Arc::clone(&self.file);
        let len = self.len;
        async move {
            let n = range_len(start, end, len)?;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                read_exact_at(&file, &mut buf, start).map(|()| buf)
            })
            .await
            .map_err(|e| SourceError::permanent(format!("the file read task failed: {e}")))?;
            let buf = read.map_err(|e| SourceError::from_io("cannot read the video file", &e))?;
            Ok(Bytes::from(buf))
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A video already in memory; slices are cheap clones of the same buffer.
/// Used by tests.
#[derive(Debug, Clone)]
pub struct BytesSource {
    data: Bytes,
}

impl BytesSource {
    /// A source over `data`, without copying it.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self { data: data.into() }
    }

    /// The video's length in bytes.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl ChunkSource for BytesSource {
    fn read_range(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Bytes, SourceError>> + Send {
        let result = range_len(start, end, self.len()).map(|n| {
            // range_len checked start <= end <= len, so both fit in usize.
            let from = start as usize;
            self.data.slice(from..from + n)
        });
        std::future::ready(result)
    }
}
