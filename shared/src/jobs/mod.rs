//! Jobs: one per upload, from the S3 event to the creator's TikTok drafts.
//!
//! - [`model`]: what a job holds, and its id (derived from the upload, so a
//!   redelivered event finds the same job);
//! - [`state_machine`]: the statuses, the legal moves, and what TikTok's
//!   answers and errors mean for a job; plain code, no I/O;
//! - [`transition`]: what a move writes (fields set and cleared, conditions,
//!   the account's slot and queue); plain code, no I/O;
//! - [`codec`]: how a job and its companion items are laid out on the table;
//! - [`store`]: the records on the shared DynamoDB table, with exactly-once
//!   claims, "never init twice", optimistic concurrency, the index of
//!   unfinished jobs and the per-account pending-draft slots and queue;
//! - [`checker_state`]: the status checker's one state item (until when its
//!   last run sent status requests);
//! - [`by_account`]: one account's jobs, newest first (the creator's page).

pub mod by_account;
pub mod checker_state;
pub mod codec;
pub mod model;
pub mod state_machine;
pub mod store;
pub mod transition;

pub use checker_state::CheckerState;
pub use codec::{job_from_item, job_to_item};
pub use model::{
    BadJobId, FileTransfer, Job, JobId, JobKind, LOCAL_FILE_BUCKET, LastError, NewJob,
    ObjectVersion, PostTarget, UNFINISHED_SHARDS, Upload, UploadAttempt,
};
pub use state_machine::{
    ALL_STATUSES, Decision, INBOX_FOLLOW_EVERY, INBOX_FOLLOW_FOR, IllegalTransition,
    JobRetryPolicy, JobStatus, PENDING_SHARE_WAIT, RECONNECT_MESSAGE, RetryWaitNews, STUCK_AFTER,
    Step, after_error, after_job_status, after_retry_wait_status, after_status, check_transition,
    is_stuck, pending_share_wait, upload_incomplete,
};
pub use store::{
    Claim, JobError, Jobs, MAX_PENDING_DRAFTS, PENDING_WINDOW, PageKey, SlotDecision,
    UnfinishedPage,
};
pub use transition::Changes;
