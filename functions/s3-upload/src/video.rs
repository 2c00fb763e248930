//! A video object to a TikTok inbox draft, by FILE_UPLOAD streamed from S3:
//! init once, save what it returned, then send the chunks, saving the
//! offset after each so a redelivery resumes where the last one stopped.

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use shared::caption::{VIDEO_TITLE_MAX, trim_to_utf16};
use shared::jobs::{Changes, Job, JobKind, JobStatus, Jobs};
use shared::media::detect::{DETECT_PREFIX_LEN, VideoKind, check_video};
use shared::storage::S3Object;
use shared::tiktok::upload::{ChunkSource as _, UploadProgress, VideoContentType};
use shared::tiktok::{ChunkPlan, VideoSource};
use shared::tokens::Clock;

use crate::events::ObjectRef;
use crate::forwarder::{Forwarder, Outcome, Retry, retry};

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

impl Forwarder {
    pub async fn forward_video(&self, object: &ObjectRef, alias: &str) -> Result<Outcome, Retry> {
        let Some(source) = self.open(object).await? else {
            return Ok(Outcome::AlreadyHandled {
                job_id: String::new(),
                status: JobStatus::Cancelled,
            });
        };
        let caption = self.caption(&source).await;
        let job = match self.claim(&source, alias, JobKind::Video, caption).await? {
            Ok(job) => job,
            Err(outcome) => return Ok(outcome),
        };
        let (job, lease) = match self.lease(&job).await? {
            Ok(held) => held,
            Err(outcome) => return Ok(outcome),
        };
        let result = if job.status == JobStatus::Uploading {
            self.send(job, &source, None).await
        } else {
            self.start_video(job, &source).await
        };
        self.release(lease).await;
        result
    }

    async fn start_video(&self, job: Job, source: &S3Object) -> Result<Outcome, Retry> {
        let (job, account) = match self.account(job).await? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        // The bytes, not the name, say what the file is.
        let kind = match video_kind(source).await? {
            Ok(kind) => kind,
            Err(err) => return self.fail(&job, "unsupported_media", err).await,
        };
        if let Err(outcome) = self.slot(&job).await? {
            return Ok(outcome);
        }
        let token = match self.token(&job, &account.open_id).await? {
            Ok(t) => t,
            Err(outcome) => return Ok(outcome),
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
            Err(err) => return self.init_refused(&job, &err).await,
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
        tracing::info!(job_id = %job.id, publish_id = %init.publish_id, chunks = plan.total_chunk_count, "upload started");
        self.send(job, source, Some(kind)).await
    }

    /// Sends the chunks from the saved offset and moves the job on. `kind`
    /// is the checked type when the caller has it (a resume reads it again).
    async fn send(
        &self,
        job: Job,
        source: &S3Object,
        kind: Option<VideoKind>,
    ) -> Result<Outcome, Retry> {
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
        let kind = match kind {
            Some(kind) => kind,
            None => match video_kind(source).await? {
                Ok(kind) => kind,
                Err(err) => return self.fail(&job, "unsupported_media", err).await,
            },
        };
        let content_type = match kind {
            VideoKind::Mov => VideoContentType::Mov,
            VideoKind::WebM => VideoContentType::WebM,
            VideoKind::Mp4 => VideoContentType::Mp4,
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

    /// The caption: S3 metadata `caption` or `title`, else a `<name>.json`
    /// sidecar's `caption`/`title`, else none; trimmed to TikTok's limit.
    async fn caption(&self, source: &S3Object) -> Option<String> {
        let meta = source.metadata();
        let from_metadata = meta.get("caption").or_else(|| meta.get("title")).cloned();
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

/// What the object's first bytes say it is, or why it is not a video TikTok
/// takes. The outer error is a read failure worth a retry.
async fn video_kind(source: &S3Object) -> Result<Result<VideoKind, String>, Retry> {
    let prefix_len = source.size().min(DETECT_PREFIX_LEN as u64);
    let prefix = if prefix_len == 0 {
        bytes::Bytes::new()
    } else {
        source
            .read_range(0, prefix_len)
            .await
            .map_err(|e| retry("read the file's first bytes", e))?
    };
    Ok(check_video(&prefix, source.size()).map_err(|e| e.to_string()))
}
