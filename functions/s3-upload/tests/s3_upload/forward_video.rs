//! The upload function's handler against local AWS (moto) and the TikTok
//! simulator: real S3 events in, drafts (or clear failures) out.

use s3_upload::events::ObjectRef;
use shared::accounts::Accounts;
use shared::clock::Clock;
use shared::forward::Outcome;
use shared::jobs::{
    Changes, JobId, JobKind, JobStatus, Jobs, LastError, NewJob, ObjectVersion, PostTarget, Upload,
};
use shared::tokens::TokenManager;
use tiktok_drafts_tests::{FaultAction, FaultRule};
use tiktok_drafts_tests::{TestSim, fake_mp4, sha256_hex, test_image, unique_name};

use crate::deployment::{Deployment, Options, deploy};

type Env = Deployment;

const OPEN_ID: &str = "open-vid";

async fn env() -> Env {
    env_with(false).await
}

async fn env_with(media: bool) -> Env {
    env_opts(Options {
        media,
        ..Options::default()
    })
    .await
}

async fn env_opts(options: Options) -> Env {
    deploy(OPEN_ID, "uploads", options).await
}

impl Env {
    async fn put(&self, key: &str, body: Vec<u8>, caption: Option<&str>) -> ObjectRef {
        let caption = caption.map(|c| ("caption", c));
        self.put_object(key, body, caption.as_slice()).await
    }

