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
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

use super::chunk_plan::{Chunk, ChunkPlan, ChunkPlanError};
use crate::backoff::Backoff;
use crate::media::detect::VideoKind;
use crate::storage::{ChunkSource, SourceError};

mod answer;
mod hosts;

use answer::{
    ServerProgress, query_secrets, read_body_excerpt, redact, retry_after, server_progress,
};
pub use hosts::{TIKTOK_UPLOAD_DOMAIN, UploadHosts, UploadUrlError};

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// The `Content-Type` of the chunks: the three containers TikTok accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VideoContentType {
    /// MP4 (`video/mp4`).
    Mp4,
    /// QuickTime, as iPhones record (`video/quicktime`).
    Mov,
    /// WebM (`video/webm`).
    WebM,
}

impl VideoContentType {
    /// The MIME type sent as each chunk's `Content-Type`.
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

/// The one mapping from what the bytes are to what TikTok is told.
impl From<VideoKind> for VideoContentType {
    fn from(kind: VideoKind) -> Self {
        match kind {
            VideoKind::Mp4 => Self::Mp4,
            VideoKind::Mov => Self::Mov,
            VideoKind::WebM => Self::WebM,
        }
    }
}

impl VideoContentType {
    /// The file extension [`VideoContentType::from_extension`] reads as this
    /// type (for a copy TikTok pulls by URL).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Mov => "mov",
            Self::WebM => "webm",
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
/// Waits between tries follow the project's one backoff
/// ([`crate::backoff`]: exponential, equal jitter), so that many uploads
/// failing together do not come back together. A `Retry-After` header (in
/// seconds) on a 429 or 503 replaces the backoff, capped at
/// `max_retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRetryPolicy {
    /// PUTs per chunk before giving up, the first one included; also bounds
    /// resyncs, so a server that keeps answering 416 cannot loop forever.
    /// Zero is treated as one.
    pub max_attempts_per_chunk: u32,
    /// The wait before each retry.
    pub backoff: Backoff,
    /// Longest `Retry-After` obeyed; the upload URL only lives an hour.
    pub max_retry_after: Duration,
}

impl Default for ChunkRetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts_per_chunk: 5,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(10)),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl ChunkRetryPolicy {
    /// Retries without any waiting (`Retry-After` included): for tests.
    pub fn immediate(max_attempts_per_chunk: u32) -> Self {
        Self {
            max_attempts_per_chunk,
            backoff: Backoff::none(),
            max_retry_after: Duration::ZERO,
        }
    }

    /// The jittered backoff before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff.jittered(retry.saturating_sub(1))
    }

    /// The wait before retry number `retry`: the server's `Retry-After` when
    /// it sent one (capped), the jittered backoff otherwise.
    fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        self.backoff
            .or_asked(retry.saturating_sub(1), retry_after, self.max_retry_after)
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
    /// The plan does not describe the video in chunks TikTok takes (a bug
    /// of ours, never retried).
    #[error("the chunk plan is inconsistent: {0}")]
    InvalidPlan(#[from] ChunkPlanError),
    /// The upload URL TikTok gave is not one to send bytes to (what is
    /// wrong with it; never the URL itself).
    #[error("the upload URL is not usable: {0}")]
    InvalidUrl(String),
    /// A resume was asked to start mid-chunk.
    #[error("cannot start at byte {offset}: it is not the start of a chunk of the plan")]
    MisalignedOffset {
        /// The byte asked for.
        offset: u64,
    },
    /// TikTok's upload host answered 403, 404 or 405: the upload URL has
    /// expired or names an upload it no longer has (all three have been
    /// seen for an expired URL).
    #[error(
        "the upload URL no longer works (HTTP {status}): it expired or TikTok dropped the upload; init the upload again"
    )]
    SessionGone {
        /// The HTTP status the upload host answered.
        status: u16,
    },
    /// The upload host refused a chunk for good (a 4xx other than the
    /// session-gone ones and those retried).
    #[error("TikTok rejected chunk {chunk_index} with HTTP {status}: {body}")]
    Rejected {
        /// The chunk's index in the plan, from 0.
        chunk_index: u64,
        /// The HTTP status.
        status: u16,
        /// The start of the response body, with URL secrets redacted.
        body: String,
    },
    /// The upload host answered something the protocol does not allow
    /// (201 "complete" before the last chunk, 206 after it, a redirect, a
    /// status it never sends).
    #[error("the upload host broke the protocol at chunk {chunk_index}: {detail}")]
    Protocol {
        /// The chunk's index in the plan, from 0.
        chunk_index: u64,
        /// What was wrong with the answer.
        detail: String,
    },
    /// Passing failures (timeouts, 5xx, resets) went on past the retry
    /// policy's attempts for one chunk.
    #[error("chunk {chunk_index} failed after {attempts} attempts; last failure: {last_failure}")]
    AttemptsExhausted {
        /// The chunk's index in the plan, from 0.
        chunk_index: u64,
        /// How many times it was sent.
        attempts: u32,
        /// What the last attempt ran into.
        last_failure: String,
    },
    /// The video's bytes could not be read (S3 or the local file).
    #[error("cannot read chunk {chunk_index} (bytes {start}..{end}) of the video: {source}")]
    Source {
        /// The chunk's index in the plan, from 0.
        chunk_index: u64,
        /// Its first byte.
        start: u64,
        /// One past its last byte.
        end: u64,
        /// Why the read failed.
        #[source]
        source: SourceError,
    },
    /// The HTTP request for a chunk could not be built (a bad header value).
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
            | Self::SessionGone { .. }
            | Self::Rejected { .. }
            | Self::Protocol { .. }
            | Self::Request(_) => false,
        }
    }

    /// Whether the upload can only go on with a fresh init (a new upload URL,
    /// from byte 0).
    pub fn needs_new_upload(&self) -> bool {
        matches!(self, Self::SessionGone { .. })
    }
}

