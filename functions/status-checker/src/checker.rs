//! One scheduled run: refresh what expires before the next run, follow every
//! unfinished job at TikTok, release retries and held uploads, flag what is
//! stuck, and stop in time.
//!
//! Reads are bounded by the backlog, never by history: accounts come from
//! their own index partition and jobs from the sharded index of unfinished
//! jobs (finished jobs leave it), read due-first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt as _};
use serde::Serialize;
use shared::accounts::{Account, AccountState, Accounts};
use shared::jobs::{
    Changes, Decision, Job, JobError, JobStatus, Jobs, LastError, MAX_PENDING_DRAFTS, PageKey,
    RECONNECT_MESSAGE, RetryPolicy, UNFINISHED_SHARDS, after_status, is_stuck,
};
use shared::tiktok::{ErrorClass, PublishStatus, TikTokClient};
use shared::tokens::{
    Clock, FreshToken, RefreshOutcome, SecretsManagerTokenStore, TokenError, TokenManager,
};
use tokio::time::Instant;

use crate::config::STATUS_REQUESTS_PER_MINUTE;
use crate::rate_limit::PerAccountLimit;
use crate::upload_path::UploadPath;

/// How the checker paces itself.
#[derive(Debug, Clone)]
pub struct CheckerSettings {
    /// Time between scheduled runs.
    pub interval: Duration,
    /// Status requests in flight at once, across accounts.
    pub concurrency: usize,
    /// Index entries read per page.
    pub page_size: u32,
    /// Stop starting work this long before the invocation's deadline.
    pub stop_margin: Duration,
    /// Warn about refresh tokens expiring within this.
    pub refresh_warning: TimeDelta,
}

impl CheckerSettings {
    pub fn new(interval: Duration, concurrency: usize) -> Self {
        Self {
            interval,
            concurrency: concurrency.max(1),
            page_size: 100,
            stop_margin: Duration::from_secs(15),
            refresh_warning: TimeDelta::days(7),
        }
    }

    /// Tokens are refreshed when they would expire before the run after
    /// next starts: one interval to the next run, one more for it to finish
    /// and for a schedule that fires late.
    fn refresh_window(&self) -> Duration {
        self.interval.saturating_mul(2)
    }
}

/// What a run did, logged at its end and returned to the caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    pub accounts: u32,
    pub tokens_refreshed: u32,
    pub token_failures: u32,
    pub refresh_expiring_soon: u32,
    pub jobs_seen: u32,
    /// Index entries DynamoDB read for jobs (grows with the backlog only).
    pub index_items_read: u32,
    /// What reading the index cost in DynamoDB read units.
    pub index_read_units: f64,
    pub status_requests: u32,
    /// Moves made, by the status moved to.
    pub moved: BTreeMap<String, u32>,
    pub retries_released: u32,
    pub queued_released: u32,
    pub flagged_stuck: u32,
    /// Status checks left for the next run to keep within 30 per minute.
    pub rate_limited: u32,
    pub errors: u32,
    /// The most status requests one account had in a sliding minute.
    pub busiest_account_per_minute: u32,
    /// The deadline came first; the rest waits for the next run.
    pub stopped_early: bool,
}

/// The checker's parts, built once per cold start.
pub struct Checker<P> {
    pub jobs: Jobs,
    pub accounts: Accounts,
    pub tokens: TokenManager<SecretsManagerTokenStore>,
    pub tiktok: TikTokClient,
    pub upload_path: P,
    pub clock: Clock,
    pub policy: RetryPolicy,
    pub settings: CheckerSettings,
    /// Access tokens kept between warm runs, so a run does not open every
    /// account's secret again. Dropped when TikTok refuses one.
    token_cache: Mutex<HashMap<String, FreshToken>>,
}

/// A token older than this margin before its expiry is fetched again.
const TOKEN_CACHE_MARGIN: TimeDelta = TimeDelta::minutes(10);

/// Concurrent refreshes in the sweep (each is one lease, one secret read,
/// maybe one TikTok call).
const SWEEP_CONCURRENCY: usize = 8;

