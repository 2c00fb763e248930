//! Which events a change of one table item makes: plain code, no I/O. The
//! handler feeds it the old and new images of each stream record.
//!
//! ```text
//! job:     * ──► inbox       upload.in_inbox
//!          * ──► published   upload.posted (links when known)
//!  published ──► published   upload.link_ready (the first link arrives later)
//!          * ──► failed      upload.failed (reason, what to do)
//!          * ──► queued      upload.held (5 drafts pending)
//!     queued ──► claimed     upload.released
//!          * ──► stuck       upload.stuck
//!          * ──► cancelled   upload.cancelled
//!   anything else (claimed, uploading, processing, retry_wait, progress,
//!   token refreshes, removals): nothing
//! account: * ──► needs_reconnect   account.needs_reconnect
//!          * ──► revoked           account.revoked
//! ```
//!
//! "*" is any other status, or none (an item written new in that status).
//! Items are read with the shared crate's codecs ([`job_from_item`],
//! [`account_from_item`]), so the stream is read exactly as the stores
//! write. Every other item (leases, slots, login states, this function's
//! own markers, ...) makes nothing.
//!
//! **Event ids.** An event's id is a hash of the item's key, the kind, and
//! the item's version before and after the change (its `updated_at`, which
//! every write that can move a status sets). The same change read twice
//! (a retried batch, a replayed stream) gets the same id; two different
//! changes never do.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest as _, Sha256};
use shared::accounts::{Account, AccountState, account_from_item};
use shared::jobs::{Job, JobStatus, job_from_item};
use shared::plain_words::{self, Failure};
use shared::table::Item;

use crate::schema::{AccountRef, Detail, Kind, Reason, SCHEMA_VERSION, UploadRef};

/// Job items: `JOB#<id>` / `JOB` (the job store's layout).
pub const JOB_PREFIX: &str = "JOB#";
pub const JOB_SK: &str = "JOB";
/// Account items: `ACCOUNT#<open_id>` / `ACCOUNT` (the account store's).
pub const ACCOUNT_PREFIX: &str = "ACCOUNT#";
pub const ACCOUNT_SK: &str = "ACCOUNT";

/// What an item is, to this function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Job,
    Account,
    /// Anything else: never read, never an event.
    Other,
}

/// Tells items apart by their key.
pub fn item_kind(pk: &str, sk: &str) -> ItemKind {
    if pk.starts_with(JOB_PREFIX) && sk == JOB_SK {
        ItemKind::Job
    } else if pk.starts_with(ACCOUNT_PREFIX) && sk == ACCOUNT_SK {
        ItemKind::Account
    } else {
        ItemKind::Other
    }
}

/// An image that the shared codec cannot read. Retrying cannot fix it, so
/// the handler logs it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {which} image of {key} is unreadable: {detail}")]
pub struct UnreadableImage {
    pub key: String,
    pub which: &'static str,
    pub detail: String,
}

/// The events one change of the item `pk`/`sk` makes; none for items this
/// function does not care about and for removals.
pub fn notices(
    pk: &str,
    sk: &str,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<Vec<Detail>, UnreadableImage> {
    let Some(new) = new else {
        return Ok(Vec::new());
    };
    let unreadable = |which: &'static str, detail: String| UnreadableImage {
        key: pk.to_owned(),
        which,
        detail,
    };
    match item_kind(pk, sk) {
        ItemKind::Other => Ok(Vec::new()),
        ItemKind::Job => {
            let new = job_from_item(pk, new).map_err(|e| unreadable("new", e.to_string()))?;
            // An old image that cannot be read gives no safe "before": no
            // event rather than a wrong one.
            let old = old
                .map(|item| job_from_item(pk, item))
                .transpose()
                .map_err(|e| unreadable("old", e.to_string()))?;
            Ok(job_notices(old.as_ref(), &new))
        }
        ItemKind::Account => {
            let new = account_from_item(pk, new).map_err(|e| unreadable("new", e.to_string()))?;
            let old = old
                .map(|item| account_from_item(pk, item))
                .transpose()
                .map_err(|e| unreadable("old", e.to_string()))?;
            Ok(account_notices(old.as_ref(), &new))
        }
    }
}