    /// A 114 MB video of alice's whose third chunk's connection drops on
    /// every try of the first invocation, which fails so that the message
    /// comes back: two chunks are up. Returns the object and its bytes.
    async fn interrupted_after_two_chunks(&self, name: &str, seed: u64) -> (ObjectRef, Vec<u8>) {
        let video = fake_mp4(50_000_000 + 64_000_000, seed);
        let object = self
            .put(&format!("uploads/alice/{name}"), video.clone(), None)
            .await;
        self.sim
            .fault(
                FaultRule::new("/upload/", FaultAction::Reset)
                    .method("PUT")
                    .skip(2)
                    .times(2),
            )
            .await;
        let first = self.service.handle_object(&object).await;
        assert!(first.is_err(), "the message must come back: {first:?}");
        (object, video)
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
    assert_eq!(job.publish_id(), Some(publish_id.as_str()));
    let kept = job
        .caption
        .clone()
        .expect("the caption is kept with the job");
    assert!(kept.starts_with("Summer 🌞"));
    assert_eq!(
        shared::caption::utf16_len(&kept),
        2200,
        "trimmed to TikTok's limit"
    );
    assert!(
        job.upload_url().is_none(),
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
    let mov = test_media::video::VideoSpec {
        container: test_media::video::Container::Mov,
        ..Default::default()
    }
    .bytes(200_000, 3);
    let webm = test_media::webm::WebmSpec::default().bytes(200_000, 4);
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
    let (object, video) = env.interrupted_after_two_chunks("resume.mp4", 6).await;
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Uploading);
    assert_eq!(job.next_offset(), 20_000_000);

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
        // A valid ftyp box whose size claims more than the whole file.
        (
            "uploads/alice/truncated.mp4",
            [
                &[0, 0, 0, 0x20][..],
                b"ftyp",
                b"isom",
                &[0, 0, 2, 0],
                b"isom",
            ]
            .concat(),
            "unsupported_media",
            "the ftyp box claims 32 bytes but the whole file is 20 bytes",
        ),
        // An ftyp box cut off before its major brand.
        (
            "uploads/alice/cut short.mp4",
            [&[0, 0, 0, 0x18][..], b"ftyp", b"is"].concat(),
            "unsupported_media",
            "header is broken: only 10 bytes",
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

/// A retry the checker releases (`retry_wait` to `claimed`) asks for a
/// pending-draft slot like any upload: with 5 drafts pending it is held, not
/// sent as a sixth init that TikTok would refuse.
#[tokio::test]
async fn a_released_retry_is_held_when_five_drafts_are_pending() {
    let env = env().await;
    let object = env
        .put("uploads/alice/retried.mp4", fake_mp4(1000, 30), None)
        .await;
    env.init_fails_once(&object).await;
    for i in 0..5 {
        env.sim.advance_clock(11).await;
        let other = env
            .put(
                &format!("uploads/alice/pending {i}.mp4"),
                fake_mp4(1000, 31 + i),
                None,
            )
            .await;
        uploaded(env.service.handle_object(&other).await.unwrap());
    }
    env.sim.advance_clock(11).await;
    let sent = env.inits().await;
    let waiting = env.job(&object).await;
    assert_eq!(waiting.status, JobStatus::RetryWait);
    // What the checker does once the retry's wait is over.
    env.release(&waiting).await;
    let outcome = env.service.handle_object(&object).await.unwrap();
    assert!(
        matches!(outcome, Some(Outcome::Queued { .. })),
        "{outcome:?}"
    );
    assert_eq!(env.job(&object).await.status, JobStatus::Queued);
    assert_eq!(env.inits().await, sent, "no sixth init reached TikTok");
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
    let rotated = test_media::picture::jpeg_with_orientation(
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
            FaultRule::new("/upload/", FaultAction::status(503))
                .method("PUT")
                .skip(1)
                .times(10),
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

#[tokio::test]
async fn with_a_verified_prefix_tiktok_pulls_a_copy_under_media() {
    let env = env_opts(Options {
        media: true,
        pull_videos: true,
        direct_post: false,
        ..Options::default()
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
    assert!(job.upload_url().is_none() && job.chunk_plan().is_none());
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
        .put_object(
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
        .put_object(
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
        .put_object(
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
        .put_object(
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
    assert_eq!(job.publish_id(), Some(publish_id.as_str()));
    // A direct post takes no pending-draft slot.
    assert_eq!(
        Jobs::new(env.aws.dynamodb.clone(), &env.table)
            .pending_drafts(OPEN_ID, Clock::system().now())
            .await
            .unwrap(),
        0
    );
}

// ---------------------------------------------------------------------------
// Redeliveries, retries and what the job records (the upload lifecycle).
// ---------------------------------------------------------------------------

impl Env {
    /// Forwards `object` while TikTok answers its init with a 500 once: the
    /// job waits to retry (asserted). Returns that job.
    async fn init_fails_once(&self, object: &ObjectRef) -> shared::jobs::Job {
        self.sim
            .fault(
                FaultRule::new(
                    "/v2/post/publish/inbox/video/init/",
                    FaultAction::error(500, "internal_error"),
                )
                .method("POST"),
            )
            .await;
        let outcome = self.service.handle_object(object).await.unwrap();
        assert!(
            matches!(outcome, Some(Outcome::RetryScheduled { .. })),
            "{outcome:?}"
        );
        self.job(object).await
    }

    /// What the checker does once a job's wait is over: `claimed` again,
    /// for the next delivery of its message.
    async fn release(&self, job: &shared::jobs::Job) {
        self.jobs()
            .transition(
                job,
                JobStatus::Claimed,
                Changes::default(),
                Clock::system().now(),
            )
            .await
            .unwrap();
    }

    /// The job of exactly the version `object` names (by its ETag).
    async fn job_of(&self, object: &ObjectRef) -> Option<shared::jobs::Job> {
        let id = JobId::for_upload(
            &object.bucket,
            &object.key,
            &ObjectVersion::etag(object.e_tag.as_deref().unwrap_or_default()),
        );
        self.jobs().get(&id).await.unwrap()
    }

    /// The job the handler would claim for `object`, made by hand up to
    /// `claimed` with its account resolved, as a crashed invocation leaves it.
    async fn claimed_job(&self, object: &ObjectRef, kind: JobKind) -> shared::jobs::Job {
        let head = self
            .aws
            .s3
            .head_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .unwrap();
        let new = NewJob {
            upload: Upload {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                version: ObjectVersion::etag(head.e_tag().unwrap()),
                size: head.content_length().unwrap() as u64,
            },
            alias: Some("alice".into()),
            open_id: None,
            kind,
            post: PostTarget::Draft,
            caption: None,
        };
        let job = self
            .jobs()
            .claim(new, Clock::system().now())
            .await
            .unwrap()
            .job()
            .clone();
        self.jobs()
            .set_account(&job, OPEN_ID, Clock::system().now())
            .await
            .unwrap()
    }

    /// Flags the job `stuck` as the checker does after 30 quiet minutes.
    async fn flag_stuck(&self, job: &shared::jobs::Job) {
        let changes = Changes {
            last_error: Some(LastError {
                code: "stuck".into(),
                message: "no progress for 30 minutes".into(),
            }),
            ..Changes::default()
        };
        self.jobs()
            .transition(job, JobStatus::Stuck, changes, Clock::system().now())
            .await
            .unwrap();
    }
}

fn flagged(outcome: Option<Outcome>) -> (String, String) {
    match outcome {
        Some(Outcome::Flagged { code, message, .. }) => (code, message),
        other => panic!("expected the job flagged, got {other:?}"),
    }
}

/// S3's notification for `object` (form-encoded key, bare ETag).
fn s3_notification(object: &ObjectRef, size: usize) -> String {
    let key: String = object
        .key
        .split('/')
        .map(|part| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/");
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T01:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
               "bucket": {"name": object.bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{}", object.bucket)},
               "object": {"key": key, "size": size,
                          "eTag": object.e_tag.as_deref().unwrap_or_default().trim_matches('"'),
                          "sequencer": "0A"}}}]})
    .to_string()
}

/// A retry goes back on the queue for a short while, not for the queue's
/// visibility timeout (here 5400 s, as the template once had): with the
/// delay set to nothing, moto's SQS hands the message out again at once
/// (the default delays are checked in the service's unit tests).
#[tokio::test]
async fn a_retry_sets_a_short_visibility_on_its_message() {
    let env = env_opts(Options {
        redelivery_immediate: true,
        ..Options::default()
    })
    .await;
    let video = fake_mp4(1000, 70);
    let object = env
        .put("uploads/alice/retry soon.mp4", video.clone(), None)
        .await;
    let queue_name = unique_name("uploads-queue");
    let queue_url = env
        .sqs
        .create_queue()
        .queue_name(&queue_name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "5400",
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = env
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    env.sqs
        .send_message()
        .queue_url(&queue_url)
        .message_body(s3_notification(&object, video.len()))
        .send()
        .await
        .unwrap();
    let received = env
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let message = &received.messages()[0];
    let message_id = message.message_id().unwrap().to_owned();
    let receive_count = message
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .cloned()
        .unwrap();
    let batch = serde_json::json!({"Records": [{
        "messageId": message_id, "receiptHandle": message.receipt_handle().unwrap(),
        "body": message.body().unwrap(),
        "attributes": {"ApproximateReceiveCount": receive_count},
        "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"}]});
    // Every chunk PUT fails for now: a passing error, to be retried.
    env.sim
        .fault(
            FaultRule::new("/upload/", FaultAction::status(503))
                .method("PUT")
                .times(10),
        )
        .await;
    let response = env.service.handle_event(batch).await.unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(env.job(&object).await.status, JobStatus::Uploading);

    let again = env
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let back = again
        .messages()
        .first()
        .expect("the message is visible again, not after 5400 s");
    assert_eq!(back.message_id(), Some(message_id.as_str()));
    let receives = back
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .and_then(|n| n.parse::<u32>().ok());
    assert_eq!(receives, receive_count.parse::<u32>().ok().map(|n| n + 1));
}

/// The checker flags an upload that made no progress for 30 minutes
/// `stuck`; the message's next delivery resumes it from the saved offset.
#[tokio::test]
async fn a_redelivery_resumes_an_upload_flagged_stuck() {
    let env = env().await;
    let (object, video) = env.interrupted_after_two_chunks("stuck.mp4", 71).await;
    let job = env.job(&object).await;
    assert_eq!(
        (job.status, job.next_offset()),
        (JobStatus::Uploading, 20_000_000)
    );
    env.flag_stuck(&job).await;

    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
    assert_eq!(env.inits().await, 1, "resumed, not initialised again");
    assert_eq!(
        env.sim.publish(&publish_id).await["sha256"],
        sha256_hex(&video)
    );
    assert_eq!(env.job(&object).await.status, JobStatus::Processing);
}

/// A manifest that arrives before its images comes back (soon) until they
/// are there, even after the checker flagged its quiet job `stuck`.
#[tokio::test]
async fn a_slideshow_waiting_for_its_images_proceeds_when_they_arrive() {
    let env = env_opts(Options {
        media: true,
        image_grace_secs: 900,
        ..Options::default()
    })
    .await;
    let object = env
        .put(
            "uploads/alice/early/slideshow.json",
            manifest(&["1.png", "2.png"], "Early", None),
            None,
        )
        .await;
    let err = env.service.handle_object(&object).await.unwrap_err();
    let wait = err
        .after
        .expect("a waiting slideshow says when to come back");
    assert_eq!(
        wait,
        s3_upload::slideshow::image_wait(
            std::time::Duration::from_secs(900),
            std::time::Duration::ZERO
        )
    );
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Claimed);
    env.flag_stuck(&job).await;
    for name in ["1.png", "2.png"] {
        env.put(
            &format!("uploads/alice/early/{name}"),
            test_image(40, 40, image::ImageFormat::Png),
            None,
        )
        .await;
    }
    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
    assert_eq!(
        pulled(&env, &publish_id).await["status"],
        "SEND_TO_USER_INBOX"
    );
    assert_eq!(env.photo_inits().await, 1);
}

/// A slideshow whose init was saved but which never moved on (a crash
/// before `processing`, in `uploading` or flagged `stuck`) is handed over
/// with its publish_id, never offered to TikTok again.
#[tokio::test]
async fn a_slideshow_with_a_publish_id_is_never_initialised_again() {
    let env = env_with(true).await;
    for (folder, stuck) in [("once", false), ("once-stuck", true)] {
        let object = env
            .put(
                &format!("uploads/alice/{folder}/slideshow.json"),
                manifest(&["1.png"], "Once", None),
                None,
            )
            .await;
        let job = env.claimed_job(&object, JobKind::Slideshow).await;
        let job = env
            .jobs()
            .mark_init_started(&job, Clock::system().now())
            .await
            .unwrap();
        let saved_id = format!("p_pub_url~v2.{folder}");
        let job = env
            .jobs()
            .save_init(&job.id, &saved_id, None, None, Clock::system().now())
            .await
            .unwrap();
        assert_eq!(job.status, JobStatus::Uploading);
        if stuck {
            env.flag_stuck(&job).await;
        }
        let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
        assert_eq!(publish_id, saved_id, "{folder}");
        assert_eq!(env.job(&object).await.status, JobStatus::Processing);
    }
    assert_eq!(env.photo_inits().await, 0, "no second init");
}

/// An init that ended without a clear answer may have created a draft:
/// the job is flagged for the operator and never initialised again by
/// itself, however often the message comes back.
#[tokio::test]
async fn an_init_without_a_clear_answer_is_flagged_not_repeated() {
    let env = env().await;
    let cases = [
        // The connection drops after TikTok got the request.
        ("dropped", FaultAction::Reset),
        // A gateway's 502 without TikTok's error body.
        ("gateway", FaultAction::status(502)),
    ];
    for (i, (name, action)) in cases.into_iter().enumerate() {
        let object = env
            .put(
                &format!("uploads/alice/{name}.mp4"),
                fake_mp4(1000, 80 + i as u64),
                None,
            )
            .await;
        env.sim
            .fault(FaultRule::new("/v2/post/publish/inbox/video/init/", action).method("POST"))
            .await;
        let (code, message) = flagged(env.service.handle_object(&object).await.unwrap());
        assert_eq!(code, "init_unconfirmed", "{name}");
        assert!(
            message.contains("inbox") && message.contains(&object.key),
            "{message}"
        );
        let sent = env.inits().await;
        for _ in 0..2 {
            let (code, _) = flagged(env.service.handle_object(&object).await.unwrap());
            assert_eq!(code, "init_unconfirmed");
        }
        assert_eq!(env.inits().await, sent, "{name}: no second init");
        let job = env.job(&object).await;
        assert_eq!(job.status, JobStatus::Stuck, "{name}");
        assert_eq!(job.last_error.as_ref().unwrap().code, "init_unconfirmed");
        assert!(job.publish_id().is_none() && job.init_started_at().is_some());
    }
}

/// A crash between init and saving its answer leaves the job marked as
/// initialising without a publish_id: the next delivery flags it instead of
/// initialising again.
#[tokio::test]
async fn a_crash_between_init_and_save_is_flagged_on_redelivery() {
    let env = env().await;
    let object = env
        .put("uploads/alice/crashed.mp4", fake_mp4(1000, 90), None)
        .await;
    let job = env.claimed_job(&object, JobKind::Video).await;
    env.jobs()
        .mark_init_started(&job, Clock::system().now())
        .await
        .unwrap();
    let (code, message) = flagged(env.service.handle_object(&object).await.unwrap());
    assert_eq!(code, "init_unconfirmed");
    assert!(message.contains("inbox"), "{message}");
    assert_eq!(env.inits().await, 0, "no init after the crash");
    // Flagged stuck: the next delivery keeps it flagged.
    let (code, _) = flagged(env.service.handle_object(&object).await.unwrap());
    assert_eq!(code, "init_unconfirmed");
    assert_eq!(env.inits().await, 0);
    assert_eq!(env.job(&object).await.status, JobStatus::Stuck);
}

/// A clear refusal keeps the usual path and says so: a 500 with TikTok's
/// error body waits in `retry_wait`, reported as a scheduled retry.
#[tokio::test]
async fn a_clear_passing_refusal_is_a_scheduled_retry() {
    let env = env().await;
    let object = env
        .put("uploads/alice/refused.mp4", fake_mp4(1000, 91), None)
        .await;
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/inbox/video/init/",
                FaultAction::error(500, "internal_error"),
            )
            .method("POST"),
        )
        .await;
    match env.service.handle_object(&object).await.unwrap() {
        Some(Outcome::RetryScheduled { code, .. }) => assert_eq!(code, "internal_error"),
        other => panic!("expected a scheduled retry, got {other:?}"),
    }
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::RetryWait);
    assert!(job.not_before.is_some() && job.init_started_at().is_none());
}

/// TikTok's own pending-draft cap (it counts drafts we cannot see) holds
/// the job with a time before which it must not be released.
#[tokio::test]
async fn a_pending_share_refusal_holds_the_job_until_a_later_time() {
    let env = env().await;
    let object = env
        .put("uploads/alice/too many.mp4", fake_mp4(1000, 92), None)
        .await;
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/inbox/video/init/",
                FaultAction::error(403, "spam_risk_too_many_pending_share"),
            )
            .method("POST"),
        )
        .await;
    let before = Clock::system().now();
    let outcome = env.service.handle_object(&object).await.unwrap();
    assert!(
        matches!(outcome, Some(Outcome::Queued { .. })),
        "{outcome:?}"
    );
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Queued);
    let until = job.not_before.expect("held until a time");
    // Stored to the millisecond.
    let least = before + shared::jobs::PENDING_SHARE_WAIT - chrono::TimeDelta::milliseconds(1);
    assert!(until >= least, "{until}");
    let jobs = env.jobs();
    assert!(
        jobs.releasable_for_account(OPEN_ID, 5, Clock::system().now())
            .await
            .unwrap()
            .is_empty(),
        "not released before its time"
    );
    let later = jobs
        .releasable_for_account(OPEN_ID, 5, until)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].id, job.id);
    assert_eq!(jobs.queued_for_account(OPEN_ID, 5).await.unwrap().len(), 1);
}

