//! `upload` and the video probe, through the real binary against the local
//! stack: a video TikTok would refuse stops before a token is asked for or
//! anything is recorded or sent, naming the measured value and the limit;
//! the videos TikTok takes go to drafts, and `status` shows the notes the
//! creator should read.

use std::path::PathBuf;

use crate::common::{Stack, assert_fails};

/// A committed video fixture (infra/test-media/fixtures/video, made by its
/// make.sh; provenance in its README).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/test-media/fixtures/video")
        .join(name)
}

/// Requests the simulator received as TikTok (its API and upload host; not
/// the tests' control calls).
async fn tiktok_requests(stack: &Stack) -> usize {
    stack.requests("/v2/").await + stack.requests("/upload/").await
}

#[tokio::test]
async fn videos_outside_tiktok_s_limits_stop_before_anything_is_sent_or_recorded() {
    let stack = Stack::start().await;
    stack
        .connect("open-probe", "alice", &["user.info.basic", "video.upload"])
        .await;
    for (name, measured) in [
        ("h264-120fps.mp4", "120 fps; TikTok accepts 23-60 fps"),
        ("h264-60.5fps.mp4", "60.5 fps; TikTok accepts 23-60 fps"),
        ("h264-15fps.mp4", "15 fps; TikTok accepts 23-60 fps"),
        (
            "h264-200x200.mp4",
            "200 × 200 pixels; TikTok accepts 360-4096 pixels on each side",
        ),
        (
            "h264-11min.mp4",
            "11 min 0 s (660 s) long; TikTok accepts videos of at most 10 min 0 s (600 s)",
        ),
        (
            "av1.mp4",
            "AV1 video; TikTok accepts H.264, H.265, VP8 and VP9",
        ),
        (
            "prores.mov",
            "Apple ProRes video; TikTok accepts H.264, H.265, VP8 and VP9",
        ),
        ("audio-only.mp4", "the file has sound but no picture"),
    ] {
        let path = fixture(name);
        let before = tiktok_requests(&stack).await;
        let out = stack
            .run(&["upload", path.to_str().unwrap(), "--account", "alice"])
            .await;
        assert_fails(&out, measured);
        assert_fails(&out, "nothing was sent or recorded");
        assert_eq!(
            tiktok_requests(&stack).await,
            before,
            "{name}: the simulator saw a request (token, init or bytes)"
        );
    }
    // No job, so no slot either.
    let jobs = stack.json(&["jobs"]).await;
    assert_eq!(jobs.as_array().map(Vec::len), Some(0), "{jobs}");
    assert!(stack.publishes().await.is_empty());
}

#[tokio::test]
async fn videos_tiktok_takes_go_to_drafts_and_status_shows_the_notes() {
    let stack = Stack::start().await;
    stack
        .connect("open-probe", "alice", &["user.info.basic", "video.upload"])
        .await;
    for name in [
        "h264-30fps.mp4",
        "hevc-60fps.mov",
        "vp9.webm",
        "h264-moov-at-end.mp4",
        "hevc-hdr-pq.mp4",
    ] {
        let path = fixture(name);
        let out = stack
            .json(&["upload", path.to_str().unwrap(), "--account", "alice"])
            .await;
        assert_eq!(out["status"], "processing", "{name}: {out}");
        let publish_id = out["publish_id"].as_str().unwrap();
        let record = stack.sim.publish(publish_id).await;
        assert_eq!(record["status"], "SEND_TO_USER_INBOX", "{name}: {record}");

        let job_id = out["job_id"].as_str().unwrap();
        let status = stack.json(&["status", job_id]).await;
        let notes = status["job"]["notes"].as_array().unwrap();
        if name == "hevc-hdr-pq.mp4" {
            assert_eq!(notes.len(), 1, "{status}");
            assert!(
                notes[0].as_str().unwrap().starts_with("HDR (PQ) video"),
                "{status}"
            );
            let text = stack.run(&["status", job_id]).await;
            let text = String::from_utf8_lossy(&text.stdout);
            assert!(text.contains("note:       HDR (PQ) video"), "{text}");
        } else {
            assert!(notes.is_empty(), "{name}: {status}");
        }
    }
    assert_eq!(stack.publishes().await.len(), 5);
}
