//! `upload`: a local video to an account's TikTok drafts, by the same rules
//! as the S3 path (functions/s3-upload/src/{forwarder,video}.rs): the bytes
//! decide what the file is, the upload is claimed once (the job id comes
//! from this host, the file's absolute path and its SHA-256), a pending-draft
//! slot is taken before init, init happens once and is saved before anything
//! else, and the offset is saved after every chunk so that running the same
//! command again resumes instead of making a second draft.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use shared::accounts::Account;
use shared::caption::{VIDEO_TITLE_MAX, trim_to_utf16};
use shared::clock::Clock;
use shared::jobs::{
    Changes, Job, JobKind, JobRetryPolicy, JobStatus, Jobs, LOCAL_FILE_BUCKET, LastError,
    MAX_PENDING_DRAFTS, NewJob, ObjectVersion, PostTarget, SlotDecision, Upload, after_error,
};
use shared::lease::LeaseTable;
use shared::media::detect::{DETECT_PREFIX_LEN, check_video};
use shared::storage::FileSource;
use shared::tiktok::chunk_plan::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use shared::tiktok::upload::{
    CHUNK_TIMEOUT, ChunkRetryPolicy, UploadProgress, Uploader, VideoContentType,
};
use shared::tiktok::{ChunkPlan, TikTokClient, TikTokError, VideoSource};
use shared::tokens::{FreshToken, SecretsManagerTokenStore, TokenManager};

use crate::context::{
    CliResult, Ctx as _, Deployment, Fail, Output, hostname, progress_visible, reconnect_hint,
};

/// How long this process may hold a job: as long as the upload function's
/// lease, so the two never work on one job at once.
const JOB_LEASE: Duration = Duration::from_secs(16 * 60);

#[derive(clap::Args)]
pub struct UploadArgs {
    /// The video file (MP4, MOV or WebM; its bytes decide, not its name).
    video: PathBuf,
    /// The account alias (else DEFAULT_ACCOUNT, else the only account).
    #[arg(long)]
    account: Option<String>,
    /// The caption, kept with the job for the creator to paste (inbox drafts
    /// drop captions); trimmed to 2200 UTF-16 units.
    #[arg(long)]
    caption: Option<String>,
    /// Preferred FILE_UPLOAD chunk size in bytes (5 MiB to 64,000,000).
    #[arg(long, env = "CHUNK_SIZE_BYTES", default_value_t = DEFAULT_CHUNK_SIZE)]
    chunk_size: u64,
}

/// The pieces an upload from this machine needs.
pub(crate) struct Uploading {
    pub jobs: Jobs,
    pub leases: LeaseTable,
    pub tiktok: TikTokClient,
    pub tokens: TokenManager<SecretsManagerTokenStore>,
    pub clock: Clock,
    pub json: bool,
}

/// A held job lease.
pub(crate) struct Lease {
    name: String,
    holder: String,
}

/// Either a job to work on (`claimed` or `uploading`, with its lease held),
/// or what to print because the job needs no more work.
pub(crate) enum Begun {
    Work(Box<Job>, Lease),
    Done(Output),
}

impl Uploading {
    pub async fn new(d: &Deployment, json: bool) -> CliResult<Self> {
        let tiktok = d.tiktok().await?;
        Ok(Self {
            jobs: d.jobs()?,
            leases: LeaseTable::new(d.aws.dynamodb.clone(), d.settings.table()?),
            tokens: d.tokens(tiktok.clone())?,
            tiktok,
            clock: Clock::system(),
            json,
        })
    }

    /// A fresh access token, checked before anything is recorded, so that an
    /// account that must reconnect leaves no job behind.
    pub async fn token(&self, account: &Account) -> CliResult<FreshToken> {
        let alias = account.alias.as_deref().unwrap_or("<alias>");
        self.tokens
            .get_fresh_token(&account.open_id)
            .await
            .map_err(|err| {
                if err.needs_reconnect() {
                    Fail::new(format!("{err}; reconnect: {}", reconnect_hint(alias)))
                } else {
                    Fail::new(format!(
                        "cannot get a TikTok token for \u{201c}{alias}\u{201d}: {err}"
                    ))
                }
            })
    }

