//! Job records on the shared table: claiming uploads exactly once, saving
//! TikTok's handles before using them, moving jobs with optimistic
//! concurrency, the index of unfinished jobs, and the per-account pending
//! draft slots and queue.
//!
//! | item | `pk` / `sk` | attributes |
//! |---|---|---|
//! | job | `JOB#<id>` / `JOB` | `job_id`, `s3_bucket`, `s3_key`, `s3_version_id` or `s3_etag`, `object_size`, `alias`, `open_id`, `kind`, `post_mode` (`draft`/`direct`), `privacy_level`, `caption`, `status`, `publish_id`, `upload_url`, `chunk_plan` (JSON), `next_offset`, `attempts`, `error_code`, `error_message`, `tiktok_status`, `fail_reason`, `post_ids` (list of N), `created_at`, `updated_at`, `not_before`, `init_started_at`; while unfinished also `gsi1pk` = `UNFINISHED#<shard>`, `gsi1sk` = `<due>#<id>`; once it has an account `gsi2pk` = `JOBS#<open_id>`, `gsi2sk` = `<created_at>#<id>` (see [`super::by_account`]) |
//! | pending-draft slot | `DRAFTS#<open_id>` / `SLOT#<job id>` | `job_id`, `taken_at`, `expires_at` (TTL) |
//! | queue entry | `DRAFTS#<open_id>` / `QUEUED#<created_at>#<job id>` | `job_id`, `created_at`, `open_id`, `not_before` (when held until a time); `gsi1pk` = `HELD`, `gsi1sk` = the sort key |
//! | slot guard | `DRAFTS#<open_id>` / `GUARD` | `open_id`, `version` |
//! | publish pointer | `PUBLISH#<publish_id>` / `PUBLISH` | `job_id`, `publish_id` |
//!
//! Times on jobs are RFC 3339 in UTC with milliseconds (fixed width, so they
//! sort as text); `taken_at` and `expires_at` are epoch seconds.
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
//!
//! The upload URL carries an upload token: it is stored (needed to resume
//! within its hour) and removed as soon as the job leaves `uploading`
//! (`stuck` keeps it for a resume); it is held as a [`Secret`] and never
//! logged or put into an error.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnConsumedCapacity, ReturnValue,
    TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::model::{
    Job, JobId, JobKind, LastError, NewJob, ObjectVersion, PostTarget, UNFINISHED_SHARDS, Upload,
};
use super::state_machine::{
    INBOX_FOLLOW_EVERY, IllegalTransition, JobStatus, Step, check_transition,
};
use crate::aws::describe_sdk_error;
use crate::secret::Secret;
use crate::table::{
    GSI1, GSI1_PK, GSI1_SK, Item, PK, SK, TTL, eventual_read_units, item_size, n, opt_text, s,
    text_list,
};
use crate::tiktok::{ChunkPlan, FailReason, PrivacyLevel, PublishState, PublishStatus};

const JOB_PREFIX: &str = "JOB#";
const JOB_SK: &str = "JOB";
const UNFINISHED_PREFIX: &str = "UNFINISHED#";
/// The index partition of queue entries: every held upload of every
/// account, oldest first, in one small Query (the checker releases held
/// uploads first in a run, before the long walk of the backlog).
const HELD_INDEX: &str = "HELD";
const DRAFTS_PREFIX: &str = "DRAFTS#";
const SLOT_PREFIX: &str = "SLOT#";
const QUEUED_PREFIX: &str = "QUEUED#";
const GUARD_SK: &str = "GUARD";
const PUBLISH_PREFIX: &str = "PUBLISH#";
const PUBLISH_SK: &str = "PUBLISH";

/// TikTok's cap on pending inbox shares per account.
pub const MAX_PENDING_DRAFTS: u32 = 5;

/// How long a pending share counts against the cap.
pub const PENDING_WINDOW: TimeDelta = TimeDelta::hours(24);

/// How often [`Jobs::take_draft_slot`] re-reads and retries when another
/// upload for the same account took a slot meanwhile.
const SLOT_ATTEMPTS: u32 = 5;

/// Why a job store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Someone else moved the job first (optimistic concurrency): re-read it
    /// and decide again.
    #[error("job {id} is no longer {expected} (it is {})", found.map_or("gone", JobStatus::as_str))]
    Conflict {
        id: JobId,
        expected: JobStatus,
        found: Option<JobStatus>,
    },
    /// TikTok already has this upload: resume it, never init again.
    #[error("job {id} was already initialised with TikTok (publish_id {publish_id})")]
    AlreadyInitialised { id: JobId, publish_id: String },
    /// An init was sent for this job and its answer never recorded: TikTok
    /// may have the upload. Only an operator can tell (the creator's inbox).
    #[error("job {id} sent an init at {since} whose answer was never recorded")]
    InitInDoubt { id: JobId, since: DateTime<Utc> },
    #[error("job {id}: {source}")]
    IllegalTransition {
        id: JobId,
        #[source]
        source: IllegalTransition,
    },
    #[error("no job {id}")]
    NotFound { id: JobId },
    /// Slots and the queue are per account; the job's alias is unresolved.
    #[error("job {id} has no resolved TikTok account yet")]
    NoAccount { id: JobId },
    #[error("too many uploads for account {open_id} are taking draft slots at once; try again")]
    Busy { open_id: String },
    #[error("there is no shard {shard} of unfinished jobs (there are {UNFINISHED_SHARDS})")]
    BadShard { shard: u8 },
    /// Names the attribute, never its value (it may be the upload URL).
    #[error("the stored item {key} is unreadable: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("cannot reach the job store (table {table}): {detail}")]
    Store { table: String, detail: String },
}

/// What [`Jobs::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This call created the job: go ahead with the upload.
    New(Job),
    /// The upload was claimed before (a redelivered event): resume or leave
    /// it according to its status, never start it again.
    Existing(Job),
}

impl Claim {
    pub fn job(&self) -> &Job {
        match self {
            Self::New(job) | Self::Existing(job) => job,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Self::New(_))
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::New(job) => write!(f, "new job {}", job.id),
            Self::Existing(job) => write!(f, "existing job {} ({})", job.id, job.status),
        }
    }
}

/// What a transition records besides the status. `None` leaves a field as
/// it is, except `not_before`, which belongs to the status it was set with
/// and is cleared when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub attempts: Option<u32>,
    pub not_before: Option<DateTime<Utc>>,
    pub last_error: Option<LastError>,
    pub tiktok_status: Option<PublishState>,
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

/// Where the next page of [`Jobs::unfinished`] starts. Opaque.
#[derive(Debug, Clone, PartialEq)]
pub struct PageKey(HashMap<String, AttributeValue>);

