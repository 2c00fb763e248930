//! A video object to a TikTok inbox draft, by FILE_UPLOAD streamed from S3:
//! init once, save what it returned, then send the chunks, saving the
//! offset after each so a redelivery resumes where the last one stopped.

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use shared::caption::{VIDEO_TITLE_MAX, trim_to_utf16};
use shared::clock::Clock;
use shared::jobs::{Changes, Job, JobKind, JobStatus, Jobs, PostTarget};
use shared::media::detect::{DETECT_PREFIX_LEN, VideoKind, check_video};
use shared::media::limits::InputKind;
use shared::s3_metadata;
use shared::storage::ChunkSource as _;
use shared::storage::S3Object;
use shared::storage::media_folder::video_copy_key;
use shared::tiktok::upload::{UploadError, UploadProgress, VideoContentType};
use shared::tiktok::{ChunkPlan, DirectPostInfo, PrivacyLevel, VideoSource};
use tokio::io::AsyncReadExt as _;

use crate::config::VideoTransfer;
use crate::events::ObjectRef;
use crate::forwarder::{Forwarder, JobSpec, Opened, Outcome, Retry, retry};

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

/// Why a video is not sent, as recorded on its job.
struct Refusal {
    code: &'static str,
    message: String,
}

impl Forwarder {
    pub async fn forward_video(&self, object: &ObjectRef, alias: &str) -> Result<Outcome, Retry> {
        let source = match self.open(object).await? {
            Opened::Found(source) => source,
            Opened::Gone(reason) => {
                let spec = JobSpec {
                    alias,
                    kind: JobKind::Video,
                    post: PostTarget::Draft,
                    caption: None,
                };
                return self.source_gone(object, spec, reason).await;
            }
        };
        let caption = self.caption(&source).await;
        // A refused request still gets a job (as a draft) so that the refusal
        // is recorded where the operator looks.
        let requested = requested_post(source.metadata(), self.direct_post_enabled);
        let spec = JobSpec {
            alias,
            kind: JobKind::Video,
            post: requested.clone().unwrap_or(PostTarget::Draft),
            caption,
        };
        self.forward(&source, spec, |job| {
            self.video_job(job, &source, &requested)
        })
        .await
    }

    /// Picks up the job from what it saved: a new upload, a resume, a
    /// handover, or an init in doubt kept for the operator.
    async fn video_job(
        &self,
        job: Job,
        source: &S3Object,
        requested: &Result<PostTarget, String>,
    ) -> Result<Outcome, Retry> {
        if job.publish_id.is_none() && job.init_started_at.is_some() {
            return self
                .flag_init_unconfirmed(&job, "an earlier invocation sent it and stopped".into())
                .await;
        }
        let pulled = job.upload_url.is_none() && job.chunk_plan.is_none();
        match (job.status, job.publish_id.is_some()) {
            (JobStatus::Stuck, false) => {
                let job = self.restart_stuck(job).await?;
                self.start_video(job, source, requested).await
            }
            // Pulled by TikTok: there is nothing of ours left to send.
            (_, true) if pulled => self.handed_over(job).await,
            // TikTok has the publish but there is no URL to send bytes to:
            // every byte went up (a job flagged while TikTok processed it),
            // or the init's answer had none. Never initialised again.
            (_, true) if job.upload_url.is_none() => {
                let all_sent = job
                    .chunk_plan
                    .is_some_and(|plan| job.next_offset >= plan.video_size);
                if all_sent {
                    self.handed_over(job).await
                } else {
                    let detail = format!(
                        "TikTok holds publish_id {} but gave no upload URL for its bytes",
                        job.publish_id.as_deref().unwrap_or_default()
                    );
                    self.flag_init_unconfirmed(&job, detail).await
                }
            }
            (JobStatus::Stuck, true) => {
                tracing::info!(job_id = %job.id, next_offset = job.next_offset, "resuming a stuck upload");
                let job = self
                    .jobs
                    .transition(
                        &job,
                        JobStatus::Uploading,
                        Changes::default(),
                        self.clock.now(),
                    )
                    .await
                    .map_err(|e| retry("resume the stuck upload", e))?;
                self.send(job, source, None).await
            }
            (_, true) => self.send(job, source, None).await,
            (_, false) => self.start_video(job, source, requested).await,
        }
    }

