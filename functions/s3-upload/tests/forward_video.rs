//! The upload function's handler against local AWS (moto) and the TikTok
//! simulator: real S3 events in, drafts (or clear failures) out.

use aws_sdk_s3::primitives::ByteStream;
use s3_upload::config::UploadConfig;
use s3_upload::events::ObjectRef;
use s3_upload::forwarder::Outcome;
use s3_upload::service::UploadService;
use shared::accounts::Accounts;
use shared::aws::AwsClients;
use shared::jobs::{JobId, JobStatus, Jobs, ObjectVersion};
use shared::tiktok::Endpoints;
use shared::tiktok::upload::RetryPolicy;
use shared::tokens::{Clock, TokenManager};
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, connect_account, deployment_stores, fake_mp4, local_aws, sha256_hex,
    test_image, unique_name,
};

struct Env {
    sim: TestSim,
    aws: AwsClients,
    service: UploadService,
    bucket: String,
    table: String,
}

const OPEN_ID: &str = "open-vid";

async fn env() -> Env {
    env_with(false).await
}

/// What a test deployment differs in.
#[derive(Default, Clone, Copy)]
struct Options {
    /// Media (photos, pulled videos) reachable by the simulator.
    media: bool,
    pull_videos: bool,
    direct_post: bool,
}

async fn env_with(media: bool) -> Env {
    env_opts(Options {
        media,
        ..Options::default()
    })
    .await
}

/// With `media`, photo drafts are pulled from the bucket on moto, which the
/// simulator treats as the verified prefix.
async fn env_opts(options: Options) -> Env {
    let media = options.media;
    let aws = AwsClients::from_config(&local_aws().await);
    let bucket = unique_name("uploads");
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    // Presigned URLs of the bucket on moto start with this prefix.
    let prefix_for_sim = format!("{}/{bucket}/media/", endpoint.trim_end_matches('/'));
    let sim = TestSim::start(|s| {
        if media {
            s.verified_url_prefixes = vec![prefix_for_sim.clone()];
            s.allow_http_pull = true;
        }
    })
    .await;
    sim.seed_user(OPEN_ID, serde_json::json!({})).await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();

    // A connected account "alice", as the login function leaves it.
    let scopes: &[&str] = if options.direct_post {
        &["user.info.basic", "video.upload", "video.publish"]
    } else {
        &["user.info.basic", "video.upload"]
    };
    let manager = TokenManager::for_deployment(&aws, sim.client(), &prefix, &table);
    let accounts = Accounts::new(aws.dynamodb.clone(), &table);
    connect_account(&sim, &manager, &accounts, OPEN_ID, "alice", scopes).await;

    let config = UploadConfig {
        table: table.clone(),
        secrets_prefix: prefix,
        app_secret_id,
        default_account: None,
        chunk_size: 10_000_000,
        media_urls: media.then_some(s3_upload::config::MediaUrls::Presigned),
        image_grace: std::time::Duration::from_secs(0),
        convert_threads: 2,
        endpoints: Endpoints::for_base_url(sim.base_url()).unwrap(),
        video_transfer: if options.pull_videos {
            s3_upload::config::VideoTransfer::PullFromUrl
        } else {
            s3_upload::config::VideoTransfer::FileUpload
        },
        direct_post_enabled: options.direct_post,
    };
    let service = UploadService::new(config, &aws, Clock::system())
        .await
        .unwrap()
        .with_upload_retry(RetryPolicy::immediate(2));
    Env {
        sim,
        aws,
        service,
        bucket,
        table,
    }
}

impl Env {
    async fn put(&self, key: &str, body: Vec<u8>, caption: Option<&str>) -> ObjectRef {
        let mut put = self
            .aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        if let Some(c) = caption {
            put = put.metadata("caption", c);
        }
        let out = put.send().await.unwrap();
        ObjectRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: None,
            e_tag: out.e_tag().map(str::to_owned),
            size: None,
        }
    }

    async fn job(&self, object: &ObjectRef) -> shared::jobs::Job {
        let head = self
            .aws
            .s3
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .unwrap();
        let id = JobId::for_upload(
            &object.bucket,
            &object.key,
            &ObjectVersion::etag(head.e_tag().unwrap()),
        );
        Jobs::new(self.aws.dynamodb.clone(), &self.table)
            .get(&id)
            .await
            .unwrap()
            .expect("a job record")
    }

    async fn inits(&self) -> usize {
        self.sim
            .requests("/v2/post/publish/inbox/video/init/")
            .await
            .len()
    }
}