/// One page of unfinished jobs, due first.
#[derive(Debug, Clone)]
pub struct UnfinishedPage {
    pub jobs: Vec<Job>,
    pub next: Option<PageKey>,
    /// Index entries DynamoDB read for this page: only unfinished jobs are
    /// in the index, so this grows with the backlog, not with history.
    pub scanned_count: u32,
    /// Read units the page costs in DynamoDB (from the items' sizes).
    pub read_units: f64,
    /// Index entries that could not be read as jobs: skipped (and logged by
    /// key), so one bad item never hides the rest of the page.
    pub unreadable: u32,
    /// The read units DynamoDB itself reported for the page, when it was
    /// asked to ([`Jobs::due_unfinished`] asks).
    pub consumed_units: Option<f64>,
    /// Where each job of `jobs` sorts in the index (its due time there,
    /// which the checker moves on without changing the job), in the same
    /// order; from [`Jobs::due_unfinished`] and [`Jobs::followed_of_account`].
    pub index_due: Vec<DateTime<Utc>>,
}

/// What [`Jobs::take_draft_slot`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotDecision {
    /// The job holds a slot (now or already); `pending` counts it.
    Granted { pending: u32 },
    /// The account has [`MAX_PENDING_DRAFTS`] pending: queue the job.
    Full { pending: u32 },
    /// A direct post does not go to the inbox and takes no slot.
    NotNeeded,
}

/// The job store.
#[derive(Debug, Clone)]
pub struct Jobs {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Jobs {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The status checker's state item, on the same table.
    pub fn checker_state(&self) -> super::checker_state::CheckerState {
        super::checker_state::CheckerState::new(self.client.clone(), &self.table)
    }

