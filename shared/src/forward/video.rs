//! A video to a TikTok draft (or, where allowed and asked for, a direct
//! post): by FILE_UPLOAD from any [`VideoFile`] (an S3 object, a local
//! file), chunk by chunk with the offset saved after each, or by
//! PULL_FROM_URL when the file offers a URL TikTok can reach.

use std::future::Future;

use super::init::InitRequest;
use super::outcome::{Flow, Hitch, finish, retry};
use super::probe::{Probed, source_hitch};
use super::{Forwarder, Outcome};
use crate::jobs::{Changes, FileTransfer, Job, JobStatus, NewJob, PostTarget, UploadAttempt};
use crate::media::detect::{DETECT_PREFIX_LEN, VideoKind, check_video};
use crate::storage::ChunkSource;
use crate::tiktok::oauth::SCOPE_VIDEO_PUBLISH;
use crate::tiktok::upload::{UploadError, UploadProgress, VideoContentType};
use crate::tiktok::{ChunkPlan, DirectPostInfo, VideoSource};
use crate::tokens::FreshToken;

/// A video's bytes, and what the use case needs to know about them.
pub trait VideoFile: ChunkSource {
    /// Its size in bytes.
    fn size(&self) -> u64;

    /// Where it is, for messages (`s3://bucket/key`, a path).
    fn describe(&self) -> String;

    /// A URL TikTok can pull the video from (PULL_FROM_URL), made now for
    /// `job`, the video being `kind`; `None` when its bytes are to be sent
    /// (FILE_UPLOAD).
    fn pull_url(
        &self,
        job: &Job,
        kind: VideoKind,
    ) -> impl Future<Output = Result<Option<String>, Hitch>> + Send;

    /// Told whenever TikTok acknowledged the bytes before `next_offset`
    /// (a progress bar).
    fn sent(&self, next_offset: u64) {
        let _ = next_offset;
    }
}

impl Forwarder {
    /// Forwards the video of `new` from `file`: claims the upload, takes
    /// the job's lease and picks up from what the job saved. `refused_post`
    /// says why the post the upload asked for cannot be made (direct posting
    /// not enabled, a privacy level not understood); its job then fails
    /// with that reason.
    pub async fn forward_video<F: VideoFile>(
        &self,
        new: NewJob,
        file: &F,
        refused_post: Option<&str>,
    ) -> Result<Outcome, crate::forward::Retry> {
        finish(self.video_upload(new, file, refused_post).await)
    }

    async fn video_upload<F: VideoFile>(
        &self,
        new: NewJob,
        file: &F,
        refused_post: Option<&str>,
    ) -> Flow<Outcome> {
        let job = self.claim(new).await?;
        let (job, lease) = self.lease(&job, |job| self.resumable(job)).await?;
        let result = self.resume_video(job, file, refused_post).await;
        lease.release().await;
        result
    }

    /// Picks up the job from what it saved: a new upload, a resume, a
    /// handover, or an init in doubt kept for the operator.
    async fn resume_video<F: VideoFile>(
        &self,
        job: Job,
        file: &F,
        refused_post: Option<&str>,
    ) -> Flow<Outcome> {
        match (job.status, &job.attempt) {
            (_, UploadAttempt::InitSent { .. }) => {
                let detail = "an earlier invocation sent it and stopped".to_owned();
                Err(self.flag_init_unconfirmed(&job, detail).await)
            }
            // Only where waiting jobs are released here (see `resumable`).
            (JobStatus::Queued | JobStatus::RetryWait, _) => {
                let job = self.release_waiting(job).await?;
                self.start_video(job, file, refused_post).await
            }
            (JobStatus::Stuck, UploadAttempt::NotStarted) => {
                let job = self.restart_stuck(job).await?;
                self.start_video(job, file, refused_post).await
            }
            (_, UploadAttempt::NotStarted) => self.start_video(job, file, refused_post).await,
            // Pulled by TikTok: there is nothing of ours left to send.
            (_, UploadAttempt::Pulled { .. }) => self.handed_over(job).await,
            // TikTok has the publish but there is no URL to send bytes to:
            // every byte went up (a job flagged while TikTok processed it),
            // or the init's answer had none. Never initialised again.
            (_, UploadAttempt::Transfer(t)) if t.upload_url.is_none() => {
                if t.next_offset >= t.plan.video_size {
                    return self.handed_over(job).await;
                }
                let detail = format!(
                    "TikTok holds publish_id {} but gave no upload URL for its bytes",
                    t.publish_id
                );
                Err(self.flag_init_unconfirmed(&job, detail).await)
            }
            (JobStatus::Stuck, UploadAttempt::Transfer(t)) => {
                tracing::info!(job_id = %job.id, next_offset = t.next_offset, "resuming a stuck upload");
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
                self.send(job, file, None).await
            }
            (_, UploadAttempt::Transfer(_)) => self.send(job, file, None).await,
        }
    }