fn uploaded(outcome: Option<Outcome>) -> String {
    match outcome {
        Some(Outcome::Uploaded { publish_id, .. }) => publish_id,
        other => panic!("expected an upload, got {other:?}"),
    }
}

#[tokio::test]
async fn a_small_video_becomes_a_draft_with_its_caption_kept() {
    let env = env().await;
    let video = fake_mp4(3_000_000, 1);
    let caption = format!("Summer 🌞 {}", "x".repeat(2300));
    let object = env
        .put("uploads/alice/summer.mp4", video.clone(), Some(&caption))
        .await;
    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());

    let record = env.sim.publish(&publish_id).await;
    assert_eq!(record["sha256"], sha256_hex(&video));
    assert_eq!(record["total_chunk_count"], 1);
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Processing);
    assert_eq!(job.publish_id.as_deref(), Some(publish_id.as_str()));
    let kept = job.caption.expect("the caption is kept with the job");
    assert!(kept.starts_with("Summer 🌞"));
    assert_eq!(
        shared::caption::utf16_len(&kept),
        2200,
        "trimmed to TikTok's limit"
    );
    assert!(
        job.upload_url.is_none(),
        "the upload URL is dropped once sent"
    );
}

#[tokio::test]
async fn a_150_mb_video_goes_up_in_chunks_with_the_same_bytes() {
    let env = env().await;
    let video = fake_mp4(150_000_000, 2);
    let object = env
        .put("uploads/alice/long take.mp4", video.clone(), None)
        .await;
    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
    let record = env.sim.publish(&publish_id).await;
    assert_eq!(record["total_chunk_count"], 15);
    assert_eq!(record["sha256"], sha256_hex(&video));
    assert_eq!(record["status"], "SEND_TO_USER_INBOX");
}

#[tokio::test]
async fn mov_and_webm_and_a_key_with_spaces_and_accents() {
    let env = env().await;
    let mut mov = fake_mp4(200_000, 3);
    mov[8..12].copy_from_slice(b"qt  ");
    let mut webm = tiktok_drafts_tests::noise(200_000, 4);
    webm[..4].copy_from_slice(&[0x1A, 0x45, 0xDF, 0xA3]);
    webm[4..40].copy_from_slice(&[
        0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3,
        0x81, 0x08, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm', 0x42, 0x87, 0x81, 0x04, 0x42, 0x85,
        0x81, 0x02, 0x18, 0x53, 0x80, 0x67,
    ]);
    for (key, body, content_type) in [
        ("uploads/alice/été à la plage.mov", mov, "video/quicktime"),
        ("uploads/alice/clip.webm", webm, "video/webm"),
    ] {
        let object = env.put(key, body.clone(), None).await;
        let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
        let record = env.sim.publish(&publish_id).await;
        assert_eq!(record["sha256"], sha256_hex(&body), "{key}");
        let puts = env.sim.requests("/upload/").await;
        assert_eq!(
            puts.last().unwrap()["content_type"],
            content_type,
            "{key} sent with its real type"
        );
    }
}

#[tokio::test]
async fn ten_deliveries_five_at_once_make_one_draft() {
    let env = env().await;
    let object = env
        .put("uploads/alice/once.mp4", fake_mp4(2_000_000, 5), None)
        .await;
    let concurrent =
        futures::future::join_all((0..5).map(|_| env.service.handle_object(&object))).await;
    for _ in 0..5 {
        let _ = env.service.handle_object(&object).await;
    }
    let uploads = concurrent
        .iter()
        .filter(|r| matches!(r, Ok(Some(Outcome::Uploaded { .. }))))
        .count();
    assert_eq!(uploads, 1, "{concurrent:?}");
    assert_eq!(env.inits().await, 1, "exactly one init reached TikTok");
    let drafts: Vec<serde_json::Value> = match env.sim.get("/_sim/publishes").await {
        serde_json::Value::Array(a) => a,
        other => other["publishes"].as_array().cloned().unwrap_or_default(),
    };
    assert_eq!(drafts.len(), 1);
}

