//! What became of an upload ([`Outcome`]), the passing failure that asks for
//! it to be tried again ([`Retry`]), and what a caller's part (a video file,
//! a photo set) answers when it cannot give what was asked ([`Hitch`]).

use std::fmt;
use std::time::Duration;

use crate::jobs::JobStatus;

/// What became of one upload. Every variant is final for the delivery (or
/// command) that brought it: only [`Retry`] asks for it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A duplicate delivery: the job is past what this delivery would do
    /// (a job another worker holds is a [`Retry`] after its lease).
    AlreadyHandled {
        /// The job.
        job_id: String,
        /// Where it stands.
        status: JobStatus,
    },
    /// Held (`queued`): the account has 5 pending drafts, or TikTok said it
    /// has; the job is released later.
    Queued {
        /// The job.
        job_id: String,
    },
    /// TikTok has the media (bytes sent, or offered for pulling); the
    /// checker follows the draft.
    Uploaded {
        /// The job.
        job_id: String,
        /// TikTok's id of the publish.
        publish_id: String,
    },
    /// TikTok refused for a passing reason: the job waits in `retry_wait`
    /// and is sent again when its backoff is over.
    RetryScheduled {
        /// The job.
        job_id: String,
        /// TikTok's error code.
        code: String,
        /// What happened, for people.
        message: String,
    },
    /// The job is flagged `stuck` for the operator (an init whose answer
    /// was lost); nothing happens to it by itself.
    Flagged {
        /// The job.
        job_id: String,
        /// Why (`init_unconfirmed`).
        code: String,
        /// What to check.
        message: String,
    },
    /// The object version the upload was for is gone: the job is cancelled.
    Cancelled {
        /// The job.
        job_id: String,
        /// Why (`source_gone`).
        code: String,
        /// What happened.
        message: String,
    },
    /// A clear, recorded failure; the user's media is left as it is.
    Failed {
        /// The job.
        job_id: String,
        /// What failed, machine-readable.
        code: String,
        /// What happened and what to do.
        message: String,
    },
}

impl Outcome {
    /// The job the outcome is about.
    pub fn job_id(&self) -> &str {
        match self {
            Self::AlreadyHandled { job_id, .. }
            | Self::Queued { job_id }
            | Self::Uploaded { job_id, .. }
            | Self::RetryScheduled { job_id, .. }
            | Self::Flagged { job_id, .. }
            | Self::Cancelled { job_id, .. }
            | Self::Failed { job_id, .. } => job_id,
        }
    }
}

/// A passing failure: the upload should be tried again later (the queue
/// redelivers the message; a person runs the command again) and resumes
/// from what its job saved.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{context}: {detail}")]
pub struct Retry {
    /// What was being done.
    pub context: &'static str,
    /// What went wrong.
    pub detail: String,
    /// When to try again, if the failure knows better than the usual
    /// backoff (a job lease that ends then, a slideshow waiting for its
    /// images).
    pub after: Option<Duration>,
}

impl Retry {
    /// The same, to be tried again after `wait`.
    pub fn after(mut self, wait: Duration) -> Self {
        self.after = Some(wait);
        self
    }
}

/// A passing failure while doing `context`.
pub fn retry(context: &'static str, detail: impl fmt::Display) -> Retry {
    Retry {
        context,
        detail: detail.to_string(),
        after: None,
    }
}

/// Why a caller's part (a video file, a photo set) could not give what the
/// use case asked of it.
#[derive(Debug, Clone)]
pub enum Hitch {
    /// The media cannot be posted: the job fails with this code and message.
    Refused {
        /// Machine-readable (`unsupported_media`, `bad_image`, ...).
        code: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// A passing failure.
    Retry(Retry),
}

impl From<Retry> for Hitch {
    fn from(retry: Retry) -> Self {
        Self::Retry(retry)
    }
}

/// How the use case's steps end early: with the outcome that ends the work,
/// or a passing failure.
#[derive(Debug)]
pub(super) enum Stop {
    Done(Outcome),
    Retry(Retry),
}

impl From<Retry> for Stop {
    fn from(retry: Retry) -> Self {
        Self::Retry(retry)
    }
}

/// The next thing to work with, or how the work ended.
pub(super) type Flow<T> = Result<T, Stop>;

/// The work's result as callers see it.
pub(super) fn finish(flow: Flow<Outcome>) -> Result<Outcome, Retry> {
    match flow {
        Ok(outcome) | Err(Stop::Done(outcome)) => Ok(outcome),
        Err(Stop::Retry(retry)) => Err(retry),
    }
}
