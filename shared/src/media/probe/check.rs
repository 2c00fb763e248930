//! A probed video against TikTok's documented limits (TIKTOK_API.md §5):
//! either a refusal that names the measured value and the limit, or notes
//! that are worth telling the creator but are no reason to refuse.

use std::fmt;

use super::{HdrTransfer, VideoCodec, VideoProbe};
use crate::media::detect::VIDEO_MAX_BYTES;

/// The limits a video must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLimits {
    /// Lowest frame rate, in frames a second.
    pub min_fps: u64,
    /// Highest frame rate, in frames a second.
    pub max_fps: u64,
    /// Each side of the picture, in pixels.
    pub min_side: u32,
    /// The longest either side may be, in pixels.
    pub max_side: u32,
    /// Longest video init accepts, in seconds.
    pub max_duration_secs: u64,
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// A direct post's creator limit (`max_video_post_duration_sec` from
    /// creator_info); `None` for drafts, which the creator trims in the app.
    pub creator_max_duration_secs: Option<u64>,
}

impl Default for VideoLimits {
    /// TikTok's: 23–60 fps, 360–4096 px a side, 10 minutes, 4 GB.
    fn default() -> Self {
        VideoLimits {
            min_fps: 23,
            max_fps: 60,
            min_side: 360,
            max_side: 4096,
            max_duration_secs: 600,
            max_bytes: VIDEO_MAX_BYTES,
            creator_max_duration_secs: None,
        }
    }
}

/// Durations above this are noted: all creators can post 3 minutes, only
/// some 5 or 10.
pub const LONG_VIDEO_SECS: u64 = 180;

/// Which of TikTok's checks a refusal stands for (its `fail_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// `file_format_check_failed`: codec, or no picture at all.
    Format,
    /// `frame_rate_check_failed`.
    FrameRate,
    /// `picture_size_check_failed`.
    PictureSize,
    /// `duration_check_failed`.
    Duration,
    /// Over 4 GB.
    FileSize,
}

impl RefusalKind {
    /// The `fail_reason` TikTok would give after the upload.
    pub fn fail_reason(self) -> &'static str {
        match self {
            RefusalKind::Format | RefusalKind::FileSize => "file_format_check_failed",
            RefusalKind::FrameRate => "frame_rate_check_failed",
            RefusalKind::PictureSize => "picture_size_check_failed",
            RefusalKind::Duration => "duration_check_failed",
        }
    }
}

/// Why TikTok would refuse the video: the measured value and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Which check failed.
    pub kind: RefusalKind,
    /// For the creator: the measured value and the limit.
    pub message: String,
}

/// Something the creator should know that does not stop the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// HDR video: TikTok takes it, but some creators' apps show it in SDR.
    Hdr(HdrTransfer),
    /// Longer than 3 minutes: some creators can only post 3 minutes and will
    /// have to trim it in the app.
    Long {
        /// The video's length, in milliseconds.
        duration_ms: u64,
    },
    /// The container gives no frame rate, so it could not be checked.
    FrameRateUnknown,
    /// The container gives no duration, so it could not be checked.
    DurationUnknown,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Hdr(transfer) => write!(
                f,
                "{transfer} video: TikTok takes it, but it may look different in the app"
            ),
            Note::Long { duration_ms } => write!(
                f,
                "{} long: some creators can post only 3 minutes and must trim it in the app",
                minutes(*duration_ms)
            ),
            Note::FrameRateUnknown => {
                f.write_str("the file does not give its frame rate; TikTok checks it after upload")
            }
            Note::DurationUnknown => {
                f.write_str("the file does not give its duration; TikTok checks it after upload")
            }
        }
    }
}