    /// Claims the upload (or finds the earlier claim), takes the job's lease
    /// and decides what is left to do.
    ///
    /// A new upload for an account with 5 pending drafts is refused before it
    /// is claimed (exit code 3, nothing recorded): a job held `queued` for a
    /// local file could only ever be released by running this command again,
    /// so recording one would only leave a job waiting for nobody. (Should
    /// another upload take the last slot between this check and the slot
    /// transaction, the job is held `queued` and the same command resumes it.)
    pub async fn begin(&self, new: NewJob, account: &Account) -> CliResult<Begun> {
        let id = new.upload.job_id();
        let existing = self.jobs.get(&id).await.ctx("cannot read the job")?;
        if existing.is_none() {
            let pending = self
                .jobs
                .pending_drafts(&account.open_id, self.clock.now())
                .await
                .ctx("cannot count the pending drafts")?;
            if pending >= MAX_PENDING_DRAFTS {
                return Err(full(account, pending));
            }
        }
        let job = self
            .jobs
            .claim(new, self.clock.now())
            .await
            .ctx("cannot claim the upload")?
            .job()
            .clone();
        if let Some(done) = self.finished(&job) {
            return done;
        }
        let lease = Lease {
            name: format!("job#{}", job.id),
            holder: LeaseTable::new_holder(),
        };
        let got = self
            .leases
            .try_acquire(&lease.name, &lease.holder, JOB_LEASE, self.clock.now())
            .await
            .ctx("cannot take the job's lease")?;
        if !got {
            return Err(Fail::new(format!(
                "another process is working on this upload (job {}); wait for it, or run the command again in a few minutes",
                job.id
            )));
        }
        match self.ready(&job.id, account).await {
            Ok(Ok(job)) => Ok(Begun::Work(Box::new(job), lease)),
            Ok(Err(done)) => {
                self.release(lease).await;
                Ok(Begun::Done(done))
            }
            Err(e) => {
                self.release(lease).await;
                Err(e)
            }
        }
    }

    /// Under the lease: re-reads the job and brings it to `claimed` or
    /// `uploading`.
    async fn ready(
        &self,
        id: &shared::jobs::JobId,
        account: &Account,
    ) -> CliResult<Result<Job, Output>> {
        let job = self
            .jobs
            .get(id)
            .await
            .ctx("cannot read the job")?
            .ok_or_else(|| Fail::new(format!("job {id} vanished")))?;
        if let Some(done) = self.finished(&job) {
            return done.map(|_| Err(done_output(&job, true)));
        }
        if job.alias.is_some() && job.alias != account.alias {
            return Err(Fail::new(format!(
                "this file was sent to the account \u{201c}{}\u{201d} before (job {}); it goes to one account only",
                job.alias.as_deref().unwrap_or_default(),
                job.id
            )));
        }
        let job = match job.status {
            JobStatus::Queued | JobStatus::RetryWait => self
                .jobs
                .transition(
                    &job,
                    JobStatus::Claimed,
                    Changes::default(),
                    self.clock.now(),
                )
                .await
                .ctx("cannot restart the held upload")?,
            _ => job,
        };
        let job = if job.open_id.is_none() {
            self.jobs
                .set_account(&job, &account.open_id, self.clock.now())
                .await
                .ctx("cannot record the account on the job")?
        } else {
            job
        };
        Ok(Ok(job))
    }

    /// What to do with a job that is past its upload or cannot go on.
    fn finished(&self, job: &Job) -> Option<CliResult<Begun>> {
        match job.status {
            JobStatus::Processing | JobStatus::Inbox | JobStatus::Published => {
                Some(Ok(Begun::Done(done_output(job, true))))
            }
            JobStatus::Failed | JobStatus::Cancelled | JobStatus::Stuck => {
                let why = job
                    .last_error
                    .as_ref()
                    .map(|e| format!(": {} ({})", e.message, e.code))
                    .unwrap_or_default();
                Some(Err(Fail::new(format!(
                    "this upload was tried before and its job {} is {}{why}; see `tiktok-drafts status {}`",
                    job.id, job.status, job.id
                ))))
            }
            _ => None,
        }
    }

    pub async fn release(&self, lease: Lease) {
        let _ = self.leases.release(&lease.name, &lease.holder).await;
    }

