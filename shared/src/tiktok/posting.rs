//! Request and response shapes of the Content Posting API.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::chunk_plan::ChunkPlan;
use crate::secret::Secret;

/// Where TikTok gets the video from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    /// We PUT the bytes to the returned `upload_url`, chunk by chunk.
    FileUpload(ChunkPlan),
    /// TikTok downloads the video; the URL must sit under a verified domain
    /// or URL prefix.
    PullFromUrl {
        /// Where TikTok downloads the video from.
        video_url: String,
    },
}

/// `source_info` as TikTok wants it: only the fields of the chosen source,
/// nothing else (the API rejects stray fields).
#[derive(Debug, Serialize)]
#[serde(tag = "source")]
pub(crate) enum SourceInfo<'a> {
    #[serde(rename = "FILE_UPLOAD")]
    FileUpload {
        video_size: u64,
        chunk_size: u64,
        total_chunk_count: u64,
    },
    #[serde(rename = "PULL_FROM_URL")]
    PullFromUrl { video_url: &'a str },
}

impl<'a> From<&'a VideoSource> for SourceInfo<'a> {
    fn from(source: &'a VideoSource) -> Self {
        match source {
            VideoSource::FileUpload(plan) => SourceInfo::FileUpload {
                video_size: plan.video_size,
                chunk_size: plan.chunk_size,
                total_chunk_count: plan.total_chunk_count,
            },
            VideoSource::PullFromUrl { video_url } => SourceInfo::PullFromUrl { video_url },
        }
    }
}

/// Who may see a direct post. TikTok offers a per-creator subset (see
/// [`CreatorInfo::privacy_level_options`]) and the audit rules forbid a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrivacyLevel {
    /// Anyone.
    PublicToEveryone,
    /// Only the creator's mutual followers (friends).
    MutualFollowFriends,
    /// Only the creator's followers.
    FollowerOfCreator,
    /// Only the creator; the one level an unaudited app may use.
    SelfOnly,
}

impl PrivacyLevel {
    /// TikTok's name for it, as sent and as listed in
    /// [`CreatorInfo::privacy_level_options`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PublicToEveryone => "PUBLIC_TO_EVERYONE",
            Self::MutualFollowFriends => "MUTUAL_FOLLOW_FRIENDS",
            Self::FollowerOfCreator => "FOLLOWER_OF_CREATOR",
            Self::SelfOnly => "SELF_ONLY",
        }
    }
}

impl std::str::FromStr for PrivacyLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "PUBLIC_TO_EVERYONE" => Ok(Self::PublicToEveryone),
            "MUTUAL_FOLLOW_FRIENDS" => Ok(Self::MutualFollowFriends),
            "FOLLOWER_OF_CREATOR" => Ok(Self::FollowerOfCreator),
            "SELF_ONLY" => Ok(Self::SelfOnly),
            other => Err(format!(
                "unknown privacy level {other:?}; expected PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR or SELF_ONLY"
            )),
        }
    }
}

impl fmt::Display for PrivacyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `post_info` of a direct video post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectPostInfo {
    /// Who may see the post; one of the creator's options.
    pub privacy_level: PrivacyLevel,
    /// The caption, at most [`crate::caption::VIDEO_TITLE_MAX`] UTF-16
    /// units; `None` posts without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Whether others may not duet the video.
    pub disable_duet: bool,
    /// Whether others may not stitch the video.
    pub disable_stitch: bool,
    /// Whether the post takes no comments.
    pub disable_comment: bool,
    /// Which frame is the cover, in milliseconds from the start; `None`
    /// leaves it to TikTok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_cover_timestamp_ms: Option<u32>,
    /// Whether the post is a paid partnership (promotes a third party).
    pub brand_content_toggle: bool,
    /// Whether the post promotes the creator's own business.
    pub brand_organic_toggle: bool,
    /// Whether the post is labelled as AI-generated content.
    pub is_aigc: bool,
}

impl DirectPostInfo {
    /// Interaction toggles off and no commercial disclosure: the defaults the
    /// audit rules ask for. The privacy level has no default; it is chosen.
    pub fn new(privacy_level: PrivacyLevel) -> Self {
        Self {
            privacy_level,
            title: None,
            disable_duet: false,
            disable_stitch: false,
            disable_comment: false,
            video_cover_timestamp_ms: None,
            brand_content_toggle: false,
            brand_organic_toggle: false,
            is_aigc: false,
        }
    }
}

