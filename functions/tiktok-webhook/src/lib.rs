//! The webhook function: `POST /webhooks/tiktok`, TikTok's signed events.
//!
//! Every request is authenticated first (`TikTok-Signature`, HMAC-SHA256 with
//! the app's client secret, see [`shared::webhook`]): a missing, forged or
//! stale signature gets 401 and changes nothing. Then the event is applied,
//! synchronously but with small, bounded work, so TikTok gets its 200 at once:
//!
//! | event | effect |
//! |---|---|
//! | `post.publish.inbox_delivered` | draft job -> `inbox` (no news for a direct post) |
//! | `post.publish.complete` | job -> `published` (a draft the creator posted, or a direct post that is up) |
//! | `post.publish.publicly_available` | job -> `published` with the post id (and its public link when the account's username is known), if not published yet |
//! | `post.publish.failed` | the same mapping as the status checker: `retry_wait` for a passing reason, else `failed` (or `cancelled`) |
//! | `post.publish.no_longer_publicaly_available` | logged only (no job status for it) |
//! | `authorization.removed` | account -> `revoked`, its token secret deleted; its unfinished jobs but drafts in the inbox (held, waiting to retry, not yet sent, uploading, processing, stuck) -> `failed` (`auth_removed`) |
//! | anything else | 200, logged, ignored |
//!
//! Deliveries come at least once and TikTok retries anything but a 200 for
//! up to 72 hours, so applying one twice must change nothing; see
//! [`decide`] for how. A body that is signed but not valid JSON gets 400 (and
//! is logged: TikTok will retry it); a store failure gets 500, so TikTok
//! retries later.

pub mod config;

use std::fmt;

use chrono::{DateTime, Utc};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shared::Secret;
use shared::accounts::{AccountError, AccountState, Accounts};
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::jobs::{
    Changes, Decision, Job, JobError, JobId, JobRetryPolicy, JobStatus, Jobs, LastError,
    RetryWaitNews, UNFINISHED_SHARDS, after_job_status, after_retry_wait_status, check_transition,
};
use shared::tiktok::{PublishState, PublishStatus};
use shared::tokens::{SecretsManagerTokenStore, TokenError, TokenStore as _};
use shared::webhook::{self, Event, SIGNATURE_HEADER, Webhook, WebhookError};

pub use config::WebhookConfig;

/// The path TikTok is told to deliver to (after any API stage prefix).
pub const ROUTE: &str = "/webhooks/tiktok";

/// How often one delivery re-reads a job that someone else moved meanwhile.
const MOVE_ATTEMPTS: u32 = 4;

/// How long one `authorization.removed` delivery may spend failing the
/// account's jobs before it answers 500, so that TikTok delivers it again
/// and the next delivery goes on (it is idempotent): the answer stays well
/// inside API Gateway's 30 s, however large the backlog.
const REMOVAL_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// Index entries read per page while failing a removed account's jobs.
const REMOVAL_PAGE: u32 = 100;

/// The error code held jobs get when their account's authorization is gone.
pub const AUTH_REMOVED: &str = "auth_removed";

/// Why the function could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] shared::tiktok::config::ConfigError),
    #[error(transparent)]
    AppSecret(#[from] shared::app_secret::AppSecretError),
}

