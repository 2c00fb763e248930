//! What a video is, read from its container's headers alone.
//!
//! TikTok checks codec, frame rate, picture size and duration only after
//! the whole upload, and a refused video has by then held one of the
//! creator's five pending-draft slots for minutes. [`probe`] reads the same
//! facts before anything is sent, with a few ranged reads of the object
//! (never its samples): the MP4/MOV `moov` box wherever it is, including
//! after a multi-gigabyte `mdat`, or a WebM file's `Info` and `Tracks`.
//! [`check`] then holds the facts against TikTok's limits.
//!
//! Reads go through [`ChunkSource`], the byte-range interface the upload
//! already streams from (an S3 object, a local file), so a probe costs no
//! new code at the edges.

mod check;
mod mp4;
mod reader;
mod webm;

use std::fmt;

pub use check::{Note, Refusal, RefusalKind, VideoLimits, check};
pub use reader::{PROBE_WINDOW, RangeReader};

use super::detect::{MediaError, VideoKind, check_video};
use crate::storage::{ChunkSource, SourceError};

/// A video codec as the sample entry or `CodecID` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (AVC); TikTok takes it.
    H264,
    /// H.265 (HEVC); TikTok takes it.
    H265,
    /// VP8; TikTok takes it (WebM).
    Vp8,
    /// VP9; TikTok takes it (WebM).
    Vp9,
    /// AV1; refused before upload, TikTok does not list it.
    Av1,
    /// Apple ProRes; refused before upload.
    ProRes,
    /// Anything else, by its four-character code or Matroska codec id.
    Other(String),
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoCodec::H264 => f.write_str("H.264"),
            VideoCodec::H265 => f.write_str("H.265 (HEVC)"),
            VideoCodec::Vp8 => f.write_str("VP8"),
            VideoCodec::Vp9 => f.write_str("VP9"),
            VideoCodec::Av1 => f.write_str("AV1"),
            VideoCodec::ProRes => f.write_str("Apple ProRes"),
            VideoCodec::Other(name) => write!(f, "{name:?}"),
        }
    }
}

/// An average frame rate: `frames` per `seconds`, kept as a fraction so
/// that 59.94 (60000/1001) and 60.5 compare exactly against 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    /// The numerator: the rate is `frames / per` frames a second.
    pub frames: u64,
    /// The denominator.
    pub per: u64,
}

impl FrameRate {
    /// Frames per second, for display.
    pub fn fps(self) -> f64 {
        self.frames as f64 / self.per as f64
    }

    /// Whether this rate is at least `low` and at most `high` frames per
    /// second, exactly.
    pub fn within(self, low: u64, high: u64) -> bool {
        let (f, p) = (u128::from(self.frames), u128::from(self.per));
        f >= u128::from(low) * p && f <= u128::from(high) * p
    }
}

impl fmt::Display for FrameRate {
    /// At most two decimals, trailing zeros dropped: "30", "59.94", "61.2".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.2}", self.fps());
        f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// An HDR transfer function (H.273 transfer characteristics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HdrTransfer {
    /// SMPTE ST 2084, code 16: HDR10, Dolby Vision profile 8.1.
    Pq,
    /// ARIB STD-B67, code 18: iPhone HDR video, broadcast HDR.
    Hlg,
}

impl HdrTransfer {
    /// The HDR transfer of an H.273 transfer characteristics code; `None`
    /// for SDR and unknown codes.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            16 => Some(HdrTransfer::Pq),
            18 => Some(HdrTransfer::Hlg),
            _ => None,
        }
    }
}

impl fmt::Display for HdrTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HdrTransfer::Pq => "HDR (PQ)",
            HdrTransfer::Hlg => "HDR (HLG)",
        })
    }
}

/// The first video track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// How the pictures are encoded.
    pub codec: VideoCodec,
    /// Coded picture size, in pixels.
    pub width: u32,
    /// Coded picture height, in pixels.
    pub height: u32,
    /// Average over the track; `None` when the container does not say
    /// (a WebM without `DefaultDuration`, a fragmented MP4).
    pub frame_rate: Option<FrameRate>,
    /// The HDR transfer the track declares; `None` for SDR (or none
    /// declared).
    pub hdr: Option<HdrTransfer>,
}

/// What the probe read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoProbe {
    /// The container, from the file's first bytes.
    pub container: VideoKind,
    /// `None` for a file with no video track (sound only).
    pub video: Option<VideoTrack>,
    /// Whether there is a sound track.
    pub has_audio: bool,
    /// The presentation's duration in milliseconds, when the container
    /// says (live-recorded WebM often does not).
    pub duration_ms: Option<u64>,
    /// How many ranged reads and bytes the probe took.
    pub reads: u32,
    /// The bytes those reads fetched, in all.
    pub bytes_read: u64,
}

/// Why a probe could not read the headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Not a video container TikTok takes, by its first bytes.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The headers are impossible or cut short: an incomplete upload or a
    /// damaged file.
    #[error("the video file is damaged or incomplete: {0}; upload it again")]
    Damaged(String),
    /// The headers are there but not understood here; TikTok may still take
    /// the file.
    #[error("the video's headers could not be read: {0}")]
    Unreadable(String),
    /// The object could not be read.
    #[error("cannot read the video: {0}")]
    Source(#[from] SourceError),
}

/// Probes the `size`-byte object `source` holds.
pub async fn probe<S: ChunkSource>(source: &S, size: u64) -> Result<VideoProbe, ProbeError> {
    let mut reader = RangeReader::new(source, size);
    let head = reader.head().await?;
    let container = check_video(&head, size)?;
    let mut probe = match container {
        VideoKind::Mp4 | VideoKind::Mov => mp4::probe(&mut reader, container).await?,
        VideoKind::WebM => webm::probe(&mut reader).await?,
    };
    probe.reads = reader.reads();
    probe.bytes_read = reader.bytes_read();
    Ok(probe)
}