/// The event names one version: when that version is overwritten or
/// deleted before its upload is done, its job ends, clearly; the new
/// version is a job of its own.
#[tokio::test]
async fn an_overwritten_or_deleted_version_ends_its_job_clearly() {
    let env = env().await;
    let old = env
        .put("uploads/alice/replaced.mp4", fake_mp4(1000, 93), None)
        .await;
    // The first delivery's chunk PUT fails: the job waits in uploading.
    env.sim
        .fault(
            FaultRule::new("/upload/", FaultAction::status(503))
                .method("PUT")
                .times(3),
        )
        .await;
    assert!(env.service.handle_object(&old).await.is_err());
    assert_eq!(env.job_of(&old).await.unwrap().status, JobStatus::Uploading);
    env.sim.clear_faults().await;
    let new_bytes = fake_mp4(2000, 94);
    let new = env
        .put("uploads/alice/replaced.mp4", new_bytes.clone(), None)
        .await;
    assert_ne!(old.e_tag, new.e_tag);

    match env.service.handle_object(&old).await.unwrap() {
        Some(Outcome::Cancelled {
            job_id,
            code,
            message,
        }) => {
            assert_eq!(code, "source_gone");
            assert!(message.contains("uploads/alice/replaced.mp4"), "{message}");
            let job = env.job_of(&old).await.unwrap();
            assert_eq!(job_id, job.id.to_string());
            assert_eq!(job.status, JobStatus::Cancelled);
        }
        other => panic!("expected the old version's job cancelled, got {other:?}"),
    }
    let publish_id = uploaded(env.service.handle_object(&new).await.unwrap());
    assert_eq!(
        env.sim.publish(&publish_id).await["sha256"],
        sha256_hex(&new_bytes),
        "the new version is what TikTok got"
    );

    // Deleted before the first delivery: a job that says so, not an empty id.
    let gone = env
        .put("uploads/alice/deleted.mp4", fake_mp4(1000, 95), None)
        .await;
    env.aws
        .s3
        .delete_object()
        .bucket(&env.bucket)
        .key(&gone.key)
        .send()
        .await
        .unwrap();
    match env.service.handle_object(&gone).await.unwrap() {
        Some(Outcome::Cancelled { job_id, code, .. }) => {
            assert_eq!(code, "source_gone");
            assert_eq!(job_id, env.job_of(&gone).await.unwrap().id.to_string());
        }
        other => panic!("expected a cancelled job, got {other:?}"),
    }
}

