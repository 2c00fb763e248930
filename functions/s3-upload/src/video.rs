//! A video object to a TikTok inbox draft, by FILE_UPLOAD streamed from S3.
//!
//! The order is what makes it safe to run twice: claim the upload, take the
//! job's lease (one worker per job), resolve the account, check the bytes,
//! take a pending-draft slot, init once and save what init returned before
//! anything else, then send the chunks, saving the offset after each.

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use shared::accounts::{AccountState, Accounts};
use shared::caption::{VIDEO_TITLE_MAX, trim_to_utf16};
use shared::jobs::{
    Changes, Claim, Job, JobError, JobKind, JobStatus, Jobs, LastError, NewJob, ObjectVersion,
    PostTarget, RetryPolicy as JobRetryPolicy, SlotDecision, Upload, after_error,
};
use shared::media::detect::{DETECT_PREFIX_LEN, VideoKind, check_video};
use shared::storage::S3Object;
use shared::tiktok::upload::{ChunkSource as _, UploadProgress, Uploader, VideoContentType};
use shared::tiktok::{ChunkPlan, TikTokClient, VideoSource};
use shared::tokens::{Clock, LeaseTable, SecretsManagerTokenStore, TokenManager};

use crate::events::ObjectRef;

/// What became of one object. Every variant is final for the message that
/// brought it: only [`Retry`] asks for the message again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A duplicate delivery, or another invocation is on it.
    AlreadyHandled { job_id: String, status: JobStatus },
    /// The account has 5 pending drafts; the checker releases the job later.
    Queued { job_id: String },
    /// All bytes are with TikTok; the checker follows the draft.
    Uploaded { job_id: String, publish_id: String },
    /// A clear, recorded failure; the S3 object is left as it is.
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

fn retry(context: &'static str, detail: impl ToString) -> Retry {
    Retry {
        context,
        detail: detail.to_string(),
    }
}

/// How long one worker may hold a job: longer than the function's timeout,
/// so that a crashed worker's job is free for the redelivery after it.
pub const JOB_LEASE: Duration = Duration::from_secs(16 * 60);

pub struct VideoForwarder {
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
}

struct SaveOffset<'a> {
    jobs: &'a Jobs,
    job: &'a Job,
    clock: &'a Clock,
}

impl UploadProgress for SaveOffset<'_> {
    async fn chunk_done(&mut self, next_offset: u64, chunk_index: u64) {
        // A lost save costs a 416 and a resync on resume, never bytes.
        if let Err(err) = self
            .jobs
            .save_progress(&self.job.id, next_offset, self.clock.now())
            .await
        {
            tracing::warn!(job_id = %self.job.id, chunk_index, error = %err, "could not save upload progress");
        }
    }
}

impl VideoForwarder {
    pub async fn forward(&self, object: &ObjectRef, alias: &str) -> Result<Outcome, Retry> {
        // HEAD pins the version we read from now on.
        let source = match S3Object::open(self.s3.clone(), &object.bucket, &object.key).await {
            Ok(s) => s,
            Err(shared::storage::StorageError::NotFound { .. }) => {
                tracing::info!(key = %object.key, "object gone before it was read; nothing to do");
                return Ok(Outcome::AlreadyHandled {
                    job_id: String::new(),
                    status: JobStatus::Cancelled,
                });
            }
            Err(err) => return Err(retry("read the object", err)),
        };
        let version = match (source.version_id(), source.e_tag()) {
            (Some(v), _) => ObjectVersion::VersionId(v.to_owned()),
            (None, Some(tag)) => ObjectVersion::etag(tag),
            (None, None) => ObjectVersion::etag(""),
        };
        let caption = self.caption(&source).await;
        let now = self.clock.now();
        let claim = self
            .jobs
            .claim(
                NewJob {
                    upload: Upload {
                        bucket: object.bucket.clone(),
                        key: object.key.clone(),
                        version,
                        size: source.size(),
                    },
                    alias: Some(alias.to_owned()),
                    open_id: None,
                    kind: JobKind::Video,
                    post: PostTarget::Draft,
                    caption,
                },
                now,
            )
            .await
            .map_err(|e| retry("claim the upload", e))?;
        let job = match claim {
            Claim::New(job) => job,
            Claim::Existing(job) if resumable(&job) => job,
            Claim::Existing(job) => {
                tracing::info!(job_id = %job.id, status = %job.status, "duplicate delivery");
                return Ok(Outcome::AlreadyHandled {
                    job_id: job.id.to_string(),
                    status: job.status,
                });
            }
        };

        // One worker per job: a concurrent delivery leaves it to the holder.
        let lease = format!("job#{}", job.id);
        let holder = LeaseTable::new_holder();
        let got = self
            .leases
            .try_acquire(&lease, &holder, JOB_LEASE, self.clock.now())
            .await
            .map_err(|e| retry("take the job lease", e))?;
        if !got {
            tracing::info!(job_id = %job.id, "another invocation is forwarding this upload");
            return Ok(Outcome::AlreadyHandled {
                job_id: job.id.to_string(),
                status: job.status,
            });
        }
        let result = self.forward_leased(job, &source).await;
        if let Err(err) = self.leases.release(&lease, &holder).await {
            tracing::warn!(error = %err, "could not release the job lease; it expires by itself");
        }
        result
    }

