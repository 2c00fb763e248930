//! Chunked upload of a video to the `upload_url` returned by init
//! (TIKTOK_API.md section 3).
//!
//! The chunks of a [`ChunkPlan`] go up one after another, as TikTok demands,
//! each as a `PUT` of raw bytes with an exact `Content-Range`. Two things keep
//! a Lambda invocation cheap and robust:
//!
//! - **Overlap.** While chunk *n* is being sent, chunk *n + 1* is read from the
//!   [`ChunkSource`] (an S3 ranged GET, a file), so the wall time is about
//!   `max(read, write)` per chunk and memory stays near two chunks, whatever
//!   the video size.
//! - **Resync.** The upload host reports what it has in a `Content-Range`
//!   response header. After a lost response, a crash or a resume from a saved
//!   offset, a `416` (or a `206` that disagrees with what we sent) tells us
//!   where to go on, and we resume at the chunk boundary at or below it.
//!
//! The upload URL carries an upload token in its query: it is never logged
//! (only its host is) and never appears in an error message.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::chunk_plan::{Chunk, ChunkPlan, ChunkPlanError};

/// How much of an error response body is kept for the error message.
const BODY_EXCERPT_CHARS: usize = 300;
/// How many bytes of a response body are read at most; the rest is dropped.
const BODY_READ_LIMIT: usize = 4096;
/// Query values at least this long are treated as secrets and redacted from
/// response excerpts (upload tokens and ids are much longer).
const MIN_SECRET_LEN: usize = 8;

// ---------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------

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

    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

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
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self { data: data.into() }
    }

    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

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

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// The `Content-Type` of the chunks: the three containers TikTok accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VideoContentType {
    Mp4,
    Mov,
    WebM,
}

impl VideoContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::Mov => "video/quicktime",
            Self::WebM => "video/webm",
        }
    }

    /// From a MIME type such as an S3 object's `Content-Type`.
    pub fn from_mime(mime: &str) -> Option<Self> {
        let essence = mime.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "video/mp4" => Some(Self::Mp4),
            "video/quicktime" => Some(Self::Mov),
            "video/webm" => Some(Self::WebM),
            _ => None,
        }
    }

    /// From a file name extension (without the dot), case-insensitively.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "mp4" => Some(Self::Mp4),
            "mov" => Some(Self::Mov),
            "webm" => Some(Self::WebM),
            _ => None,
        }
    }
}

impl std::fmt::Display for VideoContentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How hard to try each chunk before giving up.
///
/// Backoff is exponential with full jitter (a uniform delay between zero and
/// `min(max_delay, base_delay * 2^(retry - 1))`), so that many uploads failing
/// together do not come back together. A `Retry-After` header (in seconds) on
/// a 429 or 503 replaces the backoff, capped at `max_retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// PUTs per chunk before giving up, the first one included; also bounds
    /// resyncs, so a server that keeps answering 416 cannot loop forever.
    /// Zero is treated as one.
    pub max_attempts_per_chunk: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Longest `Retry-After` obeyed; the upload URL only lives an hour.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts_per_chunk: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Retries without any waiting (`Retry-After` included): for tests.
    pub fn immediate(max_attempts_per_chunk: u32) -> Self {
        Self {
            max_attempts_per_chunk,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retry_after: Duration::ZERO,
        }
    }

    /// The jittered backoff before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let cap = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if cap_nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::random_range(0..=cap_nanos))
    }

    /// The wait before retry number `retry`: the server's `Retry-After` when
    /// it sent one (capped), the jittered backoff otherwise.
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => self.backoff(retry),
        }
    }

    fn attempts(&self) -> u32 {
        self.max_attempts_per_chunk.max(1)
    }
}

/// Told after each chunk the server accepted, so the caller can save where to
/// resume (e.g. in the job's DynamoDB record) before the next chunk goes up.
pub trait UploadProgress: Send {
    /// `next_offset` is the first byte not yet sent (the video size once the
    /// last chunk is in); `chunk_index` the chunk just accepted.
    fn chunk_done(&mut self, next_offset: u64, chunk_index: u64)
    -> impl Future<Output = ()> + Send;
}

/// No progress tracking.
impl UploadProgress for () {
    fn chunk_done(
        &mut self,
        _next_offset: u64,
        _chunk_index: u64,
    ) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UploadReport {
    /// Chunks the server accepted during this call (206 or 201).
    pub chunks_sent: u64,
    /// Bytes in those chunks.
    pub bytes_sent: u64,
    /// PUTs repeated after a passing failure (5xx, 429, 408, connection
    /// error, timeout).
    pub retries: u32,
    /// Times the server's reported progress moved us to another chunk (416,
    /// or a 206 that disagreed with what we sent).
    pub resyncs: u32,
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why an upload stopped. No variant carries the upload URL.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the chunk plan is inconsistent: {0}")]
    InvalidPlan(#[from] ChunkPlanError),
    #[error("the upload URL is not usable: {0}")]
    InvalidUrl(String),
    #[error("cannot start at byte {offset}: it is not the start of a chunk of the plan")]
    MisalignedOffset { offset: u64 },
    #[error("the upload URL has expired (HTTP 403); init the upload again")]
    UrlExpired,
    #[error("TikTok knows no upload for this URL (HTTP 404); init the upload again")]
    UnknownUpload,
    #[error("TikTok rejected chunk {chunk_index} with HTTP {status}: {body}")]
    Rejected {
        chunk_index: u64,
        status: u16,
        /// The start of the response body, with URL secrets redacted.
        body: String,
    },
    #[error("the upload host broke the protocol at chunk {chunk_index}: {detail}")]
    Protocol { chunk_index: u64, detail: String },
    #[error("chunk {chunk_index} failed after {attempts} attempts; last failure: {last_failure}")]
    AttemptsExhausted {
        chunk_index: u64,
        attempts: u32,
        last_failure: String,
    },
    #[error("cannot read chunk {chunk_index} (bytes {start}..{end}) of the video: {source}")]
    Source {
        chunk_index: u64,
        start: u64,
        end: u64,
        #[source]
        source: SourceError,
    },
    #[error("cannot build the chunk request: {0}")]
    Request(String),
}

impl UploadError {
    /// Whether running the whole upload again later (from the saved offset,
    /// with the same URL) could succeed: true for passing failures that
    /// outlasted the retries, false when the URL, plan or video is the problem.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::AttemptsExhausted { .. } => true,
            Self::Source { source, .. } => source.is_retryable(),
            Self::InvalidPlan(_)
            | Self::InvalidUrl(_)
            | Self::MisalignedOffset { .. }
            | Self::UrlExpired
            | Self::UnknownUpload
            | Self::Rejected { .. }
            | Self::Protocol { .. }
            | Self::Request(_) => false,
        }
    }

