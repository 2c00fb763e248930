//! The video probe as a step of the upload: before any pending-draft slot,
//! token or init, the container's headers are read (a few ranged reads,
//! never the samples) and held against TikTok's limits. A video TikTok
//! would refuse after the whole upload fails here at once, with the
//! measured value and the limit; what the creator should know but is no
//! reason to refuse (HDR, longer than 3 minutes) is noted on the job.
//!
//! Headers the probe cannot make sense of do not refuse the video: the file
//! passed the container check by its first bytes, and TikTok, which reads
//! more than this probe does, decides after the upload. A file whose
//! headers are impossible (cut short, boxes running past its end) is
//! damaged and refused.

use super::Forwarder;
use super::outcome::{Flow, Hitch, retry};
use super::video::VideoFile;
use crate::jobs::Job;
use crate::media::detect::VideoKind;
use crate::media::probe::{self, ProbeError, Refusal, VideoLimits, VideoProbe, check};
use crate::storage::SourceError;

/// A video that may go to TikTok, as its headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// Its container, by its first bytes.
    pub kind: VideoKind,
    /// What the headers say; `None` when they could not be read here.
    pub probe: Option<VideoProbe>,
    /// For the creator (HDR, long, what could not be checked), in words.
    pub notes: Vec<String>,
}

/// What the probe's answer means for the upload (no I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Within TikTok's limits, with notes.
    Go(VideoProbe, Vec<String>),
    /// The headers could not be read here: the upload goes on, noted.
    Unread(String),
    /// The job fails with this code and message.
    Refuse(&'static str, String),
    /// The file could not be read.
    Source(SourceError),
}

fn verdict(probed: Result<VideoProbe, ProbeError>, size: u64) -> Verdict {
    match probed {
        Ok(probe) => match check(&probe, size, &VideoLimits::default()) {
            Ok(notes) => Verdict::Go(probe, notes.iter().map(ToString::to_string).collect()),
            Err(refusal) => refuse(refusal),
        },
        Err(ProbeError::Media(err)) => Verdict::Refuse("unsupported_media", err.to_string()),
        // TikTok's own container check fails such a file after the upload.
        Err(err @ ProbeError::Damaged(_)) => {
            Verdict::Refuse("file_format_check_failed", err.to_string())
        }
        Err(ProbeError::Unreadable(detail)) => Verdict::Unread(format!(
            "the video's headers could not be checked here ({detail}); TikTok checks them after upload"
        )),
        Err(ProbeError::Source(err)) => Verdict::Source(err),
    }
}

/// A refusal, under the `fail_reason` TikTok would have given after the
/// upload (the code the job would have ended with), so that a job reads
/// the same whichever side refused it.
fn refuse(refusal: Refusal) -> Verdict {
    Verdict::Refuse(refusal.kind.fail_reason(), refusal.message)
}

/// The probe's refusal of a direct post longer than the creator may post
/// (`max_video_post_duration_sec`, known from creator_info only once a
/// token is at hand), if it is one.
fn over_creator_limit(
    probed: &Probed,
    size: u64,
    creator_max_secs: Option<u32>,
) -> Option<Refusal> {
    let probe = probed.probe.as_ref()?;
    let limits = VideoLimits {
        creator_max_duration_secs: Some(u64::from(creator_max_secs?)),
        ..VideoLimits::default()
    };
    check(probe, size, &limits).err()
}

/// Probes `file`'s headers and holds them against TikTok's limits: the
/// video as it may go, or why it may not (the upload and the CLI's early
/// check both ask this).
pub async fn inspect_video<F: VideoFile>(file: &F) -> Result<Probed, Hitch> {
    match verdict(probe::probe(file, file.size()).await, file.size()) {
        Verdict::Go(probe, notes) => Ok(Probed {
            kind: probe.container,
            probe: Some(probe),
            notes,
        }),
        Verdict::Unread(note) => Ok(Probed {
            kind: super::video::video_kind(file).await?,
            probe: None,
            notes: vec![note],
        }),
        Verdict::Refuse(code, message) => Err(Hitch::Refused { code, message }),
        Verdict::Source(err) => Err(source_hitch(file, err)),
    }
}

/// A file that could not be read: later, or never (gone, changed).
pub(super) fn source_hitch<F: VideoFile>(file: &F, err: SourceError) -> Hitch {
    if err.is_retryable() {
        return retry("read the video's headers", err).into();
    }
    Hitch::Refused {
        code: "source_unreadable",
        message: format!(
            "{} could not be read: {err}; upload the file again",
            file.describe()
        ),
    }
}

