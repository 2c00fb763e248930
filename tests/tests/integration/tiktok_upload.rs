//! Chunked FILE_UPLOAD and PULL_FROM_URL against the simulator, with media in
//! local S3 (moto): faults mid-way, resumption, and requests that break a
//! rule and must fail.

use std::time::Duration;
use tiktok_drafts_tests::{FaultAction, FaultRule};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use shared::aws::AwsClients;
use shared::storage::BytesSource;
use shared::storage::S3Object;
use shared::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;
use shared::tiktok::upload::{ChunkRetryPolicy, UploadError, Uploader, VideoContentType};
use shared::tiktok::{ChunkPlan, FailReason, PhotoPost, PublishState, VideoSource};
use tiktok_drafts_tests::{TestSim, fake_mp4, local_aws, sha256_hex, test_image, unique_name};

const DRAFT_SCOPES: &[&str] = &["user.info.basic", "video.upload"];

async fn bucket_with(aws: &AwsClients, objects: &[(&str, Vec<u8>)]) -> String {
    let bucket = unique_name("media");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    for (key, body) in objects {
        aws.s3
            .put_object()
            .bucket(&bucket)
            .key(*key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    bucket
}

async fn presign(aws: &AwsClients, bucket: &str, key: &str) -> String {
    aws.s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(900)).unwrap())
        .await
        .unwrap()
        .uri()
        .to_owned()
}

/// A 5xx and a dropped connection mid-way: the uploader retries the same
/// chunks and TikTok ends up with exactly the object's bytes, read from S3 by
/// ranged GETs.
#[tokio::test]
async fn multi_chunk_upload_from_s3_survives_a_5xx_and_a_reset() {
    let aws = AwsClients::from_config(&local_aws().await);
    let video = fake_mp4(75_000_000, 11);
    let bucket = bucket_with(&aws, &[("uploads/alice/long.mp4", video.clone())]).await;
    let source = S3Object::open(aws.s3.clone(), &bucket, "uploads/alice/long.mp4")
        .await
        .unwrap();
    assert_eq!(source.size(), video.len() as u64);

    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-up", serde_json::json!({})).await;
    let t = sim.tokens("open-up", DRAFT_SCOPES).await;
    let plan = ChunkPlan::new(source.size(), DEFAULT_CHUNK_SIZE).unwrap();
    assert_eq!(plan.total_chunk_count, 7);
    let init = sim
        .client()
        .init_inbox_video(&t.access_token, &VideoSource::FileUpload(plan))
        .await
        .unwrap();

    sim.fault(
        FaultRule::new("/upload/", FaultAction::status(503))
            .method("PUT")
            .skip(1),
    )
    .await;
    sim.fault(
        FaultRule::new("/upload/", FaultAction::Reset)
            .method("PUT")
            .skip(4),
    )
    .await;

    struct Offsets(Vec<u64>);
    impl shared::tiktok::upload::UploadProgress for Offsets {
        async fn chunk_done(&mut self, next_offset: u64, _chunk_index: u64) {
            self.0.push(next_offset);
        }
    }
    let mut offsets = Offsets(Vec::new());
    let report = Uploader::new(reqwest::Client::new(), ChunkRetryPolicy::immediate(4))
        .with_hosts(sim.client().endpoints().upload_hosts())
        .upload(
            init.upload_url.as_ref().unwrap().expose(),
            &plan,
            VideoContentType::Mp4,
            &source,
            0,
            &mut offsets,
        )
        .await
        .expect("the upload completes despite the faults");
    assert_eq!(report.chunks_sent, 7);
    assert_eq!(report.retries, 2, "one 503, one reset");
    assert_eq!(offsets.0.len(), 7);
    assert_eq!(*offsets.0.last().unwrap(), video.len() as u64);

    let record = sim.publish(&init.publish_id).await;
    assert_eq!(record["sha256"], sha256_hex(&video));
    assert_eq!(record["status"], "SEND_TO_USER_INBOX");
    let puts = sim.requests("/upload/").await;
    assert_eq!(puts.len(), 9, "7 chunks plus 2 repeated after faults");
    sim.shutdown().await;
}

/// A simulator with one creator and an initialised FILE_UPLOAD of a
/// generated video, ready for PUTs.
struct StartedUpload {
    sim: TestSim,
    video: Vec<u8>,
    plan: ChunkPlan,
    publish_id: String,
    url: String,
}

async fn started_upload(open_id: &str, size: usize, seed: u64) -> StartedUpload {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user(open_id, serde_json::json!({})).await;
    let t = sim.tokens(open_id, DRAFT_SCOPES).await;
    let video = fake_mp4(size, seed);
    let plan = ChunkPlan::new(video.len() as u64, DEFAULT_CHUNK_SIZE).unwrap();
    let init = sim
        .client()
        .init_inbox_video(&t.access_token, &VideoSource::FileUpload(plan))
        .await
        .unwrap();
    let url = init.upload_url.as_ref().unwrap().expose().to_owned();
    StartedUpload {
        sim,
        video,
        plan,
        publish_id: init.publish_id,
        url,
    }
}

