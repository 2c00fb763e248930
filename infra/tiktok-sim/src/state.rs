//! The simulator's persisted model: users, OAuth codes and grants, publishes and uploads.
//! Everything here is written to `state.json`; secrets (codes, tokens, upload tokens) are
//! kept only as SHA-256 hashes so the file never holds a usable credential.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::Settings;

/// Scopes the authorize page knows.
pub const KNOWN_SCOPES: &[&str] = &[
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.upload",
    "video.publish",
    "video.list",
];

pub const PUBLIC_PRIVACY_OPTIONS: &[&str] =
    &["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];
pub const PRIVATE_PRIVACY_OPTIONS: &[&str] =
    &["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub settings: Settings,
    pub clock: Clock,
    pub users: Vec<User>,
    pub authorize_queue: VecDeque<AuthorizeScript>,
    /// Keyed by SHA-256 hex of the code.
    pub codes: BTreeMap<String, AuthCode>,
    pub grants: BTreeMap<u64, Grant>,
    /// Keyed by SHA-256 hex of the access token.
    pub access_tokens: BTreeMap<String, TokenRecord>,
    /// Keyed by SHA-256 hex of the refresh token.
    pub refresh_tokens: BTreeMap<String, TokenRecord>,
    pub publishes: BTreeMap<String, Publish>,
    /// Keyed by upload_id.
    pub uploads: BTreeMap<String, Upload>,
    /// Source of publish-id numbers and grant ids; never reset so that ids from before a
    /// reset cannot collide with new ones.
    pub next_id: u64,
}

impl State {
    pub fn fresh(settings: Settings) -> Self {
        Self {
            settings,
            next_id: 7_300_000_000 + u64::from(rand::random::<u32>() % 1_000_000),
            ..Self::default()
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn next_number(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn user(&self, open_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.open_id == open_id)
    }

    /// Forgets everything but settings and the clock.
    pub fn reset(&mut self) {
        let fresh = State {
            settings: self.settings.clone(),
            clock: self.clock,
            next_id: self.next_id,
            ..State::default()
        };
        *self = fresh;
    }

    /// Finds the live grant behind an access token, or `None` when it is unknown, expired or
    /// revoked.
    pub fn grant_for_access_token(&self, token: &str) -> Option<&Grant> {
        let record = self.access_tokens.get(&sha256_hex(token.as_bytes()))?;
        if record.expires_at_ms <= self.now_ms() {
            return None;
        }
        self.grants.get(&record.grant_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub open_id: String,
    pub union_id: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: String,
    pub privacy_level_options: Vec<String>,
    pub is_private: bool,
    pub banned: bool,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    pub max_video_post_duration_sec: i32,
}

/// One scripted answer of the authorize page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeScript {
    pub open_id: String,
    #[serde(default)]
    pub deny: bool,
    /// The subset of requested scopes the user leaves switched on; `None` grants all.
    #[serde(default)]
    pub grant_scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    pub client_key: String,
    pub redirect_uri: String,
    pub open_id: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub expires_at_ms: i64,
    pub used: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub id: u64,
    pub open_id: String,
    pub client_key: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub grant_id: u64,
    pub expires_at_ms: i64,
}

/// Which init endpoint created a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishKind {
    InboxVideo,
    DirectVideo,
    Photo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Source {
    FileUpload,
    PullFromUrl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PublishStatus {
    ProcessingUpload,
    ProcessingDownload,
    SendToUserInbox,
    PublishComplete,
    Failed,
}

impl PublishStatus {
    /// Whether a publish in this status still takes one of the user's pending-share slots.
    pub fn holds_pending_slot(self) -> bool {
        matches!(
            self,
            Self::ProcessingUpload | Self::ProcessingDownload | Self::SendToUserInbox
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The pulled URL without its query string (presigned signatures stay out of state).
    pub url: String,
    pub sha256: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    /// EXIF orientation (1-8) when the image carries one.
    pub exif_orientation: Option<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publish {
    pub publish_id: String,
    pub open_id: String,
    pub kind: PublishKind,
    /// `DIRECT_POST` or `MEDIA_UPLOAD` (inbox).
    pub post_mode: String,
    pub source: Source,
    pub status: PublishStatus,
    pub fail_reason: Option<String>,
    pub post_info: Option<serde_json::Value>,
    pub video_size: Option<u64>,
    pub chunk_size: Option<u64>,
    pub total_chunk_count: Option<u64>,
    pub uploaded_bytes: Option<u64>,
    pub downloaded_bytes: Option<u64>,
    /// Pulled video URL without its query string.
    pub video_url: Option<String>,
    /// Full URLs to pull; kept so a pull interrupted by a restart can start over.
    #[serde(default)]
    pub pull_urls: Vec<String>,
    pub photo_cover_index: Option<u32>,
    pub sha256: Option<String>,
    pub media_format: Option<String>,
    pub images: Vec<ImageRecord>,
    pub post_ids: Vec<u64>,
    pub upload_id: Option<String>,
    /// The media arrived and passed its checks (the publish may still wait in PROCESSING_*
    /// when auto_advance is off).
    pub media_ready: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Publish {
    pub fn is_direct_post(&self) -> bool {
        self.post_mode == "DIRECT_POST"
    }

    /// Inbox video drafts and MEDIA_UPLOAD photo posts count against the pending-share cap.
    pub fn is_inbox_share(&self) -> bool {
        self.post_mode == "MEDIA_UPLOAD"
    }

    /// Applies a status change and its side effects (post ids for completed direct posts).
    pub fn set_status(&mut self, status: PublishStatus, fail_reason: Option<String>, now_ms: i64) {
        self.status = status;
        self.fail_reason = if status == PublishStatus::Failed {
            fail_reason.or_else(|| Some("internal".to_owned()))
        } else {
            None
        };
        if status == PublishStatus::PublishComplete && self.post_ids.is_empty() {
            self.post_ids.push(new_post_id());
        }
        self.updated_at_ms = now_ms;
    }

    /// The status TikTok moves to once the media is in and checked.
    pub fn ready_status(&self) -> PublishStatus {
        if self.is_direct_post() {
            PublishStatus::PublishComplete
        } else {
            PublishStatus::SendToUserInbox
        }
    }
}

/// A FILE_UPLOAD in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub upload_id: String,
    pub upload_token_sha256: String,
    pub publish_id: String,
    pub issued_at_ms: i64,
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
    /// Bytes accepted so far; only whole chunks advance it.
    pub received: u64,
    pub complete: bool,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Post ids above 2^53, like real ones, so clients that parse them as f64 break.
pub fn new_post_id() -> u64 {
    7_400_000_000_000_000_000 + rand::random::<u64>() % 100_000_000_000_000_000
}

/// A random string of ASCII letters and digits.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A log id shaped like TikTok's: a timestamp followed by hex.
pub fn new_log_id(now_ms: i64) -> String {
    let stamp = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y%m%d%H%M%S").to_string())
        .unwrap_or_default();
    format!("{stamp}{:020X}", rand::random::<u128>() >> 48)
}

/// Strips the query string and fragment from a URL for records and logs.
pub fn url_without_query(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_ids_exceed_f64_precision() {
        for _ in 0..100 {
            assert!(new_post_id() > (1u64 << 53));
        }
    }

    #[test]
    fn query_is_stripped() {
        assert_eq!(
            url_without_query("https://a.example/x.jpg?X-Amz-Signature=abc"),
            "https://a.example/x.jpg"
        );
    }

    #[test]
    fn log_id_has_timestamp_and_hex() {
        let id = new_log_id(0);
        assert!(id.starts_with("19700101000000"));
        assert_eq!(id.len(), 14 + 20);
    }
}
