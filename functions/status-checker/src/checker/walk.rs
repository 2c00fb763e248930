//! The index walk: the due jobs of every shard, merged due-first, through
//! bounded concurrency, and what each one needs (a look at TikTok, a flag,
//! a release, nothing yet).

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt as _};
use shared::accounts::{Account, AccountState};
use shared::jobs::{
    INBOX_FOLLOW_FOR, Job, JobStatus, PageKey, RECONNECT_MESSAGE, STUCK_AFTER, UNFINISHED_SHARDS,
    is_stuck,
};
use tokio::time::timeout_at;

use super::release::{Released, Then};
use super::{Checker, Run, count};

/// How far the index place of a job that cannot be followed now (its
/// account must reconnect) moves on: it costs no request, but need not be
/// read every run either.
const PARKED_FOR: TimeDelta = TimeDelta::minutes(15);

impl Checker {
    /// Streams the due jobs of every shard, merged into one due-first order
    /// (the oldest due job of any shard comes next, so jobs left waiting by
    /// one run are the first of the next, whatever their shard), through at
    /// most `concurrency` workers. A shard's next page is read when its
    /// buffered jobs run out, so reading and checking overlap.
    pub(super) async fn follow_jobs(&self, run: &Run) {
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
            JobStatus::Stuck if job.publish_id().is_some() => {
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
        let init_in_doubt = job.init_started_at().is_some();
        let not_sent = match job.status {
            JobStatus::Queued => true,
            JobStatus::Claimed => !init_in_doubt,
            JobStatus::RetryWait => job.live_publish_id().is_none(),
            JobStatus::Stuck => job.publish_id().is_none() && !init_in_doubt,
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
}

/// One shard's part of the walk: the jobs read and not yet handed out, and
/// where its next page starts.
struct ShardWalk {
    shard: u8,
    buffer: VecDeque<(DateTime<Utc>, Job)>,
    cursor: Option<PageKey>,
    started: bool,
}

impl ShardWalk {
    fn new(shard: u8) -> Self {
        Self {
            shard,
            buffer: VecDeque::new(),
            cursor: None,
            started: false,
        }
    }

    /// Whether the shard's buffer ran out and it has (or may have) more.
    fn needs_page(&self) -> bool {
        self.buffer.is_empty() && (!self.started || self.cursor.is_some())
    }
}
