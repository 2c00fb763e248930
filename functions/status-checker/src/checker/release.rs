//! Releasing: jobs whose backoff is over and held uploads that fit the
//! account's free pending-draft slots go back through the upload path
//! (`claimed` first, then the message; put back if the message fails).

use shared::accounts::AccountState;
use shared::jobs::{Changes, Job, JobError, JobStatus, MAX_PENDING_DRAFTS};
use tokio::time::timeout_at;

use super::{Checker, Run};

/// What a job's timed check leaves to do: releases run outside the cut-off.
pub(super) enum Then {
    Nothing,
    Release(Vec<(Job, Released)>),
}

/// Why a job goes back through the upload path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Released {
    /// Its backoff after a passing failure is over.
    Retry,
    /// A pending-draft slot freed up.
    Held,
}

impl Checker {
    /// Sends a held or waiting job back through the upload path: `claimed`
    /// first (so the upload function takes it), then the message; if the
    /// message cannot be sent the job goes back to where it was (held, or
    /// waiting to retry) for the next run.
    pub(super) async fn release(&self, job: &Job, why: Released, run: &Run) -> bool {
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
    pub(super) async fn held_to_release(&self, open_id: &str, run: &Run) -> Then {
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
    pub(super) async fn release_held(&self, run: &Run) {
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
    pub(super) async fn release_freed(&self, run: &Run) {
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
