//! Claiming an upload exactly once, and what an attempt saves before it
//! uses it: the init marker before the request, TikTok's `publish_id` (with
//! the upload URL and plan) before anything else is done with it, the
//! offset after every chunk, the account once resolved.

use chrono::{DateTime, Utc};

use super::{Claim, JobError, Jobs, at};
use crate::jobs::by_account::index_keys;
use crate::jobs::codec::{
    attr, gsi_pk, gsi_sk, job_from_item, job_key, job_to_item, plan_json, publish_key,
    publish_pointer, stamp,
};
use crate::jobs::model::{FileTransfer, Job, JobId, LastError, NewJob, UploadAttempt};
use crate::jobs::state_machine::JobStatus;
use crate::secret::Secret;
use crate::table::{
    Checked, Cond, GSI1_PK, GSI1_SK, Transacted, Update, Write, n_u64, opt_text, s, texts,
};
use crate::tiktok::ChunkPlan;

impl Jobs {
    /// Claims an upload: creates its job in `claimed` unless the job exists.
    /// A conditional put on the id, which is derived from the upload, so of
    /// any number of concurrent or repeated claims exactly one is
    /// [`Claim::New`].
    pub async fn claim(&self, new: NewJob, now: DateTime<Utc>) -> Result<Claim, JobError> {
        let job = Job::new(new, at(now));
        let mut item = job_to_item(&job);
        item.insert(GSI1_PK.into(), s(gsi_pk(&job.id)));
        item.insert(GSI1_SK.into(), s(gsi_sk(job.due_at(), &job.id)));
        match self.table.put(item, Some(&Cond::no_item())).await? {
            Checked::Done(()) => {
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
            Checked::ConditionFailed => {
                let existing = self.get(&job.id).await?.ok_or_else(|| JobError::Corrupt {
                    key: job_key(&job.id).pk,
                    detail: "the job refused the claim but cannot be read".into(),
                })?;
                tracing::info!(
                    job_id = %existing.id,
                    status = %existing.status,
                    "upload was claimed before"
                );
                Ok(Claim::Existing(existing))
            }
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
        let now = at(now);
        let mut update = Update::new()
            .set(attr::STATUS, s(JobStatus::Uploading.as_str()))
            .set(attr::PUBLISH_ID, s(publish_id))
            .set(attr::NEXT_OFFSET, n_u64(0))
            .set(attr::UPDATED_AT, s(stamp(now)))
            .set(GSI1_PK, s(gsi_pk(id)))
            .set(GSI1_SK, s(gsi_sk(now, id)))
            // TikTok answered with a publish_id: the init is no longer in
            // doubt, and what TikTok said about an earlier attempt is not
            // about this one.
            .remove(attr::INIT_STARTED_AT)
            .remove(attr::TIKTOK_STATUS)
            .remove(attr::FAIL_REASON)
            .remove(attr::STATUS_PUBLISH_ID)
            .when(Cond::eq(attr::STATUS, s(JobStatus::Claimed.as_str())))
            .when(Cond::absent(attr::PUBLISH_ID));
        if let Some(url) = upload_url {
            update = update.set(attr::UPLOAD_URL, s(url.expose()));
        }
        if let Some(plan) = plan {
            update = update.set(attr::CHUNK_PLAN, s(plan_json(plan)?));
        }
        // Webhooks name the upload by publish_id only: the pointer is
        // written with the job, so every job TikTok knows can be found.
        let written = self
            .table
            .transact(vec![
                Write::Update(job_key(id), update),
                Write::Put(publish_pointer(id, publish_id), None),
            ])
            .await?;
        if written == Transacted::Done {
            tracing::info!(
                job_id = %id,
                publish_id,
                has_upload_url = upload_url.is_some(),
                chunks = plan.map(|p| p.total_chunk_count),
                "init saved"
            );
            return self
                .get(id)
                .await?
                .ok_or_else(|| JobError::NotFound { id: id.clone() });
        }
        if !written.condition_failed(0) {
            return Err(self.refused(&written));
        }
        match self.get(id).await? {
            None => Err(JobError::NotFound { id: id.clone() }),
            Some(job) => match job.publish_id() {
                Some(saved) => {
                    tracing::warn!(job_id = %id, publish_id = %saved, "second init refused");
                    Err(JobError::AlreadyInitialised {
                        id: id.clone(),
                        publish_id: saved.to_owned(),
                    })
                }
                None => Err(JobError::Conflict {
                    id: id.clone(),
                    expected: JobStatus::Claimed,
                    found: Some(job.status),
                }),
            },
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
        let now = at(now);
        let update = Update::new()
            .set(attr::INIT_STARTED_AT, s(stamp(now)))
            .set(attr::UPDATED_AT, s(stamp(now)))
            .set(GSI1_SK, s(gsi_sk(now, &job.id)))
            .when(Cond::eq(attr::STATUS, s(JobStatus::Claimed.as_str())))
            .when(Cond::absent(attr::PUBLISH_ID))
            .when(Cond::absent(attr::INIT_STARTED_AT));
        let key = job_key(&job.id);
        match self.table.update(&key, &update).await? {
            Checked::Done(item) => {
                tracing::info!(job_id = %job.id, "init started");
                job_from_item(&key.pk, &item)
            }
            Checked::ConditionFailed => match self.get(&job.id).await? {
                None => Err(JobError::NotFound { id: job.id.clone() }),
                Some(found) => match found.attempt {
                    UploadAttempt::Pulled { publish_id }
                    | UploadAttempt::Transfer(FileTransfer { publish_id, .. }) => {
                        Err(JobError::AlreadyInitialised {
                            id: job.id.clone(),
                            publish_id,
                        })
                    }
                    UploadAttempt::InitSent { at } => Err(JobError::InitInDoubt {
                        id: job.id.clone(),
                        since: at,
                    }),
                    UploadAttempt::NotStarted => Err(JobError::Conflict {
                        id: job.id.clone(),
                        expected: JobStatus::Claimed,
                        found: Some(found.status),
                    }),
                },
            },
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
        let update = Update::new()
            .set(attr::ERROR_CODE, s(&error.code))
            .set(attr::ERROR_MESSAGE, s(&error.message))
            .set(attr::UPDATED_AT, s(stamp(at(now))))
            .when(Cond::eq(attr::STATUS, s(job.status.as_str())));
        let key = job_key(&job.id);
        match self.table.update(&key, &update).await? {
            Checked::Done(item) => {
                tracing::info!(job_id = %job.id, status = %job.status, error_code = %error.code, "job error recorded");
                job_from_item(&key.pk, &item)
            }
            Checked::ConditionFailed => self.conflict(&job.id, job.status).await,
        }
    }

    /// Records what the creator should know about the media (the video
    /// probe's notes), replacing any earlier ones. Not a status change:
    /// conditional on the job still being in `job.status`.
    pub async fn set_notes(
        &self,
        job: &Job,
        notes: &[String],
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        let update = Update::new()
            .set(attr::NOTES, texts(notes))
            .set(attr::UPDATED_AT, s(stamp(at(now))))
            .when(Cond::eq(attr::STATUS, s(job.status.as_str())));
        let key = job_key(&job.id);
        match self.table.update(&key, &update).await? {
            Checked::Done(item) => job_from_item(&key.pk, &item),
            Checked::ConditionFailed => self.conflict(&job.id, job.status).await,
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
        let mut update = Update::new()
            .set(attr::OPEN_ID, s(open_id))
            .set(attr::UPDATED_AT, s(stamp(at(now))))
            .when(Cond::eq(attr::STATUS, s(job.status.as_str())))
            .when(Cond::absent(attr::OPEN_ID).or(Cond::eq(attr::OPEN_ID, s(open_id))));
        // The job joins its account's list (the creator's page).
        for (name, value) in index_keys(open_id, job.created_at, &job.id) {
            update = update.set(&name, value);
        }
        let key = job_key(&job.id);
        match self.table.update(&key, &update).await? {
            Checked::Done(item) => {
                tracing::info!(job_id = %job.id, open_id, "job account resolved");
                job_from_item(&key.pk, &item)
            }
            Checked::ConditionFailed => self.conflict(&job.id, job.status).await,
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
        let now = at(now);
        let update = Update::new()
            .set(attr::NEXT_OFFSET, n_u64(next_offset))
            .set(attr::UPDATED_AT, s(stamp(now)))
            .set(GSI1_SK, s(gsi_sk(now, id)))
            .when(Cond::eq(attr::STATUS, s(JobStatus::Uploading.as_str())))
            .when(
                Cond::absent(attr::NEXT_OFFSET).or(Cond::le(attr::NEXT_OFFSET, n_u64(next_offset))),
            );
        match self.table.update(&job_key(id), &update).await? {
            Checked::Done(_) => {
                tracing::debug!(job_id = %id, next_offset, "upload progress saved");
                Ok(())
            }
            Checked::ConditionFailed => self.conflict(id, JobStatus::Uploading).await,
        }
    }

    /// The job TikTok knows by `publish_id` (webhooks name nothing else).
    pub async fn by_publish_id(&self, publish_id: &str) -> Result<Option<Job>, JobError> {
        let key = publish_key(publish_id);
        let Some(pointer) = self.table.get(&key).await? else {
            return Ok(None);
        };
        let id = opt_text(&pointer, "job_id")
            .and_then(|id| JobId::parse(&id).ok())
            .ok_or_else(|| JobError::Corrupt {
                key: key.pk.clone(),
                detail: "job_id is missing or malformed".into(),
            })?;
        match self.get(&id).await? {
            // The pointer outlives a retry's new init; only the job's current
            // publish_id counts.
            Some(job) if job.publish_id() == Some(publish_id) => Ok(Some(job)),
            Some(_) => {
                tracing::info!(job_id = %id, publish_id, "publish_id of an earlier attempt");
                Ok(None)
            }
            None => Ok(None),
        }
    }
}