/// What a run shares between its concurrent tasks.
struct Run {
    report: Mutex<RunReport>,
    limit: PerAccountLimit,
    accounts: HashMap<String, Account>,
    queued_accounts: Mutex<BTreeSet<String>>,
    stop_at: Instant,
}

impl Run {
    fn bump(&self, f: impl FnOnce(&mut RunReport)) {
        if let Ok(mut report) = self.report.lock() {
            f(&mut report);
        }
    }

    fn past_stop(&self) -> bool {
        Instant::now() >= self.stop_at
    }
}

impl<P: UploadPath> Checker<P> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        jobs: Jobs,
        accounts: Accounts,
        tokens: TokenManager<SecretsManagerTokenStore>,
        tiktok: TikTokClient,
        upload_path: P,
        clock: Clock,
        policy: RetryPolicy,
        settings: CheckerSettings,
    ) -> Self {
        Self {
            jobs,
            accounts,
            tokens,
            tiktok,
            upload_path,
            clock,
            policy,
            settings,
            token_cache: Mutex::new(HashMap::new()),
        }
    }

    /// One run, which starts no new work after `deadline` minus the stop
    /// margin.
    pub async fn run(&self, deadline: Instant) -> RunReport {
        // A short timeout keeps three quarters of its time for work.
        let left = deadline.saturating_duration_since(Instant::now());
        let margin = self.settings.stop_margin.min(left / 4);
        let stop_at = deadline.checked_sub(margin).unwrap_or(deadline);
        let accounts = match self.accounts.list().await {
            Ok(list) => list,
            Err(err) => {
                tracing::error!(error = %err, "cannot list accounts; tokens are not swept this run");
                Vec::new()
            }
        };
        let run = Run {
            report: Mutex::new(RunReport {
                accounts: count(accounts.len()),
                ..RunReport::default()
            }),
            limit: PerAccountLimit::new(STATUS_REQUESTS_PER_MINUTE, Duration::from_secs(60)),
            accounts: accounts
                .iter()
                .map(|a| (a.open_id.clone(), a.clone()))
                .collect(),
            queued_accounts: Mutex::new(BTreeSet::new()),
            stop_at,
        };

        self.sweep(&accounts, &run).await;
        self.follow_jobs(&run).await;
        self.release_queued(&run).await;

        let busiest = run.limit.busiest();
        run.bump(|r| r.busiest_account_per_minute = busiest);
        let report = run.report.into_inner().unwrap_or_default();
        tracing::info!(
            report = %serde_json::to_string(&report).unwrap_or_default(),
            "check run finished"
        );
        report
    }

    // ---- tokens ----------------------------------------------------------

    /// Refreshes access tokens that would expire before the run after next,
    /// and flags accounts whose refresh token expires within 7 days. Reads
    /// only account items; a secret is opened only when a refresh is due.
    async fn sweep(&self, accounts: &[Account], run: &Run) {
        let now = self.clock.now();
        let window = self.settings.refresh_window();
        let window_delta = TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX);
        stream::iter(accounts.iter().filter(|a| a.state == AccountState::Active))
            .for_each_concurrent(SWEEP_CONCURRENCY, |account| async move {
                if run.past_stop() {
                    run.bump(|r| r.stopped_early = true);
                    return;
                }
                let open_id = account.open_id.as_str();
                let due = account
                    .access_expires_at
                    .is_none_or(|at| at - now <= window_delta);
                if due {
                    match self.tokens.refresh_if_expiring_within(open_id, window).await {
                        Ok(RefreshOutcome::Refreshed { .. }) => {
                            self.forget_token(open_id);
                            run.bump(|r| r.tokens_refreshed += 1);
                        }
                        Ok(_) => {}
                        Err(err) => {
                            // The manager has marked an account that must
                            // reconnect; a passing failure is retried next run.
                            tracing::warn!(open_id, alias = account.alias.as_deref(), error = %err, "token refresh failed");
                            run.bump(|r| r.token_failures += 1);
                        }
                    }
                }
                self.check_refresh_expiry(account, now, run).await;
            })
            .await;
    }

    async fn check_refresh_expiry(&self, account: &Account, now: DateTime<Utc>, run: &Run) {
        let open_id = account.open_id.as_str();
        let alias = account.alias.as_deref().unwrap_or(open_id);
        let note = match account.refresh_expires_at {
            Some(at) if at - now <= self.settings.refresh_warning => {
                tracing::warn!(
                    open_id,
                    alias,
                    refresh_expires_at = %at,
                    "refresh token expires within 7 days; the creator must log in again"
                );
                run.bump(|r| r.refresh_expiring_soon += 1);
                Some(format!(
                    "TikTok authorization expires at {}: the creator must log in again before then (tiktok-drafts invite --account {alias})",
                    at.format("%Y-%m-%d %H:%M UTC")
                ))
            }
            _ => None,
        };
        if note.is_none() && account.attention.is_none() {
            return;
        }
        if let Err(err) = self.accounts.set_attention(open_id, note.as_deref()).await {
            tracing::warn!(open_id, error = %err, "could not record the account note");
        }
    }

    /// The account's access token, from the warm cache while it has more
    /// than ten minutes left.
    async fn token(&self, open_id: &str) -> Result<FreshToken, TokenError> {
        let now = self.clock.now();
        if let Ok(cache) = self.token_cache.lock()
            && let Some(token) = cache.get(open_id)
            && token.expires_at - now > TOKEN_CACHE_MARGIN
        {
            return Ok(token.clone());
        }
        let token = self.tokens.get_fresh_token(open_id).await?;
        if let Ok(mut cache) = self.token_cache.lock() {
            cache.insert(open_id.to_owned(), token.clone());
        }
        Ok(token)
    }

    fn forget_token(&self, open_id: &str) {
        if let Ok(mut cache) = self.token_cache.lock() {
            cache.remove(open_id);
        }
    }

    // ---- jobs ------------------------------------------------------------

    /// Walks the unfinished index, one page per shard in turn, due first, so
    /// an early stop leaves every shard's least-due jobs for the next run.
    async fn follow_jobs(&self, run: &Run) {
        let mut cursors: Vec<(u8, Option<PageKey>)> =
            (0..UNFINISHED_SHARDS).map(|shard| (shard, None)).collect();
        let mut started = vec![false; cursors.len()];
        while !cursors.is_empty() {
            let mut next_round = Vec::with_capacity(cursors.len());
            for (shard, cursor) in cursors {
                if run.past_stop() {
                    run.bump(|r| r.stopped_early = true);
                    return;
                }
                let index = usize::from(shard);
                if started[index] && cursor.is_none() {
                    continue;
                }
                started[index] = true;
                let page = match self
                    .jobs
                    .unfinished(shard, self.settings.page_size, cursor)
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::error!(shard, error = %err, "cannot read unfinished jobs");
                        run.bump(|r| r.errors += 1);
                        continue;
                    }
                };
                let now = self.clock.now();
                let scanned = page.scanned_count;
                let units = page.read_units;
                // Sorted due-first: the first job not due ends the shard.
                let due: Vec<Job> = page
                    .jobs
                    .into_iter()
                    .take_while(|job| job.due_at() <= now)
                    .collect();
                let rest_not_due = count(due.len()) < scanned;
                run.bump(|r| {
                    r.index_items_read += scanned;
                    r.index_read_units += units;
                    r.jobs_seen += count(due.len());
                });
                stream::iter(due)
                    .for_each_concurrent(self.settings.concurrency, |job| self.check_job(job, run))
                    .await;
                if let Some(next) = page.next
                    && !rest_not_due
                {
                    next_round.push((shard, Some(next)));
                }
            }
            cursors = next_round;
        }
    }

    async fn check_job(&self, job: Job, run: &Run) {
        if run.past_stop() {
            run.bump(|r| r.stopped_early = true);
            return;
        }
        let now = self.clock.now();
        // An account that can no longer post: nothing of its will reach
        // TikTok, so held and unfinished jobs end here with what to do.
        if let Some(account) = job.open_id.as_ref().and_then(|id| run.accounts.get(id))
            && account.state != AccountState::Active
        {
            let code = match account.state {
                AccountState::Revoked => "account_revoked",
                _ => "reconnect_needed",
            };
            let message = format!(
                "the account is {}{}. {RECONNECT_MESSAGE}",
                account.state,
                account
                    .state_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
            self.fail(&job, code, message, run).await;
            return;
        }
        match job.status {
            JobStatus::Claimed | JobStatus::Uploading
                if is_stuck(job.status, job.updated_at, now) =>
            {
                self.flag_stuck(&job, None, run).await;
            }
            JobStatus::Processing => self.follow(&job, run).await,
            // A stuck job TikTok knows may still move; one it does not know
            // waits for an operator.
            JobStatus::Stuck if job.publish_id.is_some() => self.follow(&job, run).await,
            JobStatus::RetryWait if job.not_before.is_none_or(|at| at <= now) => {
                self.release(&job, Released::Retry, run).await;
            }
            JobStatus::Queued => {
                if let (Some(open_id), Ok(mut queued)) =
                    (job.open_id.clone(), run.queued_accounts.lock())
                {
                    queued.insert(open_id);
                }
            }
            _ => {}
        }
    }

    /// Asks TikTok where the upload stands and records it.
    async fn follow(&self, job: &Job, run: &Run) {
        let (Some(open_id), Some(publish_id)) = (job.open_id.as_deref(), job.publish_id.as_deref())
        else {
            return;
        };
        if !run.limit.try_take(open_id, Instant::now()) {
            run.bump(|r| r.rate_limited += 1);
            return;
        }
        let token = match self.token(open_id).await {
            Ok(token) => token,
            Err(err) if err.needs_reconnect() => {
                self.fail(
                    job,
                    "reconnect_needed",
                    format!("{RECONNECT_MESSAGE} ({err})"),
                    run,
                )
                .await;
                return;
            }
            Err(err) => {
                tracing::warn!(job_id = %job.id, open_id, error = %err, "no token for the status check; next run");
                run.bump(|r| r.errors += 1);
                return;
            }
        };
        run.bump(|r| r.status_requests += 1);
        let status = match self
            .tiktok
            .fetch_status(&token.access_token, publish_id)
            .await
        {
            Ok(status) => status,
            Err(err) => {
                match err.class() {
                    ErrorClass::NeedsRefresh => self.forget_token(open_id),
                    ErrorClass::NeedsReauthorization => {
                        self.fail(
                            job,
                            err.code_str(),
                            format!("{RECONNECT_MESSAGE} ({err})"),
                            run,
                        )
                        .await;
                        return;
                    }
                    _ => {}
                }
                // 429 and 5xx count as still pending; the next run asks again.
                tracing::warn!(job_id = %job.id, publish_id, error = %err, "status check failed; next run");
                run.bump(|r| r.errors += 1);
                return;
            }
        };
        let now = self.clock.now();
        match after_status(job.status, job.attempts, &status, now, &self.policy) {
            Decision::Stay => {
                if job.status != JobStatus::Stuck && is_stuck(job.status, job.updated_at, now) {
                    self.flag_stuck(job, Some(&status), run).await;
                }
            }
            Decision::Move(step) => {
                let to = step.to;
                let changes = Changes::from(step).with_tiktok_status(&status);
                self.move_job(job, to, changes, run).await;
            }
        }
    }

    async fn flag_stuck(&self, job: &Job, status: Option<&PublishStatus>, run: &Run) {
        let last = status
            .map(|s| s.status.as_str().to_owned())
            .or_else(|| job.tiktok_status.as_ref().map(|s| s.as_str().to_owned()));
        let message = format!(
            "no progress for {} minutes while {} (last TikTok status: {}); check the job and retry or cancel it",
            (self.clock.now() - job.updated_at).num_minutes(),
            job.status,
            last.as_deref().unwrap_or("none yet"),
        );
        let mut changes = Changes {
            attempts: Some(job.attempts),
            last_error: Some(LastError {
                code: "stuck".into(),
                message,
            }),
            ..Changes::default()
        };
        if let Some(status) = status {
            changes = changes.with_tiktok_status(status);
        }
        if self.move_job(job, JobStatus::Stuck, changes, run).await {
            tracing::warn!(
                job_id = %job.id,
                open_id = job.open_id.as_deref(),
                was = %job.status,
                tiktok_status = last.as_deref(),
                "job flagged stuck"
            );
            run.bump(|r| r.flagged_stuck += 1);
        }
    }

    async fn fail(&self, job: &Job, code: &str, message: String, run: &Run) {
        let changes = Changes {
            last_error: Some(LastError {
                code: code.to_owned(),
                message,
            }),
            ..Changes::default()
        };
        self.move_job(job, JobStatus::Failed, changes, run).await;
    }

    /// Moves a job; a job someone else moved meanwhile is left to them.
    async fn move_job(&self, job: &Job, to: JobStatus, changes: Changes, run: &Run) -> bool {
        match self
            .jobs
            .transition(job, to, changes, self.clock.now())
            .await
        {
            Ok(_) => {
                run.bump(|r| *r.moved.entry(to.as_str().to_owned()).or_default() += 1);
                true
            }
            Err(JobError::Conflict { .. }) => false,
            Err(err) => {
                tracing::warn!(job_id = %job.id, to = %to, error = %err, "could not move the job");
                run.bump(|r| r.errors += 1);
                false
            }
        }
    }

    /// Sends a held or waiting job back through the upload path: `claimed`
    /// first (so the upload function takes it), then the message; if the
    /// message cannot be sent the job goes back to wait for the next run.
    async fn release(&self, job: &Job, why: Released, run: &Run) -> bool {
        if job.upload.is_local_file() {
            self.fail(
                job,
                "local_upload_retry",
                "this upload came from a local file through the CLI, which the checker cannot re-send: run `tiktok-drafts upload` again".into(),
                run,
            )
            .await;
            return false;
        }
        let claimed = match self
            .jobs
            .transition(
                job,
                JobStatus::Claimed,
                Changes::default(),
                self.clock.now(),
            )
            .await
        {
            Ok(job) => job,
            Err(JobError::Conflict { .. }) => return false,
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "could not release the job");
                run.bump(|r| r.errors += 1);
                return false;
            }
        };
        match self.upload_path.resend(&claimed).await {
            Ok(()) => {
                run.bump(|r| {
                    *r.moved
                        .entry(JobStatus::Claimed.as_str().to_owned())
                        .or_default() += 1;
                    match why {
                        Released::Retry => r.retries_released += 1,
                        Released::Held => r.queued_released += 1,
                    }
                });
                true
            }
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "released job not sent; it waits for the next run");
                run.bump(|r| r.errors += 1);
                let back = Changes {
                    not_before: Some(self.clock.now()),
                    ..Changes::default()
                };
                if let Err(err) = self
                    .jobs
                    .transition(&claimed, JobStatus::RetryWait, back, self.clock.now())
                    .await
                {
                    tracing::error!(job_id = %job.id, error = %err, "released job neither sent nor put back; it will be flagged stuck");
                }
                false
            }
        }
    }

    /// For each account seen with held uploads, releases as many as it has
    /// free pending-draft slots, oldest first.
    async fn release_queued(&self, run: &Run) {
        let accounts: Vec<String> = run
            .queued_accounts
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        for open_id in accounts {
            if run.past_stop() {
                run.bump(|r| r.stopped_early = true);
                return;
            }
            let pending = match self.jobs.pending_drafts(&open_id, self.clock.now()).await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(open_id, error = %err, "cannot count pending drafts");
                    run.bump(|r| r.errors += 1);
                    continue;
                }
            };
            let free = MAX_PENDING_DRAFTS.saturating_sub(pending);
            if free == 0 {
                continue;
            }
            let held = match self.jobs.queued_for_account(&open_id, free).await {
                Ok(jobs) => jobs,
                Err(err) => {
                    tracing::warn!(open_id, error = %err, "cannot read held uploads");
                    run.bump(|r| r.errors += 1);
                    continue;
                }
            };
            for job in held {
                tracing::info!(job_id = %job.id, open_id, pending, "releasing a held upload");
                self.release(&job, Released::Held, run).await;
            }
        }
    }
}

/// Why a job goes back through the upload path.
#[derive(Debug, Clone, Copy)]
enum Released {
    /// Its backoff after a passing failure is over.
    Retry,
    /// A pending-draft slot freed up.
    Held,
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
