//! A slideshow folder to a TikTok photo draft.
//!
//! The manifest starts the job once all the images it names exist (a
//! missing one is waited for, then fails the job by name after a grace
//! period). Each image becomes a TikTok-ready JPEG under `media/`, which
//! TikTok pulls from the verified URL prefix in front of the bucket:
//! `content/init` with `PULL_FROM_URL`, `MEDIA_UPLOAD`, `PHOTO`.

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use shared::jobs::{Job, JobKind, JobStatus, PostTarget};
use shared::media::convert::{PhotoFile, PhotoLimits, convert_all};
use shared::media::limits::{InputKind, TooLarge};
use shared::media::manifest::Manifest;
use shared::storage::ChunkSource as _;
use shared::storage::S3Object;
use shared::storage::media_folder::photo_key;
use shared::tiktok::PhotoPost;

use crate::events::ObjectRef;
use crate::forwarder::{Forwarder, JobSpec, Opened, Outcome, Retry, retry};
use crate::keys::slideshow_folder;

impl Forwarder {
    pub async fn forward_slideshow(
        &self,
        object: &ObjectRef,
        alias: &str,
    ) -> Result<Outcome, Retry> {
        let source = match self.open(object).await? {
            Opened::Found(source) => source,
            Opened::Gone(reason) => {
                let spec = JobSpec {
                    alias,
                    kind: JobKind::Slideshow,
                    post: PostTarget::Draft,
                    caption: None,
                };
                return self.source_gone(object, spec, reason).await;
            }
        };
        let manifest = self.read_manifest(&source).await?;
        let caption = manifest.as_ref().ok().map(|m| m.caption.clone());
        let spec = JobSpec {
            alias,
            kind: JobKind::Slideshow,
            post: PostTarget::Draft,
            caption,
        };
        self.forward(&source, spec, |job| {
            self.slideshow_job(job, object, manifest)
        })
        .await
    }

    /// The manifest of exactly the version the event named (a ranged GET
    /// pinned like every other read of `source`), or why it is refused.
    async fn read_manifest(&self, source: &S3Object) -> Result<Result<Manifest, String>, Retry> {
        if let Err(too_large) = InputKind::Manifest.check(source.key(), source.size()) {
            return Ok(Err(too_large.to_string()));
        }
        if source.size() == 0 {
            return Ok(Err(format!("{}: the file is empty", source.key())));
        }
        let bytes = match source.read_range(0, source.size()).await {
            Ok(bytes) => bytes,
            Err(err) if err.is_retryable() => return Err(retry("read the manifest", err)),
            // Changed or gone since it was opened: what it said is unknown.
            Err(err) => return Ok(Err(format!("{}: {err}", source.key()))),
        };
        Ok(Manifest::parse(&bytes).map_err(|err| format!("{}: {err}", source.key())))
    }

    /// Picks up the job from what it saved. A job with a `publish_id` was
    /// offered to TikTok already: it is handed over, never initialised again.
    async fn slideshow_job(
        &self,
        job: Job,
        object: &ObjectRef,
        manifest: Result<Manifest, String>,
    ) -> Result<Outcome, Retry> {
        if job.publish_id.is_some() {
            tracing::info!(job_id = %job.id, status = %job.status, "photos were offered already; handing over");
            return self.handed_over(job).await;
        }
        if job.init_started_at.is_some() {
            return self
                .flag_init_unconfirmed(&job, "an earlier invocation sent it and stopped".into())
                .await;
        }
        let job = if job.status == JobStatus::Stuck {
            self.restart_stuck(job).await?
        } else {
            job
        };
        let manifest = match manifest {
            Ok(m) => m,
            Err(message) => return self.fail(&job, "bad_manifest", message).await,
        };
        let Some(media_urls) = self.media_urls.clone() else {
            return self
                .fail(
                    &job,
                    "no_media_url",
                    "photo drafts need MEDIA_BASE_URL: a URL prefix verified with TikTok in front of the bucket".into(),
                )
                .await;
        };
        let (job, account) = match self.account(job).await? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };

        // Every image must be there; a late one is waited for a while.
        let keys = manifest.image_keys(&object.key);
        for (index, key) in keys.iter().enumerate() {
            if !self.exists(&object.bucket, key).await? {
                let waited = self
                    .clock
                    .now()
                    .signed_duration_since(job.created_at)
                    .to_std()
                    .unwrap_or_default();
                if waited < self.image_grace {
                    return Err(retry(
                        "wait for the slideshow's images",
                        format!("images[{index}] {key:?} is not there yet"),
                    )
                    .after(image_wait(self.image_grace, waited)));
                }
                return self
                    .fail(
                        &job,
                        "missing_image",
                        format!(
                            "images[{index}] \u{201c}{}\u{201d} is not in {}",
                            manifest.images[index],
                            slideshow_folder(&object.key)
                        ),
                    )
                    .await;
            }
        }

        // The slot before the work: a held slideshow converts when released.
        if let Err(outcome) = self.slot(&job).await? {
            return Ok(outcome);
        }