/// The kinds a job's change makes.
pub fn job_kinds(old: Option<&Job>, new: &Job) -> Vec<Kind> {
    let from = old.map(|j| j.status);
    if from == Some(new.status) {
        let first_link = new.status == JobStatus::Published
            && old.is_some_and(|o| o.share_urls.is_empty())
            && !new.share_urls.is_empty();
        return if first_link {
            vec![Kind::UploadLinkReady]
        } else {
            Vec::new()
        };
    }
    let kind = match new.status {
        JobStatus::Inbox => Kind::UploadInInbox,
        JobStatus::Published => Kind::UploadPosted,
        JobStatus::Failed => Kind::UploadFailed,
        JobStatus::Queued => Kind::UploadHeld,
        JobStatus::Claimed if from == Some(JobStatus::Queued) => Kind::UploadReleased,
        JobStatus::Stuck => Kind::UploadStuck,
        JobStatus::Cancelled => Kind::UploadCancelled,
        JobStatus::Claimed
        | JobStatus::Uploading
        | JobStatus::Processing
        | JobStatus::RetryWait => return Vec::new(),
    };
    vec![kind]
}

/// The events a job's change makes.
pub fn job_notices(old: Option<&Job>, new: &Job) -> Vec<Detail> {
    job_kinds(old, new)
        .into_iter()
        .filter_map(|kind| job_detail(kind, old, new))
        .collect()
}

/// The kinds an account's change makes.
pub fn account_kinds(old: Option<&Account>, new: &Account) -> Vec<Kind> {
    if old.map(|a| a.state) == Some(new.state) {
        return Vec::new();
    }
    match new.state {
        AccountState::NeedsReconnect => vec![Kind::AccountNeedsReconnect],
        AccountState::Revoked => vec![Kind::AccountRevoked],
        AccountState::Active => Vec::new(),
    }
}

/// The events an account's change makes.
pub fn account_notices(old: Option<&Account>, new: &Account) -> Vec<Detail> {
    account_kinds(old, new)
        .into_iter()
        .map(|kind| account_detail(kind, old, new))
        .collect()
}