    /// Whether the upload can only go on with a fresh init (a new upload URL,
    /// from byte 0).
    pub fn needs_new_upload(&self) -> bool {
        matches!(self, Self::UrlExpired | Self::UnknownUpload)
    }
}

// ---------------------------------------------------------------------------
// Uploader
// ---------------------------------------------------------------------------

/// Sends a video's chunks to an upload URL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Uploader {
    http: reqwest::Client,
    policy: RetryPolicy,
    chunk_timeout: Option<Duration>,
}

/// What one PUT came to.
enum Attempt {
    /// 206 agreeing with what we sent.
    Accepted,
    /// 201 on the last chunk.
    Completed,
    /// The server has something else than we thought; go on from this offset.
    Resync {
        offset: u64,
        why: String,
    },
    /// A passing failure; try the same chunk again.
    Transient {
        why: String,
        retry_after: Option<Duration>,
    },
    Fatal(UploadError),
}

/// What sending one chunk (with its retries) came to.
enum Sent {
    Accepted,
    Completed,
    Resync(u64),
}

/// Attempts spent since the upload last reached new ground.
struct Budget {
    used: u32,
    /// Highest offset the server ever confirmed; the budget resets only when
    /// this grows, so a server that accepts and then forgets cannot loop us.
    high_water: u64,
}

/// Everything about one upload that every PUT needs.
struct Target<'a> {
    url: &'a Url,
    host: &'a str,
    plan: &'a ChunkPlan,
    content_type: VideoContentType,
    /// Long query values, redacted from any response excerpt.
    secrets: &'a [String],
}

impl Uploader {
    pub fn new(http: reqwest::Client, policy: RetryPolicy) -> Self {
        Self {
            http,
            policy,
            chunk_timeout: None,
        }
    }

    /// Gives up on a single PUT (counted as a passing failure and retried)
    /// when it takes longer than `timeout`; without it the client's own
    /// timeout, if any, applies.
    pub fn with_chunk_timeout(mut self, timeout: Duration) -> Self {
        self.chunk_timeout = Some(timeout);
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Uploads the chunks of `plan` from `start_offset` (a chunk boundary;
    /// 0 for a fresh upload, the saved offset when resuming) to `upload_url`.
    ///
    /// `progress` hears of each accepted chunk before the next one is sent.
    /// If the server's progress differs from `start_offset`, it answers 416
    /// and the upload resyncs to the server's position.
    pub async fn upload<S: ChunkSource, P: UploadProgress>(
        &self,
        upload_url: &str,
        plan: &ChunkPlan,
        content_type: VideoContentType,
        source: &S,
        start_offset: u64,
        progress: &mut P,
    ) -> Result<UploadReport, UploadError> {
        plan.check_structure()?;
        let url = parse_upload_url(upload_url)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let secrets = query_secrets(&url);
        let target = Target {
            url: &url,
            host: &host,
            plan,
            content_type,
            secrets: &secrets,
        };

        let mut report = UploadReport::default();
        if start_offset == plan.video_size {
            tracing::info!(%host, "upload already complete at the saved offset");
            return Ok(report);
        }
        if plan.chunk_at_offset(start_offset).is_none() {
            return Err(UploadError::MisalignedOffset {
                offset: start_offset,
            });
        }

        tracing::info!(
            %host,
            video_size = plan.video_size,
            chunk_size = plan.chunk_size,
            chunks = plan.total_chunk_count,
            start_offset,
            "upload starting"
        );
        let mut budget = Budget {
            used: 0,
            // Zero, not start_offset: after resyncing below a stale saved
            // offset, each chunk the server accepts is new ground again.
            high_water: 0,
        };
        // Chunks already read, by start offset: the one being sent and the
        // next one, so memory stays near two chunks.
        let mut held: Vec<(u64, Bytes)> = Vec::with_capacity(2);
        let mut offset = start_offset;

        loop {
            let Some(chunk) = plan.chunk_at_offset(offset) else {
                // Only a resync lands here: the server reports every byte but
                // its 201 was lost (the connection dropped after the last chunk).
                // Tell the caller so the saved offset says "done".
                tracing::info!(%host, "upload host reports every byte received");
                let last_index = plan.total_chunk_count.saturating_sub(1);
                progress.chunk_done(plan.video_size, last_index).await;
                return Ok(report);
            };
            let next = plan.chunk(chunk.index + 1);
            held.retain(|(start, _)| {
                *start == chunk.start || next.is_some_and(|n| n.start == *start)
            });

            let data = match take_held(&mut held, chunk.start) {
                Some(data) => data,
                None => self.read_with_retries(source, chunk).await?,
            };
            let prefetch = next.filter(|n| !held.iter().any(|(start, _)| *start == n.start));

            let (sent, prefetched) = tokio::join!(
                self.send_chunk(&target, chunk, &data, &mut budget, &mut report),
                async {
                    match prefetch {
                        Some(n) => Some((n, read_checked(source, n).await)),
                        None => None,
                    }
                }
            );
            held.push((chunk.start, data));
            match prefetched {
                Some((n, Ok(bytes))) => held.push((n.start, bytes)),
                Some((n, Err(e))) => {
                    // Read again, with retries, when it is needed.
                    tracing::debug!(chunk = n.index, error = %e, "prefetch failed");
                }
                None => {}
            }

            match sent? {
                Sent::Accepted => {
                    report.chunks_sent += 1;
                    report.bytes_sent += chunk.len();
                    progress.chunk_done(chunk.end, chunk.index).await;
                    offset = chunk.end;
                }
                Sent::Completed => {
                    report.chunks_sent += 1;
                    report.bytes_sent += chunk.len();
                    progress.chunk_done(chunk.end, chunk.index).await;
                    tracing::info!(
                        %host,
                        chunks_sent = report.chunks_sent,
                        retries = report.retries,
                        resyncs = report.resyncs,
                        "upload complete"
                    );
                    return Ok(report);
                }
                Sent::Resync(to) => offset = to,
            }
        }
    }

    /// Reads a chunk, retrying failures the source calls retryable.
    async fn read_with_retries<S: ChunkSource>(
        &self,
        source: &S,
        chunk: Chunk,
    ) -> Result<Bytes, UploadError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match read_checked(source, chunk).await {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.is_retryable() && attempt < self.policy.attempts() => {
                    let delay = self.policy.backoff(attempt);
                    tracing::warn!(chunk = chunk.index, attempt, error = %e, "retrying a source read");
                    sleep_unless_zero(delay).await;
                }
                Err(source) => {
                    return Err(UploadError::Source {
                        chunk_index: chunk.index,
                        start: chunk.start,
                        end: chunk.end,
                        source,
                    });
                }
            }
        }
    }