/// Why an authentic delivery could not be applied now (answered 500, so
/// TikTok delivers it again later).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error("the job of publish_id {publish_id} kept changing while the event was applied")]
    KeptChanging { publish_id: String },
    /// Part of the account's jobs were failed; the rest wait for TikTok's
    /// next delivery of the same event.
    #[error("account {open_id}: {failed} jobs failed so far; the rest on the next delivery")]
    RemovalUnfinished { open_id: String, failed: u32 },
    #[error(transparent)]
    Tokens(#[from] TokenError),
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    JobMoved {
        job_id: JobId,
        from: JobStatus,
        to: JobStatus,
    },
    /// No job holds this `publish_id` now: another deployment's upload, or
    /// an earlier attempt of a job that was retried since.
    NoJob,
    /// The event is known but changes nothing (already applied, a finished
    /// job, ...).
    Unchanged(&'static str),
    AccountRevoked {
        open_id: String,
        /// Whether the account was revoked before (a repeated delivery).
        already: bool,
        /// The account's unfinished jobs this delivery failed.
        jobs_failed: u32,
    },
    /// An event this function does not act on.
    Ignored(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::JobMoved { job_id, from, to } => write!(f, "job {job_id} moved {from} -> {to}"),
            Self::NoJob => f.write_str("no current job has this publish_id"),
            Self::Unchanged(why) => write!(f, "unchanged: {why}"),
            Self::AccountRevoked {
                open_id,
                already,
                jobs_failed,
            } => write!(
                f,
                "account {open_id} revoked{}; {jobs_failed} unfinished jobs failed",
                if *already { " (already)" } else { "" }
            ),
            Self::Ignored(event) => write!(f, "event {event} ignored"),
        }
    }
}

/// What [`decide`] wants done to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Move {
        to: JobStatus,
        changes: Changes,
    },
    /// A published job learns its post id (it usually comes after
    /// `complete`, once the post is public).
    AddPostIds(Vec<u64>),
    Nothing(&'static str),
}

/// What a `post.publish.*` event means for `job` (the job whose current
/// `publish_id` the event names). Plain code: the handler applies it.
///
/// Idempotency. Status moves are idempotent by themselves: the state machine
/// answers "stay" when the job already has the status, and a finished job
/// never moves. The one event that is not is `failed` with a passing reason,
/// which spends an attempt: applied twice it would count twice (and could
/// fail a job that had attempts left). Two guards were possible:
///
/// - a "delivery seen" item (`WEBHOOK#<sha256 of body>`, conditional put with
///   a TTL) written before applying. It is a second write that cannot share
///   a transaction with the job's move (the job store owns that), so a crash
///   between them either loses the event or applies it twice; and it only
///   catches the *same delivery* twice, not the status checker having already
///   applied the same FAILED it polled.
/// - the job itself: TikTok's FAILED is final for a publish, and a job
///   records `tiktok_status`, and the publish_id it is about
///   (`status_publish_id`), in the same conditional write that moves it. So
///   "the job records FAILED for this publish_id" means exactly "this
///   failure was applied", by a delivery or by the checker, with no extra
///   item and no window between two writes. A retry gets a new publish_id
///   (and the move back to `claimed` clears the old status), so a failure of
///   the new attempt is never mistaken for the old one.
///
/// The second is used. Two deliveries racing on the same reading are settled
/// by the store's optimistic check: the loser gets a conflict, re-reads, and
/// finds FAILED recorded.
pub fn decide(job: &Job, event: &Event, now: DateTime<Utc>, policy: &JobRetryPolicy) -> Plan {
    if job.status == JobStatus::Published
        && let Event::PubliclyAvailable { post_id, .. } = event
    {
        if job.post_ids.contains(post_id) {
            return Plan::Nothing("the post id is recorded already");
        }
        return Plan::AddPostIds(vec![*post_id]);
    }
    if job.status.is_final() {
        return Plan::Nothing("the job is finished");
    }
    let status = match event {
        Event::InboxDelivered(_) => publish_status(PublishState::SendToUserInbox, None, vec![]),
        Event::Complete(_) => {
            publish_status(PublishState::PublishComplete, None, job.post_ids.clone())
        }
        Event::PubliclyAvailable { post_id, .. } => {
            let mut ids = job.post_ids.clone();
            if !ids.contains(post_id) {
                ids.push(*post_id);
            }
            publish_status(PublishState::PublishComplete, None, ids)
        }
        Event::Failed { publish, reason } => {
            if job.failure_recorded_for(&publish.publish_id) {
                return Plan::Nothing("this failure is already recorded on the job");
            }
            let status = publish_status(PublishState::Failed, Some(reason.clone()), vec![]);
            if job.status == JobStatus::RetryWait
                && after_retry_wait_status(job, &status, now, policy) == RetryWaitNews::Retry
            {
                // Waiting for a new attempt already (an earlier error of the
                // same attempt): this is the same failure seen from TikTok,
                // which the state machine says is not counted again.
                return Plan::Nothing("the job is already waiting to retry");
            }
            status
        }
        Event::NoLongerPubliclyAvailable { .. } => {
            return Plan::Nothing("a post taken down has no job status");
        }
        Event::AuthorizationRemoved { .. } | Event::Unknown(_) => {
            return Plan::Nothing("not a publish event");
        }
    };
    // The checker's mapping: a direct post's success is PUBLISH_COMPLETE
    // only, and a draft failed after it reached the inbox is not retried.
    let step = match after_job_status(job, &status, now, policy) {
        Decision::Stay => return Plan::Nothing("the job already has this status"),
        Decision::Move(step) => step,
    };
    if check_transition(job.status, step.to, job.publish_id().is_some()).is_err() {
        return Plan::Nothing("not a move the job can make from its status");
    }
    Plan::Move {
        to: step.to,
        changes: Changes::from(step).with_tiktok_status(&status),
    }
}

