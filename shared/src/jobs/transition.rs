//! What a move of a job writes, decided without I/O: which of the job's
//! attributes it sets and clears, what must still hold on the stored job,
//! and what happens to the account's pending-draft slot and held queue.
//! The store renders the plan into one transaction
//! ([`super::Jobs::transition`]).
//!
//! The rules, on top of the state machine's legal moves:
//! - leaving the followed statuses (the unfinished ones and `inbox`, see
//!   [`JobStatus::is_followed`]) takes the job out of the index; staying in
//!   them re-sorts it by `not_before` (or now; `inbox` one follow-up interval
//!   later);
//! - a draft that stops holding a slot frees it (for the queue); a retry
//!   TikTok turns out to hold (`retry_wait` to `processing` or `inbox`)
//!   takes it back;
//! - entering `queued` adds a queue entry, leaving it removes the entry;
//! - going back to `claimed` clears the old attempt (`publish_id`, upload
//!   URL, plan, offset) and what TikTok said about it: a retry is a new
//!   init, on purpose;
//! - the upload URL is dropped in every status but `uploading`/`stuck`;
//! - the init marker is dropped in every status but `stuck`, and only if
//!   the caller's copy has the marker as stored (a copy read before the job
//!   was marked gets a conflict instead of erasing the evidence);
//! - every move is conditional on the stored status being the one the
//!   caller read.

use chrono::{DateTime, Utc};

use super::by_account::index_keys;
use super::codec::{attr, gsi_pk, gsi_sk, index_due, post_ids, stamp, time, to_millis};
use super::model::{Job, LastError};
use super::state_machine::{IllegalTransition, JobStatus, Step, check_transition};
use crate::table::{Cond, GSI1_PK, GSI1_SK, Update, n, n_u64, s, texts};
use crate::tiktok::{FailReason, PublishState, PublishStatus};

/// What a transition records besides the status. `None` leaves a field as
/// it is, except `not_before`, which belongs to the status it was set with
/// and is cleared when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The failed-attempt count after the move.
    pub attempts: Option<u32>,
    /// Not to be picked up before this.
    pub not_before: Option<DateTime<Utc>>,
    /// The failure to record.
    pub last_error: Option<LastError>,
    /// What TikTok said the publish is.
    pub tiktok_status: Option<PublishState>,
    /// Why TikTok failed it.
    pub fail_reason: Option<FailReason>,
    /// Replaces the stored list when not empty (TikTok sends all of them).
    pub post_ids: Vec<u64>,
    /// Replaces the stored list when not empty: the posts' public links.
    pub share_urls: Vec<String>,
    /// The account, once the alias is resolved.
    pub open_id: Option<String>,
}

impl Changes {
    /// Adds what a status fetch or webhook reported: TikTok's status, its
    /// fail reason and the post ids, so the job shows what TikTok said.
    pub fn with_tiktok_status(mut self, status: &PublishStatus) -> Self {
        self.tiktok_status = Some(status.status.clone());
        self.fail_reason = status.fail_reason.clone();
        self.post_ids = status.post_ids.clone();
        self
    }
}

impl From<Step> for Changes {
    fn from(step: Step) -> Self {
        Self {
            attempts: Some(step.attempts),
            not_before: step.not_before,
            last_error: step.error,
            ..Self::default()
        }
    }
}

/// What happens to the job's pending-draft slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotChange {
    /// Nothing.
    Keep,
    /// The draft stops counting against the cap: its slot is deleted.
    Free,
    /// TikTok turned out to hold the upload of a job waiting to retry: it
    /// counts again, even past five, since TikTok counts it whatever we think.
    Retake,
}

/// What happens to the job's entry in its account's held queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueChange {
    /// Nothing.
    Keep,
    /// The job leaves `queued`: its entry is deleted.
    Leave,
    /// The job is held: an entry is added, carrying the time before which
    /// it must not be released, if any.
    Enter {
        /// Copied onto the entry so that releasing reads only due jobs.
        not_before: Option<DateTime<Utc>>,
    },
}

