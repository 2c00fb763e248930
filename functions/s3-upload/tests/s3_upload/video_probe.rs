//! The video probe in the upload function's handler, against local AWS
//! (moto, reached by the real aws-sdk client) and the TikTok simulator: a
//! video TikTok would refuse fails before anything is spent on it (no slot,
//! no token, no request to TikTok), with the measured value in the job's
//! error; the videos TikTok takes go to drafts, with notes where the
//! creator should know something; a 1 GB object with its `moov` at the end
//! costs a few small ranged GETs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use s3_upload::events::ObjectRef;
use shared::forward::Outcome;
use shared::jobs::JobStatus;
use test_media::video::VideoSpec;

use crate::deployment::{Deployment, Options, deploy};

const OPEN_ID: &str = "open-probe";

/// Ranged GETs of one key the S3 client sent, and the bytes S3 answered
/// them with (partial content), as the client's own interceptor sees them.
#[derive(Debug, Default)]
struct RangedGets {
    key: String,
    requests: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug, Clone)]
struct Counter(Arc<RangedGets>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "RangedGetCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        if request.method() == "GET"
            && request.headers().get("range").is_some()
            && request.uri().contains(&self.0.key)
        {
            self.0.requests.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if response.status().as_u16() == 206 {
            let len = response
                .headers()
                .get("content-length")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            self.0.bytes.fetch_add(len, Ordering::SeqCst);
        }
        Ok(())
    }
}

type Env = Deployment;

/// A deployment with "alice" connected, sending videos by FILE_UPLOAD; its
/// S3 client counts the ranged GETs of `counted`'s key when given one.
async fn env(direct_post: bool, counted: Option<Counter>) -> Env {
    let options = Options {
        direct_post,
        s3_interceptor: counted.map(SharedInterceptor::new),
        ..Options::default()
    };
    deploy(OPEN_ID, "probe", options).await
}

impl Env {
    fn object(&self, key: &str, e_tag: Option<&str>) -> ObjectRef {
        ObjectRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: None,
            e_tag: e_tag.map(str::to_owned),
            size: None,
        }
    }

    /// Every request the simulator has received as TikTok (its API and
    /// its upload host; not the tests' control calls).
    async fn sim_requests(&self) -> usize {
        self.sim.requests("/v2/").await.len() + self.sim.requests("/upload/").await.len()
    }

    async fn pending_drafts(&self) -> u32 {
        self.jobs()
            .pending_drafts(OPEN_ID, chrono::Utc::now())
            .await
            .unwrap()
    }

    /// Handles `object`, expecting a failure made before anything reached
    /// TikTok: its code and message, checked against the job record.
    async fn refused(&self, object: &ObjectRef) -> (String, String) {
        let before = self.sim_requests().await;
        let (code, message) = match self.service.handle_object(object).await.unwrap() {
            Some(Outcome::Failed { code, message, .. }) => (code, message),
            other => panic!("{}: expected a failure, got {other:?}", object.key),
        };
        let job = self.job_of_version(object).await;
        assert_eq!(job.status, JobStatus::Failed, "{}", object.key);
        let error = job.last_error.clone().expect("the job records why");
        assert_eq!((&error.code, &error.message), (&code, &message));
        assert_eq!(job.publish_id(), None);
        assert_eq!(
            self.sim_requests().await,
            before,
            "{}: the simulator saw a request",
            object.key
        );
        (code, message)
    }
}

#[tokio::test]
async fn videos_outside_tiktok_s_limits_fail_before_slot_token_or_init() {
    let env = env(false, None).await;
    for (fixture, code, measured) in [
        (
            "h264-120fps.mp4",
            "frame_rate_check_failed",
            "120 fps; TikTok accepts 23-60 fps",
        ),
        (
            "h264-60.5fps.mp4",
            "frame_rate_check_failed",
            "60.5 fps; TikTok accepts 23-60 fps",
        ),
        (
            "h264-15fps.mp4",
            "frame_rate_check_failed",
            "15 fps; TikTok accepts 23-60 fps",
        ),
        (
            "h264-200x200.mp4",
            "picture_size_check_failed",
            "200 × 200 pixels; TikTok accepts 360-4096 pixels on each side",
        ),
        (
            "h264-11min.mp4",
            "duration_check_failed",
            "11 min 0 s (660 s) long; TikTok accepts videos of at most 10 min 0 s (600 s)",
        ),
        (
            "av1.mp4",
            "file_format_check_failed",
            "AV1 video; TikTok accepts H.264, H.265, VP8 and VP9",
        ),
        (
            "prores.mov",
            "file_format_check_failed",
            "Apple ProRes video; TikTok accepts H.264, H.265, VP8 and VP9",
        ),
        (
            "audio-only.mp4",
            "file_format_check_failed",
            "the file has sound but no picture",
        ),
    ] {
        let body = test_media::fixture(&format!("video/{fixture}"));
        let object = env
            .put_object(&format!("uploads/alice/{fixture}"), body, &[])
            .await;
        let (got_code, message) = env.refused(&object).await;
        assert_eq!(got_code, code, "{fixture}: {message}");
        assert!(message.starts_with(measured), "{fixture}: {message}");
        assert_eq!(env.pending_drafts().await, 0, "{fixture} took a slot");
    }
}