fn publish_status(
    status: PublishState,
    fail_reason: Option<shared::tiktok::FailReason>,
    post_ids: Vec<u64>,
) -> PublishStatus {
    PublishStatus {
        status,
        fail_reason,
        post_ids,
        uploaded_bytes: None,
        downloaded_bytes: None,
    }
}

/// Everything a delivery needs, built once per cold start.
pub struct WebhookService {
    client_key: String,
    client_secret: Secret,
    jobs: Jobs,
    accounts: Accounts,
    /// The account token secrets: a revoked account's is deleted.
    tokens: SecretsManagerTokenStore,
    clock: Clock,
    policy: JobRetryPolicy,
    /// How long one `authorization.removed` delivery may spend failing jobs
    /// ([`REMOVAL_BUDGET`] unless a test shortens it).
    removal_budget: std::time::Duration,
}

impl WebhookService {
    /// Reads the configuration and the app secret once.
    pub async fn from_env(aws: &AwsClients) -> Result<Self, StartupError> {
        let config = WebhookConfig::from_env()?;
        Self::new(&config, aws, Clock::system()).await
    }

    pub async fn new(
        config: &WebhookConfig,
        aws: &AwsClients,
        clock: Clock,
    ) -> Result<Self, StartupError> {
        let app =
            shared::app_secret::load_app_credentials(&aws.secrets, &config.app_secret_id).await?;
        Ok(Self {
            client_key: app.client_key,
            client_secret: app.client_secret,
            jobs: Jobs::new(aws.dynamodb.clone(), &config.table),
            accounts: Accounts::new(aws.dynamodb.clone(), &config.table),
            tokens: SecretsManagerTokenStore::new(aws.secrets.clone(), &config.secrets_prefix),
            clock,
            policy: JobRetryPolicy::default(),
            removal_budget: REMOVAL_BUDGET,
        })
    }

    /// Another budget for `authorization.removed` deliveries (tests).
    pub fn with_removal_budget(mut self, budget: std::time::Duration) -> Self {
        self.removal_budget = budget;
        self
    }

