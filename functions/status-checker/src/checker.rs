//! One scheduled run: refresh what expires before the next run, follow every
//! job in the index at TikTok, release retries and held uploads, flag what
//! is stuck, and stop in time.
//!
//! Reads are bounded by the backlog, never by history: accounts come from
//! their own index partition and jobs from the sharded index of followed
//! jobs (finished jobs leave it), and only the entries due at the run's
//! start are read (the index sorts by due time).
//!
//! Jobs stream through bounded concurrency: pages are read as workers free
//! up, so one slow request holds one worker, not a page of jobs or the other
//! accounts. Each job's work is cut off at the stop instant; every store
//! write is conditional, so a job cut off halfway is left as it was or as it
//! was moved, never half-moved. Releases (a move to `claimed`, then the
//! message) are decided within that limit but, once started, run to their
//! end, so a released job is never left `claimed` without its message.
//! Token refreshes likewise: the token manager runs a refresh it started in
//! a task of its own, so a cut-off never loses a rotated refresh token, and
//! the run waits for such refreshes before it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt as _};
use serde::Serialize;
use shared::accounts::{Account, AccountState, Accounts};
use shared::jobs::{
    Changes, Decision, INBOX_FOLLOW_EVERY, INBOX_FOLLOW_FOR, Job, JobError, JobStatus, Jobs,
    LastError, MAX_PENDING_DRAFTS, PageKey, RECONNECT_MESSAGE, RetryPolicy, STUCK_AFTER,
    UNFINISHED_SHARDS, after_job_status, after_status, is_stuck,
};
use shared::tiktok::posting::share_urls;
use shared::tiktok::{
    ApiErrorCode, ErrorClass, PublishState, PublishStatus, TikTokClient, TikTokError,
};
use shared::tokens::{
    Clock, FreshToken, RefreshOutcome, SecretsManagerTokenStore, TokenError, TokenManager,
};
use tokio::time::{Instant, timeout_at};

use crate::config::STATUS_REQUESTS_PER_MINUTE;
use crate::rate_limit::PerAccountLimit;
use crate::status_gate::{Closed, StatusGate};
use crate::upload_path::UploadPath;

/// How the checker paces itself.
#[derive(Debug, Clone)]
pub struct CheckerSettings {
    /// Time between scheduled runs.
    pub interval: Duration,
    /// Jobs worked on at once, across accounts.
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
    /// Account items that could not be read (skipped, logged by key).
    pub unreadable_accounts: u32,
    pub tokens_refreshed: u32,
    pub token_failures: u32,
    pub refresh_expiring_soon: u32,
    /// Due jobs read from the index.
    pub jobs_seen: u32,
    /// Index entries that could not be read as jobs (skipped, logged by key).
    pub unreadable_jobs: u32,
    /// Index queries made (pages read).
    pub index_queries: u32,
    /// Index entries DynamoDB read for jobs (grows with the backlog only).
    pub index_items_read: u32,
    /// What reading the index cost in DynamoDB read units, from the items'
    /// sizes (DynamoDB's rule: 4 KB per unit, half for eventual reads).
    pub index_read_units: f64,
    /// The read units DynamoDB itself reported for those queries.
    pub index_consumed_units: f64,
    /// Status requests sent to TikTok: every HTTP attempt, none retried.
    pub status_requests: u32,
    /// Moves made, by the status moved to.
    pub moved: BTreeMap<String, u32>,
    pub retries_released: u32,
    pub queued_released: u32,
    /// Retries not re-initialised because TikTok had the upload after all.
    pub retries_found_at_tiktok: u32,
    pub flagged_stuck: u32,
    /// Jobs whose place in the index moved on after a check that left them
    /// where they were, so the next run asks about others first.
    pub rescheduled: u32,
    /// Drafts in the inbox old enough to stop following.
    pub inbox_unfollowed: u32,
    /// Status checks left for the next run to keep within 30 per minute.
    pub rate_limited: u32,
    /// The run waited for a minute to pass since the previous run's last
    /// status request.
    pub waited_for_previous_run: bool,
    pub errors: u32,
    /// The most status requests one account had in a sliding minute.
    pub busiest_account_per_minute: u32,
    /// Jobs whose work the stop instant cut off.
    pub cut_off: u32,
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

/// How far the index place of a job that cannot be followed now (its
/// account must reconnect) moves on: it costs no request, but need not be
/// read every run either.
const PARKED_FOR: TimeDelta = TimeDelta::minutes(15);

/// The scope `creator_info` needs (and with it, the username).
const PUBLISH_SCOPE: &str = "video.publish";

/// What a run shares between its concurrent tasks.
struct Run {
    report: Mutex<RunReport>,
    limit: PerAccountLimit,
    gate: StatusGate,
    accounts: HashMap<String, Account>,
    /// Accounts found unable to post during this run (a token that needs a
    /// reconnect); their other jobs are treated as such for the rest of it.
    lost: Mutex<HashSet<String>>,
    /// Accounts whose held uploads were looked at this run.
    held_checked: Mutex<HashSet<String>>,
    /// Accounts seen with held uploads, and accounts whose draft freed a
    /// slot this run: both together get a second look at the end.
    held_seen: Mutex<BTreeSet<String>>,
    freed: Mutex<BTreeSet<String>>,
    /// Usernames learnt this run (one `creator_info` per account at most).
    usernames: Mutex<HashMap<String, Option<String>>>,
    /// Index entries due at or before this are read; fixed for the run, so
    /// a job rescheduled during it is not read again in it.
    due_by: DateTime<Utc>,
    started: Instant,
    stop_at: Instant,
    /// Work that has TikTok's answer in hand writes it down until this
    /// instant (between the stop instant and the deadline): an answer cut
    /// off between the request and its write would land in the table but
    /// not in the report, and the next run would ask again for nothing.
    finish_by: Instant,
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

