//! What a job is: one upload on its way into a creator's TikTok drafts.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::state_machine::JobStatus;
use crate::secret::Secret;
use crate::tiktok::{ChunkPlan, FailReason, PrivacyLevel, PublishState};

/// How many shards the index of unfinished jobs is spread over. A handful is
/// enough to keep one GSI partition from getting hot when many uploads arrive
/// at once, and few enough that the checker queries them all every run.
pub const UNFINISHED_SHARDS: u8 = 4;

/// A job's id: lowercase hex SHA-256 of the upload's identity (bucket, key,
/// version). Deterministic, so a redelivered S3 event maps to the same job
/// and the claim's conditional put turns it away.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

/// A string that is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a job id (64 lowercase hex digits)")]
pub struct BadJobId(pub String);

impl JobId {
    /// The id of the job for this object version.
    pub fn for_upload(bucket: &str, key: &str, version: &ObjectVersion) -> Self {
        let mut hash = Sha256::new();
        // Length-prefixed parts, so that no two different triples can run
        // together into the same bytes ("a/b" + "c" vs "a" + "b/c").
        for part in [bucket, key] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let (tag, value) = match version {
            ObjectVersion::VersionId(v) => ("v", v.as_str()),
            ObjectVersion::ETag(e) => ("e", e.as_str()),
        };
        hash.update(tag.as_bytes());
        hash.update((value.len() as u64).to_be_bytes());
        hash.update(value.as_bytes());
        Self(hex::encode(hash.finalize()))
    }

    /// Checks a stored or user-given id.
    pub fn parse(value: &str) -> Result<Self, BadJobId> {
        let ok = value.len() == 64
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(BadJobId(value.to_owned()))
        }
    }

    /// The 64 hex digits, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Which shard of the unfinished index the job lives in: from the id's
    /// first byte, so it never changes over the job's life.
    pub fn shard(&self) -> u8 {
        let first = u8::from_str_radix(self.0.get(..2).unwrap_or("00"), 16).unwrap_or(0);
        first % UNFINISHED_SHARDS
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which version of an S3 object the job is for. The version id when the
/// bucket is versioned (every upload is new, even of identical bytes);
/// otherwise the ETag (a re-upload of the same bytes is the same job).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectVersion {
    /// S3's version id (never `"null"`).
    VersionId(String),
    /// Without surrounding quotes: S3 events send it bare, HeadObject quoted.
    ETag(String),
}

impl ObjectVersion {
    /// The ETag with any surrounding quotes removed, so the id is the same
    /// whichever API reported it.
    pub fn etag(value: &str) -> Self {
        Self::ETag(value.trim_matches('"').to_owned())
    }

    /// As stored: `v:<version id>` or `e:<etag>`.
    pub fn to_tagged(&self) -> String {
        match self {
            Self::VersionId(v) => format!("v:{v}"),
            Self::ETag(e) => format!("e:{e}"),
        }
    }

    /// Reads [`ObjectVersion::to_tagged`]'s form.
    pub fn from_tagged(text: &str) -> Option<Self> {
        match text.split_once(':')? {
            ("v", v) if !v.is_empty() => Some(Self::VersionId(v.to_owned())),
            ("e", e) => Some(Self::etag(e)),
            _ => None,
        }
    }

    /// The version an S3 event or HeadObject names, one way for both: its
    /// version id, else its ETag. The version id `"null"` (what S3 reports
    /// in a bucket whose versioning is suspended) is no version: every
    /// overwrite replaces the null version, so only the ETag tells two
    /// uploads apart, and an event and a HEAD of one object agree.
    pub fn of(version_id: Option<&str>, e_tag: Option<&str>) -> Self {
        match (version_id.filter(|v| !v.is_empty() && *v != "null"), e_tag) {
            (Some(v), _) => Self::VersionId(v.to_owned()),
            (None, Some(tag)) => Self::etag(tag),
            (None, None) => Self::etag(""),
        }
    }
}

/// The `bucket` of a job the CLI uploads straight from a local file (the
/// key is `<host>:<absolute path>`). Not a valid S3 bucket name, so it never
/// collides with one; the checker knows such a job cannot be re-sent through
/// the S3 upload path.
pub const LOCAL_FILE_BUCKET: &str = "(local-file)";

/// The S3 object a job uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The bucket, or [`LOCAL_FILE_BUCKET`] for a file the CLI sends.
    pub bucket: String,
    /// The object's key (`uploads/<alias>/…`), decoded from the event's URL
    /// encoding; `<host>:<absolute path>` for a file the CLI sends.
    pub key: String,
    /// The version the job is for; reads are pinned to it.
    pub version: ObjectVersion,
    /// Bytes, as the event or HeadObject reported.
    pub size: u64,
}