/// `post_mode` of a photo post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PostMode {
    /// Into the creator's inbox as a draft; the default of this project.
    MediaUpload,
    /// Straight onto the creator's profile.
    DirectPost,
}

/// A photo post (`/v2/post/publish/content/init/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoPost {
    /// Draft or direct post.
    pub post_mode: PostMode,
    /// The post's title, at most [`crate::caption::PHOTO_TITLE_MAX`] UTF-16
    /// units; `None` (or empty) sends none.
    pub title: Option<String>,
    /// The post's text, at most [`crate::caption::PHOTO_DESCRIPTION_MAX`]
    /// UTF-16 units; `None` (or empty) sends none.
    pub description: Option<String>,
    /// Required for [`PostMode::DirectPost`], not sent for drafts.
    pub privacy_level: Option<PrivacyLevel>,
    /// Whether the post takes no comments; direct posts only.
    pub disable_comment: bool,
    /// Whether TikTok adds music to the slideshow; direct posts only.
    pub auto_add_music: bool,
    /// URLs under a verified domain or prefix, in display order (1 to 35).
    pub photo_images: Vec<String>,
    /// Which of `photo_images` is the cover, from 0.
    pub photo_cover_index: u32,
}

impl PhotoPost {
    /// A photo draft for the inbox.
    pub fn draft(photo_images: Vec<String>, photo_cover_index: u32) -> Self {
        Self {
            post_mode: PostMode::MediaUpload,
            title: None,
            description: None,
            privacy_level: None,
            disable_comment: false,
            auto_add_music: false,
            photo_images,
            photo_cover_index,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct PhotoPostBody<'a> {
    pub media_type: &'static str,
    pub post_mode: PostMode,
    pub post_info: PhotoPostInfoBody<'a>,
    pub source_info: PhotoSourceBody<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PhotoPostInfoBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy_level: Option<PrivacyLevel>,
    // The interaction and music flags apply to direct posts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_comment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_add_music: Option<bool>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PhotoSourceBody<'a> {
    pub source: &'static str,
    pub photo_images: &'a [String],
    pub photo_cover_index: u32,
}

impl<'a> PhotoPostBody<'a> {
    pub fn new(post: &'a PhotoPost) -> Self {
        let direct = post.post_mode == PostMode::DirectPost;
        Self {
            media_type: "PHOTO",
            post_mode: post.post_mode,
            post_info: PhotoPostInfoBody {
                title: post.title.as_deref().filter(|t| !t.is_empty()),
                description: post.description.as_deref().filter(|d| !d.is_empty()),
                privacy_level: if direct { post.privacy_level } else { None },
                disable_comment: direct.then_some(post.disable_comment),
                auto_add_music: direct.then_some(post.auto_add_music),
            },
            source_info: PhotoSourceBody {
                source: "PULL_FROM_URL",
                photo_images: &post.photo_images,
                photo_cover_index: post.photo_cover_index,
            },
        }
    }
}

/// What an init returns.
#[derive(Debug, Clone, Deserialize)]
pub struct InitResponse {
    /// Save it before anything else: it is the only handle on the upload.
    pub publish_id: String,
    /// FILE_UPLOAD only; valid for one hour. It carries an upload token, so
    /// it is a [`Secret`] and never logged whole.
    #[serde(default)]
    pub upload_url: Option<Secret>,
}

/// `creator_info/query`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct CreatorInfo {
    /// A link to the creator's profile picture.
    #[serde(default)]
    pub creator_avatar_url: Option<String>,
    /// The creator's `@` handle, as in profile and post URLs.
    #[serde(default)]
    pub creator_username: Option<String>,
    /// The creator's display name.
    #[serde(default)]
    pub creator_nickname: Option<String>,
    /// The privacy levels the creator's account offers, as TikTok names them
    /// ([`PrivacyLevel::as_str`]).
    #[serde(default)]
    pub privacy_level_options: Vec<String>,
    /// Whether the creator switched comments off in the app's settings.
    #[serde(default)]
    pub comment_disabled: bool,
    /// Whether the creator switched duets off in the app's settings.
    #[serde(default)]
    pub duet_disabled: bool,
    /// Whether the creator switched stitches off in the app's settings.
    #[serde(default)]
    pub stitch_disabled: bool,
    /// The longest video this creator may post, in seconds; `None` when
    /// TikTok did not say.
    #[serde(default)]
    pub max_video_post_duration_sec: Option<u32>,
}

impl CreatorInfo {
    /// Whether `level` is among the creator's privacy level options.
    pub fn allows(&self, level: PrivacyLevel) -> bool {
        self.privacy_level_options
            .iter()
            .any(|o| o == level.as_str())
    }
}

/// `status` of a publish.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PublishState {
    /// `PROCESSING_UPLOAD`: receiving or processing the uploaded bytes.
    ProcessingUpload,
    /// `PROCESSING_DOWNLOAD`: pulling the media from its URL.
    ProcessingDownload,
    /// `SEND_TO_USER_INBOX`: the draft is in the creator's inbox.
    SendToUserInbox,
    /// `PUBLISH_COMPLETE`: posted.
    PublishComplete,
    /// `FAILED`: see the answer's [`FailReason`].
    Failed,
    /// A state TikTok does not document; kept verbatim.
    Other(String),
}

