//! The job item codec: how a job and the items that go with it are laid out
//! on the shared table (keys, attribute names, times), and a job read back
//! from its item.
//!
//! | item | `pk` / `sk` | attributes |
//! |---|---|---|
//! | job | `JOB#<id>` / `JOB` | `job_id`, `s3_bucket`, `s3_key`, `s3_version_id` or `s3_etag`, `object_size`, `alias`, `open_id`, `kind`, `post_mode` (`draft`/`direct`), `privacy_level`, `caption`, `status`, `publish_id`, `upload_url`, `chunk_plan` (JSON), `next_offset`, `attempts`, `error_code`, `error_message`, `tiktok_status`, `fail_reason`, `post_ids` (list of N), `share_urls`, `image_versions` (list of `v:<version id>` or `e:<etag>`: a slideshow's images as the job started), `notes` (list of S: what the video probe noted), `created_at`, `updated_at`, `not_before`, `init_started_at`; while unfinished also `gsi1pk` = `UNFINISHED#<shard>`, `gsi1sk` = `<due>#<id>`; once it has an account `gsi2pk` = `JOBS#<open_id>`, `gsi2sk` = `<created_at>#<id>` (see [`super::by_account`]) |
//! | pending-draft slot | `DRAFTS#<open_id>` / `SLOT#<job id>` | `job_id`, `taken_at`, `expires_at` (TTL) |
//! | queue entry | `DRAFTS#<open_id>` / `QUEUED#<created_at>#<job id>` | `job_id`, `created_at`, `open_id`, `not_before` (when held until a time); `gsi1pk` = `HELD`, `gsi1sk` = the sort key |
//! | slot guard | `DRAFTS#<open_id>` / `GUARD` | `open_id`, `version` |
//! | publish pointer | `PUBLISH#<publish_id>` / `PUBLISH` | `job_id`, `publish_id` |
//!
//! Times on jobs are RFC 3339 in UTC with milliseconds (fixed width, so they
//! sort as text); `taken_at` and `expires_at` are epoch seconds.
//!
//! The upload URL carries an upload token: it is stored (needed to resume
//! within its hour) and removed as soon as the job leaves `uploading`
//! (`stuck` keeps it for a resume); it is held as a [`Secret`] and never
//! logged or put into an error.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use super::model::{
    FileTransfer, Job, JobId, JobKind, LastError, ObjectVersion, PostTarget, Upload, UploadAttempt,
};
use super::state_machine::{INBOX_FOLLOW_EVERY, JobStatus};
use super::store::JobError;
use crate::secret::Secret;
use crate::table::{Item, Key, PK, SK, n, n_u64, opt_text, opt_u64, s, text_list, texts};
use crate::tiktok::{ChunkPlan, FailReason, PrivacyLevel, PublishState};

const JOB_PREFIX: &str = "JOB#";
const JOB_SK: &str = "JOB";
const UNFINISHED_PREFIX: &str = "UNFINISHED#";
/// The index partition of queue entries: every held upload of every
/// account, oldest first, in one small Query (the checker releases held
/// uploads first in a run, before the long walk of the backlog).
pub(crate) const HELD_INDEX: &str = "HELD";
pub(crate) const DRAFTS_PREFIX: &str = "DRAFTS#";
pub(crate) const SLOT_PREFIX: &str = "SLOT#";
pub(crate) const QUEUED_PREFIX: &str = "QUEUED#";
pub(crate) const GUARD_SK: &str = "GUARD";
const PUBLISH_PREFIX: &str = "PUBLISH#";
const PUBLISH_SK: &str = "PUBLISH";

/// The job item's attribute names that writes other than the claim touch.
pub(crate) mod attr {
    pub const STATUS: &str = "status";
    pub const UPDATED_AT: &str = "updated_at";
    pub const OPEN_ID: &str = "open_id";
    pub const PUBLISH_ID: &str = "publish_id";
    pub const UPLOAD_URL: &str = "upload_url";
    pub const CHUNK_PLAN: &str = "chunk_plan";
    pub const NEXT_OFFSET: &str = "next_offset";
    pub const INIT_STARTED_AT: &str = "init_started_at";
    pub const NOT_BEFORE: &str = "not_before";
    pub const ATTEMPTS: &str = "attempts";
    pub const ERROR_CODE: &str = "error_code";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const TIKTOK_STATUS: &str = "tiktok_status";
    pub const FAIL_REASON: &str = "fail_reason";
    pub const STATUS_PUBLISH_ID: &str = "status_publish_id";
    pub const POST_IDS: &str = "post_ids";
    pub const SHARE_URLS: &str = "share_urls";
    pub const IMAGE_VERSIONS: &str = "image_versions";
    pub const NOTES: &str = "notes";
}

