//! The upload function's configuration, read once per cold start.

use shared::tiktok::Endpoints;
use shared::tiktok::chunk_plan::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use shared::tiktok::config::ConfigError;

/// How TikTok reaches what the function puts under `media/`.
pub use shared::media::MediaUrls;

/// How a video's bytes reach TikTok (`VIDEO_TRANSFER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoTransfer {
    /// We send the bytes in chunks, streamed from S3. Works everywhere.
    FileUpload,
    /// TikTok downloads a copy under `media/` from the verified prefix.
    PullFromUrl,
}

#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub table: String,
    pub secrets_prefix: String,
    pub app_secret_id: String,
    /// The alias of a one-account deployment, whose keys may leave it out.
    pub default_account: Option<String>,
    /// Preferred FILE_UPLOAD chunk size; memory is about two chunks.
    pub chunk_size: u64,
    /// How TikTok reaches the converted photos; `None`: photo drafts fail
    /// with a message saying what to set.
    pub media_urls: Option<MediaUrls>,
    /// How long a slideshow waits for an image its manifest names.
    pub image_grace: std::time::Duration,
    /// Photo conversion threads (capped at the cores Lambda gives).
    pub convert_threads: usize,
    pub endpoints: Endpoints,
    /// FILE_UPLOAD by default; PULL_FROM_URL when a verified prefix is set
    /// (`VIDEO_TRANSFER=auto`) or asked for.
    pub video_transfer: VideoTransfer,
    /// `DIRECT_POST_ENABLED`: uploads may ask to be posted to the feed.
    pub direct_post_enabled: bool,
}

/// `UPLOAD_QUEUE_URL`: the queue whose messages the function sets back to
/// visible soon when their upload should be retried. Unset (or empty):
/// derived from each message's `eventSourceARN`.
pub fn upload_queue_url(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    lookup("UPLOAD_QUEUE_URL")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl UploadConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing { name });
        let chunk_size = match get("CHUNK_SIZE_BYTES") {
            None => DEFAULT_CHUNK_SIZE,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "CHUNK_SIZE_BYTES",
                    reason: format!(
                        "expected a byte count from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}, got {v:?}"
                    ),
                })?,
        };
        let default_account = get("DEFAULT_ACCOUNT");
        if let Some(alias) = &default_account {
            shared::invite::validate_alias(alias).map_err(|e| ConfigError::Invalid {
                name: "DEFAULT_ACCOUNT",
                reason: e.to_string(),
            })?;
        }
        let presigned = matches!(
            get("MEDIA_PRESIGNED_URLS").as_deref(),
            Some("true" | "1" | "yes")
        );
        let media_urls = MediaUrls::from_settings(get("MEDIA_BASE_URL").as_deref(), presigned)
            .map_err(|e| ConfigError::Invalid {
                name: "MEDIA_BASE_URL",
                reason: e.to_string(),
            })?;
        let image_grace = match get("IMAGE_GRACE_SECS") {
            None => std::time::Duration::from_secs(15 * 60),
            Some(v) => v
                .parse::<u64>()
                .map(std::time::Duration::from_secs)
                .map_err(|_| ConfigError::Invalid {
                    name: "IMAGE_GRACE_SECS",
                    reason: format!("expected whole seconds, got {v:?}"),
                })?,
        };
        let video_transfer = match get("VIDEO_TRANSFER").as_deref() {
            None | Some("auto") => match media_urls {
                Some(MediaUrls::Base(_)) => VideoTransfer::PullFromUrl,
                _ => VideoTransfer::FileUpload,
            },
            Some("file_upload") => VideoTransfer::FileUpload,
            Some("pull_from_url") if media_urls.is_some() => VideoTransfer::PullFromUrl,
            Some("pull_from_url") => {
                return Err(ConfigError::Invalid {
                    name: "VIDEO_TRANSFER",
                    reason: "pull_from_url needs MEDIA_BASE_URL (a prefix verified with TikTok)"
                        .into(),
                });
            }
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "VIDEO_TRANSFER",
                    reason: format!("expected auto, file_upload or pull_from_url, got {other:?}"),
                });
            }
        };
        let direct_post_enabled = match get("DIRECT_POST_ENABLED").as_deref() {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "DIRECT_POST_ENABLED",
                    reason: format!("expected true or false, got {other:?}"),
                });
            }
        };
        Ok(Self {
            video_transfer,
            direct_post_enabled,
            media_urls,
            image_grace,
            convert_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            table: required("TABLE_NAME")?,
            secrets_prefix: get(shared::tokens::SECRET_PREFIX_VAR)
                .unwrap_or_else(|| shared::tokens::DEFAULT_SECRET_PREFIX.to_owned()),
            app_secret_id: required("TIKTOK_APP_SECRET_ID")?,
            default_account,
            chunk_size,
            endpoints: Endpoints::from_lookup(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<UploadConfig, ConfigError> {
        let mut map: std::collections::HashMap<String, String> =
            [("TABLE_NAME", "t"), ("TIKTOK_APP_SECRET_ID", "app")]
                .iter()
                .chain(pairs)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        map.retain(|_, v| !v.is_empty());
        UploadConfig::from_lookup(move |name| map.get(name).cloned())
    }

    #[test]
    fn videos_are_pulled_only_from_a_verified_prefix_or_when_asked() {
        assert_eq!(
            config(&[]).unwrap().video_transfer,
            VideoTransfer::FileUpload
        );
        let verified = [("MEDIA_BASE_URL", "https://media.example.com/")];
        assert_eq!(
            config(&verified).unwrap().video_transfer,
            VideoTransfer::PullFromUrl
        );
        // Presigned S3 URLs cannot be verified: auto keeps FILE_UPLOAD.
        let presigned = [("MEDIA_PRESIGNED_URLS", "true")];
        assert_eq!(
            config(&presigned).unwrap().video_transfer,
            VideoTransfer::FileUpload
        );
        let forced = [
            ("MEDIA_PRESIGNED_URLS", "true"),
            ("VIDEO_TRANSFER", "pull_from_url"),
        ];
        assert_eq!(
            config(&forced).unwrap().video_transfer,
            VideoTransfer::PullFromUrl
        );
        let err = config(&[("VIDEO_TRANSFER", "pull_from_url")]).unwrap_err();
        assert!(err.to_string().contains("MEDIA_BASE_URL"), "{err}");
        let err = config(&[("VIDEO_TRANSFER", "carrier-pigeon")]).unwrap_err();
        assert!(err.to_string().contains("VIDEO_TRANSFER"), "{err}");
    }

    #[test]
    fn direct_posting_is_off_unless_enabled() {
        assert!(!config(&[]).unwrap().direct_post_enabled);
        assert!(
            config(&[("DIRECT_POST_ENABLED", "true")])
                .unwrap()
                .direct_post_enabled
        );
        let err = config(&[("DIRECT_POST_ENABLED", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("DIRECT_POST_ENABLED"), "{err}");
    }
}
