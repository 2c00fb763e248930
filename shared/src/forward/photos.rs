//! Photos to a TikTok photo draft: converted to JPEG and put where TikTok
//! can pull them (the caller's [`PhotoSet`] knows how), then offered with
//! `content/init` (`PULL_FROM_URL`, `MEDIA_UPLOAD`, `PHOTO`).

use std::future::Future;

use super::init::InitRequest;
use super::outcome::{Flow, Hitch, finish, retry};
use super::{Forwarder, Outcome, Retry};
use crate::jobs::{Job, JobStatus, NewJob, ObjectVersion};
use crate::tiktok::PhotoPost;

/// The post's text and cover, as TikTok shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoText {
    /// The title (at most 90 UTF-16 units); empty for none.
    pub title: String,
    /// The description (at most 4000 UTF-16 units); empty for none.
    pub description: String,
    /// Which photo is the cover (0 is the first).
    pub cover: u32,
}

/// The photos of one post, and what the use case needs of them.
pub trait PhotoSet: Sync {
    /// Why the set cannot become a post at all, before anything else is
    /// looked at (a manifest that cannot be read, no way for TikTok to
    /// reach the photos).
    fn refusal(&self) -> Option<Hitch>;

    /// Whether every photo is there, once the job's account is known and
    /// before a draft slot is taken (a slideshow waits for late images);
    /// the versions of the photos found, in post order, which the job
    /// records the first time (none where photos have no versions, such as
    /// local files). [`PhotoSet::offer`] reads the photos at the versions
    /// the job recorded.
    fn ready(&self, job: &Job) -> impl Future<Output = Result<Vec<ObjectVersion>, Hitch>> + Send;

    /// Converts the photos (at `job.image_versions`, when it has them) and
    /// puts them where TikTok can pull them; the URLs, in post order. After
    /// the slot: a held post converts when it is released.
    fn offer(&self, job: &Job) -> impl Future<Output = Result<Vec<String>, Hitch>> + Send;

    /// The post's text and cover.
    fn text(&self) -> PhotoText;
}

impl Forwarder {
    /// Forwards the photo post of `new`: claims the upload, takes the job's
    /// lease and picks up from what the job saved. A job with a
    /// `publish_id` was offered to TikTok already: it is handed over, never
    /// initialised again.
    pub async fn forward_photos<P: PhotoSet>(
        &self,
        new: NewJob,
        photos: &P,
    ) -> Result<Outcome, Retry> {
        finish(self.photo_upload(new, photos).await)
    }

    async fn photo_upload<P: PhotoSet>(&self, new: NewJob, photos: &P) -> Flow<Outcome> {
        let job = self.claim(new).await?;
        let (job, lease) = self.lease(&job, |job| self.resumable(job)).await?;
        let result = self.resume_photos(job, photos).await;
        lease.release().await;
        result
    }

    async fn resume_photos<P: PhotoSet>(&self, job: Job, photos: &P) -> Flow<Outcome> {
        if job.publish_id().is_some() {
            tracing::info!(job_id = %job.id, status = %job.status, "photos were offered already; handing over");
            return self.handed_over(job).await;
        }
        if job.init_started_at().is_some() {
            let detail = "an earlier invocation sent it and stopped".to_owned();
            return Err(self.flag_init_unconfirmed(&job, detail).await);
        }
        let job = match job.status {
            JobStatus::Stuck => self.restart_stuck(job).await?,
            // Only where waiting jobs are released here (see `resumable`).
            JobStatus::Queued | JobStatus::RetryWait => self.release_waiting(job).await?,
            _ => job,
        };
        if let Some(hitch) = photos.refusal() {
            return Err(self.hitch(&job, hitch).await);
        }
        let (job, account) = self.account(job).await?;
        let versions = match photos.ready(&job).await {
            Ok(versions) => versions,
            Err(hitch) => return Err(self.hitch(&job, hitch).await),
        };
        // Pinned the first time, before anything is converted: every later
        // attempt posts the images as they were now.
        let job = self
            .jobs
            .record_image_versions(&job, &versions, self.clock.now())
            .await
            .map_err(|e| retry("record the image versions", e))?;
        // The slot before the work: a held post converts when released.
        self.slot(&job).await?;
        let urls = match photos.offer(&job).await {
            Ok(urls) => urls,
            Err(hitch) => return Err(self.hitch(&job, hitch).await),
        };
        let token = self.token(&job, &account.open_id).await?;
        let text = photos.text();
        let mut post = PhotoPost::draft(urls, text.cover);
        post.title = Some(text.title).filter(|t| !t.is_empty());
        post.description = Some(text.description).filter(|d| !d.is_empty());
        let count = post.photo_images.len();
        let job = self
            .init_once(job, None, &token, &InitRequest::Photo(&post))
            .await?;
        tracing::info!(job_id = %job.id, publish_id = job.publish_id(), photos = count, "photo draft offered");
        self.handed_over(job).await
    }
}
