//! Following one job at TikTok: asking (through the gate and the per-token
//! limit, one HTTP attempt, counted), reading the answer through the state
//! machine, and recording what it says (moves, flags, the index place).

use chrono::{DateTime, Utc};
use shared::accounts::AccountState;
use shared::jobs::{
    Changes, Decision, INBOX_FOLLOW_EVERY, Job, JobError, JobStatus, LastError, RetryWaitNews,
    after_job_status, after_retry_wait_status, is_stuck,
};
use shared::tiktok::oauth::SCOPE_VIDEO_PUBLISH;
use shared::tiktok::posting::share_urls;
use shared::tiktok::{ApiErrorCode, ErrorClass, PublishStatus, TikTokError};
use shared::tokens::AuthedCallError;
use tokio::time::{Instant, timeout_at};

use super::release::{Released, Then};
use super::{Checker, Run};
use crate::status_gate::Closed;

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

impl Checker {
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
        let mut token = match self.token(open_id).await {
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
        // A token TikTok refuses is refreshed once and the request made
        // again with the new one (the token manager's one place for it).
        let rejected = token.access_token.clone();
        let answer = timeout_at(
            run.stop_at,
            self.tokens
                .call_with_token(&mut token, |access| async move {
                    self.tiktok.fetch_status_once(&access, publish_id).await
                }),
        )
        .await;
        slot.finish(Instant::now());
        if token.access_token != rejected {
            self.remember_token(&token);
        }
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
            Err(AuthedCallError::Token { error, .. }) => {
                self.forget_token(open_id);
                let reconnect = error.needs_reconnect();
                if reconnect {
                    run.account_lost(open_id);
                }
                tracing::warn!(job_id = %job.id, open_id, reconnect, error = %error, "TikTok refused the token and no new one could be had");
                run.bump(|r| r.errors += 1);
                Asked::NoToken
            }
            Err(AuthedCallError::TikTok(err)) => {
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
    pub(super) async fn follow(&self, job: &Job, run: &Run) {
        let (Some(open_id), Some(publish_id)) = (job.open_id.as_deref(), job.publish_id()) else {
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
    pub(super) async fn before_retry(&self, job: &Job, publish_id: &str, run: &Run) -> Then {
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
        let to = match after_retry_wait_status(job, &status, now, &self.policy) {
            RetryWaitNews::Retry => return Then::Release(vec![(job.clone(), Released::Retry)]),
            RetryWaitNews::Move(step) => {
                let to = step.to;
                let changes = self
                    .status_changes(job, Changes::from(step), &status, run)
                    .await;
                self.move_job(job, to, changes, run).await;
                return Then::Nothing;
            }
            RetryWaitNews::AskAgain => {
                self.reschedule(job, now, run).await;
                return Then::Nothing;
            }
            RetryWaitNews::Follow(to) => to,
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
        if account.scopes.iter().any(|s| s == SCOPE_VIDEO_PUBLISH)
            && let Ok(mut token) = self.token(open_id).await
        {
            let rejected = token.access_token.clone();
            let info = self
                .tokens
                .call_with_token(&mut token, |access| async move {
                    self.tiktok.creator_info(&access).await
                })
                .await;
            if token.access_token != rejected {
                self.remember_token(&token);
            }
            match info {
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

    pub(super) async fn flag_stuck(&self, job: &Job, status: Option<&PublishStatus>, run: &Run) {
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

    pub(super) async fn fail(&self, job: &Job, code: &str, message: String, run: &Run) {
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
    pub(super) async fn reschedule(&self, job: &Job, at: DateTime<Utc>, run: &Run) {
        match self.jobs.reschedule(job, at).await {
            Ok(true) => run.bump(|r| r.rescheduled += 1),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "could not move the job on in the index");
                run.bump(|r| r.errors += 1);
            }
        }
    }

    pub(super) async fn stop_following(&self, job: &Job, run: &Run) {
        match self.jobs.stop_following(job).await {
            Ok(true) => run.bump(|r| r.inbox_unfollowed += 1),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "could not stop following the draft");
                run.bump(|r| r.errors += 1);
            }
        }
    }
}
