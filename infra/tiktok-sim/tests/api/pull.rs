//! PULL_FROM_URL against a small local media server.

use std::io::Cursor;
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{Sim, error_code, fake_mp4};
use axum::Router;
use axum::http::{StatusCode as AxStatus, header};
use axum::response::IntoResponse;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::new(width, height)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode JPEG");
    out.into_inner()
}

/// A JPEG with an EXIF APP1 segment saying orientation 6 (rotate 90°).
fn jpeg_with_orientation(width: u32, height: u32) -> Vec<u8> {
    test_media::picture::jpeg_with_orientation(&jpeg(width, height), 6)
}

fn png() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::new(10, 10)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

/// Serves the test media; returns its base URL.
async fn media_server() -> String {
    let app = Router::new()
        .route(
            "/media/ok.jpg",
            get(|| async { jpeg_with_orientation(800, 600) }),
        )
        .route("/media/wide.jpg", get(|| async { jpeg(1200, 600) }))
        .route("/media/a.png", get(|| async { png() }))
        .route(
            "/media/redirect.jpg",
            get(|| async {
                (AxStatus::FOUND, [(header::LOCATION, "/media/ok.jpg")]).into_response()
            }),
        )
        .route("/media/video.mp4", get(|| async { fake_mp4(300_000) }))
        .route(
            "/media/slow.mp4",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                fake_mp4(1000)
            }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind media server");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/media/")
}

async fn setup() -> (Sim, String, String) {
    let media = media_server().await;
    let sim = Sim::start().await;
    sim.user("alice").await;
    sim.settings(json!({"verified_url_prefixes": [media], "allow_http_pull": true}))
        .await;
    let token = sim.token("alice", &["video.upload", "video.publish"]).await;
    (sim, media, token)
}

async fn photo_init(sim: &Sim, token: &str, urls: &[String]) -> String {
    let (status, body) = sim
        .api(
            "/v2/post/publish/content/init/",
            token,
            json!({
                "media_type": "PHOTO",
                "post_mode": "MEDIA_UPLOAD",
                "post_info": {"title": "t"},
                "source_info": {"source": "PULL_FROM_URL", "photo_images": urls, "photo_cover_index": 0}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["publish_id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn jpeg_is_accepted_with_dimensions_and_orientation() {
    let (sim, media, token) = setup().await;
    let id = photo_init(
        &sim,
        &token,
        &[format!("{media}ok.jpg?X-Amz-Signature=secret")],
    )
    .await;
    let publish = sim.wait_settled(&id).await;
    assert_eq!(publish["status"], "SEND_TO_USER_INBOX", "{publish}");
    let image = &publish["images"][0];
    assert_eq!(image["url"], format!("{media}ok.jpg"));
    assert_eq!(image["format"], "jpeg");
    assert_eq!(
        (image["width"].as_u64(), image["height"].as_u64()),
        (Some(800), Some(600))
    );
    assert_eq!(image["exif_orientation"], 6);
    assert_eq!(
        image["sha256"],
        hex::encode(Sha256::digest(jpeg_with_orientation(800, 600)))
    );
    let status = sim.status(&token, &id).await;
    assert_eq!(status["status"], "SEND_TO_USER_INBOX");
    assert!(status["downloaded_bytes"].as_u64().is_some_and(|b| b > 0));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn bad_photos_fail_with_the_right_reason() {
    let (sim, media, token) = setup().await;
    let cases = [
        ("a.png", "file_format_check_failed"),
        ("wide.jpg", "picture_size_check_failed"),
        ("redirect.jpg", "photo_pull_failed"),
        ("missing.jpg", "photo_pull_failed"),
    ];
    for (name, reason) in cases {
        let id = photo_init(
            &sim,
            &token,
            &[format!("{media}ok.jpg"), format!("{media}{name}")],
        )
        .await;
        let publish = sim.wait_settled(&id).await;
        assert_eq!(publish["status"], "FAILED", "{name}");
        assert_eq!(publish["fail_reason"], reason, "{name}");
    }
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn video_pull_hashes_the_media() {
    let (sim, media, token) = setup().await;
    let (status, body) = sim
        .api(
            "/v2/post/publish/inbox/video/init/",
            &token,
            json!({"source_info": {"source": "PULL_FROM_URL", "video_url": format!("{media}video.mp4")}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["publish_id"].as_str().expect("id").to_owned();
    let publish = sim.wait_settled(&id).await;
    assert_eq!(publish["status"], "SEND_TO_USER_INBOX", "{publish}");
    assert_eq!(
        publish["sha256"],
        hex::encode(Sha256::digest(fake_mp4(300_000)))
    );
    assert_eq!(publish["downloaded_bytes"], 300_000);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn a_slow_pull_can_be_cancelled() {
    let (sim, media, token) = setup().await;
    let (_, body) = sim
        .api(
            "/v2/post/publish/inbox/video/init/",
            &token,
            json!({"source_info": {"source": "PULL_FROM_URL", "video_url": format!("{media}slow.mp4")}}),
        )
        .await;
    let id = body["data"]["publish_id"].as_str().expect("id").to_owned();
    assert_eq!(
        sim.status(&token, &id).await["status"],
        "PROCESSING_DOWNLOAD"
    );
    let (status, body): (StatusCode, Value) = sim
        .api(
            "/v2/post/publish/cancel/",
            &token,
            json!({"publish_id": id}),
        )
        .await;
    assert_eq!((status, error_code(&body)), (StatusCode::OK, "ok"));
    let status = sim.status(&token, &id).await;
    assert_eq!(status["status"], "FAILED");
    assert_eq!(status["fail_reason"], "publish_cancelled");
    let (status, body) = sim
        .api(
            "/v2/post/publish/cancel/",
            &token,
            json!({"publish_id": id}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "publish_not_cancellable")
    );
    sim.handle.shutdown().await;
}