/// Holds `probe` (of a `size`-byte object) against `limits`.
pub fn check(probe: &VideoProbe, size: u64, limits: &VideoLimits) -> Result<Vec<Note>, Refusal> {
    let refuse = |kind, message: String| Err(Refusal { kind, message });
    if size > limits.max_bytes {
        return refuse(
            RefusalKind::FileSize,
            format!(
                "{size} bytes; TikTok accepts videos of at most {} bytes (4 GB)",
                limits.max_bytes
            ),
        );
    }
    let Some(video) = &probe.video else {
        let what = if probe.has_audio {
            "the file has sound but no picture"
        } else {
            "the file has no video track"
        };
        return refuse(
            RefusalKind::Format,
            format!("{what}; TikTok needs a video (H.264, H.265, VP8 or VP9)"),
        );
    };
    if !matches!(
        video.codec,
        VideoCodec::H264 | VideoCodec::H265 | VideoCodec::Vp8 | VideoCodec::Vp9
    ) {
        return refuse(
            RefusalKind::Format,
            format!(
                "{} video; TikTok accepts H.264, H.265, VP8 and VP9 (export it as H.264 MP4)",
                video.codec
            ),
        );
    }
    let side_ok = |side: u32| (limits.min_side..=limits.max_side).contains(&side);
    if !side_ok(video.width) || !side_ok(video.height) {
        return refuse(
            RefusalKind::PictureSize,
            format!(
                "{} × {} pixels; TikTok accepts {}-{} pixels on each side",
                video.width, video.height, limits.min_side, limits.max_side
            ),
        );
    }
    let mut notes = Vec::new();
    match video.frame_rate {
        Some(rate) if !rate.within(limits.min_fps, limits.max_fps) => {
            return refuse(
                RefusalKind::FrameRate,
                format!(
                    "{rate} fps; TikTok accepts {}-{} fps",
                    limits.min_fps, limits.max_fps
                ),
            );
        }
        Some(_) => {}
        None => notes.push(Note::FrameRateUnknown),
    }
    match probe.duration_ms {
        Some(ms) => {
            if ms > limits.max_duration_secs * 1000 {
                return refuse(
                    RefusalKind::Duration,
                    format!(
                        "{} long; TikTok accepts videos of at most {}",
                        minutes(ms),
                        minutes(limits.max_duration_secs * 1000)
                    ),
                );
            }
            if let Some(max) = limits.creator_max_duration_secs
                && ms > max * 1000
            {
                return refuse(
                    RefusalKind::Duration,
                    format!(
                        "{} long; this creator can post videos of at most {}",
                        minutes(ms),
                        minutes(max * 1000)
                    ),
                );
            }
            if ms > LONG_VIDEO_SECS * 1000 {
                notes.push(Note::Long { duration_ms: ms });
            }
        }
        None => notes.push(Note::DurationUnknown),
    }
    if let Some(transfer) = video.hdr {
        notes.push(Note::Hdr(transfer));
    }
    Ok(notes)
}