impl PublishState {
    /// TikTok's name for the state.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ProcessingUpload => "PROCESSING_UPLOAD",
            Self::ProcessingDownload => "PROCESSING_DOWNLOAD",
            Self::SendToUserInbox => "SEND_TO_USER_INBOX",
            Self::PublishComplete => "PUBLISH_COMPLETE",
            Self::Failed => "FAILED",
            Self::Other(s) => s,
        }
    }

    /// Whether TikTok is still working on it.
    pub fn is_processing(&self) -> bool {
        matches!(self, Self::ProcessingUpload | Self::ProcessingDownload)
    }
}

impl From<String> for PublishState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "PROCESSING_UPLOAD" => Self::ProcessingUpload,
            "PROCESSING_DOWNLOAD" => Self::ProcessingDownload,
            "SEND_TO_USER_INBOX" => Self::SendToUserInbox,
            "PUBLISH_COMPLETE" => Self::PublishComplete,
            "FAILED" => Self::Failed,
            _ => Self::Other(s),
        }
    }
}

impl From<PublishState> for String {
    fn from(s: PublishState) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Display for PublishState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FailReason {
    /// `file_format_check_failed`: a format TikTok does not take.
    FileFormatCheckFailed,
    /// `duration_check_failed`: too long or too short for the account.
    DurationCheckFailed,
    /// `frame_rate_check_failed`: outside 23 to 60 frames a second.
    FrameRateCheckFailed,
    /// `picture_size_check_failed`: dimensions or file size out of range.
    PictureSizeCheckFailed,
    /// `internal`: TikTok's own fault; retryable.
    Internal,
    /// `video_pull_failed`: TikTok could not download the video; retryable.
    VideoPullFailed,
    /// `photo_pull_failed`: TikTok could not download a photo; retryable.
    PhotoPullFailed,
    /// `publish_cancelled`: the publish was cancelled.
    PublishCancelled,
    /// `auth_removed`: the creator revoked the app's access meanwhile.
    AuthRemoved,
    /// `spam_risk_too_many_posts`: the account's daily posting cap.
    SpamRiskTooManyPosts,
    /// `spam_risk_user_banned_from_posting`: the account may not post.
    SpamRiskUserBannedFromPosting,
    /// `spam_risk_text`: the caption was flagged.
    SpamRiskText,
    /// `spam_risk`: the post was flagged as spam.
    SpamRisk,
    /// A reason TikTok does not document; kept verbatim.
    Other(String),
}

impl FailReason {
    /// TikTok's name for the reason.
    pub fn as_str(&self) -> &str {
        match self {
            Self::FileFormatCheckFailed => "file_format_check_failed",
            Self::DurationCheckFailed => "duration_check_failed",
            Self::FrameRateCheckFailed => "frame_rate_check_failed",
            Self::PictureSizeCheckFailed => "picture_size_check_failed",
            Self::Internal => "internal",
            Self::VideoPullFailed => "video_pull_failed",
            Self::PhotoPullFailed => "photo_pull_failed",
            Self::PublishCancelled => "publish_cancelled",
            Self::AuthRemoved => "auth_removed",
            Self::SpamRiskTooManyPosts => "spam_risk_too_many_posts",
            Self::SpamRiskUserBannedFromPosting => "spam_risk_user_banned_from_posting",
            Self::SpamRiskText => "spam_risk_text",
            Self::SpamRisk => "spam_risk",
            Self::Other(s) => s,
        }
    }

