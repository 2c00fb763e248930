//! The URLs TikTok pulls media from (`PULL_FROM_URL`): photos always, videos
//! when the deployment has a verified prefix. Shared by the upload function
//! and the CLI so both offer media the same way.

use std::time::Duration;

/// How long a presigned URL lives: TikTok's pull times out after an hour.
pub const PRESIGNED_TTL: Duration = Duration::from_secs(3600);

/// Where TikTok fetches converted photos and video copies under `media/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaUrls {
    /// `MEDIA_BASE_URL`: a URL prefix verified with TikTok (a custom domain
    /// in front of the bucket) + the key. The production setting.
    Base(String),
    /// `MEDIA_PRESIGNED_URLS=true`: presigned S3 GET URLs. TikTok cannot
    /// verify S3's domain, so this is for the local stack, where the
    /// simulator treats the bucket's URL as verified.
    Presigned,
}

/// Why the media URL settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaUrlError {
    /// `MEDIA_BASE_URL` does not parse as a URL, or has a query or no
    /// final `/`; the text says which.
    #[error("MEDIA_BASE_URL is not valid: {0}")]
    BadBase(String),
    /// S3 presigning failed for one object.
    #[error("cannot presign s3://{bucket}/{key}: {detail}")]
    Presign {
        /// The object's bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// The SDK's error, described.
        detail: String,
    },
}

impl MediaUrls {
    /// From `MEDIA_BASE_URL` (wins when set) and `MEDIA_PRESIGNED_URLS`;
    /// `None` when neither is set.
    pub fn from_settings(
        base: Option<&str>,
        presigned: bool,
    ) -> Result<Option<Self>, MediaUrlError> {
        match base.map(str::trim).filter(|b| !b.is_empty()) {
            Some(base) => {
                let url =
                    url::Url::parse(base).map_err(|e| MediaUrlError::BadBase(e.to_string()))?;
                if url.query().is_some() || !url.path().ends_with('/') {
                    return Err(MediaUrlError::BadBase(
                        "it must end with '/' and have no query (it prefixes media keys)".into(),
                    ));
                }
                Ok(Some(Self::Base(base.to_owned())))
            }
            None if presigned => Ok(Some(Self::Presigned)),
            None => Ok(None),
        }
    }

    /// The URL TikTok pulls `key` of `bucket` from.
    pub async fn url_for(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
    ) -> Result<String, MediaUrlError> {
        match self {
            Self::Base(base) => Ok(format!("{base}{key}")),
            Self::Presigned => {
                let presign_error = |detail: String| MediaUrlError::Presign {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    detail,
                };
                let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(PRESIGNED_TTL)
                    .map_err(|e| presign_error(e.to_string()))?;
                s3.get_object()
                    .bucket(bucket)
                    .key(key)
                    .presigned(config)
                    .await
                    .map(|p| p.uri().to_owned())
                    .map_err(|e| presign_error(crate::aws::describe_sdk_error(&e)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(MediaUrls::from_settings(None, false), Ok(None));
        assert_eq!(
            MediaUrls::from_settings(Some(" "), true),
            Ok(Some(MediaUrls::Presigned))
        );
        assert_eq!(
            MediaUrls::from_settings(Some("https://m.example.com/"), true),
            Ok(Some(MediaUrls::Base("https://m.example.com/".into())))
        );
        for bad in [
            "https://m.example.com/x",
            "https://m.example.com/?a=1",
            "nope",
        ] {
            assert!(MediaUrls::from_settings(Some(bad), false).is_err(), "{bad}");
        }
    }
}