/// Everything one move writes.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionPlan {
    /// The job item's conditional update.
    pub job: Update,
    /// The account the slot and queue items belong to (the job's, or the
    /// one the move records). Without one, they are left alone.
    pub open_id: Option<String>,
    /// The pending-draft slot.
    pub slot: SlotChange,
    /// The held queue.
    pub queue: QueueChange,
}

/// Why a move cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The state machine does not allow it.
    Illegal(IllegalTransition),
    /// Held jobs are queued per account, and the job has none yet.
    NoAccount,
}

/// Plans moving `job` (as the caller read it) to `to` at `now`, recording
/// `changes`.
pub fn plan(
    job: &Job,
    to: JobStatus,
    changes: &Changes,
    now: DateTime<Utc>,
) -> Result<TransitionPlan, Refusal> {
    let from = job.status;
    check_transition(from, to, job.publish_id().is_some()).map_err(Refusal::Illegal)?;
    let open_id = changes.open_id.clone().or_else(|| job.open_id.clone());
    if to == JobStatus::Queued && open_id.is_none() {
        return Err(Refusal::NoAccount);
    }
    let now = to_millis(now);
    let mut update = Update::new()
        .set(attr::STATUS, s(to.as_str()))
        .set(attr::UPDATED_AT, s(stamp(now)))
        .when(Cond::eq(attr::STATUS, s(from.as_str())));
    update = index_place(update, job, to, changes, now);
    update = recorded_changes(update, job, to, changes);
    update = attempt_rules(update, job, to);
    Ok(TransitionPlan {
        job: update,
        open_id,
        slot: slot_change(job, to),
        queue: match (from, to) {
            (JobStatus::Queued, _) => QueueChange::Leave,
            (_, JobStatus::Queued) => QueueChange::Enter {
                not_before: changes.not_before.map(to_millis),
            },
            _ => QueueChange::Keep,
        },
    })
}

/// The job's place in the index, and its `not_before`.
fn index_place(
    update: Update,
    job: &Job,
    to: JobStatus,
    changes: &Changes,
    now: DateTime<Utc>,
) -> Update {
    let update = if to.is_followed() {
        let due = index_due(to, changes.not_before.map(to_millis), now);
        update
            .set(GSI1_PK, s(gsi_pk(&job.id)))
            .set(GSI1_SK, s(gsi_sk(due, &job.id)))
    } else {
        update.remove(GSI1_PK).remove(GSI1_SK)
    };
    update.set_or_remove(attr::NOT_BEFORE, changes.not_before.map(time))
}

/// What the caller asked to record.
fn recorded_changes(mut update: Update, job: &Job, to: JobStatus, changes: &Changes) -> Update {
    if let Some(attempts) = changes.attempts {
        update = update.set(attr::ATTEMPTS, n(i64::from(attempts)));
    }
    if let Some(error) = &changes.last_error {
        update = update
            .set(attr::ERROR_CODE, s(&error.code))
            .set(attr::ERROR_MESSAGE, s(&error.message));
    }
    // A move back to `claimed` forgets TikTok's status (see
    // `attempt_rules`), so it records none.
    let new_attempt = to == JobStatus::Claimed;
    if let Some(status) = changes.tiktok_status.as_ref().filter(|_| !new_attempt) {
        // Which attempt the status is about (see `Job::failure_recorded_for`).
        update = update
            .set(attr::TIKTOK_STATUS, s(status.as_str()))
            .set_or_remove(attr::STATUS_PUBLISH_ID, job.publish_id().map(s));
    }
    if let Some(reason) = changes.fail_reason.as_ref().filter(|_| !new_attempt) {
        update = update.set(attr::FAIL_REASON, s(reason.as_str()));
    }
    if !changes.post_ids.is_empty() {
        update = update.set(attr::POST_IDS, post_ids(&changes.post_ids));
    }
    if !changes.share_urls.is_empty() {
        update = update.set(attr::SHARE_URLS, texts(&changes.share_urls));
    }
    if let Some(open_id) = &changes.open_id {
        // An upload never moves to another creator halfway.
        update = update
            .set(attr::OPEN_ID, s(open_id))
            .when(Cond::absent(attr::OPEN_ID).or(Cond::eq(attr::OPEN_ID, s(open_id))));
        // With its account the job joins the account's list.
        for (name, value) in index_keys(open_id, job.created_at, &job.id) {
            update = update.set(&name, value);
        }
    }
    update
}