    async fn forward_leased(&self, job: Job, source: &S3Object) -> Result<Outcome, Retry> {
        // Re-read under the lease: the job may have moved on meanwhile.
        let mut job = match self.jobs.get(&job.id).await {
            Ok(Some(j)) => j,
            Ok(None) => return Err(retry("re-read the job", "it vanished")),
            Err(e) => return Err(retry("re-read the job", e)),
        };
        if !resumable(&job) {
            return Ok(Outcome::AlreadyHandled {
                job_id: job.id.to_string(),
                status: job.status,
            });
        }
        if job.status == JobStatus::Uploading {
            return self.send(job, source).await;
        }

        // The account behind the alias.
        let alias = job.alias.clone().unwrap_or_default();
        let account = match self.accounts.get_by_alias(&alias).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                return self
                    .fail(
                        &job,
                        "unknown_account",
                        format!("no TikTok account is connected as \u{201c}{alias}\u{201d}; send the creator an invitation (tiktok-drafts invite --account {alias})"),
                    )
                    .await;
            }
            Err(e) => return Err(retry("look up the account", e)),
        };
        if account.state != AccountState::Active {
            return self
                .fail(
                    &job,
                    "account_not_active",
                    format!("the account \u{201c}{alias}\u{201d} is {}: connect it again with a new invitation", account.state),
                )
                .await;
        }
        if job.open_id.is_none() {
            job = self
                .jobs
                .set_account(&job, &account.open_id, self.clock.now())
                .await
                .map_err(|e| retry("record the account", e))?;
        }

        // The bytes, not the name, say what the file is.
        let prefix_len = source.size().min(DETECT_PREFIX_LEN as u64);
        let prefix = if prefix_len == 0 {
            bytes::Bytes::new()
        } else {
            source
                .read_range(0, prefix_len)
                .await
                .map_err(|e| retry("read the file's first bytes", e))?
        };
        let kind = match check_video(&prefix, source.size()) {
            Ok(kind) => kind,
            Err(err) => return self.fail(&job, "unsupported_media", err.to_string()).await,
        };

        match self.jobs.take_draft_slot(&job, self.clock.now()).await {
            Ok(SlotDecision::Granted { .. } | SlotDecision::NotNeeded) => {}
            Ok(SlotDecision::Full { pending }) => {
                tracing::info!(job_id = %job.id, pending, "pending drafts full; upload held");
                self.jobs
                    .transition(
                        &job,
                        JobStatus::Queued,
                        Changes::default(),
                        self.clock.now(),
                    )
                    .await
                    .map_err(|e| retry("hold the upload", e))?;
                return Ok(Outcome::Queued {
                    job_id: job.id.to_string(),
                });
            }
            Err(JobError::Busy { .. }) => return Err(retry("take a draft slot", "busy")),
            Err(e) => return Err(retry("take a draft slot", e)),
        }

        let token = match self.tokens.get_fresh_token(&account.open_id).await {
            Ok(t) => t,
            Err(err) if err.needs_reconnect() => {
                return self.fail(&job, "reconnect_needed", err.to_string()).await;
            }
            Err(err) => return Err(retry("get a token", err)),
        };
        let plan = match ChunkPlan::new(source.size(), self.chunk_size) {
            Ok(p) => p,
            Err(err) => return self.fail(&job, "unsupported_media", err.to_string()).await,
        };
        let init = match self
            .tiktok
            .init_inbox_video(&token.access_token, &VideoSource::FileUpload(plan))
            .await
        {
            Ok(init) => init,
            Err(err) => {
                // Never init again blindly after an unclear answer: the step
                // decides (retry later, queue, or fail) and says why.
                let step = after_error(job.attempts, &err, self.clock.now(), &self.job_retry);
                tracing::info!(job_id = %job.id, error = %err, to = %step.to, "init refused");
                let to = step.to;
                let outcome_error = step.error.clone();
                self.jobs
                    .transition(&job, to, Changes::from(step), self.clock.now())
                    .await
                    .map_err(|e| retry("record the init error", e))?;
                return Ok(match to {
                    JobStatus::Queued => Outcome::Queued {
                        job_id: job.id.to_string(),
                    },
                    _ => {
                        let e = outcome_error.unwrap_or(LastError {
                            code: err.code_str().to_owned(),
                            message: err.to_string(),
                        });
                        Outcome::Failed {
                            job_id: job.id.to_string(),
                            code: e.code,
                            message: e.message,
                        }
                    }
                });
            }
        };
        let job = self
            .jobs
            .save_init(
                &job.id,
                &init.publish_id,
                init.upload_url.as_ref(),
                Some(&plan),
                self.clock.now(),
            )
            .await
            .map_err(|e| retry("save the publish id", e))?;
        tracing::info!(job_id = %job.id, publish_id = %init.publish_id, kind = ?kind, chunks = plan.total_chunk_count, "upload started");
        self.send(job, source).await
    }

    /// Sends the chunks from the saved offset and moves the job on.
    async fn send(&self, job: Job, source: &S3Object) -> Result<Outcome, Retry> {
        let (Some(publish_id), Some(url), Some(plan)) = (
            job.publish_id.clone(),
            job.upload_url.clone(),
            job.chunk_plan,
        ) else {
            return Err(retry(
                "resume the upload",
                "the job lacks its upload URL or plan",
            ));
        };
        let prefix_len = source.size().min(DETECT_PREFIX_LEN as u64);
        let prefix = source
            .read_range(0, prefix_len.max(1))
            .await
            .map_err(|e| retry("read the file's first bytes", e))?;
        let content_type = match check_video(&prefix, source.size()) {
            Ok(VideoKind::Mov) => VideoContentType::Mov,
            Ok(VideoKind::WebM) => VideoContentType::WebM,
            Ok(_) => VideoContentType::Mp4,
            Err(err) => return self.fail(&job, "unsupported_media", err.to_string()).await,
        };
        let mut progress = SaveOffset {
            jobs: &self.jobs,
            job: &job,
            clock: &self.clock,
        };
        match self
            .uploader
            .upload(
                url.expose(),
                &plan,
                content_type,
                source,
                job.next_offset,
                &mut progress,
            )
            .await
        {
            Ok(report) => {
                tracing::info!(job_id = %job.id, publish_id = %publish_id, chunks = report.chunks_sent, retries = report.retries, "upload sent");
                self.jobs
                    .transition(
                        &job,
                        JobStatus::Processing,
                        Changes::default(),
                        self.clock.now(),
                    )
                    .await
                    .map_err(|e| retry("record the sent upload", e))?;
                Ok(Outcome::Uploaded {
                    job_id: job.id.to_string(),
                    publish_id,
                })
            }
            Err(err) if err.is_retryable() => Err(retry("send the chunks", err)),
            Err(err) => {
                // An expired URL or a refusal: this upload cannot go on.
                let code = if err.needs_new_upload() {
                    "upload_url_expired"
                } else {
                    "upload_rejected"
                };
                self.fail(&job, code, err.to_string()).await
            }
        }
    }

    async fn fail(&self, job: &Job, code: &str, message: String) -> Result<Outcome, Retry> {
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

    /// The caption: S3 metadata `title` or `caption`, else a `<name>.json`
    /// sidecar's `caption`/`title`, else none; trimmed to TikTok's limit.
    async fn caption(&self, source: &S3Object) -> Option<String> {
        let head = self
            .s3
            .head_object()
            .bucket(source.bucket())
            .key(source.key())
            .send()
            .await
            .ok();
        let from_metadata = head.and_then(|h| {
            let meta = h.metadata()?;
            meta.get("caption").or_else(|| meta.get("title")).cloned()
        });
        let text = match from_metadata {
            Some(t) => Some(t),
            None => self.sidecar_caption(source).await,
        }?;
        let trimmed = trim_to_utf16(text.trim(), VIDEO_TITLE_MAX);
        (!trimmed.text.is_empty()).then(|| trimmed.text.to_owned())
    }

    async fn sidecar_caption(&self, source: &S3Object) -> Option<String> {
        let key = crate::keys::sidecar_key(source.key());
        let object = match self
            .s3
            .get_object()
            .bucket(source.bucket())
            .key(&key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(err) => {
                if err.as_service_error().and_then(|e| e.code()) != Some("NoSuchKey") {
                    tracing::warn!(key, error = %shared::aws::describe_sdk_error(&err), "caption sidecar unreadable");
                }
                return None;
            }
        };
        let bytes = object.body.collect().await.ok()?.into_bytes();
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        value
            .get("caption")
            .or_else(|| value.get("title"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }
}

/// Whether a delivery should (re)start work on this job.
fn resumable(job: &Job) -> bool {
    matches!(job.status, JobStatus::Claimed | JobStatus::Uploading)
}