/// A job whose init went out without its answer being recorded may be a
/// draft at TikTok: its object version going away does not cancel it; it
/// is flagged for the operator like any unconfirmed init.
#[tokio::test]
async fn a_gone_version_with_an_init_in_doubt_is_flagged_not_cancelled() {
    let env = env().await;
    let old = env
        .put("uploads/alice/in doubt.mp4", fake_mp4(1000, 96), None)
        .await;
    let job = env.claimed_job(&old, JobKind::Video).await;
    env.jobs()
        .mark_init_started(&job, Clock::system().now())
        .await
        .unwrap();
    env.put("uploads/alice/in doubt.mp4", fake_mp4(2000, 97), None)
        .await;
    let (code, message) = flagged(env.service.handle_object(&old).await.unwrap());
    assert_eq!(code, "init_unconfirmed");
    assert!(message.contains("inbox"), "{message}");
    let job = env.job_of(&old).await.unwrap();
    assert_eq!(job.status, JobStatus::Stuck);
    assert!(job.init_started_at().is_some(), "the evidence is kept");
    assert_eq!(env.inits().await, 0);
}

/// A delivery that finds the job's lease taken does not drop its message:
/// the holder may be its own earlier delivery whose lease outlived it. It
/// comes back when the lease is over, and then does the work.
#[tokio::test]
async fn a_taken_job_lease_brings_the_message_back_after_it() {
    let env = env().await;
    let object = env
        .put("uploads/alice/leased.mp4", fake_mp4(1000, 98), None)
        .await;
    let job = env.claimed_job(&object, JobKind::Video).await;
    let leases = shared::lease::LeaseTable::new(env.aws.dynamodb.clone(), &env.table);
    let name = format!("job#{}", job.id);
    let holder = shared::lease::LeaseTable::new_holder();
    assert!(
        leases
            .try_acquire(
                &name,
                &holder,
                shared::forward::JOB_LEASE,
                Clock::system().now()
            )
            .await
            .unwrap()
    );
    let err = env.service.handle_object(&object).await.unwrap_err();
    let after = err.after.expect("back after the lease");
    let lease = shared::forward::JOB_LEASE;
    assert!(
        after > lease - std::time::Duration::from_secs(60)
            && after <= lease + std::time::Duration::from_secs(2),
        "{after:?}"
    );
    // Its version gone meanwhile, it is still not cancelled under the lease.
    env.put("uploads/alice/leased.mp4", fake_mp4(2000, 99), None)
        .await;
    assert!(env.service.handle_object(&object).await.is_err());
    let still = env.job_of(&object).await.unwrap();
    assert_eq!(still.status, JobStatus::Claimed);
    assert_eq!(env.inits().await, 0);
    // The lease over, the next delivery ends the job.
    leases.release(&name, &holder).await.unwrap();
    match env.service.handle_object(&object).await.unwrap() {
        Some(Outcome::Cancelled { code, .. }) => assert_eq!(code, "source_gone"),
        other => panic!("expected the job cancelled, got {other:?}"),
    }
    // Finished, a duplicate is answered as handled.
    assert!(matches!(
        env.service.handle_object(&object).await.unwrap(),
        Some(Outcome::AlreadyHandled {
            status: JobStatus::Cancelled,
            ..
        })
    ));
}

