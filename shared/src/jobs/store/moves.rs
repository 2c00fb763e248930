//! Moving a job: the plan [`crate::jobs::transition`] makes, written as one
//! transaction with the account items that move with it; and the post ids a
//! published job learns afterwards.

use chrono::{DateTime, Utc};

use super::drafts::slot_item;
use super::{JobError, Jobs, at};
use crate::jobs::codec::{
    HELD_INDEX, attr, drafts_pk, job_from_item, job_key, post_ids, queue_sk, stamp, time,
};
use crate::jobs::model::Job;
use crate::jobs::state_machine::JobStatus;
use crate::jobs::transition::{Changes, QueueChange, Refusal, SlotChange, plan};
use crate::table::{
    Checked, Cond, GSI1_PK, GSI1_SK, Item, Key, PK, SK, Transacted, Update, Write, s, texts,
};
use crate::tiktok::PublishState;

impl Jobs {
    /// Moves `job` (as the caller read it) to `to`, conditional on its
    /// stored status still being `job.status`: of two writers acting on the
    /// same reading, the second gets [`JobError::Conflict`]. Returns the job
    /// as stored afterwards.
    ///
    /// Takes the job rather than its id because the per-account items that
    /// move with it (its draft slot, its queue entry) are keyed by its
    /// account and creation time. What the move writes is
    /// [`crate::jobs::transition`]'s to decide; this writes it, all in one
    /// transaction.
    pub async fn transition(
        &self,
        job: &Job,
        to: JobStatus,
        changes: Changes,
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let now = at(now);
        let planned = plan(job, to, &changes, now).map_err(|refusal| match refusal {
            Refusal::Illegal(source) => JobError::IllegalTransition {
                id: job.id.clone(),
                source,
            },
            Refusal::NoAccount => JobError::NoAccount { id: job.id.clone() },
        })?;
        let mut writes = vec![Write::Update(job_key(&job.id), planned.job)];
        if let Some(open_id) = &planned.open_id {
            let pk = drafts_pk(open_id);
            match planned.slot {
                SlotChange::Keep => {}
                SlotChange::Free => writes.push(Write::Delete(
                    Key::new(&pk, crate::jobs::codec::slot_sk(&job.id)),
                    None,
                )),
                SlotChange::Retake => writes.push(Write::Put(slot_item(&pk, &job.id, now), None)),
            }
            match planned.queue {
                QueueChange::Keep => {}
                QueueChange::Leave => {
                    writes.push(Write::Delete(Key::new(&pk, queue_sk(job)), None))
                }
                QueueChange::Enter { not_before } => {
                    writes.push(Write::Put(queue_entry(job, &pk, open_id, not_before), None))
                }
            }
        }
        let written = self.table.transact(writes).await?;
        if written != Transacted::Done {
            // The job's own condition failed, or another transaction was
            // writing the same items at that moment: either way someone
            // else moved it.
            if !(written.condition_failed(0) || written.conflicted()) {
                return Err(self.refused(&written));
            }
            let found = self.get(&job.id).await?.map(|j| j.status);
            tracing::warn!(
                job_id = %job.id,
                expected = %job.status,
                found = found.map(JobStatus::as_str),
                "job changed meanwhile; transition refused"
            );
            return Err(JobError::Conflict {
                id: job.id.clone(),
                expected: job.status,
                found,
            });
        }
        tracing::info!(
            job_id = %job.id,
            from = %job.status,
            to = %to,
            open_id = planned.open_id.as_deref(),
            attempts = changes.attempts,
            error_code = changes.last_error.as_ref().map(|e| e.code.as_str()),
            tiktok_status = changes.tiktok_status.as_ref().map(PublishState::as_str),
            "job moved"
        );
        self.reread(&job.id).await
    }

    /// Adds post ids to a job that is `published` already (TikTok sends
    /// `publicly_available`, with the id, after `complete`, once moderation is
    /// done). Only while the job is `published` and its list is what the
    /// caller read, so concurrent deliveries cannot drop each other's ids.
    /// Adds the posts' public links the same way. Returns the job as stored.
    pub async fn add_post_ids_with_links(
        &self,
        job: &Job,
        ids: &[u64],
        links: &[String],
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let mut all_ids = job.post_ids.clone();
        for id in ids {
            if !all_ids.contains(id) {
                all_ids.push(*id);
            }
        }
        let mut all_links = job.share_urls.clone();
        for link in links {
            if !all_links.contains(link) {
                all_links.push(link.clone());
            }
        }
        if all_ids == job.post_ids && all_links == job.share_urls {
            return Ok(job.clone());
        }
        let unchanged = if job.post_ids.is_empty() {
            Cond::absent(attr::POST_IDS).or(Cond::size_eq(attr::POST_IDS, 0))
        } else {
            Cond::eq(attr::POST_IDS, post_ids(&job.post_ids))
        };
        let update = Update::new()
            .set(attr::POST_IDS, post_ids(&all_ids))
            .set(attr::SHARE_URLS, texts(&all_links))
            .set(attr::UPDATED_AT, s(stamp(at(now))))
            .when(Cond::eq(attr::STATUS, s(JobStatus::Published.as_str())))
            .when(unchanged);
        let key = job_key(&job.id);
        match self.table.update(&key, &update).await? {
            Checked::Done(item) => {
                tracing::info!(job_id = %job.id, post_ids = ?all_ids, "post ids recorded");
                job_from_item(&key.pk, &item)
            }
            Checked::ConditionFailed => self.conflict(&job.id, JobStatus::Published).await,
        }
    }
}

/// The entry of a held job in its account's queue, sorted by the job's
/// creation time, and in the index partition of held uploads.
fn queue_entry(job: &Job, pk: &str, open_id: &str, not_before: Option<DateTime<Utc>>) -> Item {
    let mut item = Item::from([
        (PK.to_owned(), s(pk)),
        (SK.to_owned(), s(queue_sk(job))),
        ("job_id".to_owned(), s(job.id.as_str())),
        ("created_at".to_owned(), s(stamp(job.created_at))),
        ("open_id".to_owned(), s(open_id)),
        (GSI1_PK.to_owned(), s(HELD_INDEX)),
        (GSI1_SK.to_owned(), s(queue_sk(job))),
    ]);
    // Copied onto the entry so that releasing reads only due jobs.
    if let Some(at) = not_before {
        item.insert("not_before".to_owned(), time(at));
    }
    item
}