    /// Routes one HTTP request. Never fails: every outcome is an answer.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if !request.uri().path().trim_end_matches('/').ends_with(ROUTE) {
            return answer(StatusCode::NOT_FOUND, "error", "not found");
        }
        if request.method() != Method::POST {
            let mut res = answer(StatusCode::METHOD_NOT_ALLOWED, "error", "use POST");
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return res;
        }
        let signature = match request.headers().get(SIGNATURE_HEADER) {
            None => None,
            Some(value) => match value.to_str() {
                Ok(text) => Some(text),
                Err(_) => {
                    return self.refuse(&WebhookError::MalformedSignature("not ASCII"));
                }
            },
        };
        let body: &[u8] = match request.body() {
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        };
        self.deliver(signature, body).await
    }

    /// Checks and applies one delivery: the `TikTok-Signature` value and the
    /// raw body.
    pub async fn deliver(&self, signature: Option<&str>, body: &[u8]) -> Response<Body> {
        if let Err(err) = webhook::verify(signature, body, &self.client_secret, self.clock.now()) {
            return self.refuse(&err);
        }
        let delivery = match webhook::parse(body) {
            Ok(delivery) => delivery,
            Err(err) => {
                // Authentic but unreadable: TikTok retries a non-200, so this
                // shows up again until someone looks.
                tracing::error!(error = %err, bytes = body.len(), "signed webhook with a malformed body");
                return answer(StatusCode::BAD_REQUEST, "error", "malformed body");
            }
        };
        if delivery.client_key != self.client_key {
            tracing::warn!(
                event = %delivery.event_name,
                client_key = %delivery.client_key,
                "webhook for another app refused"
            );
            return answer(StatusCode::UNAUTHORIZED, "error", "not for this app");
        }
        if matches!(delivery.event, Event::AuthorizationRemoved { .. })
            && delivery.user_openid.is_empty()
        {
            tracing::error!("authorization.removed without user_openid");
            return answer(StatusCode::BAD_REQUEST, "error", "malformed body");
        }
        let publish_id = delivery.event.publish().map(|p| p.publish_id.as_str());
        match self.apply(&delivery).await {
            Ok(outcome) => {
                tracing::info!(
                    event = %delivery.event_name,
                    publish_id,
                    open_id = %delivery.user_openid,
                    create_time = delivery.create_time,
                    outcome = %outcome,
                    "webhook applied"
                );
                answer(StatusCode::OK, "result", &outcome.to_string())
            }
            Err(err) => {
                tracing::error!(
                    event = %delivery.event_name,
                    publish_id,
                    open_id = %delivery.user_openid,
                    error = %err,
                    "webhook not applied; TikTok will deliver it again"
                );
                answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error",
                    "temporarily unavailable",
                )
            }
        }
    }

    /// 401, with the reason in the log only (never the header's value).
    fn refuse(&self, err: &WebhookError) -> Response<Body> {
        tracing::warn!(reason = %err, "webhook refused: signature");
        answer(StatusCode::UNAUTHORIZED, "error", "signature not accepted")
    }

    /// Applies an authentic delivery.
    pub async fn apply(&self, delivery: &Webhook) -> Result<Outcome, ApplyError> {
        match &delivery.event {
            Event::AuthorizationRemoved { reason } => {
                self.authorization_removed(delivery, *reason).await
            }
            Event::Unknown(name) => Ok(Outcome::Ignored(name.clone())),
            event => match event.publish() {
                Some(publish) => self.publish_event(delivery, &publish.publish_id).await,
                None => Ok(Outcome::Ignored(delivery.event_name.clone())),
            },
        }
    }

    async fn publish_event(
        &self,
        delivery: &Webhook,
        publish_id: &str,
    ) -> Result<Outcome, ApplyError> {
        for _ in 0..MOVE_ATTEMPTS {
            let Some(job) = self.jobs.by_publish_id(publish_id).await? else {
                return Ok(Outcome::NoJob);
            };
            if !delivery.user_openid.is_empty()
                && job
                    .open_id
                    .as_deref()
                    .is_some_and(|o| o != delivery.user_openid)
            {
                tracing::warn!(
                    job_id = %job.id,
                    publish_id,
                    job_open_id = job.open_id.as_deref(),
                    event_open_id = %delivery.user_openid,
                    "webhook names another account than the job's"
                );
                return Ok(Outcome::Unchanged(
                    "the event's user is not the job's account",
                ));
            }
            let now = self.clock.now();
            let (to, mut changes) = match decide(&job, &delivery.event, now, &self.policy) {
                Plan::Nothing(why) => return Ok(Outcome::Unchanged(why)),
                Plan::Move { to, changes } => (to, changes),
                Plan::AddPostIds(ids) => {
                    let links = self.share_links(&job, &ids).await;
                    match self
                        .jobs
                        .add_post_ids_with_links(&job, &ids, &links, now)
                        .await
                    {
                        Ok(_) => return Ok(Outcome::Unchanged("post id recorded")),
                        Err(JobError::Conflict { .. }) => continue,
                        Err(err) => return Err(err.into()),
                    }
                }
            };
            if !changes.post_ids.is_empty() {
                changes.share_urls = self.share_links(&job, &changes.post_ids).await;
            }
            match self.jobs.transition(&job, to, changes, now).await {
                Ok(moved) => {
                    return Ok(Outcome::JobMoved {
                        job_id: moved.id,
                        from: job.status,
                        to: moved.status,
                    });
                }
                // Someone (the checker, the upload, another delivery) moved
                // it meanwhile: read it again and decide again.
                Err(JobError::Conflict { .. } | JobError::IllegalTransition { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApplyError::KeptChanging {
            publish_id: publish_id.to_owned(),
        })
    }

    /// The posts' public links, when the job's account has a known username
    /// (recorded by the status checker from `creator_info`). A failed read
    /// only costs the links, never the event.
    async fn share_links(&self, job: &Job, post_ids: &[u64]) -> Vec<String> {
        let Some(open_id) = job.open_id.as_deref() else {
            return Vec::new();
        };
        match self.accounts.get(open_id).await {
            Ok(account) => shared::tiktok::posting::share_urls(
                account.as_ref().and_then(|a| a.username.as_deref()),
                post_ids,
            ),
            Err(err) => {
                tracing::warn!(open_id, error = %err, "cannot read the account; post recorded without its link");
                Vec::new()
            }
        }
    }

    /// `authorization.removed`: TikTok has revoked the grant already.
    ///
    /// The account becomes `revoked` (uploads for it are refused until the
    /// creator connects again), and its unfinished jobs fail now with
    /// `auth_removed`: held (`queued`), waiting to retry, claimed and not yet
    /// sent (none of these can reach TikTok with this grant), and uploading,
    /// processing or stuck ones too, since TikTok fails what it is processing
    /// with `auth_removed`. Drafts already in the inbox are left: they are
    /// the creator's now. The jobs are found through the index of followed
    /// jobs, filtered on the account (DynamoDB reads the whole index for it,
    /// which for an event this rare is cheaper than a second index). The
    /// work is bounded by [`REMOVAL_BUDGET`]: past it the delivery answers
    /// 500 and TikTok's next delivery goes on where it stopped; repeating
    /// it changes nothing already done.
    async fn authorization_removed(
        &self,
        delivery: &Webhook,
        reason: i64,
    ) -> Result<Outcome, ApplyError> {
        let open_id = delivery.user_openid.as_str();
        let Some(account) = self.accounts.get(open_id).await? else {
            return Ok(Outcome::Unchanged("no account has this open_id"));
        };
        // TikTok retries a delivery for up to 72 hours, re-signed each time:
        // an old removal must not revoke a connection made after it. The
        // connection time is its own attribute, because token refreshes and
        // notes move `updated_at`; accounts recorded before it existed fall
        // back to `updated_at` (which errs towards keeping the account: a
        // grant that is really gone fails its next refresh and is marked).
        let connected_at = account.connected_at.unwrap_or(account.updated_at);
        if account.state == AccountState::Active && connected_at.timestamp() > delivery.create_time
        {
            return Ok(Outcome::Unchanged(
                "the account was connected again after this event",
            ));
        }
        let message = format!(
            "TikTok removed this app's access to the account: {} (reason {reason})",
            webhook::removal_reason_text(reason)
        );
        let already = account.state == AccountState::Revoked;
        if !already {
            self.accounts
                .set_state(open_id, AccountState::Revoked, Some(&message))
                .await?;
        }
        // The grant is gone at TikTok, and its tokens with it: so goes the
        // secret (also on a redelivery, in case deleting failed before; a
        // reconnect creates it again). Nothing refreshes a revoked account.
        self.tokens.delete(open_id).await?;
        let jobs_failed = self.fail_unfinished_jobs(open_id, &message).await?;
        Ok(Outcome::AccountRevoked {
            open_id: open_id.to_owned(),
            already,
            jobs_failed,
        })
    }

    /// Fails the account's unfinished jobs (all but drafts in the inbox),
    /// within the removal budget ([`REMOVAL_BUDGET`]), which is looked at
    /// before every job once one has failed.
    async fn fail_unfinished_jobs(&self, open_id: &str, why: &str) -> Result<u32, ApplyError> {
        let stop_at = tokio::time::Instant::now() + self.removal_budget;
        let mut failed = 0;
        // The budget is looked at once this delivery has failed a job, so
        // that every redelivery makes progress, however slow the store.
        let over = |failed: u32| failed > 0 && tokio::time::Instant::now() >= stop_at;
        let out_of_time = |failed: u32| {
            tracing::warn!(
                open_id,
                failed,
                "authorization removal not finished in time; TikTok's next delivery goes on"
            );
            ApplyError::RemovalUnfinished {
                open_id: open_id.to_owned(),
                failed,
            }
        };
        for shard in 0..UNFINISHED_SHARDS {
            let mut start = None;
            loop {
                if over(failed) {
                    return Err(out_of_time(failed));
                }
                // A bounded page, and the budget looked at before every
                // write: a creator with a large backlog cannot hold one
                // delivery past the function's timeout.
                let page = self
                    .jobs
                    .followed_of_account(open_id, shard, start, REMOVAL_PAGE)
                    .await?;
                for job in page.jobs {
                    if over(failed) {
                        return Err(out_of_time(failed));
                    }
                    if self.fail_for_removal(&job, why).await? {
                        failed += 1;
                    }
                }
                match page.next {
                    Some(next) => start = Some(next),
                    None => break,
                }
            }
        }
        Ok(failed)
    }

    /// Fails one job of a removed authorization, unless it is a draft in the
    /// inbox or someone moved it meanwhile.
    async fn fail_for_removal(&self, job: &Job, why: &str) -> Result<bool, ApplyError> {
        if job.status == JobStatus::Inbox || job.status.is_final() {
            return Ok(false);
        }
        // An init started without an answer may have reached TikTok.
        let sent = job.publish_id().is_some() || job.init_started_at().is_some();
        let error = LastError {
            code: AUTH_REMOVED.to_owned(),
            message: if sent {
                format!(
                    "{why}, so TikTok stops processing this upload. Connect the account again, then upload the file again."
                )
            } else {
                format!(
                    "{why}, so this upload was not sent. Connect the account again, then upload the file again."
                )
            },
        };
        let changes = Changes {
            last_error: Some(error),
            ..Changes::default()
        };
        match self
            .jobs
            .transition(job, JobStatus::Failed, changes, self.clock.now())
            .await
        {
            Ok(_) => Ok(true),
            // Moved meanwhile (released, finished, cancelled): whoever moved
            // it owns it now, and a repeated delivery finds it again if it
            // is still unfinished.
            Err(JobError::Conflict { .. } | JobError::IllegalTransition { .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

/// A small JSON answer: `{"<key>": "<text>"}`.
fn answer(status: StatusCode, key: &str, text: &str) -> Response<Body> {
    let body = serde_json::json!({ key: text }).to_string();
    let mut res = Response::new(Body::Text(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use shared::jobs::{JobKind, NewJob, ObjectVersion, PostTarget, Upload, UploadAttempt};
    use shared::tiktok::FailReason;
    use shared::webhook::PublishRef;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn job(status: JobStatus) -> Job {
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "b".into(),
                    key: "uploads/alice/a.mp4".into(),
                    version: ObjectVersion::ETag("e".into()),
                    size: 10,
                },
                alias: Some("alice".into()),
                open_id: Some("open-a".into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: None,
            },
            now() - TimeDelta::minutes(5),
        );
        job.status = status;
        job.attempt = UploadAttempt::Pulled {
            publish_id: "p1".into(),
        };
        job
    }

    fn p() -> PublishRef {
        PublishRef {
            publish_id: "p1".into(),
            publish_type: None,
        }
    }

    fn failed(reason: FailReason) -> Event {
        Event::Failed {
            publish: p(),
            reason,
        }
    }

    fn moved(plan: Plan) -> (JobStatus, Changes) {
        match plan {
            Plan::Move { to, changes } => (to, changes),
            other => panic!("expected a move, got {other:?}"),
        }
    }

    fn policy() -> JobRetryPolicy {
        JobRetryPolicy::default()
    }

    #[test]
    fn status_events_move_jobs_forward_once() {
        let (to, changes) = moved(decide(
            &job(JobStatus::Processing),
            &Event::InboxDelivered(p()),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Inbox);
        assert_eq!(changes.tiktok_status, Some(PublishState::SendToUserInbox));
        assert_eq!(
            decide(
                &job(JobStatus::Inbox),
                &Event::InboxDelivered(p()),
                now(),
                &policy()
            ),
            Plan::Nothing("the job already has this status")
        );
        let (to, _) = moved(decide(
            &job(JobStatus::Inbox),
            &Event::Complete(p()),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Published);
        for status in [
            JobStatus::Published,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            for event in [Event::Complete(p()), failed(FailReason::Internal)] {
                assert_eq!(
                    decide(&job(status), &event, now(), &policy()),
                    Plan::Nothing("the job is finished")
                );
            }
        }
    }

    #[test]
    fn publicly_available_publishes_with_the_post_id() {
        let big = 7_459_287_841_546_292_488;
        let mut inbox = job(JobStatus::Inbox);
        inbox.post_ids = vec![1];
        let (to, changes) = moved(decide(
            &inbox,
            &Event::PubliclyAvailable {
                publish: p(),
                post_id: big,
            },
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Published);
        assert_eq!(changes.post_ids, vec![1, big]);
        assert!(matches!(
            decide(
                &job(JobStatus::Inbox),
                &Event::NoLongerPubliclyAvailable {
                    publish: p(),
                    post_id: big
                },
                now(),
                &policy()
            ),
            Plan::Nothing(_)
        ));
    }

    #[test]
    fn failures_map_like_the_checker_and_count_once() {
        let (to, changes) = moved(decide(
            &job(JobStatus::Processing),
            &failed(FailReason::Internal),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::RetryWait);
        assert_eq!(changes.attempts, Some(1));
        assert_eq!(changes.not_before, Some(now() + TimeDelta::seconds(60)));
        assert_eq!(changes.tiktok_status, Some(PublishState::Failed));
        assert_eq!(changes.fail_reason, Some(FailReason::Internal));

        // The same failure again, on the job as it is after the first one.
        let mut waiting = job(JobStatus::RetryWait);
        waiting.attempts = 4;
        waiting.tiktok_status = Some(PublishState::Failed);
        waiting.status_publish_id = Some("p1".into());
        assert_eq!(
            decide(&waiting, &failed(FailReason::Internal), now(), &policy()),
            Plan::Nothing("this failure is already recorded on the job")
        );
        // Recorded for p1, a permanent reason is not applied a second time
        // either (the job would be failed already; this is the guard).
        let mut recorded = job(JobStatus::Processing);
        recorded.tiktok_status = Some(PublishState::Failed);
        recorded.status_publish_id = Some("p1".into());
        assert_eq!(
            decide(
                &recorded,
                &failed(FailReason::SpamRiskText),
                now(),
                &policy()
            ),
            Plan::Nothing("this failure is already recorded on the job")
        );

        let (to, changes) = moved(decide(
            &job(JobStatus::Processing),
            &failed(FailReason::FileFormatCheckFailed),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Failed);
        assert_eq!(changes.attempts, Some(0));
        assert_eq!(changes.last_error.unwrap().code, "file_format_check_failed");
        let (to, _) = moved(decide(
            &job(JobStatus::Uploading),
            &failed(FailReason::PublishCancelled),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Cancelled);
    }

    #[test]
    fn a_failure_of_a_new_attempt_is_not_taken_for_the_old_one() {
        // TikTok failed the first attempt (p0); the retry got p1 and TikTok
        // fails that one too. A job that still shows p0's FAILED (as items
        // written before the status was cleared on retry do) must count it.
        let mut retried = job(JobStatus::Processing);
        retried.attempts = 1;
        retried.tiktok_status = Some(PublishState::Failed);
        retried.fail_reason = Some(FailReason::Internal);
        retried.status_publish_id = Some("p0".into());
        let (to, changes) = moved(decide(
            &retried,
            &failed(FailReason::Internal),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::RetryWait);
        assert_eq!(changes.attempts, Some(2));
        retried.status_publish_id = None;
        let (to, _) = moved(decide(
            &retried,
            &failed(FailReason::FileFormatCheckFailed),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Failed);
    }

    #[test]
    fn a_direct_post_is_not_done_when_it_reaches_an_inbox() {
        let mut direct = job(JobStatus::Processing);
        direct.post = PostTarget::Direct {
            privacy_level: shared::tiktok::PrivacyLevel::SelfOnly,
        };
        assert_eq!(
            decide(&direct, &Event::InboxDelivered(p()), now(), &policy()),
            Plan::Nothing("the job already has this status")
        );
        let (to, _) = moved(decide(&direct, &Event::Complete(p()), now(), &policy()));
        assert_eq!(to, JobStatus::Published);
    }

    #[test]
    fn a_late_passing_failure_of_a_delivered_draft_is_not_retried() {
        let (to, changes) = moved(decide(
            &job(JobStatus::Inbox),
            &failed(FailReason::Internal),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Failed);
        assert_eq!(changes.attempts, Some(0));
        assert!(changes.last_error.unwrap().message.contains("not retried"));
    }

    #[test]
    fn a_job_waiting_to_retry_is_not_charged_again() {
        let waiting = job(JobStatus::RetryWait);
        assert_eq!(
            decide(
                &waiting,
                &failed(FailReason::VideoPullFailed),
                now(),
                &policy()
            ),
            Plan::Nothing("the job is already waiting to retry")
        );
        // A permanent reason ends the wait: trying again would fail the same way.
        let (to, _) = moved(decide(
            &waiting,
            &failed(FailReason::SpamRiskText),
            now(),
            &policy(),
        ));
        assert_eq!(to, JobStatus::Failed);
        // A queued job cannot be delivered.
        assert_eq!(
            decide(
                &job(JobStatus::Queued),
                &Event::InboxDelivered(p()),
                now(),
                &policy()
            ),
            Plan::Nothing("not a move the job can make from its status")
        );
    }

    #[test]
    fn outcomes_read_well() {
        assert_eq!(
            Outcome::Ignored("x.y".into()).to_string(),
            "event x.y ignored"
        );
        assert!(Outcome::NoJob.to_string().contains("publish_id"));
    }
}