    /// Whether doing the same upload again may succeed: TikTok-side faults and
    /// pulls that failed for a passing reason. Never spam, auth or format.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Internal | Self::VideoPullFailed | Self::PhotoPullFailed
        )
    }

    /// A sentence a creator or operator can act on.
    pub fn human_message(&self) -> &'static str {
        match self {
            Self::FileFormatCheckFailed => {
                "TikTok does not accept this file's format (use MP4/H.264, MOV or WebM; JPEG or WebP photos)."
            }
            Self::DurationCheckFailed => {
                "The video is too long or too short for this account on TikTok."
            }
            Self::FrameRateCheckFailed => "The video's frame rate is outside 23-60 FPS.",
            Self::PictureSizeCheckFailed => {
                "The picture's size is outside TikTok's limits (at most 1080p and 20 MB)."
            }
            Self::Internal => {
                "TikTok had an internal problem processing the upload; it is retried."
            }
            Self::VideoPullFailed => "TikTok could not download the video from its URL.",
            Self::PhotoPullFailed => "TikTok could not download a photo from its URL.",
            Self::PublishCancelled => "The upload was cancelled.",
            Self::AuthRemoved => {
                "The creator removed this app's access while TikTok was processing the upload, so TikTok stopped it."
            }
            Self::SpamRiskTooManyPosts => {
                "The account reached TikTok's daily posting cap; post from the app or wait 24 hours."
            }
            Self::SpamRiskUserBannedFromPosting => "TikTok has banned this account from posting.",
            Self::SpamRiskText => "TikTok flagged the caption text as risky.",
            Self::SpamRisk => "TikTok flagged the post as a spam risk.",
            Self::Other(_) => "TikTok reported a failure reason this tool does not know.",
        }
    }
}

impl From<String> for FailReason {
    fn from(s: String) -> Self {
        match s.as_str() {
            "file_format_check_failed" => Self::FileFormatCheckFailed,
            "duration_check_failed" => Self::DurationCheckFailed,
            "frame_rate_check_failed" => Self::FrameRateCheckFailed,
            "picture_size_check_failed" => Self::PictureSizeCheckFailed,
            "internal" => Self::Internal,
            "video_pull_failed" => Self::VideoPullFailed,
            "photo_pull_failed" => Self::PhotoPullFailed,
            "publish_cancelled" => Self::PublishCancelled,
            "auth_removed" => Self::AuthRemoved,
            "spam_risk_too_many_posts" => Self::SpamRiskTooManyPosts,
            "spam_risk_user_banned_from_posting" => Self::SpamRiskUserBannedFromPosting,
            "spam_risk_text" => Self::SpamRiskText,
            "spam_risk" => Self::SpamRisk,
            _ => Self::Other(s),
        }
    }
}

impl From<FailReason> for String {
    fn from(r: FailReason) -> Self {
        r.as_str().to_owned()
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `status/fetch`. Every field but `status` is optional: real FAILED answers
/// carry only `status` and `fail_reason`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PublishStatus {
    /// Where the publish stands.
    pub status: PublishState,
    /// Why it failed; `None` unless `status` is `FAILED` (an empty string
    /// reads as `None`).
    #[serde(default, deserialize_with = "empty_string_as_none")]
    pub fail_reason: Option<FailReason>,
    /// TikTok's spelling. Post ids exceed 2^53, so they are parsed as u64,
    /// from numbers or from strings of digits.
    #[serde(
        default,
        rename = "publicaly_available_post_id",
        deserialize_with = "post_ids"
    )]
    pub post_ids: Vec<u64>,
    /// FILE_UPLOAD: how many bytes TikTok has received so far.
    #[serde(default)]
    pub uploaded_bytes: Option<u64>,
    /// PULL_FROM_URL: how many bytes TikTok has downloaded so far.
    #[serde(default)]
    pub downloaded_bytes: Option<u64>,
}

/// The public link of a post: `https://www.tiktok.com/@<username>/video/<post id>`.
/// TikTok's status answer carries post ids only (no share or cover URL), so
/// this is the one link that can be known; `None` when the username could not
/// be part of a profile path.
pub fn share_url(username: &str, post_id: u64) -> Option<String> {
    crate::accounts::is_username(username)
        .then(|| format!("https://www.tiktok.com/@{username}/video/{post_id}"))
}

