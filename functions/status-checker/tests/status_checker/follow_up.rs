//! The status checker against local AWS (moto: DynamoDB, Secrets Manager,
//! S3, SQS) and the TikTok simulator. Jobs are made by the real upload
//! handler, and released jobs go back through a real SQS queue into it.

use std::collections::HashMap;
use std::time::Duration;
use tiktok_drafts_tests::{FaultAction, FaultRule};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use s3_upload::config::UploadConfig;
use s3_upload::events::ObjectRef;
use s3_upload::service::UploadService;
use shared::accounts::{AccountState, Accounts};
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::forward::Outcome;
use shared::jobs::UploadAttempt;
use shared::jobs::{
    Changes, Claim, Job, JobId, JobKind, JobStatus, Jobs, LastError, NewJob, ObjectVersion,
    PostTarget, Upload,
};
use shared::tiktok::Endpoints;
use shared::tiktok::upload::ChunkRetryPolicy;
use shared::tokens::{TokenManager, TokenStore as _};
use status_checker::checker::{Checker, RunReport};
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, capture_logs, captured_logs, connect_account, deployment_stores,
    fake_mp4, local_aws, unique_name,
};
use tokio::time::Instant;

const SCOPES: [&str; 2] = ["user.info.basic", "video.upload"];
const DIRECT_SCOPES: [&str; 3] = ["user.info.basic", "video.upload", "video.publish"];

struct Env {
    sim: TestSim,
    aws: AwsClients,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    bucket: String,
    table: String,
    prefix: String,
    clock: Clock,
    service: UploadService,
    checker: Checker,
    checker_config: status_checker::config::CheckerConfig,
}

async fn env() -> Env {
    env_with(false).await
}

