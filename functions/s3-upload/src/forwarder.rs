//! The steps every upload goes through, video or slideshow.
//!
//! The order is what makes it safe to run twice: open the version the event
//! named, claim the upload, take the job's lease (one worker per job),
//! resolve the account, check the media, take a pending-draft slot, mark the
//! init as started, init once and save what init returned before anything
//! else. An init whose answer is lost is never repeated by itself: the job
//! is flagged for the operator.

use std::future::Future;
use std::time::Duration;

use shared::accounts::{Account, AccountState, Accounts};
use shared::clock::Clock;
use shared::jobs::{
    Changes, Claim, Job, JobError, JobKind, JobRetryPolicy, JobStatus, Jobs, LastError, NewJob,
    ObjectVersion, PostTarget, SlotDecision, Upload, after_error, pending_share_wait,
};
use shared::lease::LeaseTable;
use shared::storage::{Pin, S3Object, StorageError};
use shared::tiktok::upload::Uploader;
use shared::tiktok::{ApiErrorCode, ChunkPlan, InitResponse, TikTokClient, TikTokError};
use shared::tokens::{FreshToken, SecretsManagerTokenStore, TokenManager};

use crate::events::ObjectRef;

/// What became of one object. Every variant is final for the message that
/// brought it: only [`Retry`] asks for the message again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A duplicate delivery: the job is past what this delivery would do
    /// (a job another invocation holds is a [`Retry`] after its lease).
    AlreadyHandled { job_id: String, status: JobStatus },
    /// Held (`queued`): the account has 5 pending drafts, or TikTok said it
    /// has; the checker releases the job later.
    Queued { job_id: String },
    /// TikTok has the media (bytes sent, or photos offered for pulling); the
    /// checker follows the draft.
    Uploaded { job_id: String, publish_id: String },
    /// TikTok refused for a passing reason: the job waits in `retry_wait`
    /// and the checker sends it again when its backoff is over.
    RetryScheduled {
        job_id: String,
        code: String,
        message: String,
    },
    /// The job is flagged `stuck` for the operator (an init whose answer
    /// was lost); nothing happens to it by itself.
    Flagged {
        job_id: String,
        code: String,
        message: String,
    },
    /// The object version the event named is gone: the job is cancelled.
    Cancelled {
        job_id: String,
        code: String,
        message: String,
    },
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
    /// When the message should come back, if the failure knows better than
    /// the usual backoff (a slideshow waiting for its images).
    pub after: Option<Duration>,
}

impl Retry {
    pub(crate) fn after(mut self, wait: Duration) -> Self {
        self.after = Some(wait);
        self
    }
}

pub(crate) fn retry(context: &'static str, detail: impl ToString) -> Retry {
    Retry {
        context,
        detail: detail.to_string(),
        after: None,
    }
}

/// How long one worker may hold a job: longer than the function's timeout,
/// so that a crashed worker's job is free for the redelivery after it (the
/// queue's visibility timeout in template.yaml is longer still).
pub const JOB_LEASE: Duration = Duration::from_secs(16 * 60);

/// How often saving a `publish_id` is tried before the invocation gives up
/// (the id is in the log by then, and the job is marked as in doubt).
const SAVE_INIT_TRIES: u32 = 4;

/// The wait between those tries.
const SAVE_INIT_BACKOFF: shared::backoff::Backoff =
    shared::backoff::Backoff::new(Duration::from_millis(400), Duration::from_secs(4));

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

/// What opening the event's object found.
pub(crate) enum Opened {
    Found(S3Object),
    /// The version the event named is no longer there; says why.
    Gone(String),
}

/// What a new job is, besides its object.
pub(crate) struct JobSpec<'a> {
    pub alias: &'a str,
    pub kind: JobKind,
    pub post: PostTarget,
    pub caption: Option<String>,
}

