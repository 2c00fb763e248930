//! The job state machine: statuses, the legal moves between them, and what a
//! TikTok answer or error means for a job. Plain code with no I/O; the store
//! applies what it decides.
//!
//! ```text
//!            ┌──────────── queued ◄────────┐ (5 pending drafts / spam_risk_too_many_pending_share)
//!            ▼                             │
//! (claim) claimed ──► uploading ──► processing ──► inbox ──► published
//!            ▲   (publish_id)   (bytes sent /   (draft     (posted; success
//!            │                   pull started)  delivered)  of a direct post)
//!            └──── retry_wait ◄── (passing failure, attempts < max)
//!  any unfinished ──► failed | cancelled | stuck (no progress for 30 min)
//!  stuck ──► uploading (a redelivery resumes the saved upload URL and offset)
//! ```

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::model::LastError;
use crate::backoff::Backoff;
use crate::tiktok::{
    ApiErrorCode, ErrorClass, FailReason, PublishState, PublishStatus, TikTokError,
};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobStatus {
    /// The upload is ours; nothing has been sent to TikTok yet.
    Claimed,
    /// Init succeeded and its `publish_id` is saved; bytes are going up.
    Uploading,
    /// Every byte is sent (or TikTok is pulling); TikTok is processing.
    Processing,
    /// `SEND_TO_USER_INBOX`: the draft reached the creator's inbox. Success
    /// for a draft; it may still become `published` when the creator posts.
    Inbox,
    /// `PUBLISH_COMPLETE`: the post is up.
    Published,
    /// Held: the account has 5 pending drafts already. Released to
    /// `claimed` when a slot frees up.
    Queued,
    /// Failed for a passing reason; tried again after `not_before`.
    RetryWait,
    /// Failed for good; the job carries the code and a message.
    Failed,
    /// The checker saw no progress for 30 minutes; someone should look.
    Stuck,
    /// Stopped for good, not for a fault of the media: TikTok reports the
    /// publish cancelled, or the S3 object changed or was deleted before its
    /// upload finished.
    Cancelled,
}

/// Every status, for exhaustive tests and listings.
pub const ALL_STATUSES: [JobStatus; 10] = [
    JobStatus::Claimed,
    JobStatus::Uploading,
    JobStatus::Processing,
    JobStatus::Inbox,
    JobStatus::Published,
    JobStatus::Queued,
    JobStatus::RetryWait,
    JobStatus::Failed,
    JobStatus::Stuck,
    JobStatus::Cancelled,
];

