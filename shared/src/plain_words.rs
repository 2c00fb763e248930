//! Where an upload or an account stands, in words the creator understands:
//! what the creator's page shows and what the events carry as `reason` and
//! `hint`. Plain code, no I/O.
//!
//! The job records speak to operators (TikTok's codes, attempts, the state
//! machine's statuses); a creator needs to know three things: where it is,
//! why (when something went wrong), and what to do now.

use crate::accounts::{Account, AccountState};
use crate::jobs::{Job, JobKind, JobStatus, MAX_PENDING_DRAFTS, PostTarget};

/// The broad standing of an upload, for styling and grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// On its way; nothing to do.
    Working,
    /// In the TikTok inbox: the creator finishes and posts it.
    InInbox,
    /// On the creator's TikTok profile.
    Posted,
    /// Held or retrying by itself: nothing to do but wait (or free a draft).
    Waiting,
    /// Something went wrong that the creator (or the operator) must act on.
    Failed,
}

impl Standing {
    /// A short lowercase name for the standing, used as a CSS class
    /// (`is-<name>`) on the creator's page.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::InInbox => "inbox",
            Self::Posted => "posted",
            Self::Waiting => "waiting",
            Self::Failed => "failed",
        }
    }
}

/// How one upload reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobWords {
    /// Where it stands, broadly.
    pub standing: Standing,
    /// A few words: "In your TikTok inbox", "Failed: …".
    pub label: String,
    /// One or two sentences on where it stands.
    pub detail: String,
    /// What to do now, when there is something to do.
    pub hint: Option<String>,
}

/// Why something failed and what to do, in the creator's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Lower case, no final full stop: it follows "Failed: ".
    pub reason: String,
    /// What the creator (or the operator) can do about it, as a sentence.
    pub hint: String,
}

impl Failure {
    /// The reason as a sentence of its own: "TikTok flagged the caption."
    pub fn sentence(&self) -> String {
        let mut chars = self.reason.chars();
        match chars.next() {
            Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
            None => String::new(),
        }
    }
}

/// How a person knows an upload: the file name (the key's last part), or a
/// slideshow's folder name (its key is the folder's manifest).
pub fn upload_name(job: &Job) -> String {
    let mut parts = job.upload.key.rsplit('/');
    let last = parts.next().unwrap_or_default();
    match (job.kind, parts.next()) {
        (JobKind::Slideshow, Some(folder)) if !folder.is_empty() => folder.to_owned(),
        _ if last.is_empty() => job.upload.key.clone(),
        _ => last.to_owned(),
    }
}

const TELL_OPERATOR: &str = "Upload it again; if it keeps failing, tell whoever runs this service.";
const RECONNECT_HINT: &str =
    "Connect your TikTok account again (ask for a new connect link), then upload it again.";

/// The failure a job records, in plain words: TikTok's fail reason when it
/// gave one, else the job's error code; for codes this module does not
/// know, the job's own message (it says what happened, in an operator's
/// words, but never holds a token or URL).
pub fn failure(code: &str, message: Option<&str>) -> Failure {
    let plain = |reason: &str, hint: &str| Failure {
        reason: reason.to_owned(),
        hint: hint.to_owned(),
    };
    match code {
        "frame_rate_check_failed" => plain(
            "the video's frame rate is outside what TikTok accepts (23 to 60 frames per second)",
            "Export it at 30 or 60 frames per second and upload it again.",
        ),
        "duration_check_failed" => plain(
            "the video is too long or too short for your TikTok account",
            "Trim it to a length your account can post and upload it again.",
        ),
        "file_format_check_failed" => plain(
            "TikTok does not accept this file's format",
            "Export it as MP4 (H.264) or MOV and upload it again.",
        ),
        "picture_size_check_failed" => plain(
            "a photo is larger than TikTok accepts (at most 1080 × 1920 pixels and 20 MB)",
            "Use smaller photos and upload them again.",
        ),
        "video_pull_failed" | "photo_pull_failed" => {
            plain("TikTok could not fetch the file", TELL_OPERATOR)
        }
        "auth_removed"
        | "access_token_invalid"
        | "scope_not_authorized"
        | "scope_permission_missed"
        | "needs_reconnect"
        | "not_connected"
        | "account_revoked" => plain(
            "this service no longer has access to your TikTok account",
            RECONNECT_HINT,
        ),
        "spam_risk_too_many_posts" => plain(
            "your account reached TikTok's daily posting limit",
            "Wait a day, then upload it again.",
        ),
        "spam_risk_user_banned_from_posting" => plain(
            "TikTok does not let this account post right now",
            "Check your account in the TikTok app.",
        ),
        "spam_risk_text" => plain(
            "TikTok flagged the caption",
            "Change the caption and upload it again.",
        ),
        "spam_risk" => plain(
            "TikTok flagged the post as a spam risk",
            "Check the video and caption, then upload it again.",
        ),
        "internal" => plain(
            "TikTok had a problem on its side",
            "Upload it again a little later.",
        ),
        "source_gone" | "source_unreadable" => plain(
            "the file was removed or replaced before it reached TikTok",
            "Upload it again.",
        ),
        "init_unconfirmed" => plain(
            "it is not certain whether TikTok received it",
            "Look in your TikTok inbox; if it is not there, upload it again.",
        ),
        _ => match message.map(str::trim).filter(|m| !m.is_empty()) {
            Some(message) => Failure {
                reason: lower_first(message.trim_end_matches('.')),
                hint: TELL_OPERATOR.to_owned(),
            },
            None => plain("something went wrong", TELL_OPERATOR),
        },
    }
}