    /// A new attempt: account, the video's probe, slot, token, init once,
    /// then the bytes (or TikTok's pull).
    async fn start_video<F: VideoFile>(
        &self,
        job: Job,
        file: &F,
        refused_post: Option<&str>,
    ) -> Flow<Outcome> {
        if let Some(message) = refused_post {
            return Err(self
                .fail(&job, "direct_post_refused", message.to_owned())
                .await);
        }
        let (job, account) = self.account(job).await?;
        let (job, probed) = self.probe_video(job, file).await?;
        let kind = probed.kind;
        self.slot(&job).await?;
        let token = self.token(&job, &account.open_id).await?;
        let plan = match ChunkPlan::new(file.size(), self.chunk_size) {
            Ok(p) => p,
            Err(err) => return Err(self.fail(&job, "unsupported_media", err.to_string()).await),
        };
        let source = match file.pull_url(&job, kind).await {
            Ok(None) => VideoSource::FileUpload(plan),
            Ok(Some(video_url)) => VideoSource::PullFromUrl { video_url },
            Err(hitch) => return Err(self.hitch(&job, hitch).await),
        };
        let file_upload = matches!(source, VideoSource::FileUpload(_));
        let direct = self.direct_post(&job, &token, file, &probed).await?;
        let request = match &direct {
            None => InitRequest::InboxVideo(&source),
            Some(post_info) => InitRequest::DirectVideo(post_info, &source),
        };
        let job = self
            .init_once(job, file_upload.then_some(&plan), &token, &request)
            .await?;
        if !file_upload {
            tracing::info!(job_id = %job.id, publish_id = job.publish_id(), "TikTok is pulling the video");
            return self.handed_over(job).await;
        }
        tracing::info!(job_id = %job.id, publish_id = job.publish_id(), chunks = plan.total_chunk_count, "upload started");
        self.send(job, file, Some(kind)).await
    }

    /// The one place a video's media is checked before anything is spent
    /// on it (slot, token, init): the bytes, not the name, say what it is.
    async fn check_media<F: VideoFile>(&self, job: &Job, file: &F) -> Flow<VideoKind> {
        match video_kind(file).await {
            Ok(kind) => Ok(kind),
            Err(hitch) => Err(self.hitch(job, hitch).await),
        }
    }

    /// What a direct post needs before its init: the scope, a privacy
    /// level TikTok offers this creator now (the audit rules), and a video
    /// no longer than the creator may post. `None` for a draft.
    async fn direct_post<F: VideoFile>(
        &self,
        job: &Job,
        token: &FreshToken,
        file: &F,
        probed: &Probed,
    ) -> Flow<Option<DirectPostInfo>> {
        let PostTarget::Direct { privacy_level } = job.post else {
            return Ok(None);
        };
        if !token.scopes.iter().any(|s| s == SCOPE_VIDEO_PUBLISH) {
            let message = format!(
                "the account was connected without the {SCOPE_VIDEO_PUBLISH} scope: connect it again with direct posting enabled"
            );
            return Err(self.fail(job, "direct_post_not_authorized", message).await);
        }
        // A read, so it comes before the init marker.
        let info = self
            .with_token(job, token, |access| async move {
                self.tiktok.creator_info(&access).await
            })
            .await?;
        let info = match info {
            Ok(info) => info,
            Err(err) => return Err(self.refused(job, &err, "creator_info").await),
        };
        if !info.allows(privacy_level) {
            let message = format!(
                "privacy level {} is not offered to this creator; choose one of: {}",
                privacy_level.as_str(),
                info.privacy_level_options.join(", ")
            );
            return Err(self.fail(job, "privacy_level_not_offered", message).await);
        }
        self.creator_limit(job, file, probed, info.max_video_post_duration_sec)
            .await?;
        let mut post_info = DirectPostInfo::new(privacy_level);
        post_info.title = job.caption.clone();
        Ok(Some(post_info))
    }

