//! The uploader against a small HTTP server that plays TikTok's upload host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::answer::{BODY_EXCERPT_CHARS, parse_progress};
use super::*;
use crate::storage::{BytesSource, FileSource};
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
fn handle(s: &mut State, number: usize, seen: &Seen, body: &[u8], fault: Option<Fault>) -> Reply {
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
    let Some((first, last, total)) = seen.content_range.as_deref().and_then(parse_request_range)
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
    Uploader::new(
        reqwest::Client::new(),
        ChunkRetryPolicy::immediate(attempts),
    )
    .with_hosts(UploadHosts::loopback())
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

/// 403, 404 and 405 have all been seen from TikTok's upload host for an
/// expired or unknown upload URL: each means the session is gone (a new
/// init), never a retry of the same URL, and none echoes the token.
#[tokio::test]
async fn forbidden_not_found_and_not_allowed_mean_the_session_is_gone() {
    let (plan, data) = small_plan();
    for status in [403, 404, 405] {
        let server = TestServer::start(plan.video_size, Style::LastIndex).await;
        server.with(|s| s.faults.insert(1, Fault::Status(status, None)));
        let err = uploader(5)
            .upload(
                &server.url,
                &plan,
                VideoContentType::Mp4,
                &BytesSource::new(data.clone()),
                0,
                &mut (),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UploadError::SessionGone { status: s } if s == status),
            "{status}: {err:?}"
        );
        assert!(!err.is_retryable(), "{status}");
        assert!(err.needs_new_upload(), "{status}");
        assert!(err.to_string().contains(&status.to_string()), "{err}");
        assert!(!err.to_string().contains(TOKEN));
        assert!(!format!("{err:?}").contains(TOKEN));
        assert_eq!(server.requests().len(), 2, "{status}: not retried");
    }
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let (plan, data) = small_plan();
    let source = BytesSource::new(data);
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
    let policy = ChunkRetryPolicy {
        max_retry_after: Duration::from_secs(60),
        ..ChunkRetryPolicy::immediate(5)
    };
    let begun = tokio::time::Instant::now();
    let report = Uploader::new(reqwest::Client::new(), policy)
        .with_hosts(UploadHosts::loopback())
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
        "https://uploads.example.com/video/?upload_token=SECRETSECRET",
        "http://open-upload.tiktokapis.com/video/?upload_token=SECRETSECRET",
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
    let policy = ChunkRetryPolicy::default();
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
        ChunkRetryPolicy::immediate(3).delay(4, Some(Duration::from_secs(9))),
        Duration::ZERO
    );
    assert_eq!(
        ChunkRetryPolicy::immediate(3).backoff(u32::MAX),
        Duration::ZERO
    );
    assert!(policy.backoff(u32::MAX) <= Duration::from_secs(10));
    // Jitter actually varies.
    let samples: std::collections::HashSet<Duration> = (0..20).map(|_| policy.backoff(3)).collect();
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
    for kind in [VideoKind::Mp4, VideoKind::Mov, VideoKind::WebM] {
        let ty = VideoContentType::from(kind);
        assert_eq!(VideoContentType::from_extension(ty.extension()), Some(ty));
    }
    assert_eq!(
        VideoContentType::from(VideoKind::Mov).as_str(),
        "video/quicktime"
    );
}