impl Upload {
    /// The id of this upload's job ([`JobId::for_upload`]).
    pub fn job_id(&self) -> JobId {
        JobId::for_upload(&self.bucket, &self.key, &self.version)
    }

    /// Whether this upload came from the CLI rather than the bucket.
    pub fn is_local_file(&self) -> bool {
        self.bucket == LOCAL_FILE_BUCKET
    }
}

/// What is being posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// One video file.
    Video,
    /// A photo post: the images of a folder, from its manifest.
    Slideshow,
}

impl JobKind {
    /// The name stored on the job and shown: `video` or `slideshow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Slideshow => "slideshow",
        }
    }

    /// Reads [`JobKind::as_str`]'s names; `None` for any other text.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "video" => Some(Self::Video),
            "slideshow" => Some(Self::Slideshow),
            _ => None,
        }
    }
}

/// Where the post lands. Drafts are the default; a direct post names its
/// privacy level because TikTok's audit rules forbid a default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostTarget {
    /// Into the creator's inbox; counts against the 5 pending drafts.
    Draft,
    /// Straight onto the creator's profile, with who may see it.
    Direct {
        /// Who may see the post; one of those the creator's account offers.
        privacy_level: PrivacyLevel,
    },
}

impl PostTarget {
    /// Whether the post goes to the creator's inbox as a draft.
    pub fn is_draft(self) -> bool {
        self == Self::Draft
    }
}

/// The last failure, kept for the operator and the creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// Machine-readable: TikTok's code where there is one.
    pub code: String,
    /// A sentence someone can act on. Never holds an upload URL or token.
    pub message: String,
}

/// What the S3 handler knows when it claims an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The object the job uploads, and so its id.
    pub upload: Upload,
    /// The alias from the key (`uploads/<alias>/…`), when it had one.
    pub alias: Option<String>,
    /// `None` until the alias is resolved to an account.
    pub open_id: Option<String>,
    /// A video or a slideshow.
    pub kind: JobKind,
    /// Draft or direct post.
    pub post: PostTarget,
    /// Kept with the job: inbox video drafts drop the caption, so the
    /// creator copies it from the job record.
    pub caption: Option<String>,
}

/// A job record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Derived from the upload ([`Upload::job_id`]).
    pub id: JobId,
    /// The object the job uploads.
    pub upload: Upload,
    /// The alias from the key (`uploads/<alias>/…`), when it had one.
    pub alias: Option<String>,
    /// The TikTok account the job posts to; `None` until the alias is
    /// resolved to a connected account.
    pub open_id: Option<String>,
    /// A video or a slideshow.
    pub kind: JobKind,
    /// Draft or direct post.
    pub post: PostTarget,
    /// The caption sent with the post (inbox video drafts drop it, so the
    /// creator copies it from here); `None` when the upload had none.
    pub caption: Option<String>,
    /// Where the job stands.
    pub status: JobStatus,
    /// What the current attempt at TikTok has come to (the failed ones
    /// are counted in `attempts`).
    pub attempt: UploadAttempt,
    /// Failed tries so far (what the backoff grows with).
    pub attempts: u32,
    /// The most recent failure, kept after a later success; `None` while
    /// nothing has failed.
    pub last_error: Option<LastError>,
    /// TikTok's last reported publish status for `status_publish_id`.
    pub tiktok_status: Option<PublishState>,
    /// TikTok's reason for a failed publish, for `status_publish_id`.
    pub fail_reason: Option<FailReason>,
    /// The `publish_id` that `tiktok_status` and `fail_reason` were reported
    /// for. A retry gets a new publish_id, so what TikTok said about an
    /// earlier attempt is never taken for the current one.
    pub status_publish_id: Option<String>,
    /// TikTok's ids of the posts, as its status answer listed them; empty
    /// until the post is publicly available.
    pub post_ids: Vec<u64>,
    /// The public links of the posts (`https://www.tiktok.com/@<username>/video/<post id>`),
    /// when the account's username is known. TikTok's status answer has no
    /// share or cover URL, so nothing else is recorded.
    pub share_urls: Vec<String>,
    /// The versions of the objects a job reads besides its own (a
    /// slideshow's images, in post order), recorded once when the job
    /// started, so every attempt posts what was there then: a swapped
    /// image cannot change a post halfway. Empty until recorded.
    pub image_versions: Vec<ObjectVersion>,
    /// What the creator should know about the media that is no reason to
    /// refuse it (an HDR video, one longer than 3 minutes), in words; set
    /// by the video probe before anything is sent.
    pub notes: Vec<String>,
    /// When the upload was claimed.
    pub created_at: DateTime<Utc>,
    /// When the record was last written.
    pub updated_at: DateTime<Utc>,
    /// Not to be picked up before this (backoff, held jobs).
    pub not_before: Option<DateTime<Utc>>,
}