/// The key of a job's item.
pub(crate) fn job_key(id: &JobId) -> Key {
    Key::new(job_pk(id), JOB_SK)
}

pub(crate) fn job_pk(id: &JobId) -> String {
    format!("{JOB_PREFIX}{id}")
}

/// The index partition (shard) a job is in while it is followed.
pub(crate) fn gsi_pk(id: &JobId) -> String {
    unfinished_partition(id.shard())
}

/// The index partition of one shard of followed jobs.
pub(crate) fn unfinished_partition(shard: u8) -> String {
    format!("{UNFINISHED_PREFIX}{shard}")
}

/// A job's place in the index: its due time, then its id.
pub(crate) fn gsi_sk(due: DateTime<Utc>, id: &JobId) -> String {
    format!("{}#{id}", stamp(due))
}

/// Where a job in `status` sorts in the index after a move at `now`: its
/// `not_before` when it has one; a draft that reached the inbox one follow-up
/// interval later (it is polled slowly); anything else now.
pub(crate) fn index_due(
    status: JobStatus,
    not_before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match not_before {
        Some(at) => at,
        None if status == JobStatus::Inbox => now + INBOX_FOLLOW_EVERY,
        None => now,
    }
}

/// The partition of an account's pending-draft slots and held jobs.
pub(crate) fn drafts_pk(open_id: &str) -> String {
    format!("{DRAFTS_PREFIX}{open_id}")
}

pub(crate) fn slot_sk(id: &JobId) -> String {
    format!("{SLOT_PREFIX}{id}")
}

pub(crate) fn queue_sk(job: &Job) -> String {
    format!("{QUEUED_PREFIX}{}#{}", stamp(job.created_at), job.id)
}

pub(crate) fn publish_key(publish_id: &str) -> Key {
    Key::new(format!("{PUBLISH_PREFIX}{publish_id}"), PUBLISH_SK)
}

/// The item that finds a job by the `publish_id` TikTok knows it by.
pub(crate) fn publish_pointer(id: &JobId, publish_id: &str) -> Item {
    let key = publish_key(publish_id);
    Item::from([
        (PK.to_owned(), s(key.pk)),
        (SK.to_owned(), s(key.sk)),
        ("job_id".to_owned(), s(id.as_str())),
        ("publish_id".to_owned(), s(publish_id)),
    ])
}

/// RFC 3339, UTC, milliseconds: fixed width, so text order is time order.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `at` cut to what [`stamp`] keeps, so a job read back equals the one
/// written.
pub(crate) fn to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// A time attribute.
pub(crate) fn time(at: DateTime<Utc>) -> AttributeValue {
    s(stamp(to_millis(at)))
}

pub(crate) fn plan_json(plan: &ChunkPlan) -> Result<String, JobError> {
    serde_json::to_string(plan).map_err(|e| JobError::Corrupt {
        key: "chunk_plan".into(),
        detail: e.to_string(),
    })
}

/// A list of post ids.
pub(crate) fn post_ids(ids: &[u64]) -> AttributeValue {
    AttributeValue::L(ids.iter().map(|id| n_u64(*id)).collect())
}