/// A held job lease. Given back by [`LeaseGuard::release`]; if the work
/// ends any other way (a panic unwinding, a dropped future) the guard gives
/// it back when dropped, and a process that dies holds it only until its TTL.
struct LeaseGuard {
    leases: LeaseTable,
    name: String,
    holder: Option<String>,
}

impl LeaseGuard {
    async fn release(mut self) {
        if let Some(holder) = self.holder.take() {
            release_lease(&self.leases, &self.name, &holder).await;
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(holder) = self.holder.take() else {
            return;
        };
        let leases = self.leases.clone();
        let name = std::mem::take(&mut self.name);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release_lease(&leases, &name, &holder).await });
        }
    }
}

async fn release_lease(leases: &LeaseTable, name: &str, holder: &str) {
    if let Err(err) = leases.release(name, holder).await {
        tracing::warn!(lease = name, error = %err, "could not release the job lease; it expires by itself");
    }
}

impl Forwarder {
    /// HEADs the version the event named (its version id, else `If-Match`
    /// on its ETag), so the claim and every later read are of that version
    /// and not of whatever replaced it.
    pub(crate) async fn open(&self, object: &ObjectRef) -> Result<Opened, Retry> {
        let pin = match (&object.version_id, &object.e_tag) {
            (Some(version), _) => Pin::VersionId(version),
            (None, Some(tag)) => Pin::ETag(tag),
            // A hand-made event without either: the current object.
            (None, None) => Pin::Current,
        };
        match S3Object::open_pinned(self.s3.clone(), &object.bucket, &object.key, pin).await {
            Ok(source) => Ok(Opened::Found(source)),
            Err(err @ (StorageError::NotFound { .. } | StorageError::VersionGone { .. })) => {
                tracing::info!(key = %object.key, error = %err, "the event's object is gone");
                Ok(Opened::Gone(err.to_string()))
            }
            Err(err) => Err(retry("read the object", err)),
        }
    }

    /// Ends the job of an object version that is gone before its upload
    /// could finish: `cancelled`, with a reason naming the key. A job that
    /// no longer needs the object (TikTok has it) is left alone. Decided
    /// under the job's lease, on the job as re-read there, like any other
    /// work on it: another invocation may be initialising it right now.
    pub(crate) async fn source_gone(
        &self,
        object: &ObjectRef,
        spec: JobSpec<'_>,
        reason: String,
    ) -> Result<Outcome, Retry> {
        let version = ObjectVersion::of(object.version_id.as_deref(), object.e_tag.as_deref());
        let new = NewJob {
            upload: Upload {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
                version,
                size: object.size.unwrap_or(0),
            },
            alias: Some(spec.alias.to_owned()),
            open_id: None,
            kind: spec.kind,
            post: spec.post,
            caption: spec.caption,
        };
        // Claimed even when first seen now, so the operator finds the
        // upload and why nothing came of it.
        let job = match self.jobs.claim(new, self.clock.now()).await {
            Ok(claim) => claim.job().clone(),
            Err(e) => return Err(retry("claim the upload", e)),
        };
        if !needs_source(&job) {
            return Ok(already(&job));
        }
        self.leased(&job, needs_source, |fresh| {
            self.cancel_gone(fresh, object, reason)
        })
        .await
    }

    async fn cancel_gone(
        &self,
        job: Job,
        object: &ObjectRef,
        reason: String,
    ) -> Result<Outcome, Retry> {
        // An init went out and its answer was never recorded: TikTok may
        // hold the upload whatever became of the object, so the job stays
        // for the operator instead of ending as if nothing was sent.
        if job.publish_id.is_none() && job.init_started_at.is_some() {
            return self
                .flag_init_unconfirmed(
                    &job,
                    format!("an earlier invocation sent it and stopped; the object is gone since ({reason})"),
                )
                .await;
        }
        let message = format!(
            "s3://{}/{} changed or was deleted before its upload finished ({reason}); upload the file again",
            object.bucket, object.key
        );
        let changes = Changes {
            last_error: Some(LastError {
                code: "source_gone".into(),
                message: message.clone(),
            }),
            ..Changes::default()
        };
        self.jobs
            .transition(&job, JobStatus::Cancelled, changes, self.clock.now())
            .await
            .map_err(|e| retry("cancel the upload", e))?;
        Ok(Outcome::Cancelled {
            job_id: job.id.to_string(),
            code: "source_gone".into(),
            message,
        })
    }

