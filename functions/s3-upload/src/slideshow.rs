//! A slideshow folder to a TikTok photo draft: what is S3-specific about it.
//!
//! The manifest starts the job once all the images it names exist (a
//! missing one is waited for, then fails the job by name after a grace
//! period). Each image becomes a TikTok-ready JPEG under `media/`, which
//! TikTok pulls from the verified URL prefix in front of the bucket; the
//! post itself is the shared use case's ([`shared::forward`]).

use std::time::Duration;

use shared::forward::{Hitch, Outcome, PhotoSet, PhotoText, Retry, retry};
use shared::jobs::{Job, JobKind, ObjectVersion, PostTarget};
use shared::media::convert::{PhotoFile, PhotoLimits, convert_all};
use shared::media::limits::{InputKind, TooLarge};
use shared::media::manifest::Manifest;
use shared::storage::media_folder::{photo_key, put_jpeg};
use shared::storage::{ChunkSource as _, S3Object};

use crate::events::ObjectRef;
use crate::keys::slideshow_folder;
use crate::object::JobSpec;
use crate::service::UploadService;

impl UploadService {
    /// Forwards the slideshow whose manifest the event names, for the
    /// account `alias`.
    pub(crate) async fn forward_slideshow(
        &self,
        object: &ObjectRef,
        alias: &str,
    ) -> Result<Outcome, Retry> {
        let source = match self.open_or_gone(object, alias, JobKind::Slideshow).await? {
            Ok(source) => source,
            Err(outcome) => return Ok(outcome),
        };
        let manifest = self.read_manifest(&source).await?;
        let spec = JobSpec {
            alias,
            kind: JobKind::Slideshow,
            post: PostTarget::Draft,
            caption: manifest.as_ref().ok().map(|m| m.caption.clone()),
        };
        let show = EventSlideshow {
            service: self,
            object,
            manifest,
        };
        self.forwarder
            .forward_photos(spec.of_object(&source), &show)
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

    /// Streams an image into `sink` at its recorded version, refusing it
    /// by name when it is over `kind`'s limit: first by the size S3
    /// announces (before any of the body is read), then by counting,
    /// should the size be missing. Only one network buffer is held at a
    /// time, whatever the object's size. `Err` is a passing failure worth
    /// a retry.
    async fn read_capped<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        image: &Image<'_>,
        kind: InputKind,
        sink: &mut W,
    ) -> Result<ImageRead, Retry> {
        use tokio::io::AsyncWriteExt as _;
        let mut request = self.s3.get_object().bucket(image.bucket).key(image.key);
        request = match image.version {
            Some(ObjectVersion::VersionId(v)) => request.version_id(v),
            Some(ObjectVersion::ETag(tag)) => request.if_match(format!("\"{tag}\"")),
            None => request,
        };
        let object = match request.send().await {
            Ok(object) => object,
            Err(err) if version_gone(&err) => {
                return Ok(ImageRead::Gone(shared::aws::describe_sdk_error(&err)));
            }
            Err(err) => {
                return Err(retry(
                    "read an object",
                    shared::aws::describe_sdk_error(&err),
                ));
            }
        };
        let announced = object.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(size) = announced
            && let Err(too_large) = kind.check(image.name, size)
        {
            return Ok(ImageRead::TooLarge(too_large));
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
                return Ok(ImageRead::TooLarge(kind.exceeded(image.name)));
            }
            sink.write_all(&chunk)
                .await
                .map_err(|e| retry("store an object's body", e))?;
        }
        sink.flush()
            .await
            .map_err(|e| retry("store an object's body", e))?;
        Ok(ImageRead::Stored)
    }

    /// Downloads a slideshow image to `path` (Lambda's /tmp) within
    /// [`InputKind::Image`]'s limit, without holding it in memory.
    async fn download_capped(
        &self,
        image: &Image<'_>,
        path: &std::path::Path,
    ) -> Result<ImageRead, Retry> {
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| retry("store an image for conversion", e))?;
        self.read_capped(image, InputKind::Image, &mut file).await
    }

    /// The current version of an image, if it is there.
    async fn version_of(&self, bucket: &str, key: &str) -> Result<Option<ObjectVersion>, Retry> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(head) => Ok(Some(ObjectVersion::of(head.version_id(), head.e_tag()))),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(retry(
                "look for an image",
                shared::aws::describe_sdk_error(&err),
            )),
        }
    }
}

/// One slideshow image to read: where, at which version, and its name in
/// the manifest (for messages).
struct Image<'a> {
    bucket: &'a str,
    key: &'a str,
    /// The version the job recorded; `None` reads the current object.
    version: Option<&'a ObjectVersion>,
    name: &'a str,
}

/// What reading an image came to, short of a passing failure.
enum ImageRead {
    Stored,
    /// Over the limit (named in the message).
    TooLarge(TooLarge),
    /// The version the job recorded is gone; what S3 said.
    Gone(String),
}

/// Whether a GET failed because the version asked for is gone (a deleted
/// version, an ETag that no longer matches): waiting will not bring it back.
fn version_gone(
    err: &aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>,
) -> bool {
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    let status = err.raw_response().map(|r| r.status().as_u16());
    matches!(status, Some(404 | 412))
        || err.as_service_error().is_some_and(|e| {
            e.is_no_such_key() || matches!(e.code(), Some("NoSuchVersion" | "PreconditionFailed"))
        })
}