impl Forwarder {
    /// The probe step: the job fails here when TikTok would refuse the
    /// video, and its notes are recorded when there are any.
    pub(super) async fn probe_video<F: VideoFile>(
        &self,
        job: Job,
        file: &F,
    ) -> Flow<(Job, Probed)> {
        let probed = match inspect_video(file).await {
            Ok(probed) => probed,
            Err(hitch) => return Err(self.hitch(&job, hitch).await),
        };
        if let Some(p) = &probed.probe {
            let video = p.video.as_ref();
            tracing::info!(
                job_id = %job.id,
                container = ?p.container,
                codec = video.map(|v| v.codec.to_string()),
                width = video.map(|v| v.width),
                height = video.map(|v| v.height),
                fps = video.and_then(|v| v.frame_rate).map(|r| r.to_string()),
                duration_ms = p.duration_ms,
                reads = p.reads,
                bytes_read = p.bytes_read,
                notes = probed.notes.len(),
                "video probed"
            );
        }
        if probed.notes == job.notes {
            return Ok((job, probed));
        }
        let job = self
            .jobs
            .set_notes(&job, &probed.notes, self.clock.now())
            .await
            .map_err(|e| retry("record the video's notes", e))?;
        Ok((job, probed))
    }

    /// A direct post's last check before init: the video's duration
    /// against what this creator may post.
    pub(super) async fn creator_limit<F: VideoFile>(
        &self,
        job: &Job,
        file: &F,
        probed: &Probed,
        creator_max_secs: Option<u32>,
    ) -> Flow<()> {
        match over_creator_limit(probed, file.size(), creator_max_secs) {
            None => Ok(()),
            Some(refusal) => {
                let code = refusal.kind.fail_reason();
                Err(self.fail(job, code, refusal.message).await)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaError;
    use crate::media::probe::{FrameRate, HdrTransfer, VideoCodec, VideoTrack};

    fn probe(fps: (u64, u64), ms: u64, hdr: Option<HdrTransfer>) -> VideoProbe {
        VideoProbe {
            container: VideoKind::Mp4,
            video: Some(VideoTrack {
                codec: VideoCodec::H264,
                width: 1080,
                height: 1920,
                frame_rate: Some(FrameRate {
                    frames: fps.0,
                    per: fps.1,
                }),
                hdr,
            }),
            has_audio: true,
            duration_ms: Some(ms),
            reads: 2,
            bytes_read: 300_000,
        }
    }

    #[test]
    fn limits_refuse_under_tiktok_s_fail_reason_with_the_measured_value() {
        assert_eq!(
            verdict(Ok(probe((306, 5), 10_000, None)), 1_000),
            Verdict::Refuse(
                "frame_rate_check_failed",
                "61.2 fps; TikTok accepts 23-60 fps".into()
            )
        );
        assert!(matches!(
            verdict(Ok(probe((30, 1), 660_000, None)), 1_000),
            Verdict::Refuse("duration_check_failed", m) if m.starts_with("11 min 0 s (660 s) long")
        ));
    }

    #[test]
    fn hdr_and_long_videos_go_with_notes() {
        let Verdict::Go(_, notes) = verdict(Ok(probe((30, 1), 240_000, Some(HdrTransfer::Hlg))), 1)
        else {
            panic!("an HDR video of 4 minutes goes");
        };
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("4 min 0 s (240 s) long"), "{notes:?}");
        assert!(notes[1].starts_with("HDR (HLG) video"), "{notes:?}");
        assert_eq!(
            verdict(Ok(probe((30, 1), 10_000, None)), 1),
            Verdict::Go(probe((30, 1), 10_000, None), vec![])
        );
    }

    #[test]
    fn damaged_files_are_refused_and_unread_headers_are_not() {
        assert!(matches!(
            verdict(Err(ProbeError::Damaged("a box runs past the end".into())), 1),
            Verdict::Refuse("file_format_check_failed", m) if m.contains("damaged or incomplete")
        ));
        assert!(matches!(
            verdict(Err(ProbeError::Media(MediaError::Matroska)), 1),
            Verdict::Refuse("unsupported_media", _)
        ));
        assert!(matches!(
            verdict(Err(ProbeError::Unreadable("an odd box".into())), 1),
            Verdict::Unread(note) if note.contains("an odd box") && note.contains("TikTok checks")
        ));
        let gone = SourceError::permanent("412");
        assert_eq!(
            verdict(Err(ProbeError::Source(gone.clone())), 1),
            Verdict::Source(gone)
        );
    }

    #[test]
    fn a_direct_post_is_held_to_the_creator_s_limit_when_both_are_known() {
        let probed = |ms| Probed {
            kind: VideoKind::Mp4,
            probe: Some(probe((30, 1), ms, None)),
            notes: vec![],
        };
        let refusal = over_creator_limit(&probed(242_500), 1, Some(180)).unwrap();
        assert_eq!(
            refusal.message,
            "4 min 2 s (242.5 s) long; this creator can post videos of at most 3 min 0 s (180 s)"
        );
        assert_eq!(refusal.kind.fail_reason(), "duration_check_failed");
        assert_eq!(over_creator_limit(&probed(179_000), 1, Some(180)), None);
        assert_eq!(over_creator_limit(&probed(242_500), 1, None), None);
        let unread = Probed {
            probe: None,
            ..probed(242_500)
        };
        assert_eq!(over_creator_limit(&unread, 1, Some(180)), None);
    }
}