impl JobStatus {
    /// The name stored on the job and shown: `claimed`, `retry_wait`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "claimed",
            Self::Uploading => "uploading",
            Self::Processing => "processing",
            Self::Inbox => "inbox",
            Self::Published => "published",
            Self::Queued => "queued",
            Self::RetryWait => "retry_wait",
            Self::Failed => "failed",
            Self::Stuck => "stuck",
            Self::Cancelled => "cancelled",
        }
    }

    /// Reads [`JobStatus::as_str`]'s names; `None` for any other text.
    pub fn parse(value: &str) -> Option<Self> {
        ALL_STATUSES.into_iter().find(|s| s.as_str() == value)
    }

    /// Nothing moves a job out of a final status.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Published | Self::Failed | Self::Cancelled)
    }

    /// Whether the upload's own work is still to do: neither final nor
    /// `inbox` (a draft in the inbox is done, only the creator's posting is
    /// left). The index the checker walks holds these and `inbox` too; see
    /// [`JobStatus::is_followed`].
    pub fn is_unfinished(self) -> bool {
        !self.is_final() && self != Self::Inbox
    }

    /// Whether the job is in the index the checker walks: the unfinished
    /// statuses, and `inbox` too. A draft in the inbox is polled slowly
    /// ([`INBOX_FOLLOW_EVERY`]) until the creator posts it or it is
    /// [`INBOX_FOLLOW_FOR`] old, because without webhooks polling is the only
    /// way to see it posted, and a posted draft frees a pending-draft slot
    /// that a held upload is waiting for.
    pub fn is_followed(self) -> bool {
        self.is_unfinished() || self == Self::Inbox
    }

    /// Whether the job's last error explains where it is now: a job that is
    /// held, waiting to retry, failed, stuck or cancelled is there because
    /// of it. In any other status the job got past it (it was retried, or
    /// it reached the inbox), so the error is history, not news.
    pub fn error_is_current(self) -> bool {
        matches!(
            self,
            Self::Queued | Self::RetryWait | Self::Failed | Self::Stuck | Self::Cancelled
        )
    }

    /// Whether a draft in this status takes one of the account's 5 pending
    /// inbox slots (TikTok: a share counts from init until it is posted or
    /// 24 hours old). `claimed` holds the slot it reserved just before init;
    /// `stuck` keeps it, since TikTok may still be holding the upload.
    pub fn holds_draft_slot(self) -> bool {
        matches!(
            self,
            Self::Claimed | Self::Uploading | Self::Processing | Self::Inbox | Self::Stuck
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a job cannot go from {from} to {to}: {why}")]
pub struct IllegalTransition {
    /// The job's status.
    pub from: JobStatus,
    /// The status asked for.
    pub to: JobStatus,
    /// Which rule forbids it, in words.
    pub why: &'static str,
}

/// Whether `from -> to` is allowed. `has_publish_id` says whether TikTok
/// already knows the upload: a stuck job that was initialised must not go
/// back to `claimed`, because that would init a second time; it has to go
/// through `retry_wait` (a deliberate new attempt) or learn TikTok's status.
/// `stuck` is an operator's flag, not an end: a stuck job with a
/// `publish_id` may go back to `uploading` to resume its saved upload.
pub fn check_transition(
    from: JobStatus,
    to: JobStatus,
    has_publish_id: bool,
) -> Result<(), IllegalTransition> {
    use JobStatus::*;
    let illegal = |why| Err(IllegalTransition { from, to, why });
    if from.is_final() {
        return illegal("the job is finished");
    }
    if from == to {
        return illegal("that is the status it has");
    }
    let allowed = match from {
        Claimed => matches!(
            to,
            Uploading | Queued | RetryWait | Failed | Stuck | Cancelled
        ),
        // TikTok may report the end while we still think we are uploading
        // (a crash after the last chunk), hence inbox and published.
        Uploading => matches!(
            to,
            Processing | Inbox | Published | RetryWait | Failed | Stuck | Cancelled
        ),
        Processing => matches!(
            to,
            Inbox | Published | RetryWait | Failed | Stuck | Cancelled
        ),
        // The creator posts it, TikTok fails it late, or it is cancelled.
        Inbox => matches!(to, Published | Failed | Cancelled),
        Queued => matches!(to, Claimed | Failed | Cancelled),
        // A job waiting to retry whose upload TikTok turns out to have (the
        // last chunk's answer was lost) is followed, not initialised again.
        RetryWait => {
            matches!(to, Claimed | Failed | Cancelled)
                || (has_publish_id && matches!(to, Processing | Inbox | Published))
        }
        Stuck => {
            if to == Claimed && has_publish_id {
                return illegal("TikTok already has this upload; going back would init twice");
            }
            if to == Uploading && !has_publish_id {
                return illegal("there is no upload to resume without a publish_id");
            }
            matches!(
                to,
                Claimed
                    | Uploading
                    | Processing
                    | Inbox
                    | Published
                    | RetryWait
                    | Failed
                    | Cancelled
            )
        }
        Published | Failed | Cancelled => false,
    };
    if allowed {
        Ok(())
    } else {
        illegal("not a step of the job's life")
    }
}

/// How often a draft in the creator's inbox is asked about (to see it
/// posted). Four requests an hour per draft; at most 5 drafts are pending per
/// account, so this stays far below 30 status requests a minute.
pub const INBOX_FOLLOW_EVERY: TimeDelta = TimeDelta::minutes(15);

/// How long a draft in the inbox is followed: TikTok counts it as pending
/// for 24 hours after init, after which posting it frees no slot. Measured
/// from its arrival in the inbox (a little after init), so never too short.
pub const INBOX_FOLLOW_FOR: TimeDelta = TimeDelta::hours(24);

/// How long claimed, uploading or processing work may go without any change
/// before the checker flags the job `stuck`.
pub const STUCK_AFTER: TimeDelta = TimeDelta::minutes(30);

/// Whether the checker should flag the job `stuck`: it is doing work that
/// should move by itself (claimed, uploading, processing) and nothing changed
/// for [`STUCK_AFTER`]. Queued and waiting jobs wait on purpose; TikTok's
/// processing has no guaranteed limit, but 4 GB take about two minutes.
pub fn is_stuck(status: JobStatus, updated_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    matches!(
        status,
        JobStatus::Claimed | JobStatus::Uploading | JobStatus::Processing
    ) && now.signed_duration_since(updated_at) >= STUCK_AFTER
}

/// How a job's failures are retried: when it is tried again (`not_before`)
/// and how often before it fails for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRetryPolicy {
    /// The wait after each failed attempt: from 1 minute, doubled per
    /// attempt, at most an hour. Not jittered: it is recorded on the job
    /// for people to read, and the checker's runs spread it anyway.
    pub wait: Backoff,
    /// Attempts in all; the one that fails last makes the job `failed`.
    pub max_attempts: u32,
    /// How long to wait out TikTok's other 24-hour caps (posts per day,
    /// active creators) before trying again.
    pub cap_wait: Duration,
}

impl Default for JobRetryPolicy {
    fn default() -> Self {
        Self {
            wait: Backoff::new(Duration::from_secs(60), Duration::from_secs(3600)),
            max_attempts: 5,
            cap_wait: Duration::from_secs(24 * 3600),
        }
    }
}

impl JobRetryPolicy {
    /// The wait after `attempts` failed tries: `base * 2^attempts`, capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        self.wait.step(attempts)
    }
}

