//! What the upload host says: its progress header, its `Retry-After`, an
//! excerpt of an error body with the URL's secrets hidden.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::{CONTENT_RANGE, HeaderMap, RETRY_AFTER};

/// How much of an error response body is kept for the error message.
pub(super) const BODY_EXCERPT_CHARS: usize = 300;
/// How many bytes of a response body are read at most; the rest is dropped.
pub(super) const BODY_READ_LIMIT: usize = 4096;
/// Query values at least this long are treated as secrets and redacted from
/// response excerpts (upload tokens and ids are much longer).
pub(super) const MIN_SECRET_LEN: usize = 8;

/// Query values long enough to be tokens, to be kept out of error messages.
pub(super) fn query_secrets(url: &Url) -> Vec<String> {
    url.query_pairs()
        .map(|(_, value)| value.into_owned())
        .filter(|value| value.len() >= MIN_SECRET_LEN)
        .collect()
}

/// Cuts a response body to an excerpt and hides any URL secret it echoes.
pub(super) fn redact(body: &str, secrets: &[String]) -> String {
    let mut text: String = body.trim().chars().take(BODY_EXCERPT_CHARS).collect();
    for secret in secrets {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text
}

/// Reads at most [`BODY_READ_LIMIT`] bytes of the body, for error messages
/// and so the connection can be reused. Failures just shorten the excerpt.
pub(super) async fn read_body_excerpt(mut response: reqwest::Response) -> String {
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
pub(super) enum ServerProgress {
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

pub(super) fn server_progress(headers: &HeaderMap) -> ServerProgress {
    headers
        .get(CONTENT_RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_progress)
        .unwrap_or(ServerProgress::Absent)
}

pub(super) fn parse_progress(value: &str) -> Option<ServerProgress> {
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
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}