/// The job item as [`Jobs::claim`](super::Jobs::claim) writes it (without the index of
/// unfinished work; with the account index once the job has an account).
/// The one writer of job items (tests build stream images with it too).
pub fn job_to_item(job: &Job) -> Item {
    let mut item = Item::new();
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(PK, s(job_pk(&job.id)));
    put(SK, s(JOB_SK));
    put("job_id", s(job.id.as_str()));
    put("s3_bucket", s(&job.upload.bucket));
    put("s3_key", s(&job.upload.key));
    match &job.upload.version {
        ObjectVersion::VersionId(v) => put("s3_version_id", s(v)),
        ObjectVersion::ETag(e) => put("s3_etag", s(e)),
    }
    put("object_size", n_u64(job.upload.size));
    if let Some(alias) = &job.alias {
        put("alias", s(alias));
    }
    if let Some(open_id) = &job.open_id {
        put("open_id", s(open_id));
        for (name, value) in super::by_account::index_keys(open_id, job.created_at, &job.id) {
            put(&name, value);
        }
    }
    put("kind", s(job.kind.as_str()));
    match job.post {
        PostTarget::Draft => put("post_mode", s("draft")),
        PostTarget::Direct { privacy_level } => {
            put("post_mode", s("direct"));
            put("privacy_level", s(privacy_level.as_str()));
        }
    }
    if let Some(caption) = &job.caption {
        put("caption", s(caption));
    }
    put("status", s(job.status.as_str()));
    put_attempt(&mut put, &job.attempt);
    put("attempts", n(i64::from(job.attempts)));
    if let Some(error) = &job.last_error {
        put("error_code", s(&error.code));
        put("error_message", s(&error.message));
    }
    if let Some(status) = &job.tiktok_status {
        put("tiktok_status", s(status.as_str()));
    }
    if let Some(reason) = &job.fail_reason {
        put("fail_reason", s(reason.as_str()));
    }
    if let Some(publish_id) = &job.status_publish_id {
        put("status_publish_id", s(publish_id));
    }
    if !job.post_ids.is_empty() {
        put("post_ids", post_ids(&job.post_ids));
    }
    if !job.share_urls.is_empty() {
        put("share_urls", texts(&job.share_urls));
    }
    if !job.image_versions.is_empty() {
        put(attr::IMAGE_VERSIONS, image_versions(&job.image_versions));
    }
    if !job.notes.is_empty() {
        put(attr::NOTES, texts(&job.notes));
    }
    put("created_at", s(stamp(job.created_at)));
    put("updated_at", s(stamp(job.updated_at)));
    if let Some(at) = job.not_before {
        put("not_before", s(stamp(at)));
    }
    item
}

/// A slideshow's image versions as stored (see [`ObjectVersion::to_tagged`]).
pub(crate) fn image_versions(versions: &[ObjectVersion]) -> AttributeValue {
    let tagged: Vec<String> = versions.iter().map(ObjectVersion::to_tagged).collect();
    texts(&tagged)
}

/// The attempt's attributes: the init marker, or what init returned.
fn put_attempt(put: &mut impl FnMut(&str, AttributeValue), attempt: &UploadAttempt) {
    match attempt {
        UploadAttempt::NotStarted => {}
        UploadAttempt::InitSent { at } => put(attr::INIT_STARTED_AT, s(stamp(*at))),
        UploadAttempt::Pulled { publish_id } => put(attr::PUBLISH_ID, s(publish_id)),
        UploadAttempt::Transfer(t) => {
            put(attr::PUBLISH_ID, s(&t.publish_id));
            if let Some(url) = &t.upload_url {
                put(attr::UPLOAD_URL, s(url.expose()));
            }
            // Serialising three integers cannot fail; `save_init` reports it
            // anyway.
            if let Ok(json) = serde_json::to_string(&t.plan) {
                put(attr::CHUNK_PLAN, s(json));
            }
        }
    }
    put(
        attr::NEXT_OFFSET,
        n_u64(attempt.transfer().map_or(0, |t| t.next_offset)),
    );
}