    /// Sends one chunk, retrying passing failures, until the server accepts
    /// it, reports other progress, or the budget runs out.
    async fn send_chunk(
        &self,
        target: &Target<'_>,
        chunk: Chunk,
        data: &Bytes,
        budget: &mut Budget,
        report: &mut UploadReport,
    ) -> Result<Sent, UploadError> {
        let max = self.policy.attempts();
        loop {
            budget.used += 1;
            match self.put_once(target, chunk, data.clone()).await {
                outcome @ (Attempt::Accepted | Attempt::Completed) => {
                    if chunk.end > budget.high_water {
                        budget.high_water = chunk.end;
                        budget.used = 0;
                    }
                    return Ok(match outcome {
                        Attempt::Completed => Sent::Completed,
                        _ => Sent::Accepted,
                    });
                }
                Attempt::Resync { offset, why } => {
                    report.resyncs += 1;
                    tracing::info!(
                        host = %target.host,
                        chunk = chunk.index,
                        resume_at = offset,
                        why = %why,
                        "resyncing with the upload host"
                    );
                    if budget.used >= max {
                        return Err(UploadError::AttemptsExhausted {
                            chunk_index: chunk.index,
                            attempts: budget.used,
                            last_failure: why,
                        });
                    }
                    return Ok(Sent::Resync(offset));
                }
                Attempt::Transient { why, retry_after } => {
                    if budget.used >= max {
                        return Err(UploadError::AttemptsExhausted {
                            chunk_index: chunk.index,
                            attempts: budget.used,
                            last_failure: why,
                        });
                    }
                    report.retries += 1;
                    let delay = self.policy.delay(budget.used, retry_after);
                    tracing::warn!(
                        host = %target.host,
                        chunk = chunk.index,
                        attempt = budget.used,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        why = %why,
                        "retrying a chunk"
                    );
                    sleep_unless_zero(delay).await;
                }
                Attempt::Fatal(e) => return Err(e),
            }
        }
    }

    /// One PUT of one chunk, and what its answer means.
    async fn put_once(&self, target: &Target<'_>, chunk: Chunk, data: Bytes) -> Attempt {
        let plan = target.plan;
        let mut request = self
            .http
            .put(target.url.clone())
            .header(CONTENT_TYPE, target.content_type.as_str())
            .header(CONTENT_LENGTH, chunk.len())
            .header(CONTENT_RANGE, chunk.content_range(plan.video_size))
            .body(data);
        if let Some(timeout) = self.chunk_timeout {
            request = request.timeout(timeout);
        }
        tracing::debug!(
            host = %target.host,
            chunk = chunk.index,
            start = chunk.start,
            len = chunk.len(),
            "sending chunk"
        );

        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return transport_failure(e, chunk),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body_excerpt(response).await;
        let is_last = chunk.end == plan.video_size;

        match status {
            StatusCode::CREATED if is_last => Attempt::Completed,
            StatusCode::CREATED => Attempt::Fatal(UploadError::Protocol {
                chunk_index: chunk.index,
                detail: format!(
                    "HTTP 201 (upload complete) after chunk {} of {}",
                    chunk.index + 1,
                    plan.total_chunk_count
                ),
            }),
            StatusCode::PARTIAL_CONTENT if is_last => Attempt::Fatal(UploadError::Protocol {
                chunk_index: chunk.index,
                detail: "HTTP 206 (more expected) after the last chunk".to_owned(),
            }),
            StatusCode::PARTIAL_CONTENT => match server_progress(&headers) {
                ServerProgress::Absent => Attempt::Accepted,
                ServerProgress::Nothing => Attempt::Resync {
                    offset: 0,
                    why: "HTTP 206 reporting nothing received".to_owned(),
                },
                ServerProgress::Through(n) => {
                    let offset = plan.boundary_at_or_below(n.saturating_add(1));
                    if offset == chunk.end {
                        Attempt::Accepted
                    } else {
                        Attempt::Resync {
                            offset,
                            why: format!(
                                "HTTP 206 reporting progress 0-{n} after sending {}",
                                chunk.content_range(plan.video_size)
                            ),
                        }
                    }
                }
            },
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let (offset, reported) = match server_progress(&headers) {
                    ServerProgress::Absent => (0, "no progress".to_owned()),
                    ServerProgress::Nothing => (0, "nothing received".to_owned()),
                    ServerProgress::Through(n) => (
                        plan.boundary_at_or_below(n.saturating_add(1)),
                        format!("progress 0-{n}"),
                    ),
                };
                Attempt::Resync {
                    offset,
                    why: format!("HTTP 416 reporting {reported}"),
                }
            }
            StatusCode::FORBIDDEN => Attempt::Fatal(UploadError::UrlExpired),
            StatusCode::NOT_FOUND => Attempt::Fatal(UploadError::UnknownUpload),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Attempt::Transient {
                why: format!("HTTP {status}"),
                retry_after: retry_after(&headers),
            },
            StatusCode::REQUEST_TIMEOUT => Attempt::Transient {
                why: format!("HTTP {status}"),
                retry_after: None,
            },
            s if s.is_server_error() => Attempt::Transient {
                why: format!("HTTP {status}"),
                retry_after: None,
            },
            s if s.is_client_error() => Attempt::Fatal(UploadError::Rejected {
                chunk_index: chunk.index,
                status: s.as_u16(),
                body: redact(&body, target.secrets),
            }),
            s => Attempt::Fatal(UploadError::Protocol {
                chunk_index: chunk.index,
                detail: format!("unexpected HTTP {s}"),
            }),
        }
    }
}

/// Reads a chunk and checks the source kept its promise of exact ranges:
/// a short read would otherwise go out with a lying `Content-Length`.
async fn read_checked<S: ChunkSource>(source: &S, chunk: Chunk) -> Result<Bytes, SourceError> {
    let bytes = source.read_range(chunk.start, chunk.end).await?;
    if bytes.len() as u64 != chunk.len() {
        return Err(SourceError::permanent(format!(
            "the source returned {} bytes for range {}..{}",
            bytes.len(),
            chunk.start,
            chunk.end
        )));
    }
    Ok(bytes)
}