/// What becomes of the attempt at TikTok: a new one clears the old, the
/// upload URL lives only while it can be used, and the init marker is kept
/// only while the job is flagged.
fn attempt_rules(mut update: Update, job: &Job, to: JobStatus) -> Update {
    if to == JobStatus::Claimed {
        // A new attempt: what TikTok said about the old one goes with its
        // publish_id, so a failure of the new one is never mistaken for it.
        for gone in [
            attr::PUBLISH_ID,
            attr::UPLOAD_URL,
            attr::CHUNK_PLAN,
            attr::TIKTOK_STATUS,
            attr::FAIL_REASON,
            attr::STATUS_PUBLISH_ID,
        ] {
            update = update.remove(gone);
        }
        update = update.set(attr::NEXT_OFFSET, n_u64(0));
        // What the state machine checked on the caller's copy must hold on
        // the stored one: going back never forgets a live publish_id.
        if job.status == JobStatus::Stuck {
            update = update.when(Cond::absent(attr::PUBLISH_ID));
        }
    } else if !matches!(to, JobStatus::Uploading | JobStatus::Stuck) {
        update = update.remove(attr::UPLOAD_URL);
    }
    // The init marker is evidence for the operator while the job is
    // flagged; any other move records what became of the init. Since it
    // says TikTok may hold the upload, a move that drops it is made only on
    // the marker the caller saw: a caller that read the job before another
    // invocation marked it (and sent its init) gets a conflict instead of
    // erasing the evidence, say by cancelling the job.
    if to != JobStatus::Stuck {
        update = update.remove(attr::INIT_STARTED_AT);
        if matches!(job.status, JobStatus::Claimed | JobStatus::Stuck) {
            update = update.when(match job.init_started_at() {
                Some(at) => Cond::eq(attr::INIT_STARTED_AT, s(stamp(at))),
                None => Cond::absent(attr::INIT_STARTED_AT),
            });
        }
    }
    update
}

