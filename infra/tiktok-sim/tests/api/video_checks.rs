//! TikTok's checks of an arrived video: real files (ffmpeg-made fixtures)
//! and generated containers, uploaded and pulled, end in SEND_TO_USER_INBOX
//! or FAILED with the fail_reason TikTok gives.

use std::net::SocketAddr;

use crate::common::{self, Sim, file_upload_source};
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_media::video::{Codec, VideoSpec};
use test_media::webm::WebmSpec;

const INBOX: &str = "/v2/post/publish/inbox/video/init/";

/// Uploads `data` in one chunk through `init_path` and returns the settled
/// publish.
async fn upload(sim: &Sim, token: &str, init_path: &str, body: Value, data: Vec<u8>) -> Value {
    let (status, answer) = sim.api(init_path, token, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["data"]["publish_id"].as_str().unwrap().to_owned();
    let url = answer["data"]["upload_url"].as_str().unwrap().to_owned();
    let len = data.len();
    let response = common::client()
        .put(&url)
        .header("Content-Type", "video/mp4")
        .header("Content-Range", format!("bytes 0-{}/{len}", len - 1))
        .header("Content-Length", len.to_string())
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    sim.publish(&id).await
}

async fn inbox(sim: &Sim, token: &str, data: Vec<u8>) -> Value {
    let size = data.len() as u64;
    let body = json!({"source_info": file_upload_source(size, size)});
    upload(sim, token, INBOX, body, data).await
}

/// A simulator with "alice", whose many test drafts the pending-draft cap
/// would otherwise stop after five.
async fn started() -> Sim {
    let sim = Sim::start().await;
    sim.user("alice").await;
    sim.settings(json!({"pending_share_cap": 1000, "init_per_min": 1000}))
        .await;
    sim
}

fn verdict(publish: &Value) -> (String, String) {
    (
        publish["status"].as_str().unwrap_or_default().to_owned(),
        publish["fail_reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn uploaded_fixtures_pass_or_fail_with_tiktoks_reason() {
    let sim = started().await;
    let token = sim.token("alice", &["video.upload"]).await;
    for (name, reason) in [
        ("h264-30fps.mp4", ""),
        ("h264-moov-at-end.mp4", ""),
        ("hevc-60fps.mov", ""),
        ("h264-59.94fps.mp4", ""),
        ("vp9.webm", ""),
        ("vp8.webm", ""),
        ("hevc-hdr-pq.mp4", ""),
        ("h264-120fps.mp4", "frame_rate_check_failed"),
        ("h264-60.5fps.mp4", "frame_rate_check_failed"),
        ("h264-15fps.mp4", "frame_rate_check_failed"),
        ("h264-200x200.mp4", "picture_size_check_failed"),
        ("h264-11min.mp4", "duration_check_failed"),
        ("av1.mp4", "file_format_check_failed"),
        ("prores.mov", "file_format_check_failed"),
        ("audio-only.mp4", "file_format_check_failed"),
        ("h264.mkv", "file_format_check_failed"),
    ] {
        let data = test_media::fixture(&format!("video/{name}"));
        let publish = inbox(&sim, &token, data).await;
        let expected = if reason.is_empty() {
            ("SEND_TO_USER_INBOX".to_owned(), String::new())
        } else {
            ("FAILED".to_owned(), reason.to_owned())
        };
        assert_eq!(verdict(&publish), expected, "{name}: {publish}");
    }
}

#[tokio::test]
async fn generated_containers_are_measured_like_real_ones() {
    let sim = started().await;
    let token = sim.token("alice", &["video.upload"]).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (VideoSpec::default().bytes(3_000_000, 1), ""),
        (
            VideoSpec {
                codec: Codec::Hevc,
                fps_num: 60_000,
                fps_den: 1001,
                frames: 600,
                moov_at_end: true,
                ..VideoSpec::default()
            }
            .bytes(3_000_000, 2),
            "",
        ),
        (
            VideoSpec {
                fps_num: 121,
                fps_den: 2,
                frames: 605,
                ..VideoSpec::default()
            }
            .bytes(3_000_000, 3),
            "frame_rate_check_failed",
        ),
        (
            VideoSpec {
                width: 4100,
                ..VideoSpec::default()
            }
            .bytes(3_000_000, 4),
            "picture_size_check_failed",
        ),
        (
            VideoSpec::default().with_seconds(601.0).bytes(3_000_000, 5),
            "duration_check_failed",
        ),
        (
            VideoSpec {
                codec: Codec::Av1,
                ..VideoSpec::default()
            }
            .bytes(3_000_000, 6),
            "file_format_check_failed",
        ),
        (WebmSpec::default().bytes(3_000_000, 7), ""),
        (
            WebmSpec {
                fps_num: 120,
                frames: 1200,
                ..WebmSpec::default()
            }
            .bytes(3_000_000, 8),
            "frame_rate_check_failed",
        ),
        (
            WebmSpec {
                codec_id: "V_AV1",
                ..WebmSpec::default()
            }
            .bytes(3_000_000, 9),
            "file_format_check_failed",
        ),
        // Noise that merely starts like an MP4.
        (
            [
                &[0u8, 0, 0, 0x18][..],
                b"ftypisom\0\0\0\0isomavc1",
                &test_media::noise(3000, 10),
            ]
            .concat(),
            "file_format_check_failed",
        ),
    ];
    for (i, (data, reason)) in cases.into_iter().enumerate() {
        let publish = inbox(&sim, &token, data).await;
        let (status, fail_reason) = verdict(&publish);
        if reason.is_empty() {
            assert_eq!(status, "SEND_TO_USER_INBOX", "case {i}: {publish}");
        } else {
            assert_eq!(
                (status.as_str(), fail_reason.as_str()),
                ("FAILED", reason),
                "case {i}"
            );
        }
    }
}

#[tokio::test]
async fn a_direct_post_is_held_to_the_creators_duration() {
    let sim = Sim::start().await;
    sim.user_with(json!({"open_id": "alice", "username": "alice", "display_name": "Alice", "max_video_post_duration_sec": 60}))
        .await;
    let token = sim.token("alice", &["video.upload", "video.publish"]).await;
    let ninety_seconds = VideoSpec::default().with_seconds(90.0).bytes(3_000_000, 1);
    let size = ninety_seconds.len() as u64;
    let direct = upload(
        &sim,
        &token,
        "/v2/post/publish/video/init/",
        json!({"post_info": {"privacy_level": "SELF_ONLY"}, "source_info": file_upload_source(size, size)}),
        ninety_seconds.clone(),
    )
    .await;
    assert_eq!(
        verdict(&direct),
        ("FAILED".to_owned(), "duration_check_failed".to_owned())
    );
    // As a draft, the creator trims it in the app.
    let draft = inbox(&sim, &token, ninety_seconds).await;
    assert_eq!(verdict(&draft).0, "SEND_TO_USER_INBOX");
}

#[tokio::test]
async fn a_pulled_video_is_checked_too() {
    let app = Router::new()
        .route(
            "/media/fast.mp4",
            get(|| async { test_media::fixture("video/h264-120fps.mp4") }),
        )
        .route(
            "/media/ok.mov",
            get(|| async { test_media::fixture("video/hevc-60fps.mov") }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let media = format!("http://{}/media/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let sim = Sim::start().await;
    sim.user("alice").await;
    sim.settings(json!({"verified_url_prefixes": [media], "allow_http_pull": true}))
        .await;
    let token = sim.token("alice", &["video.upload"]).await;
    for (name, expected) in [
        ("fast.mp4", ("FAILED", "frame_rate_check_failed")),
        ("ok.mov", ("SEND_TO_USER_INBOX", "")),
    ] {
        let (status, body) = sim
            .api(
                INBOX,
                &token,
                json!({"source_info": {"source": "PULL_FROM_URL", "video_url": format!("{media}{name}")}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["data"]["publish_id"].as_str().unwrap();
        let publish = sim.wait_settled(id).await;
        let (status, reason) = verdict(&publish);
        assert_eq!(
            (status.as_str(), reason.as_str()),
            expected,
            "{name}: {publish}"
        );
    }
}