    /// Sends the chunks from the saved offset and hands the job over.
    /// `kind` is the checked type when the caller has it (a resume reads it
    /// again).
    async fn send<F: VideoFile>(
        &self,
        job: Job,
        file: &F,
        kind: Option<VideoKind>,
    ) -> Flow<Outcome> {
        let Some(FileTransfer {
            publish_id,
            upload_url: Some(url),
            plan,
            next_offset,
        }) = job.attempt.transfer().cloned()
        else {
            return Err(retry("resume the upload", "the job lacks its upload URL or plan").into());
        };
        if file.size() != plan.video_size {
            return Err(retry(
                "send the chunks",
                format!(
                    "{} is {} bytes now, the upload is for {}; nothing more was sent",
                    file.describe(),
                    file.size(),
                    plan.video_size
                ),
            )
            .into());
        }
        let kind = match kind {
            Some(kind) => kind,
            None => self.check_media(&job, file).await?,
        };
        let mut progress = SaveProgress {
            forwarder: self,
            job: &job,
            file,
        };
        let sent = self
            .uploader
            .upload(
                url.expose(),
                &plan,
                VideoContentType::from(kind),
                file,
                next_offset,
                &mut progress,
            )
            .await;
        match sent {
            Ok(report) => {
                tracing::info!(job_id = %job.id, publish_id = %publish_id, chunks = report.chunks_sent, retries = report.retries, "upload sent");
                self.handed_over(job).await
            }
            Err(err) if err.is_retryable() => Err(retry("send the chunks", err).into()),
            Err(err) => {
                let code = upload_error_code(&err);
                let message = match code {
                    "source_unreadable" => format!(
                        "{} could not be read any more: {err}; upload the file again",
                        file.describe()
                    ),
                    _ => err.to_string(),
                };
                Err(self.fail(&job, code, message).await)
            }
        }
    }
}

/// Saves the offset after every chunk TikTok acknowledged, and tells the
/// file (for its progress bar).
struct SaveProgress<'a, F> {
    forwarder: &'a Forwarder,
    job: &'a Job,
    file: &'a F,
}

impl<F: VideoFile> UploadProgress for SaveProgress<'_, F> {
    async fn chunk_done(&mut self, next_offset: u64, chunk_index: u64) {
        self.file.sent(next_offset);
        // A lost save costs a 416 and a resync on resume, never bytes.
        let saved = self
            .forwarder
            .jobs
            .save_progress(&self.job.id, next_offset, self.forwarder.clock.now())
            .await;
        if let Err(err) = saved {
            tracing::warn!(job_id = %self.job.id, chunk_index, error = %err, "could not save upload progress");
        }
    }
}

/// What the file's first bytes say it is, or why it is not a video TikTok
/// takes (or can no longer be read).
pub(super) async fn video_kind<F: VideoFile>(file: &F) -> Result<VideoKind, Hitch> {
    let prefix_len = file.size().min(DETECT_PREFIX_LEN as u64);
    let prefix = if prefix_len == 0 {
        bytes::Bytes::new()
    } else {
        match file.read_range(0, prefix_len).await {
            Ok(prefix) => prefix,
            Err(err) => return Err(source_hitch(file, err)),
        }
    };
    check_video(&prefix, file.size()).map_err(|e| Hitch::Refused {
        code: "unsupported_media",
        message: e.to_string(),
    })
}

/// What an upload that cannot go on records: the file's side failing is not
/// TikTok refusing the bytes.
fn upload_error_code(err: &UploadError) -> &'static str {
    match err {
        UploadError::Source { .. } => "source_unreadable",
        e if e.needs_new_upload() => "upload_url_expired",
        UploadError::Rejected { .. } | UploadError::Protocol { .. } => "upload_rejected",
        _ => "upload_failed",
    }
}