/// The local stack, with direct posts enabled in the upload function when
/// `direct_posts`.
async fn env_with(direct_posts: bool) -> Env {
    let sdk = local_aws().await;
    let aws = AwsClients::from_config(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    // Publishes stay in processing until a test moves them.
    let sim = TestSim::start(|s| s.auto_advance = false).await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    let bucket = unique_name("uploads");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique_name("upload-queue"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let clock = Clock::system();
    let endpoints = Endpoints::for_base_url(sim.base_url()).unwrap();
    let service = UploadService::new(
        UploadConfig {
            table: table.clone(),
            secrets_prefix: prefix.clone(),
            app_secret_id: app_secret_id.clone(),
            default_account: None,
            chunk_size: 10_000_000,
            media_urls: None,
            image_grace: Duration::ZERO,
            convert_threads: 1,
            endpoints: endpoints.clone(),
            video_transfer: s3_upload::config::VideoTransfer::FileUpload,
            direct_post_enabled: direct_posts,
        },
        &aws,
        clock.clone(),
    )
    .await
    .unwrap()
    .with_upload_retry(ChunkRetryPolicy::immediate(2));
    let config = status_checker::config::CheckerConfig {
        table: table.clone(),
        secrets_prefix: prefix.clone(),
        app_secret_id,
        upload_queue_url: queue_url.clone(),
        interval: Duration::from_secs(300),
        concurrency: 8,
        endpoints,
    };
    let checker = status_checker::service::build(&config, &aws, sqs.clone(), clock.clone())
        .await
        .unwrap();
    Env {
        checker_config: config,
        sim,
        aws,
        sqs,
        queue_url,
        bucket,
        table,
        prefix,
        clock,
        service,
        checker,
    }
}

impl Env {
    fn jobs(&self) -> Jobs {
        Jobs::new(self.aws.dynamodb.clone(), &self.table)
    }

    fn accounts(&self) -> Accounts {
        Accounts::new(self.aws.dynamodb.clone(), &self.table)
    }

    fn manager(&self) -> TokenManager<shared::tokens::SecretsManagerTokenStore> {
        TokenManager::for_deployment(&self.aws, self.sim.client(), &self.prefix, &self.table)
            .with_clock(self.clock.clone())
    }

    /// Connects `alias` as the login function would, with tokens stored as
    /// of our clock's "now".
    async fn connect(&self, open_id: &str, alias: &str) {
        self.connect_with(open_id, alias, &SCOPES).await;
    }

    async fn connect_with(&self, open_id: &str, alias: &str, scopes: &[&str]) {
        self.sim.seed_user(open_id, serde_json::json!({})).await;
        connect_account(
            &self.sim,
            &self.manager(),
            &self.accounts(),
            open_id,
            alias,
            scopes,
        )
        .await;
    }

    /// Five videos of `alias` sent as drafts (seeds `seed`..`seed + 5`):
    /// all of TikTok's 5 pending shares. Each job with its publish id.
    async fn five_drafts(&self, alias: &str, seed: u64) -> Vec<(Job, String)> {
        let mut drafts = Vec::new();
        for n in 0..5 {
            let (job, outcome) = self
                .upload(&format!("uploads/{alias}/{n}.mp4"), seed + n)
                .await;
            drafts.push((job, publish_id(&outcome)));
        }
        drafts
    }

    /// Two more videos of `alias`, held behind [`Env::five_drafts`]; the
    /// second is uploaded a second later, so it waits behind the first.
    async fn two_held(&self, alias: &str, seed: u64) -> (Job, Job) {
        let (held_1, outcome) = self
            .upload(&format!("uploads/{alias}/held-1.mp4"), seed)
            .await;
        assert!(matches!(outcome, Outcome::Queued { .. }), "{outcome:?}");
        self.clock.advance_secs(1);
        let (held_2, _) = self
            .upload(&format!("uploads/{alias}/held-2.mp4"), seed + 1)
            .await;
        assert_eq!(held_2.status, JobStatus::Queued);
        (held_1, held_2)
    }

    /// Puts a video and hands its event to the upload handler.
    async fn upload(&self, key: &str, seed: u64) -> (Job, Outcome) {
        self.upload_with(key, seed, &[]).await
    }

    /// [`Env::upload`] with S3 object metadata.
    async fn upload_with(&self, key: &str, seed: u64, metadata: &[(&str, &str)]) -> (Job, Outcome) {
        let mut put = self
            .aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(fake_mp4(200_000, seed)));
        for (name, value) in metadata {
            put = put.metadata(*name, *value);
        }
        let out = put.send().await.unwrap();
        let etag = out.e_tag().unwrap().to_owned();
        let object = ObjectRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: None,
            e_tag: Some(etag.clone()),
            size: None,
        };
        let outcome = self.service.handle_object(&object).await.unwrap().unwrap();
        let id = JobId::for_upload(&self.bucket, key, &ObjectVersion::etag(&etag));
        (self.job(&id).await, outcome)
    }

    async fn job(&self, id: &JobId) -> Job {
        self.jobs().get(id).await.unwrap().expect("job")
    }

    async fn set_status(&self, publish_id: &str, body: serde_json::Value) {
        let encoded: String = url::form_urlencoded::byte_serialize(publish_id.as_bytes()).collect();
        self.sim
            .post(&format!("/_sim/publishes/{encoded}/status"), body)
            .await;
    }

    /// A checker of the same deployment whose upload queue does not exist:
    /// every release it makes fails to send.
    async fn checker_without_queue(&self) -> Checker {
        let config = status_checker::config::CheckerConfig {
            upload_queue_url: format!("{}-gone", self.queue_url),
            ..self.checker_config.clone()
        };
        status_checker::service::build(&config, &self.aws, self.sqs.clone(), self.clock.clone())
            .await
            .unwrap()
    }

    async fn run(&self) -> RunReport {
        self.checker
            .run(Instant::now() + Duration::from_secs(120))
            .await
    }

    /// Receives what the checker sent to the upload queue and hands it to
    /// the upload handler as Lambda's SQS integration would. Returns how
    /// many messages there were.
    async fn deliver_queue(&self) -> usize {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return 0;
        }
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        let response = self
            .service
            .handle_event(serde_json::json!({ "Records": records }))
            .await
            .unwrap();
        assert!(
            response.batch_item_failures.is_empty(),
            "every released job was handled"
        );
        for m in &messages {
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        messages.len()
    }

    async fn status_fetches(&self) -> usize {
        self.sim
            .requests("/v2/post/publish/status/fetch/")
            .await
            .len()
    }

    /// A minute passes, for the checker and for TikTok: the next run may
    /// send status requests again (a run waits for a minute after the
    /// previous run's last one).
    async fn next_minute(&self) {
        self.clock.advance_secs(61);
        self.sim.advance_clock(61).await;
    }

    /// `count` publishes TikTok has for `open_id` (in `sim_status`), and a
    /// processing job for each, written as the store writes them.
    async fn seed_jobs(
        &self,
        open_id: &str,
        alias: &str,
        count: usize,
        sim_status: &str,
    ) -> Vec<Job> {
        let seeded = self
            .sim
            .post(
                "/_sim/publishes/seed",
                serde_json::json!({"open_id": open_id, "count": count, "status": sim_status}),
            )
            .await;
        let now = self.clock.now();
        let jobs: Vec<Job> = seeded["publish_ids"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let mut job = Job::new(
                    NewJob {
                        upload: Upload {
                            bucket: self.bucket.clone(),
                            key: format!("uploads/{alias}/seeded-{n}.mp4"),
                            version: ObjectVersion::etag(&unique_name("etag")),
                            size: 1_000,
                        },
                        alias: Some(alias.to_owned()),
                        open_id: Some(open_id.to_owned()),
                        kind: JobKind::Video,
                        post: PostTarget::Draft,
                        caption: None,
                    },
                    // One millisecond apart, all in the past: the index
                    // order is the order made, and every one is due.
                    now - chrono::TimeDelta::milliseconds(i64::try_from(count - n).unwrap()),
                );
                job.status = JobStatus::Processing;
                job.attempt = UploadAttempt::Pulled {
                    publish_id: id.as_str().unwrap().to_owned(),
                };
                job
            })
            .collect();
        self.jobs().put_many(&jobs).await.unwrap();
        jobs
    }

    /// A job the store claims and nothing has sent yet.
    async fn claimed(&self, open_id: &str, alias: &str, key: &str) -> Job {
        let new = NewJob {
            upload: Upload {
                bucket: self.bucket.clone(),
                key: format!("uploads/{alias}/{key}"),
                version: ObjectVersion::etag("0123"),
                size: 1_000,
            },
            alias: Some(alias.to_owned()),
            open_id: Some(open_id.to_owned()),
            kind: JobKind::Video,
            post: PostTarget::Draft,
            caption: None,
        };
        match self.jobs().claim(new, self.clock.now()).await.unwrap() {
            Claim::New(job) => job,
            Claim::Existing(job) => panic!("{} claimed before", job.id),
        }
    }

    /// The simulator's log of status requests: (virtual time in ms, token
    /// hash, publish_id, HTTP status), oldest first.
    async fn status_log(&self) -> Vec<(i64, String, String, u64)> {
        self.sim
            .requests("/v2/post/publish/status/fetch/")
            .await
            .iter()
            .map(|r| {
                (
                    r["time_ms"].as_i64().unwrap(),
                    r["token_sha256"].as_str().unwrap_or_default().to_owned(),
                    r["body"]["publish_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    r["status"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

/// The most requests of one token within any sliding minute, as TikTok (and
/// the simulator) counts them: for each request, those of the same token in
/// the 60 s up to and including it.
fn busiest_minute(log: &[(i64, String, String, u64)]) -> usize {
    log.iter()
        .map(|(t, token, _, _)| {
            log.iter()
                .filter(|(u, other, _, _)| other == token && *u > t - 60_000 && u <= t)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn publish_id(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Uploaded { publish_id, .. } => publish_id.clone(),
        other => panic!("expected an upload, got {other:?}"),
    }
}

#[tokio::test]
async fn each_tiktok_status_is_recorded() {
    let env = env().await;
    env.connect("open-s", "sam").await;
    let (inbox, o1) = env.upload("uploads/sam/inbox.mp4", 1).await;
    let (posted, o2) = env.upload("uploads/sam/posted.mp4", 2).await;
    let (going, _) = env.upload("uploads/sam/going.mp4", 3).await;
    let (bad, o4) = env.upload("uploads/sam/bad.mp4", 4).await;
    for job in [&inbox, &posted, &going, &bad] {
        assert_eq!(job.status, JobStatus::Processing);
    }
    env.set_status(
        &publish_id(&o1),
        serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;
    // Post ids beyond 2^53 must survive as integers.
    env.set_status(
        &publish_id(&o2),
        serde_json::json!({"status": "PUBLISH_COMPLETE", "post_ids": [7_300_000_000_000_000_123u64]}),
    )
    .await;
    env.set_status(
        &publish_id(&o4),
        serde_json::json!({"status": "FAILED", "fail_reason": "file_format_check_failed"}),
    )
    .await;

    let report = env.run().await;
    assert_eq!(report.status_requests, 4);
    assert_eq!(report.jobs_seen, 4);
    assert_eq!(report.errors, 0, "{report:?}");

    let inbox = env.job(&inbox.id).await;
    assert_eq!(inbox.status, JobStatus::Inbox);
    let posted = env.job(&posted.id).await;
    assert_eq!(posted.status, JobStatus::Published);
    assert_eq!(posted.post_ids, vec![7_300_000_000_000_000_123u64]);
    let going = env.job(&going.id).await;
    assert_eq!(going.status, JobStatus::Processing, "still processing");
    let bad = env.job(&bad.id).await;
    assert_eq!(bad.status, JobStatus::Failed);
    let error = bad.last_error.expect("a recorded reason");
    assert_eq!(error.code, "file_format_check_failed");
    assert!(
        error.message.len() > 20,
        "a clear message: {}",
        error.message
    );
    assert_eq!(bad.attempts, 0, "a format failure is not retried");

    // The next run asks only about the job still going: finished jobs left
    // the index (and the draft in the inbox is asked about again in 15
    // minutes), and nothing was sent back to the upload queue.
    env.next_minute().await;
    let before = env.status_fetches().await;
    let report = env.run().await;
    assert_eq!(report.jobs_seen, 1);
    assert_eq!(env.status_fetches().await - before, 1);
    assert_eq!(
        env.deliver_queue().await,
        0,
        "a permanent failure is not retried"
    );
}

#[tokio::test]
async fn a_passing_failure_is_retried_and_then_succeeds() {
    let env = env().await;
    env.connect("open-r", "rita").await;
    let (job, outcome) = env.upload("uploads/rita/retry me.mp4", 5).await;
    let first = publish_id(&outcome);
    env.set_status(
        &first,
        serde_json::json!({"status": "FAILED", "fail_reason": "internal"}),
    )
    .await;

    env.run().await;
    let waiting = env.job(&job.id).await;
    assert_eq!(waiting.status, JobStatus::RetryWait);
    assert_eq!(waiting.attempts, 1);
    assert_eq!(waiting.last_error.as_ref().unwrap().code, "internal");
    let not_before = waiting.not_before.expect("a backoff");
    assert!(not_before > env.clock.now());

    // Before the backoff is over nothing is released.
    let report = env.run().await;
    assert_eq!(report.retries_released, 0);
    assert_eq!(env.deliver_queue().await, 0);

    // After it, the job goes back through the upload queue and a new
    // upload (a new init, a new publish_id) is made.
    env.clock
        .advance_secs((not_before - env.clock.now()).num_seconds() + 1);
    let report = env.run().await;
    assert_eq!(report.retries_released, 1, "{report:?}");
    assert_eq!(env.job(&job.id).await.status, JobStatus::Claimed);
    assert_eq!(env.deliver_queue().await, 1);
    let again = env.job(&job.id).await;
    assert_eq!(again.status, JobStatus::Processing);
    let second = again.publish_id().expect("a new publish_id").to_owned();
    assert_ne!(second, first);
    assert_eq!(again.attempts, 1);

    env.set_status(&second, serde_json::json!({"status": "SEND_TO_USER_INBOX"}))
        .await;
    env.run().await;
    assert_eq!(env.job(&job.id).await.status, JobStatus::Inbox);
    let inits = env.sim.requests("/v2/post/publish/inbox/video/init/").await;
    assert_eq!(inits.len(), 2, "exactly one new init for the retry");
}

#[tokio::test]
async fn held_uploads_are_released_oldest_first_as_slots_free_up() {
    let env = env().await;
    env.connect("open-q", "quinn").await;
    let drafts = env.five_drafts("quinn", 10).await;
    let (held_1, held_2) = env.two_held("quinn", 20).await;

    // A draft reaching the inbox still counts against TikTok's 5 pending
    // shares (until it is posted or 24 hours old): nothing is released.
    env.set_status(
        &drafts[0].1,
        serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;
    let report = env.run().await;
    assert_eq!(report.moved.get("inbox"), Some(&1));
    assert_eq!(report.queued_released, 0);
    assert_eq!(env.deliver_queue().await, 0);

    // A draft that fails at TikTok frees its slot: the oldest held upload
    // goes, the other one keeps waiting.
    env.set_status(
        &drafts[1].1,
        serde_json::json!({"status": "FAILED", "fail_reason": "video_pull_failed"}),
    )
    .await;
    // video_pull_failed is passing: the failed draft waits to retry and
    // holds no slot meanwhile.
    env.next_minute().await;
    let report = env.run().await;
    assert_eq!(report.queued_released, 1, "{report:?}");
    assert_eq!(env.job(&drafts[1].0.id).await.status, JobStatus::RetryWait);
    assert_eq!(env.job(&held_1.id).await.status, JobStatus::Claimed);
    assert_eq!(env.job(&held_2.id).await.status, JobStatus::Queued);
    assert_eq!(env.deliver_queue().await, 1);
    let released = env.job(&held_1.id).await;
    assert_eq!(released.status, JobStatus::Processing);
    assert!(released.publish_id().is_some());
    assert_eq!(
        env.jobs()
            .pending_drafts("open-q", env.clock.now())
            .await
            .unwrap(),
        5
    );
}

/// A held upload whose release message cannot be sent goes back to the
/// held queue in its place, not to `retry_wait`: it is released next time
/// as held (oldest first), never as a retry ahead of the others.
#[tokio::test]
async fn a_held_upload_whose_release_cannot_be_sent_stays_held_in_its_place() {
    let env = env().await;
    env.connect("open-g", "gus").await;
    let drafts = env.five_drafts("gus", 140).await;
    let (held_1, held_2) = env.two_held("gus", 150).await;
    // One draft fails at TikTok (and a webhook records it): one slot is
    // free, for TikTok too.
    env.set_status(
        &drafts[0].1,
        serde_json::json!({"status": "FAILED", "fail_reason": "file_format_check_failed"}),
    )
    .await;
    env.jobs()
        .transition(
            &drafts[0].0,
            JobStatus::Failed,
            Changes {
                last_error: Some(LastError {
                    code: "file_format_check_failed".into(),
                    message: "m".into(),
                }),
                ..Changes::default()
            },
            env.clock.now(),
        )
        .await
        .unwrap();

    let broken = env.checker_without_queue().await;
    let report = broken.run(Instant::now() + Duration::from_secs(120)).await;
    assert_eq!(report.queued_released, 0, "{report:?}");
    assert_eq!(report.retries_released, 0, "{report:?}");
    assert!(report.errors >= 1, "{report:?}");
    let back = env.job(&held_1.id).await;
    assert_eq!(back.status, JobStatus::Queued, "held again, not retry_wait");
    assert!(back.publish_id().is_none());
    assert_eq!(env.job(&held_2.id).await.status, JobStatus::Queued);
    let queued: Vec<JobId> = env
        .jobs()
        .queued_for_account("open-g", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        queued,
        vec![held_1.id.clone(), held_2.id.clone()],
        "oldest first still"
    );

    // With the queue back, the same upload goes first, as a held one.
    env.next_minute().await;
    let report = env.run().await;
    assert_eq!(report.queued_released, 1, "{report:?}");
    assert_eq!(report.retries_released, 0, "{report:?}");
    assert_eq!(env.job(&held_1.id).await.status, JobStatus::Claimed);
    assert_eq!(env.job(&held_2.id).await.status, JobStatus::Queued);
    assert_eq!(env.deliver_queue().await, 1);
    assert_eq!(env.job(&held_1.id).await.status, JobStatus::Processing);
}

/// TikTok's own refusal of a pending draft (it counts drafts this project
/// cannot see) holds the upload until its hold time, although our count
/// shows free slots; after it, the upload goes.
#[tokio::test]
async fn a_pending_share_refusal_is_released_only_after_its_hold() {
    let env = env().await;
    env.connect("open-w", "wren").await;
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/inbox/video/init/",
                FaultAction::error(403, "spam_risk_too_many_pending_share"),
            )
            .method("POST"),
        )
        .await;
    let (held, outcome) = env.upload("uploads/wren/held.mp4", 120).await;
    assert!(matches!(outcome, Outcome::Queued { .. }), "{outcome:?}");
    let until = held.not_before.expect("held until a time");

    let report = env.run().await;
    assert_eq!(report.queued_released, 0, "{report:?}");
    assert_eq!(env.deliver_queue().await, 0);
    assert_eq!(env.job(&held.id).await.status, JobStatus::Queued);

    let wait = (until - env.clock.now()).num_seconds() + 1;
    env.clock.advance_secs(wait);
    env.sim.advance_clock(wait).await;
    let report = env.run().await;
    assert_eq!(report.queued_released, 1, "{report:?}");
    assert_eq!(env.deliver_queue().await, 1);
    let released = env.job(&held.id).await;
    assert_eq!(released.status, JobStatus::Processing);
    assert!(released.publish_id().is_some());
}

#[tokio::test]
async fn the_sweep_refreshes_exactly_the_tokens_that_need_it() {
    capture_logs();
    let env = env().await;
    // "due" got its tokens almost two hours ago (the simulator's access
    // tokens live 2 hours): they expire before the run after next.
    env.clock.advance_secs(-(7200 - 120));
    env.connect("open-due", "due").await;
    env.clock.advance_secs(7200 - 120);
    env.connect("open-fresh", "fresh").await;
    env.connect("open-soon", "soon").await;
    // The account copy of "soon"'s refresh expiry: within 7 days.
    let soon_expiry = env.clock.now() + chrono::TimeDelta::days(3);
    env.accounts()
        .record_token_expiry(
            "open-soon",
            env.clock.now() + chrono::TimeDelta::hours(2),
            Some(soon_expiry),
        )
        .await
        .unwrap();
    // A revoked account is never refreshed, even when due.
    env.clock.advance_secs(-(7200 - 60));
    env.connect("open-gone", "gone").await;
    env.clock.advance_secs(7200 - 60);
    env.accounts()
        .set_state("open-gone", AccountState::Revoked, Some("test"))
        .await
        .unwrap();

    let store = env.manager();
    let before_due = store.store().load("open-due").await.unwrap().unwrap();
    let before_fresh = store.store().load("open-fresh").await.unwrap().unwrap();
    let token_calls = || async {
        env.sim
            .requests("/v2/oauth/token/")
            .await
            .into_iter()
            .filter(|r| r["method"] == "POST")
            .count()
    };
    let calls_before = token_calls().await;

    let report = env.run().await;
    assert_eq!(report.tokens_refreshed, 1, "{report:?}");
    assert_eq!(token_calls().await - calls_before, 1, "one refresh call");
    let after_due = store.store().load("open-due").await.unwrap().unwrap();
    assert_ne!(after_due.access_token, before_due.access_token);
    assert!(after_due.access_expires_at > before_due.access_expires_at);
    let after_fresh = store.store().load("open-fresh").await.unwrap().unwrap();
    assert_eq!(after_fresh.access_token, before_fresh.access_token);

    // "soon" is flagged for the operator, by alias, never with a token.
    assert_eq!(report.refresh_expiring_soon, 1);
    let soon = env.accounts().get("open-soon").await.unwrap().unwrap();
    let note = soon.attention.expect("a note for the operator");
    assert!(note.contains("invite --account soon"), "{note}");
    let logs = captured_logs();
    assert!(logs.contains("refresh token expires within 7 days"));
    for token in [
        after_due.access_token.expose(),
        after_due.refresh_token.expose(),
        before_due.refresh_token.expose(),
        before_fresh.access_token.expose(),
    ] {
        assert!(!logs.contains(token), "a token reached the logs");
    }

    // A second run finds nothing to refresh.
    let report = env.run().await;
    assert_eq!(report.tokens_refreshed, 0);
    assert_eq!(token_calls().await - calls_before, 1);
}

#[tokio::test]
async fn stuck_jobs_are_flagged_and_dead_accounts_end_their_jobs() {
    let env = env().await;
    env.connect("open-k", "kim").await;
    env.connect("open-x", "xan").await;
    let (slow, outcome) = env.upload("uploads/kim/slow.mp4", 30).await;
    let slow_publish = publish_id(&outcome);
    let (orphan, _) = env.upload("uploads/xan/orphan.mp4", 31).await;
    env.accounts()
        .set_state(
            "open-x",
            AccountState::Revoked,
            Some("authorization removed"),
        )
        .await
        .unwrap();

    // 31 minutes of "still processing".
    env.clock.advance_secs(31 * 60);
    env.sim.advance_clock(31 * 60).await;
    let before = env.status_fetches().await;
    let report = env.run().await;
    assert_eq!(report.flagged_stuck, 2, "{report:?}");
    let slow = env.job(&slow.id).await;
    assert_eq!(slow.status, JobStatus::Stuck);
    assert_eq!(
        slow.tiktok_status.as_ref().map(|s| s.as_str()),
        Some("PROCESSING_UPLOAD"),
        "the last TikTok status is kept"
    );
    assert!(slow.last_error.unwrap().message.contains("no progress"));
    // TikTok has the revoked account's upload: it is kept (flagged, not
    // failed) and not asked about, since no token of the account works.
    let orphan = env.job(&orphan.id).await;
    assert_eq!(orphan.status, JobStatus::Stuck);
    assert_eq!(
        env.status_fetches().await - before,
        1,
        "only kim's job is asked about"
    );

    // A stuck job still moves when TikTok finally answers.
    env.set_status(
        &slow_publish,
        serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;
    env.next_minute().await;
    env.run().await;
    assert_eq!(env.job(&slow.id).await.status, JobStatus::Inbox);
}

#[tokio::test]
async fn a_run_stops_at_its_deadline_and_the_next_one_finishes() {
    let env = env().await;
    env.connect("open-d", "dee").await;
    let jobs = env
        .seed_jobs("open-d", "dee", 20, "SEND_TO_USER_INBOX")
        .await;
    // Every status answer takes 2.5 s; the run has 4 s (so it stops starting
    // work at 3 s) and 8 workers: at most the first 8 can be answered in
    // time, the rest is cut off or never started.
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/status/fetch/",
                FaultAction::Delay { ms: 2_500 },
            )
            .times(100),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(4);
    let report = env.checker.run(deadline).await;
    assert!(
        Instant::now() < deadline,
        "the run returned before its deadline"
    );
    assert!(report.stopped_early, "{report:?}");
    let first = report.moved.get("inbox").copied().unwrap_or(0);
    assert!(first <= 8, "{report:?}");
    // Every request sent was either answered and written down, or cut off
    // at the stop instant with its job left untouched (how many of each
    // depends on the machine's speed; the sum does not).
    assert_eq!(
        report.status_requests,
        first + report.cut_off,
        "an answer in hand is written down: {report:?}"
    );
    let mut left = 0;
    for job in &jobs {
        if env.job(&job.id).await.status == JobStatus::Processing {
            left += 1;
        }
    }
    assert_eq!(left, 20 - first, "what was not answered is left as it was");
    assert!(left >= 12);

    // The next run, without the delay, finishes the rest.
    env.sim.clear_faults().await;
    env.next_minute().await;
    let report = env.run().await;
    assert!(!report.stopped_early, "{report:?}");
    assert_eq!(report.moved.get("inbox").copied().unwrap_or(0), left);
    for job in &jobs {
        assert_eq!(env.job(&job.id).await.status, JobStatus::Inbox);
    }
}

#[tokio::test]
async fn thirty_status_requests_per_token_in_any_sliding_minute_across_runs() {
    let env = env().await;
    env.connect("open-m", "many").await;
    let jobs = env
        .seed_jobs("open-m", "many", 40, "PROCESSING_UPLOAD")
        .await;

    let report = env.run().await;
    assert_eq!(report.status_requests, 30, "{report:?}");
    assert_eq!(report.rate_limited, 10);
    assert_eq!(report.rescheduled, 30, "the jobs asked about move on");
    let log = env.status_log().await;
    assert_eq!(log.len(), 30);
    let asked_first: std::collections::HashSet<String> =
        log.iter().map(|(_, _, id, _)| id.clone()).collect();

    // A run right after it sends nothing: the previous run's requests are
    // still within the minute. (A short deadline: the gate would open only
    // after this run has to stop.)
    let report = env
        .checker
        .run(Instant::now() + Duration::from_secs(8))
        .await;
    assert_eq!(report.status_requests, 0, "{report:?}");
    assert!(report.waited_for_previous_run);
    assert_eq!(env.status_log().await.len(), 30);

    // A minute later the ten left waiting are asked first.
    env.next_minute().await;
    let report = env.run().await;
    assert_eq!(report.status_requests, 30, "{report:?}");
    let log = env.status_log().await;
    assert_eq!(log.len(), 60);
    let asked_then: std::collections::HashSet<String> =
        log[30..].iter().map(|(_, _, id, _)| id.clone()).collect();
    for job in &jobs {
        let id = job.publish_id().unwrap().to_owned();
        if !asked_first.contains(&id) {
            assert!(asked_then.contains(&id), "{id} waited two runs");
        }
    }
    // What reached TikTok, measured at TikTok: never more than 30 per token
    // in a sliding minute, and never refused.
    assert_eq!(busiest_minute(&log), 30);
    assert!(
        log.iter().all(|(_, _, _, status)| *status == 200),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_refused_status_read_is_sent_once_and_counted() {
    let env = env().await;
    env.connect("open-f", "fay").await;
    let jobs = env.seed_jobs("open-f", "fay", 5, "PROCESSING_UPLOAD").await;
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/status/fetch/",
                FaultAction::error(503, "internal_error"),
            )
            .times(2),
        )
        .await;
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/status/fetch/",
                FaultAction::error(429, "rate_limit_exceeded"),
            )
            .skip(2)
            .times(2),
        )
        .await;
    let report = env.run().await;
    // No resend on a 5xx or a 429: one request per job, each one counted.
    assert_eq!(report.status_requests, 5, "{report:?}");
    assert_eq!(env.status_fetches().await, 5);
    assert_eq!(report.errors, 4);
    for job in &jobs {
        assert_eq!(env.job(&job.id).await.status, JobStatus::Processing);
    }
}

#[tokio::test]
async fn a_direct_post_succeeds_when_published_with_its_public_link() {
    let env = env_with(true).await;
    env.connect_with("open-p", "pia", &DIRECT_SCOPES).await;
    let (job, outcome) = env
        .upload_with(
            "uploads/pia/direct.mp4",
            60,
            &[("post-mode", "direct"), ("privacy-level", "SELF_ONLY")],
        )
        .await;
    assert!(!job.post.is_draft(), "{:?}", job.post);
    assert_eq!(job.status, JobStatus::Processing);
    let publish_id = publish_id(&outcome);

    // An inbox is not where a direct post ends: it keeps being followed.
    env.set_status(
        &publish_id,
        serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;
    let report = env.run().await;
    assert_eq!(report.status_requests, 1);
    assert!(report.moved.is_empty(), "{report:?}");
    assert_eq!(env.job(&job.id).await.status, JobStatus::Processing);

    let post_id = 7_459_287_841_546_292_488u64;
    env.set_status(
        &publish_id,
        serde_json::json!({"status": "PUBLISH_COMPLETE", "post_ids": [post_id]}),
    )
    .await;
    env.next_minute().await;
    env.run().await;
    let done = env.job(&job.id).await;
    assert_eq!(done.status, JobStatus::Published);
    assert_eq!(done.post_ids, vec![post_id]);
    // The username comes from creator_info (the account has video.publish)
    // and is kept on the account; TikTok gives no cover URL, none is made.
    assert_eq!(
        done.share_urls,
        vec![format!(
            "https://www.tiktok.com/@user_open-p/video/{post_id}"
        )]
    );
    let account = env.accounts().get("open-p").await.unwrap().unwrap();
    assert_eq!(account.username.as_deref(), Some("user_open-p"));
}

#[tokio::test]
async fn retries_that_run_out_end_failed_with_the_last_reason() {
    let env = env().await;
    env.connect("open-t", "tess").await;
    let (job, outcome) = env.upload("uploads/tess/flaky.mp4", 70).await;
    let mut publish = publish_id(&outcome);
    for attempt in 1..=5u32 {
        env.set_status(
            &publish,
            serde_json::json!({"status": "FAILED", "fail_reason": "video_pull_failed"}),
        )
        .await;
        env.next_minute().await;
        env.run().await;
        let after = env.job(&job.id).await;
        assert_eq!(after.attempts, attempt);
        if attempt == 5 {
            assert_eq!(after.status, JobStatus::Failed);
            let error = after.last_error.unwrap();
            assert_eq!(error.code, "video_pull_failed");
            assert!(
                error.message.contains("gave up after 5 attempts"),
                "{}",
                error.message
            );
            break;
        }
        assert_eq!(after.status, JobStatus::RetryWait);
        let wait = (after.not_before.unwrap() - env.clock.now()).num_seconds() + 1;
        env.clock.advance_secs(wait);
        let report = env.run().await;
        assert_eq!(report.retries_released, 1, "{report:?}");
        assert_eq!(env.deliver_queue().await, 1);
        let again = env.job(&job.id).await;
        assert_eq!(again.status, JobStatus::Processing);
        publish = again.publish_id().unwrap().to_owned();
    }
    // Nothing more goes back to the upload queue.
    env.clock.advance_secs(7200);
    env.run().await;
    assert_eq!(env.deliver_queue().await, 0);
    let inits = env.sim.requests("/v2/post/publish/inbox/video/init/").await;
    assert_eq!(inits.len(), 5);
}

#[tokio::test]
async fn spam_risk_and_auth_removed_failures_are_not_retried() {
    let env = env().await;
    env.connect("open-n", "nia").await;
    let mut jobs = Vec::new();
    for (n, reason) in [
        "spam_risk_too_many_posts",
        "spam_risk_text",
        "spam_risk",
        "auth_removed",
    ]
    .into_iter()
    .enumerate()
    {
        let (job, outcome) = env
            .upload(&format!("uploads/nia/{n}.mp4"), 80 + n as u64)
            .await;
        env.set_status(
            &publish_id(&outcome),
            serde_json::json!({"status": "FAILED", "fail_reason": reason}),
        )
        .await;
        jobs.push((job, reason));
    }
    env.run().await;
    for (job, reason) in &jobs {
        let failed = env.job(&job.id).await;
        assert_eq!(failed.status, JobStatus::Failed, "{reason}");
        assert_eq!(failed.attempts, 0, "{reason}");
        assert_eq!(failed.last_error.unwrap().code, *reason);
    }
    env.clock.advance_secs(25 * 3600);
    let report = env.run().await;
    assert_eq!(report.retries_released, 0);
    assert_eq!(env.deliver_queue().await, 0);
}

#[tokio::test]
async fn a_job_whose_status_cannot_be_read_is_flagged_or_failed() {
    let env = env().await;
    env.connect("open-e", "eve").await;
    env.connect("open-o", "otto").await;
    let failing = env.seed_jobs("open-e", "eve", 1, "PROCESSING_UPLOAD").await;
    // A publish TikTok does not know, and one of another account.
    let mut unknown = env.claimed("open-e", "eve", "unknown.mp4").await;
    unknown.status = JobStatus::Processing;
    unknown.attempt = UploadAttempt::Pulled {
        publish_id: "v_inbox_file~v2.404404".into(),
    };
    let theirs = env
        .seed_jobs("open-o", "otto", 1, "PROCESSING_UPLOAD")
        .await;
    let mut foreign = env.claimed("open-e", "eve", "foreign.mp4").await;
    foreign.status = JobStatus::Processing;
    foreign.attempt = theirs[0].attempt.clone();
    env.jobs()
        .put_many(&[unknown.clone(), foreign.clone()])
        .await
        .unwrap();
    env.jobs()
        .transition(
            &theirs[0],
            JobStatus::Cancelled,
            Changes::default(),
            env.clock.now(),
        )
        .await
        .unwrap();

    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/status/fetch/",
                FaultAction::error(500, "internal_error"),
            )
            .times(1000),
        )
        .await;
    env.run().await;
    assert_eq!(env.job(&failing[0].id).await.status, JobStatus::Processing);
    env.sim.clear_faults().await;

    // The permanent answers end their jobs at once.
    env.next_minute().await;
    env.run().await;
    let unknown = env.job(&unknown.id).await;
    assert_eq!(unknown.status, JobStatus::Failed);
    assert_eq!(unknown.last_error.unwrap().code, "invalid_publish_id");
    let foreign = env.job(&foreign.id).await;
    assert_eq!(foreign.status, JobStatus::Failed);
    assert_eq!(
        foreign.last_error.unwrap().code,
        "token_not_authorized_for_specified_publish_id"
    );

    // A job whose every status read fails is flagged stuck after 30
    // minutes without progress, instead of being polled unnoticed forever.
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/status/fetch/",
                FaultAction::error(500, "internal_error"),
            )
            .times(1000),
        )
        .await;
    env.clock.advance_secs(31 * 60);
    env.sim.advance_clock(31 * 60).await;
    let report = env.run().await;
    assert_eq!(report.flagged_stuck, 1, "{report:?}");
    let stuck = env.job(&failing[0].id).await;
    assert_eq!(stuck.status, JobStatus::Stuck);
    assert!(stuck.last_error.unwrap().message.contains("no progress"));
}

#[tokio::test]
async fn held_uploads_are_released_first_even_when_the_run_stops_early() {
    let env = env().await;
    env.connect("open-h", "hal").await;
    env.connect("open-b", "busy").await;
    let drafts: Vec<Job> = env
        .five_drafts("hal", 90)
        .await
        .into_iter()
        .map(|(job, _)| job)
        .collect();
    let (held, outcome) = env.upload("uploads/hal/held.mp4", 99).await;
    assert!(matches!(outcome, Outcome::Queued { .. }), "{outcome:?}");
    // One draft fails (as a webhook would record it): a slot is free.
    env.jobs()
        .transition(
            &drafts[0],
            JobStatus::Failed,
            Changes {
                last_error: Some(LastError {
                    code: "file_format_check_failed".into(),
                    message: "m".into(),
                }),
                ..Changes::default()
            },
            env.clock.now(),
        )
        .await
        .unwrap();
    // A backlog whose every status answer is slow, and a short run.
    env.seed_jobs("open-b", "busy", 40, "PROCESSING_UPLOAD")
        .await;
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/status/fetch/",
                FaultAction::Delay { ms: 3_000 },
            )
            .times(1000),
        )
        .await;
    let report = env
        .checker
        .run(Instant::now() + Duration::from_secs(4))
        .await;
    assert!(report.stopped_early, "{report:?}");
    assert_eq!(report.queued_released, 1, "{report:?}");
    assert_eq!(env.job(&held.id).await.status, JobStatus::Claimed);
    assert_eq!(env.deliver_queue().await, 1);
}