    async fn start_video(
        &self,
        job: Job,
        source: &S3Object,
        requested: &Result<PostTarget, String>,
    ) -> Result<Outcome, Retry> {
        if let Err(message) = requested {
            return self
                .fail(&job, "direct_post_refused", message.clone())
                .await;
        }
        let (job, account) = match self.account(job).await? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        // The bytes, not the name, say what the file is.
        let kind = match video_kind(source).await? {
            Ok(kind) => kind,
            Err(refusal) => return self.fail(&job, refusal.code, refusal.message).await,
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
        let video_source = match self.video_transfer {
            VideoTransfer::FileUpload => VideoSource::FileUpload(plan),
            VideoTransfer::PullFromUrl => VideoSource::PullFromUrl {
                video_url: self.offer_copy(&job, source, kind).await?,
            },
        };
        let direct = match job.post {
            PostTarget::Draft => None,
            PostTarget::Direct { privacy_level } => {
                if !token.scopes.iter().any(|s| s == "video.publish") {
                    return self
                        .fail(
                            &job,
                            "direct_post_not_authorized",
                            "the account was connected without the video.publish scope: connect it again with direct posting enabled".into(),
                        )
                        .await;
                }
                // The audit rules: the level must be one TikTok offers this
                // creator now. A read, so it comes before the init marker.
                let info = match self.tiktok.creator_info(&token.access_token).await {
                    Ok(info) => info,
                    Err(err) => return self.refused(&job, &err, "creator_info").await,
                };
                if !info.allows(privacy_level) {
                    return self
                        .fail(
                            &job,
                            "privacy_level_not_offered",
                            format!(
                                "privacy level {} is not offered to this creator; choose one of: {}",
                                privacy_level.as_str(),
                                info.privacy_level_options.join(", ")
                            ),
                        )
                        .await;
                }
                let mut post_info = DirectPostInfo::new(privacy_level);
                post_info.title = job.caption.clone();
                Some(post_info)
            }
        };
        let file_upload = matches!(video_source, VideoSource::FileUpload(_));
        let init = || async {
            match &direct {
                None => {
                    self.tiktok
                        .init_inbox_video(&token.access_token, &video_source)
                        .await
                }
                Some(post_info) => {
                    self.tiktok
                        .init_direct_video(&token.access_token, post_info, &video_source)
                        .await
                }
            }
        };
        let job = match self
            .init_once(job, file_upload.then_some(&plan), init)
            .await?
        {
            Ok((job, _)) => job,
            Err(outcome) => return Ok(outcome),
        };
        if !file_upload {
            tracing::info!(job_id = %job.id, publish_id = job.publish_id.as_deref(), "TikTok is pulling the video");
            return self.handed_over(job).await;
        }
        tracing::info!(job_id = %job.id, publish_id = job.publish_id.as_deref(), chunks = plan.total_chunk_count, "upload started");
        self.send(job, source, Some(kind)).await
    }

    /// Copies the video under `media/` (server-side, so no byte passes
    /// through the function) and returns the URL TikTok pulls it from. The
    /// uploads folder itself is never exposed; `media/` expires by lifecycle.
    async fn offer_copy(
        &self,
        job: &Job,
        source: &S3Object,
        kind: VideoKind,
    ) -> Result<String, Retry> {
        let Some(urls) = self.media_urls.clone() else {
            return Err(retry(
                "offer the video",
                "PULL_FROM_URL needs MEDIA_BASE_URL",
            ));
        };
        // The job id is a hash of the upload; the same name on a retry.
        let key = video_copy_key(&job.id, VideoContentType::from(kind).extension());
        let mut copy_source = format!(
            "{}/{}",
            source.bucket(),
            percent_encoding::utf8_percent_encode(source.key(), COPY_SOURCE)
        );
        if let Some(version) = source.version_id() {
            copy_source.push_str(&format!("?versionId={version}"));
        }
        let mut copy = self
            .s3
            .copy_object()
            .bucket(source.bucket())
            .key(&key)
            .copy_source(copy_source);
        if source.version_id().is_none()
            && let Some(tag) = source.e_tag()
        {
            // Unversioned: copy only the bytes that were checked.
            copy = copy.copy_source_if_match(tag);
        }
        copy.send().await.map_err(|e| {
            retry(
                "copy the video under media/",
                shared::aws::describe_sdk_error(&e),
            )
        })?;
        self.media_url(&urls, source.bucket(), &key).await
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
                Err(refusal) => return self.fail(&job, refusal.code, refusal.message).await,
            },
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
                VideoContentType::from(kind),
                source,
                job.next_offset,
                &mut progress,
            )
            .await
        {
            Ok(report) => {
                tracing::info!(job_id = %job.id, publish_id = %publish_id, chunks = report.chunks_sent, retries = report.retries, "upload sent");
                self.handed_over(job).await
            }
            Err(err) if err.is_retryable() => Err(retry("send the chunks", err)),
            Err(err) => {
                let code = upload_error_code(&err);
                let message = match code {
                    "source_unreadable" => format!(
                        "s3://{}/{} could not be read any more: {err}; upload the file again",
                        source.bucket(),
                        source.key()
                    ),
                    _ => err.to_string(),
                };
                self.fail(&job, code, message).await
            }
        }
    }

    /// The caption: S3 metadata `caption` or `title` (RFC 2047-decoded),
    /// else a `<name>.json` sidecar's `caption`/`title`, else none; trimmed
    /// to TikTok's limit.
    async fn caption(&self, source: &S3Object) -> Option<String> {
        let meta = source.metadata();
        // S3 returns non-ASCII values RFC 2047-encoded (=?UTF-8?B?...?=).
        let from_metadata =
            s3_metadata::get(meta, "caption").or_else(|| s3_metadata::get(meta, "title"));
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
        // The sidecar is optional: one over its limit is skipped like an
        // unreadable one, with a warning naming it, and never read whole.
        // The size S3 announces is checked first; `take` stops the read one
        // byte past the limit should it be missing.
        let kind = InputKind::CaptionSidecar;
        let name = key.rsplit('/').next().unwrap_or(key.as_str());
        let announced = object.content_length().and_then(|n| u64::try_from(n).ok());
        let mut bytes = Vec::new();
        let read = match announced.map(|size| kind.check(name, size)) {
            Some(Err(too_large)) => Err(too_large),
            _ => {
                let mut body = object.body.into_async_read().take(kind.max_bytes() + 1);
                body.read_to_end(&mut bytes).await.ok()?;
                let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                kind.check(name, size).map_err(|_| kind.exceeded(name))
            }
        };
        if let Err(too_large) = read {
            tracing::warn!(key, error = %too_large, "caption sidecar skipped");
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        value
            .get("caption")
            .or_else(|| value.get("title"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }
}

/// Characters a CopySource key keeps as they are (S3 wants the rest
/// percent-encoded; '/' separates the key's folders).
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What the upload asks for: a draft unless its metadata says
/// `post-mode: direct` with a `privacy-level`, which the deployment must
/// allow. `Err` says why a direct post is refused.
pub fn requested_post(
    metadata: &std::collections::HashMap<String, String>,
    direct_post_enabled: bool,
) -> Result<PostTarget, String> {
    // Decoded like the caption: a tool may have encoded these too.
    let mode = s3_metadata::get(metadata, "post-mode").map(|m| m.trim().to_ascii_lowercase());
    match mode.as_deref() {
        None | Some("" | "draft" | "inbox") => Ok(PostTarget::Draft),
        Some("direct") => {
            if !direct_post_enabled {
                return Err("this upload asks for a direct post, but direct posting is not enabled for this deployment (DIRECT_POST_ENABLED); upload it again without post-mode to make a draft".into());
            }
            let level = s3_metadata::get(metadata, "privacy-level").ok_or(
                "a direct post needs a privacy-level (PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR or SELF_ONLY); TikTok's rules forbid choosing one for the creator",
            )?;
            let privacy_level = level.parse::<PrivacyLevel>()?;
            Ok(PostTarget::Direct { privacy_level })
        }
        Some(other) => Err(format!(
            "post-mode {other:?} is not understood: use draft (the default) or direct"
        )),
    }
}

/// What the object's first bytes say it is, or why it is not a video TikTok
/// takes (or can no longer be read). The outer error is a read failure
/// worth a retry.
async fn video_kind(source: &S3Object) -> Result<Result<VideoKind, Refusal>, Retry> {
    let prefix_len = source.size().min(DETECT_PREFIX_LEN as u64);
    let prefix = if prefix_len == 0 {
        bytes::Bytes::new()
    } else {
        match source.read_range(0, prefix_len).await {
            Ok(prefix) => prefix,
            Err(err) if err.is_retryable() => {
                return Err(retry("read the file's first bytes", err));
            }
            Err(err) => {
                return Ok(Err(Refusal {
                    code: "source_unreadable",
                    message: format!(
                        "s3://{}/{} could not be read: {err}; upload the file again",
                        source.bucket(),
                        source.key()
                    ),
                }));
            }
        }
    };
    Ok(check_video(&prefix, source.size()).map_err(|e| Refusal {
        code: "unsupported_media",
        message: e.to_string(),
    }))
}

/// What an upload that cannot go on records: the S3 side failing is not
/// TikTok refusing the bytes.
fn upload_error_code(err: &UploadError) -> &'static str {
    match err {
        UploadError::Source { .. } => "source_unreadable",
        e if e.needs_new_upload() => "upload_url_expired",
        UploadError::Rejected { .. } | UploadError::Protocol { .. } => "upload_rejected",
        _ => "upload_failed",
    }
}
