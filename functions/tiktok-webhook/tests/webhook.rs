//! The real webhook handler (a lambda_http request in, a response out) against
//! local AWS (moto), and end to end with deliveries the TikTok simulator
//! signs and sends itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::accounts::{AccountState, Accounts, ConnectedAccount};
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::jobs::UploadAttempt;
use shared::jobs::{
    Changes, Claim, Job, JobKind, JobStatus, Jobs, NewJob, ObjectVersion, PostTarget, SlotDecision,
    Upload,
};
use shared::tiktok::{FailReason, PublishState};
use shared::webhook::signature_header;
use tiktok_drafts_tests::{
    DeploymentStores, SIM_CLIENT_KEY, SIM_CLIENT_SECRET, TestSim, capture_logs, captured_logs,
    deployment_stores, local_aws, unique_name,
};
use tiktok_webhook::{WebhookConfig, WebhookService};

const OPEN_ID: &str = "open-alice";

struct Env {
    service: Arc<WebhookService>,
    jobs: Jobs,
    accounts: Accounts,
}

async fn env() -> Env {
    env_with_removal_budget(None).await
}

/// [`env`], with another time budget for `authorization.removed`.
async fn env_with_removal_budget(budget: Option<Duration>) -> Env {
    capture_logs();
    let aws = AwsClients::from_config(&local_aws().await);
    let DeploymentStores {
        table,
        app_secret_id,
        prefix,
    } = deployment_stores(&aws).await;
    let config = WebhookConfig {
        table: table.clone(),
        app_secret_id,
        secrets_prefix: prefix,
    };
    let mut service = WebhookService::new(&config, &aws, Clock::system())
        .await
        .unwrap();
    if let Some(budget) = budget {
        service = service.with_removal_budget(budget);
    }
    let env = Env {
        service: Arc::new(service),
        jobs: Jobs::new(aws.dynamodb.clone(), &table),
        accounts: Accounts::new(aws.dynamodb.clone(), &table),
    };
    env.connect(OPEN_ID, "alice").await;
    env
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// An envelope as TikTok sends it: `content` is a string of JSON.
fn envelope(event: &str, open_id: &str, content: Value) -> String {
    json!({
        "client_key": SIM_CLIENT_KEY,
        "event": event,
        "create_time": now().timestamp(),
        "user_openid": open_id,
        "content": content.to_string(),
    })
    .to_string()
}

fn request(path: &str, method: &str, signature: Option<&str>, body: &str) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://hooks.example.com{path}"))
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        // TikTok's example casing; header names are case-insensitive.
        builder = builder.header("Tiktok-Signature", signature);
    }
    builder.body(Body::Text(body.to_owned())).unwrap()
}