/// An init TikTok answers with success but unusably (no upload_url, or no
/// publish_id) may have made a publish: the job is flagged, with the
/// publish_id saved when the answer named one, never failed (the creator
/// would upload again, a duplicate) nor initialised again.
#[tokio::test]
async fn an_unusable_init_answer_is_flagged_with_what_it_named() {
    let env = env().await;
    for (i, field) in ["upload_url", "publish_id"].into_iter().enumerate() {
        let object = env
            .put(
                &format!("uploads/alice/unusable {field}.mp4"),
                fake_mp4(1000, 100 + i as u64),
                None,
            )
            .await;
        env.sim
            .fault(
                FaultRule::new(
                    "/v2/post/publish/inbox/video/init/",
                    FaultAction::OmitField {
                        field: field.into(),
                    },
                )
                .method("POST"),
            )
            .await;
        let (code, message) = flagged(env.service.handle_object(&object).await.unwrap());
        assert_eq!(code, "init_unconfirmed", "{field}");
        assert!(message.contains("inbox"), "{field}: {message}");
        let sent = env.inits().await;
        let (code, _) = flagged(env.service.handle_object(&object).await.unwrap());
        assert_eq!(code, "init_unconfirmed", "{field}");
        assert_eq!(env.inits().await, sent, "{field}: no second init");
        let job = env.job(&object).await;
        assert_eq!(job.status, JobStatus::Stuck, "{field}");
        if field == "upload_url" {
            let publish_id = job
                .publish_id()
                .expect("the named publish_id is saved")
                .to_owned();
            assert_eq!(
                env.sim.publish(&publish_id).await["publish_id"],
                publish_id.as_str()
            );
            assert!(message.contains(&publish_id), "{message}");
        } else {
            assert!(job.publish_id().is_none() && job.init_started_at().is_some());
        }
    }
}