    fn moved(&self, to: JobStatus) {
        self.bump(|r| *r.moved.entry(to.as_str().to_owned()).or_default() += 1);
    }

    fn account_lost(&self, open_id: &str) {
        if let Ok(mut lost) = self.lost.lock() {
            lost.insert(open_id.to_owned());
        }
    }

    fn is_lost(&self, open_id: &str) -> bool {
        self.lost.lock().is_ok_and(|l| l.contains(open_id))
    }

    /// Whether this call is the first to look at the account's held uploads.
    fn first_held_check(&self, open_id: &str) -> bool {
        self.held_checked
            .lock()
            .is_ok_and(|mut c| c.insert(open_id.to_owned()))
    }
}

/// What a job's timed check leaves to do: releases run outside the cut-off.
enum Then {
    Nothing,
    Release(Vec<(Job, Released)>),
}

/// Why a job goes back through the upload path.
#[derive(Debug, Clone, Copy)]
enum Released {
    /// Its backoff after a passing failure is over.
    Retry,
    /// A pending-draft slot freed up.
    Held,
}

/// What asking TikTok about a job gave.
enum Asked {
    Answer(PublishStatus),
    /// Not asked: the per-token limit, or the gate (see `status_gate`).
    NotNow,
    Refused(TikTokError),
    /// No usable token (an account that must reconnect is marked lost).
    NoToken,
    /// The stop instant came while the request was out: nothing is known,
    /// the job is left exactly as it was for the next run.
    CutOff,
}

/// Whether a `PROCESSING_UPLOAD` answer for a job waiting to retry means
/// bytes are missing. TikTok's `uploaded_bytes` says so when it is there;
/// without it, a `FILE_UPLOAD` job's own offset (the first byte TikTok did
/// not acknowledge) below its size means chunks were never sent, and that
/// upload cannot finish by itself. (A pull has no offset of ours.)
fn upload_incomplete(job: &Job, status: &PublishStatus) -> bool {
    match status.uploaded_bytes {
        Some(bytes) => bytes < job.upload.size,
        None => job.chunk_plan.is_some() && job.next_offset < job.upload.size,
    }
}

/// A TikTok answer that says the publish id is not this account's to ask
/// about: it will never give a status.
fn is_unknown_publish(err: &TikTokError) -> bool {
    matches!(
        err.api_code(),
        Some(
            ApiErrorCode::InvalidPublishId | ApiErrorCode::TokenNotAuthorizedForSpecifiedPublishId
        )
    )
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
    /// margin and cuts off work still running then.
    pub async fn run(&self, deadline: Instant) -> RunReport {
        let started = Instant::now();
        // A short timeout keeps three quarters of its time for work.
        let left = deadline.saturating_duration_since(started);
        let margin = self.settings.stop_margin.min(left / 4);
        let stop_at = deadline.checked_sub(margin).unwrap_or(deadline);
        let finish_by = deadline.checked_sub(margin / 2).unwrap_or(deadline);
        let (accounts, unreadable_accounts) = match self.accounts.list_readable().await {
            Ok(list) => (list.accounts, list.unreadable),
            Err(err) => {
                tracing::error!(error = %err, "cannot list accounts; tokens are not swept this run");
                (Vec::new(), 0)
            }
        };
        let (gate, gate_read) =
            StatusGate::open(self.jobs.checker_state(), self.clock.clone(), deadline).await;
        let run = Run {
            report: Mutex::new(RunReport {
                accounts: count(accounts.len()),
                unreadable_accounts,
                errors: u32::from(!gate_read),
                waited_for_previous_run: gate.waits(),
                ..RunReport::default()
            }),
            limit: PerAccountLimit::new(STATUS_REQUESTS_PER_MINUTE, Duration::from_secs(60)),
            gate,
            accounts: accounts
                .iter()
                .map(|a| (a.open_id.clone(), a.clone()))
                .collect(),
            lost: Mutex::new(HashSet::new()),
            held_checked: Mutex::new(HashSet::new()),
            held_seen: Mutex::new(BTreeSet::new()),
            freed: Mutex::new(BTreeSet::new()),
            usernames: Mutex::new(HashMap::new()),
            due_by: self.clock.now(),
            started,
            stop_at,
            finish_by,
        };

        // Held uploads first: releasing them is a few small reads and writes,
        // and a large backlog must not keep them waiting until the deadline.
        self.release_held(&run).await;
        self.sweep(&accounts, &run).await;
        self.follow_jobs(&run).await;
        self.release_freed(&run).await;
        run.gate.close().await;
        // A token refresh the stop instant cut off goes on in a task of its
        // own; the function is frozen once this returns, and a refresh
        // frozen between TikTok's answer and the save would lose the
        // rotated refresh token. Half the margin is enough for one call.
        if !self.tokens.refreshes_settled(finish_by).await {
            tracing::warn!("a token refresh is still running at the end of the run");
            run.bump(|r| r.errors += 1);
        }

        let busiest = run.limit.busiest();
        run.bump(|r| r.busiest_account_per_minute = busiest);
        let report = run.report.into_inner().unwrap_or_default();
        tracing::info!(
            report = %serde_json::to_string(&report).unwrap_or_default(),
            elapsed_ms = u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX),
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
                    let refreshed = timeout_at(
                        run.stop_at,
                        self.tokens.refresh_if_expiring_within(open_id, window),
                    )
                    .await;
                    match refreshed {
                        Err(_) => {
                            run.bump(|r| {
                                r.stopped_early = true;
                                r.cut_off += 1;
                            });
                            return;
                        }
                        Ok(Ok(RefreshOutcome::Refreshed { .. })) => {
                            self.forget_token(open_id);
                            run.bump(|r| r.tokens_refreshed += 1);
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => {
                            // The manager has marked an account that must
                            // reconnect; a passing failure is retried next run.
                            if err.needs_reconnect() {
                                run.account_lost(open_id);
                            }
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

    /// Streams the due jobs of every shard, merged into one due-first order
    /// (the oldest due job of any shard comes next, so jobs left waiting by
    /// one run are the first of the next, whatever their shard), through at
    /// most `concurrency` workers. A shard's next page is read when its
    /// buffered jobs run out, so reading and checking overlap.
    async fn follow_jobs(&self, run: &Run) {
        let shards: Vec<ShardWalk> = (0..UNFINISHED_SHARDS).map(ShardWalk::new).collect();
        let jobs = stream::unfold(shards, |mut shards| async move {
            for walk in shards.iter_mut() {
                if walk.needs_page() {
                    if run.past_stop() {
                        run.bump(|r| r.stopped_early = true);
                        return None;
                    }
                    if !self.read_page(walk, run).await {
                        return None;
                    }
                }
            }
            let oldest = shards
                .iter()
                .enumerate()
                .filter_map(|(i, walk)| walk.buffer.front().map(|(due, _)| (*due, i)))
                .min()
                .map(|(_, i)| i)?;
            let (_, job) = shards.get_mut(oldest)?.buffer.pop_front()?;
            Some((job, shards))
        });
        jobs
            .for_each_concurrent(self.settings.concurrency, |job| async move {
                if run.past_stop() {
                    run.bump(|r| r.stopped_early = true);
                    return;
                }
                // TikTok's request is bounded by the stop instant inside
                // (`ask`); what comes after an answer finishes by `finish_by`.
                let then = match timeout_at(run.finish_by, self.check_job(&job, run)).await {
                    Ok(then) => then,
                    Err(_) => {
                        tracing::warn!(job_id = %job.id, "job check cut off before its write finished; next run");
                        run.bump(|r| {
                            r.cut_off += 1;
                            r.stopped_early = true;
                        });
                        return;
                    }
                };
                if let Then::Release(jobs) = then {
                    for (job, why) in jobs {
                        if run.past_stop() {
                            run.bump(|r| r.stopped_early = true);
                            return;
                        }
                        self.release(&job, why, run).await;
                    }
                }
            })
            .await;
    }

    /// Reads the next page of a shard into its buffer. `false` when the
    /// stop instant came first (the walk ends).
    async fn read_page(&self, walk: &mut ShardWalk, run: &Run) -> bool {
        let cursor = walk.cursor.take();
        let read = timeout_at(
            run.stop_at,
            self.jobs
                .due_unfinished(walk.shard, run.due_by, self.settings.page_size, cursor),
        )
        .await;
        walk.started = true;
        let page = match read {
            Err(_) => {
                run.bump(|r| r.stopped_early = true);
                return false;
            }
            Ok(Err(err)) => {
                // The shard waits for the next run; the others go on.
                tracing::error!(shard = walk.shard, error = %err, "cannot read due jobs");
                run.bump(|r| r.errors += 1);
                return true;
            }
            Ok(Ok(page)) => page,
        };
        run.bump(|r| {
            r.index_queries += 1;
            r.index_items_read += page.scanned_count;
            r.index_read_units += page.read_units;
            r.index_consumed_units += page.consumed_units.unwrap_or(0.0);
            r.unreadable_jobs += page.unreadable;
            r.jobs_seen += count(page.jobs.len());
        });
        walk.cursor = page.next;
        walk.buffer
            .extend(page.index_due.into_iter().zip(page.jobs));
        true
    }

    async fn check_job(&self, job: &Job, run: &Run) -> Then {
        let now = self.clock.now();
        // An account that can no longer post: what TikTok never got ends
        // here; what it has is left to follow once the creator reconnects.
        if let Some(open_id) = job.open_id.as_deref() {
            let account = run.accounts.get(open_id);
            let state = if run.is_lost(open_id) {
                Some(AccountState::NeedsReconnect)
            } else {
                account
                    .map(|a| a.state)
                    .filter(|s| *s != AccountState::Active)
            };
            if let Some(state) = state {
                self.account_cannot_post(job, state, account, run).await;
                return Then::Nothing;
            }
        }
        match job.status {
            JobStatus::Claimed | JobStatus::Uploading => {
                if is_stuck(job.status, job.updated_at, now) {
                    self.flag_stuck(job, None, run).await;
                } else {
                    // The upload function's to move; look again when it
                    // would count as stuck.
                    self.reschedule(job, job.updated_at + STUCK_AFTER, run)
                        .await;
                }
                Then::Nothing
            }
            JobStatus::Processing => {
                self.follow(job, run).await;
                Then::Nothing
            }
            // A stuck job TikTok knows may still move; one it does not know
            // waits for an operator.
            JobStatus::Stuck if job.publish_id.is_some() => {
                self.follow(job, run).await;
                Then::Nothing
            }
            JobStatus::Inbox => {
                if now - job.updated_at >= INBOX_FOLLOW_FOR {
                    self.stop_following(job, run).await;
                } else {
                    self.follow(job, run).await;
                }
                Then::Nothing
            }
            JobStatus::RetryWait if job.not_before.is_none_or(|at| at <= now) => {
                match job.live_publish_id() {
                    Some(publish_id) => self.before_retry(job, publish_id, run).await,
                    None => Then::Release(vec![(job.clone(), Released::Retry)]),
                }
            }
            // Accounts with held uploads were looked at first in the run; a
            // held job whose queue entry predates the index of held uploads
            // is released as soon as the walk meets it.
            JobStatus::Queued => match job.open_id.as_deref() {
                Some(open_id) => {
                    if let Ok(mut seen) = run.held_seen.lock() {
                        seen.insert(open_id.to_owned());
                    }
                    if run.first_held_check(open_id) {
                        self.held_to_release(open_id, run).await
                    } else {
                        Then::Nothing
                    }
                }
                None => Then::Nothing,
            },
            _ => Then::Nothing,
        }
    }

    /// A job of an account that cannot post (revoked, or it must reconnect).
    /// Held and never-sent jobs fail with what to do. Jobs TikTok has (an
    /// upload under way, processing, in the inbox, or a retry that may have
    /// reached TikTok) are kept: their drafts may still arrive, and after a
    /// reconnect they are followed again. They are not asked about (no token
    /// would work) and are flagged stuck after 30 minutes like any job that
    /// does not move.
    async fn account_cannot_post(
        &self,
        job: &Job,
        state: AccountState,
        account: Option<&Account>,
        run: &Run,
    ) {
        let now = self.clock.now();
        // A job whose init was started without an answer may be a draft at
        // TikTok already: failing it with "upload it again" could make a
        // second one, so it stays flagged for the operator instead.
        let init_in_doubt = job.init_started_at.is_some();
        let not_sent = match job.status {
            JobStatus::Queued => true,
            JobStatus::Claimed => !init_in_doubt,
            JobStatus::RetryWait => job.live_publish_id().is_none(),
            JobStatus::Stuck => job.publish_id.is_none() && !init_in_doubt,
            _ => false,
        };
        if not_sent {
            let code = match state {
                AccountState::Revoked => "account_revoked",
                _ => "reconnect_needed",
            };
            let message = format!(
                "the account is {state}{}. {RECONNECT_MESSAGE}",
                account
                    .and_then(|a| a.state_reason.as_deref())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
            self.fail(job, code, message, run).await;
            return;
        }
        if is_stuck(job.status, job.updated_at, now) {
            self.flag_stuck(job, None, run).await;
        } else if job.status == JobStatus::Inbox && now - job.updated_at >= INBOX_FOLLOW_FOR {
            self.stop_following(job, run).await;
        } else {
            self.reschedule(job, now + PARKED_FOR, run).await;
        }
    }

    /// Asks TikTok once where the upload stands: through the gate and the
    /// per-token limit, one HTTP attempt, counted.
    async fn ask(&self, job: &Job, open_id: &str, publish_id: &str, run: &Run) -> Asked {
        match run.gate.wait_open(run.stop_at).await {
            Ok(()) => {}
            Err(Closed::UntilNextRun) => {
                run.bump(|r| r.rate_limited += 1);
                return Asked::NotNow;
            }
            Err(Closed::NotRecorded) => {
                run.bump(|r| r.errors += 1);
                return Asked::NotNow;
            }
        }
        let token = match self.token(open_id).await {
            Ok(token) => token,
            Err(err) => {
                let reconnect = err.needs_reconnect();
                if reconnect {
                    run.account_lost(open_id);
                }
                tracing::warn!(job_id = %job.id, open_id, reconnect, error = %err, "no token for the status check");
                run.bump(|r| r.errors += 1);
                return Asked::NoToken;
            }
        };
        // The slot is stamped when the answer is back (or, when the stop
        // instant cuts the request off, when it is dropped): see
        // `rate_limit`.
        let Some(slot) = run.limit.try_take(open_id, Instant::now()) else {
            run.bump(|r| r.rate_limited += 1);
            return Asked::NotNow;
        };
        run.bump(|r| r.status_requests += 1);
        let _sending = run.gate.sending();
        let answer = timeout_at(
            run.stop_at,
            self.tiktok
                .fetch_status_once(&token.access_token, publish_id),
        )
        .await;
        slot.finish(Instant::now());
        let Ok(answer) = answer else {
            tracing::info!(job_id = %job.id, "status check cut off at the stop instant; next run");
            run.bump(|r| {
                r.cut_off += 1;
                r.stopped_early = true;
            });
            return Asked::CutOff;
        };
        match answer {
            Ok(status) => Asked::Answer(status),
            Err(err) => {
                tracing::warn!(job_id = %job.id, open_id, publish_id, error = %err, "status check refused");
                run.bump(|r| r.errors += 1);
                match err.class() {
                    ErrorClass::NeedsRefresh => self.forget_token(open_id),
                    // The token works but lacks what status needs: only a
                    // new login fixes that, for every job of the account.
                    ErrorClass::NeedsReauthorization => {
                        run.account_lost(open_id);
                        let reason = format!("TikTok refused a status check: {}", err.code_str());
                        if let Err(e) = self
                            .accounts
                            .set_state(open_id, AccountState::NeedsReconnect, Some(&reason))
                            .await
                        {
                            tracing::warn!(open_id, error = %e, "could not mark the account needs_reconnect");
                        }
                    }
                    _ => {}
                }
                Asked::Refused(err)
            }
        }
    }

    /// Follows a job TikTok has (processing, stuck, in the inbox) and
    /// records what it says.
    async fn follow(&self, job: &Job, run: &Run) {
        let (Some(open_id), Some(publish_id)) = (job.open_id.as_deref(), job.publish_id.as_deref())
        else {
            return;
        };
        let status = match self.ask(job, open_id, publish_id, run).await {
            Asked::Answer(status) => status,
            Asked::Refused(err) if is_unknown_publish(&err) => {
                if job.status == JobStatus::Inbox {
                    // The draft was delivered; TikTok no longer answers for
                    // it (an old draft), so there is nothing left to learn.
                    self.stop_following(job, run).await;
                } else {
                    let message =
                        format!("TikTok cannot give this upload's status ({err}); upload it again");
                    self.fail(job, err.code_str(), message, run).await;
                }
                return;
            }
            // Asked, and no answer: it moves on, so that one publish TikTok
            // keeps failing does not come first every run.
            Asked::Refused(_) | Asked::NoToken => {
                self.not_answered(job, run, true).await;
                return;
            }
            // Not asked (the limit, the gate): it keeps its place, ahead of
            // the jobs asked about this run, so the next run asks it first.
            Asked::NotNow => {
                self.not_answered(job, run, false).await;
                return;
            }
            Asked::CutOff => return,
        };
        let now = self.clock.now();
        match after_job_status(job, &status, now, &self.policy) {
            Decision::Stay => {
                if job.status != JobStatus::Stuck && is_stuck(job.status, job.updated_at, now) {
                    self.flag_stuck(job, Some(&status), run).await;
                } else {
                    self.reschedule(job, self.next_look(job, now), run).await;
                }
            }
            Decision::Move(step) => {
                let to = step.to;
                let changes = self
                    .status_changes(job, Changes::from(step), &status, run)
                    .await;
                self.move_job(job, to, changes, run).await;
            }
        }
    }

    /// A check that got no answer: a job that has not moved for 30 minutes
    /// is flagged stuck (whatever kept it from being asked, so it is not
    /// polled forever unnoticed); any other one moves back in the index when
    /// `move_on` (it was asked), so the next run asks others first.
    async fn not_answered(&self, job: &Job, run: &Run, move_on: bool) {
        let now = self.clock.now();
        if is_stuck(job.status, job.updated_at, now) {
            self.flag_stuck(job, None, run).await;
        } else if move_on {
            self.reschedule(job, self.next_look(job, now), run).await;
        }
    }

    /// When a job the checker looked at and left should be looked at again.
    fn next_look(&self, job: &Job, now: DateTime<Utc>) -> DateTime<Utc> {
        if job.status == JobStatus::Inbox {
            now + INBOX_FOLLOW_EVERY
        } else {
            // Due again at once, behind every job due before it.
            now
        }
    }

    /// A job waiting to retry that still carries a publish_id TikTok may
    /// have (the last chunk's answer was lost, a timeout after the bytes
    /// went): asked about first, and followed instead of initialised again
    /// when TikTok has it, which would make a second draft.
    async fn before_retry(&self, job: &Job, publish_id: &str, run: &Run) -> Then {
        let Some(open_id) = job.open_id.as_deref() else {
            return Then::Release(vec![(job.clone(), Released::Retry)]);
        };
        let status = match self.ask(job, open_id, publish_id, run).await {
            Asked::Answer(status) => status,
            // TikTok does not know it: a new init is the only way.
            Asked::Refused(err) if is_unknown_publish(&err) => {
                return Then::Release(vec![(job.clone(), Released::Retry)]);
            }
            // Not knowing is no reason to init again: next run.
            Asked::Refused(_) | Asked::NoToken => {
                self.reschedule(job, self.clock.now(), run).await;
                return Then::Nothing;
            }
            Asked::NotNow | Asked::CutOff => return Then::Nothing,
        };
        let now = self.clock.now();
        let to = match &status.status {
            // TikTok is still receiving bytes and has fewer than the file
            // holds: that upload will not finish; a new one will.
            PublishState::ProcessingUpload if upload_incomplete(job, &status) => {
                return Then::Release(vec![(job.clone(), Released::Retry)]);
            }
            PublishState::ProcessingUpload | PublishState::ProcessingDownload => {
                JobStatus::Processing
            }
            PublishState::SendToUserInbox if job.post.is_draft() => JobStatus::Inbox,
            PublishState::SendToUserInbox => JobStatus::Processing,
            PublishState::PublishComplete => JobStatus::Published,
            // A passing failure of this publish is the one the job is
            // waiting out: its attempt was counted when it entered
            // `retry_wait` (the webhook's `decide` takes the same news as
            // none), so it is retried now without counting it again, or a
            // job at its fourth attempt would fail without its fifth.
            PublishState::Failed
                if status
                    .fail_reason
                    .as_ref()
                    .is_some_and(|reason| reason.is_retryable()) =>
            {
                return Then::Release(vec![(job.clone(), Released::Retry)]);
            }
            PublishState::Failed => {
                // A failure that ends it.
                return match after_status(job.status, job.attempts, &status, now, &self.policy) {
                    Decision::Move(step) if step.to != JobStatus::RetryWait => {
                        let to = step.to;
                        let changes = self
                            .status_changes(job, Changes::from(step), &status, run)
                            .await;
                        self.move_job(job, to, changes, run).await;
                        Then::Nothing
                    }
                    _ => Then::Release(vec![(job.clone(), Released::Retry)]),
                };
            }
            PublishState::Other(_) => {
                self.reschedule(job, now, run).await;
                return Then::Nothing;
            }
        };
        tracing::info!(job_id = %job.id, publish_id, tiktok_status = status.status.as_str(), "TikTok has the upload of a job waiting to retry; following it");
        let changes = Changes {
            attempts: Some(job.attempts),
            ..Changes::default()
        };
        let changes = self.status_changes(job, changes, &status, run).await;
        if self.move_job(job, to, changes, run).await {
            run.bump(|r| r.retries_found_at_tiktok += 1);
        }
        Then::Nothing
    }

    /// What a move records besides the step: TikTok's status, fail reason,
    /// post ids and, when the account's username is known, the posts'
    /// public links.
    async fn status_changes(
        &self,
        job: &Job,
        changes: Changes,
        status: &PublishStatus,
        run: &Run,
    ) -> Changes {
        let mut changes = changes.with_tiktok_status(status);
        if !status.post_ids.is_empty()
            && let Some(open_id) = job.open_id.as_deref()
        {
            let username = self.username(open_id, run).await;
            changes.share_urls = share_urls(username.as_deref(), &status.post_ids);
        }
        changes
    }

    /// The account's username: recorded on the account, or learnt from
    /// `creator_info` (which needs `video.publish`, as direct posts have) at
    /// most once per account and run.
    async fn username(&self, open_id: &str, run: &Run) -> Option<String> {
        let account = run.accounts.get(open_id)?;
        if let Some(name) = &account.username {
            return Some(name.clone());
        }
        if let Ok(known) = run.usernames.lock()
            && let Some(name) = known.get(open_id)
        {
            return name.clone();
        }
        let mut learnt = None;
        if account.scopes.iter().any(|s| s == PUBLISH_SCOPE)
            && let Ok(token) = self.token(open_id).await
        {
            match self.tiktok.creator_info(&token.access_token).await {
                Ok(info) => {
                    learnt = info
                        .creator_username
                        .filter(|name| shared::accounts::is_username(name));
                    if let Some(name) = &learnt
                        && let Err(err) = self.accounts.record_username(open_id, name).await
                    {
                        tracing::warn!(open_id, error = %err, "could not record the username");
                    }
                }
                Err(err) => {
                    tracing::warn!(open_id, error = %err, "creator_info failed; no share link this time");
                }
            }
        }
        if let Ok(mut known) = run.usernames.lock() {
            known.insert(open_id.to_owned(), learnt.clone());
        }
        learnt
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

    /// Moves a job; a job someone else moved meanwhile is left to them. A
    /// draft that stops holding a pending-draft slot marks its account for
    /// a second look at its held uploads.
    async fn move_job(&self, job: &Job, to: JobStatus, changes: Changes, run: &Run) -> bool {
        match self
            .jobs
            .transition(job, to, changes, self.clock.now())
            .await
        {
            Ok(_) => {
                run.moved(to);
                if job.post.is_draft()
                    && job.status.holds_draft_slot()
                    && !to.holds_draft_slot()
                    && let (Some(open_id), Ok(mut freed)) = (job.open_id.as_ref(), run.freed.lock())
                {
                    freed.insert(open_id.clone());
                }
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

    /// Moves the job's place in the index on (see [`Jobs::reschedule`]).
    async fn reschedule(&self, job: &Job, at: DateTime<Utc>, run: &Run) {
        match self.jobs.reschedule(job, at).await {
            Ok(true) => run.bump(|r| r.rescheduled += 1),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "could not move the job on in the index");
                run.bump(|r| r.errors += 1);
            }
        }
    }

    async fn stop_following(&self, job: &Job, run: &Run) {
        match self.jobs.stop_following(job).await {
            Ok(true) => run.bump(|r| r.inbox_unfollowed += 1),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "could not stop following the draft");
                run.bump(|r| r.errors += 1);
            }
        }
    }

    /// Sends a held or waiting job back through the upload path: `claimed`
    /// first (so the upload function takes it), then the message; if the
    /// message cannot be sent the job goes back to where it was (held, or
    /// waiting to retry) for the next run.
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
                run.moved(JobStatus::Claimed);
                run.bump(|r| match why {
                    Released::Retry => r.retries_released += 1,
                    Released::Held => r.queued_released += 1,
                });
                true
            }
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "released job not sent; it waits for the next run");
                run.bump(|r| r.errors += 1);
                // Back where it came from: a held job to the held queue (its
                // entry is keyed by its creation time, so it keeps its place
                // and is released as held, not as a retry ahead of the
                // others); a retry to wait, due at once.
                let (to, back) = match why {
                    Released::Held => (JobStatus::Queued, Changes::default()),
                    Released::Retry => (
                        JobStatus::RetryWait,
                        Changes {
                            not_before: Some(self.clock.now()),
                            ..Changes::default()
                        },
                    ),
                };
                if let Err(err) = self
                    .jobs
                    .transition(&claimed, to, back, self.clock.now())
                    .await
                {
                    tracing::error!(job_id = %job.id, error = %err, "released job neither sent nor put back; it will be flagged stuck");
                }
                false
            }
        }
    }

    /// The account's held uploads that fit its free pending-draft slots,
    /// oldest first.
    async fn held_to_release(&self, open_id: &str, run: &Run) -> Then {
        let pending = match self.jobs.pending_drafts(open_id, self.clock.now()).await {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(open_id, error = %err, "cannot count pending drafts");
                run.bump(|r| r.errors += 1);
                return Then::Nothing;
            }
        };
        let free = MAX_PENDING_DRAFTS.saturating_sub(pending);
        if free == 0 {
            return Then::Nothing;
        }
        // Not before their hold time: a job TikTok refused for its own count
        // of pending drafts waits out that hold even when ours shows a slot.
        match self
            .jobs
            .releasable_for_account(open_id, free, self.clock.now())
            .await
        {
            Ok(held) => {
                for job in &held {
                    tracing::info!(job_id = %job.id, open_id, pending, "releasing a held upload");
                }
                Then::Release(held.into_iter().map(|j| (j, Released::Held)).collect())
            }
            Err(err) => {
                tracing::warn!(open_id, error = %err, "cannot read held uploads");
                run.bump(|r| r.errors += 1);
                Then::Nothing
            }
        }
    }

