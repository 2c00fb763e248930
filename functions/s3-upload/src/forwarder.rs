//! The steps every upload goes through, video or slideshow.
//!
//! The order is what makes it safe to run twice: claim the upload, take the
//! job's lease (one worker per job), resolve the account, check the media,
//! take a pending-draft slot, init once and save what init returned before
//! anything else.

use std::time::Duration;

use shared::accounts::{Account, AccountState, Accounts};
use shared::jobs::{
    Changes, Claim, Job, JobError, JobKind, JobStatus, Jobs, LastError, NewJob, ObjectVersion,
    PostTarget, RetryPolicy as JobRetryPolicy, SlotDecision, Upload, after_error,
};
use shared::storage::S3Object;
use shared::tiktok::upload::Uploader;
use shared::tiktok::{TikTokClient, TikTokError};
use shared::tokens::{Clock, FreshToken, LeaseTable, SecretsManagerTokenStore, TokenManager};

use crate::events::ObjectRef;

/// What became of one object. Every variant is final for the message that
/// brought it: only [`Retry`] asks for the message again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A duplicate delivery, or another invocation is on it.
    AlreadyHandled { job_id: String, status: JobStatus },
    /// The account has 5 pending drafts; the checker releases the job later.
    Queued { job_id: String },
    /// TikTok has the media (bytes sent, or photos offered for pulling); the
    /// checker follows the draft.
    Uploaded { job_id: String, publish_id: String },
    /// A clear, recorded failure; the S3 objects are left as they are.
    Failed {
        job_id: String,
        code: String,
        message: String,
    },
}

/// A passing failure: the message should come back (SQS redelivers it) and
/// the job resumes from what it saved.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {detail}")]
pub struct Retry {
    pub context: &'static str,
    pub detail: String,
}

pub(crate) fn retry(context: &'static str, detail: impl ToString) -> Retry {
    Retry {
        context,
        detail: detail.to_string(),
    }
}

/// How long one worker may hold a job: longer than the function's timeout,
/// so that a crashed worker's job is free for the redelivery after it.
pub const JOB_LEASE: Duration = Duration::from_secs(16 * 60);

/// Either the next thing to work with, or the outcome that ends the work.
pub(crate) type Step<T> = Result<Result<T, Outcome>, Retry>;

/// The clients and settings an upload needs, built once per cold start.
pub struct Forwarder {
    pub s3: aws_sdk_s3::Client,
    pub jobs: Jobs,
    pub accounts: Accounts,
    pub leases: LeaseTable,
    pub tokens: TokenManager<SecretsManagerTokenStore>,
    pub tiktok: TikTokClient,
    pub uploader: Uploader,
    pub chunk_size: u64,
    pub clock: Clock,
    pub job_retry: JobRetryPolicy,
    /// How TikTok reaches converted photos (slideshows).
    pub media_urls: Option<crate::config::MediaUrls>,
    /// How long a slideshow may wait for an image its manifest names.
    pub image_grace: Duration,
    /// Photo conversion threads.
    pub convert_threads: usize,
    pub video_transfer: crate::config::VideoTransfer,
    pub direct_post_enabled: bool,
}

/// A held job lease; give it back with [`Forwarder::release`].
pub(crate) struct Lease {
    name: String,
    holder: String,
}

impl Forwarder {
    /// HEADs the object, pinning the version read from now on. `None` when
    /// it is already gone.
    pub(crate) async fn open(&self, object: &ObjectRef) -> Result<Option<S3Object>, Retry> {
        match S3Object::open(self.s3.clone(), &object.bucket, &object.key).await {
            Ok(s) => Ok(Some(s)),
            Err(shared::storage::StorageError::NotFound { .. }) => {
                tracing::info!(key = %object.key, "object gone before it was read; nothing to do");
                Ok(None)
            }
            Err(err) => Err(retry("read the object", err)),
        }
    }

    /// Claims the upload; a duplicate of a job that is past starting ends here.
    pub(crate) async fn claim(
        &self,
        source: &S3Object,
        alias: &str,
        kind: JobKind,
        post: PostTarget,
        caption: Option<String>,
    ) -> Step<Job> {
        let version = match (source.version_id(), source.e_tag()) {
            (Some(v), _) => ObjectVersion::VersionId(v.to_owned()),
            (None, Some(tag)) => ObjectVersion::etag(tag),
            (None, None) => ObjectVersion::etag(""),
        };
        let claim = self
            .jobs
            .claim(
                NewJob {
                    upload: Upload {
                        bucket: source.bucket().to_owned(),
                        key: source.key().to_owned(),
                        version,
                        size: source.size(),
                    },
                    alias: Some(alias.to_owned()),
                    open_id: None,
                    kind,
                    post,
                    caption,
                },
                self.clock.now(),
            )
            .await
            .map_err(|e| retry("claim the upload", e))?;
        Ok(match claim {
            Claim::New(job) => Ok(job),
            Claim::Existing(job) if resumable(&job) => Ok(job),
            Claim::Existing(job) => {
                tracing::info!(job_id = %job.id, status = %job.status, "duplicate delivery");
                Err(already(&job))
            }
        })
    }