/// An upload stopped after two chunks resumes from the saved offset: only the
/// remaining chunks go up and the bytes match.
#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_saved_offset() {
    let StartedUpload {
        sim,
        video,
        plan,
        publish_id,
        url,
    } = started_upload("open-res", 70_000_000, 12).await;
    let source = BytesSource::new(video.clone());

    // The third PUT fails every time: this "invocation" gives up after two chunks.
    sim.fault(
        FaultRule::new("/upload/", FaultAction::status(500))
            .method("PUT")
            .skip(2)
            .times(2),
    )
    .await;
    struct Saved(u64);
    impl shared::tiktok::upload::UploadProgress for Saved {
        async fn chunk_done(&mut self, next_offset: u64, _chunk_index: u64) {
            self.0 = next_offset;
        }
    }
    let mut saved = Saved(0);
    let err = Uploader::new(reqwest::Client::new(), ChunkRetryPolicy::immediate(2))
        .with_hosts(sim.client().endpoints().upload_hosts())
        .upload(&url, &plan, VideoContentType::Mp4, &source, 0, &mut saved)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UploadError::AttemptsExhausted { .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("upload_token"), "{err}");
    assert_eq!(saved.0, 2 * plan.chunk_size);

    // The next "invocation" resumes from the saved offset.
    let report = Uploader::new(reqwest::Client::new(), ChunkRetryPolicy::immediate(2))
        .with_hosts(sim.client().endpoints().upload_hosts())
        .upload(
            &url,
            &plan,
            VideoContentType::Mp4,
            &source,
            saved.0,
            &mut saved,
        )
        .await
        .unwrap();
    assert_eq!(report.chunks_sent, plan.total_chunk_count - 2);
    assert_eq!(report.resyncs, 0);
    let record = sim.publish(&publish_id).await;
    assert_eq!(record["sha256"], sha256_hex(&video));
    sim.shutdown().await;
}

/// A resume that starts from an offset behind TikTok's progress is set right
/// by the 416 and its Content-Range, without re-sending accepted chunks twice.
#[tokio::test]
async fn a_stale_offset_resyncs_from_the_416() {
    let StartedUpload {
        sim,
        video,
        plan,
        publish_id,
        url,
    } = started_upload("open-416", 80_000_000, 13).await;
    let source = BytesSource::new(video.clone());
    sim.fault(
        FaultRule::new("/upload/", FaultAction::status(500))
            .method("PUT")
            .skip(3),
    )
    .await;
    let _ = Uploader::new(reqwest::Client::new(), ChunkRetryPolicy::immediate(1))
        .with_hosts(sim.client().endpoints().upload_hosts())
        .upload(&url, &plan, VideoContentType::Mp4, &source, 0, &mut ())
        .await
        .unwrap_err();
    // TikTok holds 3 chunks; we claim to start at 0.
    let report = Uploader::new(reqwest::Client::new(), ChunkRetryPolicy::immediate(3))
        .with_hosts(sim.client().endpoints().upload_hosts())
        .upload(&url, &plan, VideoContentType::Mp4, &source, 0, &mut ())
        .await
        .unwrap();
    assert_eq!(report.resyncs, 1);
    assert_eq!(report.chunks_sent, plan.total_chunk_count - 3);
    let record = sim.publish(&publish_id).await;
    assert_eq!(record["sha256"], sha256_hex(&video));
    sim.shutdown().await;
}