/// [`share_url`] for each post id, or none without a username.
pub fn share_urls(username: Option<&str>, post_ids: &[u64]) -> Vec<String> {
    match username {
        Some(name) => post_ids
            .iter()
            .filter_map(|id| share_url(name, *id))
            .collect(),
        None => Vec::new(),
    }
}

fn empty_string_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FailReason>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    Ok(raw.filter(|s| !s.is_empty()).map(FailReason::from))
}

fn post_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    let raw: Option<Vec<Id>> = Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|id| match id {
            Id::Number(n) => Ok(n),
            Id::Text(s) => s
                .parse::<u64>()
                .map_err(|_| serde::de::Error::custom(format!("post id {s:?} is not an integer"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_urls_need_a_username_and_keep_64_bit_ids() {
        assert_eq!(
            share_urls(Some("alice"), &[7_459_287_841_546_292_488]),
            vec!["https://www.tiktok.com/@alice/video/7459287841546292488".to_owned()]
        );
        assert!(share_urls(None, &[1]).is_empty());
        assert_eq!(share_url("a/../b", 1), None);
    }

    #[test]
    fn source_info_carries_only_its_fields() {
        let plan = ChunkPlan::new(100, 10_000_000).unwrap();
        let file = VideoSource::FileUpload(plan);
        let json = serde_json::to_value(SourceInfo::from(&file)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"source":"FILE_UPLOAD","video_size":100,"chunk_size":100,"total_chunk_count":1})
        );
        let pull = VideoSource::PullFromUrl {
            video_url: "https://m.example.com/v.mp4".into(),
        };
        let json = serde_json::to_value(SourceInfo::from(&pull)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"source":"PULL_FROM_URL","video_url":"https://m.example.com/v.mp4"})
        );
    }

    #[test]
    fn photo_draft_body_leaves_out_direct_post_fields() {
        let mut post = PhotoPost::draft(vec!["https://m.example.com/1.jpg".into()], 0);
        post.title = Some("t".into());
        post.privacy_level = Some(PrivacyLevel::SelfOnly);
        let json = serde_json::to_value(PhotoPostBody::new(&post)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "media_type":"PHOTO","post_mode":"MEDIA_UPLOAD",
                "post_info":{"title":"t"},
                "source_info":{"source":"PULL_FROM_URL","photo_images":["https://m.example.com/1.jpg"],"photo_cover_index":0}
            })
        );
        post.post_mode = PostMode::DirectPost;
        let json = serde_json::to_value(PhotoPostBody::new(&post)).unwrap();
        assert_eq!(json["post_info"]["privacy_level"], "SELF_ONLY");
        assert_eq!(json["post_info"]["disable_comment"], false);
    }

    #[test]
    fn status_parses_sparse_and_large_answers() {
        let s: PublishStatus =
            serde_json::from_str(r#"{"fail_reason":"file_format_check_failed","status":"FAILED"}"#)
                .unwrap();
        assert_eq!(s.status, PublishState::Failed);
        assert_eq!(s.fail_reason, Some(FailReason::FileFormatCheckFailed));
        assert!(s.post_ids.is_empty());

        let s: PublishStatus = serde_json::from_str(
            r#"{"status":"PUBLISH_COMPLETE","publicaly_available_post_id":[7459287841546292488,"7459287841546292489"]}"#,
        )
        .unwrap();
        assert_eq!(s.post_ids, vec![7459287841546292488, 7459287841546292489]);

        let s: PublishStatus =
            serde_json::from_str(r#"{"status":"SOMETHING_NEW","fail_reason":""}"#).unwrap();
        assert_eq!(s.status, PublishState::Other("SOMETHING_NEW".into()));
        assert_eq!(s.fail_reason, None);
    }

    #[test]
    fn fail_reasons_retry_only_passing_faults() {
        for r in ["internal", "video_pull_failed", "photo_pull_failed"] {
            assert!(FailReason::from(r.to_owned()).is_retryable(), "{r}");
        }
        for r in [
            "spam_risk_too_many_posts",
            "auth_removed",
            "file_format_check_failed",
            "picture_size_check_failed",
            "spam_risk",
        ] {
            assert!(!FailReason::from(r.to_owned()).is_retryable(), "{r}");
        }
    }

    #[test]
    fn privacy_levels_parse() {
        assert_eq!(
            "self_only".parse::<PrivacyLevel>().unwrap(),
            PrivacyLevel::SelfOnly
        );
        assert!("everyone".parse::<PrivacyLevel>().is_err());
    }
}