/// What a job's current attempt at TikTok has come to. Resuming matches on
/// it; the combinations that cannot happen (an upload URL without a
/// `publish_id`, an init in doubt that TikTok answered) cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadAttempt {
    /// Nothing was sent to TikTok.
    NotStarted,
    /// An init was sent at `at` and its answer never recorded (a crash, a
    /// timeout, a lost connection): TikTok may hold the upload, so the job
    /// must not be initialised again blindly.
    InitSent {
        /// When the init was marked as started, right before it was sent.
        at: DateTime<Utc>,
    },
    /// TikTok accepted the init and pulls the media itself (PULL_FROM_URL:
    /// a video copy, or photos).
    Pulled {
        /// Saved before anything else was done with it: never init twice.
        publish_id: String,
    },
    /// TikTok accepted the init and we send the bytes (FILE_UPLOAD).
    Transfer(FileTransfer),
}

/// A FILE_UPLOAD under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTransfer {
    /// Saved before anything else was done with it: never init twice.
    pub publish_id: String,
    /// Valid for an hour; kept while the job is `uploading` or `stuck` so
    /// that an interrupted upload resumes instead of initialising again.
    /// Carries a token. `None` once the job moved on, or when TikTok's
    /// answer gave none.
    pub upload_url: Option<Secret>,
    /// The chunks, as init announced them.
    pub plan: ChunkPlan,
    /// The first byte TikTok has not acknowledged yet.
    pub next_offset: u64,
}

impl UploadAttempt {
    /// TikTok's id of the attempt, once init was answered.
    pub fn publish_id(&self) -> Option<&str> {
        match self {
            Self::Pulled { publish_id } => Some(publish_id),
            Self::Transfer(t) => Some(&t.publish_id),
            Self::NotStarted | Self::InitSent { .. } => None,
        }
    }

    /// When an init whose answer was never recorded was sent.
    pub fn init_sent_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::InitSent { at } => Some(*at),
            _ => None,
        }
    }

    /// The FILE_UPLOAD under way, if any.
    pub fn transfer(&self) -> Option<&FileTransfer> {
        match self {
            Self::Transfer(t) => Some(t),
            _ => None,
        }
    }
}

impl Job {
    /// A freshly claimed job.
    pub fn new(new: NewJob, now: DateTime<Utc>) -> Self {
        Self {
            id: new.upload.job_id(),
            upload: new.upload,
            alias: new.alias,
            open_id: new.open_id,
            kind: new.kind,
            post: new.post,
            caption: new.caption,
            status: JobStatus::Claimed,
            attempt: UploadAttempt::NotStarted,
            attempts: 0,
            last_error: None,
            tiktok_status: None,
            fail_reason: None,
            status_publish_id: None,
            post_ids: Vec::new(),
            share_urls: Vec::new(),
            image_versions: Vec::new(),
            notes: Vec::new(),
            created_at: now,
            updated_at: now,
            not_before: None,
        }
    }

    /// When the checker should look at the job next: its `not_before` when
    /// it has one, else when it last changed. The unfinished index sorts by
    /// it, so due jobs come first.
    pub fn due_at(&self) -> DateTime<Utc> {
        self.not_before.unwrap_or(self.updated_at)
    }

    /// Whether the job records TikTok's `FAILED` for `publish_id`: that
    /// failure was applied already (by the checker or a webhook).
    pub fn failure_recorded_for(&self, publish_id: &str) -> bool {
        self.tiktok_status == Some(PublishState::Failed)
            && self.status_publish_id.as_deref() == Some(publish_id)
    }

    /// The job's `publish_id` when TikTok may still be working on it: saved
    /// by init and not known to have failed. A job waiting to retry with one
    /// may have reached TikTok after all (the last chunk's answer was lost),
    /// so it is asked about before a new init.
    pub fn live_publish_id(&self) -> Option<&str> {
        self.publish_id()
            .filter(|id| !self.failure_recorded_for(id))
    }