/// The code a job's failure is known by: TikTok's fail reason, else the
/// job's error code.
fn failure_of(job: &Job) -> Failure {
    let code = job
        .fail_reason
        .as_ref()
        .map(|r| r.as_str().to_owned())
        .or_else(|| job.last_error.as_ref().map(|e| e.code.clone()))
        .unwrap_or_default();
    failure(&code, job.last_error.as_ref().map(|e| e.message.as_str()))
}

/// How the upload reads for the creator now.
pub fn job_words(job: &Job) -> JobWords {
    let to_profile = !job.post.is_draft();
    let words = |standing, label: &str, detail: String, hint: Option<String>| JobWords {
        standing,
        label: label.to_owned(),
        detail,
        hint,
    };
    match job.status {
        JobStatus::Claimed | JobStatus::Uploading | JobStatus::Processing => words(
            Standing::Working,
            "Sending to TikTok",
            if to_profile {
                "On its way to your TikTok profile; this usually takes a few minutes.".into()
            } else {
                "On its way to your TikTok inbox; this usually takes a few minutes.".into()
            },
            None,
        ),
        JobStatus::Inbox => {
            let hint = "Open TikTok, tap the inbox, finish and post.";
            // Photo drafts keep their caption at TikTok; inbox videos lose it.
            let loses_caption =
                job.post == PostTarget::Draft && job.kind == JobKind::Video && job.caption.is_some();
            let detail = if loses_caption {
                format!(
                    "{hint} TikTok leaves the caption out of inbox videos: copy it from here and paste it in."
                )
            } else {
                hint.to_owned()
            };
            words(
                Standing::InInbox,
                "In your TikTok inbox",
                detail,
                Some(hint.to_owned()),
            )
        }
        JobStatus::Published => words(
            Standing::Posted,
            "Posted",
            if job.share_urls.is_empty() {
                "It is on your TikTok profile.".into()
            } else {
                "It is on your TikTok profile: follow the link to see it.".into()
            },
            None,
        ),
        JobStatus::Queued => words(
            Standing::Waiting,
            &format!("Waiting: you have {MAX_PENDING_DRAFTS} drafts open in TikTok"),
            format!(
                "TikTok takes at most {MAX_PENDING_DRAFTS} drafts at a time. Post or delete one in your TikTok inbox and this one goes in by itself."
            ),
            Some("Post or delete a draft in your TikTok inbox.".into()),
        ),
        JobStatus::RetryWait => {
            let failure = failure_of(job);
            words(
                Standing::Waiting,
                "Trying again soon",
                format!(
                    "The last try did not work ({}); it is tried again by itself.",
                    failure.reason
                ),
                None,
            )
        }
        JobStatus::Failed => {
            let failure = failure_of(job);
            words(
                Standing::Failed,
                &format!("Failed: {}", failure.reason),
                format!("Failed: {}.", failure.reason),
                Some(failure.hint),
            )
        }
        JobStatus::Stuck => words(
            Standing::Waiting,
            "Taking longer than usual",
            "TikTok has not moved this on for a while; whoever runs this service has been told and is looking into it.".into(),
            None,
        ),
        JobStatus::Cancelled => words(
            Standing::Failed,
            "Cancelled",
            "The upload was cancelled and will not reach TikTok.".into(),
            Some("Upload it again if you still want it posted.".into()),
        ),
    }
}

