//! `upload`: a local video to an account's TikTok drafts, through the same
//! use case as the S3 path ([`shared::forward`]): the bytes decide what the
//! file is and whether TikTok would take it (its headers, probed before
//! anything else), the upload is claimed once (the job id comes from this
//! host, the file's absolute path and its SHA-256), a pending-draft slot is
//! taken before init, the init is marked as started and happens once, its
//! answer is saved before anything else (an answer lost on the way flags the
//! job instead of sending it again), and the offset is saved after every
//! chunk, so that running the same command again resumes instead of making
//! a second draft.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use indicatif::ProgressBar;
use serde_json::json;
use shared::caption::{VIDEO_TITLE_MAX, trim_to_utf16};
use shared::forward::{Hitch, VideoFile, inspect_video};
use shared::jobs::{Job, JobKind, LOCAL_FILE_BUCKET, NewJob, ObjectVersion, PostTarget, Upload};
use shared::media::detect::VideoKind;
use shared::storage::{ChunkSource, FileSource, SourceError};
use shared::tiktok::ChunkPlan;
use shared::tiktok::chunk_plan::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

use crate::context::{CliResult, Deployment, Fail, Output, hostname};
use crate::sending::{Sending, local_file, sha256_file};

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

pub async fn run(d: &Deployment, args: UploadArgs, json: bool) -> CliResult<Output> {
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&args.chunk_size) {
        return Err(Fail::new(format!(
            "--chunk-size {} is outside {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes",
            args.chunk_size
        )));
    }
    // The file first: a missing file, one that is not a video, or a video
    // outside TikTok's limits (by its headers) stops here, before a token
    // is asked for or anything is recorded or sent. The upload probes it
    // again (the use case's own guarantee) and notes what the creator
    // should know on the job.
    let (path, size) = local_file(&args.video)?;
    let probe_file = LocalVideo::open(&path, ProgressBar::hidden()).await?;
    match inspect_video(&probe_file).await {
        Ok(_) => {}
        Err(Hitch::Refused { message, .. }) => {
            return Err(Fail::new(format!(
                "{} cannot go to TikTok: {message}; nothing was sent or recorded",
                args.video.display()
            )));
        }
        Err(Hitch::Retry(retry)) => {
            return Err(Fail::new(format!(
                "cannot read {}: {retry}",
                args.video.display()
            )));
        }
    }
    ChunkPlan::new(size, args.chunk_size)
        .map_err(|e| Fail::new(format!("{} cannot go to TikTok: {e}", args.video.display())))?;

    let account = d.upload_account(args.account.as_deref()).await?;
    let sending = Sending::new(d, json, args.chunk_size).await?;
    sending.check_token(&account).await?;
    let caption = args
        .caption
        .as_deref()
        .map(|c| trim_to_utf16(c.trim(), VIDEO_TITLE_MAX).text.to_owned())
        .filter(|c| !c.is_empty());
    let sha = sha256_file(path.clone(), sending.bar(size, "hashing", true)).await?;
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
    sending.before_claim(&new, &account).await?;
    let file = LocalVideo::open(&path, sending.bar(size, "uploading", true)).await?;
    let id = new.upload.job_id();
    let sent = sending.forwarder.forward_video(new, &file, None).await;
    file.bar.finish_and_clear();
    let (_, mut out) = sending.report(&id, sent, &account).await?;
    out.json["sha256"] = json!(sha);
    Ok(out)
}

/// The local video as the use case reads it, with the progress bar that
/// follows its bytes up.
struct LocalVideo {
    source: FileSource,
    path: PathBuf,
    bar: ProgressBar,
}

impl LocalVideo {
    async fn open(path: &Path, bar: ProgressBar) -> CliResult<Self> {
        let source = FileSource::open(path)
            .await
            .map_err(|e| Fail::new(format!("cannot read {}: {e}", path.display())))?;
        Ok(Self {
            source,
            path: path.to_owned(),
            bar,
        })
    }
}

impl ChunkSource for LocalVideo {
    async fn read_range(&self, start: u64, end: u64) -> Result<Bytes, SourceError> {
        self.source.read_range(start, end).await
    }
}

impl VideoFile for LocalVideo {
    fn size(&self) -> u64 {
        self.source.len()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// A local file is always sent (FILE_UPLOAD): TikTok cannot reach it.
    async fn pull_url(&self, _job: &Job, _kind: VideoKind) -> Result<Option<String>, Hitch> {
        Ok(None)
    }

    fn sent(&self, next_offset: u64) {
        self.bar.set_position(next_offset);
    }
}
