//! The `media/` folder of the upload bucket: what TikTok pulls. Converted
//! photos go to `media/<job id>/<index>-<content hash>.jpg`, a video offered for pulling to
//! `media/videos/<job id>.<ext>`. The bucket's lifecycle rule expires the
//! folder, and only it is ever put behind a URL TikTok can reach: the
//! `uploads/` folder stays private.

use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest as _, Sha256};

use crate::aws::describe_sdk_error;
use crate::jobs::JobId;

/// The prefix of everything TikTok pulls.
pub const MEDIA_PREFIX: &str = "media/";

/// Where photo `index` of a slideshow job goes, its bytes being `jpeg`.
/// The key carries a hash of the content, so a cache in front of `media/`
/// (a CDN on the verified domain) can never serve TikTok an older JPEG that
/// was written under the same name by an earlier attempt.
pub fn photo_key(job: &JobId, index: usize, jpeg: &[u8]) -> String {
    let digest = Sha256::digest(jpeg);
    let hash = hex::encode(&digest[..CONTENT_HASH_BYTES]);
    format!("{MEDIA_PREFIX}{job}/{index}-{hash}.jpg")
}

/// Bytes of SHA-256 in a photo's key: 64 bits tell one job's photos apart.
const CONTENT_HASH_BYTES: usize = 8;

/// The folder of a slideshow job's photos (for messages).
pub fn photo_folder(job: &JobId) -> String {
    format!("{MEDIA_PREFIX}{job}/")
}

/// Where the copy of a video offered for pulling goes; `extension` says its
/// type (`mp4`, `mov`, `webm`). The same name on a retry, so a second copy
/// replaces the first.
pub fn video_copy_key(job: &JobId, extension: &str) -> String {
    format!("{MEDIA_PREFIX}videos/{job}.{extension}")
}

/// Why a converted photo could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("cannot write s3://{bucket}/{key}: {detail}")]
pub struct WriteError {
    /// The bucket written to.
    pub bucket: String,
    /// The key written to.
    pub key: String,
    /// What S3 said.
    pub detail: String,
}

/// Writes a converted photo (a JPEG) under `key`.
pub async fn put_jpeg(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    jpeg: Vec<u8>,
) -> Result<(), WriteError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("image/jpeg")
        .body(ByteStream::from(jpeg))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| WriteError {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            detail: describe_sdk_error(&e),
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn another_content_is_another_key() {
        let id = JobId::for_upload("b", "k", &ObjectVersion::ETag("e".into()));
        assert_eq!(photo_key(&id, 1, b"one"), photo_key(&id, 1, b"one"));
        assert_ne!(photo_key(&id, 1, b"one"), photo_key(&id, 1, b"two"));
        assert_ne!(photo_key(&id, 1, b"one"), photo_key(&id, 2, b"one"));
    }

    use super::*;
    use crate::jobs::ObjectVersion;

    #[test]
    fn everything_goes_under_media() {
        let id = JobId::for_upload("b", "k", &ObjectVersion::ETag("e".into()));
        let key = photo_key(&id, 3, b"jpeg");
        assert!(key.starts_with(&format!("media/{id}/3-")), "{key}");
        assert!(key.ends_with(".jpg"), "{key}");
        assert!(photo_key(&id, 0, b"x").starts_with(&photo_folder(&id)));
        assert_eq!(video_copy_key(&id, "mov"), format!("media/videos/{id}.mov"));
    }
}
