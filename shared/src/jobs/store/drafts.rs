//! The per-account pending-draft slots and the held queue.
//!
//! **Why slots are items of their own.** TikTok allows 5 pending inbox
//! shares per account in any 24 hours; a share counts from init until it is
//! posted or 24 hours old. A job's status alone cannot say that (an `inbox`
//! job is out of the unfinished index, and one item has only one `gsi1pk`),
//! so each draft takes a slot item in its account's partition right before
//! init. Counting is one strongly consistent Query of a small partition; a
//! slot is freed by deleting it in the same transaction that moves its job
//! to a status that no longer counts, and one older than 24 hours stops
//! counting by itself (and is deleted later by TTL). Taking a slot bumps the
//! account's guard version in the same transaction, conditional on the
//! version read, so two uploads racing for the fifth slot cannot both get it.
//! Queue entries sit in the same partition, sorted by the job's creation
//! time, so "oldest held job first" is one Query too.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::{JobError, Jobs, count};
use crate::jobs::codec::{
    DRAFTS_PREFIX, GUARD_SK, HELD_INDEX, QUEUED_PREFIX, SLOT_PREFIX, attr, drafts_pk, job_key,
    slot_sk, stamp, to_millis,
};
use crate::jobs::model::{Job, JobId};
use crate::jobs::state_machine::JobStatus;
use crate::table::{
    Cond, Item, Key, PK, SK, TTL, Transacted, Update, Write, n, n_u64, opt_i64, opt_text, opt_u64,
    s,
};

/// TikTok's cap on pending inbox shares per account.
pub const MAX_PENDING_DRAFTS: u32 = 5;

/// How long a pending share counts against the cap.
pub const PENDING_WINDOW: TimeDelta = TimeDelta::hours(24);

/// How often [`Jobs::take_draft_slot`] re-reads and retries when another
/// upload for the same account took a slot meanwhile.
const SLOT_ATTEMPTS: u32 = 5;

/// What [`Jobs::take_draft_slot`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDecision {
    /// The job holds a slot (now or already); `pending` counts it.
    Granted {
        /// The account's pending drafts, this one included.
        pending: u32,
    },
    /// The account has [`MAX_PENDING_DRAFTS`] pending: queue the job.
    Full {
        /// The account's pending drafts.
        pending: u32,
    },
    /// A direct post does not go to the inbox and takes no slot.
    NotNeeded,
}

/// A pending-draft slot item for `id` in partition `pk`, taken at `now`.
pub(super) fn slot_item(pk: &str, id: &JobId, now: DateTime<Utc>) -> Item {
    let taken_at = now.timestamp();
    Item::from([
        (PK.to_owned(), s(pk)),
        (SK.to_owned(), s(slot_sk(id))),
        ("job_id".to_owned(), s(id.as_str())),
        ("taken_at".to_owned(), n(taken_at)),
        // TTL cleans up slots nobody freed; an hour after they stop
        // counting, since TTL deletion is lazy and readers filter anyway.
        (
            TTL.to_owned(),
            n(taken_at + PENDING_WINDOW.num_seconds() + 3600),
        ),
    ])
}

impl Jobs {
    /// Reserves one of the account's pending-draft slots for `job` right
    /// before its init, so that a sixth draft is queued here instead of
    /// being refused by TikTok. Idempotent: a job that holds a slot keeps it.
    /// The job must be `claimed` (checked in the same transaction).
    pub async fn take_draft_slot(
        &self,
        job: &Job,
        now: DateTime<Utc>,
    ) -> Result<SlotDecision, JobError> {
        if !job.post.is_draft() {
            return Ok(SlotDecision::NotNeeded);
        }
        let open_id = job
            .open_id
            .as_deref()
            .ok_or_else(|| JobError::NoAccount { id: job.id.clone() })?;
        let pk = drafts_pk(open_id);
        let guard_key = Key::new(&pk, GUARD_SK);
        for attempt in 1..=SLOT_ATTEMPTS {
            let version = match self.table.get(&guard_key).await? {
                Some(item) => opt_u64(&item, "version").unwrap_or(0),
                None => 0,
            };
            let live = self.live_slots(open_id, now).await?;
            let pending = count(live.len());
            if live.iter().any(|held| held == job.id.as_str()) {
                return Ok(SlotDecision::Granted { pending });
            }
            if pending >= MAX_PENDING_DRAFTS {
                tracing::info!(job_id = %job.id, open_id, pending, "pending drafts full; job must wait");
                return Ok(SlotDecision::Full { pending });
            }
            let guard = Update::new()
                .set("version", n_u64(version + 1))
                .set("open_id", s(open_id))
                .when(Cond::no_item().or(Cond::eq("version", n_u64(version))));
            let claimed = Cond::eq(attr::STATUS, s(JobStatus::Claimed.as_str()));
            // Order matters: the reasons come back in it (2 = the job).
            let written = self
                .table
                .transact(vec![
                    Write::Update(guard_key.clone(), guard),
                    Write::Put(slot_item(&pk, &job.id, now), None),
                    Write::Check(job_key(&job.id), claimed),
                ])
                .await?;
            if written == Transacted::Done {
                tracing::info!(job_id = %job.id, open_id, pending = pending + 1, "draft slot taken");
                return Ok(SlotDecision::Granted {
                    pending: pending + 1,
                });
            }
            if written.condition_failed(2) {
                return self.conflict(&job.id, JobStatus::Claimed).await;
            }
            if !written.lost_race() {
                return Err(self.refused(&written));
            }
            tracing::debug!(job_id = %job.id, open_id, attempt, "slot guard moved; re-reading");
        }
        Err(JobError::Busy {
            open_id: open_id.to_owned(),
        })
    }