/// Reads a job item (as stored, or an image from the table's stream); `key`
/// names it in errors. The one reader of job items.
pub fn job_from_item(key: &str, item: &Item) -> Result<Job, JobError> {
    let r = ItemReader { key, item };
    // Fields are read in a fixed order, so an item broken in several ways
    // always reports the same one.
    let id = r.job_id()?;
    let version = r.object_version()?;
    let kind = r.kind()?;
    let post = r.post_target()?;
    let status = r.status()?;
    let attempt = attempt_from_item(item, &|detail| r.corrupt(detail))?;
    let last_error = r.last_error();
    let post_ids = r.post_ids()?;
    let share_urls = r.text_list("share_urls")?;
    let image_versions = r.image_versions()?;
    let notes = r.text_list(attr::NOTES)?;
    Ok(Job {
        id,
        upload: Upload {
            bucket: r.required("s3_bucket")?,
            key: r.required("s3_key")?,
            version,
            size: r.number("object_size")?,
        },
        alias: opt_text(item, "alias"),
        open_id: opt_text(item, "open_id"),
        kind,
        post,
        caption: opt_text(item, "caption"),
        status,
        attempt,
        attempts: u32::try_from(r.number("attempts")?)
            .map_err(|_| r.corrupt("attempts is too large".into()))?,
        last_error,
        tiktok_status: opt_text(item, "tiktok_status").map(PublishState::from),
        fail_reason: opt_text(item, "fail_reason").map(FailReason::from),
        status_publish_id: opt_text(item, "status_publish_id"),
        post_ids,
        share_urls,
        image_versions,
        notes,
        created_at: r.required_time("created_at")?,
        updated_at: r.required_time("updated_at")?,
        not_before: r.time("not_before")?,
    })
}

/// A job item being read by [`job_from_item`]: its attributes one kind or one
/// field group at a time, each failure a [`JobError::Corrupt`] naming `key`.
struct ItemReader<'a> {
    key: &'a str,
    item: &'a Item,
}

impl ItemReader<'_> {
    /// The error for an item that cannot be read as a job.
    fn corrupt(&self, detail: String) -> JobError {
        JobError::Corrupt {
            key: self.key.to_owned(),
            detail,
        }
    }

    /// A string attribute that must be there.
    fn required(&self, name: &str) -> Result<String, JobError> {
        opt_text(self.item, name)
            .ok_or_else(|| self.corrupt(format!("{name} is missing or not a string")))
    }

    /// A count; 0 when absent.
    fn number(&self, name: &str) -> Result<u64, JobError> {
        match self.item.get(name) {
            None => Ok(0),
            Some(_) => opt_u64(self.item, name)
                .ok_or_else(|| self.corrupt(format!("{name} is not a count"))),
        }
    }

    /// A time; `None` when absent.
    fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, JobError> {
        match opt_text(self.item, name) {
            None => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(&text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| self.corrupt(format!("{name} is not a time"))),
        }
    }

    /// A time that must be there.
    fn required_time(&self, name: &str) -> Result<DateTime<Utc>, JobError> {
        self.time(name)?
            .ok_or_else(|| self.corrupt(format!("{name} is missing")))
    }

    /// A list of strings; empty when absent.
    fn text_list(&self, name: &str) -> Result<Vec<String>, JobError> {
        text_list(self.item, name).map_err(|detail| self.corrupt(detail))
    }

    /// `job_id`, which must be a well-formed job id.
    fn job_id(&self) -> Result<JobId, JobError> {
        let id_text = self.required("job_id")?;
        JobId::parse(&id_text).map_err(|e| self.corrupt(e.to_string()))
    }

    /// The uploaded object's version: its version id, else its ETag.
    fn object_version(&self) -> Result<ObjectVersion, JobError> {
        match (
            opt_text(self.item, "s3_version_id"),
            opt_text(self.item, "s3_etag"),
        ) {
            (Some(v), _) => Ok(ObjectVersion::VersionId(v)),
            (None, Some(e)) => Ok(ObjectVersion::ETag(e)),
            (None, None) => Err(self.corrupt("neither s3_version_id nor s3_etag".into())),
        }
    }

    /// `kind`, which must be one the code knows.
    fn kind(&self) -> Result<JobKind, JobError> {
        let kind_text = self.required("kind")?;
        JobKind::parse(&kind_text)
            .ok_or_else(|| self.corrupt(format!("unknown kind {kind_text:?}")))
    }

    /// `post_mode`, and for a direct post its `privacy_level`.
    fn post_target(&self) -> Result<PostTarget, JobError> {
        match self.required("post_mode")?.as_str() {
            "draft" => Ok(PostTarget::Draft),
            "direct" => {
                let level = self.required("privacy_level")?;
                let privacy_level = level
                    .parse::<PrivacyLevel>()
                    .map_err(|_| self.corrupt(format!("unknown privacy_level {level:?}")))?;
                Ok(PostTarget::Direct { privacy_level })
            }
            other => Err(self.corrupt(format!("unknown post_mode {other:?}"))),
        }
    }

    /// `status`, which must be one the code knows.
    fn status(&self) -> Result<JobStatus, JobError> {
        let status_text = self.required("status")?;
        JobStatus::parse(&status_text)
            .ok_or_else(|| self.corrupt(format!("unknown status {status_text:?}")))
    }

    /// The last error, when the item has an `error_code` (its message may be
    /// absent: empty then).
    fn last_error(&self) -> Option<LastError> {
        match (
            opt_text(self.item, "error_code"),
            opt_text(self.item, "error_message"),
        ) {
            (Some(code), message) => Some(LastError {
                code,
                message: message.unwrap_or_default(),
            }),
            (None, _) => None,
        }
    }

    /// `post_ids`, a list of integers; empty when absent.
    fn post_ids(&self) -> Result<Vec<u64>, JobError> {
        match self.item.get("post_ids") {
            None => Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::N(text) => text
                        .parse::<u64>()
                        .map_err(|_| self.corrupt("post_ids holds a non-integer".into())),
                    _ => Err(self.corrupt("post_ids holds a non-number".into())),
                })
                .collect(),
            Some(_) => Err(self.corrupt("post_ids is not a list".into())),
        }
    }

    /// A slideshow's image versions (see [`image_versions`]); empty when absent.
    fn image_versions(&self) -> Result<Vec<ObjectVersion>, JobError> {
        self.text_list(attr::IMAGE_VERSIONS)?
            .iter()
            .map(|text| {
                ObjectVersion::from_tagged(text).ok_or_else(|| {
                    self.corrupt("image_versions holds an unreadable version".into())
                })
            })
            .collect()
    }
}

