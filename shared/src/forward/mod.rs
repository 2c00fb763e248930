//! The upload use case: one upload, from its claim to TikTok's drafts. The
//! upload function (an S3 object) and the CLI (a local file) both run it, so
//! both keep every guarantee.
//!
//! The order is what makes it safe to run twice: claim the upload, take the
//! job's lease (one worker per job), re-read the job under it and pick up
//! from what it saved, resolve the account, check the media (a video's
//! headers against TikTok's limits), take a
//! pending-draft slot, get a token, mark the init as started, init once and
//! save what init returned before anything else, then send the bytes (or
//! let TikTok pull them) and hand the job over to the status checker. An
//! init whose answer is lost is never repeated by itself: the job is flagged
//! for the operator.
//!
//! - [`outcome`]: what became of an upload, and the passing failure that
//!   asks for it to be tried again;
//! - [`video`]: a video, by FILE_UPLOAD or PULL_FROM_URL, from any
//!   [`VideoFile`];
//! - [`photos`]: a photo post, from any [`PhotoSet`];
//! - [`probe`]: a video's headers against TikTok's limits, before anything
//!   is spent on it;
//! - `steps`: the steps both share (account, slot, token, TikTok calls,
//!   recording refusals and failures); `init`: init once.
//!
//! Callers keep what is theirs: the function its S3 events, keys, captions
//! from metadata and the server-side copy for pulls; the CLI its arguments,
//! progress bars and exit codes.

use std::time::Duration;

use crate::accounts::Accounts;
use crate::aws::AwsClients;
use crate::clock::Clock;
use crate::jobs::{
    Changes, Claim, Job, JobRetryPolicy, JobStatus, Jobs, LastError, NewJob, Upload,
};
use crate::lease::{HeldLease, LeaseTable};
use crate::tiktok::TikTokClient;
use crate::tiktok::chunk_plan::DEFAULT_CHUNK_SIZE;
use crate::tiktok::upload::{CHUNK_TIMEOUT, ChunkRetryPolicy, Uploader};
use crate::tokens::{SecretsManagerTokenStore, TokenManager};

mod init;
pub mod outcome;
pub mod photos;
pub mod probe;
mod steps;
pub mod video;

pub use outcome::{Hitch, Outcome, Retry, retry};
pub use photos::{PhotoSet, PhotoText};
pub use probe::{Probed, inspect_video};
pub use video::VideoFile;

use outcome::{Flow, Stop, finish};

/// How long one worker may hold a job: longer than the upload function's
/// timeout, so that a crashed worker's job is free for the redelivery after
/// it (the queue's visibility timeout in template.yaml is longer still). The
/// CLI holds jobs as long, so the two never work on one job at once.
pub const JOB_LEASE: Duration = Duration::from_secs(16 * 60);

/// Who releases jobs that wait (held for a free draft slot, or waiting to
/// retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingJobs {
    /// The status checker, through the upload queue: a delivery that finds
    /// such a job leaves it (the upload function).
    ForTheChecker,
    /// Whoever runs the upload again (the CLI: nothing else can re-send a
    /// local file).
    ResumeHere,
}

/// The stores, clients and settings an upload needs, built once per cold
/// start (or CLI run).
#[derive(Debug, Clone)]
pub struct Forwarder {
    /// The job store.
    pub jobs: Jobs,
    /// The account store.
    pub accounts: Accounts,
    /// Job leases.
    pub leases: LeaseTable,
    /// Access tokens, refreshed under a lease.
    pub tokens: TokenManager<SecretsManagerTokenStore>,
    /// TikTok's API.
    pub tiktok: TikTokClient,
    /// Sends chunks to TikTok's upload host.
    pub uploader: Uploader,
    /// Now.
    pub clock: Clock,
    /// How a job's failures are retried.
    pub job_retry: JobRetryPolicy,
    /// The preferred FILE_UPLOAD chunk size.
    pub chunk_size: u64,
    /// Who releases waiting jobs.
    pub waiting_jobs: WaitingJobs,
}

/// Why a [`Forwarder`] could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the upload HTTP client: {0}")]
pub struct BuildError(String);