    /// How many drafts of the account count against TikTok's cap at `now`:
    /// slots taken within the last 24 hours and not freed.
    pub async fn pending_drafts(&self, open_id: &str, now: DateTime<Utc>) -> Result<u32, JobError> {
        Ok(count(self.live_slots(open_id, now).await?.len()))
    }

    /// The job ids whose slots count at `now`.
    async fn live_slots(&self, open_id: &str, now: DateTime<Utc>) -> Result<Vec<String>, JobError> {
        let cutoff = (now - PENDING_WINDOW).timestamp();
        let slots = self
            .table
            .query_prefix(&drafts_pk(open_id), SLOT_PREFIX, None)
            .await?;
        Ok(slots
            .iter()
            .filter(|slot| opt_i64(slot, "taken_at").is_some_and(|t| t > cutoff))
            .filter_map(|slot| opt_text(slot, "job_id"))
            .collect())
    }

    /// The account's held jobs, oldest upload first, at most `limit`.
    pub async fn queued_for_account(
        &self,
        open_id: &str,
        limit: u32,
    ) -> Result<Vec<Job>, JobError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let entries = self
            .table
            .query_prefix(&drafts_pk(open_id), QUEUED_PREFIX, Some(limit))
            .await?;
        let mut jobs = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = queued_job_id(&entry)?;
            match self.get(&id).await? {
                Some(job) if job.status == JobStatus::Queued => jobs.push(job),
                other => not_queued(&id, open_id, other.as_ref()),
            }
        }
        Ok(jobs)
    }

    /// The account's held jobs that may be released at `now`, oldest upload
    /// first, at most `limit`: like [`Jobs::queued_for_account`], but
    /// skipping jobs held until a later time (`not_before`, set when TikTok
    /// itself refused a draft with `spam_risk_too_many_pending_share`: TikTok
    /// counts drafts this project cannot see, so a free local slot does not
    /// mean TikTok has one). The checker releases from this list.
    pub async fn releasable_for_account(
        &self,
        open_id: &str,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Job>, JobError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let due = stamp(to_millis(now));
        // The partition holds an account's slots and held jobs: small.
        let entries = self
            .table
            .query_prefix(&drafts_pk(open_id), QUEUED_PREFIX, None)
            .await?;
        let mut jobs = Vec::new();
        for entry in entries {
            if jobs.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
            if opt_text(&entry, "not_before").is_some_and(|at| at > due) {
                continue;
            }
            let id = queued_job_id(&entry)?;
            match self.get(&id).await? {
                Some(job)
                    if job.status == JobStatus::Queued
                        && job.not_before.is_none_or(|at| at <= now) =>
                {
                    jobs.push(job)
                }
                Some(job) if job.status == JobStatus::Queued => {}
                other => not_queued(&id, open_id, other.as_ref()),
            }
        }
        Ok(jobs)
    }

    /// The accounts with held uploads, from the index partition of queue
    /// entries: reads as many entries as there are held uploads, however
    /// large the backlog. Entries written before that partition existed are
    /// not in it (the checker also meets held jobs in its walk).
    pub async fn accounts_with_held_uploads(&self) -> Result<Vec<String>, JobError> {
        let mut accounts = BTreeSet::new();
        for entry in self.table.query_index(HELD_INDEX).await? {
            let open_id = opt_text(&entry, "open_id").or_else(|| {
                opt_text(&entry, PK)
                    .and_then(|pk| pk.strip_prefix(DRAFTS_PREFIX).map(str::to_owned))
            });
            match open_id {
                Some(open_id) => {
                    accounts.insert(open_id);
                }
                None => tracing::warn!(
                    key = opt_text(&entry, SK).unwrap_or_default(),
                    "queue entry without an account; skipped"
                ),
            }
        }
        Ok(accounts.into_iter().collect())
    }
}

/// The job a queue entry names.
fn queued_job_id(entry: &Item) -> Result<JobId, JobError> {
    opt_text(entry, "job_id")
        .and_then(|id| JobId::parse(&id).ok())
        .ok_or_else(|| JobError::Corrupt {
            key: opt_text(entry, SK).unwrap_or_default(),
            detail: "job_id is missing or malformed".into(),
        })
}

fn not_queued(id: &JobId, open_id: &str, job: Option<&Job>) {
    tracing::warn!(
        job_id = %id,
        open_id,
        status = job.map(|j| j.status.as_str()),
        "queue entry of a job that is not queued"
    );
}
