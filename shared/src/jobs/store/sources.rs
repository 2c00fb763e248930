//! What a job reads besides its own object, pinned once: a slideshow's
//! image versions, recorded when the job starts.

use chrono::{DateTime, Utc};

use super::{JobError, Jobs, at};
use crate::jobs::codec::{attr, image_versions, job_from_item, job_key, stamp};
use crate::jobs::model::{Job, ObjectVersion};
use crate::table::{Checked, Cond, Update, s};

impl Jobs {
    /// Records the versions of the job's images, unless some were recorded
    /// already: the first record wins, so every later attempt reads what
    /// was there when the job started. Returns the job as stored (with the
    /// versions that won). Conditional on the job still being in
    /// `job.status`.
    pub async fn record_image_versions(
        &self,
        job: &Job,
        versions: &[ObjectVersion],
        now: DateTime<Utc>,
    ) -> Result<Job, JobError> {
        if !job.image_versions.is_empty() || versions.is_empty() {
            return Ok(job.clone());
        }
        let update = Update::new()
            .set(attr::IMAGE_VERSIONS, image_versions(versions))
            .set(attr::UPDATED_AT, s(stamp(at(now))))
            .when(Cond::eq(attr::STATUS, s(job.status.as_str())))
            .when(Cond::absent(attr::IMAGE_VERSIONS));
        let key = job_key(&job.id);
        match self.table.update(&key, &update).await? {
            Checked::Done(item) => {
                tracing::info!(job_id = %job.id, images = versions.len(), "image versions recorded");
                job_from_item(&key.pk, &item)
            }
            Checked::ConditionFailed => match self.get(&job.id).await? {
                Some(stored) if stored.status == job.status => Ok(stored),
                _ => self.conflict(&job.id, job.status).await,
            },
        }
    }
}