impl Forwarder {
    /// The forwarder a deployment uses: stores on `table`, token secrets
    /// under `secrets_prefix`, chunks of `chunk_size` sent with the default
    /// retry policy and a timeout per chunk.
    pub fn for_deployment(
        aws: &AwsClients,
        tiktok: TikTokClient,
        table: &str,
        secrets_prefix: &str,
        clock: Clock,
    ) -> Result<Self, BuildError> {
        Ok(Self {
            jobs: Jobs::new(aws.dynamodb.clone(), table),
            accounts: Accounts::new(aws.dynamodb.clone(), table),
            leases: LeaseTable::new(aws.dynamodb.clone(), table),
            tokens: TokenManager::for_deployment(aws, tiktok.clone(), secrets_prefix, table)
                .with_clock(clock.clone()),
            uploader: chunk_uploader(ChunkRetryPolicy::default(), &tiktok)?,
            tiktok,
            clock,
            job_retry: JobRetryPolicy::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            waiting_jobs: WaitingJobs::ForTheChecker,
        })
    }

    /// Another retry policy for chunk PUTs (tests use one without waits).
    pub fn with_upload_retry(mut self, policy: ChunkRetryPolicy) -> Result<Self, BuildError> {
        self.uploader = chunk_uploader(policy, &self.tiktok)?;
        Ok(self)
    }

    /// The upload of an object version that is gone before its upload could
    /// finish: its job ends `cancelled`, with `reason` naming what happened.
    /// Claimed even when first seen now, so the operator finds the upload
    /// and why nothing came of it. A job that no longer needs the object
    /// (TikTok has it) is left alone. Decided under the job's lease, on the
    /// job as re-read there, like any other work on it.
    pub async fn source_gone(&self, new: NewJob, reason: String) -> Result<Outcome, Retry> {
        finish(self.cancel_gone(new, reason).await)
    }

    async fn cancel_gone(&self, new: NewJob, reason: String) -> Flow<Outcome> {
        let job = self
            .jobs
            .claim(new, self.clock.now())
            .await
            .map_err(|e| retry("claim the upload", e))?
            .job()
            .clone();
        if !needs_source(&job) {
            return Ok(already(&job));
        }
        let (job, lease) = self.lease(&job, needs_source).await?;
        let result = self.cancel(job, &reason).await;
        lease.release().await;
        result
    }

    async fn cancel(&self, job: Job, reason: &str) -> Flow<Outcome> {
        // An init went out and its answer was never recorded: TikTok may
        // hold the upload whatever became of the object, so the job stays
        // for the operator instead of ending as if nothing was sent.
        if job.publish_id().is_none() && job.init_started_at().is_some() {
            let detail = format!(
                "an earlier invocation sent it and stopped; the object is gone since ({reason})"
            );
            return Err(self.flag_init_unconfirmed(&job, detail).await);
        }
        let message = format!(
            "{} changed or was deleted before its upload finished ({reason}); upload the file again",
            location(&job.upload)
        );
        let changes = Changes {
            last_error: Some(LastError {
                code: "source_gone".into(),
                message: message.clone(),
            }),
            ..Changes::default()
        };
        self.jobs
            .transition(&job, JobStatus::Cancelled, changes, self.clock.now())
            .await
            .map_err(|e| retry("cancel the upload", e))?;
        Ok(Outcome::Cancelled {
            job_id: job.id.to_string(),
            code: "source_gone".into(),
            message,
        })
    }

    /// Claims the upload; a duplicate of a job that is past starting ends
    /// here.
    async fn claim(&self, new: NewJob) -> Flow<Job> {
        let claim = self
            .jobs
            .claim(new, self.clock.now())
            .await
            .map_err(|e| retry("claim the upload", e))?;
        match claim {
            Claim::New(job) => Ok(job),
            Claim::Existing(job) if self.resumable(&job) => Ok(job),
            Claim::Existing(job) => {
                tracing::info!(job_id = %job.id, status = %job.status, "duplicate delivery");
                Err(Stop::Done(already(&job)))
            }
        }
    }