/// Where the state machine sends a job, and what to record with the move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The status to move to.
    pub to: JobStatus,
    /// The failed-attempt count after this step.
    pub attempts: u32,
    /// Not to be picked up before this (the backoff of a retry, a held
    /// job's next look); `None` clears it.
    pub not_before: Option<DateTime<Utc>>,
    /// The failure to record on the job; `None` leaves the last one as it
    /// is.
    pub error: Option<LastError>,
}

/// What a status answer means for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to move; TikTok is still working, or it says what we know.
    Stay,
    /// Move the job as the step says.
    Move(Step),
}

/// The message a job gets when the creator must connect the account again.
pub const RECONNECT_MESSAGE: &str = "TikTok no longer accepts this account's authorization; reconnect the account, then retry the upload.";

/// What TikTok's `status/fetch` answer means for a job in `current` with
/// `attempts` failed tries so far.
pub fn after_status(
    current: JobStatus,
    attempts: u32,
    status: &PublishStatus,
    now: DateTime<Utc>,
    policy: &JobRetryPolicy,
) -> Decision {
    let to = match &status.status {
        // Still going. A stuck job stays flagged: "still processing" is no
        // progress, and moving it back would only flip it every 30 minutes.
        PublishState::ProcessingUpload | PublishState::ProcessingDownload => {
            return Decision::Stay;
        }
        PublishState::SendToUserInbox => JobStatus::Inbox,
        PublishState::PublishComplete => JobStatus::Published,
        PublishState::Failed => {
            return Decision::Move(after_fail_reason(
                attempts,
                status.fail_reason.as_ref(),
                now,
                policy,
            ));
        }
        // A status this code does not know: record nothing, look again later.
        PublishState::Other(_) => return Decision::Stay,
    };
    if to == current {
        return Decision::Stay;
    }
    Decision::Move(Step {
        to,
        attempts,
        not_before: None,
        error: None,
    })
}

/// What TikTok's `status/fetch` answer (or the same news by webhook) means
/// for `job`, taking its post target into account:
///
/// - a direct post succeeds only with `PUBLISH_COMPLETE`; `SEND_TO_USER_INBOX`
///   is a draft's success, and for a direct post it is no news (keep
///   following);
/// - a draft TikTok fails after it reached the inbox, even for a passing
///   reason, is not retried: a new init could leave the creator two drafts.
pub fn after_job_status(
    job: &super::model::Job,
    status: &PublishStatus,
    now: DateTime<Utc>,
    policy: &JobRetryPolicy,
) -> Decision {
    if !job.post.is_draft() && status.status == PublishState::SendToUserInbox {
        return Decision::Stay;
    }
    match after_status(job.status, job.attempts, status, now, policy) {
        Decision::Move(step)
            if job.status == JobStatus::Inbox && step.to == JobStatus::RetryWait =>
        {
            Decision::Move(Step {
                to: JobStatus::Failed,
                attempts: job.attempts,
                not_before: None,
                error: step.error.map(|e| LastError {
                    message: format!(
                        "{} (after the draft reached the inbox; not retried)",
                        e.message
                    ),
                    code: e.code,
                }),
            })
        }
        decision => decision,
    }
}

/// What TikTok's status of a publish means for a job in `retry_wait` that
/// still holds that publish's id (TikTok may have the upload after all: the
/// last chunk's answer was lost, a timeout came after the bytes went).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryWaitNews {
    /// TikTok does not have all of it, or failed it for the passing reason
    /// the job is waiting out: the retry goes ahead (a new init), without
    /// counting that failure again.
    Retry,
    /// TikTok has it: follow it in this status (attempts unchanged) instead
    /// of initialising again, which would make a second draft.
    Follow(JobStatus),
    /// TikTok failed it for good: the job moves as the step says.
    Move(Step),
    /// A status this code does not know: ask again later.
    AskAgain,
}

/// The table of [`RetryWaitNews`]: what `status` (TikTok's answer about the
/// job's saved `publish_id`) means for `job`, waiting in `retry_wait`.
pub fn after_retry_wait_status(
    job: &super::model::Job,
    status: &PublishStatus,
    now: DateTime<Utc>,
    policy: &JobRetryPolicy,
) -> RetryWaitNews {
    match &status.status {
        // TikTok is still receiving bytes and has fewer than the file holds:
        // that upload will not finish; a new one will.
        PublishState::ProcessingUpload if upload_incomplete(job, status) => RetryWaitNews::Retry,
        PublishState::ProcessingUpload | PublishState::ProcessingDownload => {
            RetryWaitNews::Follow(JobStatus::Processing)
        }
        PublishState::SendToUserInbox if job.post.is_draft() => {
            RetryWaitNews::Follow(JobStatus::Inbox)
        }
        // A direct post is not done in an inbox: keep following it.
        PublishState::SendToUserInbox => RetryWaitNews::Follow(JobStatus::Processing),
        PublishState::PublishComplete => RetryWaitNews::Follow(JobStatus::Published),
        // A passing failure of this publish is the one the job is waiting
        // out: its attempt was counted when it entered `retry_wait`.
        PublishState::Failed
            if status
                .fail_reason
                .as_ref()
                .is_some_and(FailReason::is_retryable) =>
        {
            RetryWaitNews::Retry
        }
        // A failure that ends it.
        PublishState::Failed => match after_status(job.status, job.attempts, status, now, policy) {
            Decision::Move(step) if step.to != JobStatus::RetryWait => RetryWaitNews::Move(step),
            _ => RetryWaitNews::Retry,
        },
        PublishState::Other(_) => RetryWaitNews::AskAgain,
    }
}