    /// Claims an upload: creates its job in `claimed` unless the job exists.
    /// A conditional put on the id, which is derived from the upload, so of
    /// any number of concurrent or repeated claims exactly one is
    /// [`Claim::New`].
    pub async fn claim(&self, new: NewJob, now: DateTime<Utc>) -> Result<Claim, JobError> {
        let job = Job::new(new, to_millis(now));
        let mut item = job_to_item(&job);
        item.insert(GSI1_PK.into(), s(gsi_pk(&job.id)));
        item.insert(GSI1_SK.into(), s(gsi_sk(job.due_at(), &job.id)));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => {
                tracing::info!(
                    job_id = %job.id,
                    bucket = %job.upload.bucket,
                    key = %job.upload.key,
                    alias = job.alias.as_deref(),
                    kind = job.kind.as_str(),
                    "upload claimed"
                );
                Ok(Claim::New(job))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let existing = self.get(&job.id).await?.ok_or_else(|| JobError::Corrupt {
                    key: job_pk(&job.id),
                    detail: "the job refused the claim but cannot be read".into(),
                })?;
                tracing::info!(
                    job_id = %existing.id,
                    status = %existing.status,
                    "upload was claimed before"
                );
                Ok(Claim::Existing(existing))
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// The job, if any (strongly consistent).
    pub async fn get(&self, id: &JobId) -> Result<Option<Job>, JobError> {
        let key = job_pk(id);
        match self.get_item(&key, JOB_SK).await? {
            Some(item) => job_from_item(&key, &item).map(Some),
            None => Ok(None),
        }
    }

    /// Saves what init returned and moves the job to `uploading`, before
    /// anything else is done with it. Conditional on the job being `claimed`
    /// without a `publish_id`, so a second init for one upload can never be
    /// recorded: the loser gets [`JobError::AlreadyInitialised`] and must
    /// resume the saved one (in practice the check happens before init too,
    /// by reading the job; this is the guarantee behind it).
    pub async fn save_init(
        &self,
        id: &JobId,
        publish_id: &str,
        upload_url: Option<&Secret>,
        plan: Option<&ChunkPlan>,
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let now = to_millis(now);
        let mut set = vec![
            "#status = :uploading",
            "publish_id = :publish_id",
            "next_offset = :zero",
            "updated_at = :now",
            "gsi1pk = :gpk",
            "gsi1sk = :gsk",
        ];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(job_pk(id)))
            .key(SK, s(JOB_SK))
            .condition_expression("#status = :claimed AND attribute_not_exists(publish_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":uploading", s(JobStatus::Uploading.as_str()))
            .expression_attribute_values(":claimed", s(JobStatus::Claimed.as_str()))
            .expression_attribute_values(":publish_id", s(publish_id))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(stamp(now)))
            .expression_attribute_values(":gpk", s(gsi_pk(id)))
            .expression_attribute_values(":gsk", s(gsi_sk(now, id)));
        if let Some(url) = upload_url {
            set.push("upload_url = :upload_url");
            update = update.expression_attribute_values(":upload_url", s(url.expose()));
        }
        if let Some(plan) = plan {
            set.push("chunk_plan = :plan");
            update = update.expression_attribute_values(":plan", s(plan_json(plan)?));
        }
        // TikTok answered with a publish_id: the init is no longer in doubt,
        // and what TikTok said about an earlier attempt is not about this one.
        let update = update
            .update_expression(format!(
                "SET {} REMOVE init_started_at, tiktok_status, fail_reason, status_publish_id",
                set.join(", ")
            ))
            .build()
            .map_err(|e| self.build_error(e))?;
        // Webhooks name the upload by publish_id only: the pointer is
        // written with the job, so every job TikTok knows can be found.
        let pointer = Put::builder()
            .table_name(&self.table)
            .item(PK, s(publish_pk(publish_id)))
            .item(SK, s(PUBLISH_SK))
            .item("job_id", s(id.as_str()))
            .item("publish_id", s(publish_id))
            .build()
            .map_err(|e| self.build_error(e))?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(pointer).build())
            .send()
            .await;
        match written {
            Ok(_) => {
                tracing::info!(
                    job_id = %id,
                    publish_id,
                    has_upload_url = upload_url.is_some(),
                    chunks = plan.map(|p| p.total_chunk_count),
                    "init saved"
                );
                self.get(id)
                    .await?
                    .ok_or_else(|| JobError::NotFound { id: id.clone() })
            }
            Err(err) if first_condition_failed(&err) => {
                let current = self.get(id).await?;
                match current {
                    None => Err(JobError::NotFound { id: id.clone() }),
                    Some(Job {
                        publish_id: Some(saved),
                        ..
                    }) => {
                        tracing::warn!(job_id = %id, publish_id = %saved, "second init refused");
                        Err(JobError::AlreadyInitialised {
                            id: id.clone(),
                            publish_id: saved,
                        })
                    }
                    Some(job) => Err(JobError::Conflict {
                        id: id.clone(),
                        expected: JobStatus::Claimed,
                        found: Some(job.status),
                    }),
                }
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Records that an init request is about to go to TikTok, right before
    /// it is sent: conditional on the job being `claimed` with neither a
    /// `publish_id` nor an earlier marker. A job found later with the marker
    /// and no `publish_id` may be known to TikTok (the init's answer was
    /// lost), so it is flagged for the operator instead of initialised
    /// again. [`Jobs::save_init`] and any transition but to `stuck` clear it.
    /// A job that has either gets [`JobError::AlreadyInitialised`] or
    /// [`JobError::InitInDoubt`].
    pub async fn mark_init_started(&self, job: &Job, now: DateTime<Utc>) -> Result<Job, JobError> {
        let now = to_millis(now);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(&job.id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET init_started_at = :now, updated_at = :now, gsi1sk = :gsk")
            .condition_expression(
                "#status = :claimed AND attribute_not_exists(publish_id) AND attribute_not_exists(init_started_at)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":claimed", s(JobStatus::Claimed.as_str()))
            .expression_attribute_values(":now", s(stamp(now)))
            .expression_attribute_values(":gsk", s(gsi_sk(now, &job.id)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match updated {
            Ok(out) => {
                tracing::info!(job_id = %job.id, "init started");
                job_from_item(&job_pk(&job.id), &out.attributes.unwrap_or_default())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                match self.get(&job.id).await? {
                    None => Err(JobError::NotFound { id: job.id.clone() }),
                    Some(Job {
                        publish_id: Some(publish_id),
                        ..
                    }) => Err(JobError::AlreadyInitialised {
                        id: job.id.clone(),
                        publish_id,
                    }),
                    Some(Job {
                        init_started_at: Some(at),
                        ..
                    }) => Err(JobError::InitInDoubt {
                        id: job.id.clone(),
                        since: at,
                    }),
                    Some(found) => Err(JobError::Conflict {
                        id: job.id.clone(),
                        expected: JobStatus::Claimed,
                        found: Some(found.status),
                    }),
                }
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Replaces the job's recorded error without moving it (a `stuck` job
    /// that an invocation found needs another note for the operator).
    /// Conditional on the job still being in `job.status`.
    pub async fn record_error(
        &self,
        job: &Job,
        error: &LastError,
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let now = to_millis(now);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(&job.id)))
            .key(SK, s(JOB_SK))
            .update_expression(
                "SET error_code = :code, error_message = :message, updated_at = :now",
            )
            .condition_expression("#status = :status")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(job.status.as_str()))
            .expression_attribute_values(":code", s(&error.code))
            .expression_attribute_values(":message", s(&error.message))
            .expression_attribute_values(":now", s(stamp(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match updated {
            Ok(out) => {
                tracing::info!(job_id = %job.id, status = %job.status, error_code = %error.code, "job error recorded");
                job_from_item(&job_pk(&job.id), &out.attributes.unwrap_or_default())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.conflict(&job.id, job.status).await
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Writes jobs as they are, with their index entry and publish pointer,
    /// 25 items per request: for imports and load tests. No claim, no
    /// slots, no conditions; the live path never uses it.
    pub async fn put_many(&self, jobs: &[Job]) -> Result<(), JobError> {
        let mut items: Vec<Item> = Vec::with_capacity(jobs.len() * 2);
        for job in jobs {
            let mut item = job_to_item(job);
            if job.status.is_followed() {
                let due = index_due(job.status, job.not_before, job.updated_at);
                item.insert(GSI1_PK.into(), s(gsi_pk(&job.id)));
                item.insert(GSI1_SK.into(), s(gsi_sk(due, &job.id)));
            }
            items.push(item);
            if let Some(publish_id) = &job.publish_id {
                items.push(Item::from([
                    (PK.to_owned(), s(publish_pk(publish_id))),
                    (SK.to_owned(), s(PUBLISH_SK)),
                    ("job_id".to_owned(), s(job.id.as_str())),
                    ("publish_id".to_owned(), s(publish_id)),
                ]));
            }
        }
        for chunk in items.chunks(25) {
            let mut pending: Vec<aws_sdk_dynamodb::types::WriteRequest> = chunk
                .iter()
                .map(|item| {
                    aws_sdk_dynamodb::types::PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| {
                            aws_sdk_dynamodb::types::WriteRequest::builder()
                                .put_request(put)
                                .build()
                        })
                        .map_err(|e| self.build_error(e))
                })
                .collect::<Result<_, _>>()?;
            // Unprocessed items are sent again; DynamoDB returns them under load.
            for _ in 0..8 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| self.store_error(&e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(JobError::Store {
                    table: self.table.clone(),
                    detail: format!("{} items left unprocessed", pending.len()),
                });
            }
        }
        Ok(())
    }

    /// Adds post ids to a job that is `published` already (TikTok sends
    /// `publicly_available`, with the id, after `complete`, once moderation is
    /// done). Only while the job is `published` and its list is what the
    /// caller read, so concurrent deliveries cannot drop each other's ids.
    /// Adds the posts' public links the same way. Returns the job as stored.
    pub async fn add_post_ids_with_links(
        &self,
        job: &Job,
        post_ids: &[u64],
        share_urls: &[String],
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let mut ids = job.post_ids.clone();
        for id in post_ids {
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
        let mut urls = job.share_urls.clone();
        for url in share_urls {
            if !urls.contains(url) {
                urls.push(url.clone());
            }
        }
        if ids == job.post_ids && urls == job.share_urls {
            return Ok(job.clone());
        }
        let list = AttributeValue::L(ids.iter().map(|id| n_u64(*id)).collect());
        let before = AttributeValue::L(job.post_ids.iter().map(|id| n_u64(*id)).collect());
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(&job.id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET post_ids = :ids, share_urls = :urls, updated_at = :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ids", list)
            .expression_attribute_values(":urls", AttributeValue::L(urls.iter().map(s).collect()))
            .expression_attribute_values(":published", s(JobStatus::Published.as_str()))
            .expression_attribute_values(":now", s(stamp(to_millis(now))))
            .return_values(ReturnValue::AllNew);
        request = if job.post_ids.is_empty() {
            request.condition_expression(
                "#status = :published AND (attribute_not_exists(post_ids) OR size(post_ids) = :zero)",
            )
            .expression_attribute_values(":zero", n(0))
        } else {
            request
                .condition_expression("#status = :published AND post_ids = :before")
                .expression_attribute_values(":before", before)
        };
        match request.send().await {
            Ok(out) => {
                tracing::info!(job_id = %job.id, post_ids = ?ids, "post ids recorded");
                job_from_item(&job_pk(&job.id), &out.attributes.unwrap_or_default())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.conflict(&job.id, JobStatus::Published).await
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// The job TikTok knows by `publish_id` (webhooks name nothing else).
    pub async fn by_publish_id(&self, publish_id: &str) -> Result<Option<Job>, JobError> {
        let Some(pointer) = self.get_item(&publish_pk(publish_id), PUBLISH_SK).await? else {
            return Ok(None);
        };
        let id = opt_text(&pointer, "job_id")
            .and_then(|id| JobId::parse(&id).ok())
            .ok_or_else(|| JobError::Corrupt {
                key: publish_pk(publish_id),
                detail: "job_id is missing or malformed".into(),
            })?;
        match self.get(&id).await? {
            // The pointer outlives a retry's new init; only the job's current
            // publish_id counts.
            Some(job) if job.publish_id.as_deref() == Some(publish_id) => Ok(Some(job)),
            Some(_) => {
                tracing::info!(job_id = %id, publish_id, "publish_id of an earlier attempt");
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Records the account the job's alias resolved to. Not a status
    /// change, so it has its own conditional update: the job must still be
    /// in `job.status`, and an account once set never changes (an upload
    /// must not move to another creator halfway).
    pub async fn set_account(
        &self,
        job: &Job,
        open_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let now = to_millis(now);
        let [(g2pk, g2pk_value), (g2sk, g2sk_value)] = account_index_values(job, open_id);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(&job.id)))
            .key(SK, s(JOB_SK))
            .update_expression(
                "SET open_id = :open_id, updated_at = :now, gsi2pk = :g2pk, gsi2sk = :g2sk",
            )
            .expression_attribute_values(g2pk, g2pk_value)
            .expression_attribute_values(g2sk, g2sk_value)
            .condition_expression(
                "#status = :status AND (attribute_not_exists(open_id) OR open_id = :open_id)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(job.status.as_str()))
            .expression_attribute_values(":open_id", s(open_id))
            .expression_attribute_values(":now", s(stamp(now)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match updated {
            Ok(out) => {
                tracing::info!(job_id = %job.id, open_id, "job account resolved");
                job_from_item(&job_pk(&job.id), &out.attributes.unwrap_or_default())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.conflict(&job.id, job.status).await
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Records that TikTok acknowledged every byte before `next_offset`.
    /// Only forward and only while `uploading`; a stale writer gets
    /// [`JobError::Conflict`].
    pub async fn save_progress(
        &self,
        id: &JobId,
        next_offset: u64,
        now: DateTime<Utc>,
    ) -> Result<(), JobError> {
        let now = to_millis(now);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET next_offset = :offset, updated_at = :now, gsi1sk = :gsk")
            .condition_expression(
                "#status = :uploading AND (attribute_not_exists(next_offset) OR next_offset <= :offset)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":uploading", s(JobStatus::Uploading.as_str()))
            .expression_attribute_values(":offset", n_u64(next_offset))
            .expression_attribute_values(":now", s(stamp(now)))
            .expression_attribute_values(":gsk", s(gsi_sk(now, id)))
            .send()
            .await;
        match updated {
            Ok(_) => {
                tracing::debug!(job_id = %id, next_offset, "upload progress saved");
                Ok(())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                let found = self.get(id).await?.map(|j| j.status);
                Err(JobError::Conflict {
                    id: id.clone(),
                    expected: JobStatus::Uploading,
                    found,
                })
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Moves `job` (as the caller read it) to `to`, conditional on its
    /// stored status still being `job.status`: of two writers acting on the
    /// same reading, the second gets [`JobError::Conflict`]. Returns the job
    /// as stored afterwards.
    ///
    /// Takes the job rather than its id because the per-account items that
    /// move with it (its draft slot, its queue entry) are keyed by its
    /// account and creation time. In the same transaction:
    /// - leaving the followed statuses (the unfinished ones and `inbox`, see
    ///   [`JobStatus::is_followed`]) removes `gsi1pk`/`gsi1sk`; staying in
    ///   them re-sorts the job by `not_before` (or now; `inbox` one
    ///   follow-up interval later);
    /// - a draft that stops holding a slot deletes it (freeing it for the
    ///   queue); a retry TikTok turns out to hold (`retry_wait` to
    ///   `processing` or `inbox`) puts it back;
    /// - entering `queued` adds a queue entry, leaving it deletes the entry;
    /// - going back to `claimed` clears the old attempt's `publish_id`,
    ///   upload URL, plan and offset: a retry is a new init, on purpose;
    /// - the upload URL is dropped in every status but `uploading`/`stuck`;
    /// - the init marker ([`Jobs::mark_init_started`]) is dropped in every
    ///   status but `stuck`, and only if `job` has the marker as stored (a
    ///   copy read before the job was marked gets [`JobError::Conflict`]).
    pub async fn transition(
        &self,
        job: &Job,
        to: JobStatus,
        changes: Changes,
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let from = job.status;
        check_transition(from, to, job.publish_id.is_some()).map_err(|source| {
            JobError::IllegalTransition {
                id: job.id.clone(),
                source,
            }
        })?;
        let now = to_millis(now);
        let open_id = changes.open_id.clone().or_else(|| job.open_id.clone());
        if to == JobStatus::Queued && open_id.is_none() {
            return Err(JobError::NoAccount { id: job.id.clone() });
        }

        let update = self.transition_update(job, to, &changes, now)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(open_id) = &open_id {
            let pk = drafts_pk(open_id);
            if job.post.is_draft() && from.holds_draft_slot() && !to.holds_draft_slot() {
                items.push(self.delete_item(&pk, &slot_sk(&job.id))?);
            }
            // A job waiting to retry that TikTok turns out to hold (processing
            // or in the inbox) counts against the cap again: its slot is put
            // back, even past five, since TikTok counts it whatever we think.
            // Not on a release to `claimed`: that is a new attempt, which
            // takes its slot (or is held) like any other before its init.
            if job.post.is_draft()
                && from == JobStatus::RetryWait
                && job.publish_id.is_some()
                && matches!(to, JobStatus::Processing | JobStatus::Inbox)
            {
                items.push(self.slot_put(&pk, &job.id, now)?);
            }
            if from == JobStatus::Queued {
                items.push(self.delete_item(&pk, &queue_sk(job))?);
            }
            if to == JobStatus::Queued {
                let put = Put::builder()
                    .table_name(&self.table)
                    .item(PK, s(&pk))
                    .item(SK, s(queue_sk(job)))
                    .item("job_id", s(job.id.as_str()))
                    .item("created_at", s(stamp(job.created_at)))
                    .item("open_id", s(open_id))
                    .item(GSI1_PK, s(HELD_INDEX))
                    .item(GSI1_SK, s(queue_sk(job)));
                // Copied onto the entry so that releasing reads only due jobs.
                let put = match changes.not_before {
                    Some(at) => put.item("not_before", s(stamp(to_millis(at)))),
                    None => put,
                }
                .build()
                .map_err(|e| self.build_error(e))?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
        }

        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        if let Err(err) = written {
            return Err(self.refused_transition(err, &job.id, from).await);
        }
        tracing::info!(
            job_id = %job.id,
            from = %from,
            to = %to,
            open_id = open_id.as_deref(),
            attempts = changes.attempts,
            error_code = changes.last_error.as_ref().map(|e| e.code.as_str()),
            tiktok_status = changes.tiktok_status.as_ref().map(PublishState::as_str),
            "job moved"
        );
        self.get(&job.id).await?.ok_or_else(|| JobError::Corrupt {
            key: job_pk(&job.id),
            detail: "the job vanished right after it was written".into(),
        })
    }

    /// The conditional update of the job item itself.
    fn transition_update(
        &self,
        job: &Job,
        to: JobStatus,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Result<Update, JobError> {
        let mut set: Vec<String> = vec!["#status = :to".into(), "updated_at = :now".into()];
        let mut remove: Vec<&str> = Vec::new();
        let mut values: Vec<(&str, AttributeValue)> = vec![
            (":to", s(to.as_str())),
            (":from", s(job.status.as_str())),
            (":now", s(stamp(now))),
        ];
        if to.is_followed() {
            let due = index_due(to, changes.not_before.map(to_millis), now);
            set.push("gsi1pk = :gpk".into());
            set.push("gsi1sk = :gsk".into());
            values.push((":gpk", s(gsi_pk(&job.id))));
            values.push((":gsk", s(gsi_sk(due, &job.id))));
        } else {
            remove.extend([GSI1_PK, GSI1_SK]);
        }
        match changes.not_before {
            Some(at) => {
                set.push("not_before = :not_before".into());
                values.push((":not_before", s(stamp(to_millis(at)))));
            }
            None => remove.push("not_before"),
        }
        if let Some(attempts) = changes.attempts {
            set.push("attempts = :attempts".into());
            values.push((":attempts", n(i64::from(attempts))));
        }
        if let Some(error) = &changes.last_error {
            set.push("error_code = :error_code".into());
            set.push("error_message = :error_message".into());
            values.push((":error_code", s(&error.code)));
            values.push((":error_message", s(&error.message)));
        }
        // A move back to `claimed` forgets TikTok's status (below), so it
        // records none.
        let tiktok_status = changes
            .tiktok_status
            .as_ref()
            .filter(|_| to != JobStatus::Claimed);
        if let Some(status) = tiktok_status {
            set.push("tiktok_status = :tiktok_status".into());
            values.push((":tiktok_status", s(status.as_str())));
            // Which attempt the status is about (see `Job::failure_recorded_for`).
            match &job.publish_id {
                Some(publish_id) => {
                    set.push("status_publish_id = :status_publish_id".into());
                    values.push((":status_publish_id", s(publish_id)));
                }
                None => remove.push("status_publish_id"),
            }
        }
        if let Some(reason) = changes
            .fail_reason
            .as_ref()
            .filter(|_| to != JobStatus::Claimed)
        {
            set.push("fail_reason = :fail_reason".into());
            values.push((":fail_reason", s(reason.as_str())));
        }
        if !changes.post_ids.is_empty() {
            set.push("post_ids = :post_ids".into());
            values.push((
                ":post_ids",
                AttributeValue::L(changes.post_ids.iter().map(|id| n_u64(*id)).collect()),
            ));
        }
        if !changes.share_urls.is_empty() {
            set.push("share_urls = :share_urls".into());
            values.push((
                ":share_urls",
                AttributeValue::L(changes.share_urls.iter().map(s).collect()),
            ));
        }
        if let Some(open_id) = &changes.open_id {
            set.push("open_id = :open_id".into());
            values.push((":open_id", s(open_id)));
            set.push("gsi2pk = :g2pk, gsi2sk = :g2sk".into());
            values.extend(account_index_values(job, open_id));
        }
        let mut condition = "#status = :from".to_owned();
        if changes.open_id.is_some() {
            // An upload never moves to another creator halfway.
            condition.push_str(" AND (attribute_not_exists(open_id) OR open_id = :open_id)");
        }
        if to == JobStatus::Claimed {
            // A new attempt: what TikTok said about the old one goes with its
            // publish_id, so a failure of the new one is never mistaken for it.
            remove.extend([
                "publish_id",
                "upload_url",
                "chunk_plan",
                "tiktok_status",
                "fail_reason",
                "status_publish_id",
            ]);
            set.push("next_offset = :zero".into());
            values.push((":zero", n(0)));
            // What the state machine checked on the caller's copy must hold
            // on the stored one: going back never forgets a live publish_id.
            if job.status == JobStatus::Stuck {
                condition.push_str(" AND attribute_not_exists(publish_id)");
            }
        } else if !matches!(to, JobStatus::Uploading | JobStatus::Stuck) {
            remove.push("upload_url");
        }
        // The init marker is evidence for the operator while the job is
        // flagged; any other move records what became of the init. Since it
        // says TikTok may hold the upload, a move that drops it is made only
        // on the marker the caller saw: a caller that read the job before
        // another invocation marked it (and sent its init) gets a conflict
        // instead of erasing the evidence, say by cancelling the job.
        if to != JobStatus::Stuck {
            remove.push("init_started_at");
            if matches!(job.status, JobStatus::Claimed | JobStatus::Stuck) {
                match job.init_started_at {
                    Some(at) => {
                        condition.push_str(" AND init_started_at = :init_started_at");
                        values.push((":init_started_at", s(stamp(at))));
                    }
                    None => condition.push_str(" AND attribute_not_exists(init_started_at)"),
                }
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(job_pk(&job.id)))
            .key(SK, s(JOB_SK))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status");
        for (placeholder, value) in values {
            update = update.expression_attribute_values(placeholder, value);
        }
        update.build().map_err(|e| self.build_error(e))
    }

    /// Turns a refused transition into [`JobError::Conflict`] (the job's own
    /// condition failed) or a store error.
    async fn refused_transition(
        &self,
        err: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
        id: &JobId,
        expected: JobStatus,
    ) -> JobError {
        // The job's own condition failed, or another transaction was writing
        // the same items at that moment: either way someone else moved it.
        let lost_race = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                let reasons = cancelled.cancellation_reasons();
                reasons
                    .first()
                    .and_then(|r| r.code())
                    .is_some_and(|c| c == "ConditionalCheckFailed")
                    || reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
            }
            _ => false,
        };
        if !lost_race {
            return self.store_error(&err);
        }
        let found = match self.get(id).await {
            Ok(job) => job.map(|j| j.status),
            Err(e) => return e,
        };
        tracing::warn!(
            job_id = %id,
            expected = %expected,
            found = found.map(JobStatus::as_str),
            "job changed meanwhile; transition refused"
        );
        JobError::Conflict {
            id: id.clone(),
            expected,
            found,
        }
    }

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
        for attempt in 1..=SLOT_ATTEMPTS {
            let version = match self.get_item(&pk, GUARD_SK).await? {
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
            let guard = Update::builder()
                .table_name(&self.table)
                .key(PK, s(&pk))
                .key(SK, s(GUARD_SK))
                .update_expression("SET version = :next, open_id = :open_id")
                .condition_expression("attribute_not_exists(pk) OR version = :version")
                .expression_attribute_values(":next", n_u64(version + 1))
                .expression_attribute_values(":version", n_u64(version))
                .expression_attribute_values(":open_id", s(open_id))
                .build()
                .map_err(|e| self.build_error(e))?;
            let taken_at = now.timestamp();
            let slot = Put::builder()
                .table_name(&self.table)
                .item(PK, s(&pk))
                .item(SK, s(slot_sk(&job.id)))
                .item("job_id", s(job.id.as_str()))
                .item("taken_at", n(taken_at))
                // TTL cleans up slots nobody freed; an hour after they stop
                // counting, since TTL deletion is lazy and readers filter anyway.
                .item(TTL, n(taken_at + PENDING_WINDOW.num_seconds() + 3600))
                .build()
                .map_err(|e| self.build_error(e))?;
            let claimed = ConditionCheck::builder()
                .table_name(&self.table)
                .key(PK, s(job_pk(&job.id)))
                .key(SK, s(JOB_SK))
                .condition_expression("#status = :claimed")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":claimed", s(JobStatus::Claimed.as_str()))
                .build()
                .map_err(|e| self.build_error(e))?;
            let written = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(guard).build())
                .transact_items(TransactWriteItem::builder().put(slot).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .condition_check(claimed)
                        .build(),
                )
                .send()
                .await;
            let err = match written {
                Ok(_) => {
                    tracing::info!(job_id = %job.id, open_id, pending = pending + 1, "draft slot taken");
                    return Ok(SlotDecision::Granted {
                        pending: pending + 1,
                    });
                }
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                err.as_service_error()
            else {
                return Err(self.store_error(&err));
            };
            let reasons: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            if reasons.get(2) == Some(&"ConditionalCheckFailed") {
                return self.conflict(&job.id, JobStatus::Claimed).await;
            }
            let retryable = !reasons.is_empty()
                && reasons.iter().all(|c| {
                    matches!(
                        *c,
                        "None" | "ConditionalCheckFailed" | "TransactionConflict"
                    )
                });
            if !retryable {
                return Err(JobError::Store {
                    table: self.table.clone(),
                    detail: format!("transaction cancelled: [{}]", reasons.join(", ")),
                });
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
            .query_prefix(&drafts_pk(open_id), QUEUED_PREFIX, Some(limit))
            .await?;
        let mut jobs = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = opt_text(&entry, SK).unwrap_or_default();
            let id = opt_text(&entry, "job_id")
                .and_then(|id| JobId::parse(&id).ok())
                .ok_or_else(|| JobError::Corrupt {
                    key: key.clone(),
                    detail: "job_id is missing or malformed".into(),
                })?;
            match self.get(&id).await? {
                Some(job) if job.status == JobStatus::Queued => jobs.push(job),
                other => tracing::warn!(
                    job_id = %id,
                    open_id,
                    status = other.map(|j| j.status.as_str()),
                    "queue entry of a job that is not queued"
                ),
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
            let key = opt_text(&entry, SK).unwrap_or_default();
            let id = opt_text(&entry, "job_id")
                .and_then(|id| JobId::parse(&id).ok())
                .ok_or_else(|| JobError::Corrupt {
                    key: key.clone(),
                    detail: "job_id is missing or malformed".into(),
                })?;
            match self.get(&id).await? {
                Some(job)
                    if job.status == JobStatus::Queued
                        && job.not_before.is_none_or(|at| at <= now) =>
                {
                    jobs.push(job)
                }
                Some(job) if job.status == JobStatus::Queued => {}
                other => tracing::warn!(
                    job_id = %id,
                    open_id,
                    status = other.map(|j| j.status.as_str()),
                    "queue entry of a job that is not queued"
                ),
            }
        }
        Ok(jobs)
    }

    /// The accounts with held uploads, from the index partition of queue
    /// entries: reads as many entries as there are held uploads, however
    /// large the backlog. Entries written before that partition existed are
    /// not in it (the checker also meets held jobs in its walk).
    pub async fn accounts_with_held_uploads(&self) -> Result<Vec<String>, JobError> {
        let mut accounts = std::collections::BTreeSet::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :held")
                .expression_attribute_values(":held", s(HELD_INDEX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.store_error(&e))?;
            for entry in page.items() {
                let open_id = opt_text(entry, "open_id").or_else(|| {
                    opt_text(entry, PK)
                        .and_then(|pk| pk.strip_prefix(DRAFTS_PREFIX).map(str::to_owned))
                });
                match open_id {
                    Some(open_id) => {
                        accounts.insert(open_id);
                    }
                    None => tracing::warn!(
                        key = opt_text(entry, SK).unwrap_or_default(),
                        "queue entry without an account; skipped"
                    ),
                }
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(accounts.into_iter().collect())
    }

    /// One page of the unfinished jobs in `shard` (0 to
    /// [`UNFINISHED_SHARDS`] - 1), due first: a Query of the GSI, never a
    /// scan. Index reads are eventually consistent; re-read a job with
    /// [`Jobs::get`] before acting on it.
    pub async fn unfinished(
        &self,
        shard: u8,
        limit: u32,
        start: Option<PageKey>,
    ) -> Result<UnfinishedPage, JobError> {
        if shard >= UNFINISHED_SHARDS {
            return Err(JobError::BadShard { shard });
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(format!("{UNFINISHED_PREFIX}{shard}")))
            // DynamoDB refuses a limit of 0.
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.map(|k| k.0))
            .send()
            .await
            .map_err(|e| self.store_error(&e))?;
        let jobs = out
            .items()
            .iter()
            .map(|item| job_from_item(&opt_text(item, PK).unwrap_or_default(), item))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes: u64 = out.items().iter().map(item_size).sum();
        Ok(UnfinishedPage {
            jobs,
            read_units: eventual_read_units(bytes),
            next: out
                .last_evaluated_key
                .filter(|k| !k.is_empty())
                .map(PageKey),
            scanned_count: u32::try_from(out.scanned_count).unwrap_or(0),
            unreadable: 0,
            consumed_units: None,
            index_due: Vec::new(),
        })
    }

    /// One page of the jobs in `shard` that are due at `now`, due first: the
    /// index's sort key starts with the due time, so the key condition
    /// itself stops at the first job that is not due and nothing later is
    /// read or billed. An item that cannot be read as a job is skipped and
    /// logged by key (never by value: it may hold an upload URL), and
    /// counted in [`UnfinishedPage::unreadable`]. DynamoDB's own read units
    /// are asked for and returned in [`UnfinishedPage::consumed_units`].
    pub async fn due_unfinished(
        &self,
        shard: u8,
        now: DateTime<Utc>,
        limit: u32,
        start: Option<PageKey>,
    ) -> Result<UnfinishedPage, JobError> {
        if shard >= UNFINISHED_SHARDS {
            return Err(JobError::BadShard { shard });
        }
        // `<stamp>#<id>`: every key of a job due at `now` sorts below
        // `<stamp of now>$` ('$' follows '#').
        let bound = format!("{}$", stamp(to_millis(now)));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk AND gsi1sk < :due")
            .expression_attribute_values(":pk", s(format!("{UNFINISHED_PREFIX}{shard}")))
            .expression_attribute_values(":due", s(bound))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.map(|k| k.0))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| self.store_error(&e))?;
        Ok(self.readable_page(out))
    }

    /// One page of the followed jobs of one account in `shard`: the index,
    /// filtered on `open_id` by DynamoDB (which still reads, and bills, the
    /// whole page). For what happens rarely, such as an authorization being
    /// removed; unreadable items are skipped as in [`Jobs::due_unfinished`].
    /// At most `limit` index entries are read (DynamoDB's `Limit` counts
    /// entries read, before the filter), so a page is bounded in time too.
    pub async fn followed_of_account(
        &self,
        open_id: &str,
        shard: u8,
        start: Option<PageKey>,
        limit: u32,
    ) -> Result<UnfinishedPage, JobError> {
        if shard >= UNFINISHED_SHARDS {
            return Err(JobError::BadShard { shard });
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .filter_expression("open_id = :open_id")
            .expression_attribute_values(":pk", s(format!("{UNFINISHED_PREFIX}{shard}")))
            .expression_attribute_values(":open_id", s(open_id))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.map(|k| k.0))
            .send()
            .await
            .map_err(|e| self.store_error(&e))?;
        Ok(self.readable_page(out))
    }

    fn readable_page(
        &self,
        out: aws_sdk_dynamodb::operation::query::QueryOutput,
    ) -> UnfinishedPage {
        let mut jobs = Vec::with_capacity(out.items().len());
        let mut index_due = Vec::with_capacity(out.items().len());
        let mut unreadable = 0;
        for item in out.items() {
            let key = opt_text(item, PK).unwrap_or_default();
            match job_from_item(&key, item) {
                Ok(job) => {
                    let due = opt_text(item, GSI1_SK)
                        .and_then(|sk| {
                            let stamp = sk.split('#').next()?.to_owned();
                            DateTime::parse_from_rfc3339(&stamp).ok()
                        })
                        .map_or_else(|| job.due_at(), |t| t.with_timezone(&Utc));
                    index_due.push(due);
                    jobs.push(job);
                }
                Err(err) => {
                    unreadable += 1;
                    tracing::error!(table = %self.table, key = %key, error = %err, "unreadable job in the index; skipped");
                }
            }
        }
        let bytes: u64 = out.items().iter().map(item_size).sum();
        UnfinishedPage {
            jobs,
            read_units: eventual_read_units(bytes),
            next: out
                .last_evaluated_key
                .filter(|k| !k.is_empty())
                .map(PageKey),
            scanned_count: u32::try_from(out.scanned_count).unwrap_or(0),
            unreadable,
            consumed_units: out.consumed_capacity.and_then(|c| c.capacity_units),
            index_due,
        }
    }

    /// Moves the job's place in the index to `at` without changing the job:
    /// after a check that leaves it where it was (still processing, rate
    /// limited, a passing error), so the next run asks about other jobs
    /// first instead of the same oldest ones. One small UpdateItem,
    /// conditional on the job being unchanged since it was read (a job
    /// someone moved has its place set by that move) and still indexed.
    /// Returns whether it was moved.
    pub async fn reschedule(&self, job: &Job, at: DateTime<Utc>) -> Result<bool, JobError> {
        let at = to_millis(at);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(&job.id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET gsi1sk = :gsk")
            .condition_expression(
                "#status = :status AND updated_at = :updated_at AND attribute_exists(gsi1pk)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(job.status.as_str()))
            .expression_attribute_values(":updated_at", s(stamp(job.updated_at)))
            .expression_attribute_values(":gsk", s(gsi_sk(at, &job.id)))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Takes a draft in the inbox out of the index: it is old enough that
    /// following it further would free no pending-draft slot. The job stays
    /// `inbox`; a webhook can still move it. Conditional on the job being
    /// unchanged since it was read. Returns whether it was taken out.
    pub async fn stop_following(&self, job: &Job) -> Result<bool, JobError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(job_pk(&job.id)))
            .key(SK, s(JOB_SK))
            .update_expression("REMOVE gsi1pk, gsi1sk")
            .condition_expression("#status = :inbox AND updated_at = :updated_at")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inbox", s(JobStatus::Inbox.as_str()))
            .expression_attribute_values(":updated_at", s(stamp(job.updated_at)))
            .send()
            .await;
        match updated {
            Ok(_) => {
                tracing::info!(job_id = %job.id, "draft in the inbox no longer followed");
                Ok(true)
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// A pending-draft slot item for `id`, taken at `now` (see
    /// [`Jobs::take_draft_slot`] for why slots are items).
    fn slot_put(
        &self,
        pk: &str,
        id: &JobId,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, JobError> {
        let taken_at = now.timestamp();
        let put = Put::builder()
            .table_name(&self.table)
            .item(PK, s(pk))
            .item(SK, s(slot_sk(id)))
            .item("job_id", s(id.as_str()))
            .item("taken_at", n(taken_at))
            .item(TTL, n(taken_at + PENDING_WINDOW.num_seconds() + 3600))
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The job ids whose slots count at `now`.
    async fn live_slots(&self, open_id: &str, now: DateTime<Utc>) -> Result<Vec<String>, JobError> {
        let cutoff = (now - PENDING_WINDOW).timestamp();
        let slots = self
            .query_prefix(&drafts_pk(open_id), SLOT_PREFIX, None)
            .await?;
        Ok(slots
            .iter()
            .filter(|slot| opt_i64(slot, "taken_at").is_some_and(|t| t > cutoff))
            .filter_map(|slot| opt_text(slot, "job_id"))
            .collect())
    }

    /// Items of partition `pk` whose sort key starts with `prefix`, in sort
    /// order, strongly consistent; all of them when `limit` is `None`.
    async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Item>, JobError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.store_error(&e))?;
            items.extend(page.items().iter().cloned());
            if let Some(limit) = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX))
                && items.len() >= limit
            {
                items.truncate(limit);
                break;
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(items)
    }

    fn delete_item(&self, pk: &str, sk: &str) -> Result<TransactWriteItem, JobError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .build()
            .map_err(|e| self.build_error(e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, JobError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.store_error(&e))?;
        Ok(out.item)
    }

    fn build_error(&self, err: impl std::error::Error) -> JobError {
        JobError::Store {
            table: self.table.clone(),
            detail: format!("cannot build the request: {err}"),
        }
    }

    /// The answer to a write whose condition failed: the job was not
    /// `expected` any more, and this says what it is now (or why that could
    /// not be read).
    async fn conflict<T>(&self, id: &JobId, expected: JobStatus) -> Result<T, JobError> {
        let found = self.get(id).await?.map(|j| j.status);
        Err(JobError::Conflict {
            id: id.clone(),
            expected,
            found,
        })
    }

    fn store_error<E: std::error::Error>(&self, err: &E) -> JobError {
        let detail = describe_sdk_error(err);
        tracing::error!(table = %self.table, error = %detail, "job store failed");
        JobError::Store {
            table: self.table.clone(),
            detail,
        }
    }
}

fn job_pk(id: &JobId) -> String {
    format!("{JOB_PREFIX}{id}")
}

fn gsi_pk(id: &JobId) -> String {
    format!("{UNFINISHED_PREFIX}{}", id.shard())
}

fn gsi_sk(due: DateTime<Utc>, id: &JobId) -> String {
    format!("{}#{id}", stamp(due))
}

/// Where a job in `status` sorts in the index after a move at `now`: its
/// `not_before` when it has one; a draft that reached the inbox one follow-up
/// interval later (it is polled slowly); anything else now.
fn index_due(
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

/// The account index's keys as the expression values `:g2pk` and `:g2sk`.
fn account_index_values(job: &Job, open_id: &str) -> [(&'static str, AttributeValue); 2] {
    let [(_, pk), (_, sk)] = super::by_account::index_keys(open_id, job.created_at, &job.id);
    [(":g2pk", pk), (":g2sk", sk)]
}

fn drafts_pk(open_id: &str) -> String {
    format!("{DRAFTS_PREFIX}{open_id}")
}

fn publish_pk(publish_id: &str) -> String {
    format!("{PUBLISH_PREFIX}{publish_id}")
}

/// Whether a transaction was cancelled because its first item's condition
/// failed (the others carry no condition, or their own handling).
fn first_condition_failed(
    err: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .first()
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed"),
        _ => false,
    }
}

fn slot_sk(id: &JobId) -> String {
    format!("{SLOT_PREFIX}{id}")
}

fn queue_sk(job: &Job) -> String {
    format!("{QUEUED_PREFIX}{}#{}", stamp(job.created_at), job.id)
}

/// RFC 3339, UTC, milliseconds: fixed width, so text order is time order.
pub(super) fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `at` cut to what [`stamp`] keeps, so a job read back equals the one
/// written.
fn to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn plan_json(plan: &ChunkPlan) -> Result<String, JobError> {
    serde_json::to_string(plan).map_err(|e| JobError::Corrupt {
        key: "chunk_plan".into(),
        detail: e.to_string(),
    })
}

fn n_u64(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn opt_i64(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn opt_u64(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// The job item as [`Jobs::claim`] writes it (without the index of
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
    if let Some(publish_id) = &job.publish_id {
        put("publish_id", s(publish_id));
    }
    if let Some(url) = &job.upload_url {
        put("upload_url", s(url.expose()));
    }
    // Serialising three integers cannot fail; `save_init` reports it anyway.
    if let Some(plan) = &job.chunk_plan
        && let Ok(json) = serde_json::to_string(plan)
    {
        put("chunk_plan", s(json));
    }
    put("next_offset", n_u64(job.next_offset));
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
        put(
            "post_ids",
            AttributeValue::L(job.post_ids.iter().map(|id| n_u64(*id)).collect()),
        );
    }
    if !job.share_urls.is_empty() {
        put(
            "share_urls",
            AttributeValue::L(job.share_urls.iter().map(s).collect()),
        );
    }
    put("created_at", s(stamp(job.created_at)));
    put("updated_at", s(stamp(job.updated_at)));
    if let Some(at) = job.not_before {
        put("not_before", s(stamp(at)));
    }
    if let Some(at) = job.init_started_at {
        put("init_started_at", s(stamp(at)));
    }
    item
}

/// Reads a job item (as stored, or an image from the table's stream); `key`
/// names it in errors. The one reader of job items.
pub fn job_from_item(key: &str, item: &Item) -> Result<Job, JobError> {
    let corrupt = |detail: String| JobError::Corrupt {
        key: key.to_owned(),
        detail,
    };
    let required = |name: &str| {
        opt_text(item, name).ok_or_else(|| corrupt(format!("{name} is missing or not a string")))
    };
    let number = |name: &str| -> Result<u64, JobError> {
        match item.get(name) {
            None => Ok(0),
            Some(_) => opt_u64(item, name).ok_or_else(|| corrupt(format!("{name} is not a count"))),
        }
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, JobError> {
        match opt_text(item, name) {
            None => Ok(None),
            Some(text) => DateTime::parse_from_rfc3339(&text)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| corrupt(format!("{name} is not a time"))),
        }
    };
    let required_time =
        |name: &str| time(name)?.ok_or_else(|| corrupt(format!("{name} is missing")));

    let id_text = required("job_id")?;
    let id = JobId::parse(&id_text).map_err(|e| corrupt(e.to_string()))?;
    let version = match (opt_text(item, "s3_version_id"), opt_text(item, "s3_etag")) {
        (Some(v), _) => ObjectVersion::VersionId(v),
        (None, Some(e)) => ObjectVersion::ETag(e),
        (None, None) => return Err(corrupt("neither s3_version_id nor s3_etag".into())),
    };
    let kind_text = required("kind")?;
    let kind =
        JobKind::parse(&kind_text).ok_or_else(|| corrupt(format!("unknown kind {kind_text:?}")))?;
    let post = match required("post_mode")?.as_str() {
        "draft" => PostTarget::Draft,
        "direct" => {
            let level = required("privacy_level")?;
            let privacy_level = level
                .parse::<PrivacyLevel>()
                .map_err(|_| corrupt(format!("unknown privacy_level {level:?}")))?;
            PostTarget::Direct { privacy_level }
        }
        other => return Err(corrupt(format!("unknown post_mode {other:?}"))),
    };
    let status_text = required("status")?;
    let status = JobStatus::parse(&status_text)
        .ok_or_else(|| corrupt(format!("unknown status {status_text:?}")))?;
    let chunk_plan = match opt_text(item, "chunk_plan") {
        None => None,
        Some(json) => Some(
            serde_json::from_str::<ChunkPlan>(&json)
                .map_err(|e| corrupt(format!("chunk_plan: {e}")))?,
        ),
    };
    let last_error = match (
        opt_text(item, "error_code"),
        opt_text(item, "error_message"),
    ) {
        (Some(code), message) => Some(LastError {
            code,
            message: message.unwrap_or_default(),
        }),
        (None, _) => None,
    };
    let post_ids = match item.get("post_ids") {
        None => Vec::new(),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::N(text) => text
                    .parse::<u64>()
                    .map_err(|_| corrupt("post_ids holds a non-integer".into())),
                _ => Err(corrupt("post_ids holds a non-number".into())),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(corrupt("post_ids is not a list".into())),
    };
    let share_urls = text_list(item, "share_urls").map_err(corrupt)?;
    Ok(Job {
        id,
        upload: Upload {
            bucket: required("s3_bucket")?,
            key: required("s3_key")?,
            version,
            size: number("object_size")?,
        },
        alias: opt_text(item, "alias"),
        open_id: opt_text(item, "open_id"),
        kind,
        post,
        caption: opt_text(item, "caption"),
        status,
        publish_id: opt_text(item, "publish_id"),
        upload_url: opt_text(item, "upload_url").map(Secret::new),
        chunk_plan,
        next_offset: number("next_offset")?,
        attempts: u32::try_from(number("attempts")?)
            .map_err(|_| corrupt("attempts is too large".into()))?,
        last_error,
        tiktok_status: opt_text(item, "tiktok_status").map(PublishState::from),
        fail_reason: opt_text(item, "fail_reason").map(FailReason::from),
        status_publish_id: opt_text(item, "status_publish_id"),
        post_ids,
        share_urls,
        created_at: required_time("created_at")?,
        updated_at: required_time("updated_at")?,
        not_before: time("not_before")?,
        init_started_at: time("init_started_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        job.publish_id = Some("v_inbox_file~v2.1".into());
        job.upload_url = Some(Secret::new(
            "https://upload.example.com/?token=SECRET-TOKEN",
        ));
        job.chunk_plan = Some(ChunkPlan::new(200_000_000, 10_000_000).unwrap());
        job.next_offset = 20_000_000;
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
        job.not_before = Some(now + TimeDelta::seconds(60));
        job.init_started_at = Some(now);
        job
    }

    #[test]
    fn items_round_trip() {
        let job = sample();
        let item = job_to_item(&job);
        assert_eq!(job_from_item("k", &item).unwrap(), job);
        let mut draft = sample();
        draft.post = PostTarget::Draft;
        draft.upload.version = ObjectVersion::ETag("abc".into());
        draft.upload_url = None;
        draft.chunk_plan = None;
        draft.post_ids.clear();
        assert_eq!(job_from_item("k", &job_to_item(&draft)).unwrap(), draft);
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
        let text = format!("{job:?} {:?}", Claim::Existing(job.clone()));
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
