//! A video object to a TikTok draft: what is S3-specific about it (the
//! caption from the object's metadata or a sidecar, a direct post asked for
//! in the metadata, the server-side copy TikTok pulls); the upload itself is
//! the shared use case's ([`shared::forward`]).

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use bytes::Bytes;
use shared::caption::{VIDEO_TITLE_MAX, trim_to_utf16};
use shared::forward::{Hitch, Outcome, Retry, VideoFile, retry};
use shared::jobs::{Job, JobKind, PostTarget};
use shared::media::detect::VideoKind;
use shared::media::limits::InputKind;
use shared::s3_metadata;
use shared::storage::media_folder::video_copy_key;
use shared::storage::{ChunkSource, S3Object, SourceError};
use shared::tiktok::PrivacyLevel;
use shared::tiktok::upload::VideoContentType;
use tokio::io::AsyncReadExt as _;

use crate::config::VideoTransfer;
use crate::events::ObjectRef;
use crate::object::JobSpec;
use crate::service::UploadService;

impl UploadService {
    /// Forwards the video object the event names, for the account `alias`.
    pub(crate) async fn forward_video(
        &self,
        object: &ObjectRef,
        alias: &str,
    ) -> Result<Outcome, Retry> {
        let source = match self.open_or_gone(object, alias, JobKind::Video).await? {
            Ok(source) => source,
            Err(outcome) => return Ok(outcome),
        };
        let caption = self.caption(&source).await;
        // A refused request still gets a job (as a draft) so that the
        // refusal is recorded where the operator looks.
        let requested = requested_post(source.metadata(), self.config.direct_post_enabled);
        let spec = JobSpec {
            alias,
            kind: JobKind::Video,
            post: requested.clone().unwrap_or(PostTarget::Draft),
            caption,
        };
        let file = EventVideo {
            object: &source,
            service: self,
        };
        self.forwarder
            .forward_video(spec.of_object(&source), &file, requested.err().as_deref())
            .await
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

/// The event's object as the use case reads it: its bytes by ranged GETs
/// pinned to its version, or a copy under `media/` for TikTok to pull.
struct EventVideo<'a> {
    object: &'a S3Object,
    service: &'a UploadService,
}

impl ChunkSource for EventVideo<'_> {
    async fn read_range(&self, start: u64, end: u64) -> Result<Bytes, SourceError> {
        self.object.read_range(start, end).await
    }
}

impl VideoFile for EventVideo<'_> {
    fn size(&self) -> u64 {
        self.object.size()
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.object.bucket(), self.object.key())
    }

    async fn pull_url(&self, job: &Job, kind: VideoKind) -> Result<Option<String>, Hitch> {
        match self.service.config.video_transfer {
            VideoTransfer::FileUpload => Ok(None),
            VideoTransfer::PullFromUrl => Ok(Some(self.offer_copy(job, kind).await?)),
        }
    }
}

impl EventVideo<'_> {
    /// Copies the video under `media/` (server-side, so no byte passes
    /// through the function) and returns the URL TikTok pulls it from. The
    /// uploads folder itself is never exposed; `media/` expires by lifecycle.
    async fn offer_copy(&self, job: &Job, kind: VideoKind) -> Result<String, Retry> {
        let source = self.object;
        let s3 = &self.service.s3;
        let Some(urls) = &self.service.config.media_urls else {
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
        let mut copy = s3
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
        self.service.media_url(urls, source.bucket(), &key).await
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
