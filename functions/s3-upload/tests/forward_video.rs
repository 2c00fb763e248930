//! The upload function's handler against local AWS (moto) and the TikTok
//! simulator: real S3 events in, drafts (or clear failures) out.

use aws_sdk_s3::primitives::ByteStream;
use s3_upload::config::UploadConfig;
use s3_upload::events::ObjectRef;
use s3_upload::service::UploadService;
use s3_upload::video::Outcome;
use shared::accounts::{Accounts, ConnectedAccount};
use shared::aws::AwsClients;
use shared::jobs::{JobId, JobStatus, Jobs, ObjectVersion};
use shared::tiktok::Endpoints;
use shared::tiktok::upload::RetryPolicy;
use shared::tokens::{Clock, SecretsManagerTokenStore, TokenManager};
use tiktok_drafts_tests::{
    SIM_CLIENT_KEY, SIM_CLIENT_SECRET, TestSim, fake_mp4, local_aws, sha256_hex, test_image,
    unique_name,
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
    let aws = AwsClients::from_config(&local_aws().await);
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user(OPEN_ID, serde_json::json!({})).await;
    let table = unique_name("drafts");
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .unwrap();
    let prefix = unique_name("tiktok-drafts");
    let app_secret_id = format!("{prefix}/app");
    aws.secrets
        .create_secret()
        .name(&app_secret_id)
        .secret_string(
            serde_json::json!({"client_key": SIM_CLIENT_KEY, "client_secret": SIM_CLIENT_SECRET})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let bucket = unique_name("uploads");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();

    // A connected account "alice", as the login function leaves it.
    let tokens = sim
        .tokens(OPEN_ID, &["user.info.basic", "video.upload"])
        .await;
    let manager = TokenManager::new(
        SecretsManagerTokenStore::new(aws.secrets.clone(), &prefix),
        sim.client(),
        aws.dynamodb.clone(),
        &table,
    );
    let stored = manager.save_token_response(&tokens).await.unwrap();
    Accounts::new(aws.dynamodb.clone(), &table)
        .connect(
            ConnectedAccount {
                open_id: OPEN_ID.into(),
                alias: "alice".into(),
                display_name: Some("Alice".into()),
                avatar_url: None,
                scopes: stored.scopes.clone(),
                access_expires_at: stored.access_expires_at,
                refresh_expires_at: stored.refresh_expires_at,
            },
            false,
            "invite-1",
        )
        .await
        .unwrap();

    let config = UploadConfig {
        table: table.clone(),
        secrets_prefix: prefix,
        app_secret_id,
        default_account: None,
        chunk_size: 10_000_000,
        endpoints: Endpoints::for_base_url(sim.base_url()).unwrap(),
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