/// Writes an item as it is, bypassing every store.
async fn put_raw(env: &Env, item: HashMap<String, AttributeValue>) {
    env.aws
        .dynamodb
        .put_item()
        .table_name(&env.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn unreadable_items_are_skipped_and_counted() {
    let env = env().await;
    env.connect("open-u", "uma").await;
    let good = env
        .seed_jobs("open-u", "uma", 1, "SEND_TO_USER_INBOX")
        .await;
    let s = |v: &str| AttributeValue::S(v.to_owned());
    // A job item in the same index page as the good job, due before it,
    // that is not a job this code can read; and an account item likewise.
    put_raw(
        &env,
        HashMap::from([
            ("pk".to_owned(), s("JOB#broken")),
            ("sk".to_owned(), s("JOB")),
            ("status".to_owned(), s("processing")),
            (
                "upload_url".to_owned(),
                s("https://upload.example.com/?upload_token=SECRET-T"),
            ),
            (
                "gsi1pk".to_owned(),
                s(&format!("UNFINISHED#{}", good[0].id.shard())),
            ),
            ("gsi1sk".to_owned(), s("2000-01-01T00:00:00.000Z#broken")),
        ]),
    )
    .await;
    put_raw(
        &env,
        HashMap::from([
            ("pk".to_owned(), s("ACCOUNT#broken")),
            ("sk".to_owned(), s("ACCOUNT")),
            ("state".to_owned(), s("no-such-state")),
            ("gsi1pk".to_owned(), s("ACCOUNTS")),
            ("gsi1sk".to_owned(), s("broken")),
        ]),
    )
    .await;
    capture_logs();
    let report = env.run().await;
    assert_eq!(report.unreadable_jobs, 1, "{report:?}");
    assert_eq!(report.unreadable_accounts, 1);
    assert_eq!(report.accounts, 1);
    assert_eq!(env.job(&good[0].id).await.status, JobStatus::Inbox);
    let logs = captured_logs();
    assert!(logs.contains("JOB#broken"), "the bad item is named");
    assert!(!logs.contains("SECRET-T"), "but not its values");
}

#[tokio::test]
async fn a_retry_that_tiktok_has_is_followed_not_initialised_again() {
    let env = env().await;
    env.connect("open-l", "lou").await;
    // Every byte went up but the last chunk's answer was lost: the upload
    // side put the job to wait for a retry, publish_id and all.
    let (job, outcome) = env.upload("uploads/lou/lost-answer.mp4", 100).await;
    let publish = publish_id(&outcome);
    // `other` stays PROCESSING_UPLOAD at TikTok, with every byte received.
    let (other, _) = env.upload("uploads/lou/still-up.mp4", 101).await;
    let mut waiting = Vec::new();
    for j in [&job, &other] {
        let moved = env
            .jobs()
            .transition(
                j,
                JobStatus::RetryWait,
                Changes {
                    attempts: Some(1),
                    not_before: Some(env.clock.now()),
                    last_error: Some(LastError {
                        code: "network".into(),
                        message: "the last chunk's answer was lost".into(),
                    }),
                    ..Changes::default()
                },
                env.clock.now(),
            )
            .await
            .unwrap();
        waiting.push(moved);
    }
    assert_eq!(
        env.jobs()
            .pending_drafts("open-l", env.clock.now())
            .await
            .unwrap(),
        0
    );
    env.set_status(
        &publish,
        serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;

    let report = env.run().await;
    assert_eq!(report.retries_found_at_tiktok, 2, "{report:?}");
    assert_eq!(report.retries_released, 0);
    assert_eq!(env.deliver_queue().await, 0, "nothing initialised again");
    let delivered = env.job(&job.id).await;
    assert_eq!(delivered.status, JobStatus::Inbox);
    assert_eq!(delivered.publish_id(), Some(publish.as_str()));
    assert_eq!(env.job(&other.id).await.status, JobStatus::Processing);
    // Both count against TikTok's 5 pending drafts again.
    assert_eq!(
        env.jobs()
            .pending_drafts("open-l", env.clock.now())
            .await
            .unwrap(),
        2
    );
    let inits = env.sim.requests("/v2/post/publish/inbox/video/init/").await;
    assert_eq!(inits.len(), 2);
}

/// A job waiting to retry whose publish TikTok then reports failed for a
/// passing reason: that is the failure the job is already waiting out, so
/// it is retried without counting it a second time (as the webhook does).
/// At its fourth attempt it still gets its fifth.
#[tokio::test]
async fn a_failure_seen_while_waiting_to_retry_is_not_counted_twice() {
    let env = env().await;
    env.connect("open-v", "val").await;
    let (job, outcome) = env.upload("uploads/val/fourth.mp4", 160).await;
    let first = publish_id(&outcome);
    // The upload side counted the attempt when it put the job to wait.
    let waiting = env
        .jobs()
        .transition(
            &job,
            JobStatus::RetryWait,
            Changes {
                attempts: Some(4),
                not_before: Some(env.clock.now()),
                last_error: Some(LastError {
                    code: "network".into(),
                    message: "the last chunk's answer was lost".into(),
                }),
                ..Changes::default()
            },
            env.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(waiting.live_publish_id(), Some(first.as_str()));
    env.set_status(
        &first,
        serde_json::json!({"status": "FAILED", "fail_reason": "internal"}),
    )
    .await;

    let report = env.run().await;
    assert_eq!(report.retries_released, 1, "{report:?}");
    let released = env.job(&job.id).await;
    assert_eq!(released.status, JobStatus::Claimed, "not failed");
    assert_eq!(released.attempts, 4, "the failure is counted once");
    assert_eq!(env.deliver_queue().await, 1);
    let again = env.job(&job.id).await;
    assert_eq!(again.status, JobStatus::Processing);
    assert_ne!(again.publish_id(), Some(first.as_str()));
    assert_eq!(again.attempts, 4);
}

#[tokio::test]
async fn an_account_that_must_reconnect_keeps_what_tiktok_has() {
    let env = env().await;
    env.connect("open-c", "cy").await;
    let (sent, outcome) = env.upload("uploads/cy/sent.mp4", 110).await;
    let not_sent = env.claimed("open-c", "cy", "not-sent.mp4").await;
    let held = env.claimed("open-c", "cy", "held.mp4").await;
    let held = env
        .jobs()
        .transition(
            &held,
            JobStatus::Queued,
            Changes::default(),
            env.clock.now(),
        )
        .await
        .unwrap();
    // An init that was started and never answered: TikTok may have it.
    let in_doubt = env.claimed("open-c", "cy", "in-doubt.mp4").await;
    env.jobs()
        .mark_init_started(&in_doubt, env.clock.now())
        .await
        .unwrap();
    env.accounts()
        .set_state("open-c", AccountState::NeedsReconnect, Some("test"))
        .await
        .unwrap();
    env.set_status(
        &publish_id(&outcome),
        serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;

    let report = env.run().await;
    assert_eq!(report.status_requests, 0, "no token of the account works");
    for job in [&not_sent, &held] {
        let failed = env.job(&job.id).await;
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.last_error.unwrap().code, "reconnect_needed");
    }
    assert_eq!(env.job(&sent.id).await.status, JobStatus::Processing);
    // Not failed with "upload it again" (that could make a second draft):
    // it waits, and is flagged for the operator once it has waited long.
    assert_eq!(env.job(&in_doubt.id).await.status, JobStatus::Claimed);
    env.clock.advance_secs(31 * 60);
    env.run().await;
    assert_eq!(env.job(&in_doubt.id).await.status, JobStatus::Stuck);

    // After the reconnect (its tokens work again) the sent one is followed
    // again.
    env.accounts()
        .set_state("open-c", AccountState::Active, None)
        .await
        .unwrap();
    env.clock.advance_secs(16 * 60);
    env.run().await;
    assert_eq!(env.job(&sent.id).await.status, JobStatus::Inbox);
    assert_eq!(env.job(&in_doubt.id).await.status, JobStatus::Stuck);
}

#[tokio::test]
async fn drafts_in_the_inbox_are_followed_until_posted_or_a_day_old() {
    let env = env().await;
    env.connect("open-i", "ivy").await;
    let mut drafts = Vec::new();
    for n in 0..5 {
        let (job, outcome) = env.upload(&format!("uploads/ivy/{n}.mp4"), 120 + n).await;
        env.set_status(
            &publish_id(&outcome),
            serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
        )
        .await;
        drafts.push((job, publish_id(&outcome)));
    }
    let (held, _) = env.upload("uploads/ivy/held.mp4", 130).await;
    assert_eq!(held.status, JobStatus::Queued);
    let report = env.run().await;
    assert_eq!(report.moved.get("inbox"), Some(&5));
    assert_eq!(report.queued_released, 0, "drafts in the inbox still count");

    // Not asked again before 15 minutes.
    env.next_minute().await;
    let report = env.run().await;
    assert_eq!(report.status_requests, 0, "{report:?}");

    // The creator posts one from the app (no webhook): the next slow
    // check sees it, and the held upload goes.
    env.set_status(
        &drafts[0].1,
        serde_json::json!({"status": "PUBLISH_COMPLETE"}),
    )
    .await;
    env.clock.advance_secs(15 * 60);
    env.sim.advance_clock(15 * 60).await;
    let report = env.run().await;
    assert_eq!(report.status_requests, 5, "{report:?}");
    assert_eq!(env.job(&drafts[0].0.id).await.status, JobStatus::Published);
    assert_eq!(report.queued_released, 1, "{report:?}");
    assert_eq!(env.job(&held.id).await.status, JobStatus::Claimed);

    // A day after they reached the inbox the others are no longer followed
    // (the released upload, never taken by the upload function here, is
    // flagged stuck).
    env.clock.advance_secs(24 * 3600);
    let report = env.run().await;
    assert_eq!(report.inbox_unfollowed, 4, "{report:?}");
    assert_eq!(report.status_requests, 0);
    env.next_minute().await;
    let report = env.run().await;
    assert_eq!(
        report.jobs_seen, 1,
        "only the released upload is left: {report:?}"
    );
    assert_eq!(env.job(&held.id).await.status, JobStatus::Stuck);
}

// ---------------------------------------------------------------------------
// Token refreshes under TikTok's strict reading: a slow answer to a refresh
// has already rotated the refresh token; an access token can die before its
// expiry; a refresh token spent by another invocation answers invalid_grant.

impl Env {
    /// The refresh_token grants TikTok received.
    async fn refresh_posts(&self) -> usize {
        self.sim
            .requests("/v2/oauth/token/")
            .await
            .iter()
            .filter(|r| r["grant_type"] == "refresh_token")
            .count()
    }

    async fn stored(&self, open_id: &str) -> shared::tokens::StoredTokens {
        self.manager()
            .store()
            .load(open_id)
            .await
            .unwrap()
            .expect("stored tokens")
    }

    async fn account_state(&self, open_id: &str) -> AccountState {
        self.accounts()
            .get(open_id)
            .await
            .unwrap()
            .expect("account")
            .state
    }

    /// Both clocks (ours and TikTok's) move past the access token's life.
    async fn expire_access_tokens(&self) {
        self.clock.advance_secs(7200 + 60);
        self.sim.advance_clock(7200 + 60).await;
    }

    /// The refresh token `stored` holds is the live one at TikTok, and
    /// `spent` is refused (checked last: it spends the live one).
    async fn assert_rotated(&self, stored: &shared::Secret, spent: &shared::Secret) {
        assert_ne!(stored, spent, "the stored refresh token is the rotated one");
        let client = self.sim.client();
        let refused = client.refresh_token(spent).await.unwrap_err();
        assert_eq!(
            refused.oauth_code(),
            Some(&shared::tiktok::OAuthErrorCode::InvalidGrant)
        );
        client
            .refresh_token(stored)
            .await
            .expect("the stored refresh token works at TikTok");
    }
}

/// Asks local AWS (our moto launcher) to answer the next `times` requests
/// of `target` whose body names `contains` with a 500 error.
async fn aws_fault(target: &str, contains: &str, times: u32) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("local AWS");
    let answer = reqwest::Client::new()
        .post(format!("{}/_faults", endpoint.trim_end_matches('/')))
        .json(&serde_json::json!({
            "target": target, "contains": contains, "times": times,
            "status": 500, "code": "InternalServiceError"
        }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
}

/// The AWS faults not yet spent whose body match names `contains`.
async fn aws_faults_left(contains: &str) -> usize {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("local AWS");
    let all: serde_json::Value =
        reqwest::get(format!("{}/_faults", endpoint.trim_end_matches('/')))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    all["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["contains"] == contains)
        .count()
}

/// One refresh TikTok answers 33 s late (past the 30 s lease this code
/// once had, with the refresh token rotated the moment it was asked): the
/// status checker's sweep makes it, and an upload needing the account's
/// token meanwhile waits for it instead of spending the old refresh token.
/// With `failing_saves`, Secrets Manager refuses the first saves of the
/// rotated token.
async fn slow_refresh_with_a_second_invocation(open_id: &str, alias: &str, failing_saves: u32) {
    let env = env().await;
    env.connect(open_id, alias).await;
    let original = env.stored(open_id).await.refresh_token;
    env.expire_access_tokens().await;
    env.sim
        .fault(FaultRule::new(
            "/v2/oauth/token/",
            FaultAction::AnswerLate { ms: 33_000 },
        ))
        .await;
    let secret = format!("{}/accounts/{open_id}", env.prefix);
    if failing_saves > 0 {
        // The SDK tries each save three times itself: three refusals fail
        // one save of ours.
        aws_fault("secretsmanager.PutSecretValue", &secret, failing_saves * 3).await;
    }

    let checker = async { env.run().await };
    let upload = async {
        // The sweep has taken the lease by then.
        tokio::time::sleep(Duration::from_secs(1)).await;
        env.upload(&format!("uploads/{alias}/during.mp4"), 5).await
    };
    let (report, (job, outcome)) = tokio::join!(checker, upload);

    assert_eq!(
        env.refresh_posts().await,
        1,
        "exactly one refresh at TikTok"
    );
    assert_eq!(report.tokens_refreshed, 1, "{report:?}");
    assert_eq!(report.token_failures, 0, "{report:?}");
    assert!(matches!(outcome, Outcome::Uploaded { .. }), "{outcome:?}");
    assert_eq!(job.status, JobStatus::Processing);
    assert_eq!(env.account_state(open_id).await, AccountState::Active);
    if failing_saves > 0 {
        assert_eq!(aws_faults_left(&secret).await, 0, "the saves were refused");
    }
    let stored = env.stored(open_id).await;
    env.assert_rotated(&stored.refresh_token, &original).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_slower_than_the_old_lease_is_made_once_and_shared() {
    slow_refresh_with_a_second_invocation("open-slow", "slow", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_refresh_whose_save_fails_twice_is_still_made_once_and_kept() {
    slow_refresh_with_a_second_invocation("open-slow-save", "slowsave", 2).await;
}

/// TikTok ends the access token long before its expiry: the upload's init,
/// the checker's status fetch each refresh once and succeed.
#[tokio::test]
async fn an_access_token_ended_early_is_refreshed_once_by_init_and_status_fetch() {
    let env = env().await;
    env.connect("open-early", "early").await;
    let original = env.stored("open-early").await.refresh_token;

    // Init (the upload function).
    env.sim
        .post(
            "/_sim/users/open-early/invalidate_access",
            serde_json::json!({}),
        )
        .await;
    let (job, outcome) = env.upload("uploads/early/one.mp4", 6).await;
    assert!(matches!(outcome, Outcome::Uploaded { .. }), "{outcome:?}");
    assert_eq!(job.status, JobStatus::Processing);
    assert_eq!(env.refresh_posts().await, 1, "one refresh for the init");
    let after_init = env.stored("open-early").await;
    assert_ne!(after_init.refresh_token, original);

    // Status fetch (the checker), with the token it had cached.
    env.run().await;
    env.next_minute().await;
    env.sim
        .post(
            "/_sim/users/open-early/invalidate_access",
            serde_json::json!({}),
        )
        .await;
    let before = env.status_fetches().await;
    let report = env.run().await;
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(
        env.refresh_posts().await,
        2,
        "one refresh for the status fetch"
    );
    assert_eq!(
        env.status_fetches().await - before,
        2,
        "the refused fetch and its one retry"
    );
    assert_eq!(env.account_state("open-early").await, AccountState::Active);

    // A freshly refreshed token refused again: the grant is gone, said so.
    env.next_minute().await;
    env.sim
        .fault(
            FaultRule::new(
                "/v2/post/publish/status/fetch/",
                FaultAction::error(401, "access_token_invalid"),
            )
            .times(2),
        )
        .await;
    env.run().await;
    let account = env.accounts().get("open-early").await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::NeedsReconnect);
    let reason = account.state_reason.unwrap_or_default();
    assert!(reason.contains("freshly refreshed"), "{reason}");
    // The secret was not touched by the mark: it still has what the last
    // refresh saved.
    let stored = env.stored("open-early").await;
    assert!(stored.reconnect_required_at.is_none());
}

/// A refresh token another invocation rotated a moment ago (Secrets
/// Manager still served the old version to this one): TikTok answers
/// invalid_grant, and the caller takes the stored tokens instead of
/// marking the account.
#[tokio::test]
async fn invalid_grant_on_a_token_another_invocation_rotated_uses_the_stored_tokens() {
    let env = env().await;
    env.connect("open-race", "race").await;
    let original = env.stored("open-race").await.refresh_token;
    env.expire_access_tokens().await;
    // Another invocation refreshes (rotates and saves).
    env.manager().get_fresh_token("open-race").await.unwrap();
    let rotated = env.stored("open-race").await;
    assert_ne!(rotated.refresh_token, original);
    let posts = env.refresh_posts().await;
    // This one read the secret before that save showed (eventually
    // consistent reads): both of its first reads still give the old version.
    let secret = format!("{}/accounts/open-race", env.prefix);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{}/_faults", endpoint.trim_end_matches('/')))
        .json(
            &serde_json::json!({"target": "secretsmanager.GetSecretValue",
            "contains": secret, "times": 2, "stale": true}),
        )
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    env.expire_access_tokens().await;

    let fresh = env
        .manager()
        .get_fresh_token("open-race")
        .await
        .expect("the stored tokens are used");
    assert_eq!(
        aws_faults_left(&secret).await,
        0,
        "the stale reads happened"
    );
    assert_eq!(
        env.refresh_posts().await - posts,
        2,
        "the spent token (invalid_grant), then the stored one"
    );
    assert_eq!(env.account_state("open-race").await, AccountState::Active);
    let stored = env.stored("open-race").await;
    assert_eq!(stored.access_token, fresh.access_token);
    env.assert_rotated(&stored.refresh_token, &rotated.refresh_token)
        .await;
}