/// Requests that break the transfer rules fail against the simulator.
#[tokio::test]
async fn rule_breaking_uploads_fail() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-bad", serde_json::json!({})).await;
    let t = sim.tokens("open-bad", DRAFT_SCOPES).await;
    let client = sim.client();
    let http = reqwest::Client::new();

    // Init with a count from ceil instead of floor: "The chunk size is invalid".
    let res = http
        .post(format!(
            "{}/v2/post/publish/inbox/video/init/",
            sim.base_url()
        ))
        .bearer_auth(t.access_token.expose())
        .json(&serde_json::json!({"source_info": {"source": "FILE_UPLOAD",
            "video_size": 75_000_000u64, "chunk_size": 10_000_000u64, "total_chunk_count": 8}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_params");

    // A 64,000,001-byte single chunk breaks "over 64 MB must be chunked".
    let res = http
        .post(format!(
            "{}/v2/post/publish/inbox/video/init/",
            sim.base_url()
        ))
        .bearer_auth(t.access_token.expose())
        .json(&serde_json::json!({"source_info": {"source": "FILE_UPLOAD",
            "video_size": 64_000_001u64, "chunk_size": 64_000_001u64, "total_chunk_count": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // A good init, then PUTs that break the rules.
    let plan = ChunkPlan::new(70_000_000, DEFAULT_CHUNK_SIZE).unwrap();
    let init = client
        .init_inbox_video(&t.access_token, &VideoSource::FileUpload(plan))
        .await
        .unwrap();
    let url = init.upload_url.as_ref().unwrap().expose().to_owned();
    let chunk = vec![0u8; plan.chunk_size as usize];
    let put = |range: String, body: Vec<u8>| {
        http.put(&url)
            .header("Content-Type", "video/mp4")
            .header("Content-Range", range)
            .body(body)
            .send()
    };
    // Out of order: the second chunk first.
    let res = put(
        format!(
            "bytes {}-{}/70000000",
            plan.chunk_size,
            2 * plan.chunk_size - 1
        ),
        chunk.clone(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 416);
    // Content-Range total is the chunk, not the file (a real historic bug).
    let res = put(
        format!("bytes 0-{}/{}", plan.chunk_size - 1, plan.chunk_size),
        chunk.clone(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    // A chunk bigger than the plan's.
    let res = put(
        format!("bytes 0-{}/70000000", plan.chunk_size),
        vec![0u8; plan.chunk_size as usize + 1],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    // Wrong content type.
    let res = http
        .put(&url)
        .header("Content-Type", "application/octet-stream")
        .header(
            "Content-Range",
            format!("bytes 0-{}/70000000", plan.chunk_size - 1),
        )
        .body(chunk.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // After an hour the URL is dead.
    sim.advance_clock(3601).await;
    let err = Uploader::new(http.clone(), ChunkRetryPolicy::immediate(1))
        .with_hosts(sim.client().endpoints().upload_hosts())
        .upload(
            &url,
            &plan,
            VideoContentType::Mp4,
            &BytesSource::new(vec![0u8; 70_000_000]),
            0,
            &mut (),
        )
        .await
        .unwrap_err();
    // 405 by default: one of the three statuses seen for an expired URL.
    assert!(
        matches!(err, UploadError::SessionGone { status: 405 }),
        "{err}"
    );
    assert!(err.needs_new_upload());
    sim.shutdown().await;
}

/// PULL_FROM_URL: TikTok fetches from a verified prefix (moto on loopback)
/// and checks what it got.
#[tokio::test]
async fn pulled_videos_and_photos_are_checked() {
    let aws = AwsClients::from_config(&local_aws().await);
    let video = fake_mp4(2_000_000, 14);
    let jpeg = test_image(1080, 1350, image::ImageFormat::Jpeg);
    let wide = test_image(1200, 800, image::ImageFormat::Jpeg);
    let png = test_image(600, 600, image::ImageFormat::Png);
    let bucket = bucket_with(
        &aws,
        &[
            ("media/v.mp4", video.clone()),
            ("media/ok.jpg", jpeg.clone()),
            ("media/wide.jpg", wide),
            ("media/p.png", png),
        ],
    )
    .await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let prefix = format!("{}/{bucket}/media/", endpoint.trim_end_matches('/'));
    let sim = TestSim::start(|s| {
        s.verified_url_prefixes = vec![prefix.clone()];
        s.allow_http_pull = true;
    })
    .await;
    sim.seed_user("open-pull", serde_json::json!({})).await;
    let client = sim.client();

    let wait_final = |token: shared::Secret, id: String| {
        let client = client.clone();
        async move {
            for _ in 0..200 {
                let s = client.fetch_status(&token, &id).await.unwrap();
                if !s.status.is_processing() {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("publish {id} still processing");
        }
    };

    let t = sim.tokens("open-pull", DRAFT_SCOPES).await;
    let init = client
        .init_inbox_video(
            &t.access_token,
            &VideoSource::PullFromUrl {
                video_url: presign(&aws, &bucket, "media/v.mp4").await,
            },
        )
        .await
        .unwrap();
    let s = wait_final(t.access_token.clone(), init.publish_id.clone()).await;
    assert_eq!(s.status, PublishState::SendToUserInbox);
    assert_eq!(
        sim.publish(&init.publish_id).await["sha256"],
        sha256_hex(&video)
    );

    let t = sim.tokens("open-pull", DRAFT_SCOPES).await;
    let ok = client
        .init_photo(
            &t.access_token,
            &PhotoPost::draft(vec![presign(&aws, &bucket, "media/ok.jpg").await], 0),
        )
        .await
        .unwrap();
    let s = wait_final(t.access_token.clone(), ok.publish_id.clone()).await;
    assert_eq!(s.status, PublishState::SendToUserInbox, "{s:?}");
    let record = sim.publish(&ok.publish_id).await;
    assert_eq!(record["images"][0]["width"], 1080);
    assert_eq!(record["images"][0]["format"], "jpeg");
    assert_eq!(record["images"][0]["sha256"], sha256_hex(&jpeg));
    let logged = record.to_string();
    assert!(
        !logged.contains("X-Amz-Signature"),
        "presigned query kept: {logged}"
    );

    for (key, reason) in [
        ("media/p.png", FailReason::FileFormatCheckFailed),
        ("media/wide.jpg", FailReason::PictureSizeCheckFailed),
    ] {
        let t = sim.tokens("open-pull", DRAFT_SCOPES).await;
        let init = client
            .init_photo(
                &t.access_token,
                &PhotoPost::draft(vec![presign(&aws, &bucket, key).await], 0),
            )
            .await
            .unwrap();
        let s = wait_final(t.access_token.clone(), init.publish_id).await;
        assert_eq!(s.status, PublishState::Failed, "{key}");
        assert_eq!(s.fail_reason, Some(reason), "{key}");
    }
    sim.shutdown().await;
}
