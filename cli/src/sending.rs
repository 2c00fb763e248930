//! What `upload` and `slideshow` share: the upload use case
//! ([`shared::forward`], the one the upload function runs) set up for this
//! machine, the checks made before anything is recorded, and what its
//! outcome means for the person at the terminal (text, JSON, exit code).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use shared::accounts::Account;
use shared::clock::Clock;
use shared::forward::{Forwarder, Outcome, Retry, WaitingJobs};
use shared::jobs::{Job, JobId, JobStatus, MAX_PENDING_DRAFTS, NewJob};
use shared::media::detect::DETECT_PREFIX_LEN;

use crate::context::{CliResult, Ctx as _, Deployment, Fail, Output, reconnect_hint};

/// The upload use case, as this machine runs it.
pub(crate) struct Sending {
    pub forwarder: Forwarder,
    json: bool,
}

impl Sending {
    /// The use case on the deployment's stores, sending chunks of
    /// `chunk_size`. A local file has no one else to re-send it, so the
    /// command releases its own held or waiting jobs when run again.
    pub async fn new(d: &Deployment, json: bool, chunk_size: u64) -> CliResult<Self> {
        let tiktok = d.tiktok().await?;
        let mut forwarder = Forwarder::for_deployment(
            &d.aws,
            tiktok,
            d.settings.table()?,
            d.settings.secrets_prefix(),
            Clock::system(),
        )
        .ctx("cannot set up the upload")?;
        forwarder.chunk_size = chunk_size;
        forwarder.waiting_jobs = WaitingJobs::ResumeHere;
        Ok(Self { forwarder, json })
    }

