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
//!
//! One file a part of the run: [`tokens`] (the sweep and the warm token
//! cache), [`walk`] (the index walk and what each due job needs),
//! [`follow`] (asking TikTok about a job and recording what it says),
//! [`release`] (sending retries and held uploads back through the upload
//! path) and [`report`] (what a run did).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use shared::accounts::{Account, Accounts};
use shared::clock::Clock;
use shared::jobs::{JobRetryPolicy, JobStatus, Jobs};
use shared::tiktok::TikTokClient;
use shared::tokens::{FreshToken, SecretsManagerTokenStore, TokenManager};
use tokio::time::Instant;

use crate::config::STATUS_REQUESTS_PER_MINUTE;
use crate::rate_limit::PerAccountLimit;
use crate::status_gate::StatusGate;
use crate::upload_path::SqsUploadPath;

mod follow;
mod release;
mod report;
mod tokens;
mod walk;

pub use report::RunReport;

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

/// The checker's parts, built once per cold start.
pub struct Checker {
    /// The job store.
    pub jobs: Jobs,
    /// The account store.
    pub accounts: Accounts,
    /// Access tokens, refreshed under a lease.
    pub tokens: TokenManager<SecretsManagerTokenStore>,
    /// TikTok's API.
    pub tiktok: TikTokClient,
    /// Where released jobs go.
    pub upload_path: SqsUploadPath,
    /// Now, for every decision of a run.
    pub clock: Clock,
    /// How failed jobs are retried.
    pub policy: JobRetryPolicy,
    /// How the checker paces itself.
    pub settings: CheckerSettings,
    /// Access tokens kept between warm runs, so a run does not open every
    /// account's secret again. Dropped when TikTok refuses one.
    token_cache: Mutex<HashMap<String, FreshToken>>,
}

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

impl Checker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        jobs: Jobs,
        accounts: Accounts,
        tokens: TokenManager<SecretsManagerTokenStore>,
        tiktok: TikTokClient,
        upload_path: SqsUploadPath,
        clock: Clock,
        policy: JobRetryPolicy,
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
        // rotated refresh token. So the run waits for every one to end,
        // whatever the deadline: each is bounded by its token call's
        // timeout and its save budget.
        if !self.tokens.refreshes_settled(Instant::now()).await {
            tracing::info!("waiting for token refreshes still running");
            self.tokens.refreshes_ended().await;
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
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