    /// At the start of a run: for every account with held uploads (one
    /// Query of their index partition), releases as many as it has free
    /// pending-draft slots, oldest first.
    async fn release_held(&self, run: &Run) {
        let accounts = match timeout_at(run.stop_at, self.jobs.accounts_with_held_uploads()).await {
            Ok(Ok(accounts)) => accounts,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "cannot list accounts with held uploads; the walk finds them");
                run.bump(|r| r.errors += 1);
                return;
            }
            Err(_) => {
                run.bump(|r| r.stopped_early = true);
                return;
            }
        };
        for open_id in accounts {
            if run.past_stop() {
                run.bump(|r| r.stopped_early = true);
                return;
            }
            // An account that cannot post fails its held jobs in the walk.
            let active = run
                .accounts
                .get(&open_id)
                .is_some_and(|a| a.state == AccountState::Active);
            if !active {
                continue;
            }
            if let Ok(mut seen) = run.held_seen.lock() {
                seen.insert(open_id.clone());
            }
            if !run.first_held_check(&open_id) {
                continue;
            }
            if !self.release_held_of(&open_id, run).await {
                return;
            }
        }
    }

    /// Releases what the account's free slots allow of its held uploads.
    /// `false` when the run reached its stop instant meanwhile (recorded in
    /// the report), so the caller stops too.
    async fn release_held_of(&self, open_id: &str, run: &Run) -> bool {
        let then = match timeout_at(run.stop_at, self.held_to_release(open_id, run)).await {
            Ok(then) => then,
            Err(_) => {
                run.bump(|r| r.stopped_early = true);
                return false;
            }
        };
        if let Then::Release(jobs) = then {
            for (job, why) in jobs {
                // Each release is a few writes and a message: one that
                // started runs to its end, but none starts past the stop.
                if run.past_stop() {
                    run.bump(|r| r.stopped_early = true);
                    return false;
                }
                self.release(&job, why, run).await;
            }
        }
        true
    }

    /// A second look at the held uploads of accounts whose drafts freed a
    /// slot during this run (a draft posted or failed after their held jobs
    /// were looked at), while there is time.
    async fn release_freed(&self, run: &Run) {
        let accounts: Vec<String> = match (run.held_seen.lock(), run.freed.lock()) {
            (Ok(seen), Ok(freed)) => seen.intersection(&freed).cloned().collect(),
            _ => Vec::new(),
        };
        for open_id in accounts {
            if run.past_stop() {
                run.bump(|r| r.stopped_early = true);
                return;
            }
            if !self.release_held_of(&open_id, run).await {
                return;
            }
        }
    }
}

