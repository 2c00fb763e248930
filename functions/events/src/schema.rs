//! The events this deployment puts on EventBridge: `source` [`SOURCE`], one
//! `detail-type` per [`Kind`], and a versioned [`Detail`]. The reference for
//! people routing them is `docs/events.md`; a test keeps the two in step.
//!
//! Compatibility: within one `schema_version`, fields are only ever added
//! (consumers must ignore fields they do not know); renaming or removing a
//! field, or changing its meaning, makes a new version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `source` of every event.
pub const SOURCE: &str = "tiktok-drafts";

/// The version of [`Detail`] this code writes.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened; each kind has its own `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// A draft reached the creator's TikTok inbox.
    #[serde(rename = "upload.in_inbox")]
    UploadInInbox,
    /// The upload is posted (the creator posted the draft, or a direct post
    /// is up), with its public link when known then.
    #[serde(rename = "upload.posted")]
    UploadPosted,
    /// A posted upload's public link became known after it was posted.
    #[serde(rename = "upload.link_ready")]
    UploadLinkReady,
    /// The upload failed for good, with the reason and what to do.
    #[serde(rename = "upload.failed")]
    UploadFailed,
    /// The upload waits: the account has 5 drafts pending in TikTok.
    #[serde(rename = "upload.held")]
    UploadHeld,
    /// A held upload goes ahead.
    #[serde(rename = "upload.released")]
    UploadReleased,
    /// The upload made no progress for 30 minutes; someone should look.
    #[serde(rename = "upload.stuck")]
    UploadStuck,
    /// The upload was cancelled (at TikTok, or by the operator).
    #[serde(rename = "upload.cancelled")]
    UploadCancelled,
    /// The account's grant no longer works; the creator must log in again.
    #[serde(rename = "account.needs_reconnect")]
    AccountNeedsReconnect,
    /// The account was disconnected (by the creator, TikTok or the operator).
    #[serde(rename = "account.revoked")]
    AccountRevoked,
}

/// Every kind, for listings and exhaustive tests.
pub const ALL_KINDS: [Kind; 10] = [
    Kind::UploadInInbox,
    Kind::UploadPosted,
    Kind::UploadLinkReady,
    Kind::UploadFailed,
    Kind::UploadHeld,
    Kind::UploadReleased,
    Kind::UploadStuck,
    Kind::UploadCancelled,
    Kind::AccountNeedsReconnect,
    Kind::AccountRevoked,
];

impl Kind {
    /// The name in `detail.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadInInbox => "upload.in_inbox",
            Self::UploadPosted => "upload.posted",
            Self::UploadLinkReady => "upload.link_ready",
            Self::UploadFailed => "upload.failed",
            Self::UploadHeld => "upload.held",
            Self::UploadReleased => "upload.released",
            Self::UploadStuck => "upload.stuck",
            Self::UploadCancelled => "upload.cancelled",
            Self::AccountNeedsReconnect => "account.needs_reconnect",
            Self::AccountRevoked => "account.revoked",
        }
    }

    /// The event's `detail-type`, what rules match on.
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::UploadInInbox => "Upload in TikTok inbox",
            Self::UploadPosted => "Upload posted",
            Self::UploadLinkReady => "Post link available",
            Self::UploadFailed => "Upload failed",
            Self::UploadHeld => "Upload held",
            Self::UploadReleased => "Upload released",
            Self::UploadStuck => "Upload stuck",
            Self::UploadCancelled => "Upload cancelled",
            Self::AccountNeedsReconnect => "Account needs reconnecting",
            Self::AccountRevoked => "Account revoked",
        }
    }

    /// Whether the template's optional mail (`NotifyEmail`) includes it:
    /// everything a person should hear about, but a release (the upload's
    /// next event follows soon).
    pub fn is_mailed(self) -> bool {
        self != Self::UploadReleased
    }

    pub fn from_detail_type(detail_type: &str) -> Option<Self> {
        ALL_KINDS
            .into_iter()
            .find(|k| k.detail_type() == detail_type)
    }
}

