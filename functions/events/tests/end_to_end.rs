//! Events end to end on the local stack: the real function binaries (upload,
//! status checker, webhook, and this one) under cargo-lambda's Lambda
//! emulator, moto, the TikTok simulator. The table's stream is read as
//! Lambda's event source mapping reads it (filters, batches, batch item
//! failures), and what reaches the bus is read back through an EventBridge
//! rule that sends it to an SQS queue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use events::{Detail, FILTER_PATTERNS, Kind, SCHEMA_VERSION, SOURCE};
use serde_json::{Value, json};
use shared::accounts::{AccountState, Accounts};
use shared::aws::AwsClients;
use shared::jobs::{Job, JobId, JobStatus, Jobs, ObjectVersion};
use shared::tokens::TokenManager;
use tiktok_drafts_tests::bus::BusTap;
use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::lambda_events::{http_api_request, s3_created_batch, scheduled_event};
use tiktok_drafts_tests::stream::{MappingSettings, StreamPoller, Target as _};
use tiktok_drafts_tests::{
    DeploymentStores, SIM_CLIENT_KEY, SIM_CLIENT_SECRET, TestSim, connect_account,
    deployment_stores, fake_mp4, local_aws, unique_name,
};

const POST_ID: u64 = 7_459_287_841_546_292_488;