    /// A pending-draft slot for a `claimed` job; a full account holds it.
    pub async fn slot(&self, job: &Job, account: &Account) -> CliResult<()> {
        match self.jobs.take_draft_slot(job, self.clock.now()).await {
            Ok(SlotDecision::Granted { .. } | SlotDecision::NotNeeded) => Ok(()),
            Ok(SlotDecision::Full { pending }) => {
                self.jobs
                    .transition(job, JobStatus::Queued, Changes::default(), self.clock.now())
                    .await
                    .ctx("cannot hold the upload")?;
                Err(Fail::try_later(format!(
                    "{}; the upload is held as job {} (queued): run the same command again later to send it",
                    full_text(account, pending),
                    job.id
                )))
            }
            Err(e) => Err(Fail::new(format!("cannot take a pending-draft slot: {e}"))),
        }
    }

    /// Records what an init's error means for the job and says it.
    pub async fn init_refused(&self, job: &Job, err: &TikTokError) -> Fail {
        let step = after_error(
            job.attempts,
            err,
            self.clock.now(),
            &JobRetryPolicy::default(),
        );
        let to = step.to;
        let recorded = step.error.clone();
        if let Err(e) = self
            .jobs
            .transition(job, to, Changes::from(step), self.clock.now())
            .await
        {
            return Fail::new(format!(
                "TikTok refused the upload ({err}), and the job could not record it: {e}"
            ));
        }
        let message = recorded.map_or_else(|| err.to_string(), |e| e.message);
        match to {
            JobStatus::Queued => Fail::try_later(format!(
                "TikTok says the account has too many pending drafts ({message}); job {} is held: run the same command again later",
                job.id
            )),
            JobStatus::RetryWait => Fail::new(format!(
                "TikTok could not take the upload now ({message}); job {} will go on when you run the same command again",
                job.id
            )),
            // TikTok said yes in a form that cannot be used: the upload may
            // be on its way to the inbox, so sending it again blindly could
            // make a second draft.
            _ if matches!(err, TikTokError::InitUnusable { .. }) => Fail::new(format!(
                "TikTok's answer to the upload could not be used ({message}); it may reach the creator's inbox anyway: look there before sending it again (job {})",
                job.id
            )),
            _ => Fail::new(format!(
                "TikTok refused the upload: {message} (job {})",
                job.id
            )),
        }
    }

    /// Fails the job with a code and says why.
    pub async fn fail(&self, job: &Job, code: &str, message: String) -> Fail {
        let changes = Changes {
            last_error: Some(LastError {
                code: code.to_owned(),
                message: message.clone(),
            }),
            ..Changes::default()
        };
        match self
            .jobs
            .transition(job, JobStatus::Failed, changes, self.clock.now())
            .await
        {
            Ok(_) => Fail::new(format!("{message} (job {} failed: {code})", job.id)),
            Err(e) => Fail::new(format!("{message}; the job could not record it: {e}")),
        }
    }

    pub fn bar(&self, len: u64, message: &'static str, bytes: bool) -> ProgressBar {
        let target = if progress_visible(self.json) {
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

fn full(account: &Account, pending: u32) -> Fail {
    Fail::try_later(format!(
        "{}; nothing was sent or recorded: try again later",
        full_text(account, pending)
    ))
}

/// The output of a job whose media TikTok has.
pub(crate) fn done_output(job: &Job, already: bool) -> Output {
    let publish_id = job.publish_id.clone().unwrap_or_default();
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
            "publish_id": job.publish_id,
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

struct SaveOffset<'a> {
    jobs: &'a Jobs,
    job: &'a Job,
    clock: &'a Clock,
    bar: &'a ProgressBar,
}

impl UploadProgress for SaveOffset<'_> {
    async fn chunk_done(&mut self, next_offset: u64, _chunk_index: u64) {
        self.bar.set_position(next_offset);
        // A lost save costs a 416 and a resync on resume, never bytes.
        let _ = self
            .jobs
            .save_progress(&self.job.id, next_offset, self.clock.now())
            .await;
    }
}

pub async fn run(d: &Deployment, args: UploadArgs, json: bool) -> CliResult<Output> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&args.chunk_size) {
        return Err(Fail::new(format!(
            "--chunk-size {} is outside {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes",
            args.chunk_size
        )));
    }
    // The file first: a missing file or one that is not a video stops here,
    // before anything is recorded or sent.
    let (path, size) = local_file(&args.video)?;
    let prefix = read_prefix(&path)?;
    let kind = check_video(&prefix, size).map_err(|e| {
        Fail::new(format!(
            "{} cannot go to TikTok: {e}; nothing was sent",
            args.video.display()
        ))
    })?;
    let content_type = VideoContentType::from(kind);
    let plan = ChunkPlan::new(size, args.chunk_size)
        .map_err(|e| Fail::new(format!("{} cannot go to TikTok: {e}", args.video.display())))?;