// ---------------------------------------------------------------------------
// Upload URLs, withdrawn or changed uploads, and a job's own account
// ---------------------------------------------------------------------------

impl Env {
    /// The deployment's token and account stores.
    fn stores(
        &self,
    ) -> (
        TokenManager<shared::tokens::SecretsManagerTokenStore>,
        Accounts,
    ) {
        (
            TokenManager::for_deployment(
                &self.aws,
                self.sim.client(),
                &self.secrets_prefix,
                &self.table,
            ),
            Accounts::new(self.aws.dynamodb.clone(), &self.table),
        )
    }
}

/// Replaces some of the simulator's settings.
async fn sim_settings(sim: &TestSim, patch: serde_json::Value) {
    let mut settings = sim.get("/_sim/settings").await;
    for (k, v) in patch.as_object().unwrap() {
        settings[k] = v.clone();
    }
    sim.control(reqwest::Method::PUT, "/_sim/settings", Some(settings))
        .await;
}

/// 403, 404 and 405 have all been seen from TikTok's upload host for an
/// expired upload URL. Each, on a chunk PUT, takes the expired-URL path: the
/// job fails with `upload_url_expired` (upload again), neither retried with
/// the dead URL nor taken for TikTok refusing the bytes. The simulator hands
/// its upload URLs out on `open-upload-i18n.tiktokapis.com`, as TikTok may.
#[tokio::test]
async fn an_expired_upload_url_answering_403_404_or_405_takes_the_expired_path() {
    let env = env_opts(Options {
        upload_url_host: Some("open-upload-i18n.tiktokapis.com"),
        ..Options::default()
    })
    .await;
    for status in [403, 404, 405] {
        // Upload URLs live a minute here, so the simulator's clock need not
        // outrun the account's token.
        sim_settings(
            &env.sim,
            serde_json::json!({"expired_upload_status": status, "upload_url_ttl_secs": 60}),
        )
        .await;
        let object = env
            .put(
                &format!("uploads/alice/expired {status}.mp4"),
                fake_mp4(1000, 200 + status),
                None,
            )
            .await;
        // The first delivery's chunk never gets through; the job keeps its URL.
        env.sim
            .fault(
                FaultRule::new("/upload/", FaultAction::Reset)
                    .method("PUT")
                    .times(2),
            )
            .await;
        let first = env.service.handle_object(&object).await;
        assert!(first.is_err(), "{status}: {first:?}");
        let job = env.job(&object).await;
        assert_eq!(job.status, JobStatus::Uploading, "{status}");
        assert!(
            job.upload_url()
                .unwrap()
                .expose()
                .starts_with("https://open-upload-i18n.tiktokapis.com/upload/video/?"),
            "{status}: the URL TikTok gave is kept as it was"
        );
        // Once it expired, the URL answers `status`.
        env.sim.advance_clock(61).await;
        let puts = env.sim.requests("/upload/").await.len();
        match env.service.handle_object(&object).await.unwrap() {
            Some(Outcome::Failed { code, message, .. }) => {
                assert_eq!(code, "upload_url_expired", "{status}: {message}");
                assert!(message.contains(&status.to_string()), "{message}");
                assert!(!message.contains("upload_token"), "{message}");
            }
            other => panic!("{status}: expected the expired-URL failure, got {other:?}"),
        }
        assert_eq!(
            env.sim.requests("/upload/").await.len(),
            puts + 1,
            "{status}: the dead URL is not tried again"
        );
        let job = env.job(&object).await;
        assert_eq!(job.status, JobStatus::Failed, "{status}");
        assert!(job.upload_url().is_none(), "{status}");
    }
}

/// An upload URL that is not under `https://*.tiktokapis.com/` would get
/// the creator's video: it is refused as an unusable init answer, and no
/// byte goes to it.
#[tokio::test]
async fn an_upload_url_off_tiktoks_domain_is_refused() {
    let env = env_opts(Options {
        upload_url_host: Some("uploads.example.com"),
        ..Options::default()
    })
    .await;
    let object = env
        .put("uploads/alice/elsewhere.mp4", fake_mp4(1000, 210), None)
        .await;
    let (code, message) = flagged(env.service.handle_object(&object).await.unwrap());
    assert_eq!(code, "init_unconfirmed");
    assert!(message.contains("uploads.example.com"), "{message}");
    assert!(message.contains("tiktokapis.com"), "{message}");
    assert!(!message.contains("upload_token"), "{message}");
    assert!(env.sim.requests("/upload/").await.is_empty());
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Stuck);
    assert!(job.publish_id().is_some() && job.upload_url().is_none());
}