    /// Claims the upload of `source`, takes the job's lease, and runs
    /// `work` on the job as re-read under the lease. The lease is given back
    /// however `work` ends. Duplicates end here; a job another invocation
    /// holds is tried again once its lease is over.
    pub(crate) async fn forward<W, Fut>(
        &self,
        source: &S3Object,
        spec: JobSpec<'_>,
        work: W,
    ) -> Result<Outcome, Retry>
    where
        W: FnOnce(Job) -> Fut,
        Fut: Future<Output = Result<Outcome, Retry>>,
    {
        let job = match self.claim(source, spec).await? {
            Ok(job) => job,
            Err(outcome) => return Ok(outcome),
        };
        self.leased(&job, resumable, work).await
    }

    /// Takes the job's lease (one worker per job) and runs `work` on the
    /// job as re-read under it, if `wanted` still holds for it; the lease is
    /// given back however `work` ends.
    async fn leased<W, Fut>(
        &self,
        job: &Job,
        wanted: fn(&Job) -> bool,
        work: W,
    ) -> Result<Outcome, Retry>
    where
        W: FnOnce(Job) -> Fut,
        Fut: Future<Output = Result<Outcome, Retry>>,
    {
        let name = format!("job#{}", job.id);
        let holder = LeaseTable::new_holder();
        let got = self
            .leases
            .try_acquire(&name, &holder, JOB_LEASE, self.clock.now())
            .await
            .map_err(|e| retry("take the job lease", e))?;
        if !got {
            // Not answered as handled: the holder may be this message's own
            // earlier delivery whose lease outlived it (its release failed),
            // and a deleted message would never come back to finish the job.
            // Back once the lease is over, a true duplicate finds the job
            // done (or under way) and does nothing.
            let wait = self.lease_left(&name).await;
            tracing::info!(job_id = %job.id, wait_secs = wait.map(|w| w.as_secs()), "another invocation holds this job; the message comes back after its lease");
            let busy = retry("wait for the job's lease", "another invocation holds it");
            return Err(match wait {
                Some(wait) => busy.after(wait),
                None => busy,
            });
        }
        let guard = LeaseGuard {
            leases: self.leases.clone(),
            name,
            holder: Some(holder),
        };
        let result = match self.jobs.get(&job.id).await {
            Ok(Some(fresh)) if wanted(&fresh) => work(fresh).await,
            Ok(Some(fresh)) => Ok(already(&fresh)),
            Ok(None) => Err(retry("re-read the job", "it vanished")),
            Err(e) => Err(retry("re-read the job", e)),
        };
        guard.release().await;
        result
    }