    let account = d.upload_account(args.account.as_deref()).await?;
    let up = Uploading::new(d, json).await?;
    let token = up.token(&account).await?;
    let caption = args
        .caption
        .as_deref()
        .map(|c| trim_to_utf16(c.trim(), VIDEO_TITLE_MAX).text.to_owned())
        .filter(|c| !c.is_empty());

    let sha = sha256_file(path.clone(), up.bar(size, "hashing", true)).await?;
    let new = NewJob {
        upload: Upload {
            bucket: LOCAL_FILE_BUCKET.to_owned(),
            key: format!("{}:{}", hostname(), path.display()),
            version: ObjectVersion::etag(&sha),
            size,
        },
        alias: account.alias.clone(),
        open_id: Some(account.open_id.clone()),
        kind: JobKind::Video,
        post: PostTarget::Draft,
        caption,
    };
    let (job, lease) = match up.begin(new, &account).await? {
        Begun::Done(out) => return Ok(out),
        Begun::Work(job, lease) => (*job, lease),
    };
    let result = send(&up, job, &account, &token, &path, &sha, plan, content_type).await;
    up.release(lease).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn send(
    up: &Uploading,
    job: Job,
    account: &Account,
    token: &FreshToken,
    path: &Path,
    sha: &str,
    plan: ChunkPlan,
    content_type: VideoContentType,
) -> CliResult<Output> {
    let job = if job.status == JobStatus::Claimed {
        up.slot(&job, account).await?;
        let init = match up
            .tiktok
            .init_inbox_video(&token.access_token, &VideoSource::FileUpload(plan))
            .await
        {
            Ok(init) => init,
            Err(err) => return Err(up.init_refused(&job, &err).await),
        };
        up.jobs
            .save_init(
                &job.id,
                &init.publish_id,
                init.upload_url.as_ref(),
                Some(&plan),
                up.clock.now(),
            )
            .await
            .ctx("TikTok accepted the upload but its publish_id could not be saved")?
    } else {
        job
    };
    let (Some(url), Some(plan)) = (job.upload_url.clone(), job.chunk_plan) else {
        return Err(Fail::new(format!(
            "job {} is uploading but lacks its upload URL or chunk plan",
            job.id
        )));
    };
    let source = FileSource::open(path)
        .await
        .map_err(|e| Fail::new(format!("cannot read {}: {e}", path.display())))?;
    if source.len() != plan.video_size {
        return Err(Fail::new(format!(
            "{} changed while it was being sent ({} bytes, the upload is for {}); nothing more was sent",
            path.display(),
            source.len(),
            plan.video_size
        )));
    }
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ctx("cannot build the HTTP client")?;
    let uploader =
        Uploader::new(http, ChunkRetryPolicy::default()).with_chunk_timeout(CHUNK_TIMEOUT);
    let bar = up.bar(plan.video_size, "uploading", true);
    bar.set_position(job.next_offset);
    let mut progress = SaveOffset {
        jobs: &up.jobs,
        job: &job,
        clock: &up.clock,
        bar: &bar,
    };
    let sent = uploader
        .upload(
            url.expose(),
            &plan,
            content_type,
            &source,
            job.next_offset,
            &mut progress,
        )
        .await;
    bar.finish_and_clear();
    match sent {
        Ok(_) => {
            let job = up
                .jobs
                .transition(
                    &job,
                    JobStatus::Processing,
                    Changes::default(),
                    up.clock.now(),
                )
                .await
                .ctx("every byte was sent but the job could not record it")?;
            let mut out = done_output(&job, false);
            out.json["sha256"] = json!(sha);
            Ok(out)
        }
        Err(err) if err.is_retryable() => {
            let at = up
                .jobs
                .get(&job.id)
                .await
                .ok()
                .flatten()
                .map_or(job.next_offset, |j| j.next_offset);
            Err(Fail::new(format!(
                "the upload stopped at byte {at} of {}: {err}; run the same command again (within the hour) to resume from there (job {})",
                plan.video_size, job.id
            )))
        }
        Err(err) => {
            let code = if err.needs_new_upload() {
                "upload_url_expired"
            } else {
                "upload_rejected"
            };
            Err(up.fail(&job, code, err.to_string()).await)
        }
    }
}