/// The slideshow an event's manifest names, as the use case reads it.
struct EventSlideshow<'a> {
    service: &'a UploadService,
    object: &'a ObjectRef,
    /// The manifest, or why it is refused.
    manifest: Result<Manifest, String>,
}

impl PhotoSet for EventSlideshow<'_> {
    fn refusal(&self) -> Option<Hitch> {
        if let Err(message) = &self.manifest {
            return Some(Hitch::Refused {
                code: "bad_manifest",
                message: message.clone(),
            });
        }
        if self.service.config.media_urls.is_none() {
            return Some(Hitch::Refused {
                code: "no_media_url",
                message: "photo drafts need MEDIA_BASE_URL: a URL prefix verified with TikTok in front of the bucket".into(),
            });
        }
        None
    }

    /// Every image must be there; a late one is waited for a while. The
    /// versions found are what the job records; once it has, they are
    /// what it posts.
    async fn ready(&self, job: &Job) -> Result<Vec<ObjectVersion>, Hitch> {
        if !job.image_versions.is_empty() {
            return Ok(job.image_versions.clone());
        }
        let manifest = self.manifest()?;
        let keys = manifest.image_keys(&self.object.key);
        let mut versions = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            if let Some(version) = self.service.version_of(&self.object.bucket, key).await? {
                versions.push(version);
                continue;
            }
            let waited = self
                .service
                .forwarder
                .clock
                .now()
                .signed_duration_since(job.created_at)
                .to_std()
                .unwrap_or_default();
            let grace = self.service.config.image_grace;
            if waited < grace {
                return Err(retry(
                    "wait for the slideshow's images",
                    format!("images[{index}] {key:?} is not there yet"),
                )
                .after(image_wait(grace, waited))
                .into());
            }
            return Err(Hitch::Refused {
                code: "missing_image",
                message: format!(
                    "images[{index}] \u{201c}{}\u{201d} is not in {}",
                    manifest.images[index],
                    slideshow_folder(&self.object.key)
                ),
            });
        }
        Ok(versions)
    }

    /// Converts on local disk, so memory holds only what the workers
    /// decode, never all the images at once; the JPEGs go under `media/`.
    async fn offer(&self, job: &Job) -> Result<Vec<String>, Hitch> {
        let manifest = self.manifest()?;
        let bucket = &self.object.bucket;
        let dir = tempfile::tempdir().map_err(|e| retry("make a work folder", e))?;
        let mut files = Vec::with_capacity(manifest.images.len());
        for (index, key) in manifest.image_keys(&self.object.key).iter().enumerate() {
            let path = dir.path().join(format!("{index}"));
            let name = &manifest.images[index];
            let image = Image {
                bucket,
                key,
                version: job.image_versions.get(index),
                name,
            };
            match self.service.download_capped(&image, &path).await? {
                ImageRead::Stored => {}
                ImageRead::TooLarge(too_large) => {
                    return Err(Hitch::Refused {
                        code: "bad_image",
                        message: format!("images[{index}] {too_large}"),
                    });
                }
                ImageRead::Gone(gone) => {
                    return Err(Hitch::Refused {
                        code: "source_gone",
                        message: format!(
                            "images[{index}] \u{201c}{name}\u{201d} as it was when the upload started is gone ({gone}); upload the slideshow again"
                        ),
                    });
                }
            }
            files.push(PhotoFile {
                name: name.clone(),
                path,
            });
        }
        let threads = self.service.config.convert_threads;
        let converted = tokio::task::spawn_blocking(move || {
            convert_all(&files, &PhotoLimits::default(), threads)
        })
        .await
        .map_err(|e| retry("convert the images", e))?;
        let Some(media_urls) = &self.service.config.media_urls else {
            return Err(retry("offer the photos", "no MEDIA_BASE_URL").into());
        };
        let mut urls = Vec::with_capacity(converted.len());
        for (index, result) in converted.into_iter().enumerate() {
            let photo = result.map_err(|err| Hitch::Refused {
                code: "bad_image",
                message: err.to_string(),
            })?;
            let key = photo_key(&job.id, index, &photo.jpeg);
            put_jpeg(&self.service.s3, bucket, &key, photo.jpeg)
                .await
                .map_err(|e| retry("write a converted photo", e))?;
            urls.push(self.service.media_url(media_urls, bucket, &key).await?);
        }
        Ok(urls)
    }

    fn text(&self) -> PhotoText {
        match &self.manifest {
            Ok(manifest) => {
                let text = manifest.post_text();
                PhotoText {
                    title: text.title,
                    description: text.description,
                    // The manifest allows at most 35 images, so the index fits.
                    cover: u32::try_from(manifest.cover_index).unwrap_or(0),
                }
            }
            Err(_) => PhotoText {
                title: String::new(),
                description: String::new(),
                cover: 0,
            },
        }
    }
}

impl EventSlideshow<'_> {
    /// The manifest; one that was refused never gets this far (see
    /// [`PhotoSet::refusal`]).
    fn manifest(&self) -> Result<&Manifest, Hitch> {
        self.manifest.as_ref().map_err(|message| Hitch::Refused {
            code: "bad_manifest",
            message: message.clone(),
        })
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
