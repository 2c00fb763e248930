//! The `media/` folder of the upload bucket: what TikTok pulls. Converted
//! photos go to `media/<job id>/<index>.jpg`, a video offered for pulling to
//! `media/videos/<job id>.<ext>`. The bucket's lifecycle rule expires the
//! folder, and only it is ever put behind a URL TikTok can reach: the
//! `uploads/` folder stays private.

use aws_sdk_s3::primitives::ByteStream;

use crate::aws::describe_sdk_error;
use crate::jobs::JobId;

/// The prefix of everything TikTok pulls.
pub const MEDIA_PREFIX: &str = "media/";

/// Where photo `index` of a slideshow job goes.
pub fn photo_key(job: &JobId, index: usize) -> String {
    format!("{MEDIA_PREFIX}{job}/{index}.jpg")
}

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
    use super::*;
    use crate::jobs::ObjectVersion;

    #[test]
    fn everything_goes_under_media() {
        let id = JobId::for_upload("b", "k", &ObjectVersion::ETag("e".into()));
        assert_eq!(photo_key(&id, 3), format!("media/{id}/3.jpg"));
        assert!(photo_key(&id, 0).starts_with(&photo_folder(&id)));
        assert_eq!(video_copy_key(&id, "mov"), format!("media/videos/{id}.mov"));
    }
}