/// One shard's part of the walk: the jobs read and not yet handed out, and
/// where its next page starts.
struct ShardWalk {
    shard: u8,
    buffer: std::collections::VecDeque<(DateTime<Utc>, Job)>,
    cursor: Option<PageKey>,
    started: bool,
}

impl ShardWalk {
    fn new(shard: u8) -> Self {
        Self {
            shard,
            buffer: std::collections::VecDeque::new(),
            cursor: None,
            started: false,
        }
    }

    /// Whether the shard's buffer ran out and it has (or may have) more.
    fn needs_page(&self) -> bool {
        self.buffer.is_empty() && (!self.started || self.cursor.is_some())
    }
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::jobs::{JobKind, NewJob, ObjectVersion, PostTarget, Upload};
    use shared::tiktok::ChunkPlan;

    const SIZE: u64 = 30_000_000;

    fn job(next_offset: u64, file_upload: bool) -> Job {
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "b".into(),
                    key: "uploads/alice/a.mp4".into(),
                    version: ObjectVersion::ETag("e".into()),
                    size: SIZE,
                },
                alias: Some("alice".into()),
                open_id: Some("open-a".into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: None,
            },
            Utc::now(),
        );
        job.status = JobStatus::RetryWait;
        job.publish_id = Some("p1".into());
        job.next_offset = next_offset;
        if file_upload {
            job.chunk_plan = Some(ChunkPlan::new(SIZE, 10_000_000).expect("a plan"));
        }
        job
    }

    fn uploading(uploaded_bytes: Option<u64>) -> PublishStatus {
        PublishStatus {
            status: PublishState::ProcessingUpload,
            fail_reason: None,
            post_ids: Vec::new(),
            uploaded_bytes,
            downloaded_bytes: None,
        }
    }

    #[test]
    fn tiktoks_byte_count_decides_when_it_is_given() {
        assert!(upload_incomplete(
            &job(SIZE, true),
            &uploading(Some(SIZE - 1))
        ));
        assert!(!upload_incomplete(&job(0, true), &uploading(Some(SIZE))));
    }

    /// Without `uploaded_bytes`, chunks the job never had acknowledged mean
    /// the upload cannot finish: it is retried, not followed as complete.
    #[test]
    fn without_a_byte_count_the_jobs_own_offset_decides() {
        assert!(upload_incomplete(&job(10_000_000, true), &uploading(None)));
        assert!(upload_incomplete(&job(0, true), &uploading(None)));
        assert!(!upload_incomplete(&job(SIZE, true), &uploading(None)));
        // A pull has no offset of ours to judge by.
        assert!(!upload_incomplete(&job(0, false), &uploading(None)));
    }
}