fn take_held(held: &mut Vec<(u64, Bytes)>, start: u64) -> Option<Bytes> {
    let position = held.iter().position(|(s, _)| *s == start)?;
    Some(held.swap_remove(position).1)
}

async fn sleep_unless_zero(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Parses the upload URL; errors name the problem, never the URL.
fn parse_upload_url(raw: &str) -> Result<Url, UploadError> {
    let url = Url::parse(raw).map_err(|e| UploadError::InvalidUrl(e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(UploadError::InvalidUrl(format!(
            "scheme {:?} is not http(s)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UploadError::InvalidUrl("it has no host".to_owned()));
    }
    Ok(url)
}

/// Query values long enough to be tokens, to be kept out of error messages.
fn query_secrets(url: &Url) -> Vec<String> {
    url.query_pairs()
        .map(|(_, value)| value.into_owned())
        .filter(|value| value.len() >= MIN_SECRET_LEN)
        .collect()
}

/// Cuts a response body to an excerpt and hides any URL secret it echoes.
fn redact(body: &str, secrets: &[String]) -> String {
    let mut text: String = body.trim().chars().take(BODY_EXCERPT_CHARS).collect();
    for secret in secrets {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text
}

/// A connection-level failure: retried unless the request itself is broken.
fn transport_failure(err: reqwest::Error, chunk: Chunk) -> Attempt {
    // reqwest puts the URL (token included) in its Display; drop it.
    let err = err.without_url();
    let mut why = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        why.push_str(": ");
        why.push_str(&inner.to_string());
        cause = inner.source();
    }
    if err.is_builder() {
        Attempt::Fatal(UploadError::Request(why))
    } else if err.is_redirect() {
        Attempt::Fatal(UploadError::Protocol {
            chunk_index: chunk.index,
            detail: why,
        })
    } else {
        Attempt::Transient {
            why,
            retry_after: None,
        }
    }
}

/// Reads at most [`BODY_READ_LIMIT`] bytes of the body, for error messages
/// and so the connection can be reused. Failures just shorten the excerpt.
async fn read_body_excerpt(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(piece)) => {
                let room = BODY_READ_LIMIT - body.len();
                body.extend_from_slice(&piece[..piece.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// What the upload host says it has, from its `Content-Range` response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerProgress {
    /// No header, or one we cannot read.
    Absent,
    /// `bytes */TOTAL`: nothing received.
    Nothing,
    /// `bytes 0-N/TOTAL`. TikTok's docs call N the uploaded bytes, while HTTP
    /// makes it the last byte's index; callers resume at the chunk boundary
    /// at or below N + 1, which is right under both readings because chunks
    /// are far longer than one byte.
    Through(u64),
}

fn server_progress(headers: &HeaderMap) -> ServerProgress {
    headers
        .get(CONTENT_RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_progress)
        .unwrap_or(ServerProgress::Absent)
}

fn parse_progress(value: &str) -> Option<ServerProgress> {
    let value = value.trim();
    let unit = value.get(..5)?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, _total) = value[5..].trim_start().split_once('/')?;
    let range = range.trim();
    if range == "*" {
        return Some(ServerProgress::Nothing);
    }
    let (first, last) = range.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last: u64 = last.trim().parse().ok()?;
    // Progress always counts from the first byte; anything else is not a
    // progress report we understand.
    (first == 0).then_some(ServerProgress::Through(last))
}

/// `Retry-After` in whole seconds (the HTTP-date form is not used by TikTok's
/// upload host and is ignored, falling back to backoff).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use sha2::{Digest, Sha256};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;

    const TOKEN: &str = "SECRET-UPLOAD-TOKEN-0123456789";

    /// How the test server reports progress: HTTP's last-byte index, or the
    /// byte count TikTok's docs suggest.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Style {
        LastIndex,
        ByteCount,
    }

    /// A misbehaviour injected for one request (by its 0-based number).
    #[derive(Debug, Clone, Copy)]
    enum Fault {
        /// Answer with this status (and `Retry-After`), keep nothing.
        Status(u16, Option<&'static str>),
        /// Read the request, keep nothing, close without answering.
        DropBeforeCommit,
        /// Keep the chunk, then close without answering (a lost response).
        DropAfterCommit,
        /// Answer 416 with the true progress, keep nothing.
        Spurious416,
        /// Keep nothing but answer 206 with the (old) true progress.
        Disagreeing206,
        /// Answer 201 whatever the chunk.
        Created,
        /// Never answer.
        Hang,
        /// Lose everything received and answer 416 `bytes */TOTAL`.
        Forget,
    }

    #[derive(Debug, Clone)]
    struct Seen {
        target: String,
        content_type: Option<String>,
        content_length: Option<u64>,
        content_range: Option<String>,
        body_len: u64,
    }

    #[derive(Default)]
    struct State {
        total: u64,
        style: Option<Style>,
        received: Vec<u8>,
        requests: Vec<Seen>,
        faults: HashMap<usize, Fault>,
        always: Option<Fault>,
        /// Protocol breaches the server noticed.
        violations: Vec<String>,
        /// Shared log with an instrumented source, to check the overlap.
        events: Option<Arc<Mutex<Vec<String>>>>,
    }

    struct TestServer {
        url: String,
        state: Arc<Mutex<State>>,
    }

    impl TestServer {
        async fn start(total: u64, style: Style) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let state = Arc::new(Mutex::new(State {
                total,
                style: Some(style),
                ..State::default()
            }));
            let shared = Arc::clone(&state);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(stream, Arc::clone(&shared)));
                }
            });
            TestServer {
                url: format!("http://{addr}/video/?upload_id=77&upload_token={TOKEN}"),
                state,
            }
        }

        fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
            f(&mut self.state.lock().unwrap())
        }

        fn requests(&self) -> Vec<Seen> {
            self.with(|s| s.requests.clone())
        }

        fn received_sha(&self) -> String {
            self.with(|s| hex::encode(Sha256::digest(&s.received)))
        }

        fn violations(&self) -> Vec<String> {
            self.with(|s| s.violations.clone())
        }
    }

    async fn serve_connection(mut stream: TcpStream, state: Arc<Mutex<State>>) {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            // Head.
            let head_end = loop {
                if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break pos + 4;
                }
                let mut tmp = [0u8; 8192];
                match stream.read(&mut tmp).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            buf.drain(..head_end);
            let mut lines = head.split("\r\n");
            let request_line = lines.next().unwrap_or_default().to_owned();
            let mut headers: Vec<(String, String)> = Vec::new();
            for line in lines.filter(|l| !l.is_empty()) {
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let header = |name: &str| {
                let all: Vec<&String> = headers
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v)
                    .collect();
                all.first().map(|v| (*v).clone())
            };
            let length: u64 = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            // Body.
            while (buf.len() as u64) < length {
                let mut tmp = [0u8; 65536];
                match stream.read(&mut tmp).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            }
            let body: Vec<u8> = buf.drain(..length as usize).collect();

            let (method, target) = {
                let mut parts = request_line.split(' ');
                (
                    parts.next().unwrap_or_default().to_owned(),
                    parts.next().unwrap_or_default().to_owned(),
                )
            };
            let reply = {
                let mut s = state.lock().unwrap();
                let number = s.requests.len();
                let seen = Seen {
                    target: target.clone(),
                    content_type: header("content-type"),
                    content_length: header("content-length").and_then(|v| v.parse().ok()),
                    content_range: header("content-range"),
                    body_len: body.len() as u64,
                };
                if headers
                    .iter()
                    .filter(|(k, _)| k == "content-length")
                    .count()
                    != 1
                {
                    s.violations
                        .push(format!("request {number}: not one Content-Length"));
                }
                if method != "PUT" {
                    s.violations
                        .push(format!("request {number}: method {method}"));
                }
                if !target.starts_with("/video/?upload_id=77&upload_token=") {
                    s.violations
                        .push(format!("request {number}: target {target}"));
                }
                let start = seen
                    .content_range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes "))
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(a, _)| a.parse::<u64>().ok());
                if let Some(events) = &s.events {
                    events
                        .lock()
                        .unwrap()
                        .push(format!("put {}", start.unwrap_or(u64::MAX)));
                }
                s.requests.push(seen.clone());
                let fault = s.faults.remove(&number).or(s.always);
                handle(&mut s, number, &seen, &body, fault)
            };
            match reply {
                Reply::Drop => return,
                Reply::Hang => {
                    tokio::time::sleep(Duration::from_secs(3_600)).await;
                    return;
                }
                Reply::Status { code, headers } => {
                    let mut response = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n");
                    for (k, v) in headers {
                        response.push_str(&format!("{k}: {v}\r\n"));
                    }
                    response.push_str("\r\n");
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    enum Reply {
        Drop,
        Hang,
        Status {
            code: u16,
            headers: Vec<(&'static str, String)>,
        },
    }

    fn progress_header(s: &State) -> (&'static str, String) {
        let have = s.received.len() as u64;
        let value = match (s.style, have) {
            (Some(Style::ByteCount), n) => format!("bytes 0-{n}/{}", s.total),
            (_, 0) => format!("bytes */{}", s.total),
            (_, n) => format!("bytes 0-{}/{}", n - 1, s.total),
        };
        ("content-range", value)
    }

    /// The strict part of the server: checks the headers, keeps the bytes.
    fn handle(
        s: &mut State,
        number: usize,
        seen: &Seen,
        body: &[u8],
        fault: Option<Fault>,
    ) -> Reply {
        match fault {
            Some(Fault::Status(code, retry_after)) => {
                let headers = retry_after
                    .map(|v| vec![("retry-after", v.to_owned())])
                    .unwrap_or_default();
                return Reply::Status { code, headers };
            }
            Some(Fault::DropBeforeCommit) => return Reply::Drop,
            Some(Fault::Hang) => return Reply::Hang,
            Some(Fault::Forget) => {
                s.received.clear();
                return Reply::Status {
                    code: 416,
                    headers: vec![progress_header(s)],
                };
            }
            Some(Fault::Spurious416) => {
                return Reply::Status {
                    code: 416,
                    headers: vec![progress_header(s)],
                };
            }
            Some(Fault::Disagreeing206) => {
                return Reply::Status {
                    code: 206,
                    headers: vec![progress_header(s)],
                };
            }
            Some(Fault::Created) => {
                return Reply::Status {
                    code: 201,
                    headers: vec![],
                };
            }
            Some(Fault::DropAfterCommit) | None => {}
        }

        if !matches!(
            seen.content_type.as_deref(),
            Some("video/mp4" | "video/quicktime" | "video/webm")
        ) {
            s.violations.push(format!(
                "request {number}: content type {:?}",
                seen.content_type
            ));
            return Reply::Status {
                code: 400,
                headers: vec![],
            };
        }
        if seen.content_length != Some(seen.body_len) {
            s.violations
                .push(format!("request {number}: content length"));
            return Reply::Status {
                code: 400,
                headers: vec![],
            };
        }
        let Some((first, last, total)) =
            seen.content_range.as_deref().and_then(parse_request_range)
        else {
            s.violations.push(format!(
                "request {number}: content range {:?}",
                seen.content_range
            ));
            return Reply::Status {
                code: 400,
                headers: vec![],
            };
        };
        if total != s.total || last < first || last - first + 1 != seen.body_len {
            s.violations
                .push(format!("request {number}: range {first}-{last}/{total}"));
            return Reply::Status {
                code: 400,
                headers: vec![],
            };
        }
        if first != s.received.len() as u64 {
            return Reply::Status {
                code: 416,
                headers: vec![progress_header(s)],
            };
        }
        s.received.extend_from_slice(body);
        if matches!(fault, Some(Fault::DropAfterCommit)) {
            return Reply::Drop;
        }
        if s.received.len() as u64 == s.total {
            Reply::Status {
                code: 201,
                headers: vec![],
            }
        } else {
            Reply::Status {
                code: 206,
                headers: vec![progress_header(s)],
            }
        }
    }

    fn parse_request_range(value: &str) -> Option<(u64, u64, u64)> {
        let rest = value.strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        Some((first.parse().ok()?, last.parse().ok()?, total.parse().ok()?))
    }

    fn video(len: usize) -> Bytes {
        (0..len)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    /// 10 chunks of 1,000 bytes, the last one 1,500.
    fn small_plan() -> (ChunkPlan, Bytes) {
        let plan = ChunkPlan::with_chunk_size_unchecked(10_500, 1_000).unwrap();
        (plan, video(10_500))
    }

    fn uploader(attempts: u32) -> Uploader {
        Uploader::new(reqwest::Client::new(), RetryPolicy::immediate(attempts))
    }

    #[derive(Default)]
    struct Recorder(Vec<(u64, u64)>);

    impl UploadProgress for Recorder {
        fn chunk_done(
            &mut self,
            next_offset: u64,
            chunk_index: u64,
        ) -> impl Future<Output = ()> + Send {
            self.0.push((next_offset, chunk_index));
            std::future::ready(())
        }
    }

    fn ranges(requests: &[Seen]) -> Vec<String> {
        requests
            .iter()
            .map(|r| r.content_range.clone().unwrap_or_default())
            .collect()
    }

    fn plan_ranges(plan: &ChunkPlan, from: u64) -> Vec<String> {
        plan.chunks()
            .filter(|c| c.index >= from)
            .map(|c| c.content_range(plan.video_size))
            .collect()
    }

    #[tokio::test]
    async fn uploads_every_chunk_with_exact_headers() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        let mut progress = Recorder::default();
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mov,
                &BytesSource::new(data.clone()),
                0,
                &mut progress,
            )
            .await
            .unwrap();

        assert_eq!(server.received_sha(), sha(&data));
        assert_eq!(server.violations(), Vec::<String>::new());
        let requests = server.requests();
        assert_eq!(ranges(&requests), plan_ranges(&plan, 0));
        assert_eq!(
            requests[0].content_range.as_deref(),
            Some("bytes 0-999/10500")
        );
        assert_eq!(
            requests[9].content_range.as_deref(),
            Some("bytes 9000-10499/10500")
        );
        assert_eq!(requests[9].content_length, Some(1_500));
        assert!(
            requests
                .iter()
                .all(|r| r.content_type.as_deref() == Some("video/quicktime"))
        );
        assert!(requests.iter().all(|r| r.target.ends_with(TOKEN)));
        assert_eq!(
            report,
            UploadReport {
                chunks_sent: 10,
                bytes_sent: 10_500,
                retries: 0,
                resyncs: 0
            }
        );
        let expected: Vec<(u64, u64)> = plan.chunks().map(|c| (c.end, c.index)).collect();
        assert_eq!(progress.0, expected);
    }

    #[tokio::test]
    async fn single_chunk_video_goes_up_whole() {
        let plan = ChunkPlan::new(777, DEFAULT_CHUNK_SIZE).unwrap();
        let data = video(777);
        let server = TestServer::start(777, Style::LastIndex).await;
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                0,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(report.chunks_sent, 1);
        assert_eq!(
            ranges(&server.requests()),
            vec!["bytes 0-776/777".to_owned()]
        );
        assert_eq!(server.received_sha(), sha(&data));
    }

    #[tokio::test]
    async fn retries_a_503_and_a_dropped_connection() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| {
            s.faults.insert(2, Fault::Status(503, Some("0")));
            s.faults.insert(5, Fault::DropBeforeCommit);
            s.faults.insert(7, Fault::Status(500, None));
        });
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                0,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(server.received_sha(), sha(&data));
        assert_eq!(report.retries, 3);
        assert_eq!(report.resyncs, 0);
        assert_eq!(report.chunks_sent, 10);
        // Each failed PUT is repeated with the same chunk.
        let r = ranges(&server.requests());
        assert_eq!(r.len(), 13);
        assert_eq!(r[2], r[3]);
        assert_eq!(r[5], r[6]);
        assert_eq!(r[7], r[8]);
        assert_eq!(server.violations(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn lost_response_after_commit_resyncs_forward_under_both_readings() {
        for style in [Style::LastIndex, Style::ByteCount] {
            let (plan, data) = small_plan();
            let server = TestServer::start(plan.video_size, style).await;
            server.with(|s| {
                s.faults.insert(3, Fault::DropAfterCommit);
            });
            let report = uploader(5)
                .upload(
                    &server.url,
                    &plan,
                    VideoContentType::Mp4,
                    &BytesSource::new(data.clone()),
                    0,
                    &mut (),
                )
                .await
                .unwrap();
            assert_eq!(server.received_sha(), sha(&data), "{style:?}");
            // Retry of chunk 3 gets 416 "you already sent it", then chunk 4.
            assert_eq!((report.retries, report.resyncs), (1, 1), "{style:?}");
            let r = ranges(&server.requests());
            assert_eq!(r.len(), 11, "{style:?}");
            assert_eq!(r[3], r[4]);
            assert_eq!(r[5], "bytes 4000-4999/10500");
        }
    }

    #[tokio::test]
    async fn lost_final_response_counts_as_complete() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| {
            s.faults.insert(9, Fault::DropAfterCommit);
        });
        let mut progress = Recorder::default();
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                0,
                &mut progress,
            )
            .await
            .unwrap();
        assert_eq!(server.received_sha(), sha(&data));
        assert_eq!((report.retries, report.resyncs), (1, 1));
        assert_eq!(progress.0.last(), Some(&(10_500, 9)));
    }

    #[tokio::test]
    async fn spurious_416_and_disagreeing_206_resync() {
        for style in [Style::LastIndex, Style::ByteCount] {
            let (plan, data) = small_plan();
            let server = TestServer::start(plan.video_size, style).await;
            server.with(|s| {
                s.faults.insert(2, Fault::Spurious416);
                s.faults.insert(5, Fault::Disagreeing206);
            });
            let report = uploader(5)
                .upload(
                    &server.url,
                    &plan,
                    VideoContentType::Mp4,
                    &BytesSource::new(data.clone()),
                    0,
                    &mut (),
                )
                .await
                .unwrap();
            assert_eq!(server.received_sha(), sha(&data), "{style:?}");
            assert_eq!((report.retries, report.resyncs), (0, 2), "{style:?}");
            assert_eq!(report.chunks_sent, 10);
            assert_eq!(server.requests().len(), 12);
        }
    }

    #[tokio::test]
    async fn always_500_fails_after_max_attempts() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.always = Some(Fault::Status(500, None)));
        let err = uploader(3)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data),
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        match &err {
            UploadError::AttemptsExhausted {
                chunk_index,
                attempts,
                last_failure,
            } => {
                assert_eq!((*chunk_index, *attempts), (0, 3));
                assert!(last_failure.contains("500"), "{last_failure}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.is_retryable());
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn endless_416_is_bounded_by_the_attempt_budget() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.always = Some(Fault::Spurious416));
        let err = uploader(4)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data),
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::AttemptsExhausted { attempts: 4, .. }),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 4);
    }

    #[tokio::test]
    async fn forbidden_is_url_expired_and_hides_the_token() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.faults.insert(1, Fault::Status(403, None)));
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data),
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::UrlExpired), "{err:?}");
        assert!(!err.is_retryable());
        assert!(err.needs_new_upload());
        assert!(!err.to_string().contains(TOKEN));
        assert!(!format!("{err:?}").contains(TOKEN));
        assert_eq!(server.requests().len(), 2);
    }

    #[tokio::test]
    async fn not_found_and_bad_request_are_not_retried() {
        let (plan, data) = small_plan();
        let source = BytesSource::new(data);
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.faults.insert(0, Fault::Status(404, None)));
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &source,
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::UnknownUpload), "{err:?}");
        assert!(err.needs_new_upload());

        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.faults.insert(0, Fault::Status(400, None)));
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &source,
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                UploadError::Rejected {
                    status: 400,
                    chunk_index: 0,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn rejected_body_excerpt_redacts_url_secrets() {
        let url = Url::parse(&format!(
            "https://open-upload.tiktokapis.com/video/?upload_id=7&upload_token={TOKEN}"
        ))
        .unwrap();
        let secrets = query_secrets(&url);
        let body = format!("{{\"error\":\"bad\",\"url\":\"{url}\"}}");
        let excerpt = redact(&body, &secrets);
        assert!(!excerpt.contains(TOKEN), "{excerpt}");
        assert!(excerpt.contains("[redacted]"));
        // Short values such as ids stay readable.
        assert!(excerpt.contains("upload_id=7"));
        let long = "x".repeat(1000);
        assert_eq!(redact(&long, &[]).chars().count(), BODY_EXCERPT_CHARS);
    }

    #[tokio::test]
    async fn resume_sends_only_the_remaining_chunks() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.received.extend_from_slice(&data[..4_000]));
        let mut progress = Recorder::default();
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                4_000,
                &mut progress,
            )
            .await
            .unwrap();
        assert_eq!(server.received_sha(), sha(&data));
        assert_eq!(ranges(&server.requests()), plan_ranges(&plan, 4));
        assert_eq!(report.chunks_sent, 6);
        assert_eq!(report.bytes_sent, 6_500);
        assert_eq!(progress.0.first(), Some(&(5_000, 4)));
    }

    #[tokio::test]
    async fn resume_from_a_stale_offset_resyncs_either_way() {
        // Saved offset behind the server (the last progress save was lost).
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::ByteCount).await;
        server.with(|s| s.received.extend_from_slice(&data[..6_000]));
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                3_000,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(server.received_sha(), sha(&data));
        assert_eq!((report.resyncs, report.chunks_sent), (1, 4));
        assert_eq!(server.requests().len(), 5);

        // Saved offset ahead of the server.
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.received.extend_from_slice(&data[..2_000]));
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                5_000,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(server.received_sha(), sha(&data));
        assert_eq!((report.resyncs, report.chunks_sent), (1, 8));

        // Server has nothing (`bytes */TOTAL`).
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                5_000,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(server.received_sha(), sha(&data));
        assert_eq!((report.resyncs, report.chunks_sent), (1, 10));
    }

    #[tokio::test]
    async fn misaligned_start_offset_is_refused_before_any_request() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                1_234,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::MisalignedOffset { offset: 1_234 }),
            "{err:?}"
        );
        // The last chunk (9000..10500) does not start at 10000.
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                10_000,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::MisalignedOffset { .. }),
            "{err:?}"
        );
        // Already complete: nothing to send.
        let report = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data),
                10_500,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(report, UploadReport::default());
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn wrong_final_statuses_are_protocol_errors() {
        let (plan, data) = small_plan();
        let source = BytesSource::new(data);
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.faults.insert(2, Fault::Created));
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &source,
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::Protocol { chunk_index: 2, .. }),
            "{err:?}"
        );

        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.faults.insert(9, Fault::Disagreeing206));
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &source,
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::Protocol { chunk_index: 9, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
    }

    /// A source that logs when each read starts, next to the server's log.
    struct LoggedSource {
        inner: BytesSource,
        events: Arc<Mutex<Vec<String>>>,
    }

    impl ChunkSource for LoggedSource {
        fn read_range(
            &self,
            start: u64,
            end: u64,
        ) -> impl Future<Output = Result<Bytes, SourceError>> + Send {
            let events = Arc::clone(&self.events);
            let read = self.inner.read_range(start, end);
            async move {
                events.lock().unwrap().push(format!("read {start}"));
                tokio::task::yield_now().await;
                read.await
            }
        }
    }

    #[tokio::test]
    async fn reads_the_next_chunk_while_the_current_one_is_sent() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        let events = Arc::new(Mutex::new(Vec::new()));
        server.with(|s| s.events = Some(Arc::clone(&events)));
        let source = LoggedSource {
            inner: BytesSource::new(data.clone()),
            events: Arc::clone(&events),
        };
        uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &source,
                0,
                &mut (),
            )
            .await
            .unwrap();
        let log = events.lock().unwrap().clone();
        let position = |event: String| log.iter().position(|e| *e == event).unwrap();
        // Each chunk is read once, and chunk n's read starts before the
        // server has even received chunk n - 1: it runs while that PUT is
        // in flight, not after it.
        assert_eq!(log.iter().filter(|e| e.starts_with("read")).count(), 10);
        for chunk in plan.chunks().skip(1) {
            let previous_put = position(format!("put {}", chunk.start - 1_000));
            let read = position(format!("read {}", chunk.start));
            assert!(read < previous_put, "{log:?}");
        }
    }

    #[tokio::test]
    async fn a_hung_put_times_out_and_is_retried() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| {
            s.faults.insert(1, Fault::Hang);
        });
        let report = uploader(5)
            .with_chunk_timeout(Duration::from_millis(200))
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                0,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(report.retries, 1);
        assert_eq!(server.received_sha(), sha(&data));
    }

    #[tokio::test]
    async fn a_server_far_behind_a_stale_offset_does_not_exhaust_the_budget() {
        // The server lost everything, the saved offset says 9000: one 416,
        // then ten chunks, each new ground that refills the budget.
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        let report = uploader(2)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                9_000,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!((report.resyncs, report.chunks_sent), (1, 10));
        assert_eq!(server.received_sha(), sha(&data));
    }

    #[tokio::test]
    async fn a_server_that_accepts_then_forgets_cannot_loop_forever() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        // Every second request: forget everything and answer 416.
        for n in (1..200).step_by(2) {
            server.with(|s| s.faults.insert(n, Fault::Forget));
        }
        let err = uploader(3)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data),
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::AttemptsExhausted { .. }),
            "{err:?}"
        );
        assert!(server.requests().len() < 20);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_backoff_sleeps() {
        let (plan, data) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| {
            s.faults.insert(1, Fault::Status(503, Some("30")));
            s.faults.insert(4, Fault::Status(429, Some("7")));
        });
        let policy = RetryPolicy {
            max_retry_after: Duration::from_secs(60),
            ..RetryPolicy::immediate(5)
        };
        let begun = tokio::time::Instant::now();
        let report = Uploader::new(reqwest::Client::new(), policy)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                0,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(report.retries, 2);
        assert!(
            begun.elapsed() >= Duration::from_secs(37),
            "{:?}",
            begun.elapsed()
        );
        assert_eq!(server.received_sha(), sha(&data));
    }

    #[tokio::test]
    async fn file_source_reads_exact_ranges() {
        let data = video(5_000);
        let path =
            std::env::temp_dir().join(format!("tiktok-drafts-upload-{}.bin", std::process::id()));
        tokio::fs::write(&path, &data).await.unwrap();
        let source = FileSource::open(&path).await.unwrap();
        assert_eq!(source.len(), 5_000);
        assert_eq!(
            source.read_range(100, 1_100).await.unwrap(),
            data.slice(100..1_100)
        );
        assert_eq!(
            source.read_range(4_999, 5_000).await.unwrap(),
            data.slice(4_999..)
        );
        assert!(source.read_range(4_000, 5_001).await.is_err());
        assert!(source.read_range(10, 5).await.is_err());

        let plan = ChunkPlan::with_chunk_size_unchecked(5_000, 1_024).unwrap();
        let server = TestServer::start(5_000, Style::LastIndex).await;
        uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::WebM,
                &source,
                0,
                &mut (),
            )
            .await
            .unwrap();
        assert_eq!(server.received_sha(), sha(&data));
        let _ = tokio::fs::remove_file(&path).await;
        let missing = FileSource::open(&path).await.unwrap_err();
        assert!(!missing.is_retryable());
    }

    #[tokio::test]
    async fn short_source_reads_are_not_sent() {
        struct Short;
        impl ChunkSource for Short {
            fn read_range(
                &self,
                start: u64,
                end: u64,
            ) -> impl Future<Output = Result<Bytes, SourceError>> + Send {
                std::future::ready(Ok(Bytes::from(vec![0u8; (end - start - 1) as usize])))
            }
        }
        let (plan, _) = small_plan();
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &Short,
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::Source { chunk_index: 0, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn bad_urls_are_refused_without_echoing_them() {
        let (plan, data) = small_plan();
        let source = BytesSource::new(data);
        for url in [
            "not a url",
            "ftp://host/video/?upload_token=SECRETSECRET",
            "file:///tmp/x?upload_token=SECRETSECRET",
        ] {
            let err = uploader(1)
                .upload(url, &plan, VideoContentType::Mp4, &source, 0, &mut ())
                .await
                .unwrap_err();
            assert!(matches!(err, UploadError::InvalidUrl(_)), "{err:?}");
            assert!(!err.to_string().contains("SECRETSECRET"));
        }
    }

    #[tokio::test]
    async fn connection_refused_is_retried_then_reported_without_the_url() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let (plan, data) = small_plan();
        let url = format!("http://{addr}/video/?upload_token={TOKEN}");
        let err = uploader(2)
            .upload(
                &url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data),
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::AttemptsExhausted { attempts: 2, .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains(TOKEN), "{err}");
        assert!(!format!("{err:?}").contains(TOKEN));
    }

    #[test]
    fn upload_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let uploader = uploader(1);
        let plan = ChunkPlan::with_chunk_size_unchecked(10, 5).unwrap();
        let source = BytesSource::new(vec![0u8; 10]);
        let mut progress = Recorder::default();
        let future = uploader.upload(
            "http://127.0.0.1:1/",
            &plan,
            VideoContentType::Mp4,
            &source,
            0,
            &mut progress,
        );
        assert_send(&future);
    }

    #[test]
    fn parses_progress_headers() {
        assert_eq!(
            parse_progress("bytes 0-999/10500"),
            Some(ServerProgress::Through(999))
        );
        assert_eq!(
            parse_progress("Bytes 0-1000/10500"),
            Some(ServerProgress::Through(1000))
        );
        assert_eq!(
            parse_progress("bytes */10500"),
            Some(ServerProgress::Nothing)
        );
        assert_eq!(
            parse_progress(" bytes  0 - 5 / 6 "),
            Some(ServerProgress::Through(5))
        );
        assert_eq!(parse_progress("bytes 5-9/10"), None);
        assert_eq!(parse_progress("items 0-9/10"), None);
        assert_eq!(parse_progress("bytes 0-x/10"), None);
        assert_eq!(parse_progress(""), None);
        assert_eq!(parse_progress("byt"), None);
        assert_eq!(parse_progress("bytés 0-1/2"), None);
    }

    #[test]
    fn parses_retry_after_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn backoff_is_jittered_within_the_exponential_cap() {
        let policy = RetryPolicy::default();
        for retry in 1..=10u32 {
            let cap = Duration::from_millis(500 * 2u64.pow(retry - 1)).min(Duration::from_secs(10));
            for _ in 0..50 {
                assert!(policy.backoff(retry) <= cap);
            }
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3_600))),
            Duration::from_secs(60)
        );
        assert_eq!(
            RetryPolicy::immediate(3).delay(4, Some(Duration::from_secs(9))),
            Duration::ZERO
        );
        assert_eq!(RetryPolicy::immediate(3).backoff(u32::MAX), Duration::ZERO);
        assert!(policy.backoff(u32::MAX) <= Duration::from_secs(10));
        // Jitter actually varies.
        let samples: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.backoff(3)).collect();
        assert!(samples.len() > 1);
    }

    #[test]
    fn content_types() {
        assert_eq!(VideoContentType::Mp4.as_str(), "video/mp4");
        assert_eq!(VideoContentType::Mov.as_str(), "video/quicktime");
        assert_eq!(VideoContentType::WebM.as_str(), "video/webm");
        assert_eq!(
            VideoContentType::from_mime("video/MP4; codecs=avc1"),
            Some(VideoContentType::Mp4)
        );
        assert_eq!(
            VideoContentType::from_extension("MOV"),
            Some(VideoContentType::Mov)
        );
        assert_eq!(VideoContentType::from_extension("avi"), None);
    }
}