/// Whether a `PROCESSING_UPLOAD` answer means bytes are missing. TikTok's
/// `uploaded_bytes` says so when it is there; without it, a `FILE_UPLOAD`
/// job's own offset (the first byte TikTok did not acknowledge) below its
/// size means chunks were never sent, and that upload cannot finish by
/// itself. (A pull has no offset of ours.)
pub fn upload_incomplete(job: &super::model::Job, status: &PublishStatus) -> bool {
    match status.uploaded_bytes {
        Some(bytes) => bytes < job.upload.size,
        None => job
            .attempt
            .transfer()
            .is_some_and(|t| t.next_offset < job.upload.size),
    }
}

/// TikTok said `FAILED`.
fn after_fail_reason(
    attempts: u32,
    reason: Option<&FailReason>,
    now: DateTime<Utc>,
    policy: &JobRetryPolicy,
) -> Step {
    let Some(reason) = reason else {
        // FAILED without a reason: nothing says a retry would help.
        return failed(
            attempts,
            "failed",
            "TikTok reported a failure without a reason.".into(),
        );
    };
    let error = || LastError {
        code: reason.as_str().to_owned(),
        message: reason.human_message().to_owned(),
    };
    match reason {
        FailReason::PublishCancelled => Step {
            to: JobStatus::Cancelled,
            attempts,
            not_before: None,
            error: Some(error()),
        },
        // Not RECONNECT_MESSAGE: retrying this upload cannot help, it has to
        // be uploaded again once the account is connected again.
        FailReason::AuthRemoved => failed(
            attempts,
            reason.as_str(),
            format!(
                "{} Connect the account again, then upload the file again.",
                reason.human_message()
            ),
        ),
        r if r.is_retryable() => {
            retry_or_fail(attempts, error(), policy.backoff(attempts), now, policy)
        }
        _ => Step {
            to: JobStatus::Failed,
            attempts,
            not_before: None,
            error: Some(error()),
        },
    }
}

/// What a failed TikTok call (init, a chunk PUT, a status fetch) means for a
/// job with `attempts` failed tries so far.
///
/// A `NeedsRefresh` that reaches this point already had its refresh and
/// one retry (the token manager's job), so it is treated as passing.
pub fn after_error(
    attempts: u32,
    err: &TikTokError,
    now: DateTime<Utc>,
    policy: &JobRetryPolicy,
) -> Step {
    let error = LastError {
        code: err.code_str().to_owned(),
        message: err.to_string(),
    };
    match err.class() {
        ErrorClass::Retryable | ErrorClass::NeedsRefresh => {
            let wait = policy
                .backoff(attempts)
                .max(err.retry_after().unwrap_or_default());
            retry_or_fail(attempts, error, wait, now, policy)
        }
        ErrorClass::CapReached
            if err.api_code() == Some(&ApiErrorCode::SpamRiskTooManyPendingShare) =>
        {
            // Not a failure: wait for a pending draft to clear. Attempts are
            // not spent. TikTok counts drafts this project cannot see, so a
            // free local slot proves nothing: the job is held until
            // `not_before` as well (see [`pending_share_wait`] for longer).
            Step {
                to: JobStatus::Queued,
                attempts,
                not_before: Some(after_wait(now, PENDING_SHARE_WAIT)),
                error: Some(error),
            }
        }
        ErrorClass::CapReached => retry_or_fail(attempts, error, policy.cap_wait, now, policy),
        ErrorClass::NeedsReauthorization => failed(
            attempts,
            err.code_str(),
            format!("{RECONNECT_MESSAGE} ({err})"),
        ),
        ErrorClass::Permanent => Step {
            to: JobStatus::Failed,
            attempts,
            not_before: None,
            error: Some(error),
        },
    }
}

/// The shortest hold after TikTok refused an init with
/// `spam_risk_too_many_pending_share`.
pub const PENDING_SHARE_WAIT: TimeDelta = TimeDelta::hours(1);

/// How long to hold a job TikTok refused for too many pending drafts, when
/// it was first claimed at `claimed_at`: as long as it has been waiting
/// already, from [`PENDING_SHARE_WAIT`] up to TikTok's 24-hour window. Each
/// refusal so roughly doubles the wait, without a counter to store.
pub fn pending_share_wait(claimed_at: DateTime<Utc>, now: DateTime<Utc>) -> TimeDelta {
    now.signed_duration_since(claimed_at)
        .clamp(PENDING_SHARE_WAIT, TimeDelta::hours(24))
}