/// The `detail` of every event, version [`SCHEMA_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detail {
    pub schema_version: u32,
    /// Deterministic: the same change of the same item always has the same
    /// id (32 hex digits). EventBridge's own `id` differs per delivery; a
    /// consumer that must act once dedupes on this one.
    pub event_id: String,
    pub kind: Kind,
    pub account: AccountRef,
    /// The upload, for `upload.*` kinds; `null` for `account.*`.
    pub upload: Option<UploadRef>,
    /// The job's status (`inbox`, `published`, `failed`, ...) or the
    /// account's state (`needs_reconnect`, `revoked`) after the change.
    pub status: String,
    /// What it was before; `null` when the item is new.
    pub previous_status: Option<String>,
    /// Why, when something went wrong (failed, held, stuck, account trouble).
    pub reason: Option<Reason>,
    /// What to do now, one sentence; always present.
    pub hint: String,
    /// The posts' public links (`upload.posted`, `upload.link_ready`).
    pub links: Vec<String>,
    /// One line naming the account and the file, for a mail's first line.
    pub headline: String,
    /// One line on where it stands, in plain words.
    pub summary: String,
    /// When the change was written (the item's `updated_at`).
    pub occurred_at: DateTime<Utc>,
}

/// Which account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRef {
    /// The operator's name for it (`uploads/<alias>/…`); `null` when none.
    pub alias: Option<String>,
    /// TikTok's id of the creator; `null` for an upload whose alias never
    /// resolved to an account.
    pub open_id: Option<String>,
}

/// Which upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRef {
    pub job_id: String,
    /// `video` or `slideshow`.
    pub kind: String,
    /// The file name: the key's last part (a slideshow's folder name).
    pub file: String,
    pub bucket: String,
    pub key: String,
    /// `draft` or `direct`.
    pub post_mode: String,
    /// The caption kept with the job: TikTok drops it from inbox videos, so
    /// the creator pastes it from here.
    pub caption: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Why something went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Machine-readable: TikTok's fail reason or error code, or this
    /// project's (`auth_removed`, `source_gone`, ...).
    pub code: String,
    /// The reason in the creator's words.
    pub text: String,
    /// The recorded message, in the operator's words; `null` when none.
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name_and_detail_type() {
        for kind in ALL_KINDS {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            assert_eq!(serde_json::from_value::<Kind>(json).unwrap(), kind);
            assert_eq!(Kind::from_detail_type(kind.detail_type()), Some(kind));
        }
        let types: std::collections::BTreeSet<_> =
            ALL_KINDS.iter().map(|k| k.detail_type()).collect();
        assert_eq!(types.len(), ALL_KINDS.len(), "one detail-type per kind");
    }

    /// docs/events.md is the reference people route by: it names every kind
    /// and detail-type, describes every field, and its example is a valid
    /// detail of this version.
    #[test]
    fn the_reference_document_matches_the_code() {
        let doc = include_str!("../../../docs/events.md");
        for kind in ALL_KINDS {
            assert!(doc.contains(&format!("`{}`", kind.as_str())), "{kind:?}");
            assert!(
                doc.contains(&format!("`{}`", kind.detail_type())),
                "{kind:?}"
            );
        }
        let example = doc
            .split("```json")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("an example detail");
        let detail: Detail = serde_json::from_str(example).expect("the example follows the schema");
        assert_eq!(detail.schema_version, SCHEMA_VERSION);
        let json = serde_json::to_value(&detail).unwrap();
        let mut fields = Vec::new();
        // Every leaf, and objects through their fields.
        for (name, value) in json.as_object().unwrap() {
            match value.as_object() {
                Some(inner) => fields.extend(inner.keys().map(|k| format!("{name}.{k}"))),
                None => fields.push(name.clone()),
            }
        }
        for field in fields {
            assert!(
                doc.contains(&format!("| `{field}`")),
                "docs/events.md does not describe {field}"
            );
        }
        assert!(doc.contains(&format!("`source` | `{SOURCE}`")));
    }
}