        // Convert on local disk, so memory holds only what the workers
        // decode, never all the images at once.
        let dir = tempfile::tempdir().map_err(|e| retry("make a work folder", e))?;
        let mut files = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            let path = dir.path().join(format!("{index}"));
            let name = &manifest.images[index];
            let downloaded = self
                .download_capped(&object.bucket, key, name, &path)
                .await?;
            if let Err(too_large) = downloaded {
                return self
                    .fail(&job, "bad_image", format!("images[{index}] {too_large}"))
                    .await;
            }
            files.push(PhotoFile {
                name: manifest.images[index].clone(),
                path,
            });
        }
        let threads = self.convert_threads;
        let converted = tokio::task::spawn_blocking(move || {
            convert_all(&files, &PhotoLimits::default(), threads)
        })
        .await
        .map_err(|e| retry("convert the images", e))?;
        let mut urls = Vec::with_capacity(converted.len());
        for (index, result) in converted.into_iter().enumerate() {
            let photo = match result {
                Ok(p) => p,
                Err(err) => return self.fail(&job, "bad_image", err.to_string()).await,
            };
            let key = photo_key(&job.id, index);
            self.s3
                .put_object()
                .bucket(&object.bucket)
                .key(&key)
                .content_type("image/jpeg")
                .body(ByteStream::from(photo.jpeg))
                .send()
                .await
                .map_err(|e| {
                    retry(
                        "write a converted photo",
                        shared::aws::describe_sdk_error(&e),
                    )
                })?;
            urls.push(self.media_url(&media_urls, &object.bucket, &key).await?);
        }

        let token = match self.token(&job, &account.open_id).await? {
            Ok(t) => t,
            Err(outcome) => return Ok(outcome),
        };
        let text = manifest.post_text();
        // The manifest allows at most 35 images, so the index fits.
        let cover = u32::try_from(manifest.cover_index).unwrap_or(0);
        let mut post = PhotoPost::draft(urls, cover);
        post.title = Some(text.title).filter(|t| !t.is_empty());
        post.description = Some(text.description).filter(|d| !d.is_empty());
        let photos = post.photo_images.len();
        let init = || self.tiktok.init_photo(&token.access_token, &post);
        let job = match self.init_once(job, None, init).await? {
            Ok((job, _)) => job,
            Err(outcome) => return Ok(outcome),
        };
        tracing::info!(job_id = %job.id, publish_id = job.publish_id.as_deref(), photos, "photo draft offered");
        self.handed_over(job).await
    }

    pub(crate) async fn media_url(
        &self,
        urls: &crate::config::MediaUrls,
        bucket: &str,
        key: &str,
    ) -> Result<String, Retry> {
        urls.url_for(&self.s3, bucket, key)
            .await
            .map_err(|e| retry("make a media URL", e))
    }

    /// Streams an object into `sink`, refusing it by name when it is over
    /// `kind`'s limit: first by the size S3 announces (before any of the
    /// body is read), then by counting, should the size be missing. Only
    /// one network buffer is held at a time, whatever the object's size.
    /// `Err` is a passing failure worth a retry; `Ok(Err)` is final.
    async fn read_capped<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        bucket: &str,
        key: &str,
        name: &str,
        kind: InputKind,
        sink: &mut W,
    ) -> Result<Result<(), TooLarge>, Retry> {
        use tokio::io::AsyncWriteExt as _;
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| retry("read an object", shared::aws::describe_sdk_error(&e)))?;
        let announced = object.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(size) = announced
            && let Err(too_large) = kind.check(name, size)
        {
            return Ok(Err(too_large));
        }
        let mut body = object.body;
        let mut read: u64 = 0;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| retry("read an object's body", e))?
        {
            read = read.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            if read > kind.max_bytes() {
                return Ok(Err(kind.exceeded(name)));
            }
            sink.write_all(&chunk)
                .await
                .map_err(|e| retry("store an object's body", e))?;
        }
        sink.flush()
            .await
            .map_err(|e| retry("store an object's body", e))?;
        Ok(Ok(()))
    }

    /// Downloads a slideshow image to `path` (Lambda's /tmp) within
    /// [`InputKind::Image`]'s limit, without holding it in memory.
    async fn download_capped(
        &self,
        bucket: &str,
        key: &str,
        name: &str,
        path: &std::path::Path,
    ) -> Result<Result<(), TooLarge>, Retry> {
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| retry("store an image for conversion", e))?;
        self.read_capped(bucket, key, name, InputKind::Image, &mut file)
            .await
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, Retry> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
            Err(err) => Err(retry(
                "look for an image",
                shared::aws::describe_sdk_error(&err),
            )),
        }
    }
}

/// How long a slideshow's message stays away while an image is missing:
/// a quarter of the grace period, so that the queue's deliveries (five, in
/// template.yaml) span it, and the last one lands after it to fail the job
/// with `missing_image` instead of ending in the dead-letter queue.
pub fn image_wait(grace: Duration, waited: Duration) -> Duration {
    let step = grace.div_f64(4.0).max(Duration::from_secs(1));
    let left = grace.saturating_sub(waited);
    step.min(left) + Duration::from_secs(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_waits_span_the_grace_and_end_past_it() {
        let grace = Duration::from_secs(900);
        let mut waited = Duration::ZERO;
        let mut deliveries = 1;
        while waited < grace {
            let wait = image_wait(grace, waited);
            assert!(wait <= Duration::from_secs(226), "{wait:?}");
            waited += wait;
            deliveries += 1;
        }
        // Five deliveries reach the end of the grace period.
        assert!(deliveries <= 5, "{deliveries}");
        assert_eq!(
            image_wait(Duration::ZERO, Duration::ZERO),
            Duration::from_secs(1)
        );
    }
}