fn text(res: &Response<Body>) -> String {
    match res.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

impl Env {
    async fn connect(&self, open_id: &str, alias: &str) {
        self.accounts
            .connect(
                ConnectedAccount {
                    open_id: open_id.into(),
                    alias: alias.into(),
                    display_name: Some("Alice".into()),
                    avatar_url: None,
                    scopes: vec!["user.info.basic".into(), "video.upload".into()],
                    access_expires_at: now() + TimeDelta::hours(2),
                    refresh_expires_at: Some(now() + TimeDelta::days(180)),
                },
                shared::accounts::AliasPermits::default(),
                &unique_name("inv"),
            )
            .await
            .unwrap();
    }

    /// Signs `body` now with the app's secret and delivers it.
    async fn deliver(&self, body: &str) -> Response<Body> {
        let signature = signature_header(SIM_CLIENT_SECRET, now().timestamp(), body.as_bytes());
        self.deliver_signed(Some(&signature), body).await
    }

    async fn deliver_signed(&self, signature: Option<&str>, body: &str) -> Response<Body> {
        self.service
            .handle(request("/webhooks/tiktok", "POST", signature, body))
            .await
    }

    async fn get(&self, job: &Job) -> Job {
        self.jobs.get(&job.id).await.unwrap().unwrap()
    }

    /// A draft job of the account, taken to `status` through the store's
    /// public API; `publish_id` is saved by init for every status past
    /// `claimed`, with `attempts` failed tries recorded.
    async fn job(&self, key: &str, publish_id: &str, status: JobStatus, attempts: u32) -> Job {
        let new = NewJob {
            upload: Upload {
                bucket: "drops".into(),
                key: format!("uploads/alice/{key}"),
                version: ObjectVersion::etag("0123"),
                size: 1000,
            },
            alias: Some("alice".into()),
            open_id: Some(OPEN_ID.into()),
            kind: JobKind::Video,
            post: PostTarget::Draft,
            caption: None,
        };
        let Claim::New(job) = self.jobs.claim(new, now()).await.unwrap() else {
            panic!("claimed before");
        };
        if status == JobStatus::Queued {
            return self
                .jobs
                .transition(&job, JobStatus::Queued, Changes::default(), now())
                .await
                .unwrap();
        }
        assert!(matches!(
            self.jobs.take_draft_slot(&job, now()).await.unwrap(),
            SlotDecision::Granted { .. }
        ));
        let job = self
            .jobs
            .save_init(&job.id, publish_id, None, None, now())
            .await
            .unwrap();
        if status == JobStatus::Uploading {
            return job;
        }
        if status == JobStatus::RetryWait {
            return self
                .jobs
                .transition(
                    &job,
                    JobStatus::RetryWait,
                    Changes {
                        attempts: Some(attempts),
                        not_before: Some(now() + TimeDelta::minutes(5)),
                        ..Changes::default()
                    },
                    now(),
                )
                .await
                .unwrap();
        }
        let changes = Changes {
            attempts: Some(attempts),
            ..Changes::default()
        };
        let job = self
            .jobs
            .transition(&job, JobStatus::Processing, changes, now())
            .await
            .unwrap();
        if status == JobStatus::Processing {
            return job;
        }
        assert_eq!(status, JobStatus::Inbox, "helper covers up to inbox");
        // (claimed jobs come from `claimed`)
        self.jobs
            .transition(&job, JobStatus::Inbox, Changes::default(), now())
            .await
            .unwrap()
    }
}

impl Env {
    /// A processing draft job of another account.
    async fn job_of(&self, open_id: &str, alias: &str, key: &str, publish_id: &str) -> Job {
        let new = NewJob {
            upload: Upload {
                bucket: "drops".into(),
                key: format!("uploads/{alias}/{key}"),
                version: ObjectVersion::etag("0123"),
                size: 1000,
            },
            alias: Some(alias.into()),
            open_id: Some(open_id.into()),
            kind: JobKind::Video,
            post: PostTarget::Draft,
            caption: None,
        };
        let Claim::New(job) = self.jobs.claim(new, now()).await.unwrap() else {
            panic!("claimed before");
        };
        let job = self
            .jobs
            .save_init(&job.id, publish_id, None, None, now())
            .await
            .unwrap();
        self.jobs
            .transition(&job, JobStatus::Processing, Changes::default(), now())
            .await
            .unwrap()
    }
}

fn publish_event(event: &str, publish_id: &str, extra: Value) -> String {
    let mut content = json!({"publish_id": publish_id, "publish_type": "INBOX_SHARE"});
    for (k, v) in extra.as_object().unwrap() {
        content[k] = v.clone();
    }
    envelope(event, OPEN_ID, content)
}

#[tokio::test]
async fn status_events_move_the_job_of_the_publish_id() {
    let env = env().await;
    let job = env
        .job("a.mp4", "v_inbox_file~v2.1", JobStatus::Processing, 0)
        .await;
    let other = env
        .job("b.mp4", "v_inbox_file~v2.2", JobStatus::Processing, 0)
        .await;

    let res = env
        .deliver(&publish_event(
            "post.publish.inbox_delivered",
            "v_inbox_file~v2.1",
            json!({}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let stored = env.get(&job).await;
    assert_eq!(stored.status, JobStatus::Inbox);
    assert_eq!(stored.tiktok_status, Some(PublishState::SendToUserInbox));
    assert_eq!(env.get(&other).await.status, JobStatus::Processing);

    // Delivered again: nothing changes.
    let res = env
        .deliver(&publish_event(
            "post.publish.inbox_delivered",
            "v_inbox_file~v2.1",
            json!({}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.get(&job).await, stored);

    let res = env
        .deliver(&publish_event(
            "post.publish.complete",
            "v_inbox_file~v2.1",
            json!({}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let published = env.get(&job).await;
    assert_eq!(published.status, JobStatus::Published);
    assert_eq!(published.tiktok_status, Some(PublishState::PublishComplete));

    // publicly_available publishes a job that was not published yet, with
    // its post id kept as a 64-bit integer.
    let big: u64 = 7_459_287_841_546_292_488;
    let res = env
        .deliver(&publish_event(
            "post.publish.publicly_available",
            "v_inbox_file~v2.2",
            json!({"post_id": big.to_string()}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let other = env.get(&other).await;
    assert_eq!(other.status, JobStatus::Published);
    assert_eq!(other.post_ids, vec![big]);

    // A finished job never moves again; an unknown publish_id is fine.
    let res = env
        .deliver(&publish_event(
            "post.publish.failed",
            "v_inbox_file~v2.1",
            json!({"reason": "internal"}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.get(&job).await, published);
    let res = env
        .deliver(&publish_event(
            "post.publish.complete",
            "v_inbox_file~v2.404",
            json!({}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(text(&res).contains("no current job"), "{}", text(&res));
}

#[tokio::test]
async fn failures_retry_or_fail_and_a_replay_is_counted_once() {
    let env = env().await;
    let retried = env
        .job("r.mp4", "v_inbox_file~v2.10", JobStatus::Processing, 3)
        .await;
    let body = publish_event(
        "post.publish.failed",
        "v_inbox_file~v2.10",
        json!({"reason": "internal"}),
    );
    let res = env.deliver(&body).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let after = env.get(&retried).await;
    assert_eq!(after.status, JobStatus::RetryWait);
    assert_eq!(after.attempts, 4);
    assert_eq!(after.fail_reason, Some(FailReason::Internal));
    assert_eq!(after.tiktok_status, Some(PublishState::Failed));
    assert!(after.not_before.is_some());

    // The same delivery again, twice at once: had it counted, the fifth
    // attempt would fail the job for good.
    let (a, b) = tokio::join!(env.deliver(&body), env.deliver(&body));
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    assert_eq!(env.get(&retried).await, after);

    let permanent = env
        .job("f.mp4", "v_inbox_file~v2.11", JobStatus::Processing, 0)
        .await;
    let res = env
        .deliver(&publish_event(
            "post.publish.failed",
            "v_inbox_file~v2.11",
            json!({"reason": "file_format_check_failed"}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let failed = env.get(&permanent).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.attempts, 0);
    let error = failed.last_error.unwrap();
    assert_eq!(error.code, "file_format_check_failed");
    assert!(error.message.contains("format"), "{}", error.message);
}

#[tokio::test]
async fn bad_signatures_are_refused_and_change_nothing() {
    let env = env().await;
    let job = env
        .job("s.mp4", "v_inbox_file~v2.20", JobStatus::Processing, 0)
        .await;
    let body = publish_event(
        "post.publish.inbox_delivered",
        "v_inbox_file~v2.20",
        json!({}),
    );
    let t = now().timestamp();
    let forged = signature_header("not-the-client-secret", t, body.as_bytes());
    let stale = signature_header(SIM_CLIENT_SECRET, t - 301, body.as_bytes());
    let future = signature_header(SIM_CLIENT_SECRET, t + 400, body.as_bytes());
    let good = signature_header(SIM_CLIENT_SECRET, t, body.as_bytes());
    let tampered = body.replace("v2.20", "v2.21");
    for (signature, sent) in [
        (Some(forged.as_str()), body.as_str()),
        (Some(stale.as_str()), body.as_str()),
        (Some(future.as_str()), body.as_str()),
        (Some(good.as_str()), tampered.as_str()),
        (Some("t=1,s=zz"), body.as_str()),
        (None, body.as_str()),
    ] {
        let res = env.deliver_signed(signature, sent).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{signature:?}");
    }
    assert_eq!(env.get(&job).await, job);
    // The good one still works (nothing above used it up).
    let res = env.deliver_signed(Some(&good), &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.get(&job).await.status, JobStatus::Inbox);

    // Neither the secret nor a signature ever reaches the logs.
    let logs = captured_logs();
    assert!(logs.contains("webhook refused"), "the refusals are logged");
    for secret in [SIM_CLIENT_SECRET, &forged[13..], &good[13..], &stale[13..]] {
        assert!(!logs.contains(secret), "{secret} was logged");
    }
}

#[tokio::test]
async fn malformed_unknown_and_foreign_deliveries() {
    let env = env().await;
    let job = env
        .job("m.mp4", "v_inbox_file~v2.30", JobStatus::Processing, 0)
        .await;

    // Signed, but not JSON, or content not a string: 400 (TikTok retries).
    let res = env.deliver("{\"client_key\": ").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let object_content = json!({
        "client_key": SIM_CLIENT_KEY, "event": "post.publish.inbox_delivered",
        "create_time": now().timestamp(), "user_openid": OPEN_ID,
        "content": {"publish_id": "v_inbox_file~v2.30"},
    })
    .to_string();
    let res = env.deliver(&object_content).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // An event nobody acts on: 200, ignored.
    let res = env
        .deliver(&envelope(
            "video.publish.completed",
            OPEN_ID,
            json!({"share_id": "x"}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(text(&res).contains("ignored"), "{}", text(&res));

    // Signed with our secret but for another app.
    let foreign = publish_event(
        "post.publish.inbox_delivered",
        "v_inbox_file~v2.30",
        json!({}),
    )
    .replace(SIM_CLIENT_KEY, "another-app");
    let res = env.deliver(&foreign).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The event's user is not the job's account.
    let res = env
        .deliver(&envelope(
            "post.publish.inbox_delivered",
            "open-mallory",
            json!({"publish_id": "v_inbox_file~v2.30"}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.get(&job).await, job);

    // Only POST /webhooks/tiktok.
    let res = env
        .service
        .handle(request("/webhooks/tiktok", "GET", None, ""))
        .await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let res = env
        .service
        .handle(request("/webhooks/other", "POST", None, ""))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn authorization_removed_revokes_the_account_and_fails_its_unfinished_jobs() {
    let env = env().await;
    let held_a = env.job("q1.mp4", "", JobStatus::Queued, 0).await;
    let held_b = env.job("q2.mp4", "", JobStatus::Queued, 0).await;
    let waiting = env
        .job("r.mp4", "v_inbox_file~v2.39", JobStatus::RetryWait, 1)
        .await;
    let uploading = env
        .job("u.mp4", "v_inbox_file~v2.41", JobStatus::Uploading, 0)
        .await;
    let working = env
        .job("w.mp4", "v_inbox_file~v2.40", JobStatus::Processing, 0)
        .await;
    let delivered = env
        .job("d.mp4", "v_inbox_file~v2.42", JobStatus::Inbox, 0)
        .await;
    let not_sent = match env
        .jobs
        .claim(
            NewJob {
                upload: Upload {
                    bucket: "drops".into(),
                    key: "uploads/alice/c.mp4".into(),
                    version: ObjectVersion::etag("0123"),
                    size: 1000,
                },
                alias: Some("alice".into()),
                open_id: Some(OPEN_ID.into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: None,
            },
            now(),
        )
        .await
        .unwrap()
    {
        Claim::New(job) => job,
        Claim::Existing(job) => panic!("{} claimed before", job.id),
    };
    // Another account's job is not touched.
    env.connect("open-bob", "bob").await;
    let bobs = env
        .job_of("open-bob", "bob", "b.mp4", "v_inbox_file~v2.43")
        .await;

    let body = envelope("authorization.removed", OPEN_ID, json!({"reason": 1}));
    let res = env.deliver(&body).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    assert!(
        text(&res).contains("6 unfinished jobs failed"),
        "{}",
        text(&res)
    );
    let account = env.accounts.get(OPEN_ID).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Revoked);
    let reason = account.state_reason.clone().unwrap();
    assert!(reason.contains("reason 1"), "{reason}");
    assert!(reason.contains("disconnected"), "{reason}");
    for (job, was_sent) in [
        (&held_a, false),
        (&held_b, false),
        (&waiting, true),
        (&uploading, true),
        (&working, true),
        (&not_sent, false),
    ] {
        let job = env.get(job).await;
        assert_eq!(job.status, JobStatus::Failed, "{}", job.upload.key);
        let error = job.last_error.unwrap();
        assert_eq!(error.code, "auth_removed");
        // Reads as sentences: what happened, why, what to do.
        let sent = if was_sent {
            "so TikTok stops processing this upload"
        } else {
            "so this upload was not sent"
        };
        assert_eq!(
            error.message,
            format!(
                "TikTok removed this app's access to the account: the user disconnected \
                 the app (reason 1), {sent}. Connect the account again, then upload the file again."
            ),
        );
    }
    assert!(
        env.jobs
            .queued_for_account(OPEN_ID, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A draft already in the inbox is the creator's; another account's
    // jobs are not this event's.
    assert_eq!(env.get(&delivered).await, delivered);
    assert_eq!(env.get(&bobs).await, bobs);

    // Delivered again: nothing changes.
    let before = (env.get(&held_a).await, env.get(&working).await);
    let res = env.deliver(&body).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        text(&res).contains("0 unfinished jobs failed"),
        "{}",
        text(&res)
    );
    assert_eq!(env.accounts.get(OPEN_ID).await.unwrap().unwrap(), account);
    assert_eq!((env.get(&held_a).await, env.get(&working).await), before);
}

/// A creator with a large backlog: one delivery stops within its budget
/// (the budget is looked at before every job, not only between pages),
/// answers 500 so that TikTok delivers it again, and the deliveries that
/// follow go on until every job is failed.
#[tokio::test]
async fn a_large_removal_stops_within_its_budget_and_redeliveries_finish_it() {
    const JOBS: usize = 150;
    let budget = Duration::from_millis(800);
    let env = env_with_removal_budget(Some(budget)).await;
    // All in the first shard the handler reads, so that one unbounded page
    // would hold them all.
    let mut jobs = Vec::new();
    let mut n = 0;
    while jobs.len() < JOBS {
        n += 1;
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "drops".into(),
                    key: format!("uploads/alice/backlog-{n}.mp4"),
                    version: ObjectVersion::etag("0123"),
                    size: 1000,
                },
                alias: Some("alice".into()),
                open_id: Some(OPEN_ID.into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: None,
            },
            now(),
        );
        if job.id.shard() != 0 {
            continue;
        }
        job.status = JobStatus::Processing;
        job.attempt = UploadAttempt::Pulled {
            publish_id: format!("v_inbox_file~v2.{n}"),
        };
        jobs.push(job);
    }
    env.jobs.put_many(&jobs).await.unwrap();
    let body = envelope("authorization.removed", OPEN_ID, json!({"reason": 1}));
    let failed = |list: Vec<Job>| {
        list.iter()
            .filter(|j| j.status == JobStatus::Failed)
            .count()
    };
    let current = || async {
        let mut list = Vec::new();
        for job in &jobs {
            list.push(env.get(job).await);
        }
        list
    };

    let started = std::time::Instant::now();
    let res = env.deliver(&body).await;
    let took = started.elapsed();
    assert_eq!(
        res.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        text(&res)
    );
    let after_first = failed(current().await);
    assert!(after_first >= 1, "work was done within the budget");
    assert!(
        after_first < JOBS,
        "the budget stopped the delivery within the page ({after_first} of {JOBS} failed)"
    );
    assert!(took < budget + Duration::from_secs(2), "{took:?}");
    assert_eq!(
        env.accounts.get(OPEN_ID).await.unwrap().unwrap().state,
        AccountState::Revoked
    );

    // TikTok's redeliveries go on where the last one stopped, each one
    // failing at least one more job however slow the store (so they end).
    let mut deliveries = 1;
    let mut before = after_first;
    loop {
        let res = env.deliver(&body).await;
        deliveries += 1;
        if res.status() == StatusCode::OK {
            break;
        }
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let now_failed = failed(current().await);
        assert!(
            now_failed > before,
            "delivery {deliveries} made progress ({before} -> {now_failed})"
        );
        before = now_failed;
    }
    println!(
        "first delivery: {after_first} of {JOBS} failed in {took:?}; {deliveries} deliveries in all"
    );
    assert_eq!(failed(current().await), JOBS);
}

#[tokio::test]
async fn a_removal_made_after_the_connection_revokes_it_whatever_refreshed_since() {
    let env = env().await;
    let connected = env.accounts.get(OPEN_ID).await.unwrap().unwrap();
    let connected_at = connected.connected_at.expect("a login records when");
    // A token refresh after it moves `updated_at` on (as the checker's
    // sweep does), a second later at least.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    env.accounts
        .record_token_expiry(OPEN_ID, now() + TimeDelta::hours(2), None)
        .await
        .unwrap();
    let refreshed = env.accounts.get(OPEN_ID).await.unwrap().unwrap();
    assert!(refreshed.updated_at > connected_at);
    assert_eq!(refreshed.connected_at, Some(connected_at));
    // The removal was made at the connection, before that refresh: it is
    // about this grant, not an old one.
    let body = json!({
        "client_key": SIM_CLIENT_KEY, "event": "authorization.removed",
        "create_time": connected_at.timestamp(), "user_openid": OPEN_ID,
        "content": json!({"reason": 5}).to_string(),
    })
    .to_string();
    let res = env.deliver(&body).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let account = env.accounts.get(OPEN_ID).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Revoked, "{}", text(&res));
}

#[tokio::test]
async fn a_failure_of_a_retried_attempt_is_applied() {
    let env = env().await;
    let job = env
        .job("again.mp4", "v_inbox_file~v2.50", JobStatus::Processing, 0)
        .await;
    let res = env
        .deliver(&publish_event(
            "post.publish.failed",
            "v_inbox_file~v2.50",
            json!({"reason": "internal"}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let waiting = env.get(&job).await;
    assert_eq!(
        (waiting.status, waiting.attempts),
        (JobStatus::RetryWait, 1)
    );
    // The retry: back to claimed, a new init, bytes sent.
    let claimed = env
        .jobs
        .transition(&waiting, JobStatus::Claimed, Changes::default(), now())
        .await
        .unwrap();
    assert_eq!(
        claimed.tiktok_status, None,
        "the old attempt's status is gone"
    );
    assert_eq!(claimed.fail_reason, None);
    assert!(matches!(
        env.jobs.take_draft_slot(&claimed, now()).await.unwrap(),
        SlotDecision::Granted { .. }
    ));
    let uploading = env
        .jobs
        .save_init(&claimed.id, "v_inbox_file~v2.51", None, None, now())
        .await
        .unwrap();
    env.jobs
        .transition(&uploading, JobStatus::Processing, Changes::default(), now())
        .await
        .unwrap();
    // TikTok fails the new attempt too: that is a second failure.
    let res = env
        .deliver(&publish_event(
            "post.publish.failed",
            "v_inbox_file~v2.51",
            json!({"reason": "internal"}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let again = env.get(&job).await;
    assert_eq!(
        (again.status, again.attempts),
        (JobStatus::RetryWait, 2),
        "{}",
        text(&res)
    );
    assert_eq!(
        again.status_publish_id.as_deref(),
        Some("v_inbox_file~v2.51")
    );
    // And its replay is not.
    let res = env
        .deliver(&publish_event(
            "post.publish.failed",
            "v_inbox_file~v2.51",
            json!({"reason": "internal"}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.get(&job).await, again);
}

#[tokio::test]
async fn a_public_post_gets_its_link_when_the_username_is_known() {
    let env = env().await;
    env.accounts
        .record_username(OPEN_ID, "alice.tt")
        .await
        .unwrap();
    let job = env
        .job("public.mp4", "v_inbox_file~v2.60", JobStatus::Inbox, 0)
        .await;
    let big: u64 = 7_459_287_841_546_292_488;
    let res = env
        .deliver(&publish_event(
            "post.publish.publicly_available",
            "v_inbox_file~v2.60",
            json!({"post_id": big}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", text(&res));
    let published = env.get(&job).await;
    assert_eq!(published.status, JobStatus::Published);
    assert_eq!(published.post_ids, vec![big]);
    assert_eq!(
        published.share_urls,
        vec![format!("https://www.tiktok.com/@alice.tt/video/{big}")]
    );
    // A second post of the same draft adds its own link.
    let res = env
        .deliver(&publish_event(
            "post.publish.publicly_available",
            "v_inbox_file~v2.60",
            json!({"post_id": big + 1}),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let both = env.get(&job).await;
    assert_eq!(both.post_ids, vec![big, big + 1]);
    assert_eq!(both.share_urls.len(), 2);
}

#[tokio::test]
async fn an_old_removal_does_not_revoke_a_later_connection() {
    let env = env().await;
    // Made a minute before the account was (re)connected, delivered now.
    let body = json!({
        "client_key": SIM_CLIENT_KEY, "event": "authorization.removed",
        "create_time": now().timestamp() - 60, "user_openid": OPEN_ID,
        "content": json!({"reason": 1}).to_string(),
    })
    .to_string();
    let res = env.deliver(&body).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(text(&res).contains("connected again"), "{}", text(&res));
    let account = env.accounts.get(OPEN_ID).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Active);
}

// --- End to end: the simulator signs and sends, the handler receives. ---

/// An HTTP receiver in front of the real handler: what API Gateway does.
async fn serve(service: Arc<WebhookService>) -> String {
    async fn forward(
        axum::extract::State(service): axum::extract::State<Arc<WebhookService>>,
        request: axum::extract::Request,
    ) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let request = lambda_http::http::Request::from_parts(parts, Body::Binary(bytes.to_vec()));
        let (parts, body) = service.handle(request).await.into_parts();
        let bytes = match body {
            Body::Text(t) => t.into_bytes(),
            Body::Binary(b) => b,
            _ => Vec::new(),
        };
        axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
    }
    let app = axum::Router::new()
        .route("/webhooks/tiktok", axum::routing::post(forward))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/tiktok", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Waits until the simulator has `count` deliveries, all answered.
async fn deliveries(sim: &TestSim, count: usize) -> Vec<Value> {
    for _ in 0..500 {
        let list = sim.get("/_sim/webhooks").await;
        let list = list.as_array().unwrap().clone();
        if list.len() >= count && list.iter().all(|d| d["done"] == true) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "deliveries did not arrive: {}",
        sim.get("/_sim/webhooks").await
    );
}

/// An inbox FILE_UPLOAD init at the simulator: (publish_id, upload_url).
async fn sim_init(sim: &TestSim, token: &str) -> (String, String) {
    let res = reqwest::Client::new()
        .post(format!(
            "{}/v2/post/publish/inbox/video/init/",
            sim.base_url()
        ))
        .bearer_auth(token)
        .json(&json!({"source_info": {
            "source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 1000, "total_chunk_count": 1
        }}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    (
        body["data"]["publish_id"].as_str().unwrap().to_owned(),
        body["data"]["upload_url"].as_str().unwrap().to_owned(),
    )
}

async fn sim_put(url: &str) {
    let res = reqwest::Client::new()
        .put(url)
        .header("Content-Type", "video/mp4")
        .header("Content-Range", "bytes 0-999/1000")
        .body(tiktok_drafts_tests::fake_mp4(1000, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// Saves a publish the simulator made as a processing job.
async fn job_for(env: &Env, key: &str, publish_id: &str, attempts: u32) -> Job {
    env.job(key, publish_id, JobStatus::Processing, attempts)
        .await
}

#[tokio::test]
async fn the_simulators_deliveries_are_verified_and_applied() {
    let env = env().await;
    let url = serve(env.service.clone()).await;
    let sim = TestSim::start(|s| s.webhook_url = Some(url.clone())).await;
    sim.seed_user(OPEN_ID, json!({})).await;
    let token = sim
        .tokens(OPEN_ID, &["user.info.basic", "video.upload"])
        .await;
    let token = token.access_token.expose().to_owned();

    // A draft reaches the inbox, then the creator posts it.
    let (publish_id, upload_url) = sim_init(&sim, &token).await;
    let job = job_for(&env, "e1.mp4", &publish_id, 0).await;
    sim_put(&upload_url).await; // the simulator moves it to SEND_TO_USER_INBOX
    let list = deliveries(&sim, 1).await;
    assert_eq!(list[0]["event"], "post.publish.inbox_delivered");
    assert_eq!(list[0]["response_status"], 200, "{}", list[0]);
    assert_eq!(env.get(&job).await.status, JobStatus::Inbox);
    sim.post(
        &format!("/_sim/publishes/{publish_id}/status"),
        json!({"status": "PUBLISH_COMPLETE"}),
    )
    .await;
    let list = deliveries(&sim, 3).await;
    assert_eq!(list[1]["event"], "post.publish.complete");
    assert_eq!(list[2]["event"], "post.publish.publicly_available");
    assert!(list.iter().all(|d| d["response_status"] == 200), "{list:?}");
    assert_eq!(env.get(&job).await.status, JobStatus::Published);
    // The post id arrives after `complete` and is recorded on the
    // published job, as the 64-bit integer the simulator gave it.
    let record = sim.get(&format!("/_sim/publishes/{publish_id}")).await;
    let sim_ids: Vec<u64> = record["post_ids"]
        .as_array()
        .expect("post ids")
        .iter()
        .filter_map(|v| v.as_u64())
        .collect();
    assert!(!sim_ids.is_empty(), "{record}");
    assert_eq!(env.get(&job).await.post_ids, sim_ids);

    // A passing failure, then TikTok delivering it again: counted once.
    let mut settings = sim.get("/_sim/settings").await;
    settings["auto_advance"] = json!(false);
    sim.control(reqwest::Method::PUT, "/_sim/settings", Some(settings))
        .await;
    let (failing, upload_url) = sim_init(&sim, &token).await;
    let retried = job_for(&env, "e2.mp4", &failing, 1).await;
    sim_put(&upload_url).await; // stays PROCESSING_UPLOAD: no webhook
    sim.post(
        &format!("/_sim/publishes/{failing}/status"),
        json!({"status": "FAILED", "fail_reason": "internal"}),
    )
    .await;
    let list = deliveries(&sim, 4).await;
    assert_eq!(list.len(), 4, "{list:?}");
    assert_eq!(list[3]["event"], "post.publish.failed");
    assert_eq!(list[3]["response_status"], 200);
    let after = env.get(&retried).await;
    assert_eq!((after.status, after.attempts), (JobStatus::RetryWait, 2));
    sim.post("/_sim/webhooks/3/redeliver", json!({})).await;
    let list = deliveries(&sim, 5).await;
    assert_eq!(list[4]["redelivery_of"], 3);
    assert_eq!(list[4]["response_status"], 200);
    assert_eq!(env.get(&retried).await, after);

    // The creator removes the app.
    let held = env.job("e3.mp4", "", JobStatus::Queued, 0).await;
    sim.post(
        &format!("/_sim/users/{OPEN_ID}/deauthorize"),
        json!({"reason": 1}),
    )
    .await;
    let list = deliveries(&sim, 6).await;
    assert_eq!(list[5]["event"], "authorization.removed");
    assert_eq!(list[5]["response_status"], 200, "{}", list[5]);
    let account = env.accounts.get(OPEN_ID).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Revoked);
    assert_eq!(env.get(&held).await.status, JobStatus::Failed);

    // A delivery signed with another secret would have been refused: the
    // simulator's signing and the handler's check agree only when both are
    // right (a sim with another secret is refused).
    let forged_sim = TestSim::start(|s| {
        s.webhook_url = Some(url.clone());
        s.client_secret = "some-other-secret".into();
    })
    .await;
    forged_sim.seed_user(OPEN_ID, json!({})).await;
    forged_sim
        .post(&format!("/_sim/users/{OPEN_ID}/deauthorize"), json!({}))
        .await;
    let list = deliveries(&forged_sim, 1).await;
    assert_eq!(list[0]["response_status"], 401, "{}", list[0]);
    forged_sim.shutdown().await;
    sim.shutdown().await;
}
