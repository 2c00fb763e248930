//! The status checker against local AWS (moto: DynamoDB, Secrets Manager,
//! S3, SQS) and the TikTok simulator. Jobs are made by the real upload
//! handler, and released jobs go back through a real SQS queue into it.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use s3_upload::config::UploadConfig;
use s3_upload::events::ObjectRef;
use s3_upload::forwarder::Outcome;
use s3_upload::service::UploadService;
use shared::accounts::{AccountState, Accounts};
use shared::aws::AwsClients;
use shared::jobs::{Job, JobId, JobStatus, Jobs, ObjectVersion};
use shared::tiktok::Endpoints;
use shared::tiktok::upload::RetryPolicy as UploadRetry;
use shared::tokens::{Clock, TokenManager, TokenStore as _};
use status_checker::checker::{Checker, RunReport};
use status_checker::upload_path::SqsUploadPath;
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, capture_logs, captured_logs, connect_account, deployment_stores,
    fake_mp4, local_aws, unique_name,
};
use tokio::time::Instant;

const SCOPES: [&str; 2] = ["user.info.basic", "video.upload"];

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
    checker: Checker<SqsUploadPath>,
}

async fn env() -> Env {
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
            direct_post_enabled: false,
        },
        &aws,
        clock.clone(),
    )
    .await
    .unwrap()
    .with_upload_retry(UploadRetry::immediate(2));
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
        self.sim.seed_user(open_id, serde_json::json!({})).await;
        connect_account(
            &self.sim,
            &self.manager(),
            &self.accounts(),
            open_id,
            alias,
            &SCOPES,
        )
        .await;
    }

    /// Puts a video and hands its event to the upload handler.
    async fn upload(&self, key: &str, seed: u64) -> (Job, Outcome) {
        let out = self
            .aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(fake_mp4(200_000, seed)))
            .send()
            .await
            .unwrap();
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
    // the index, and nothing was sent back to the upload queue.
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
    let second = again.publish_id.clone().expect("a new publish_id");
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
    let mut drafts = Vec::new();
    for n in 0..5 {
        let (job, outcome) = env.upload(&format!("uploads/quinn/{n}.mp4"), 10 + n).await;
        drafts.push((job, publish_id(&outcome)));
    }
    let (held_1, outcome) = env.upload("uploads/quinn/held-1.mp4", 20).await;
    assert!(matches!(outcome, Outcome::Queued { .. }), "{outcome:?}");
    // Later upload, so it must wait behind held_1.
    env.clock.advance_secs(1);
    let (held_2, _) = env.upload("uploads/quinn/held-2.mp4", 21).await;
    assert_eq!(held_2.status, JobStatus::Queued);

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
    let report = env.run().await;
    assert_eq!(report.queued_released, 1, "{report:?}");
    assert_eq!(env.job(&drafts[1].0.id).await.status, JobStatus::RetryWait);
    assert_eq!(env.job(&held_1.id).await.status, JobStatus::Claimed);
    assert_eq!(env.job(&held_2.id).await.status, JobStatus::Queued);
    assert_eq!(env.deliver_queue().await, 1);
    let released = env.job(&held_1.id).await;
    assert_eq!(released.status, JobStatus::Processing);
    assert!(released.publish_id.is_some());
    assert_eq!(
        env.jobs()
            .pending_drafts("open-q", env.clock.now())
            .await
            .unwrap(),
        5
    );
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
    let report = env.run().await;
    assert_eq!(report.flagged_stuck, 1, "{report:?}");
    let slow = env.job(&slow.id).await;
    assert_eq!(slow.status, JobStatus::Stuck);
    assert_eq!(
        slow.tiktok_status.as_ref().map(|s| s.as_str()),
        Some("PROCESSING_UPLOAD"),
        "the last TikTok status is kept"
    );
    assert!(slow.last_error.unwrap().message.contains("no progress"));
    let orphan = env.job(&orphan.id).await;
    assert_eq!(orphan.status, JobStatus::Failed);
    assert_eq!(orphan.last_error.unwrap().code, "account_revoked");

    // A stuck job still moves when TikTok finally answers.
    env.set_status(
        &slow_publish,
        serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
    )
    .await;
    env.run().await;
    assert_eq!(env.job(&slow.id).await.status, JobStatus::Inbox);
}

#[tokio::test]
async fn a_run_stops_at_its_deadline_and_the_next_one_finishes() {
    let env = env().await;
    env.connect("open-d", "dee").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (job, outcome) = env.upload(&format!("uploads/dee/{n}.mp4"), 40 + n).await;
        env.set_status(
            &publish_id(&outcome),
            serde_json::json!({"status": "SEND_TO_USER_INBOX"}),
        )
        .await;
        ids.push(job.id);
    }
    // A deadline already inside the stop margin: no work is started.
    let report = env.checker.run(Instant::now()).await;
    assert!(report.stopped_early);
    assert_eq!(report.status_requests, 0);
    let report = env.run().await;
    assert!(!report.stopped_early);
    assert_eq!(report.moved.get("inbox"), Some(&3));
    for id in &ids {
        assert_eq!(env.job(id).await.status, JobStatus::Inbox);
    }
}