#[tokio::test]
async fn videos_tiktok_takes_go_to_drafts_and_hdr_is_noted() {
    // Eight drafts: two deployments, as an account holds five at most.
    let first = env(false, None).await;
    let second = env(false, None).await;
    for (i, fixture) in [
        "h264-30fps.mp4",
        "h264-moov-at-end.mp4",
        "hevc-60fps.mov",
        "h264-29.97fps.mp4",
        "h264-59.94fps.mp4",
        "vp9.webm",
        "vp8.webm",
        "hevc-hdr-pq.mp4",
    ]
    .into_iter()
    .enumerate()
    {
        let env = if i < 4 { &first } else { &second };
        let body = test_media::fixture(&format!("video/{fixture}"));
        let object = env
            .put_object(&format!("uploads/alice/{fixture}"), body, &[])
            .await;
        let publish_id = match env.service.handle_object(&object).await.unwrap() {
            Some(Outcome::Uploaded { publish_id, .. }) => publish_id,
            other => panic!("{fixture}: expected a draft, got {other:?}"),
        };
        // The simulator checks what it received as TikTok does.
        let record = env.sim.publish(&publish_id).await;
        assert_eq!(
            record["status"], "SEND_TO_USER_INBOX",
            "{fixture}: {record}"
        );
        let job = env.job_of_version(&object).await;
        assert_eq!(job.status, JobStatus::Processing, "{fixture}");
        if fixture == "hevc-hdr-pq.mp4" {
            assert_eq!(job.notes.len(), 1, "{:?}", job.notes);
            assert!(
                job.notes[0].starts_with("HDR (PQ) video"),
                "{:?}",
                job.notes
            );
        } else {
            assert_eq!(job.notes, Vec::<String>::new(), "{fixture}");
        }
    }
}

#[tokio::test]
async fn a_video_over_3_minutes_goes_with_a_note_on_its_job() {
    let env = env(false, None).await;
    let spec = VideoSpec::default().with_seconds(245.0);
    let object = env
        .put_object("uploads/alice/long.mp4", spec.bytes(400_000, 3), &[])
        .await;
    let outcome = env.service.handle_object(&object).await.unwrap();
    assert!(
        matches!(outcome, Some(Outcome::Uploaded { .. })),
        "{outcome:?}"
    );
    let job = env.job_of_version(&object).await;
    assert_eq!(job.notes.len(), 1, "{:?}", job.notes);
    assert!(
        job.notes[0].starts_with("4 min 5 s (245 s) long: some creators can post only 3 minutes"),
        "{:?}",
        job.notes
    );
}