// ---------------------------------------------------------------------------
// Uploader
// ---------------------------------------------------------------------------

/// How long one chunk PUT may take: a whole-request timeout would have to
/// cover the largest chunk on the slowest link, so each PUT gets its own.
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(120);

/// Sends a video's chunks to an upload URL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Uploader {
    http: reqwest::Client,
    policy: ChunkRetryPolicy,
    chunk_timeout: Option<Duration>,
    hosts: UploadHosts,
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
    /// An uploader sending through `http`, retrying passing failures by
    /// `policy`, to TikTok's own upload hosts.
    pub fn new(http: reqwest::Client, policy: ChunkRetryPolicy) -> Self {
        Self {
            http,
            policy,
            chunk_timeout: None,
            hosts: UploadHosts::tiktok(),
        }
    }

    /// Which upload URLs are taken and where their chunks go (TikTok's own
    /// hosts, directly, unless told otherwise).
    pub fn with_hosts(mut self, hosts: UploadHosts) -> Self {
        self.hosts = hosts;
        self
    }

    /// Gives up on a single PUT (counted as a passing failure and retried)
    /// when it takes longer than `timeout`; without it the client's own
    /// timeout, if any, applies.
    pub fn with_chunk_timeout(mut self, timeout: Duration) -> Self {
        self.chunk_timeout = Some(timeout);
        self
    }

    /// How passing failures of a chunk are retried.
    pub fn policy(&self) -> &ChunkRetryPolicy {
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
        let url = self
            .hosts
            .target(upload_url)
            .map_err(|e| UploadError::InvalidUrl(e.to_string()))?;
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
            let sent = self
                .send_overlapped(&target, source, chunk, &mut held, &mut budget, &mut report)
                .await;
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

    /// Sends `chunk` while the chunk after it is read (the overlap), using
    /// what `held` has already read. Leaves in `held` this chunk and, when
    /// its read worked, the next one; a failed read of the next is tried
    /// again, with retries, when it is needed.
    async fn send_overlapped<S: ChunkSource>(
        &self,
        target: &Target<'_>,
        source: &S,
        chunk: Chunk,
        held: &mut Vec<(u64, Bytes)>,
        budget: &mut Budget,
        report: &mut UploadReport,
    ) -> Result<Sent, UploadError> {
        let next = target.plan.chunk(chunk.index + 1);
        held.retain(|(start, _)| *start == chunk.start || next.is_some_and(|n| n.start == *start));

        let data = match take_held(held, chunk.start) {
            Some(data) => data,
            None => self.read_with_retries(source, chunk).await?,
        };
        let prefetch = next.filter(|n| !held.iter().any(|(start, _)| *start == n.start));

        let (sent, prefetched) = tokio::join!(
            self.send_chunk(target, chunk, &data, budget, report),
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
        sent
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
                    crate::backoff::sleep(delay).await;
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
                    crate::backoff::sleep(delay).await;
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
        answer_attempt(target, chunk, status, &headers, &body)
    }
}

/// What the upload host's answer to one chunk's PUT means: done, accepted,
/// a resync to the progress it reports, a passing failure, or the end.
fn answer_attempt(
    target: &Target<'_>,
    chunk: Chunk,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
) -> Attempt {
    let plan = target.plan;
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
        StatusCode::PARTIAL_CONTENT => partial_content(plan, chunk, headers),
        StatusCode::RANGE_NOT_SATISFIABLE => range_not_satisfiable(plan, headers),
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            Attempt::Fatal(UploadError::SessionGone {
                status: status.as_u16(),
            })
        }
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Attempt::Transient {
            why: format!("HTTP {status}"),
            retry_after: retry_after(headers),
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
            body: redact(body, target.secrets),
        }),
        s => Attempt::Fatal(UploadError::Protocol {
            chunk_index: chunk.index,
            detail: format!("unexpected HTTP {s}"),
        }),
    }
}

/// A 206 to a chunk that is not the last: accepted when the progress it
/// reports (if any) ends where the chunk did, a resync otherwise.
fn partial_content(plan: &ChunkPlan, chunk: Chunk, headers: &HeaderMap) -> Attempt {
    match server_progress(headers) {
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
    }
}

/// A 416: the host has something else than we sent; resync to the chunk
/// boundary at or below what it reports (the start when it reports nothing).
fn range_not_satisfiable(plan: &ChunkPlan, headers: &HeaderMap) -> Attempt {
    let (offset, reported) = match server_progress(headers) {
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

#[cfg(test)]
mod tests;
