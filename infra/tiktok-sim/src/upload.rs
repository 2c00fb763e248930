//! The upload host: `PUT /upload/video/?upload_id=..&upload_token=..`, one chunk per
//! request, strictly in order. Chunks are streamed to a spool file so that videos of any
//! size go through in bounded memory.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::api::LoggedErrorCode;
use crate::app::App;
use crate::chunks::ChunkPlan;
use crate::state::{PublishStatus, Upload, sha256_hex};
use crate::video_check;

const ACCEPTED_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];

/// An upload-host answer: a status, a short text and maybe the progress header.
struct UploadReply {
    status: StatusCode,
    message: &'static str,
    progress: Option<(u64, u64)>,
}

impl UploadReply {
    fn new(status: StatusCode, message: &'static str) -> Self {
        Self {
            status,
            message,
            progress: None,
        }
    }

    fn with_progress(mut self, received: u64, total: u64) -> Self {
        self.progress = Some((received, total));
        self
    }
}

/// `bytes 0-{received-1}/{total}`, or `bytes */{total}` when nothing arrived yet.
pub fn progress_header(received: u64, total: u64) -> String {
    if received == 0 {
        format!("bytes */{total}")
    } else {
        format!("bytes 0-{}/{total}", received - 1)
    }
}

impl IntoResponse for UploadReply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.message).into_response();
        if let Some((received, total)) = self.progress
            && let Ok(value) = HeaderValue::from_str(&progress_header(received, total))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        if self.status.is_client_error() || self.status.is_server_error() {
            response
                .extensions_mut()
                .insert(LoggedErrorCode(self.message.to_owned()));
        }
        response
    }
}

/// Parses `bytes {first}-{last}/{total}`.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let digits = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (first, last, total) = (digits(first)?, digits(last)?, digits(total)?);
    (first <= last && last < total).then_some((first, last, total))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What is known about a chunk once its headers passed.
struct ChunkTarget {
    upload: Upload,
    plan: ChunkPlan,
    len: u64,
}

/// Checks a chunk's request before its body is read: the upload URL's credentials, then
/// the headers against the upload's plan and progress.
fn check_headers(
    app: &App,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<ChunkTarget, UploadReply> {
    let Some((upload_id, upload_token)) = upload_credentials(query) else {
        return Err(upload_not_found());
    };
    let upload = live_upload(app, &upload_id, &upload_token)?;
    let (plan, len) = check_chunk_headers(&upload, headers)?;
    Ok(ChunkTarget { upload, plan, len })
}

/// The answer for an upload URL that names no open upload (unknown, wrong token, or its
/// publish has moved on).
fn upload_not_found() -> UploadReply {
    UploadReply::new(StatusCode::NOT_FOUND, "upload_not_found")
}

/// The `upload_id` and `upload_token` from the upload URL's query, when both are there.
fn upload_credentials(query: Option<&str>) -> Option<(String, String)> {
    let mut upload_id = None;
    let mut upload_token = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "upload_id" => upload_id = Some(v.into_owned()),
            "upload_token" => upload_token = Some(v.into_owned()),
            _ => {}
        }
    }
    upload_id.zip(upload_token)
}

/// The upload the credentials open, while it still takes chunks: the token matches, its
/// publish still waits for the upload (or the upload is complete, so a late chunk gets
/// its out-of-order answer), and the URL has not expired.
fn live_upload(app: &App, upload_id: &str, upload_token: &str) -> Result<Upload, UploadReply> {
    let (upload, status, now, ttl, expired_status) = app.read(|state| {
        let upload = state.uploads.get(upload_id).cloned();
        let status = upload
            .as_ref()
            .and_then(|u| state.publishes.get(&u.publish_id))
            .map(|p| p.status);
        (
            upload,
            status,
            state.now_ms(),
            state.settings.upload_url_ttl_secs,
            state.settings.expired_upload_status,
        )
    });
    let Some(upload) = upload else {
        return Err(upload_not_found());
    };
    if upload.upload_token_sha256 != sha256_hex(upload_token.as_bytes()) {
        return Err(upload_not_found());
    }
    if status != Some(PublishStatus::ProcessingUpload) && !upload.complete {
        // The publish failed or was moved on: there is no upload task any more.
        return Err(upload_not_found());
    }
    if now > upload.issued_at_ms + ttl * 1000 {
        return Err(UploadReply::new(
            StatusCode::from_u16(expired_status).unwrap_or(StatusCode::METHOD_NOT_ALLOWED),
            "upload_url_expired",
        ));
    }
    Ok(upload)
}