/// How an account's trouble reads, when it has one (`None` while active).
pub fn account_trouble(account: &Account) -> Option<Failure> {
    match account.state {
        AccountState::Active => None,
        AccountState::NeedsReconnect => Some(Failure {
            reason: "TikTok needs you to connect your account again".into(),
            hint: "Ask for a new connect link and log in with TikTok; uploads wait until then."
                .into(),
        }),
        AccountState::Revoked => Some(Failure {
            reason: "your TikTok account is disconnected from this service".into(),
            hint: "Uploads for it are refused. Ask for a new connect link to connect it again."
                .into(),
        }),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    // Only a plainly capitalised first word ("The"): "TikTok", "MP4" and
    // "S3" keep their capitals.
    let word_rest = chars
        .as_str()
        .split(char::is_whitespace)
        .next()
        .unwrap_or("");
    let plain = first.is_uppercase()
        && !word_rest.is_empty()
        && word_rest
            .chars()
            .all(|c| c.is_lowercase() || !c.is_alphanumeric());
    if plain {
        first.to_lowercase().chain(chars).collect()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::jobs::{ALL_STATUSES, LastError, NewJob, ObjectVersion, Upload};
    use crate::tiktok::FailReason;

    fn job(status: JobStatus) -> Job {
        let mut job = Job::new(
            NewJob {
                upload: Upload {
                    bucket: "b".into(),
                    key: "uploads/alice/a.mp4".into(),
                    version: ObjectVersion::etag("e"),
                    size: 1,
                },
                alias: Some("alice".into()),
                open_id: Some("o".into()),
                kind: JobKind::Video,
                post: PostTarget::Draft,
                caption: Some("hello".into()),
            },
            Utc::now(),
        );
        job.status = status;
        job
    }

    #[test]
    fn every_status_has_words_and_a_standing() {
        for status in ALL_STATUSES {
            let words = job_words(&job(status));
            assert!(
                !words.label.is_empty() && !words.detail.is_empty(),
                "{status}"
            );
            assert!(!words.label.contains('_'), "no codes in labels: {words:?}");
        }
    }

    #[test]
    fn the_issues_examples_read_as_written() {
        let inbox = job_words(&job(JobStatus::Inbox));
        assert_eq!(inbox.label, "In your TikTok inbox");
        assert!(
            inbox
                .detail
                .starts_with("Open TikTok, tap the inbox, finish and post.")
        );
        assert!(inbox.detail.contains("copy it"), "{inbox:?}");
        assert_eq!(job_words(&job(JobStatus::Published)).label, "Posted");
        assert_eq!(
            job_words(&job(JobStatus::Queued)).label,
            "Waiting: you have 5 drafts open in TikTok"
        );
        let mut failed = job(JobStatus::Failed);
        failed.fail_reason = Some(FailReason::FrameRateCheckFailed);
        let words = job_words(&failed);
        assert_eq!(words.standing, Standing::Failed);
        assert!(
            words.label.starts_with("Failed: the video's frame rate"),
            "{words:?}"
        );
        assert!(words.hint.unwrap().contains("60 frames per second"));
    }

    #[test]
    fn inbox_without_a_lost_caption_does_not_mention_copying() {
        let mut j = job(JobStatus::Inbox);
        j.caption = None;
        assert!(!job_words(&j).detail.contains("copy"));
        let mut photos = job(JobStatus::Inbox);
        photos.kind = JobKind::Slideshow;
        assert!(
            !job_words(&photos).detail.contains("copy"),
            "photo drafts keep their caption"
        );
    }

    #[test]
    fn fail_reason_wins_over_the_error_code_and_unknown_codes_use_the_message() {
        let mut j = job(JobStatus::Failed);
        j.last_error = Some(LastError {
            code: "auth_removed".into(),
            message: "TikTok says so.".into(),
        });
        assert!(job_words(&j).label.contains("no longer has access"));
        j.fail_reason = Some(FailReason::SpamRiskText);
        assert_eq!(job_words(&j).label, "Failed: TikTok flagged the caption");
        j.fail_reason = None;
        j.last_error = Some(LastError {
            code: "video_too_fast".into(),
            message: "The video is 61 fps; TikTok accepts up to 60.".into(),
        });
        assert_eq!(
            job_words(&j).label,
            "Failed: the video is 61 fps; TikTok accepts up to 60"
        );
        assert_eq!(failure("", None).reason, "something went wrong");
    }

    #[test]
    fn uploads_are_named_by_file_or_slideshow_folder() {
        let mut j = job(JobStatus::Inbox);
        assert_eq!(upload_name(&j), "a.mp4");
        j.kind = JobKind::Slideshow;
        j.upload.key = "uploads/alice/trip/slideshow.json".into();
        assert_eq!(upload_name(&j), "trip");
        assert_eq!(
            failure("spam_risk_text", None).sentence(),
            "TikTok flagged the caption."
        );
    }

    #[test]
    fn lower_first_keeps_acronyms_and_names() {
        assert_eq!(lower_first("The video"), "the video");
        assert_eq!(lower_first("TikTok said no"), "TikTok said no");
        assert_eq!(lower_first("MP4 only"), "MP4 only");
        assert_eq!(lower_first(""), "");
    }
}