/// The deterministic id of the event `kind` for the change of item `pk`/`sk`
/// from version `before` (empty for a new item) to `after`.
pub fn event_id(pk: &str, sk: &str, kind: Kind, before: &str, after: &str) -> String {
    let mut hash = Sha256::new();
    // Length-prefixed parts: no two different tuples run together.
    for part in [
        "tiktok-drafts event v1",
        pk,
        sk,
        kind.as_str(),
        before,
        after,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}

fn version(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The detail of a job's event; `None` for an account's kind.
fn job_detail(kind: Kind, old: Option<&Job>, new: &Job) -> Option<Detail> {
    let pk = format!("{JOB_PREFIX}{}", new.id);
    let (headline, summary, hint, reason) = job_wording(kind, new)?;
    Some(Detail {
        schema_version: SCHEMA_VERSION,
        event_id: event_id(
            &pk,
            JOB_SK,
            kind,
            &old.map(|o| version(o.updated_at)).unwrap_or_default(),
            &version(new.updated_at),
        ),
        kind,
        account: AccountRef {
            alias: new.alias.clone(),
            open_id: new.open_id.clone(),
        },
        upload: Some(upload_ref(new)),
        status: new.status.as_str().to_owned(),
        previous_status: old.map(|o| o.status.as_str().to_owned()),
        reason,
        hint: one_line(&hint),
        links: new.share_urls.clone(),
        headline: one_line(&headline),
        summary: one_line(&summary),
        occurred_at: new.updated_at,
    })
}

/// What a job's event says, in the job's plain words: the headline, the
/// summary, the hint and the reason (for the kinds that have one); `None`
/// for an account's kind.
fn job_wording(kind: Kind, new: &Job) -> Option<(String, String, String, Option<Reason>)> {
    let file = one_line(&plain_words::upload_name(new));
    let who = one_line(&account_name(new.alias.as_deref(), new.open_id.as_deref()));
    let words = plain_words::job_words(new);
    let failure = failure_of(new);
    let reason = |failure: &Failure, code: &str| Reason {
        code: code.to_owned(),
        text: failure.reason.clone(),
        message: new.last_error.as_ref().map(|e| e.message.clone()),
    };
    let code = error_code(new);
    let (headline, summary, hint, reason) = match kind {
        Kind::UploadInInbox => (
            format!("{file} is in {who}'s TikTok inbox"),
            words.detail.clone(),
            words.hint.clone().unwrap_or_default(),
            None,
        ),
        Kind::UploadPosted => (
            format!("{file} is posted on {who}'s TikTok"),
            posted_summary(new),
            "Nothing to do.".to_owned(),
            None,
        ),
        Kind::UploadLinkReady => (
            format!("{file} is public on {who}'s TikTok"),
            posted_summary(new),
            "Nothing to do.".to_owned(),
            None,
        ),
        Kind::UploadFailed => (
            format!("{file} for {who} failed"),
            format!("Failed: {}.", failure.reason),
            failure.hint.clone(),
            Some(reason(&failure, code.as_deref().unwrap_or("failed"))),
        ),
        Kind::UploadHeld => (
            format!("{file} for {who} is waiting"),
            words.detail.clone(),
            words.hint.clone().unwrap_or_default(),
            Some(Reason {
                code: code.unwrap_or_else(|| "too_many_pending_drafts".into()),
                text: words.label.clone(),
                message: new.last_error.as_ref().map(|e| e.message.clone()),
            }),
        ),
        Kind::UploadReleased => (
            format!("{file} for {who} is on its way again"),
            "A draft slot is free: it goes to TikTok now.".to_owned(),
            "Nothing to do.".to_owned(),
            None,
        ),
        Kind::UploadStuck => (
            format!("{file} for {who} is stuck"),
            words.detail.clone(),
            "Look at the job (tiktok-drafts status <job id>) and the creator's TikTok inbox."
                .to_owned(),
            Some(reason(&failure, code.as_deref().unwrap_or("stuck"))),
        ),
        Kind::UploadCancelled => (
            format!("{file} for {who} was cancelled"),
            words.detail.clone(),
            words.hint.clone().unwrap_or_default(),
            code.map(|c| reason(&failure, &c)),
        ),
        Kind::AccountNeedsReconnect | Kind::AccountRevoked => return None,
    };
    Some((headline, summary, hint, reason))
}

/// The upload a job's event is about.
fn upload_ref(job: &Job) -> UploadRef {
    UploadRef {
        job_id: job.id.to_string(),
        kind: job.kind.as_str().to_owned(),
        file: plain_words::upload_name(job),
        bucket: job.upload.bucket.clone(),
        key: job.upload.key.clone(),
        post_mode: if job.post.is_draft() {
            "draft"
        } else {
            "direct"
        }
        .to_owned(),
        caption: job.caption.clone(),
        created_at: job.created_at,
    }
}

fn account_detail(kind: Kind, old: Option<&Account>, new: &Account) -> Detail {
    let pk = format!("{ACCOUNT_PREFIX}{}", new.open_id);
    let who = one_line(&account_name(new.alias.as_deref(), Some(&new.open_id)));
    let trouble = plain_words::account_trouble(new).unwrap_or(Failure {
        reason: "the account changed".into(),
        hint: "Nothing to do.".into(),
    });
    let headline = match kind {
        Kind::AccountNeedsReconnect => format!("{who} must connect TikTok again"),
        _ => format!("{who} is disconnected from TikTok"),
    };
    Detail {
        schema_version: SCHEMA_VERSION,
        event_id: event_id(
            &pk,
            ACCOUNT_SK,
            kind,
            &old.map(|o| version(o.updated_at)).unwrap_or_default(),
            &version(new.updated_at),
        ),
        kind,
        account: AccountRef {
            alias: new.alias.clone(),
            open_id: Some(new.open_id.clone()),
        },
        upload: None,
        status: new.state.as_str().to_owned(),
        previous_status: old.map(|o| o.state.as_str().to_owned()),
        reason: Some(Reason {
            code: new.state.as_str().to_owned(),
            text: trouble.reason.clone(),
            message: new.state_reason.clone(),
        }),
        hint: one_line(&trouble.hint),
        links: Vec::new(),
        headline: one_line(&headline),
        summary: one_line(&trouble.sentence()),
        occurred_at: new.updated_at,
    }
}

fn posted_summary(job: &Job) -> String {
    match job.share_urls.first() {
        Some(link) => format!("It is on the TikTok profile: {link}"),
        None => "It is on the TikTok profile.".to_owned(),
    }
}

/// TikTok's fail reason, else the job's error code.
fn error_code(job: &Job) -> Option<String> {
    job.fail_reason
        .as_ref()
        .map(|r| r.as_str().to_owned())
        .or_else(|| job.last_error.as_ref().map(|e| e.code.clone()))
}

fn failure_of(job: &Job) -> Failure {
    plain_words::failure(
        &error_code(job).unwrap_or_default(),
        job.last_error.as_ref().map(|e| e.message.as_str()),
    )
}

fn account_name(alias: Option<&str>, open_id: Option<&str>) -> String {
    match (alias, open_id) {
        (Some(alias), _) => alias.to_owned(),
        (None, Some(open_id)) => format!("account {open_id}"),
        (None, None) => "an unknown account".to_owned(),
    }
}

/// One line: control characters (a file name may hold a line break) become
/// spaces, so a mail built from the field keeps its layout.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use shared::accounts::Account;
    use shared::jobs::{
        ALL_STATUSES, FileTransfer, JobId, JobKind, LastError, NewJob, ObjectVersion, PostTarget,
        Upload, UploadAttempt, job_to_item,
    };
    use shared::tiktok::{FailReason, PrivacyLevel};

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00.000Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn job(status: JobStatus) -> Job {
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "uploads-bucket".into(),
                    key: "uploads/alice/holiday.mp4".into(),
                    version: ObjectVersion::etag("e1"),
                    size: 1000,
                },
                alias: Some("alice".into()),
                open_id: Some("open-alice".into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: Some("Sunset <b>#beach</b>".into()),
            },
            t0(),
        );
        job.status = status;
        job
    }

    /// `old` moved to `to` a second later.
    fn moved(old: &Job, to: JobStatus) -> Job {
        let mut new = old.clone();
        new.status = to;
        new.updated_at = old.updated_at + TimeDelta::seconds(1);
        new
    }

    fn account(state: AccountState) -> Account {
        Account {
            open_id: "open-alice".into(),
            alias: Some("alice".into()),
            former_alias: None,
            display_name: None,
            avatar_url: None,
            scopes: vec!["video.upload".into()],
            access_expires_at: None,
            refresh_expires_at: None,
            state,
            state_reason: None,
            attention: None,
            username: None,
            created_at: t0(),
            connected_at: Some(t0()),
            updated_at: t0(),
            link_version: 0,
        }
    }

    #[test]
    fn every_move_between_statuses_makes_at_most_one_event_and_the_right_one() {
        for from in ALL_STATUSES {
            for to in ALL_STATUSES {
                let old = job(from);
                let new = moved(&old, to);
                let kinds = job_kinds(Some(&old), &new);
                let expected = if from == to {
                    vec![]
                } else {
                    match to {
                        JobStatus::Inbox => vec![Kind::UploadInInbox],
                        JobStatus::Published => vec![Kind::UploadPosted],
                        JobStatus::Failed => vec![Kind::UploadFailed],
                        JobStatus::Queued => vec![Kind::UploadHeld],
                        JobStatus::Stuck => vec![Kind::UploadStuck],
                        JobStatus::Cancelled => vec![Kind::UploadCancelled],
                        JobStatus::Claimed if from == JobStatus::Queued => {
                            vec![Kind::UploadReleased]
                        }
                        _ => vec![],
                    }
                };
                assert_eq!(kinds, expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn work_in_progress_makes_nothing() {
        let claimed = job(JobStatus::Claimed);
        for to in [
            JobStatus::Uploading,
            JobStatus::Processing,
            JobStatus::RetryWait,
        ] {
            assert!(
                job_kinds(Some(&claimed), &moved(&claimed, to)).is_empty(),
                "{to}"
            );
        }
        // Progress, a resolved account, a reschedule: same status, nothing.
        let mut uploading = job(JobStatus::Uploading);
        let transfer = |next_offset| {
            UploadAttempt::Transfer(FileTransfer {
                publish_id: "v_inbox_file~v2.1".into(),
                upload_url: None,
                plan: shared::tiktok::ChunkPlan::new(30_000_000, 10_000_000).unwrap(),
                next_offset,
            })
        };
        uploading.attempt = transfer(0);
        let mut later = moved(&uploading, JobStatus::Uploading);
        later.attempt = transfer(10_000_000);
        assert!(job_kinds(Some(&uploading), &later).is_empty());
        uploading.status = JobStatus::RetryWait;
        let claimed_again = moved(&uploading, JobStatus::Claimed);
        assert!(
            job_kinds(Some(&uploading), &claimed_again).is_empty(),
            "a retry going ahead is not a release"
        );
    }

    #[test]
    fn a_new_item_is_judged_by_its_status_alone() {
        assert!(
            job_kinds(None, &job(JobStatus::Claimed)).is_empty(),
            "a claim"
        );
        assert_eq!(
            job_kinds(None, &job(JobStatus::Inbox)),
            vec![Kind::UploadInInbox]
        );
        assert_eq!(
            job_kinds(None, &job(JobStatus::Failed)),
            vec![Kind::UploadFailed]
        );
        assert!(
            job_kinds(None, &job(JobStatus::Published))
                .iter()
                .all(|k| *k != Kind::UploadLinkReady),
            "a link is news only on a job that was posted without one"
        );
    }

    #[test]
    fn a_link_that_arrives_after_the_post_is_one_more_event_once() {
        let posted = job(JobStatus::Published);
        let mut linked = moved(&posted, JobStatus::Published);
        linked.share_urls = vec!["https://www.tiktok.com/@alice/video/1".into()];
        linked.post_ids = vec![1];
        assert_eq!(
            job_kinds(Some(&posted), &linked),
            vec![Kind::UploadLinkReady]
        );
        let mut second = moved(&linked, JobStatus::Published);
        second
            .share_urls
            .push("https://www.tiktok.com/@alice/video/2".into());
        assert!(
            job_kinds(Some(&linked), &second).is_empty(),
            "only the first"
        );
        // Posted with its link at once: the link rides on upload.posted.
        let inbox = job(JobStatus::Inbox);
        let mut published = moved(&inbox, JobStatus::Published);
        published.share_urls = linked.share_urls.clone();
        let details = job_notices(Some(&inbox), &published);
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].kind, Kind::UploadPosted);
        assert_eq!(details[0].links, linked.share_urls);
        assert!(
            details[0]
                .summary
                .contains("https://www.tiktok.com/@alice/video/1")
        );
    }

    #[test]
    fn account_states() {
        use AccountState::*;
        for (from, to, expected) in [
            (
                Some(Active),
                NeedsReconnect,
                vec![Kind::AccountNeedsReconnect],
            ),
            (Some(Active), Revoked, vec![Kind::AccountRevoked]),
            (Some(NeedsReconnect), Revoked, vec![Kind::AccountRevoked]),
            (
                Some(Revoked),
                NeedsReconnect,
                vec![Kind::AccountNeedsReconnect],
            ),
            (Some(NeedsReconnect), Active, vec![]),
            (Some(Revoked), Active, vec![]),
            (Some(Active), Active, vec![]),
            (Some(Revoked), Revoked, vec![]),
            (None, Active, vec![]),
            (None, Revoked, vec![Kind::AccountRevoked]),
        ] {
            let old = from.map(account);
            let new = account(to);
            assert_eq!(
                account_kinds(old.as_ref(), &new),
                expected,
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn ids_are_deterministic_and_differ_per_change_kind_and_item() {
        let old = job(JobStatus::Processing);
        let new = moved(&old, JobStatus::Inbox);
        let a = job_notices(Some(&old), &new);
        let b = job_notices(Some(&old), &new);
        assert_eq!(a, b, "the same change read twice is the same event");
        assert_eq!(a[0].event_id.len(), 32);
        assert!(a[0].event_id.bytes().all(|b| b.is_ascii_hexdigit()));
        // Another write of the same move (a later one) is another event.
        let mut later = new.clone();
        later.updated_at += TimeDelta::milliseconds(1);
        assert_ne!(job_notices(Some(&old), &later)[0].event_id, a[0].event_id);
        // Another job.
        let mut other = new.clone();
        other.id = JobId::parse(&"cd".repeat(32)).unwrap();
        assert_ne!(job_notices(Some(&old), &other)[0].event_id, a[0].event_id);
        // Another kind of the same item and versions.
        let k = |kind| event_id("JOB#x", "JOB", kind, "1", "2");
        assert_ne!(k(Kind::UploadPosted), k(Kind::UploadLinkReady));
        assert_ne!(
            event_id("JOB#a", "JOB", Kind::UploadPosted, "b", ""),
            event_id("JOB#a", "JOB", Kind::UploadPosted, "", "b"),
            "parts never run together"
        );
    }

    #[test]
    fn a_failure_carries_the_reason_and_what_to_do() {
        let old = job(JobStatus::Processing);
        let mut new = moved(&old, JobStatus::Failed);
        new.fail_reason = Some(FailReason::FrameRateCheckFailed);
        new.last_error = Some(LastError {
            code: "frame_rate_check_failed".into(),
            message: "The video's frame rate is outside 23-60 FPS.".into(),
        });
        let [detail] = job_notices(Some(&old), &new).try_into().unwrap();
        assert_eq!(detail.kind, Kind::UploadFailed);
        let reason = detail.reason.unwrap();
        assert_eq!(reason.code, "frame_rate_check_failed");
        assert!(reason.text.contains("frame rate"), "{reason:?}");
        assert_eq!(
            reason.message.as_deref(),
            Some("The video's frame rate is outside 23-60 FPS.")
        );
        assert!(detail.hint.contains("frames per second"), "{}", detail.hint);
        assert_eq!(detail.headline, "holiday.mp4 for alice failed");
        assert!(detail.summary.starts_with("Failed: "));
        assert_eq!(detail.status, "failed");
        assert_eq!(detail.previous_status.as_deref(), Some("processing"));
    }

    #[test]
    fn an_auth_removed_failure_says_to_reconnect() {
        let old = job(JobStatus::Queued);
        let mut new = moved(&old, JobStatus::Failed);
        new.last_error = Some(LastError {
            code: "auth_removed".into(),
            message: "authorization removed at TikTok".into(),
        });
        let detail = &job_notices(Some(&old), &new)[0];
        assert!(
            detail.hint.contains("Connect your TikTok account again"),
            "{}",
            detail.hint
        );
    }

    #[test]
    fn an_inbox_event_names_the_file_and_keeps_the_caption_as_written() {
        let old = job(JobStatus::Processing);
        let new = moved(&old, JobStatus::Inbox);
        let detail = &job_notices(Some(&old), &new)[0];
        assert_eq!(detail.headline, "holiday.mp4 is in alice's TikTok inbox");
        assert!(detail.hint.starts_with("Open TikTok, tap the inbox"));
        let upload = detail.upload.as_ref().unwrap();
        assert_eq!(upload.caption.as_deref(), Some("Sunset <b>#beach</b>"));
        assert_eq!(upload.file, "holiday.mp4");
        assert_eq!(upload.kind, "video");
        assert_eq!(upload.post_mode, "draft");
        assert_eq!(upload.created_at, t0());
        assert_eq!(detail.occurred_at, new.updated_at);
        assert_eq!(detail.account.alias.as_deref(), Some("alice"));
        assert_eq!(detail.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn a_held_upload_says_why_and_what_frees_it() {
        let old = job(JobStatus::Claimed);
        let new = moved(&old, JobStatus::Queued);
        let detail = &job_notices(Some(&old), &new)[0];
        assert_eq!(detail.kind, Kind::UploadHeld);
        let reason = detail.reason.as_ref().unwrap();
        assert_eq!(reason.code, "too_many_pending_drafts");
        assert_eq!(reason.text, "Waiting: you have 5 drafts open in TikTok");
        assert!(detail.hint.contains("Post or delete a draft"));
    }

    #[test]
    fn lines_stay_lines_and_slideshows_are_named_by_their_folder() {
        let mut old = job(JobStatus::Processing);
        old.upload.key = "uploads/alice/evil\nname.mp4".into();
        let new = moved(&old, JobStatus::Inbox);
        let detail = &job_notices(Some(&old), &new)[0];
        assert!(!detail.headline.contains('\n'));
        assert_eq!(
            detail.upload.as_ref().unwrap().file,
            "evil\nname.mp4",
            "data stays as it is"
        );
        let mut show = job(JobStatus::Processing);
        show.kind = JobKind::Slideshow;
        show.upload.key = "uploads/alice/trip/slideshow.json".into();
        let new = moved(&show, JobStatus::Inbox);
        assert_eq!(
            job_notices(Some(&show), &new)[0]
                .upload
                .as_ref()
                .unwrap()
                .file,
            "trip"
        );
        let mut direct = job(JobStatus::Processing);
        direct.post = PostTarget::Direct {
            privacy_level: PrivacyLevel::SelfOnly,
        };
        direct.alias = None;
        let new = moved(&direct, JobStatus::Published);
        let detail = &job_notices(Some(&direct), &new)[0];
        assert_eq!(detail.upload.as_ref().unwrap().post_mode, "direct");
        assert_eq!(
            detail.headline,
            "holiday.mp4 is posted on account open-alice's TikTok"
        );
    }

    #[test]
    fn items_are_read_with_the_shared_codec_and_others_are_ignored() {
        let old = job(JobStatus::Processing);
        let new = moved(&old, JobStatus::Inbox);
        let pk = format!("JOB#{}", new.id);
        let from_items = notices(
            &pk,
            "JOB",
            Some(&job_to_item(&old)),
            Some(&job_to_item(&new)),
        )
        .unwrap();
        assert_eq!(from_items, job_notices(Some(&old), &new));
        // Other items, markers and removals make nothing, whatever they hold.
        for (pk, sk) in [
            ("EVENT#abc", "EVENT"),
            ("DRAFTS#open-alice", "SLOT#x"),
            ("LEASE#x", "LEASE"),
            (pk.as_str(), "NOT-JOB"),
            ("ALIAS#alice", "ALIAS"),
        ] {
            assert_eq!(item_kind(pk, sk), ItemKind::Other, "{pk} {sk}");
            assert!(
                notices(pk, sk, None, Some(&job_to_item(&new)))
                    .unwrap()
                    .is_empty()
            );
        }
        assert!(
            notices(&pk, "JOB", Some(&job_to_item(&new)), None)
                .unwrap()
                .is_empty()
        );
        // A corrupt image is reported, not guessed at.
        let mut broken = job_to_item(&new);
        broken.remove("status");
        let err = notices(&pk, "JOB", Some(&job_to_item(&old)), Some(&broken)).unwrap_err();
        assert_eq!(err.which, "new");
        let err = notices(&pk, "JOB", Some(&broken), Some(&job_to_item(&new))).unwrap_err();
        assert_eq!(err.which, "old");
    }

    #[test]
    fn account_events_name_the_account_and_what_to_do() {
        let old = account(AccountState::Active);
        let mut new = account(AccountState::Revoked);
        new.state_reason = Some("authorization removed at TikTok (reason 1)".into());
        new.updated_at = t0() + TimeDelta::seconds(5);
        let [detail] = account_notices(Some(&old), &new).try_into().unwrap();
        assert_eq!(detail.kind, Kind::AccountRevoked);
        assert_eq!(detail.headline, "alice is disconnected from TikTok");
        assert!(detail.upload.is_none());
        assert_eq!(detail.status, "revoked");
        assert_eq!(detail.previous_status.as_deref(), Some("active"));
        let reason = detail.reason.unwrap();
        assert_eq!(reason.code, "revoked");
        assert_eq!(
            reason.message.as_deref(),
            Some("authorization removed at TikTok (reason 1)")
        );
        assert!(detail.hint.contains("connect link"));
        assert!(
            detail
                .summary
                .starts_with("Your TikTok account is disconnected")
        );
    }

    #[test]
    fn every_detail_is_valid_json_of_the_schema() {
        let old = job(JobStatus::Processing);
        for to in ALL_STATUSES {
            for detail in job_notices(Some(&old), &moved(&old, to)) {
                let json = serde_json::to_value(&detail).unwrap();
                let back: Detail = serde_json::from_value(json.clone()).unwrap();
                assert_eq!(back, detail);
                for field in ["headline", "summary", "hint"] {
                    let text = json[field].as_str().unwrap();
                    assert!(!text.is_empty() && !text.contains('\n'), "{field}: {json}");
                }
            }
        }
    }
}