fn after_wait(now: DateTime<Utc>, wait: TimeDelta) -> DateTime<Utc> {
    now.checked_add_signed(wait)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `retry_wait` until the attempts run out, then `failed` with the last error.
fn retry_or_fail(
    attempts: u32,
    error: LastError,
    wait: Duration,
    now: DateTime<Utc>,
    policy: &JobRetryPolicy,
) -> Step {
    let attempts = attempts.saturating_add(1);
    if attempts >= policy.max_attempts {
        let message = format!("{} (gave up after {attempts} attempts)", error.message);
        return failed(attempts, &error.code, message);
    }
    let wait = TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
    Step {
        to: JobStatus::RetryWait,
        attempts,
        not_before: Some(
            now.checked_add_signed(wait)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
        error: Some(error),
    }
}

fn failed(attempts: u32, code: &str, message: String) -> Step {
    Step {
        to: JobStatus::Failed,
        attempts,
        not_before: None,
        error: Some(LastError {
            code: code.to_owned(),
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus::*;
    use super::*;
    use crate::tiktok::error::{ApiError, OAuthError, OAuthErrorCode};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// The whole transition table, written out: every pair not listed is
    /// illegal.
    fn expected(from: JobStatus, to: JobStatus) -> bool {
        let legal: &[(JobStatus, &[JobStatus])] = &[
            (
                Claimed,
                &[Uploading, Queued, RetryWait, Failed, Stuck, Cancelled],
            ),
            (
                Uploading,
                &[
                    Processing, Inbox, Published, RetryWait, Failed, Stuck, Cancelled,
                ],
            ),
            (
                Processing,
                &[Inbox, Published, RetryWait, Failed, Stuck, Cancelled],
            ),
            (Inbox, &[Published, Failed, Cancelled]),
            (Published, &[]),
            (Queued, &[Claimed, Failed, Cancelled]),
            // Processing, Inbox and Published only with a publish_id.
            (RetryWait, &[Claimed, Failed, Cancelled]),
            (Failed, &[]),
            (
                Stuck,
                &[
                    Claimed, Processing, Inbox, Published, RetryWait, Failed, Cancelled,
                ],
            ),
            (Cancelled, &[]),
        ];
        legal
            .iter()
            .find(|(f, _)| *f == from)
            .is_some_and(|(_, tos)| tos.contains(&to))
    }

    #[test]
    fn every_edge_matches_the_table() {
        for from in ALL_STATUSES {
            for to in ALL_STATUSES {
                let got = check_transition(from, to, false);
                assert_eq!(got.is_ok(), expected(from, to), "{from} -> {to}");
                if let Err(e) = got {
                    assert_eq!((e.from, e.to), (from, to));
                    assert!(e.to_string().contains(from.as_str()));
                }
            }
        }
    }

    #[test]
    fn with_a_publish_id_only_stuck_to_claimed_or_uploading_and_retry_wait_to_tiktok_changes() {
        for from in ALL_STATUSES {
            for to in ALL_STATUSES {
                let with = check_transition(from, to, true).is_ok();
                let without = check_transition(from, to, false).is_ok();
                if (from, to) == (Stuck, Claimed) {
                    assert!(!with && without);
                } else if (from, to) == (Stuck, Uploading) {
                    // A resume needs the upload TikTok knows.
                    assert!(with && !without);
                } else if from == RetryWait && matches!(to, Processing | Inbox | Published) {
                    // TikTok turned out to have the upload: follow it.
                    assert!(with && !without, "{from} -> {to}");
                } else {
                    assert_eq!(with, without, "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn final_unfinished_and_pending_sets() {
        let finals: Vec<_> = ALL_STATUSES.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, vec![Published, Failed, Cancelled]);
        let unfinished: Vec<_> = ALL_STATUSES
            .into_iter()
            .filter(|s| s.is_unfinished())
            .collect();
        assert_eq!(
            unfinished,
            vec![Claimed, Uploading, Processing, Queued, RetryWait, Stuck]
        );
        let followed: Vec<_> = ALL_STATUSES
            .into_iter()
            .filter(|s| s.is_followed())
            .collect();
        assert_eq!(
            followed,
            vec![
                Claimed, Uploading, Processing, Inbox, Queued, RetryWait, Stuck
            ]
        );
        let pending: Vec<_> = ALL_STATUSES
            .into_iter()
            .filter(|s| s.holds_draft_slot())
            .collect();
        assert_eq!(pending, vec![Claimed, Uploading, Processing, Inbox, Stuck]);
        // A final status never holds a slot, and nothing moves out of one.
        for s in ALL_STATUSES.into_iter().filter(|s| s.is_final()) {
            assert!(!s.holds_draft_slot());
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in ALL_STATUSES {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobStatus::parse("Claimed"), None);
    }

    #[test]
    fn only_working_jobs_get_stuck_and_only_after_30_minutes() {
        let quiet = now() - TimeDelta::minutes(30);
        let recent = now() - TimeDelta::minutes(29);
        for status in ALL_STATUSES {
            let working = matches!(status, Claimed | Uploading | Processing);
            assert_eq!(is_stuck(status, quiet, now()), working, "{status}");
            assert!(!is_stuck(status, recent, now()), "{status}");
            if working {
                assert!(check_transition(status, Stuck, status != Claimed).is_ok());
            }
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = JobRetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_secs(60));
        assert_eq!(p.backoff(1), Duration::from_secs(120));
        assert_eq!(p.backoff(5), Duration::from_secs(1920));
        assert_eq!(p.backoff(6), Duration::from_secs(3600));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(3600));
    }

    fn status(state: PublishState, reason: Option<FailReason>) -> PublishStatus {
        PublishStatus {
            status: state,
            fail_reason: reason,
            post_ids: Vec::new(),
            uploaded_bytes: None,
            downloaded_bytes: None,
        }
    }

    fn moved(d: Decision) -> Step {
        match d {
            Decision::Move(step) => step,
            Decision::Stay => panic!("expected a move"),
        }
    }

    #[test]
    fn tiktok_statuses_map_to_job_statuses() {
        let p = JobRetryPolicy::default();
        let s = |st| status(st, None);
        assert_eq!(
            after_status(Processing, 0, &s(PublishState::ProcessingUpload), now(), &p),
            Decision::Stay
        );
        assert_eq!(
            after_status(
                Uploading,
                0,
                &s(PublishState::ProcessingDownload),
                now(),
                &p
            ),
            Decision::Stay
        );
        assert_eq!(
            after_status(Stuck, 0, &s(PublishState::ProcessingUpload), now(), &p),
            Decision::Stay
        );
        assert_eq!(
            moved(after_status(
                Stuck,
                0,
                &s(PublishState::SendToUserInbox),
                now(),
                &p
            ))
            .to,
            Inbox
        );
        assert_eq!(
            moved(after_status(
                Processing,
                2,
                &s(PublishState::SendToUserInbox),
                now(),
                &p
            )),
            Step {
                to: Inbox,
                attempts: 2,
                not_before: None,
                error: None
            }
        );
        assert_eq!(
            after_status(Inbox, 0, &s(PublishState::SendToUserInbox), now(), &p),
            Decision::Stay
        );
        assert_eq!(
            moved(after_status(
                Inbox,
                0,
                &s(PublishState::PublishComplete),
                now(),
                &p
            ))
            .to,
            Published
        );
        assert_eq!(
            after_status(
                Processing,
                0,
                &s(PublishState::Other("NEW_THING".into())),
                now(),
                &p
            ),
            Decision::Stay
        );
    }

    #[test]
    fn fail_reasons_map_to_retry_fail_or_cancel() {
        let p = JobRetryPolicy::default();
        let failed_with = |r: FailReason, attempts| {
            moved(after_status(
                Processing,
                attempts,
                &status(PublishState::Failed, Some(r)),
                now(),
                &p,
            ))
        };
        let retry = failed_with(FailReason::Internal, 0);
        assert_eq!(retry.to, RetryWait);
        assert_eq!(retry.attempts, 1);
        assert_eq!(retry.not_before, Some(now() + TimeDelta::seconds(60)));
        assert_eq!(retry.error.unwrap().code, "internal");
        let retry = failed_with(FailReason::VideoPullFailed, 2);
        assert_eq!(retry.not_before, Some(now() + TimeDelta::seconds(240)));
        let out = failed_with(FailReason::PhotoPullFailed, 4);
        assert_eq!((out.to, out.attempts), (Failed, 5));
        assert!(out.error.unwrap().message.contains("gave up after 5"));

        let cancelled = failed_with(FailReason::PublishCancelled, 0);
        assert!(cancelled.to.error_is_current());
        assert_eq!(cancelled.to, Cancelled);
        let auth = failed_with(FailReason::AuthRemoved, 0);
        assert_eq!(auth.to, Failed);
        // One sentence on what happened, one on what to do; no "retry".
        assert_eq!(
            auth.error.unwrap().message,
            "The creator removed this app's access while TikTok was processing the upload, \
             so TikTok stopped it. Connect the account again, then upload the file again."
        );
        for r in [
            FailReason::FileFormatCheckFailed,
            FailReason::DurationCheckFailed,
            FailReason::FrameRateCheckFailed,
            FailReason::PictureSizeCheckFailed,
            FailReason::SpamRiskTooManyPosts,
            FailReason::SpamRiskUserBannedFromPosting,
            FailReason::SpamRiskText,
            FailReason::SpamRisk,
            FailReason::Other("x".into()),
        ] {
            let step = failed_with(r.clone(), 0);
            assert_eq!((step.to, step.attempts), (Failed, 0), "{r}");
            assert_eq!(step.error.unwrap().code, r.as_str());
        }
        let bare = moved(after_status(
            Processing,
            0,
            &status(PublishState::Failed, None),
            now(),
            &p,
        ));
        assert_eq!(bare.to, Failed);
    }

    fn job_of(post: crate::jobs::PostTarget, status: JobStatus) -> crate::jobs::Job {
        use crate::jobs::{Job, JobKind, NewJob, ObjectVersion, Upload};
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "b".into(),
                    key: "uploads/a/x.mp4".into(),
                    version: ObjectVersion::ETag("e".into()),
                    size: 1,
                },
                alias: None,
                open_id: Some("o".into()),
                kind: JobKind::Video,
                post,
                caption: None,
            },
            now(),
        );
        job.status = status;
        job.attempt = crate::jobs::UploadAttempt::Pulled {
            publish_id: "p".into(),
        };
        job
    }

    fn retry_waiting(next_offset: u64, file_upload: bool) -> crate::jobs::Job {
        let mut job = job_of(crate::jobs::PostTarget::Draft, RetryWait);
        job.upload.size = 30_000_000;
        if file_upload {
            job.attempt = crate::jobs::UploadAttempt::Transfer(crate::jobs::FileTransfer {
                publish_id: "p".into(),
                upload_url: None,
                plan: crate::tiktok::ChunkPlan::new(30_000_000, 10_000_000).expect("a plan"),
                next_offset,
            });
        }
        job
    }

    fn uploading_bytes(uploaded_bytes: Option<u64>) -> PublishStatus {
        PublishStatus {
            uploaded_bytes,
            ..status(PublishState::ProcessingUpload, None)
        }
    }

    #[test]
    fn tiktoks_byte_count_decides_when_it_is_given() {
        let size = 30_000_000;
        assert!(upload_incomplete(
            &retry_waiting(size, true),
            &uploading_bytes(Some(size - 1))
        ));
        assert!(!upload_incomplete(
            &retry_waiting(0, true),
            &uploading_bytes(Some(size))
        ));
    }

    /// Without `uploaded_bytes`, chunks the job never had acknowledged mean
    /// the upload cannot finish: it is retried, not followed as complete.
    #[test]
    fn without_a_byte_count_the_jobs_own_offset_decides() {
        let size = 30_000_000;
        assert!(upload_incomplete(
            &retry_waiting(10_000_000, true),
            &uploading_bytes(None)
        ));
        assert!(upload_incomplete(
            &retry_waiting(0, true),
            &uploading_bytes(None)
        ));
        assert!(!upload_incomplete(
            &retry_waiting(size, true),
            &uploading_bytes(None)
        ));
        // A pull has no offset of ours to judge by.
        assert!(!upload_incomplete(
            &retry_waiting(0, false),
            &uploading_bytes(None)
        ));
    }

    #[test]
    fn a_retry_tiktok_holds_is_followed_and_one_it_lacks_goes_ahead() {
        let p = JobRetryPolicy::default();
        let waiting = retry_waiting(30_000_000, true);
        let news = |s: PublishStatus| after_retry_wait_status(&waiting, &s, now(), &p);
        assert_eq!(
            news(uploading_bytes(Some(10))),
            RetryWaitNews::Retry,
            "bytes are missing"
        );
        assert_eq!(
            news(uploading_bytes(Some(30_000_000))),
            RetryWaitNews::Follow(Processing)
        );
        assert_eq!(
            news(status(PublishState::SendToUserInbox, None)),
            RetryWaitNews::Follow(Inbox)
        );
        assert_eq!(
            news(status(PublishState::PublishComplete, None)),
            RetryWaitNews::Follow(Published)
        );
        assert_eq!(
            news(status(PublishState::Failed, Some(FailReason::Internal))),
            RetryWaitNews::Retry,
            "the failure it is waiting out is not counted again"
        );
        match news(status(PublishState::Failed, Some(FailReason::SpamRiskText))) {
            RetryWaitNews::Move(step) => assert_eq!(step.to, Failed),
            other => panic!("expected a move, got {other:?}"),
        }
        assert_eq!(
            news(status(PublishState::Other("NEW".into()), None)),
            RetryWaitNews::AskAgain
        );
        let mut direct = waiting.clone();
        direct.post = crate::jobs::PostTarget::Direct {
            privacy_level: crate::tiktok::PrivacyLevel::SelfOnly,
        };
        assert_eq!(
            after_retry_wait_status(
                &direct,
                &status(PublishState::SendToUserInbox, None),
                now(),
                &p
            ),
            RetryWaitNews::Follow(Processing)
        );
        // Every follow is a legal move for a job with a publish_id.
        for to in [Processing, Inbox, Published] {
            assert!(check_transition(RetryWait, to, true).is_ok());
        }
    }

    #[test]
    fn a_direct_post_succeeds_only_when_published() {
        let p = JobRetryPolicy::default();
        let direct = job_of(
            crate::jobs::PostTarget::Direct {
                privacy_level: crate::tiktok::PrivacyLevel::SelfOnly,
            },
            Processing,
        );
        assert_eq!(
            after_job_status(
                &direct,
                &status(PublishState::SendToUserInbox, None),
                now(),
                &p
            ),
            Decision::Stay,
            "the inbox is not where a direct post ends"
        );
        assert_eq!(
            moved(after_job_status(
                &direct,
                &status(PublishState::PublishComplete, None),
                now(),
                &p
            ))
            .to,
            Published
        );
        let draft = job_of(crate::jobs::PostTarget::Draft, Processing);
        assert_eq!(
            moved(after_job_status(
                &draft,
                &status(PublishState::SendToUserInbox, None),
                now(),
                &p
            ))
            .to,
            Inbox
        );
    }

    #[test]
    fn a_delivered_draft_that_fails_is_not_retried() {
        let p = JobRetryPolicy::default();
        let inbox = job_of(crate::jobs::PostTarget::Draft, Inbox);
        let step = moved(after_job_status(
            &inbox,
            &status(PublishState::Failed, Some(FailReason::Internal)),
            now(),
            &p,
        ));
        assert_eq!((step.to, step.attempts), (Failed, 0));
        assert!(step.error.unwrap().message.contains("not retried"));
        assert!(check_transition(Inbox, step.to, true).is_ok());
    }

    fn api(code: &str, http_status: u16, retry_after: Option<Duration>) -> TikTokError {
        TikTokError::Api(ApiError {
            http_status,
            code: ApiErrorCode::parse(code),
            message: "m".into(),
            log_id: None,
            retry_after,
        })
    }

    #[test]
    fn errors_map_by_class() {
        let p = JobRetryPolicy::default();
        let step = after_error(1, &api("rate_limit_exceeded", 429, None), now(), &p);
        assert_eq!(step.to, RetryWait);
        assert_eq!(step.attempts, 2);
        assert_eq!(step.not_before, Some(now() + TimeDelta::seconds(120)));
        // Retry-After wins when it is longer than the backoff.
        let step = after_error(
            0,
            &api("rate_limit_exceeded", 429, Some(Duration::from_secs(600))),
            now(),
            &p,
        );
        assert_eq!(step.not_before, Some(now() + TimeDelta::seconds(600)));
        let step = after_error(4, &api("internal_error", 500, None), now(), &p);
        assert_eq!((step.to, step.attempts), (Failed, 5));
        let step = after_error(0, &api("access_token_invalid", 401, None), now(), &p);
        assert_eq!(step.to, RetryWait);

        let step = after_error(
            3,
            &api("spam_risk_too_many_pending_share", 403, None),
            now(),
            &p,
        );
        assert_eq!(
            (step.to, step.attempts, step.not_before),
            (Queued, 3, Some(now() + TimeDelta::hours(1)))
        );
        let step = after_error(0, &api("spam_risk_too_many_posts", 403, None), now(), &p);
        assert_eq!(step.to, RetryWait);
        assert_eq!(step.not_before, Some(now() + TimeDelta::hours(24)));

        let step = after_error(0, &api("scope_not_authorized", 401, None), now(), &p);
        assert_eq!(step.to, Failed);
        let e = step.error.unwrap();
        assert_eq!(e.code, "scope_not_authorized");
        assert!(e.message.contains("reconnect the account"), "{}", e.message);
        let oauth = TikTokError::OAuth(OAuthError {
            http_status: 400,
            code: OAuthErrorCode::parse("invalid_grant"),
            description: String::new(),
            log_id: None,
        });
        assert_eq!(after_error(0, &oauth, now(), &p).to, Failed);

        for code in [
            "invalid_params",
            "url_ownership_unverified",
            "spam_risk_user_banned_from_posting",
        ] {
            let step = after_error(0, &api(code, 403, None), now(), &p);
            assert_eq!((step.to, step.attempts), (Failed, 0), "{code}");
            assert_eq!(step.error.unwrap().code, code);
        }
        let step = after_error(0, &TikTokError::InvalidRequest("bad".into()), now(), &p);
        assert_eq!(step.to, Failed);
    }

    #[test]
    fn a_pending_share_refusal_holds_longer_the_longer_the_job_waited() {
        let claimed = now();
        assert_eq!(pending_share_wait(claimed, claimed), TimeDelta::hours(1));
        assert_eq!(
            pending_share_wait(claimed, claimed + TimeDelta::hours(3)),
            TimeDelta::hours(3)
        );
        assert_eq!(
            pending_share_wait(claimed, claimed + TimeDelta::days(3)),
            TimeDelta::hours(24)
        );
        // A clock that went backwards still holds for the minimum.
        assert_eq!(
            pending_share_wait(claimed, claimed - TimeDelta::hours(1)),
            TimeDelta::hours(1)
        );
    }

    #[test]
    fn every_step_the_mappings_produce_is_a_legal_move() {
        let p = JobRetryPolicy::default();
        let errors = [
            api("rate_limit_exceeded", 429, None),
            api("spam_risk_too_many_pending_share", 403, None),
            api("spam_risk_too_many_posts", 403, None),
            api("scope_not_authorized", 401, None),
            api("invalid_params", 400, None),
        ];
        // Errors come from init (claimed) or the transfer (uploading) or a
        // status fetch (processing).
        for from in [Claimed, Uploading, Processing] {
            for err in &errors {
                let step = after_error(0, err, now(), &p);
                let legal = check_transition(from, step.to, from != Claimed).is_ok();
                // A pending-share cap is only answered to init.
                assert!(
                    legal || (from != Claimed && step.to == Queued),
                    "{from} -> {}",
                    step.to
                );
            }
        }
    }
}