#[tokio::test]
async fn a_crash_after_two_chunks_resumes_on_redelivery() {
    let env = env().await;
    let video = fake_mp4(50_000_000 + 64_000_000, 6);
    let object = env
        .put("uploads/alice/resume.mp4", video.clone(), None)
        .await;
    // The third chunk's connection drops on every try of this invocation.
    env.sim
        .fault(
            serde_json::json!({"method": "PUT", "path_prefix": "/upload/", "skip": 2, "times": 2,
            "action": {"type": "reset"}}),
        )
        .await;
    let first = env.service.handle_object(&object).await;
    assert!(first.is_err(), "the message must come back: {first:?}");
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Uploading);
    assert_eq!(job.next_offset, 20_000_000);

    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
    assert_eq!(env.inits().await, 1, "resumed, not initialised again");
    let record = env.sim.publish(&publish_id).await;
    assert_eq!(record["sha256"], sha256_hex(&video));
}

#[tokio::test]
async fn bad_inputs_fail_clearly_and_leave_the_object_alone() {
    let env = env().await;
    let png = test_image(64, 64, image::ImageFormat::Png);
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "uploads/alice/empty.mp4",
            Vec::new(),
            "unsupported_media",
            "empty",
        ),
        ("uploads/alice/picture.mp4", png, "unsupported_media", "PNG"),
        (
            "uploads/alice/truncated.mp4",
            vec![0, 0, 0, 0x18, b'f', b't'],
            "unsupported_media",
            "",
        ),
        (
            "uploads/nobody/clip.mp4",
            fake_mp4(1000, 7),
            "unknown_account",
            "nobody",
        ),
    ];
    for (key, body, code, hint) in cases {
        let object = env.put(key, body.clone(), None).await;
        let before = env
            .aws
            .s3
            .head_object()
            .bucket(&env.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        match env.service.handle_object(&object).await.unwrap() {
            Some(Outcome::Failed {
                code: got, message, ..
            }) => {
                assert_eq!(got, code, "{key}: {message}");
                assert!(
                    message.to_lowercase().contains(&hint.to_lowercase()),
                    "{key}: {message}"
                );
            }
            other => panic!("{key}: expected a failure, got {other:?}"),
        }
        let job = env.job(&object).await;
        assert_eq!(job.status, JobStatus::Failed, "{key}");
        assert_eq!(job.last_error.as_ref().map(|e| e.code.as_str()), Some(code));
        let after = env
            .aws
            .s3
            .head_object()
            .bucket(&env.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(after.e_tag(), before.e_tag(), "{key} untouched");
    }
    assert_eq!(env.inits().await, 0, "nothing bad reached TikTok");
}

#[tokio::test]
async fn a_sixth_pending_draft_is_held() {
    let env = env().await;
    for i in 0..5 {
        let object = env
            .put(
                &format!("uploads/alice/{i}.mp4"),
                fake_mp4(1000, 10 + i),
                None,
            )
            .await;
        uploaded(env.service.handle_object(&object).await.unwrap());
        // TikTok allows 6 inits a minute per token; keep clear of it.
        env.sim.advance_clock(11).await;
    }
    let object = env
        .put("uploads/alice/sixth.mp4", fake_mp4(1000, 20), None)
        .await;
    let outcome = env.service.handle_object(&object).await.unwrap();
    assert!(
        matches!(outcome, Some(Outcome::Queued { .. })),
        "{outcome:?}"
    );
    assert_eq!(env.job(&object).await.status, JobStatus::Queued);
    assert_eq!(env.inits().await, 5);
}

fn manifest(images: &[&str], caption: &str, title: Option<&str>) -> Vec<u8> {
    let mut m = serde_json::json!({"caption": caption, "images": images, "cover_index": 1});
    if let Some(t) = title {
        m["title"] = serde_json::json!(t);
    }
    serde_json::to_vec(&m).unwrap()
}

/// Waits until the simulator has pulled the photos.
async fn pulled(env: &Env, publish_id: &str) -> serde_json::Value {
    for _ in 0..200 {
        let record = env.sim.publish(publish_id).await;
        if record["status"] != "PROCESSING_DOWNLOAD" {
            return record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("photos of {publish_id} were never pulled");
}

#[tokio::test]
async fn a_png_jpeg_and_webp_slideshow_becomes_a_photo_draft() {
    let env = env_with(true).await;
    let png = test_image(1600, 1200, image::ImageFormat::Png);
    let rotated = tiktok_drafts_tests::jpeg_with_orientation(
        &test_image(1600, 1200, image::ImageFormat::Jpeg),
        6,
    );
    let webp = test_image(800, 600, image::ImageFormat::WebP);
    for (name, body) in [("1 beach.png", png), ("2.jpg", rotated), ("3.webp", webp)] {
        env.put(&format!("uploads/alice/trip/{name}"), body, None)
            .await;
    }
    let caption = format!("Trip 🌍 {}", "ö".repeat(5000));
    let object = env
        .put(
            "uploads/alice/trip/slideshow.json",
            manifest(
                &["1 beach.png", "2.jpg", "3.webp"],
                &caption,
                Some(&"🌍".repeat(60)),
            ),
            None,
        )
        .await;
    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
    let record = pulled(&env, &publish_id).await;
    assert_eq!(record["status"], "SEND_TO_USER_INBOX", "{record}");
    assert_eq!(record["post_mode"], "MEDIA_UPLOAD");
    assert_eq!(record["photo_cover_index"], 1);
    let images = record["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    for image in images {
        assert_eq!(image["format"], "jpeg", "{image}");
        assert!(image["width"].as_u64().unwrap() <= 1080, "{image}");
    }
    assert_eq!(
        (images[0]["width"].clone(), images[0]["height"].clone()),
        (1080.into(), 810.into())
    );
    // EXIF 6 turned the landscape JPEG into a portrait photo.
    assert_eq!(
        (images[1]["width"].clone(), images[1]["height"].clone()),
        (1080.into(), 1440.into())
    );
    let title = record["post_info"]["title"].as_str().unwrap();
    assert!(
        shared::caption::utf16_len(title) <= 90,
        "title trimmed: {title}"
    );
    let description = record["post_info"]["description"].as_str().unwrap();
    assert!(shared::caption::utf16_len(description) <= 4000);
    assert!(description.starts_with("Trip 🌍"));
    assert_eq!(env.job(&object).await.status, JobStatus::Processing);
}

#[tokio::test]
async fn bad_slideshows_fail_with_the_reason() {
    let env = env_with(true).await;
    env.put(
        "uploads/alice/s/ok.png",
        test_image(50, 50, image::ImageFormat::Png),
        None,
    )
    .await;
    let mut corrupt = test_image(50, 50, image::ImageFormat::Png);
    corrupt.truncate(60);
    env.put("uploads/alice/s/broken.png", corrupt, None).await;
    let too_many: Vec<String> = (0..36).map(|i| format!("{i}.png")).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "uploads/alice/a/slideshow.json",
            b"{ not json".to_vec(),
            "bad_manifest",
            "slideshow.json",
        ),
        (
            "uploads/alice/b/slideshow.json",
            manifest(&too_many, "x", None),
            "bad_manifest",
            "35",
        ),
        (
            "uploads/alice/s/slideshow.json",
            manifest(&["ok.png", "gone.png"], "x", None),
            "missing_image",
            "gone.png",
        ),
    ];
    for (key, body, code, hint) in cases {
        let object = env.put(key, body, None).await;
        match env.service.handle_object(&object).await.unwrap() {
            Some(Outcome::Failed {
                code: got, message, ..
            }) => {
                assert_eq!(got, code, "{key}: {message}");
                assert!(message.contains(hint), "{key}: {message}");
            }
            other => panic!("{key}: expected a failure, got {other:?}"),
        }
    }
    let object = env
        .put(
            "uploads/alice/s2/slideshow.json",
            manifest(&["../s/ok.png", "x.png"], "x", None),
            None,
        )
        .await;
    assert!(matches!(
        env.service.handle_object(&object).await.unwrap(),
        Some(Outcome::Failed { code, .. }) if code == "bad_manifest"
    ));
    env.put(
        "uploads/alice/c/ok.png",
        test_image(50, 50, image::ImageFormat::Png),
        None,
    )
    .await;
    env.put(
        "uploads/alice/c/broken.png",
        {
            let mut b = test_image(50, 50, image::ImageFormat::Png);
            b.truncate(60);
            b
        },
        None,
    )
    .await;
    let object = env
        .put(
            "uploads/alice/c/slideshow.json",
            manifest(&["ok.png", "broken.png"], "x", None),
            None,
        )
        .await;
    match env.service.handle_object(&object).await.unwrap() {
        Some(Outcome::Failed { code, message, .. }) => {
            assert_eq!(code, "bad_image");
            assert!(message.contains("broken.png"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        env.sim
            .requests("/v2/post/publish/content/init/")
            .await
            .len(),
        0,
        "nothing bad reached TikTok"
    );
}

/// An SQS batch as S3 delivers it: the good message is handled, the one
/// whose upload must be retried is reported for redelivery, an unreadable
/// one is dropped (redelivery cannot fix it).
#[tokio::test]
async fn an_sqs_batch_reports_only_the_messages_to_retry() {
    let env = env().await;
    let good = env
        .put("uploads/alice/good clip.mp4", fake_mp4(1000, 30), None)
        .await;
    let flaky = env
        .put("uploads/alice/flaky.mp4", fake_mp4(1000, 31), None)
        .await;
    let s3_body = |key: &str| {
        let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-22T01:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "203.0.113.10"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
                   "bucket": {"name": env.bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": "arn:aws:s3:::x"},
                   "object": {"key": encoded, "size": 1000, "sequencer": "0A"}}}]})
        .to_string()
    };
    let message = |id: &str, body: String| {
        serde_json::json!({"messageId": id, "receiptHandle": "r", "body": body,
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"})
    };
    let batch = serde_json::json!({"Records": [
        message("m-good", s3_body(&good.key)),
        message("m-flaky", s3_body(&flaky.key)),
        message("m-garbage", "not json".into()),
    ]});
    // The second upload's chunk PUTs keep failing.
    env.sim
        .fault(
            serde_json::json!({"method": "PUT", "path_prefix": "/upload/", "skip": 1, "times": 10,
            "action": {"type": "status", "status": 503}}),
        )
        .await;
    let response = env.service.handle_event(batch).await.unwrap();
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m-flaky"]);
    assert_eq!(env.job(&good).await.status, JobStatus::Processing);
    assert_eq!(env.job(&flaky).await.status, JobStatus::Uploading);
}

impl Env {
    async fn put_with_metadata(
        &self,
        key: &str,
        body: Vec<u8>,
        meta: &[(&str, &str)],
    ) -> ObjectRef {
        let mut put = self
            .aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        for (name, value) in meta {
            put = put.metadata(*name, *value);
        }
        let out = put.send().await.unwrap();
        ObjectRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: None,
            e_tag: out.e_tag().map(str::to_owned),
            size: None,
        }
    }
}

#[tokio::test]
async fn with_a_verified_prefix_tiktok_pulls_a_copy_under_media() {
    let env = env_opts(Options {
        media: true,
        pull_videos: true,
        direct_post: false,
    })
    .await;
    let video = fake_mp4(2_000_000, 50);
    let object = env
        .put("uploads/alice/pulled clip.mp4", video.clone(), None)
        .await;
    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());

    let inits = env.sim.requests("/v2/post/publish/inbox/video/init/").await;
    assert_eq!(inits.len(), 1);
    assert_eq!(inits[0]["body"]["source_info"]["source"], "PULL_FROM_URL");
    assert!(
        env.sim.requests("/upload/").await.is_empty(),
        "no chunk was sent"
    );
    // The simulator pulled the copy and has exactly the object's bytes.
    let mut record = env.sim.publish(&publish_id).await;
    for _ in 0..50 {
        if record["status"] != "PROCESSING_DOWNLOAD" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        record = env.sim.publish(&publish_id).await;
    }
    assert_eq!(record["sha256"], sha256_hex(&video), "{record}");
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Processing);
    assert!(job.upload_url.is_none() && job.chunk_plan.is_none());
    // The copy sits under media/, the original is untouched.
    let listed = env
        .aws
        .s3
        .list_objects_v2()
        .bucket(&env.bucket)
        .prefix("media/videos/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
    let original = env
        .aws
        .s3
        .get_object()
        .bucket(&env.bucket)
        .key(&object.key)
        .send()
        .await
        .unwrap();
    let bytes = original.body.collect().await.unwrap().into_bytes();
    assert_eq!(sha256_hex(&bytes), sha256_hex(&video));
}