    /// How long until the job lease `name` is free (a second past its
    /// end, as leases count whole seconds), if it can be read.
    async fn lease_left(&self, name: &str) -> Option<Duration> {
        let now = self.clock.now();
        match self.leases.expires_at(name, now).await {
            Ok(Some(at)) => (at - now)
                .to_std()
                .ok()
                .map(|left| left + Duration::from_secs(1)),
            // Freed meanwhile: the usual short redelivery.
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(lease = name, error = %err, "cannot read the job lease");
                None
            }
        }
    }

    /// Claims the upload; a duplicate of a job that is past starting ends here.
    async fn claim(&self, source: &S3Object, spec: JobSpec<'_>) -> Step<Job> {
        let version = ObjectVersion::of(source.version_id(), source.e_tag());
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
                    alias: Some(spec.alias.to_owned()),
                    open_id: None,
                    kind: spec.kind,
                    post: spec.post,
                    caption: spec.caption,
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

    /// A job flagged `stuck` that TikTok does not know yet and whose init
    /// never started goes back to `claimed`, to start over.
    pub(crate) async fn restart_stuck(&self, job: Job) -> Result<Job, Retry> {
        tracing::info!(job_id = %job.id, "resuming a stuck job that never reached TikTok");
        self.jobs
            .transition(
                &job,
                JobStatus::Claimed,
                Changes::default(),
                self.clock.now(),
            )
            .await
            .map_err(|e| retry("restart the stuck job", e))
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

    /// Inits once: marks the init as started on the job, calls `init`, logs
    /// the `publish_id` the moment it exists and saves it (with `plan` and
    /// the upload URL for FILE_UPLOAD), trying the save again within the
    /// invocation. An answer that is not clear (no HTTP response, a 5xx
    /// without TikTok's error body, a success that cannot be used) may hide
    /// an init that happened: the job is flagged for the operator (with the
    /// `publish_id`, when the answer named one), never initialised again by
    /// itself. A
    /// clear refusal takes the usual way ([`Forwarder::init_refused`]).
    pub(crate) async fn init_once<F, Fut>(
        &self,
        job: Job,
        plan: Option<&ChunkPlan>,
        init: F,
    ) -> Step<(Job, InitResponse)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<InitResponse, TikTokError>>,
    {
        let job = match self.jobs.mark_init_started(&job, self.clock.now()).await {
            Ok(job) => job,
            Err(JobError::InitInDoubt { .. }) => {
                return self
                    .flag_init_unconfirmed(&job, "an earlier invocation sent it and stopped".into())
                    .await
                    .map(Err);
            }
            Err(e) => return Err(retry("mark the init as started", e)),
        };
        // A success answer that cannot be used (no upload_url, say) may
        // still name the publish: it is saved like any, then the job is
        // flagged, since TikTok holds a publish this job cannot go on with.
        let (answer, unusable) = match init().await {
            Ok(answer) => (answer, None),
            Err(TikTokError::InitUnusable {
                publish_id: Some(publish_id),
                detail,
            }) => (
                InitResponse {
                    publish_id,
                    upload_url: None,
                },
                Some(detail),
            ),
            Err(err) if answer_unclear(&err) => {
                return self
                    .flag_init_unconfirmed(&job, err.to_string())
                    .await
                    .map(Err);
            }
            Err(err) => return self.init_refused(&job, &err).await.map(Err),
        };
        // Before anything else: if saving fails from here on, the log is
        // where the operator finds the id (it is not a secret).
        tracing::info!(job_id = %job.id, publish_id = %answer.publish_id, "TikTok accepted the init");
        let upload_url = answer.upload_url.as_ref().filter(|_| plan.is_some());
        let mut last = None;
        for attempt in 1..=SAVE_INIT_TRIES {
            match self
                .jobs
                .save_init(
                    &job.id,
                    &answer.publish_id,
                    upload_url,
                    plan,
                    self.clock.now(),
                )
                .await
            {
                Ok(saved) => return self.saved_init(saved, answer, unusable).await,
                // An earlier try was written but its answer lost.
                Err(JobError::AlreadyInitialised { publish_id, .. })
                    if publish_id == answer.publish_id =>
                {
                    match self.jobs.get(&job.id).await {
                        Ok(Some(saved)) => return self.saved_init(saved, answer, unusable).await,
                        Ok(None) => last = Some("the job vanished".to_owned()),
                        Err(e) => last = Some(e.to_string()),
                    }
                }
                Err(e @ JobError::Store { .. }) => last = Some(e.to_string()),
                Err(e) => {
                    last = Some(e.to_string());
                    break;
                }
            }
            if attempt < SAVE_INIT_TRIES {
                shared::backoff::sleep(SAVE_INIT_BACKOFF.jittered(attempt - 1)).await;
            }
        }
        tracing::error!(job_id = %job.id, publish_id = %answer.publish_id, error = last.as_deref(), "TikTok's publish_id could not be saved; the job is left marked as initialising");
        Err(retry(
            "save the publish id",
            format!(
                "publish_id {} not saved: {}",
                answer.publish_id,
                last.unwrap_or_default()
            ),
        ))
    }

    /// What init returned, once saved: the job to go on with, or, for an
    /// answer that cannot be used, the job flagged for the operator.
    async fn saved_init(
        &self,
        saved: Job,
        answer: InitResponse,
        unusable: Option<String>,
    ) -> Step<(Job, InitResponse)> {
        match unusable {
            None => Ok(Ok((saved, answer))),
            Some(detail) => self.flag_init_unconfirmed(&saved, detail).await.map(Err),
        }
    }

    /// Flags a job whose init may have reached TikTok without its answer
    /// being recorded: `stuck` with `init_unconfirmed` and what to check.
    pub(crate) async fn flag_init_unconfirmed(
        &self,
        job: &Job,
        detail: String,
    ) -> Result<Outcome, Retry> {
        let message = format!(
            "TikTok may have received the init for s3://{}/{} but its answer was not recorded ({detail}); it is not sent again by itself: look in the creator's TikTok inbox. If the draft is there, nothing more is needed (cancel this job); if not, upload the file again",
            job.upload.bucket, job.upload.key
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
        recorded.map_err(|e| retry("flag the unconfirmed init", e))?;
        Ok(Outcome::Flagged {
            job_id: job.id.to_string(),
            code: "init_unconfirmed".into(),
            message,
        })
    }

    /// Records what an init's clear refusal means (retry later, hold, or
    /// fail) and says which.
    pub(crate) async fn init_refused(
        &self,
        job: &Job,
        err: &TikTokError,
    ) -> Result<Outcome, Retry> {
        self.refused(job, err, "init").await
    }

    /// [`Forwarder::init_refused`] for any request TikTok refused on the way
    /// to an init (`request` names it in the log: a `creator_info` refusal
    /// sent no init).
    pub(crate) async fn refused(
        &self,
        job: &Job,
        err: &TikTokError,
        request: &'static str,
    ) -> Result<Outcome, Retry> {
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
        self.jobs
            .transition(job, to, Changes::from(step), now)
            .await
            .map_err(|e| retry("record the init error", e))?;
        let job_id = job.id.to_string();
        Ok(match to {
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
    pub(crate) async fn handed_over(&self, job: Job) -> Result<Outcome, Retry> {
        let publish_id = job.publish_id.clone().unwrap_or_default();
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

/// Whether a delivery should (re)start work on this job. `stuck` is an
/// operator's flag, not an end: a delivery picks up what the job saved
/// (each kind decides how, and keeps an init in doubt flagged).
fn resumable(job: &Job) -> bool {
    matches!(
        job.status,
        JobStatus::Claimed | JobStatus::Uploading | JobStatus::Stuck
    )
}

/// Whether the job still has to read its object: not once TikTok has
/// everything (pulled media comes from a copy under `media/`).
fn needs_source(job: &Job) -> bool {
    match job.status {
        JobStatus::Claimed | JobStatus::Queued | JobStatus::RetryWait => true,
        JobStatus::Uploading | JobStatus::Stuck => {
            job.publish_id.is_none() || job.upload_url.is_some()
        }
        _ => false,
    }
}

/// Whether an init's error leaves open that TikTok acted on it: no HTTP
/// answer, a 5xx without TikTok's error body, or a success answer that
/// cannot be used. A connection that was
/// never made carried no request, so it is a clear "not received".
pub fn answer_unclear(err: &TikTokError) -> bool {
    match err {
        TikTokError::Transport(e) => !e.is_connect(),
        TikTokError::UnexpectedResponse { status, .. } => *status >= 500,
        // TikTok said yes, in an answer that cannot be used.
        TikTokError::InitUnusable { .. } => true,
        _ => false,
    }
}

pub(crate) fn already(job: &Job) -> Outcome {
    Outcome::AlreadyHandled {
        job_id: job.id.to_string(),
        status: job.status,
    }
}