/// What the move does to the job's pending-draft slot.
fn slot_change(job: &Job, to: JobStatus) -> SlotChange {
    let from = job.status;
    if !job.post.is_draft() {
        return SlotChange::Keep;
    }
    if from.holds_draft_slot() && !to.holds_draft_slot() {
        return SlotChange::Free;
    }
    // Not on a release to `claimed`: that is a new attempt, which takes its
    // slot (or is held) like any other before its init.
    if from == JobStatus::RetryWait
        && job.publish_id().is_some()
        && matches!(to, JobStatus::Processing | JobStatus::Inbox)
    {
        return SlotChange::Retake;
    }
    SlotChange::Keep
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::JobStatus::*;
    use super::*;
    use crate::jobs::{JobKind, NewJob, ObjectVersion, PostTarget, Upload, UploadAttempt};
    use crate::tiktok::PrivacyLevel;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn job(status: JobStatus) -> Job {
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "b".into(),
                    key: "uploads/alice/a.mp4".into(),
                    version: ObjectVersion::ETag("e".into()),
                    size: 10,
                },
                alias: Some("alice".into()),
                open_id: Some("open-a".into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: None,
            },
            now() - TimeDelta::hours(1),
        );
        job.status = status;
        job
    }

    fn with_publish(mut job: Job) -> Job {
        job.attempt = UploadAttempt::Pulled {
            publish_id: "p1".into(),
        };
        job
    }

    fn planned(job: &Job, to: JobStatus, changes: Changes) -> TransitionPlan {
        plan(job, to, &changes, now()).expect("a legal move")
    }

    fn requires(plan: &TransitionPlan, cond: Cond) -> bool {
        plan.job.condition().is_some_and(|c| c.requires(&cond))
    }

    #[test]
    fn every_move_is_made_on_the_status_the_caller_read() {
        let p = planned(
            &with_publish(job(Uploading)),
            Processing,
            Changes::default(),
        );
        assert!(requires(&p, Cond::eq("status", s("uploading"))));
        assert_eq!(p.job.sets("status"), Some(&s("processing")));
        assert_eq!(p.job.sets("updated_at"), Some(&s(stamp(now()))));
    }

    #[test]
    fn illegal_moves_and_held_jobs_without_an_account_are_refused() {
        assert!(matches!(
            plan(&job(Published), Failed, &Changes::default(), now()),
            Err(Refusal::Illegal(_))
        ));
        let mut nobody = job(Claimed);
        nobody.open_id = None;
        assert_eq!(
            plan(&nobody, Queued, &Changes::default(), now()),
            Err(Refusal::NoAccount)
        );
        // The account the move records is enough.
        let with_account = Changes {
            open_id: Some("open-b".into()),
            ..Changes::default()
        };
        let p = planned(&nobody, Queued, with_account);
        assert_eq!(p.open_id.as_deref(), Some("open-b"));
        assert!(requires(
            &p,
            Cond::absent("open_id").or(Cond::eq("open_id", s("open-b")))
        ));
        // With its account the job joins the account's list (gsi2).
        assert_eq!(p.job.sets("gsi2pk"), Some(&s("JOBS#open-b")));
        let sort_key = p.job.sets("gsi2sk").and_then(|v| v.as_s().ok());
        assert!(
            sort_key.is_some_and(|k| k.ends_with(&format!("#{}", nobody.id.as_str()))),
            "{sort_key:?}"
        );
        let moved_on = planned(&job(Claimed), Uploading, Changes::default());
        assert_eq!(
            moved_on.job.sets("gsi2pk"),
            None,
            "written once, with the account"
        );
    }

    #[test]
    fn followed_statuses_stay_in_the_index_sorted_by_when_they_are_due() {
        let later = now() + TimeDelta::minutes(5);
        let waiting = planned(
            &job(Claimed),
            RetryWait,
            Changes {
                not_before: Some(later),
                ..Changes::default()
            },
        );
        let id = job(Claimed).id;
        assert_eq!(waiting.job.sets("gsi1pk"), Some(&s(gsi_pk(&id))));
        assert_eq!(waiting.job.sets("gsi1sk"), Some(&s(gsi_sk(later, &id))));
        assert_eq!(waiting.job.sets("not_before"), Some(&s(stamp(later))));
        let inbox = planned(&with_publish(job(Processing)), Inbox, Changes::default());
        assert_eq!(
            inbox.job.sets("gsi1sk"),
            Some(&s(gsi_sk(now() + TimeDelta::minutes(15), &id)))
        );
        assert!(inbox.job.removes("not_before"));
        let done = planned(&with_publish(job(Inbox)), Published, Changes::default());
        assert!(done.job.removes("gsi1pk") && done.job.removes("gsi1sk"));
    }

    #[test]
    fn a_new_attempt_forgets_the_old_one_and_what_tiktok_said_of_it() {
        let mut retry = with_publish(job(RetryWait));
        retry.tiktok_status = Some(PublishState::Failed);
        let p = planned(
            &retry,
            Claimed,
            Changes {
                tiktok_status: Some(PublishState::Failed),
                fail_reason: Some(FailReason::Internal),
                ..Changes::default()
            },
        );
        for gone in [
            "publish_id",
            "upload_url",
            "chunk_plan",
            "tiktok_status",
            "fail_reason",
            "status_publish_id",
        ] {
            assert!(p.job.removes(gone), "{gone}");
        }
        assert_eq!(p.job.sets("next_offset"), Some(&n_u64(0)));
        // From stuck, only while the stored job has no publish_id either.
        let stuck = planned(&job(Stuck), Claimed, Changes::default());
        assert!(requires(&stuck, Cond::absent("publish_id")));
        assert!(!requires(&p, Cond::absent("publish_id")));
    }

    #[test]
    fn the_upload_url_lives_only_while_it_can_be_used() {
        let uploading = with_publish(job(Uploading));
        assert!(
            !planned(&uploading, Stuck, Changes::default())
                .job
                .removes("upload_url")
        );
        assert!(
            planned(&uploading, Processing, Changes::default())
                .job
                .removes("upload_url")
        );
        let stuck = with_publish(job(Stuck));
        assert!(
            !planned(&stuck, Uploading, Changes::default())
                .job
                .removes("upload_url")
        );
    }

    #[test]
    fn the_init_marker_is_dropped_only_as_the_caller_saw_it() {
        let mut marked = job(Claimed);
        marked.attempt = UploadAttempt::InitSent { at: now() };
        let to_stuck = planned(&marked, Stuck, Changes::default());
        assert!(!to_stuck.job.removes("init_started_at"));
        let cancelled = planned(&marked, Cancelled, Changes::default());
        assert!(cancelled.job.removes("init_started_at"));
        assert!(requires(
            &cancelled,
            Cond::eq("init_started_at", s(stamp(now())))
        ));
        // A copy read before the marker was set requires there is none.
        let unmarked = planned(&job(Claimed), Cancelled, Changes::default());
        assert!(requires(&unmarked, Cond::absent("init_started_at")));
        // Past `claimed` there is no marker to guard.
        let past = planned(&with_publish(job(Uploading)), Failed, Changes::default());
        assert!(past.job.removes("init_started_at"));
        assert!(!requires(&past, Cond::absent("init_started_at")));
    }

    #[test]
    fn tiktoks_status_is_recorded_with_the_publish_it_is_about() {
        let status = PublishStatus {
            status: PublishState::Failed,
            fail_reason: Some(FailReason::Internal),
            post_ids: vec![7],
            uploaded_bytes: None,
            downloaded_bytes: None,
        };
        let p = planned(
            &with_publish(job(Processing)),
            RetryWait,
            Changes::default().with_tiktok_status(&status),
        );
        assert_eq!(p.job.sets("tiktok_status"), Some(&s("FAILED")));
        assert_eq!(p.job.sets("status_publish_id"), Some(&s("p1")));
        assert_eq!(p.job.sets("fail_reason"), Some(&s("internal")));
        assert_eq!(p.job.sets("post_ids"), Some(&post_ids(&[7])));
        // Without a publish_id there is no attempt it could be about.
        let p = planned(
            &job(Claimed),
            Failed,
            Changes::default().with_tiktok_status(&status),
        );
        assert!(p.job.removes("status_publish_id"));
    }

    #[test]
    fn slots_are_freed_and_taken_back_with_the_move() {
        let uploading = with_publish(job(Uploading));
        assert_eq!(
            planned(&uploading, Failed, Changes::default()).slot,
            SlotChange::Free
        );
        assert_eq!(
            planned(&uploading, Processing, Changes::default()).slot,
            SlotChange::Keep
        );
        let retry = with_publish(job(RetryWait));
        assert_eq!(
            planned(&retry, Inbox, Changes::default()).slot,
            SlotChange::Retake
        );
        assert_eq!(
            planned(&job(RetryWait), Claimed, Changes::default()).slot,
            SlotChange::Keep,
            "a release takes its slot before its init"
        );
        let mut direct = uploading.clone();
        direct.post = PostTarget::Direct {
            privacy_level: PrivacyLevel::SelfOnly,
        };
        assert_eq!(
            planned(&direct, Failed, Changes::default()).slot,
            SlotChange::Keep,
            "a direct post holds no slot"
        );
    }

    #[test]
    fn held_jobs_enter_and_leave_the_queue() {
        let until = now() + TimeDelta::hours(1);
        let held = planned(
            &job(Claimed),
            Queued,
            Changes {
                not_before: Some(until),
                ..Changes::default()
            },
        );
        assert_eq!(
            held.queue,
            QueueChange::Enter {
                not_before: Some(until)
            }
        );
        assert_eq!(held.slot, SlotChange::Free);
        let released = planned(&job(Queued), Claimed, Changes::default());
        assert_eq!(released.queue, QueueChange::Leave);
    }

    #[test]
    fn a_step_becomes_changes() {
        let step = Step {
            to: JobStatus::RetryWait,
            attempts: 3,
            not_before: Some(DateTime::from_timestamp(1, 0).unwrap()),
            error: None,
        };
        let changes = Changes::from(step);
        assert_eq!(changes.attempts, Some(3));
        assert!(changes.not_before.is_some());
    }
}