/// Checks a chunk's headers against its upload: an accepted content type, a
/// `Content-Range` for the upload's size that starts where the upload stands and spans
/// the plan's chunk there, and a matching `Content-Length`. Gives the plan and the
/// chunk's length.
fn check_chunk_headers(
    upload: &Upload,
    headers: &HeaderMap,
) -> Result<(ChunkPlan, u64), UploadReply> {
    let total = upload.video_size;
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or_default();
    if !ACCEPTED_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(content_type.trim()))
    {
        return Err(UploadReply::new(
            StatusCode::BAD_REQUEST,
            "invalid_content_type",
        ));
    }
    let Some((first, last, range_total)) =
        header_str(headers, header::CONTENT_RANGE).and_then(parse_content_range)
    else {
        return Err(UploadReply::new(
            StatusCode::BAD_REQUEST,
            "invalid_content_range",
        ));
    };
    if range_total != total {
        return Err(UploadReply::new(
            StatusCode::BAD_REQUEST,
            "content_range_total_mismatch",
        ));
    }
    if upload.complete || first != upload.received {
        return Err(UploadReply::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "content_range_out_of_order",
        )
        .with_progress(upload.received, total));
    }
    let plan = ChunkPlan {
        video_size: upload.video_size,
        chunk_size: upload.chunk_size,
        total_chunk_count: upload.total_chunk_count,
    };
    let len = plan.chunk_len_at(first);
    if last - first + 1 != len {
        return Err(UploadReply::new(
            StatusCode::BAD_REQUEST,
            "invalid_chunk_size",
        ));
    }
    let content_length =
        header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    if content_length != Some(len) {
        return Err(UploadReply::new(
            StatusCode::BAD_REQUEST,
            "content_length_mismatch",
        ));
    }
    Ok((plan, len))
}

/// `PUT /upload/video/`.
pub async fn put_chunk(
    AxState(app): AxState<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match receive_chunk(&app, query.as_deref(), &headers, body).await {
        Ok(reply) | Err(reply) => reply.into_response(),
    }
}

async fn receive_chunk(
    app: &Arc<App>,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<UploadReply, UploadReply> {
    let target = check_headers(app, query, headers)?;
    let upload_id = target.upload.upload_id.clone();
    let total = target.plan.video_size;
    let Some(_in_flight) = app.begin_chunk(&upload_id) else {
        return Err(UploadReply::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "chunk_already_in_progress",
        )
        .with_progress(target.upload.received, total));
    };
    let spool = app.spool_path(&upload_id);
    let offset = target.upload.received;
    let internal = || UploadReply::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
    // Body frames are small; a buffer turns them into few large writes.
    let mut file = match open_spool_at(&spool, offset).await {
        Ok(file) => tokio::io::BufWriter::with_capacity(1 << 20, file),
        Err(e) => {
            tracing::error!(error = %e, "cannot open upload spool");
            return Err(internal());
        }
    };
    let mut written: u64 = 0;
    let mut stream = body.into_data_stream();
    let mut outcome = Ok(());
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(bytes) => {
                written += bytes.len() as u64;
                if written > target.len {
                    outcome = Err(UploadReply::new(
                        StatusCode::BAD_REQUEST,
                        "content_length_mismatch",
                    ));
                    break;
                }
                if let Err(e) = file.write_all(&bytes).await {
                    tracing::error!(error = %e, "cannot write upload spool");
                    outcome = Err(internal());
                    break;
                }
            }
            Err(_) => {
                // The client went away mid-chunk; nobody reads this answer.
                outcome = Err(UploadReply::new(StatusCode::BAD_REQUEST, "incomplete_body"));
                break;
            }
        }
    }
    if outcome.is_ok() && written != target.len {
        outcome = Err(UploadReply::new(
            StatusCode::BAD_REQUEST,
            "content_length_mismatch",
        ));
    }
    if outcome.is_ok()
        && let Err(e) = file.flush().await
    {
        tracing::error!(error = %e, "cannot flush upload spool");
        outcome = Err(internal());
    }
    drop(file);
    if let Err(reply) = outcome {
        // Only whole chunks count: cut whatever part of this one arrived.
        truncate_spool(&spool, offset).await;
        return Err(reply);
    }
    let received = offset + target.len;
    let complete = received == total;
    let still_there = app.update(|state| {
        let Some(upload) = state.uploads.get_mut(&upload_id) else {
            return false;
        };
        upload.received = received;
        upload.complete = complete;
        let publish_id = upload.publish_id.clone();
        let now = state.now_ms();
        if let Some(publish) = state.publishes.get_mut(&publish_id) {
            publish.uploaded_bytes = Some(received);
            publish.updated_at_ms = now;
        }
        true
    });
    if !still_there {
        // A reset removed the upload while the chunk was arriving.
        let _ = tokio::fs::remove_file(&spool).await;
        return Err(UploadReply::new(StatusCode::NOT_FOUND, "upload_not_found"));
    }
    if !complete {
        return Ok(UploadReply::new(StatusCode::PARTIAL_CONTENT, "").with_progress(received, total));
    }
    finish_upload(app, &upload_id, spool).await;
    Ok(UploadReply::new(StatusCode::CREATED, "").with_progress(received, total))
}

