//! The steps every upload shares: the one place its account is resolved,
//! its draft slot, its token and the TikTok calls made with it, and how a
//! refusal, a failure, an init in doubt or a handover is recorded.

use std::future::Future;

use super::outcome::{Flow, Hitch, Stop, retry};
use super::{Forwarder, Outcome, location};
use crate::accounts::{Account, AccountState};
use crate::jobs::{
    Changes, Job, JobError, JobStatus, LastError, SlotDecision, after_error, pending_share_wait,
};
use crate::secret::Secret;
use crate::tiktok::{ApiErrorCode, TikTokError};
use crate::tokens::FreshToken;

impl Forwarder {
    /// The one place the job's account is resolved: the active account
    /// behind its alias, recorded on the job the first time; from then on
    /// the recorded account (`open_id`), whatever the alias names now. An
    /// unknown, gone or inactive account fails the job, saying why.
    pub(super) async fn account(&self, job: Job) -> Flow<(Job, Account)> {
        // Resolved once, kept for good: a retry after the alias moved to
        // another TikTok account still posts to the job's own account (or
        // fails), never to the alias's new holder.
        if let Some(open_id) = job.open_id.clone() {
            return self.own_account(job, &open_id).await;
        }
        let alias = job.alias.clone().unwrap_or_default();
        let account = match self.accounts.get_by_alias(&alias).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                let message = format!(
                    "no TikTok account is connected as \u{201c}{alias}\u{201d}; send the creator an invitation (tiktok-drafts invite --account {alias})"
                );
                return Err(self.fail(&job, "unknown_account", message).await);
            }
            Err(e) => return Err(retry("look up the account", e).into()),
        };
        if account.state != AccountState::Active {
            let message = format!(
                "the account \u{201c}{alias}\u{201d} is {}: connect it again with a new invitation",
                account.state
            );
            return Err(self.fail(&job, "account_not_active", message).await);
        }
        let job = self
            .jobs
            .set_account(&job, &account.open_id, self.clock.now())
            .await
            .map_err(|e| retry("record the account", e))?;
        Ok((job, account))
    }

    /// The account the job resolved earlier, whatever its alias says now.
    async fn own_account(&self, job: Job, open_id: &str) -> Flow<(Job, Account)> {
        let alias = job.alias.as_deref().unwrap_or_default();
        match self.accounts.get(open_id).await {
            Ok(Some(account)) if account.state == AccountState::Active => Ok((job, account)),
            Ok(Some(account)) => {
                let message = format!(
                    "the TikTok account this upload was started for (as \u{201c}{alias}\u{201d}) is {}: connect it again, or upload the file again for the alias's current account",
                    account.state
                );
                Err(self.fail(&job, "account_not_active", message).await)
            }
            Ok(None) => {
                let message = format!(
                    "the TikTok account this upload was started for (as \u{201c}{alias}\u{201d}) is no longer connected; nothing was sent to another account: upload the file again to post it for the alias's current account"
                );
                Err(self.fail(&job, "account_gone", message).await)
            }
            Err(e) => Err(retry("look up the job's account", e).into()),
        }
    }

    /// A pending-draft slot, or the job is held as `queued`.
    pub(super) async fn slot(&self, job: &Job) -> Flow<()> {
        match self.jobs.take_draft_slot(job, self.clock.now()).await {
            Ok(SlotDecision::Granted { .. } | SlotDecision::NotNeeded) => Ok(()),
            Ok(SlotDecision::Full { pending }) => {
                tracing::info!(job_id = %job.id, pending, "pending drafts full; upload held");
                self.jobs
                    .transition(job, JobStatus::Queued, Changes::default(), self.clock.now())
                    .await
                    .map_err(|e| retry("hold the upload", e))?;
                Err(Stop::Done(Outcome::Queued {
                    job_id: job.id.to_string(),
                }))
            }
            Err(JobError::Busy { .. }) => Err(retry("take a draft slot", "busy").into()),
            Err(e) => Err(retry("take a draft slot", e).into()),
        }
    }

    /// A fresh access token for the account, or the job fails when the
    /// account must reconnect.
    pub(super) async fn token(&self, job: &Job, open_id: &str) -> Flow<FreshToken> {
        match self.tokens.get_fresh_token(open_id).await {
            Ok(t) => Ok(t),
            Err(err) if err.needs_reconnect() => {
                Err(self.fail(job, "reconnect_needed", err.to_string()).await)
            }
            Err(err) => Err(retry("get a token", err).into()),
        }
    }

    /// The one place a TikTok call is made with an account's access token:
    /// what to do when TikTok refuses the token itself belongs here, for
    /// every call of an upload at once.
    pub(super) async fn with_token<T, F, Fut>(
        &self,
        token: &FreshToken,
        call: F,
    ) -> Result<T, TikTokError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, TikTokError>>,
    {
        call(token.access_token.clone()).await
    }

    /// A job flagged `stuck` that TikTok does not know yet and whose init
    /// never started goes back to `claimed`, to start over.
    pub(super) async fn restart_stuck(&self, job: Job) -> Flow<Job> {
        tracing::info!(job_id = %job.id, "resuming a stuck job that never reached TikTok");
        Ok(self
            .jobs
            .transition(
                &job,
                JobStatus::Claimed,
                Changes::default(),
                self.clock.now(),
            )
            .await
            .map_err(|e| retry("restart the stuck job", e))?)
    }

    /// A waiting job (held, or waiting to retry) that the one running the
    /// upload releases itself ([`super::WaitingJobs::ResumeHere`]) goes back
    /// to `claimed`. A retry whose earlier publish TikTok may still hold is
    /// not: only TikTok's answer about it can tell whether a new init would
    /// make a second draft, and the status checker asks for it.
    pub(super) async fn release_waiting(&self, job: Job) -> Flow<Job> {
        if let Some(publish_id) = job.live_publish_id() {
            return Err(retry(
                "retry the upload",
                format!(
                    "TikTok may still hold its earlier attempt (publish_id {publish_id}); the status checker asks TikTok before a new one is sent"
                ),
            )
            .into());
        }
        tracing::info!(job_id = %job.id, status = %job.status, "releasing a waiting job");
        Ok(self
            .jobs
            .transition(
                &job,
                JobStatus::Claimed,
                Changes::default(),
                self.clock.now(),
            )
            .await
            .map_err(|e| retry("release the waiting upload", e))?)
    }

    /// What a caller's part could not give: the job fails with its reason,
    /// or the upload is tried again later.
    pub(super) async fn hitch(&self, job: &Job, hitch: Hitch) -> Stop {
        match hitch {
            Hitch::Refused { code, message } => self.fail(job, code, message).await,
            Hitch::Retry(retry) => Stop::Retry(retry),
        }
    }

    /// Flags a job whose init may have reached TikTok without its answer
    /// being recorded: `stuck` with `init_unconfirmed` and what to check.
    pub(super) async fn flag_init_unconfirmed(&self, job: &Job, detail: String) -> Stop {
        let message = format!(
            "TikTok may have received the init for {} but its answer was not recorded ({detail}); it is not sent again by itself: look in the creator's TikTok inbox. If the draft is there, nothing more is needed (cancel this job); if not, upload the file again",
            location(&job.upload)
        );
        let error = LastError {
            code: "init_unconfirmed".into(),
            message: message.clone(),
        };
        tracing::warn!(job_id = %job.id, key = %job.upload.key, "init unconfirmed; flagged for the operator");
        let recorded = if job.status == JobStatus::Stuck {
            self.jobs.record_error(job, &error, self.clock.now()).await
        } else {
            let changes = Changes {
                attempts: Some(job.attempts),
                last_error: Some(error),
                ..Changes::default()
            };
            self.jobs
                .transition(job, JobStatus::Stuck, changes, self.clock.now())
                .await
        };
        if let Err(e) = recorded {
            return Stop::Retry(retry("flag the unconfirmed init", e));
        }
        Stop::Done(Outcome::Flagged {
            job_id: job.id.to_string(),
            code: "init_unconfirmed".into(),
            message,
        })
    }

    /// Records what TikTok's clear refusal of a request on the way to (or
    /// of) an init means: retry later, hold, or fail. `request` names it in
    /// the log (a `creator_info` refusal sent no init).
    pub(super) async fn refused(&self, job: &Job, err: &TikTokError, request: &str) -> Stop {
        let now = self.clock.now();
        let mut step = after_error(job.attempts, err, now, &self.job_retry);
        if err.api_code() == Some(&ApiErrorCode::SpamRiskTooManyPendingShare) {
            // TikTok counts drafts we cannot see: hold the job for longer
            // the longer it has waited, so the checker does not hammer.
            step.not_before = now.checked_add_signed(pending_share_wait(job.created_at, now));
        }
        tracing::info!(job_id = %job.id, request, error = %err, to = %step.to, not_before = ?step.not_before, "TikTok refused the request");
        let to = step.to;
        let recorded = step.error.clone().unwrap_or(LastError {
            code: err.code_str().to_owned(),
            message: err.to_string(),
        });
        if let Err(e) = self
            .jobs
            .transition(job, to, Changes::from(step), now)
            .await
        {
            return Stop::Retry(retry("record the init error", e));
        }
        let job_id = job.id.to_string();
        Stop::Done(match to {
            JobStatus::Queued => Outcome::Queued { job_id },
            JobStatus::RetryWait => Outcome::RetryScheduled {
                job_id,
                code: recorded.code,
                message: recorded.message,
            },
            _ => Outcome::Failed {
                job_id,
                code: recorded.code,
                message: recorded.message,
            },
        })
    }

    /// TikTok has the media (every byte sent, or the URLs to pull): the job
    /// is `processing` and the checker follows the rest.
    pub(super) async fn handed_over(&self, job: Job) -> Flow<Outcome> {
        let publish_id = job.publish_id().unwrap_or_default().to_owned();
        self.jobs
            .transition(
                &job,
                JobStatus::Processing,
                Changes::default(),
                self.clock.now(),
            )
            .await
            .map_err(|e| retry("record the handover", e))?;
        Ok(Outcome::Uploaded {
            job_id: job.id.to_string(),
            publish_id,
        })
    }

    /// Fails the job with `code` and `message`, recorded.
    pub(super) async fn fail(&self, job: &Job, code: &str, message: String) -> Stop {
        tracing::info!(job_id = %job.id, code, message = %message, "upload failed");
        let changes = Changes {
            last_error: Some(LastError {
                code: code.to_owned(),
                message: message.clone(),
            }),
            ..Changes::default()
        };
        if let Err(e) = self
            .jobs
            .transition(job, JobStatus::Failed, changes, self.clock.now())
            .await
        {
            return Stop::Retry(retry("record the failure", e));
        }
        Stop::Done(Outcome::Failed {
            job_id: job.id.to_string(),
            code: code.to_owned(),
            message,
        })
    }
}