    /// Takes the job's lease and re-reads the job under it. A concurrent
    /// delivery leaves the job to the holder.
    pub(crate) async fn lease(&self, job: &Job) -> Step<(Job, Lease)> {
        let lease = Lease {
            name: format!("job#{}", job.id),
            holder: LeaseTable::new_holder(),
        };
        let got = self
            .leases
            .try_acquire(&lease.name, &lease.holder, JOB_LEASE, self.clock.now())
            .await
            .map_err(|e| retry("take the job lease", e))?;
        if !got {
            tracing::info!(job_id = %job.id, "another invocation is forwarding this upload");
            return Ok(Err(already(job)));
        }
        let fresh = match self.jobs.get(&job.id).await {
            Ok(Some(j)) => j,
            Ok(None) => {
                self.release(lease).await;
                return Err(retry("re-read the job", "it vanished"));
            }
            Err(e) => {
                self.release(lease).await;
                return Err(retry("re-read the job", e));
            }
        };
        if !resumable(&fresh) {
            self.release(lease).await;
            return Ok(Err(already(&fresh)));
        }
        Ok(Ok((fresh, lease)))
    }

    pub(crate) async fn release(&self, lease: Lease) {
        if let Err(err) = self.leases.release(&lease.name, &lease.holder).await {
            tracing::warn!(error = %err, "could not release the job lease; it expires by itself");
        }
    }

    /// The active account behind the job's alias, recorded on the job.
    pub(crate) async fn account(&self, job: Job) -> Step<(Job, Account)> {
        let alias = job.alias.clone().unwrap_or_default();
        let account = match self.accounts.get_by_alias(&alias).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                return self
                    .fail(
                        &job,
                        "unknown_account",
                        format!(
                            "no TikTok account is connected as \u{201c}{alias}\u{201d}; send the creator an invitation (tiktok-drafts invite --account {alias})"
                        ),
                    )
                    .await
                    .map(Err);
            }
            Err(e) => return Err(retry("look up the account", e)),
        };
        if account.state != AccountState::Active {
            return self
                .fail(
                    &job,
                    "account_not_active",
                    format!(
                        "the account \u{201c}{alias}\u{201d} is {}: connect it again with a new invitation",
                        account.state
                    ),
                )
                .await
                .map(Err);
        }
        let job = if job.open_id.is_none() {
            self.jobs
                .set_account(&job, &account.open_id, self.clock.now())
                .await
                .map_err(|e| retry("record the account", e))?
        } else {
            job
        };
        Ok(Ok((job, account)))
    }

    /// A pending-draft slot, or the job is held as `queued`.
    pub(crate) async fn slot(&self, job: &Job) -> Step<()> {
        match self.jobs.take_draft_slot(job, self.clock.now()).await {
            Ok(SlotDecision::Granted { .. } | SlotDecision::NotNeeded) => Ok(Ok(())),
            Ok(SlotDecision::Full { pending }) => {
                tracing::info!(job_id = %job.id, pending, "pending drafts full; upload held");
                self.jobs
                    .transition(job, JobStatus::Queued, Changes::default(), self.clock.now())
                    .await
                    .map_err(|e| retry("hold the upload", e))?;
                Ok(Err(Outcome::Queued {
                    job_id: job.id.to_string(),
                }))
            }
            Err(JobError::Busy { .. }) => Err(retry("take a draft slot", "busy")),
            Err(e) => Err(retry("take a draft slot", e)),
        }
    }

    /// A fresh access token, or the job fails when the account must reconnect.
    pub(crate) async fn token(&self, job: &Job, open_id: &str) -> Step<FreshToken> {
        match self.tokens.get_fresh_token(open_id).await {
            Ok(t) => Ok(Ok(t)),
            Err(err) if err.needs_reconnect() => self
                .fail(job, "reconnect_needed", err.to_string())
                .await
                .map(Err),
            Err(err) => Err(retry("get a token", err)),
        }
    }

    /// Records what an init's error means (retry later, hold, or fail). An
    /// unclear answer is never followed by a blind second init.
    pub(crate) async fn init_refused(
        &self,
        job: &Job,
        err: &TikTokError,
    ) -> Result<Outcome, Retry> {
        let step = after_error(job.attempts, err, self.clock.now(), &self.job_retry);
        tracing::info!(job_id = %job.id, error = %err, to = %step.to, "init refused");
        let to = step.to;
        let recorded = step.error.clone();
        self.jobs
            .transition(job, to, Changes::from(step), self.clock.now())
            .await
            .map_err(|e| retry("record the init error", e))?;
        Ok(match to {
            JobStatus::Queued => Outcome::Queued {
                job_id: job.id.to_string(),
            },
            _ => {
                let e = recorded.unwrap_or(LastError {
                    code: err.code_str().to_owned(),
                    message: err.to_string(),
                });
                Outcome::Failed {
                    job_id: job.id.to_string(),
                    code: e.code,
                    message: e.message,
                }
            }
        })
    }

    pub(crate) async fn fail(
        &self,
        job: &Job,
        code: &str,
        message: String,
    ) -> Result<Outcome, Retry> {
        tracing::info!(job_id = %job.id, code, message = %message, "upload failed");
        let changes = Changes {
            last_error: Some(LastError {
                code: code.to_owned(),
                message: message.clone(),
            }),
            ..Changes::default()
        };
        self.jobs
            .transition(job, JobStatus::Failed, changes, self.clock.now())
            .await
            .map_err(|e| retry("record the failure", e))?;
        Ok(Outcome::Failed {
            job_id: job.id.to_string(),
            code: code.to_owned(),
            message,
        })
    }
}

/// Whether a delivery should (re)start work on this job.
fn resumable(job: &Job) -> bool {
    matches!(job.status, JobStatus::Claimed | JobStatus::Uploading)
}

fn already(job: &Job) -> Outcome {
    Outcome::AlreadyHandled {
        job_id: job.id.to_string(),
        status: job.status,
    }
}