/// In a versioned bucket (the event names a version id): a video deleted
/// (a delete marker on top) before its init is cancelled, not sent from the
/// noncurrent version; likewise one overwritten, whose new version is what
/// TikTok gets.
#[tokio::test]
async fn a_video_deleted_or_overwritten_before_init_is_cancelled() {
    let env = env_opts(Options {
        versioned: true,
        ..Options::default()
    })
    .await;
    let deleted = env
        .put("uploads/alice/withdrawn.mp4", fake_mp4(1000, 220), None)
        .await;
    assert!(deleted.version_id.is_some());
    let marker = env
        .aws
        .s3
        .delete_object()
        .bucket(&env.bucket)
        .key(&deleted.key)
        .send()
        .await
        .unwrap();
    assert_eq!(marker.delete_marker(), Some(true));
    match env.service.handle_object(&deleted).await.unwrap() {
        Some(Outcome::Cancelled { code, message, .. }) => {
            assert_eq!(code, "source_gone");
            assert!(message.contains("withdrawn.mp4"), "{message}");
        }
        other => panic!("expected the deleted upload cancelled, got {other:?}"),
    }
    assert_eq!(
        env.job_of_version(&deleted).await.status,
        JobStatus::Cancelled
    );
    // A redelivery finds it finished.
    assert!(matches!(
        env.service.handle_object(&deleted).await.unwrap(),
        Some(Outcome::AlreadyHandled {
            status: JobStatus::Cancelled,
            ..
        })
    ));

    let old = env
        .put("uploads/alice/replaced.mp4", fake_mp4(1000, 221), None)
        .await;
    let new_bytes = fake_mp4(2000, 222);
    let new = env
        .put("uploads/alice/replaced.mp4", new_bytes.clone(), None)
        .await;
    assert_ne!(old.version_id, new.version_id);
    match env.service.handle_object(&old).await.unwrap() {
        Some(Outcome::Cancelled { code, .. }) => assert_eq!(code, "source_gone"),
        other => panic!("expected the overwritten version cancelled, got {other:?}"),
    }
    assert_eq!(
        env.inits().await,
        0,
        "nothing sent from a noncurrent version"
    );
    let publish_id = uploaded(env.service.handle_object(&new).await.unwrap());
    assert_eq!(
        env.sim.publish(&publish_id).await["sha256"],
        sha256_hex(&new_bytes)
    );
}

/// A slideshow's images are read at the versions recorded when its job
/// started: an image replaced after that (here, while the job waits to be
/// retried) does not change the post; the JPEGs under `media/` carry a hash
/// of their content in their key.
#[tokio::test]
async fn a_slideshow_image_replaced_after_the_job_started_posts_the_original() {
    let env = env_opts(Options {
        media: true,
        versioned: true,
        ..Options::default()
    })
    .await;
    let landscape = test_image(1600, 1200, image::ImageFormat::Png);
    let portrait = test_image(600, 900, image::ImageFormat::Png);
    env.put("uploads/alice/swap/1.png", landscape, None).await;
    env.put("uploads/alice/swap/2.png", portrait.clone(), None)
        .await;
    let object = env
        .put(
            "uploads/alice/swap/slideshow.json",
            manifest(&["1.png", "2.png"], "Swap", None),
            None,
        )
        .await;
    // The first attempt converts and offers, and TikTok refuses for a
    // passing reason: the job waits to be retried.
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/content/init/",
                FaultAction::error(500, "internal_error"),
            )
            .method("POST"),
        )
        .await;
    let outcome = env.service.handle_object(&object).await.unwrap();
    assert!(
        matches!(outcome, Some(Outcome::RetryScheduled { .. })),
        "{outcome:?}"
    );
    let waiting = env.job_of_version(&object).await;
    assert_eq!(waiting.image_versions.len(), 2, "recorded at the start");
    // Meanwhile the owner swaps the first image for a portrait one.
    env.put("uploads/alice/swap/1.png", portrait, None).await;

    env.release(&waiting).await;
    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
    let record = pulled(&env, &publish_id).await;
    let images = record["images"].as_array().unwrap();
    assert_eq!(
        (images[0]["width"].clone(), images[0]["height"].clone()),
        (1080.into(), 810.into()),
        "the landscape image as it was when the job started: {record}"
    );
    assert_eq!(
        env.job_of_version(&object).await.image_versions,
        waiting.image_versions
    );

    // Each JPEG's key names its content.
    let listed = env
        .aws
        .s3
        .list_objects_v2()
        .bucket(&env.bucket)
        .prefix(format!("media/{}/", waiting.id))
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(!keys.is_empty());
    for key in keys {
        let name = key.rsplit('/').next().unwrap();
        let (_, hash) = name.trim_end_matches(".jpg").split_once('-').unwrap();
        assert_eq!(hash.len(), 16, "{key}");
    }
}

