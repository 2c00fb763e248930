//! The index of followed jobs (the unfinished ones and drafts in the inbox),
//! sharded by job id and sorted by when each is due, which the status
//! checker walks: reading it, moving a job's place in it, taking a job out
//! of it; and writing jobs with their index entries in bulk.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use chrono::{DateTime, Utc};

use super::{JobError, Jobs};
use crate::jobs::codec::{
    attr, gsi_pk, gsi_sk, index_due, job_from_item, job_key, job_to_item, publish_pointer, stamp,
    to_millis, unfinished_partition,
};
use crate::jobs::model::{Job, UNFINISHED_SHARDS};
use crate::jobs::state_machine::JobStatus;
use crate::table::{
    Checked, Cond, GSI1, GSI1_PK, GSI1_SK, Item, PK, Update, eventual_read_units, item_size,
    opt_text, s,
};

/// Where the next page of [`Jobs::unfinished`] starts. Opaque.
#[derive(Debug, Clone, PartialEq)]
pub struct PageKey(HashMap<String, AttributeValue>);

/// One page of unfinished jobs, due first.
#[derive(Debug, Clone)]
pub struct UnfinishedPage {
    /// The jobs that could be read.
    pub jobs: Vec<Job>,
    /// Where the next page starts, if there is one.
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

impl Jobs {
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
        check_shard(shard)?;
        let out = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(unfinished_partition(shard)))
            // DynamoDB refuses a limit of 0.
            .limit(page_limit(limit))
            .set_exclusive_start_key(start.map(|k| k.0))
            .send()
            .await
            .map_err(|e| self.table.error("query the unfinished jobs", &e))?;
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
        check_shard(shard)?;
        // `<stamp>#<id>`: every key of a job due at `now` sorts below
        // `<stamp of now>$` ('$' follows '#').
        let bound = format!("{}$", stamp(to_millis(now)));
        let out = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk AND gsi1sk < :due")
            .expression_attribute_values(":pk", s(unfinished_partition(shard)))
            .expression_attribute_values(":due", s(bound))
            .limit(page_limit(limit))
            .set_exclusive_start_key(start.map(|k| k.0))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| self.table.error("query the due jobs", &e))?;
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
        check_shard(shard)?;
        let out = self
            .table
            .client()
            .query()
            .table_name(self.table.name())
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .filter_expression("open_id = :open_id")
            .expression_attribute_values(":pk", s(unfinished_partition(shard)))
            .expression_attribute_values(":open_id", s(open_id))
            .limit(page_limit(limit))
            .set_exclusive_start_key(start.map(|k| k.0))
            .send()
            .await
            .map_err(|e| self.table.error("query an account's jobs", &e))?;
        Ok(self.readable_page(out))
    }

    fn readable_page(&self, out: QueryOutput) -> UnfinishedPage {
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
                    tracing::error!(table = %self.table.name(), key = %key, error = %err, "unreadable job in the index; skipped");
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
        let update = Update::new()
            .set(GSI1_SK, s(gsi_sk(to_millis(at), &job.id)))
            .when(unchanged_since_read(job))
            .when(Cond::exists(GSI1_PK));
        Ok(matches!(
            self.table.update(&job_key(&job.id), &update).await?,
            Checked::Done(_)
        ))
    }

    /// Takes a draft in the inbox out of the index: it is old enough that
    /// following it further would free no pending-draft slot. The job stays
    /// `inbox`; a webhook can still move it. Conditional on the job being
    /// unchanged since it was read. Returns whether it was taken out.
    pub async fn stop_following(&self, job: &Job) -> Result<bool, JobError> {
        let update = Update::new()
            .remove(GSI1_PK)
            .remove(GSI1_SK)
            .when(Cond::eq(attr::STATUS, s(JobStatus::Inbox.as_str())))
            .when(Cond::eq(attr::UPDATED_AT, s(stamp(job.updated_at))));
        match self.table.update(&job_key(&job.id), &update).await? {
            Checked::Done(_) => {
                tracing::info!(job_id = %job.id, "draft in the inbox no longer followed");
                Ok(true)
            }
            Checked::ConditionFailed => Ok(false),
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
            if let Some(publish_id) = job.publish_id() {
                items.push(publish_pointer(&job.id, publish_id));
            }
        }
        Ok(self.table.put_batch(items).await?)
    }
}

/// The job as read: same status, not written since.
fn unchanged_since_read(job: &Job) -> Cond {
    Cond::eq(attr::STATUS, s(job.status.as_str()))
        .and(Cond::eq(attr::UPDATED_AT, s(stamp(job.updated_at))))
}

fn check_shard(shard: u8) -> Result<(), JobError> {
    if shard >= UNFINISHED_SHARDS {
        return Err(JobError::BadShard { shard });
    }
    Ok(())
}

/// A page size DynamoDB takes (it refuses 0).
fn page_limit(limit: u32) -> i32 {
    i32::try_from(limit.max(1)).unwrap_or(i32::MAX)
}