/// The attempt an item records. A `publish_id` wins over a marker left
/// beside it: TikTok knows the attempt, so nothing is in doubt.
fn attempt_from_item(
    item: &Item,
    corrupt: &impl Fn(String) -> JobError,
) -> Result<UploadAttempt, JobError> {
    let plan = match opt_text(item, attr::CHUNK_PLAN) {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<ChunkPlan>(&json)
                .map_err(|e| corrupt(format!("chunk_plan: {e}")))?,
        ),
    };
    let next_offset = match item.get(attr::NEXT_OFFSET) {
        None => 0,
        Some(_) => opt_u64(item, attr::NEXT_OFFSET)
            .ok_or_else(|| corrupt("next_offset is not a count".into()))?,
    };
    Ok(match (opt_text(item, attr::PUBLISH_ID), plan) {
        (Some(publish_id), Some(plan)) => UploadAttempt::Transfer(FileTransfer {
            publish_id,
            upload_url: opt_text(item, attr::UPLOAD_URL).map(Secret::new),
            plan,
            next_offset,
        }),
        (Some(publish_id), None) => UploadAttempt::Pulled { publish_id },
        (None, _) => match opt_text(item, attr::INIT_STARTED_AT) {
            None => UploadAttempt::NotStarted,
            Some(text) => UploadAttempt::InitSent {
                at: DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| corrupt("init_started_at is not a time".into()))?,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::jobs::NewJob;

    fn sample() -> Job {
        let now = to_millis(DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap());
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "bucket".into(),
                    key: "uploads/alice/clip.mp4".into(),
                    version: ObjectVersion::VersionId("v1".into()),
                    size: 200_000_000,
                },
                alias: Some("alice".into()),
                open_id: Some("open-a".into()),
                kind: JobKind::Video,
                post: PostTarget::Direct {
                    privacy_level: PrivacyLevel::SelfOnly,
                },
                caption: Some("hello 🎉".into()),
            },
            now,
        );
        job.status = JobStatus::Uploading;
        job.attempt = UploadAttempt::Transfer(FileTransfer {
            publish_id: "v_inbox_file~v2.1".into(),
            upload_url: Some(Secret::new(
                "https://upload.example.com/?token=SECRET-TOKEN",
            )),
            plan: ChunkPlan::new(200_000_000, 10_000_000).unwrap(),
            next_offset: 20_000_000,
        });
        job.attempts = 2;
        job.last_error = Some(LastError {
            code: "internal".into(),
            message: "m".into(),
        });
        job.tiktok_status = Some(PublishState::ProcessingUpload);
        job.fail_reason = Some(FailReason::Internal);
        job.status_publish_id = Some("v_inbox_file~v2.1".into());
        job.post_ids = vec![7_459_287_841_546_292_488];
        job.share_urls = vec!["https://www.tiktok.com/@alice/video/7459287841546292488".into()];
        job.image_versions = vec![
            ObjectVersion::VersionId("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY".into()),
            ObjectVersion::ETag("d41d8cd98f00b204e9800998ecf8427e".into()),
        ];
        job.notes = vec!["HDR (HLG) video: TikTok takes it".into()];
        job.not_before = Some(now + TimeDelta::seconds(60));
        job
    }

    /// Items written before image versions were recorded read as none;
    /// an unreadable version is named, not guessed.
    #[test]
    fn image_versions_are_optional_and_checked() {
        let job = sample();
        let mut item = job_to_item(&job);
        assert!(item.contains_key("image_versions"));
        item.remove("image_versions");
        assert!(job_from_item("k", &item).unwrap().image_versions.is_empty());
        item.insert("image_versions".into(), texts(&["x:1"]));
        let err = job_from_item("k", &item).unwrap_err();
        assert!(err.to_string().contains("image_versions"), "{err}");
    }

    #[test]
    fn items_round_trip() {
        let job = sample();
        let item = job_to_item(&job);
        assert_eq!(job_from_item("k", &item).unwrap(), job);
        let mut draft = sample();
        draft.post = PostTarget::Draft;
        draft.upload.version = ObjectVersion::ETag("abc".into());
        draft.attempt = UploadAttempt::Pulled {
            publish_id: "p_pub_url~v2.1".into(),
        };
        draft.post_ids.clear();
        assert_eq!(job_from_item("k", &job_to_item(&draft)).unwrap(), draft);
        for attempt in [
            UploadAttempt::NotStarted,
            UploadAttempt::InitSent { at: job.created_at },
        ] {
            let mut claimed = sample();
            claimed.status = JobStatus::Claimed;
            claimed.attempt = attempt;
            assert_eq!(job_from_item("k", &job_to_item(&claimed)).unwrap(), claimed);
        }
    }

    #[test]
    fn a_publish_id_beside_an_init_marker_is_the_attempt() {
        let mut item = job_to_item(&sample());
        item.insert("init_started_at".into(), s(stamp(sample().created_at)));
        let job = job_from_item("k", &item).unwrap();
        assert_eq!(job.publish_id(), Some("v_inbox_file~v2.1"));
        assert_eq!(job.init_started_at(), None);
        assert_eq!(job.next_offset(), 20_000_000);
    }

    #[test]
    fn corrupt_items_name_the_attribute_but_never_the_upload_url() {
        let mut item = job_to_item(&sample());
        item.insert("status".into(), s("weird"));
        let err = job_from_item("JOB#x", &item).unwrap_err();
        assert!(matches!(err, JobError::Corrupt { .. }));
        assert!(!err.to_string().contains("SECRET-TOKEN"));
        let mut item = job_to_item(&sample());
        item.insert("upload_url".into(), n(1));
        item.insert("chunk_plan".into(), s("{\"video_size\":1}"));
        let err = job_from_item("JOB#x", &item).unwrap_err();
        assert!(!err.to_string().contains("SECRET-TOKEN"), "{err}");
    }

    #[test]
    fn debug_of_a_job_hides_the_upload_url() {
        let job = sample();
        let text = format!("{job:?} {:?}", crate::jobs::Claim::Existing(job.clone()));
        assert!(!text.contains("SECRET-TOKEN"), "{text}");
        assert!(text.contains("v_inbox_file~v2.1"));
    }

    #[test]
    fn stamps_sort_as_time() {
        let a = DateTime::from_timestamp(1_800_000_000, 5_000_000).unwrap();
        let b = DateTime::from_timestamp(1_800_000_000, 50_000_000).unwrap();
        let c = DateTime::from_timestamp(1_800_000_001, 0).unwrap();
        assert!(stamp(a) < stamp(b) && stamp(b) < stamp(c));
        assert_eq!(stamp(a).len(), stamp(c).len());
    }
}
