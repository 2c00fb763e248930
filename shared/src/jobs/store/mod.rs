//! Job records on the shared table, one file per kind of record:
//!
//! - `claims`: claiming an upload exactly once, and what an attempt saves
//!   before using it (the init marker, `publish_id`, upload URL, offset);
//! - `moves`: moving a job with optimistic concurrency, as
//!   [`super::transition`] plans it;
//! - `drafts`: the per-account pending-draft slots and the held queue;
//! - `index`: the index of followed jobs the status checker walks.
//!
//! How the items are laid out is [`super::codec`]'s business.

use std::fmt;

use chrono::{DateTime, Utc};

use super::checker_state::CheckerState;
use super::codec::{job_from_item, job_key, job_pk};
use super::model::{Job, JobId, UNFINISHED_SHARDS};
use super::state_machine::{IllegalTransition, JobStatus};
use crate::table::{Table, TableError, Transacted};

mod claims;
mod drafts;
mod index;
mod moves;
mod sources;

pub use drafts::{MAX_PENDING_DRAFTS, PENDING_WINDOW, SlotDecision};
pub use index::{PageKey, UnfinishedPage};

/// Why a job store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Someone else moved the job first (optimistic concurrency): re-read it
    /// and decide again.
    #[error("job {id} is no longer {expected} (it is {})", found.map_or("gone", JobStatus::as_str))]
    Conflict {
        /// The job.
        id: JobId,
        /// The status the caller read and meant to move from.
        expected: JobStatus,
        /// The status it has now; `None` when the job is gone.
        found: Option<JobStatus>,
    },
    /// TikTok already has this upload: resume it, never init again.
    #[error("job {id} was already initialised with TikTok (publish_id {publish_id})")]
    AlreadyInitialised {
        /// The job.
        id: JobId,
        /// The `publish_id` its init already got.
        publish_id: String,
    },
    /// An init was sent for this job and its answer never recorded: TikTok
    /// may have the upload. Only an operator can tell (the creator's inbox).
    #[error("job {id} sent an init at {since} whose answer was never recorded")]
    InitInDoubt {
        /// The job.
        id: JobId,
        /// When that init was sent.
        since: DateTime<Utc>,
    },
    /// The state machine does not allow the move; nothing was written.
    #[error("job {id}: {source}")]
    IllegalTransition {
        /// The job.
        id: JobId,
        /// The move and the rule it breaks.
        #[source]
        source: IllegalTransition,
    },
    /// No job has this id.
    #[error("no job {id}")]
    NotFound {
        /// The id asked for.
        id: JobId,
    },
    /// Slots and the queue are per account; the job's alias is unresolved.
    #[error("job {id} has no resolved TikTok account yet")]
    NoAccount {
        /// The job.
        id: JobId,
    },
    /// Other uploads of the account kept winning the race for its draft
    /// slots, through every retry; the job is unchanged.
    #[error("too many uploads for account {open_id} are taking draft slots at once; try again")]
    Busy {
        /// The account whose slots were contended.
        open_id: String,
    },
    /// A shard number of the unfinished index at or past
    /// [`UNFINISHED_SHARDS`].
    #[error("there is no shard {shard} of unfinished jobs (there are {UNFINISHED_SHARDS})")]
    BadShard {
        /// The shard asked for.
        shard: u8,
    },
    /// Names the attribute, never its value (it may be the upload URL).
    #[error("the stored item {key} is unreadable: {detail}")]
    Corrupt {
        /// The item's partition key (`JOB#<id>`, …).
        key: String,
        /// What is missing or wrong.
        detail: String,
    },
    /// DynamoDB could not be reached, or refused the request.
    #[error("cannot reach the job store (table {table}): {detail}")]
    Store {
        /// The table's name.
        table: String,
        /// DynamoDB's error, described.
        detail: String,
    },
}

impl From<TableError> for JobError {
    fn from(err: TableError) -> Self {
        Self::Store {
            table: err.table,
            detail: err.detail,
        }
    }
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
    /// The job, new or found.
    pub fn job(&self) -> &Job {
        match self {
            Self::New(job) | Self::Existing(job) => job,
        }
    }

    /// Whether this call created the job.
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

/// The job store.
#[derive(Debug, Clone)]
pub struct Jobs {
    table: Table,
}

impl Jobs {
    /// The jobs in table `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    /// The status checker's state item, on the same table.
    pub fn checker_state(&self) -> CheckerState {
        CheckerState::new(self.table.clone())
    }

    /// The job, if any (strongly consistent).
    pub async fn get(&self, id: &JobId) -> Result<Option<Job>, JobError> {
        let key = job_key(id);
        match self.table.get(&key).await? {
            Some(item) => job_from_item(&key.pk, &item).map(Some),
            None => Ok(None),
        }
    }

    /// The job, which must exist (it was just written).
    async fn reread(&self, id: &JobId) -> Result<Job, JobError> {
        self.get(id).await?.ok_or_else(|| JobError::Corrupt {
            key: job_pk(id),
            detail: "the job vanished right after it was written".into(),
        })
    }

    /// A transaction cancelled for another reason than the ones its caller
    /// handles.
    fn refused(&self, written: &Transacted) -> JobError {
        let reasons = match written {
            Transacted::Done => String::new(),
            Transacted::Cancelled(reasons) => reasons.join(", "),
        };
        JobError::Store {
            table: self.table.name().to_owned(),
            detail: format!("transaction cancelled: [{reasons}]"),
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
}

/// A job written at `now`, as the store writes times.
fn at(now: DateTime<Utc>) -> DateTime<Utc> {
    super::codec::to_millis(now)
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