    /// Checks, before anything is recorded or hashed, that the account has
    /// a fresh token: one that must reconnect leaves no job behind.
    pub async fn check_token(&self, account: &Account) -> CliResult<()> {
        let alias = account.alias.as_deref().unwrap_or("<alias>");
        match self
            .forwarder
            .tokens
            .get_fresh_token(&account.open_id)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.needs_reconnect() => Err(Fail::new(format!(
                "{err}; reconnect: {}",
                reconnect_hint(alias)
            ))),
            Err(err) => Err(Fail::new(format!(
                "cannot get a TikTok token for \u{201c}{alias}\u{201d}: {err}"
            ))),
        }
    }

    /// Checks, before anything is recorded, that the upload may be claimed:
    /// a new one needs a free pending-draft slot. A job held `queued` for a
    /// local file could only ever be released by running the command again,
    /// so a sixth draft is refused with exit code 3 instead of recording
    /// one. (Should another upload take the last slot between this check
    /// and the slot's transaction, the job is held and the same command
    /// resumes it.) A file sent to another account before is refused too:
    /// an upload goes to one account only.
    pub async fn before_claim(&self, new: &NewJob, account: &Account) -> CliResult<()> {
        let jobs = &self.forwarder.jobs;
        let id = new.upload.job_id();
        match jobs.get(&id).await.ctx("cannot read the job")? {
            None => {
                let pending = jobs
                    .pending_drafts(&account.open_id, self.forwarder.clock.now())
                    .await
                    .ctx("cannot count the pending drafts")?;
                if pending >= MAX_PENDING_DRAFTS {
                    return Err(Fail::try_later(format!(
                        "{}; nothing was sent or recorded: try again later",
                        full_text(account, pending)
                    )));
                }
            }
            Some(job) if job.alias.is_some() && job.alias != account.alias => {
                return Err(Fail::new(format!(
                    "this file was sent to the account \u{201c}{}\u{201d} before (job {}); it goes to one account only",
                    job.alias.as_deref().unwrap_or_default(),
                    job.id
                )));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// What the use case's answer means here: the job's output, or a
    /// failure with its message and exit code.
    pub async fn report(
        &self,
        id: &JobId,
        sent: Result<Outcome, Retry>,
        account: &Account,
    ) -> CliResult<(Job, Output)> {
        let outcome = match sent {
            Ok(outcome) => outcome,
            Err(retry) => return Err(self.interrupted(id, retry).await),
        };
        let job = self.job(id).await?;
        match outcome {
            Outcome::Uploaded { .. } => {
                let out = done_output(&job, false);
                Ok((job, out))
            }
            Outcome::AlreadyHandled {
                status: JobStatus::Processing | JobStatus::Inbox | JobStatus::Published,
                ..
            } => {
                let out = done_output(&job, true);
                Ok((job, out))
            }
            Outcome::AlreadyHandled { .. } => {
                let why = job
                    .last_error
                    .as_ref()
                    .map(|e| format!(": {} ({})", e.message, e.code))
                    .unwrap_or_default();
                Err(Fail::new(format!(
                    "this upload was tried before and its job {} is {}{why}; see `tiktok-drafts status {}`",
                    job.id, job.status, job.id
                )))
            }
            Outcome::Queued { .. } => Err(held(&job, account)),
            Outcome::RetryScheduled { message, .. } => Err(Fail::new(format!(
                "TikTok could not take the upload now ({message}); job {} will go on when you run the same command again",
                job.id
            ))),
            Outcome::Flagged { code, message, .. } => Err(Fail::new(format!(
                "{message} (job {} is flagged: {code})",
                job.id
            ))),
            Outcome::Failed { code, message, .. } | Outcome::Cancelled { code, message, .. } => {
                Err(Fail::new(format!(
                    "{message} (job {} failed: {code})",
                    job.id
                )))
            }
        }
    }

    /// A passing failure: where the job stands, and that the same command
    /// goes on from there.
    async fn interrupted(&self, id: &JobId, retry: Retry) -> Fail {
        let Ok(Some(job)) = self.forwarder.jobs.get(id).await else {
            return Fail::new(format!("{retry}; run the same command again"));
        };
        match (job.status, job.attempt.transfer()) {
            (JobStatus::Uploading, Some(transfer)) => Fail::new(format!(
                "the upload stopped at byte {} of {}: {}; run the same command again (within the hour) to resume from there (job {})",
                transfer.next_offset, transfer.plan.video_size, retry.detail, job.id
            )),
            _ => Fail::new(format!(
                "{retry}; run the same command again (job {}, {})",
                job.id, job.status
            )),
        }
    }

    async fn job(&self, id: &JobId) -> CliResult<Job> {
        self.forwarder
            .jobs
            .get(id)
            .await
            .ctx("cannot read the job")?
            .ok_or_else(|| Fail::new(format!("job {id} vanished")))
    }

    /// A progress bar on stderr when it is a terminal and `--json` is off.
    pub fn bar(&self, len: u64, message: &'static str, bytes: bool) -> ProgressBar {
        let target = if crate::context::progress_visible(self.json) {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let template = if bytes {
            "{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg:10} [{bar:30}] {pos}/{len}"
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        bar
    }
}

fn full_text(account: &Account, pending: u32) -> String {
    format!(
        "the account \u{201c}{}\u{201d} has {pending} pending drafts, TikTok's limit is {MAX_PENDING_DRAFTS} in 24 hours (a draft stops counting when the creator posts it or after 24 hours)",
        account.alias.as_deref().unwrap_or_default()
    )
}

/// A held upload: ours (5 pending drafts here), or TikTok's (it counts
/// drafts we cannot see).
fn held(job: &Job, account: &Account) -> Fail {
    match &job.last_error {
        Some(error) => Fail::try_later(format!(
            "TikTok says the account has too many pending drafts ({}); job {} is held: run the same command again later",
            error.message, job.id
        )),
        None => Fail::try_later(format!(
            "{}; the upload is held as job {} (queued): run the same command again later to send it",
            full_text(account, MAX_PENDING_DRAFTS),
            job.id
        )),
    }
}

/// The output of a job whose media TikTok has.
pub(crate) fn done_output(job: &Job, already: bool) -> Output {
    let publish_id = job.publish_id().unwrap_or_default();
    let text = if already {
        format!(
            "Already sent: job {} ({}), publish_id {publish_id}. Nothing more to do; follow it with `tiktok-drafts status {}`.",
            job.id, job.status, job.id
        )
    } else {
        format!(
            "Sent to \u{201c}{}\u{201d}'s TikTok drafts.\njob:        {}\npublish_id: {publish_id}\nstatus:     {}\nFollow it with `tiktok-drafts status {}`.",
            job.alias.as_deref().unwrap_or_default(),
            job.id,
            job.status,
            job.id
        )
    };
    Output::new(
        text,
        json!({
            "job_id": job.id.as_str(),
            "publish_id": job.publish_id(),
            "status": job.status.as_str(),
            "account": job.alias,
            "already_sent": already,
            "caption": job.caption,
        }),
    )
}

/// An absolute, resolved path to an existing regular file, and its size.
pub(crate) fn local_file(path: &Path) -> CliResult<(PathBuf, u64)> {
    let abs = std::fs::canonicalize(path)
        .map_err(|e| Fail::new(format!("cannot read {}: {e}", path.display())))?;
    let meta = std::fs::metadata(&abs)
        .map_err(|e| Fail::new(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Fail::new(format!("{} is not a file", path.display())));
    }
    Ok((abs, meta.len()))
}

/// The file's first bytes, enough to tell what it is.
pub(crate) fn read_prefix(path: &Path) -> CliResult<Vec<u8>> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| Fail::new(format!("cannot read {}: {e}", path.display())))?;
    let mut prefix = Vec::with_capacity(DETECT_PREFIX_LEN);
    (&mut file)
        .take(DETECT_PREFIX_LEN as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| Fail::new(format!("cannot read {}: {e}", path.display())))?;
    Ok(prefix)
}

/// Lowercase hex SHA-256 of a file, read in 1 MiB blocks.
pub(crate) async fn sha256_file(path: PathBuf, bar: ProgressBar) -> CliResult<String> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        use sha2::Digest as _;
        let mut file = std::fs::File::open(&path)?;
        let mut hash = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        Ok::<_, std::io::Error>(hex::encode(hash.finalize()))
    })
    .await
    .map_err(|e| Fail::new(format!("cannot hash {shown}: {e}")))?
    .map_err(|e| Fail::new(format!("cannot read {shown}: {e}")))
}