    /// The error that explains the job's status now (see
    /// [`JobStatus::error_is_current`]).
    pub fn current_error(&self) -> Option<&LastError> {
        self.last_error
            .as_ref()
            .filter(|_| self.status.error_is_current())
    }

    /// An error the job got past (a retry that went on, a draft that reached
    /// the inbox after all): kept as history, never shown as the job's state.
    pub fn earlier_error(&self) -> Option<&LastError> {
        self.last_error
            .as_ref()
            .filter(|_| !self.status.error_is_current())
    }

    /// TikTok's id of the current attempt, once init was answered.
    pub fn publish_id(&self) -> Option<&str> {
        self.attempt.publish_id()
    }

    /// When an init whose answer was never recorded was sent.
    pub fn init_started_at(&self) -> Option<DateTime<Utc>> {
        self.attempt.init_sent_at()
    }

    /// The upload URL of a FILE_UPLOAD under way.
    pub fn upload_url(&self) -> Option<&Secret> {
        self.attempt.transfer().and_then(|t| t.upload_url.as_ref())
    }

    /// The chunk plan of a FILE_UPLOAD.
    pub fn chunk_plan(&self) -> Option<ChunkPlan> {
        self.attempt.transfer().map(|t| t.plan)
    }

    /// The first byte TikTok has not acknowledged yet (0 but for a
    /// FILE_UPLOAD under way).
    pub fn next_offset(&self) -> u64 {
        self.attempt.transfer().map_or(0, |t| t.next_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_version_id_is_no_version() {
        // What the event says (version id dropped or "null", bare ETag) and
        // what HEAD says in a suspended bucket ("null", quoted ETag) must
        // make one job, told apart from an overwrite by the ETag.
        let from_event = ObjectVersion::of(None, Some("abc"));
        let from_head = ObjectVersion::of(Some("null"), Some("\"abc\""));
        assert_eq!(from_event, ObjectVersion::ETag("abc".into()));
        assert_eq!(from_head, from_event);
        assert_eq!(
            JobId::for_upload("b", "k", &from_head),
            JobId::for_upload("b", "k", &from_event)
        );
        assert_ne!(
            ObjectVersion::of(Some("null"), Some("\"def\"")),
            from_head,
            "an overwrite is an upload of its own"
        );
        assert_eq!(
            ObjectVersion::of(Some("3HL4kqtJlcpXroDTDmJ"), Some("abc")),
            ObjectVersion::VersionId("3HL4kqtJlcpXroDTDmJ".into())
        );
        assert_eq!(ObjectVersion::of(Some(""), None), ObjectVersion::etag(""));
    }

    fn upload(version: ObjectVersion) -> Upload {
        Upload {
            bucket: "b".into(),
            key: "uploads/alice/a.mp4".into(),
            version,
            size: 10,
        }
    }

    #[test]
    fn the_id_is_deterministic_and_depends_on_every_part() {
        let a = upload(ObjectVersion::VersionId("v1".into())).job_id();
        assert_eq!(a, upload(ObjectVersion::VersionId("v1".into())).job_id());
        assert_ne!(a, upload(ObjectVersion::VersionId("v2".into())).job_id());
        assert_ne!(a, upload(ObjectVersion::ETag("v1".into())).job_id());
        let other_key = Upload {
            key: "uploads/alice/b.mp4".into(),
            ..upload(ObjectVersion::VersionId("v1".into()))
        };
        assert_ne!(a, other_key.job_id());
        assert_ne!(
            JobId::for_upload("a/b", "c", &ObjectVersion::ETag("x".into())),
            JobId::for_upload("a", "b/c", &ObjectVersion::ETag("x".into()))
        );
        assert_eq!(JobId::parse(a.as_str()), Ok(a.clone()));
        assert!(a.shard() < UNFINISHED_SHARDS);
    }

    #[test]
    fn quoted_and_bare_etags_are_one_job() {
        assert_eq!(
            upload(ObjectVersion::etag("\"abc\"")).job_id(),
            upload(ObjectVersion::etag("abc")).job_id()
        );
    }

    #[test]
    fn bad_ids_are_refused() {
        for bad in ["", "abc", &"G".repeat(64), &"A".repeat(64), &"a".repeat(65)] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_spread_over_all_values() {
        let mut seen = [false; UNFINISHED_SHARDS as usize];
        for i in 0..64 {
            let id = upload(ObjectVersion::VersionId(i.to_string())).job_id();
            seen[usize::from(id.shard())] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [JobKind::Video, JobKind::Slideshow] {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::parse("Video"), None);
    }
}