#[tokio::test]
async fn a_direct_post_longer_than_the_creator_may_post_fails_before_init() {
    let env = env(true, None).await;
    env.sim
        .seed_user(
            OPEN_ID,
            serde_json::json!({"privacy_level_options": ["SELF_ONLY"], "max_video_post_duration_sec": 60}),
        )
        .await;
    let spec = VideoSpec::default().with_seconds(120.0);
    let object = env
        .put_object(
            "uploads/alice/two minutes.mp4",
            spec.bytes(300_000, 4),
            &[("post-mode", "direct"), ("privacy-level", "SELF_ONLY")],
        )
        .await;
    match env.service.handle_object(&object).await.unwrap() {
        Some(Outcome::Failed { code, message, .. }) => {
            assert_eq!(code, "duration_check_failed");
            assert_eq!(
                message,
                "2 min 0 s (120 s) long; this creator can post videos of at most 1 min 0 s (60 s)"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // creator_info was asked (the limit is the creator's), no init sent.
    assert_eq!(
        env.sim
            .requests("/v2/post/publish/creator_info/query/")
            .await
            .len(),
        1
    );
    assert!(
        env.sim
            .requests("/v2/post/publish/video/init/")
            .await
            .is_empty()
    );
    assert_eq!(env.job_of_version(&object).await.status, JobStatus::Failed);
}

/// Puts a `size`-byte MP4 of `spec` on moto without sending its samples:
/// a multipart upload whose middle parts are server-side copies of one
/// 64 MiB object of zeros.
async fn put_large_mp4(env: &Env, key: &str, spec: &VideoSpec, size: u64) -> ObjectRef {
    const MIB: u64 = 1024 * 1024;
    const EDGE: u64 = 5 * MIB;
    const BLOCK: u64 = 64 * MIB;
    let layout = spec.layout(size);
    let zeros_key = format!("{key}.zeros");
    env.put_object(&zeros_key, vec![0; BLOCK as usize], &[])
        .await;
    let s3 = &env.aws.s3;
    let upload = s3
        .create_multipart_upload()
        .bucket(&env.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let mut parts = Vec::new();
    let mut add = |number: i32, e_tag: Option<&str>| {
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(e_tag.map(str::to_owned))
                .build(),
        );
    };
    let first = [layout.head.clone(), vec![0; EDGE as usize]].concat();
    let sent = s3
        .upload_part()
        .bucket(&env.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(first))
        .send()
        .await
        .unwrap();
    add(1, sent.e_tag());
    let middle = layout.payload_len - 2 * EDGE;
    let blocks = middle.div_ceil(BLOCK);
    let mut number = 2;
    for i in 0..blocks {
        // Even blocks, the remainder in the first: every part over 5 MiB.
        let len = middle / blocks + if i == 0 { middle % blocks } else { 0 };
        let copied = s3
            .upload_part_copy()
            .bucket(&env.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .copy_source(format!("{}/{zeros_key}", env.bucket))
            .copy_source_range(format!("bytes=0-{}", len - 1))
            .send()
            .await
            .unwrap();
        add(number, copied.copy_part_result().and_then(|r| r.e_tag()));
        number += 1;
    }
    let last = [vec![0; EDGE as usize], layout.tail.clone()].concat();
    let sent = s3
        .upload_part()
        .bucket(&env.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(last))
        .send()
        .await
        .unwrap();
    add(number, sent.e_tag());
    let done = s3
        .complete_multipart_upload()
        .bucket(&env.bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(&env.bucket)
        .key(&zeros_key)
        .send()
        .await
        .unwrap();
    env.object(key, done.e_tag())
}

#[tokio::test]
async fn a_1_gb_mp4_with_moov_at_the_end_is_probed_in_a_few_small_ranged_gets() {
    const SIZE: u64 = 1_000_000_000;
    let key = "uploads/alice/long-take.mp4";
    let counted = Arc::new(RangedGets {
        key: "long-take.mp4".into(),
        ..RangedGets::default()
    });
    let env = env(false, Some(Counter(counted.clone()))).await;
    // Eleven minutes: refused by its duration, which only the moov at the
    // end of the object says.
    let spec = VideoSpec {
        moov_at_end: true,
        ..VideoSpec::default().with_seconds(660.0)
    };
    let object = put_large_mp4(&env, key, &spec, SIZE).await;
    let head = env
        .aws
        .s3
        .head_object()
        .bucket(&env.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(SIZE as i64));
    assert_eq!(counted.requests.load(Ordering::SeqCst), 0);

    let (code, message) = env.refused(&object).await;
    assert_eq!(code, "duration_check_failed");
    assert!(message.starts_with("11 min 0 s (660 s) long"), "{message}");
    let requests = counted.requests.load(Ordering::SeqCst);
    let bytes = counted.bytes.load(Ordering::SeqCst);
    eprintln!("probe of a {SIZE}-byte MP4, moov at the end: {requests} ranged GETs, {bytes} bytes");
    assert!((2..=3).contains(&requests), "{requests} ranged GETs");
    assert!(
        bytes > 0 && bytes * 100 < SIZE,
        "{bytes} bytes read of {SIZE}"
    );
    assert_eq!(env.pending_drafts().await, 0);
}