#[tokio::test]
async fn a_direct_post_needs_the_deployment_setting_and_an_offered_privacy_level() {
    // Not enabled: refused with a clear reason, nothing sent.
    let env = env().await;
    let object = env
        .put_with_metadata(
            "uploads/alice/direct.mp4",
            fake_mp4(300_000, 60),
            &[("post-mode", "direct"), ("privacy-level", "SELF_ONLY")],
        )
        .await;
    match env.service.handle_object(&object).await.unwrap() {
        Some(Outcome::Failed { code, message, .. }) => {
            assert_eq!(code, "direct_post_refused");
            assert!(message.contains("DIRECT_POST_ENABLED"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(env.sim.requests("/v2/post/publish/").await.is_empty());

    // Enabled: the privacy level must be one creator_info offers.
    let env = env_opts(Options {
        direct_post: true,
        ..Options::default()
    })
    .await;
    let missing = env
        .put_with_metadata(
            "uploads/alice/no level.mp4",
            fake_mp4(300_000, 61),
            &[("post-mode", "direct")],
        )
        .await;
    match env.service.handle_object(&missing).await.unwrap() {
        Some(Outcome::Failed { code, message, .. }) => {
            assert_eq!(code, "direct_post_refused");
            assert!(message.contains("privacy-level"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    env.sim
        .seed_user(
            OPEN_ID,
            serde_json::json!({"privacy_level_options": ["SELF_ONLY", "MUTUAL_FOLLOW_FRIENDS"]}),
        )
        .await;
    let public = env
        .put_with_metadata(
            "uploads/alice/public.mp4",
            fake_mp4(300_000, 62),
            &[
                ("post-mode", "direct"),
                ("privacy-level", "PUBLIC_TO_EVERYONE"),
            ],
        )
        .await;
    match env.service.handle_object(&public).await.unwrap() {
        Some(Outcome::Failed { code, message, .. }) => {
            assert_eq!(code, "privacy_level_not_offered");
            assert!(message.contains("SELF_ONLY"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        env.sim
            .requests("/v2/post/publish/video/init/")
            .await
            .is_empty()
    );

    let private = env
        .put_with_metadata(
            "uploads/alice/private.mp4",
            fake_mp4(300_000, 63),
            &[("post-mode", "direct"), ("privacy-level", "self_only")],
        )
        .await;
    let publish_id = uploaded(env.service.handle_object(&private).await.unwrap());
    let inits = env.sim.requests("/v2/post/publish/video/init/").await;
    assert_eq!(inits.len(), 1, "the direct endpoint, not the inbox");
    assert_eq!(inits[0]["body"]["post_info"]["privacy_level"], "SELF_ONLY");
    assert!(
        env.sim
            .requests("/v2/post/publish/inbox/video/init/")
            .await
            .is_empty()
    );
    let job = env.job(&private).await;
    assert_eq!(
        job.post,
        shared::jobs::PostTarget::Direct {
            privacy_level: shared::tiktok::PrivacyLevel::SelfOnly
        }
    );
    assert_eq!(job.publish_id.as_deref(), Some(publish_id.as_str()));
    // A direct post takes no pending-draft slot.
    assert_eq!(
        Jobs::new(env.aws.dynamodb.clone(), &env.table)
            .pending_drafts(OPEN_ID, Clock::system().now())
            .await
            .unwrap(),
        0
    );
}