    /// Takes the job's lease (one worker per job) and re-reads the job
    /// under it; the work goes on only if `wanted` still holds for it. The
    /// caller gives the lease back however its work ends.
    async fn lease(&self, job: &Job, wanted: impl Fn(&Job) -> bool) -> Flow<(Job, HeldLease)> {
        let name = format!("job#{}", job.id);
        let held = self
            .leases
            .hold(&name, JOB_LEASE, self.clock.now())
            .await
            .map_err(|e| retry("take the job lease", e))?;
        let Some(lease) = held else {
            // Not answered as handled: the holder may be this message's own
            // earlier delivery whose lease outlived it (its release failed),
            // and a deleted message would never come back to finish the job.
            // Back once the lease is over, a true duplicate finds the job
            // done (or under way) and does nothing.
            let wait = self.lease_left(&name).await;
            tracing::info!(job_id = %job.id, wait_secs = wait.map(|w| w.as_secs()), "another worker holds this job; try again after its lease");
            let busy = retry("wait for the job's lease", "another worker holds it");
            return Err(Stop::Retry(match wait {
                Some(wait) => busy.after(wait),
                None => busy,
            }));
        };
        let fresh = match self.jobs.get(&job.id).await {
            Ok(Some(fresh)) if wanted(&fresh) => return Ok((fresh, lease)),
            Ok(Some(fresh)) => Stop::Done(already(&fresh)),
            Ok(None) => Stop::Retry(retry("re-read the job", "it vanished")),
            Err(e) => Stop::Retry(retry("re-read the job", e)),
        };
        lease.release().await;
        Err(fresh)
    }

    /// How long until the job lease `name` is free (a second past its
    /// end, as leases count whole seconds), if it can be read.
    async fn lease_left(&self, name: &str) -> Option<Duration> {
        let now = self.clock.now();
        match self.leases.expires_at(name, now).await {
            Ok(Some(at)) => (at - now)
                .to_std()
                .ok()
                .map(|left| left + Duration::from_secs(1)),
            // Freed meanwhile: the usual short redelivery.
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(lease = name, error = %err, "cannot read the job lease");
                None
            }
        }
    }

    /// Whether a delivery should (re)start work on this job. `stuck` is an
    /// operator's flag, not an end: a delivery picks up what the job saved
    /// (each kind decides how, and keeps an init in doubt flagged). Jobs
    /// that wait are picked up only where they are released
    /// ([`WaitingJobs::ResumeHere`]).
    fn resumable(&self, job: &Job) -> bool {
        match job.status {
            JobStatus::Claimed | JobStatus::Uploading | JobStatus::Stuck => true,
            JobStatus::Queued | JobStatus::RetryWait => {
                self.waiting_jobs == WaitingJobs::ResumeHere
            }
            _ => false,
        }
    }
}

/// The uploader for `tiktok`'s upload hosts.
fn chunk_uploader(policy: ChunkRetryPolicy, tiktok: &TikTokClient) -> Result<Uploader, BuildError> {
    // Chunk PUTs carry megabytes: no whole-request timeout, a generous one
    // per chunk instead; and never a redirect, which would re-send them.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| BuildError(e.to_string()))?;
    Ok(Uploader::new(http, policy)
        .with_chunk_timeout(CHUNK_TIMEOUT)
        .with_hosts(tiktok.endpoints().upload_hosts()))
}

/// Whether the job still has to read its object: not once TikTok has
/// everything (pulled media comes from a copy under `media/`).
fn needs_source(job: &Job) -> bool {
    match job.status {
        JobStatus::Claimed | JobStatus::Queued | JobStatus::RetryWait => true,
        JobStatus::Uploading | JobStatus::Stuck => {
            job.publish_id().is_none() || job.upload_url().is_some()
        }
        _ => false,
    }
}

/// The answer to a delivery that finds its job past what it would do.
fn already(job: &Job) -> Outcome {
    Outcome::AlreadyHandled {
        job_id: job.id.to_string(),
        status: job.status,
    }
}

/// Where the upload's bytes are, for messages: `s3://bucket/key`, or the
/// path of a local file.
pub fn location(upload: &Upload) -> String {
    if upload.is_local_file() {
        // `<host>:<path>`; the path is what the person running it knows.
        let path = upload
            .key
            .split_once(':')
            .map_or(upload.key.as_str(), |(_, path)| path);
        path.to_owned()
    } else {
        format!("s3://{}/{}", upload.bucket, upload.key)
    }
}
