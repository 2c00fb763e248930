//! The upload host: chunk order, headers, expiry, faults and restarts.

use crate::common::{Sim, error_code, fake_mp4, file_upload_source};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tiktok_sim::SimConfig;

const MIB: u64 = 1024 * 1024;
const INBOX: &str = "/v2/post/publish/inbox/video/init/";

/// Inits an inbox FILE_UPLOAD and returns (token, publish_id, upload_url).
async fn init(sim: &Sim, size: u64, chunk: u64) -> (String, String, String) {
    let token = sim.token("alice", &["video.upload", "video.publish"]).await;
    let (status, body) = sim
        .api(
            INBOX,
            &token,
            json!({"source_info": file_upload_source(size, chunk)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["publish_id"].as_str().expect("id").to_owned();
    let url = body["data"]["upload_url"].as_str().expect("url").to_owned();
    (token, id, url)
}

async fn put(
    sim: &Sim,
    url: &str,
    range: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    sim.http
        .put(url)
        .header("Content-Type", content_type)
        .header("Content-Range", range)
        .body(body)
        .send()
        .await
}

async fn put_chunk(
    sim: &Sim,
    url: &str,
    data: &[u8],
    first: usize,
    last: usize,
) -> reqwest::Response {
    put(
        sim,
        url,
        &format!("bytes {first}-{last}/{}", data.len()),
        "video/mp4",
        data[first..=last].to_vec(),
    )
    .await
    .expect("PUT chunk")
}

fn content_range(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn started() -> Sim {
    let sim = Sim::start().await;
    sim.user("alice").await;
    sim
}

#[tokio::test]
async fn multi_chunk_upload_records_sha256() {
    let sim = started().await;
    let size = 12 * MIB + 7;
    let chunk = 5 * MIB;
    let data = fake_mp4(size as usize);
    let (token, id, url) = init(&sim, size, chunk).await;

    let first = put_chunk(&sim, &url, &data, 0, chunk as usize - 1).await;
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        content_range(&first).as_deref(),
        Some(format!("bytes 0-{}/{size}", chunk - 1).as_str())
    );
    let status = sim.status(&token, &id).await;
    assert_eq!(
        status,
        json!({"status": "PROCESSING_UPLOAD", "uploaded_bytes": chunk})
    );

    // The last chunk absorbs the remainder: 7 MiB + 7 bytes.
    let last = put_chunk(&sim, &url, &data, chunk as usize, size as usize - 1).await;
    assert_eq!(last.status(), StatusCode::CREATED);

    let publish = sim.publish(&id).await;
    assert_eq!(publish["sha256"], hex::encode(Sha256::digest(&data)));
    assert_eq!(publish["status"], "SEND_TO_USER_INBOX");
    assert_eq!(publish["uploaded_bytes"], size);
    assert_eq!(publish["media_format"], "mp4");
    assert_eq!(
        sim.status(&token, &id).await["status"],
        "SEND_TO_USER_INBOX"
    );

    // A chunk after completion is out of order.
    let again = put_chunk(&sim, &url, &data, 0, chunk as usize - 1).await;
    assert_eq!(again.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // The upload log has no upload token and no body.
    let log = sim
        .control(
            reqwest::Method::GET,
            "/_sim/requests?path_prefix=/upload/",
            None,
        )
        .await;
    let entries = log.as_array().expect("array");
    assert_eq!(entries[0]["status"], 206);
    assert_eq!(
        entries[0]["content_range"],
        format!("bytes 0-{}/{size}", chunk - 1)
    );
    assert!(
        entries[0]["query"]
            .as_str()
            .is_some_and(|q| !q.contains("upload_token"))
    );
    assert!(entries[0]["body"].is_null());
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn direct_post_upload_gets_a_large_post_id() {
    let sim = started().await;
    let token = sim.token("alice", &["video.publish"]).await;
    let (_, body) = sim
        .api(
            "/v2/post/publish/video/init/",
            &token,
            json!({"post_info": {"privacy_level": "SELF_ONLY"}, "source_info": file_upload_source(5000, 5000)}),
        )
        .await;
    let id = body["data"]["publish_id"].as_str().expect("id").to_owned();
    let url = body["data"]["upload_url"].as_str().expect("url").to_owned();
    let data = fake_mp4(5000);
    assert_eq!(
        put_chunk(&sim, &url, &data, 0, 4999).await.status(),
        StatusCode::CREATED
    );
    let status = sim.status(&token, &id).await;
    assert_eq!(status["status"], "PUBLISH_COMPLETE");
    let post_id = status["publicaly_available_post_id"][0]
        .as_u64()
        .expect("u64 post id");
    assert!(post_id > 1 << 53);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn header_and_order_errors() {
    let sim = started().await;
    let size = 10 * MIB + 3;
    let chunk = 5 * MIB;
    let data = fake_mp4(size as usize);
    let (_, id, url) = init(&sim, size, chunk).await;

    // Out of order before anything arrived: 416 with "bytes */total".
    let r = put_chunk(&sim, &url, &data, chunk as usize, size as usize - 1).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        content_range(&r).as_deref(),
        Some(format!("bytes */{size}").as_str())
    );

    // Chunk bigger than chunk_size.
    let r = put_chunk(&sim, &url, &data, 0, chunk as usize).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Total that is not video_size.
    let r = put(
        &sim,
        &url,
        &format!("bytes 0-{}/{}", chunk - 1, size + 1),
        "video/mp4",
        data[..chunk as usize].to_vec(),
    )
    .await
    .expect("PUT");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Unparseable range.
    let r = put(&sim, &url, "0-100", "video/mp4", data[..101].to_vec())
        .await
        .expect("PUT");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Wrong content type.
    let r = put(
        &sim,
        &url,
        &format!("bytes 0-{}/{size}", chunk - 1),
        "application/octet-stream",
        data[..chunk as usize].to_vec(),
    )
    .await
    .expect("PUT");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Content-Length (the body) shorter than the range says.
    let r = put(
        &sim,
        &url,
        &format!("bytes 0-{}/{size}", chunk - 1),
        "video/mp4",
        data[..1000].to_vec(),
    )
    .await
    .expect("PUT");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.publish(&id).await["uploaded_bytes"], 0);

    // Accepted first chunk, then a repeat of it is 416 with progress.
    assert_eq!(
        put_chunk(&sim, &url, &data, 0, chunk as usize - 1)
            .await
            .status(),
        StatusCode::PARTIAL_CONTENT
    );
    let r = put_chunk(&sim, &url, &data, 0, chunk as usize - 1).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        content_range(&r).as_deref(),
        Some(format!("bytes 0-{}/{size}", chunk - 1).as_str())
    );

    // Unknown upload and wrong token: 404.
    let unknown = url.replace("upload_id=", "upload_id=x");
    assert_eq!(
        put_chunk(&sim, &unknown, &data, 0, 9).await.status(),
        StatusCode::NOT_FOUND
    );
    let wrong_token = url.replace("upload_token=", "upload_token=x");
    assert_eq!(
        put_chunk(&sim, &wrong_token, &data, 0, 9).await.status(),
        StatusCode::NOT_FOUND
    );

    // Expired after an hour: 405 by default, the least obvious of the
    // three statuses TikTok has been seen to answer.
    sim.advance(3601).await;
    let r = put_chunk(&sim, &url, &data, chunk as usize, size as usize - 1).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    sim.handle.shutdown().await;
}

/// An expired upload URL answers the status the settings name (403, 404 or
/// 405, nothing else), and init can hand out URLs on another TikTok host.
#[tokio::test]
async fn expired_status_and_upload_host_are_settings() {
    let sim = started().await;
    for (status, want) in [
        (403, StatusCode::FORBIDDEN),
        (404, StatusCode::NOT_FOUND),
        (405, StatusCode::METHOD_NOT_ALLOWED),
    ] {
        sim.settings(json!({"expired_upload_status": status})).await;
        let (_, _, url) = init(&sim, 4000, 4000).await;
        sim.advance(3601).await;
        let data = fake_mp4(4000);
        assert_eq!(put_chunk(&sim, &url, &data, 0, 3999).await.status(), want);
    }
    let refused = sim
        .http
        .put(sim.url("/_sim/settings"))
        .json(&json!({"expired_upload_status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    sim.settings(json!({"upload_url_host": "open-upload-i18n.tiktokapis.com"}))
        .await;
    let (_, _, url) = init(&sim, 4000, 4000).await;
    assert!(
        url.starts_with("https://open-upload-i18n.tiktokapis.com/upload/video/?upload_id="),
        "{url}"
    );
    // The simulator plays that host too: the same path and query on its base.
    let local = format!("{}/{}", sim.base, url.splitn(4, '/').nth(3).unwrap());
    let data = fake_mp4(4000);
    assert_eq!(
        put_chunk(&sim, &local, &data, 0, 3999).await.status(),
        StatusCode::CREATED
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn wrong_magic_bytes_fail_the_publish() {
    let sim = started().await;
    let (token, id, url) = init(&sim, 4000, 4000).await;
    let data = vec![0x42u8; 4000];
    assert_eq!(
        put_chunk(&sim, &url, &data, 0, 3999).await.status(),
        StatusCode::CREATED
    );
    let status = sim.status(&token, &id).await;
    assert_eq!(status["status"], "FAILED");
    assert_eq!(status["fail_reason"], "file_format_check_failed");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn auto_advance_off_holds_the_publish() {
    let sim = started().await;
    sim.settings(json!({"auto_advance": false})).await;
    let (token, id, url) = init(&sim, 4000, 4000).await;
    let data = fake_mp4(4000);
    assert_eq!(
        put_chunk(&sim, &url, &data, 0, 3999).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(sim.status(&token, &id).await["status"], "PROCESSING_UPLOAD");
    sim.post_control(
        &format!("/_sim/publishes/{id}/status"),
        json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;
    assert_eq!(
        sim.status(&token, &id).await["status"],
        "SEND_TO_USER_INBOX"
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn reset_fault_leaves_offset_unchanged() {
    let sim = started().await;
    let size = 10 * MIB;
    let chunk = 5 * MIB;
    let data = fake_mp4(size as usize);
    let (_, id, url) = init(&sim, size, chunk).await;
    assert_eq!(
        put_chunk(&sim, &url, &data, 0, chunk as usize - 1)
            .await
            .status(),
        StatusCode::PARTIAL_CONTENT
    );

    sim.post_control(
        "/_sim/faults",
        json!({"method": "PUT", "path_prefix": "/upload/", "action": {"type": "reset"}}),
    )
    .await;
    let result = put(
        &sim,
        &url,
        &format!("bytes {chunk}-{}/{size}", size - 1),
        "video/mp4",
        data[chunk as usize..].to_vec(),
    )
    .await;
    assert!(
        result.is_err(),
        "the connection should drop without a response"
    );
    assert_eq!(sim.publish(&id).await["uploaded_bytes"], chunk);

    // A 503 fault, then the retry goes through.
    sim.post_control(
        "/_sim/faults",
        json!({"path_prefix": "/upload/", "action": {"type": "status", "status": 503}}),
    )
    .await;
    let r = put_chunk(&sim, &url, &data, chunk as usize, size as usize - 1).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = put_chunk(&sim, &url, &data, chunk as usize, size as usize - 1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        sim.publish(&id).await["sha256"],
        hex::encode(Sha256::digest(&data))
    );

    let log = sim
        .control(
            reqwest::Method::GET,
            "/_sim/requests?path_prefix=/upload/",
            None,
        )
        .await;
    let faults: Vec<&Value> = log
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| !e["fault"].is_null())
        .collect();
    assert_eq!(faults.len(), 2);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn api_status_fault_and_skip() {
    let sim = started().await;
    let token = sim.token("alice", &["video.upload"]).await;
    sim.post_control(
        "/_sim/faults",
        json!({"path_prefix": "/v2/post/", "skip": 1, "times": 1, "action": {"type": "status", "status": 500, "error_code": "internal_error"}}),
    )
    .await;
    let body = json!({"source_info": file_upload_source(1000, 1000)});
    assert_eq!(sim.api(INBOX, &token, body.clone()).await.0, StatusCode::OK);
    let (status, resp) = sim.api(INBOX, &token, body.clone()).await;
    assert_eq!(
        (status, error_code(&resp)),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
    );
    assert_eq!(sim.api(INBOX, &token, body).await.0, StatusCode::OK);
    // The faulted init created nothing.
    let publishes = sim
        .control(reqwest::Method::GET, "/_sim/publishes", None)
        .await;
    assert_eq!(publishes.as_array().map(Vec::len), Some(2));
    let faults = sim
        .control(reqwest::Method::GET, "/_sim/faults", None)
        .await;
    assert_eq!(faults, json!([]));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn restart_mid_upload_continues_at_the_same_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = || SimConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..SimConfig::default()
    };
    let sim = Sim::start_with(config()).await;
    sim.user("alice").await;
    let size = 10 * MIB + 11;
    let chunk = 5 * MIB;
    let data = fake_mp4(size as usize);
    let (token, id, url) = init(&sim, size, chunk).await;
    assert_eq!(
        put_chunk(&sim, &url, &data, 0, chunk as usize - 1)
            .await
            .status(),
        StatusCode::PARTIAL_CONTENT
    );
    sim.advance(100).await;
    let old_base = sim.base.clone();
    sim.handle.shutdown().await;

    let sim = Sim::start_with(config()).await;
    let url = url.replace(&old_base, &sim.base);
    // Tokens, the clock offset and progress survived.
    let status = sim.status(&token, &id).await;
    assert_eq!(status["uploaded_bytes"], chunk);
    let clock = sim.control(reqwest::Method::GET, "/_sim/clock", None).await;
    assert!(clock["offset_secs"].as_i64().is_some_and(|o| o >= 100));
    let r = put_chunk(&sim, &url, &data, 0, chunk as usize - 1).await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = put_chunk(&sim, &url, &data, chunk as usize, size as usize - 1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        sim.publish(&id).await["sha256"],
        hex::encode(Sha256::digest(&data))
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn reset_forgets_everything_but_settings() {
    let sim = started().await;
    sim.settings(json!({"init_per_min": 2})).await;
    let _ = init(&sim, 1000, 1000).await;
    sim.post_control("/_sim/reset", json!({})).await;
    let publishes = sim
        .control(reqwest::Method::GET, "/_sim/publishes", None)
        .await;
    assert_eq!(publishes, json!([]));
    let users = sim.control(reqwest::Method::GET, "/_sim/users", None).await;
    assert_eq!(users, json!([]));
    let settings = sim
        .control(reqwest::Method::GET, "/_sim/settings", None)
        .await;
    assert_eq!(settings["init_per_min"], 2);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn client_dropping_mid_chunk_does_not_advance() {
    use tokio::io::AsyncWriteExt;

    let sim = started().await;
    let size = 10 * MIB;
    let chunk = 5 * MIB;
    let data = fake_mp4(size as usize);
    let (_, id, url) = init(&sim, size, chunk).await;
    let parsed = url::Url::parse(&url).expect("upload URL");
    let addr = format!(
        "{}:{}",
        parsed.host_str().expect("host"),
        parsed.port().expect("port")
    );
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT {}?{} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-{}/{size}\r\nContent-Length: {chunk}\r\n\r\n",
        parsed.path(),
        parsed.query().expect("query"),
        chunk - 1
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
        .write_all(&data[..MIB as usize])
        .await
        .expect("send part");
    drop(stream);

    // The server notices the drop asynchronously; the whole chunk then goes through.
    let mut status = StatusCode::RANGE_NOT_SATISFIABLE;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        assert_eq!(sim.publish(&id).await["uploaded_bytes"], 0);
        status = put_chunk(&sim, &url, &data, 0, chunk as usize - 1)
            .await
            .status();
        if status != StatusCode::RANGE_NOT_SATISFIABLE {
            break;
        }
    }
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let r = put_chunk(&sim, &url, &data, chunk as usize, size as usize - 1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        sim.publish(&id).await["sha256"],
        hex::encode(Sha256::digest(&data))
    );
    sim.handle.shutdown().await;
}