async fn open_spool_at(path: &PathBuf, offset: u64) -> std::io::Result<tokio::fs::File> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .await?;
    // Drops any tail a broken earlier attempt left behind.
    file.set_len(offset).await?;
    file.seek(SeekFrom::Start(offset)).await?;
    Ok(file)
}

async fn truncate_spool(path: &PathBuf, offset: u64) {
    let result = async {
        let file = tokio::fs::OpenOptions::new().write(true).open(path).await?;
        file.set_len(offset).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot truncate upload spool");
    }
}

/// Hashes and checks a completed upload, deletes the spool and moves the publish on.
async fn finish_upload(app: &Arc<App>, upload_id: &str, spool: PathBuf) {
    let max_duration = app.read(|state| {
        state
            .uploads
            .get(upload_id)
            .and_then(|u| state.publishes.get(&u.publish_id))
            .map_or(video_check::MAX_DURATION_SECS, |p| {
                max_duration_secs(state, p)
            })
    });
    let path = spool.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let sha256 = hash_file(&path)?;
        let verdict = video_check::measure(&path).and_then(|facts| {
            facts.check(max_duration)?;
            Ok(facts.format)
        });
        Ok::<_, std::io::Error>((sha256, verdict))
    })
    .await;
    let result = match checked {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = tokio::fs::remove_file(&spool).await {
        tracing::warn!(error = %e, "cannot delete upload spool");
    }
    app.update(|state| {
        let Some(publish_id) = state.uploads.get(upload_id).map(|u| u.publish_id.clone()) else {
            return;
        };
        let now = state.now_ms();
        let auto_advance = state.settings.auto_advance;
        let Some(publish) = state.publishes.get_mut(&publish_id) else {
            return;
        };
        match result {
            Ok((sha256, Ok(format))) => {
                publish.sha256 = Some(sha256);
                publish.media_format = Some(format.to_owned());
                publish.media_ready = true;
                if auto_advance {
                    let next = publish.ready_status();
                    publish.set_status(next, None, now);
                }
            }
            Ok((sha256, Err(rejection))) => {
                publish.sha256 = Some(sha256);
                publish.set_status(
                    PublishStatus::Failed,
                    Some(rejection.fail_reason().to_owned()),
                    now,
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot hash upload spool");
                publish.set_status(PublishStatus::Failed, Some("internal".to_owned()), now);
            }
        }
    });
}

/// The longest video `publish` may be: 10 minutes at init, and for a direct
/// post no longer than its creator may post.
pub fn max_duration_secs(state: &crate::state::State, publish: &crate::state::Publish) -> u64 {
    let creator = if publish.is_direct_post() {
        state
            .user(&publish.open_id)
            .map(|u| u64::try_from(u.max_video_post_duration_sec).unwrap_or(0))
    } else {
        None
    };
    creator.map_or(video_check::MAX_DURATION_SECS, |c| {
        c.min(video_check::MAX_DURATION_SECS)
    })
}

/// SHA-256 (hex) of a file, read in blocks.
fn hash_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(parse_content_range("bytes 0-99/100"), Some((0, 99, 100)));
        assert_eq!(parse_content_range("bytes 10-9/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("0-99/100"), None);
        assert_eq!(parse_content_range("bytes +0-99/100"), None);
    }

    #[test]
    fn progress_header_shapes() {
        assert_eq!(progress_header(0, 100), "bytes */100");
        assert_eq!(progress_header(50, 100), "bytes 0-49/100");
    }
}
