//! A slideshow folder to a TikTok photo draft.
//!
//! The manifest starts the job once all the images it names exist (a
//! missing one is waited for, then fails the job by name after a grace
//! period). Each image becomes a TikTok-ready JPEG under `media/`, which
//! TikTok pulls from the verified URL prefix in front of the bucket:
//! `content/init` with `PULL_FROM_URL`, `MEDIA_UPLOAD`, `PHOTO`.

use aws_sdk_s3::primitives::ByteStream;
use shared::jobs::{JobKind, JobStatus, PostTarget};
use shared::media::convert::{PhotoFile, PhotoLimits, convert_all};
use shared::media::limits::{InputKind, TooLarge};
use shared::media::manifest::{MANIFEST_FILE_NAME, Manifest, ManifestError};
use shared::tiktok::PhotoPost;

use crate::events::ObjectRef;
use crate::forwarder::{Forwarder, Outcome, Retry, retry};
use crate::keys::slideshow_folder;

/// Where converted photos go: `media/<job id>/<index>.jpg`, short-lived
/// (the bucket's lifecycle rule expires `media/`).
pub const MEDIA_PREFIX: &str = "media/";

impl Forwarder {
    pub async fn forward_slideshow(
        &self,
        object: &ObjectRef,
        alias: &str,
    ) -> Result<Outcome, Retry> {
        let Some(source) = self.open(object).await? else {
            return Ok(Outcome::AlreadyHandled {
                job_id: String::new(),
                status: JobStatus::Cancelled,
            });
        };
        let mut manifest_bytes = Vec::new();
        let manifest = match self
            .read_capped(
                &object.bucket,
                &object.key,
                MANIFEST_FILE_NAME,
                InputKind::Manifest,
                &mut manifest_bytes,
            )
            .await?
        {
            Ok(()) => Manifest::parse(&manifest_bytes),
            Err(too_large) => Err(ManifestError::TooLarge(too_large)),
        };
        let caption = manifest.as_ref().ok().map(|m| m.caption.clone());
        let job = match self
            .claim(
                &source,
                alias,
                JobKind::Slideshow,
                PostTarget::Draft,
                caption,
            )
            .await?
        {
            Ok(job) => job,
            Err(outcome) => return Ok(outcome),
        };
        let (job, lease) = match self.lease(&job).await? {
            Ok(held) => held,
            Err(outcome) => return Ok(outcome),
        };
        let result = async {
            let manifest = match manifest {
                Ok(m) => m,
                Err(err) => {
                    return self
                        .fail(&job, "bad_manifest", format!("{}: {err}", object.key))
                        .await;
                }
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
                        ));
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
                let key = format!("{MEDIA_PREFIX}{}/{index}.jpg", job.id);
                self.s3
                    .put_object()
                    .bucket(&object.bucket)
                    .key(&key)
                    .content_type("image/jpeg")
                    .body(ByteStream::from(photo.jpeg))
                    .send()
                    .await
                    .map_err(|e| retry("write a converted photo", shared::aws::describe_sdk_error(&e)))?;
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
            let init = match self.tiktok.init_photo(&token.access_token, &post).await {
                Ok(init) => init,
                Err(err) => return self.init_refused(&job, &err).await,
            };
            let job = self
                .jobs
                .save_init(&job.id, &init.publish_id, None, None, self.clock.now())
                .await
                .map_err(|e| retry("save the publish id", e))?;
            self.jobs
                .transition(
                    &job,
                    JobStatus::Processing,
                    shared::jobs::Changes::default(),
                    self.clock.now(),
                )
                .await
                .map_err(|e| retry("record the offered photos", e))?;
            tracing::info!(job_id = %job.id, publish_id = %init.publish_id, photos = post.photo_images.len(), "photo draft offered");
            Ok(Outcome::Uploaded {
                job_id: job.id.to_string(),
                publish_id: init.publish_id,
            })
        }
        .await;
        self.release(lease).await;
        result
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