/// A job keeps the account it resolved: its alias moved to another TikTok
/// account before a retry, the retry never posts to the new holder. Here the
/// job's own account was revoked by the move, so the job fails, saying so.
#[tokio::test]
async fn a_retry_after_the_alias_moved_never_posts_to_the_new_holder() {
    let env = env().await;
    let object = env
        .put("uploads/alice/moved.mp4", fake_mp4(1000, 230), None)
        .await;
    let waiting = env.init_fails_once(&object).await;
    assert_eq!(waiting.open_id.as_deref(), Some(OPEN_ID));

    // "alice" is taken over by another TikTok account.
    const NEW_HOLDER: &str = "open-new-holder";
    env.sim.seed_user(NEW_HOLDER, serde_json::json!({})).await;
    let (manager, accounts) = env.stores();
    let tokens = env
        .sim
        .tokens(NEW_HOLDER, &["user.info.basic", "video.upload"])
        .await;
    let stored = manager.save_token_response(&tokens).await.unwrap();
    accounts
        .connect(
            shared::accounts::ConnectedAccount {
                open_id: NEW_HOLDER.into(),
                alias: "alice".into(),
                display_name: None,
                avatar_url: None,
                scopes: stored.scopes.clone(),
                access_expires_at: stored.access_expires_at,
                refresh_expires_at: stored.refresh_expires_at,
            },
            shared::accounts::AliasPermits {
                rebind: true,
                move_alias: false,
            },
            "invite-rebind",
        )
        .await
        .unwrap();
    assert_eq!(
        accounts
            .get_by_alias("alice")
            .await
            .unwrap()
            .unwrap()
            .open_id,
        NEW_HOLDER
    );

    env.sim.advance_clock(11).await;
    env.release(&waiting).await;
    let sent = env.inits().await;
    match env.service.handle_object(&object).await.unwrap() {
        Some(Outcome::Failed { code, message, .. }) => {
            assert_eq!(code, "account_not_active");
            assert!(message.contains("started for"), "{message}");
            assert!(message.contains("alice"), "{message}");
        }
        other => panic!("expected the job to fail on its own account, got {other:?}"),
    }
    assert_eq!(env.inits().await, sent, "nothing sent to the new holder");
    let publishes = env.sim.get("/_sim/publishes").await;
    assert!(
        !publishes.to_string().contains(NEW_HOLDER),
        "no publish for the new holder: {publishes}"
    );
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.open_id.as_deref(),
        Some(OPEN_ID),
        "the job keeps its account"
    );
}

/// A job whose account item is gone before a retry (deleted from the table
/// by hand, say) fails with `account_gone`, naming the alias, and sends
/// nothing: it never falls back to whoever the alias names now.
#[tokio::test]
async fn a_retry_whose_account_is_gone_fails_clearly_and_sends_nothing() {
    let env = env().await;
    let object = env
        .put("uploads/alice/gone.mp4", fake_mp4(1000, 231), None)
        .await;
    let waiting = env.init_fails_once(&object).await;
    assert_eq!(waiting.open_id.as_deref(), Some(OPEN_ID));

    shared::table::Table::new(env.aws.dynamodb.clone(), &env.table)
        .delete(
            &shared::table::Key::new(format!("ACCOUNT#{OPEN_ID}"), "ACCOUNT"),
            None,
        )
        .await
        .unwrap();
    let (_, accounts) = env.stores();
    assert!(accounts.get(OPEN_ID).await.unwrap().is_none());

    env.sim.advance_clock(11).await;
    env.release(&waiting).await;
    let sent = env.inits().await;
    match env.service.handle_object(&object).await.unwrap() {
        Some(Outcome::Failed { code, message, .. }) => {
            assert_eq!(code, "account_gone");
            assert!(message.contains("\u{201c}alice\u{201d}"), "{message}");
            assert!(message.contains("no longer connected"), "{message}");
            assert!(message.contains("nothing was sent"), "{message}");
        }
        other => panic!("expected the job to fail for its missing account, got {other:?}"),
    }
    assert_eq!(
        env.inits().await,
        sent,
        "no init for a job without its account"
    );
    let job = env.job(&object).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.last_error.as_ref().map(|e| e.code.as_str()),
        Some("account_gone")
    );
    assert_eq!(
        job.open_id.as_deref(),
        Some(OPEN_ID),
        "the job keeps its account"
    );
}

/// In a deployment with a default account, `uploads/<x>/slideshow.json`
/// where `x` is a bound alias is that account's slideshow, never the
/// default account's folder `x`.
#[tokio::test]
async fn a_folder_named_for_a_bound_alias_is_that_alias_upload() {
    let env = env_opts(Options {
        media: true,
        default_account: Some("solo"),
        ..Options::default()
    })
    .await;
    for name in ["1.png", "2.png"] {
        env.put(
            &format!("uploads/alice/{name}"),
            test_image(600, 600, image::ImageFormat::Png),
            None,
        )
        .await;
    }
    let object = env
        .put(
            "uploads/alice/slideshow.json",
            manifest(&["1.png", "2.png"], "Mine", None),
            None,
        )
        .await;
    let publish_id = uploaded(env.service.handle_object(&object).await.unwrap());
    let job = env.job(&object).await;
    assert_eq!(job.alias.as_deref(), Some("alice"));
    assert_eq!(job.open_id.as_deref(), Some(OPEN_ID));
    assert_eq!(env.sim.publish(&publish_id).await["open_id"], OPEN_ID);
}
