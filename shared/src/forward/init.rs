//! Init once: mark the init as started on the job, send it, log the
//! `publish_id` the moment it exists and save it before anything else is
//! done with it. An answer that is not clear may hide an init that
//! happened: the job is flagged for the operator, never initialised again by
//! itself.

use std::time::Duration;

use super::Forwarder;
use super::outcome::{Flow, Stop, retry};
use crate::backoff::Backoff;
use crate::jobs::{Job, JobError};
use crate::secret::Secret;
use crate::tiktok::{ChunkPlan, DirectPostInfo, InitResponse, PhotoPost, TikTokError, VideoSource};
use crate::tokens::FreshToken;

/// How often saving a `publish_id` is tried before the attempt gives up
/// (the id is in the log by then, and the job is marked as in doubt).
const SAVE_INIT_TRIES: u32 = 4;

/// The wait between those tries.
const SAVE_INIT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(400), Duration::from_secs(4));

/// The init to send.
pub(super) enum InitRequest<'a> {
    /// A video to the creator's inbox (a draft).
    InboxVideo(&'a VideoSource),
    /// A video posted directly.
    DirectVideo(&'a DirectPostInfo, &'a VideoSource),
    /// Photos to pull.
    Photo(&'a PhotoPost),
}

impl Forwarder {
    /// Inits once, with `token`: marks the init as started on the job,
    /// sends `request`, logs the `publish_id` the moment it exists and
    /// saves it (with `plan` and the upload URL for FILE_UPLOAD), trying the
    /// save again within the attempt. An answer that is not clear (no HTTP
    /// response, a 5xx without TikTok's error body, a success that cannot be
    /// used) may hide an init that happened: the job is flagged for the
    /// operator (with the `publish_id`, when the answer named one), never
    /// initialised again by itself. A clear refusal takes the usual way
    /// ([`Forwarder::refused`]).
    pub(super) async fn init_once(
        &self,
        job: Job,
        plan: Option<&ChunkPlan>,
        token: &FreshToken,
        request: &InitRequest<'_>,
    ) -> Flow<Job> {
        let job = match self.jobs.mark_init_started(&job, self.clock.now()).await {
            Ok(job) => job,
            Err(JobError::InitInDoubt { .. }) => {
                let detail = "an earlier invocation sent it and stopped".to_owned();
                return Err(self.flag_init_unconfirmed(&job, detail).await);
            }
            Err(e) => return Err(retry("mark the init as started", e).into()),
        };
        let sent = self
            .with_token(&job, token, |access| async move {
                self.send_init(&access, request).await
            })
            .await?;
        // A success answer that cannot be used (no upload_url, say) may
        // still name the publish: it is saved like any, then the job is
        // flagged, since TikTok holds a publish this job cannot go on with.
        let (answer, unusable) = match sent {
            Ok(answer) => (answer, None),
            Err(TikTokError::InitUnusable {
                publish_id: Some(publish_id),
                detail,
            }) => (
                InitResponse {
                    publish_id,
                    upload_url: None,
                },
                Some(detail),
            ),
            Err(err) if answer_unclear(&err) => {
                return Err(self.flag_init_unconfirmed(&job, err.to_string()).await);
            }
            Err(err) => return Err(self.refused(&job, &err, "init").await),
        };
        // Before anything else: if saving fails from here on, the log is
        // where the operator finds the id (it is not a secret).
        tracing::info!(job_id = %job.id, publish_id = %answer.publish_id, "TikTok accepted the init");
        let saved = self.save_init(&job, &answer, plan).await?;
        match unusable {
            None => Ok(saved),
            Some(detail) => Err(self.flag_init_unconfirmed(&saved, detail).await),
        }
    }

    /// Sends the init.
    async fn send_init(
        &self,
        access_token: &Secret,
        request: &InitRequest<'_>,
    ) -> Result<InitResponse, TikTokError> {
        match request {
            InitRequest::InboxVideo(source) => {
                self.tiktok.init_inbox_video(access_token, source).await
            }
            InitRequest::DirectVideo(post_info, source) => {
                self.tiktok
                    .init_direct_video(access_token, post_info, source)
                    .await
            }
            InitRequest::Photo(post) => self.tiktok.init_photo(access_token, post).await,
        }
    }

    /// Saves what init returned, trying again within the attempt: the
    /// `publish_id` exists only in this process until it is saved.
    async fn save_init(
        &self,
        job: &Job,
        answer: &InitResponse,
        plan: Option<&ChunkPlan>,
    ) -> Flow<Job> {
        let upload_url = answer.upload_url.as_ref().filter(|_| plan.is_some());
        let mut last = None;
        for attempt in 1..=SAVE_INIT_TRIES {
            let saved = self
                .jobs
                .save_init(
                    &job.id,
                    &answer.publish_id,
                    upload_url,
                    plan,
                    self.clock.now(),
                )
                .await;
            match saved {
                Ok(saved) => return Ok(saved),
                // An earlier try was written but its answer lost.
                Err(JobError::AlreadyInitialised { publish_id, .. })
                    if publish_id == answer.publish_id =>
                {
                    match self.jobs.get(&job.id).await {
                        Ok(Some(saved)) => return Ok(saved),
                        Ok(None) => last = Some("the job vanished".to_owned()),
                        Err(e) => last = Some(e.to_string()),
                    }
                }
                Err(e @ JobError::Store { .. }) => last = Some(e.to_string()),
                Err(e) => {
                    last = Some(e.to_string());
                    break;
                }
            }
            if attempt < SAVE_INIT_TRIES {
                crate::backoff::sleep(SAVE_INIT_BACKOFF.jittered(attempt - 1)).await;
            }
        }
        tracing::error!(job_id = %job.id, publish_id = %answer.publish_id, error = last.as_deref(), "TikTok's publish_id could not be saved; the job is left marked as initialising");
        Err(Stop::Retry(retry(
            "save the publish id",
            format!(
                "publish_id {} not saved: {}",
                answer.publish_id,
                last.unwrap_or_default()
            ),
        )))
    }
}

/// Whether an init's error leaves open that TikTok acted on it: no HTTP
/// answer, a 5xx without TikTok's error body, or a success answer that
/// cannot be used. A connection that was never made carried no request, so
/// it is a clear "not received".
fn answer_unclear(err: &TikTokError) -> bool {
    match err {
        TikTokError::Transport(e) => !e.is_connect(),
        TikTokError::UnexpectedResponse { status, .. } => *status >= 500,
        // TikTok said yes, in an answer that cannot be used.
        TikTokError::InitUnusable { .. } => true,
        _ => false,
    }
}