/// A function binary of another package of the workspace, built next to
/// this test's (`cargo test --workspace` and `make test` build them all).
fn sibling_binary(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/<test> -> target/debug/<name>
    let dir = me
        .parent()
        .and_then(Path::parent)
        .expect("the target folder");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build -p {name}` first (make test builds it)",
        path.display()
    );
    path
}

struct Stack {
    sdk: aws_config::SdkConfig,
    aws: AwsClients,
    sim: TestSim,
    table: String,
    prefix: String,
    bucket: String,
    upload: LambdaFunction,
    checker: LambdaFunction,
    webhook: LambdaFunction,
    events: LambdaFunction,
    poller: StreamPoller,
    /// What reaches the bus.
    tap: BusTap,
}

impl Stack {
    async fn start() -> Self {
        let sdk = local_aws().await;
        let aws = AwsClients::from_config(&sdk);
        let sim = TestSim::start(|s| s.auto_advance = false).await;
        let DeploymentStores {
            table,
            prefix,
            app_secret_id,
        } = deployment_stores(&aws).await;
        let bucket = unique_name("uploads");
        aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let upload_queue = sqs
            .create_queue()
            .queue_name(unique_name("uploads"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();

        // The bus, and a rule that sends everything from tiktok-drafts to a
        // queue the test reads.
        let bus = unique_name("tiktok-drafts-events");
        let tap = BusTap::new(&sdk, &bus, SOURCE).await.unwrap();

        let common = |extra: &[(&'static str, String)]| {
            let mut env = vec![
                ("TABLE_NAME", table.clone()),
                ("SECRETS_PREFIX", prefix.clone()),
                ("TIKTOK_APP_SECRET_ID", app_secret_id.clone()),
                ("TIKTOK_API_BASE_URL", sim.base_url().to_owned()),
                ("TIKTOK_UPLOAD_BASE_URL", sim.base_url().to_owned()),
            ];
            env.extend(extra.iter().cloned());
            env
        };
        let upload = LambdaFunction::start(
            &sibling_binary("s3-upload"),
            &common(&[("UPLOAD_QUEUE_URL", upload_queue.clone())]),
        )
        .await;
        let checker = LambdaFunction::start(
            &sibling_binary("status-checker"),
            &common(&[
                ("UPLOAD_QUEUE_URL", upload_queue.clone()),
                ("CHECK_INTERVAL_MINUTES", "5".into()),
            ]),
        )
        .await;
        let webhook = LambdaFunction::start(&sibling_binary("tiktok-webhook"), &common(&[])).await;
        let events = LambdaFunction::start(
            Path::new(env!("CARGO_BIN_EXE_events")),
            &[("TABLE_NAME", table.clone()), ("EVENT_BUS_NAME", bus)],
        )
        .await;
        let poller = StreamPoller::for_table(
            &sdk,
            &table,
            MappingSettings {
                batch_size: 25,
                max_retries: 10,
                filters: FILTER_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
            },
        )
        .await
        .unwrap();
        Self {
            sdk,
            aws,
            sim,
            table,
            prefix,
            bucket,
            upload,
            checker,
            webhook,
            events,
            poller,
            tap,
        }
    }

    async fn connect(&self, alias: &str) -> String {
        let open_id = format!("open-{alias}");
        self.sim.seed_user(&open_id, json!({})).await;
        connect_account(
            &self.sim,
            &TokenManager::for_deployment(&self.aws, self.sim.client(), &self.prefix, &self.table),
            &self.accounts(),
            &open_id,
            alias,
            &["user.info.basic", "video.upload"],
        )
        .await;
        open_id
    }

    fn accounts(&self) -> Accounts {
        Accounts::new(self.aws.dynamodb.clone(), &self.table)
    }

    fn jobs(&self) -> Jobs {
        Jobs::new(self.aws.dynamodb.clone(), &self.table)
    }

    /// Drops a video into the bucket and hands S3's notification to the
    /// upload function; returns the job as it stands then.
    async fn upload(&mut self, alias: &str, name: &str, caption: Option<&str>, seed: u64) -> Job {
        let key = format!("uploads/{alias}/{name}");
        let video = fake_mp4(300_000, seed);
        let mut put = self
            .aws
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(video.clone()));
        if let Some(caption) = caption {
            put = put.metadata("caption", caption);
        }
        let etag = put.send().await.unwrap().e_tag().unwrap().to_owned();
        let batch = s3_created_batch(&self.bucket, &key, video.len() as u64, &etag);
        let answer = self.upload.invoke(&batch).await;
        assert_eq!(
            answer.body,
            json!({"batchItemFailures": []}),
            "{}",
            self.upload.logs().join("\n")
        );
        let id = JobId::for_upload(&self.bucket, &key, &ObjectVersion::etag(&etag));
        self.jobs().get(&id).await.unwrap().expect("the job")
    }

    async fn set_publish(&self, job: &Job, status: Value) {
        let publish_id = job.publish_id().expect("a publish_id");
        let encoded: String = url::form_urlencoded::byte_serialize(publish_id.as_bytes()).collect();
        self.sim
            .post(&format!("/_sim/publishes/{encoded}/status"), status)
            .await;
    }

    async fn run_checker(&mut self) -> Value {
        let answer = self.checker.invoke(&scheduled_event()).await;
        assert_eq!(answer.status, 200, "{}", self.checker.logs().join("\n"));
        answer.body
    }

    /// TikTok's signed `authorization.removed`, through the webhook function.
    async fn remove_authorization(&mut self, open_id: &str) {
        let t = chrono::Utc::now().timestamp() + 1;
        let body = json!({
            "client_key": SIM_CLIENT_KEY,
            "event": "authorization.removed",
            "create_time": t,
            "user_openid": open_id,
            "content": json!({"reason": 1}).to_string(),
        })
        .to_string();
        let signature = shared::webhook::signature_header(SIM_CLIENT_SECRET, t, body.as_bytes());
        let request = http_api_request(
            "POST",
            "/webhooks/tiktok",
            "",
            &[
                ("content-type", "application/json"),
                ("tiktok-signature", &signature),
            ],
            Some(&body),
        );
        let answer = self.webhook.invoke(&request).await;
        assert_eq!(
            answer.body["statusCode"],
            200,
            "{}\n{}",
            answer.body,
            self.webhook.logs().join("\n")
        );
    }

    /// Reads the stream as the event source mapping would, into the events
    /// function.
    async fn poll(&mut self) {
        let summary = self.poller.poll(&mut self.events).await.unwrap();
        assert_eq!(
            summary.batches_discarded,
            0,
            "{}",
            self.events.logs().join("\n")
        );
    }

    /// Every event that reached the bus since the last call.
    async fn bus_events(&self) -> Vec<Value> {
        self.tap.drain().await.unwrap()
    }
}

/// The detail of an event read from the bus, checked against the schema:
/// the envelope's source and detail-type, and the detail's every field
/// (unknown fields are refused).
fn documented_detail(event: &Value) -> Detail {
    assert_eq!(event["source"], SOURCE, "{event}");
    let detail: Detail = serde_json::from_value(event["detail"].clone())
        .unwrap_or_else(|e| panic!("the detail does not follow the schema ({e}): {event}"));
    assert_eq!(detail.schema_version, SCHEMA_VERSION);
    assert_eq!(event["detail-type"], detail.kind.detail_type(), "{event}");
    assert_eq!(detail.event_id.len(), 32);
    detail
}

/// What each event is about: the job's id, or the account's open_id.
fn subject(detail: &Detail) -> String {
    match &detail.upload {
        Some(upload) => upload.job_id.clone(),
        None => detail.account.open_id.clone().unwrap_or_default(),
    }
}

#[tokio::test]
async fn each_change_makes_exactly_one_event_and_a_replayed_batch_none() {
    let mut stack = Stack::start().await;
    let alice = stack.connect("alice").await;
    stack.connect("cleo").await;
    let dana = stack.connect("dana").await;
    // The public link of a post needs the account's username.
    stack
        .accounts()
        .record_username(&alice, "alice_tt")
        .await
        .unwrap();

    // Three videos for alice: one reaches the inbox, one the creator posts
    // at once (before the checker saw it in the inbox), one TikTok fails.
    let inboxed = stack
        .upload("alice", "inbox.mp4", Some("<b>Sunset</b> & \"waves\""), 1)
        .await;
    let posted = stack.upload("alice", "posted.mp4", None, 2).await;
    let failing = stack.upload("alice", "failing.mp4", None, 3).await;
    for job in [&inboxed, &posted, &failing] {
        assert_eq!(job.status, JobStatus::Processing, "{job:?}");
    }
    stack
        .set_publish(&inboxed, json!({"status": "SEND_TO_USER_INBOX"}))
        .await;
    stack
        .set_publish(
            &posted,
            json!({"status": "PUBLISH_COMPLETE", "post_ids": [POST_ID]}),
        )
        .await;
    stack
        .set_publish(
            &failing,
            json!({"status": "FAILED", "fail_reason": "frame_rate_check_failed"}),
        )
        .await;
    let run = stack.run_checker().await;
    assert_eq!(run["jobs_seen"], 3, "{run}");
    // Part of the stream now, the rest later: the mapping goes on from
    // where it stopped.
    stack.poll().await;

    // Six videos for cleo: five take her five draft slots, the sixth is held.
    let mut cleos = Vec::new();
    for i in 0..6 {
        cleos.push(
            stack
                .upload("cleo", &format!("clip-{i}.mp4"), None, 10 + i)
                .await,
        );
    }
    let held = cleos.last().unwrap();
    assert_eq!(held.status, JobStatus::Queued, "{held:?}");
    assert!(cleos[..5].iter().all(|j| j.status == JobStatus::Processing));

    // dana removes the app at TikTok.
    stack.remove_authorization(&dana).await;
    assert_eq!(
        stack.accounts().get(&dana).await.unwrap().unwrap().state,
        AccountState::Revoked
    );
    stack.poll().await;

    let events = stack.bus_events().await;
    let details: Vec<Detail> = events.iter().map(documented_detail).collect();
    let mut seen: BTreeMap<(Kind, String), u32> = BTreeMap::new();
    for detail in &details {
        *seen.entry((detail.kind, subject(detail))).or_default() += 1;
    }
    let expected = BTreeMap::from([
        ((Kind::UploadInInbox, inboxed.id.to_string()), 1),
        ((Kind::UploadPosted, posted.id.to_string()), 1),
        ((Kind::UploadFailed, failing.id.to_string()), 1),
        ((Kind::UploadHeld, held.id.to_string()), 1),
        ((Kind::AccountRevoked, dana.clone()), 1),
    ]);
    assert_eq!(
        seen,
        expected,
        "events on the bus:\n{}\nevents function:\n{}",
        serde_json::to_string_pretty(&events).unwrap(),
        stack.events.logs().join("\n")
    );
    let ids: std::collections::BTreeSet<_> = details.iter().map(|d| &d.event_id).collect();
    assert_eq!(ids.len(), details.len(), "event ids are unique");

    // What each carries.
    let by_kind = |kind: Kind| details.iter().find(|d| d.kind == kind).unwrap();
    let inbox = by_kind(Kind::UploadInInbox);
    assert_eq!(inbox.account.alias.as_deref(), Some("alice"));
    let upload = inbox.upload.as_ref().unwrap();
    assert_eq!(upload.file, "inbox.mp4");
    assert_eq!(upload.caption.as_deref(), Some("<b>Sunset</b> & \"waves\""));
    assert_eq!(inbox.previous_status.as_deref(), Some("processing"));
    assert!(inbox.hint.starts_with("Open TikTok, tap the inbox"));
    let post = by_kind(Kind::UploadPosted);
    assert_eq!(
        post.links,
        vec![format!("https://www.tiktok.com/@alice_tt/video/{POST_ID}")]
    );
    let failed = by_kind(Kind::UploadFailed);
    let reason = failed.reason.as_ref().unwrap();
    assert_eq!(reason.code, "frame_rate_check_failed");
    assert!(reason.text.contains("frame rate"), "{reason:?}");
    assert!(failed.hint.contains("frames per second"), "{}", failed.hint);
    let held_event = by_kind(Kind::UploadHeld);
    assert_eq!(held_event.account.alias.as_deref(), Some("cleo"));
    assert!(
        held_event.summary.contains("5 drafts"),
        "{}",
        held_event.summary
    );
    let revoked = by_kind(Kind::AccountRevoked);
    assert_eq!(revoked.status, "revoked");
    assert!(revoked.upload.is_none());

    // A replay: every batch delivered so far, again, as a retried mapping
    // or an operator's redrive would; then the whole stream from its start.
    let batches = stack.poller.delivered().to_vec();
    assert!(!batches.is_empty());
    for batch in &batches {
        let answer = stack.events.deliver(batch).await.unwrap();
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
    stack.poller.rewind();
    stack.poll().await;
    let again = stack.bus_events().await;
    assert!(
        again.is_empty(),
        "a replay published {} event(s): {again:?}",
        again.len()
    );
    let logs = stack.events.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("event published before; not again")),
        "{}",
        logs.join("\n")
    );
    // The markers' own stream records never reached the function: the
    // filter kept them out (the function only ever saw jobs and accounts).
    for batch in stack.poller.delivered() {
        for record in batch["Records"].as_array().unwrap() {
            let pk = record["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap();
            assert!(pk.starts_with("JOB#") || pk.starts_with("ACCOUNT#"), "{pk}");
        }
    }
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn a_batch_the_bus_refuses_is_delivered_again_from_the_failed_record() {
    let mut stack = Stack::start().await;
    stack.connect("erin").await;
    let job = stack.upload("erin", "a.mp4", None, 40).await;
    stack
        .set_publish(&job, json!({"status": "SEND_TO_USER_INBOX"}))
        .await;
    stack.run_checker().await;
    // The events function, pointed at a bus that does not exist, cannot
    // publish: it names the record, the mapping retries it and finally
    // records the batch on its on-failure queue; nothing is published.
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let dead_letters = sqs
        .create_queue()
        .queue_name(unique_name("events-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut broken = LambdaFunction::start(
        Path::new(env!("CARGO_BIN_EXE_events")),
        &[
            ("TABLE_NAME", stack.table.clone()),
            ("EVENT_BUS_NAME", unique_name("no-such-bus")),
        ],
    )
    .await;
    let mut poller = StreamPoller::for_table(
        &stack.sdk,
        &stack.table,
        MappingSettings {
            batch_size: 25,
            max_retries: 2,
            filters: FILTER_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
        },
    )
    .await
    .unwrap()
    .with_on_failure(sqs.clone(), dead_letters.clone());
    let summary = poller.poll(&mut broken).await.unwrap();
    assert_eq!(summary.batches_discarded, 1, "{summary:?}");
    assert_eq!(summary.invocations, 3, "the first try and two retries");
    let first = &poller.delivered()[0]["Records"];
    let retried = &poller.delivered()[1]["Records"];
    // The retry starts at the record that failed (the job's move to the
    // inbox), not at the batch's start.
    let failed_at = retried[0]["dynamodb"]["SequenceNumber"].clone();
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dynamodb"]["SequenceNumber"] == failed_at)
    );
    assert_eq!(retried[0]["dynamodb"]["NewImage"]["status"]["S"], "inbox");
    let record = sqs
        .receive_message()
        .queue_url(&dead_letters)
        .send()
        .await
        .unwrap()
        .messages()[0]
        .body()
        .unwrap()
        .to_owned();
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(
        record["DDBStreamBatchInfo"]["startSequenceNumber"],
        failed_at
    );
    assert!(stack.bus_events().await.is_empty());
    assert!(
        broken
            .logs()
            .iter()
            .any(|l| l.contains("the batch is delivered again from it")),
        "{}",
        broken.logs().join("\n")
    );
    // With the bus there, the same stream publishes the one event.
    stack.poll().await;
    let events = stack.bus_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(documented_detail(&events[0]).kind, Kind::UploadInInbox);
    stack.sim.shutdown().await;
}