/// "11 min 0 s (660 s)", "45.5 s": a duration as a creator reads it, with
/// the seconds to compare against the limit.
fn minutes(ms: u64) -> String {
    let secs = ms / 1000;
    if secs < 60 {
        let text = format!("{:.1}", ms as f64 / 1000.0);
        return format!("{} s", text.trim_end_matches(".0"));
    }
    let exact = ms.is_multiple_of(1000);
    let total = if exact {
        format!("{secs} s")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    };
    format!("{} min {} s ({total})", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::detect::VideoKind;
    use crate::media::probe::{FrameRate, VideoTrack};

    fn probe(codec: VideoCodec, w: u32, h: u32, fps: (u64, u64), ms: u64) -> VideoProbe {
        VideoProbe {
            container: VideoKind::Mp4,
            video: Some(VideoTrack {
                codec,
                width: w,
                height: h,
                frame_rate: Some(FrameRate {
                    frames: fps.0,
                    per: fps.1,
                }),
                hdr: None,
            }),
            has_audio: true,
            duration_ms: Some(ms),
            reads: 1,
            bytes_read: 100,
        }
    }

    fn refusal(p: &VideoProbe) -> Refusal {
        check(p, 1_000_000, &VideoLimits::default()).unwrap_err()
    }

    #[test]
    fn frame_rates_compare_exactly() {
        let ok = |fps| {
            check(
                &probe(VideoCodec::H264, 1080, 1920, fps, 10_000),
                1,
                &VideoLimits::default(),
            )
        };
        assert_eq!(ok((60_000, 1001)), Ok(vec![]));
        assert_eq!(ok((60, 1)), Ok(vec![]));
        assert_eq!(ok((23, 1)), Ok(vec![]));
        assert_eq!(ok((24_000, 1001)), Ok(vec![]));
        let r = refusal(&probe(VideoCodec::H264, 1080, 1920, (121, 2), 10_000));
        assert_eq!(r.kind, RefusalKind::FrameRate);
        assert_eq!(r.message, "60.5 fps; TikTok accepts 23-60 fps");
        let r = refusal(&probe(VideoCodec::H264, 1080, 1920, (306, 5), 10_000));
        assert_eq!(r.message, "61.2 fps; TikTok accepts 23-60 fps");
        let r = refusal(&probe(VideoCodec::H264, 1080, 1920, (15, 1), 10_000));
        assert_eq!(r.message, "15 fps; TikTok accepts 23-60 fps");
        assert_eq!(r.kind.fail_reason(), "frame_rate_check_failed");
    }

    #[test]
    fn sizes_codecs_and_durations() {
        let r = refusal(&probe(VideoCodec::H264, 200, 200, (30, 1), 10_000));
        assert_eq!(
            r.message,
            "200 × 200 pixels; TikTok accepts 360-4096 pixels on each side"
        );
        assert_eq!(r.kind.fail_reason(), "picture_size_check_failed");
        let r = refusal(&probe(VideoCodec::Av1, 1080, 1920, (30, 1), 10_000));
        assert!(
            r.message
                .starts_with("AV1 video; TikTok accepts H.264, H.265, VP8 and VP9"),
            "{}",
            r.message
        );
        assert_eq!(r.kind.fail_reason(), "file_format_check_failed");
        let r = refusal(&probe(VideoCodec::H265, 1080, 1920, (30, 1), 660_000));
        assert_eq!(
            r.message,
            "11 min 0 s (660 s) long; TikTok accepts videos of at most 10 min 0 s (600 s)"
        );
        assert_eq!(r.kind.fail_reason(), "duration_check_failed");
        let long = probe(VideoCodec::H265, 1080, 1920, (30, 1), 242_500);
        let limits = VideoLimits {
            creator_max_duration_secs: Some(180),
            ..VideoLimits::default()
        };
        let r = check(&long, 1, &limits).unwrap_err();
        assert_eq!(
            r.message,
            "4 min 2 s (242.5 s) long; this creator can post videos of at most 3 min 0 s (180 s)"
        );
        assert_eq!(
            check(&long, 1, &VideoLimits::default()),
            Ok(vec![Note::Long {
                duration_ms: 242_500
            }])
        );
        let r = check(&long, 4_000_000_001, &VideoLimits::default()).unwrap_err();
        assert_eq!(r.kind, RefusalKind::FileSize);
    }

    #[test]
    fn sound_only_hdr_and_unknowns() {
        let mut p = probe(VideoCodec::H264, 1080, 1920, (30, 1), 10_000);
        p.video = None;
        assert_eq!(
            refusal(&p).message,
            "the file has sound but no picture; TikTok needs a video (H.264, H.265, VP8 or VP9)"
        );
        let mut p = probe(VideoCodec::Vp9, 1080, 1920, (30, 1), 10_000);
        p.duration_ms = None;
        if let Some(v) = &mut p.video {
            v.frame_rate = None;
            v.hdr = Some(HdrTransfer::Hlg);
        }
        let notes = check(&p, 1, &VideoLimits::default()).unwrap();
        assert_eq!(
            notes,
            vec![
                Note::FrameRateUnknown,
                Note::DurationUnknown,
                Note::Hdr(HdrTransfer::Hlg)
            ]
        );
        assert!(notes[2].to_string().starts_with("HDR (HLG) video"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(minutes(45_500), "45.5 s");
        assert_eq!(minutes(2_000), "2 s");
        assert_eq!(minutes(600_000), "10 min 0 s (600 s)");
    }
}
