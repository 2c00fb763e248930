//! What TikTok checks on an arrived video before it becomes a draft or a
//! post (TIKTOK_API.md §5): container and codec, frame rate, picture size
//! and duration, each failing the publish with its own `fail_reason`.
//!
//! The simulator has the whole file, so it measures the way a demuxer
//! does, independently of the client's header probe: MP4/MOV frames are
//! the sample count over the track's media duration (`mdhd`), WebM frames
//! are the video blocks counted through every cluster over the `Info`
//! duration. A client that skips its own probe, or whose probe is wrong,
//! fails here as it would at TikTok.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use mp4_atom::{Codec, Decode, Moov, StszSamples};

pub const MIN_FPS: u64 = 23;
pub const MAX_FPS: u64 = 60;
pub const MIN_SIDE: u64 = 360;
pub const MAX_SIDE: u64 = 4096;
/// Longest video init accepts, in seconds.
pub const MAX_DURATION_SECS: u64 = 600;
/// Longest `moov` read: far above any real one.
const MAX_MOOV: u64 = 64 << 20;

/// Why a video is refused, as a TikTok `fail_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoRejection {
    Format,
    FrameRate,
    PictureSize,
    Duration,
}

impl VideoRejection {
    pub fn fail_reason(self) -> &'static str {
        match self {
            Self::Format => "file_format_check_failed",
            Self::FrameRate => "frame_rate_check_failed",
            Self::PictureSize => "picture_size_check_failed",
            Self::Duration => "duration_check_failed",
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFacts {
    pub format: &'static str,
    pub codec: String,
    pub width: u64,
    pub height: u64,
    /// Frames of the video track, and the time they span in ms.
    pub frames: u64,
    pub frames_ms: u64,
    /// The video's length in ms.
    pub duration_ms: u64,
}

impl VideoFacts {
    /// Checks the facts against TikTok's limits, `max_duration_secs` being
    /// 600 for drafts or the creator's limit for direct posts.
    pub fn check(&self, max_duration_secs: u64) -> Result<(), VideoRejection> {
        if ![
            "avc1", "avc3", "hvc1", "hev1", "vp08", "vp09", "V_VP8", "V_VP9",
        ]
        .contains(&self.codec.as_str())
        {
            return Err(VideoRejection::Format);
        }
        let side = MIN_SIDE..=MAX_SIDE;
        if !side.contains(&self.width) || !side.contains(&self.height) {
            return Err(VideoRejection::PictureSize);
        }
        // frames / seconds within [23, 60], exactly: frames * 1000 against
        // fps * duration_ms.
        let (frames, ms) = (u128::from(self.frames) * 1000, u128::from(self.frames_ms));
        if ms == 0 || frames < u128::from(MIN_FPS) * ms || frames > u128::from(MAX_FPS) * ms {
            return Err(VideoRejection::FrameRate);
        }
        if self.duration_ms > max_duration_secs * 1000 {
            return Err(VideoRejection::Duration);
        }
        Ok(())
    }
}

/// Measures the video in `path`. Anything that is not a readable MP4, MOV
/// or WebM with a video track is a format failure.
pub fn measure(path: &Path) -> Result<VideoFacts, VideoRejection> {
    let mut file = BufReader::new(File::open(path).map_err(|_| VideoRejection::Format)?);
    let len = file
        .get_ref()
        .metadata()
        .map_err(|_| VideoRejection::Format)?
        .len();
    let mut head = [0u8; 12];
    file.read_exact(&mut head)
        .map_err(|_| VideoRejection::Format)?;
    match crate::media_check::video_format(&head) {
        Some(format @ ("mp4" | "mov")) => measure_mp4(&mut file, len, format),
        Some("webm") => measure_webm(&mut file, len),
        _ => Err(VideoRejection::Format),
    }
}

fn measure_mp4(
    file: &mut BufReader<File>,
    len: u64,
    format: &'static str,
) -> Result<VideoFacts, VideoRejection> {
    let bad = |_| VideoRejection::Format;
    let mut at = 0u64;
    let moov = loop {
        if at + 8 > len {
            return Err(VideoRejection::Format);
        }
        file.seek(SeekFrom::Start(at)).map_err(bad)?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8]).map_err(bad)?;
        let size = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let size = match size {
            0 => len - at,
            1 => {
                file.read_exact(&mut header[8..]).map_err(bad)?;
                u64::from_be_bytes(
                    header[8..16]
                        .try_into()
                        .map_err(|_| VideoRejection::Format)?,
                )
            }
            n => n,
        };
        if size < 8 || at + size > len {
            return Err(VideoRejection::Format);
        }
        if &header[4..8] == b"moov" {
            if size > MAX_MOOV {
                return Err(VideoRejection::Format);
            }
            file.seek(SeekFrom::Start(at)).map_err(bad)?;
            let mut moov = vec![0u8; size as usize];
            file.read_exact(&mut moov).map_err(bad)?;
            break moov;
        }
        at += size;
    };
    let moov = Moov::decode(&mut moov.as_slice()).map_err(|_| VideoRejection::Format)?;
    let trak = moov
        .trak
        .iter()
        .find(|t| t.mdia.hdlr.handler == mp4_atom::FourCC::new(b"vide"))
        .ok_or(VideoRejection::Format)?;
    let entry = trak
        .mdia
        .minf
        .stbl
        .stsd
        .codecs
        .first()
        .ok_or(VideoRejection::Format)?;
    let codec = match entry {
        Codec::Avc1(_) => "avc1",
        Codec::Avc3(_) => "avc3",
        Codec::Hvc1(_) => "hvc1",
        Codec::Hev1(_) => "hev1",
        Codec::Vp08(_) => "vp08",
        Codec::Vp09(_) => "vp09",
        _ => "other",
    };
    let visual = entry.visual().ok_or(VideoRejection::Format)?;
    let frames = match &trak.mdia.minf.stbl.stsz.samples {
        StszSamples::Identical { count, .. } => u64::from(*count),
        StszSamples::Different { sizes } => sizes.len() as u64,
    };
    let mdhd = &trak.mdia.mdhd;
    if mdhd.timescale == 0 || moov.mvhd.timescale == 0 {
        return Err(VideoRejection::Format);
    }
    // The frame rate is judged over the track's own media time; the length
    // of the video over the movie's.
    let track_ms = u64::try_from(u128::from(mdhd.duration) * 1000 / u128::from(mdhd.timescale))
        .map_err(|_| VideoRejection::Format)?;
    let movie_ms =
        u64::try_from(u128::from(moov.mvhd.duration) * 1000 / u128::from(moov.mvhd.timescale))
            .map_err(|_| VideoRejection::Format)?;
    Ok(VideoFacts {
        format,
        codec: codec.to_owned(),
        width: u64::from(visual.width),
        height: u64::from(visual.height),
        frames,
        frames_ms: track_ms,
        duration_ms: movie_ms,
    })
}

const SEGMENT: u64 = 0x1853_8067;
const CLUSTER: u64 = 0x1F43_B675;
const BLOCK_GROUP: u64 = 0xA0;
const SIMPLE_BLOCK: u64 = 0xA3;
const BLOCK: u64 = 0xA1;
const INFO: u64 = 0x1549_A966;
const TRACKS: u64 = 0x1654_AE6B;
const DOC_TYPE: u64 = 0x4282;

/// An EBML integer from `file`: value and length (IDs keep their marker).
fn vint(file: &mut impl Read, keep_marker: bool) -> Option<(u64, u64)> {
    let mut first = [0u8; 1];
    file.read_exact(&mut first).ok()?;
    let len = first[0].leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = if keep_marker {
        u64::from(first[0])
    } else {
        u64::from(first[0]) & (0xFF >> len)
    };
    let mut rest = [0u8; 7];
    file.read_exact(&mut rest[..len - 1]).ok()?;
    for &b in &rest[..len - 1] {
        value = (value << 8) | u64::from(b);
    }
    if !keep_marker && value == (1u64 << (7 * len)) - 1 {
        value = u64::MAX;
    }
    Some((value, len as u64))
}

fn uint(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// The (id, body) pairs laid out in `data`.
fn elements(data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut cursor = std::io::Cursor::new(data);
    while let (Some((id, _)), Some((size, _))) = (vint(&mut cursor, true), vint(&mut cursor, false))
    {
        let start = cursor.position() as usize;
        let Some(end) = start
            .checked_add(size as usize)
            .filter(|e| *e <= data.len())
        else {
            break;
        };
        out.push((id, &data[start..end]));
        cursor.set_position(end as u64);
    }
    out
}

/// Measures a WebM: checks its doc type, then walks the whole file (see [`WebmScan`]).
fn measure_webm(file: &mut BufReader<File>, len: u64) -> Result<VideoFacts, VideoRejection> {
    check_webm_doc_type(file)?;
    let mut scan = WebmScan::new();
    scan.walk(file, len)?;
    scan.into_facts()
}

/// Reads the EBML header at the start of `file` and checks that its doc type is `webm`.
fn check_webm_doc_type(file: &mut BufReader<File>) -> Result<(), VideoRejection> {
    let bad = || VideoRejection::Format;
    file.seek(SeekFrom::Start(0)).map_err(|_| bad())?;
    let (_, _) = vint(file, true).ok_or_else(bad)?;
    let (header_size, _) = vint(file, false).ok_or_else(bad)?;
    let mut header = vec![0u8; usize::try_from(header_size).map_err(|_| bad())?.min(4096)];
    file.read_exact(&mut header).map_err(|_| bad())?;
    let doc_type = elements(&header)
        .into_iter()
        .find(|(id, _)| *id == DOC_TYPE)
        .map(|(_, v)| {
            v.iter()
                .copied()
                .take_while(|&c| c != 0)
                .collect::<Vec<u8>>()
        });
    if doc_type.as_deref() != Some(b"webm") {
        return Err(bad());
    }
    Ok(())
}

/// What the walk through a WebM has found: the timing from `Info`, the first video track
/// from `Tracks`, and that track's blocks counted.
struct WebmScan {
    /// Nanoseconds per unit of `duration` (TimecodeScale).
    scale: u64,
    duration: f64,
    video_track: Option<u64>,
    codec: String,
    width: u64,
    height: u64,
    frames: u64,
}

impl WebmScan {
    /// Nothing found yet, with Matroska's default timecode scale (1 ms).
    fn new() -> Self {
        WebmScan {
            scale: 1_000_000,
            duration: 0.0,
            video_track: None,
            codec: String::new(),
            width: 0,
            height: 0,
            frames: 0,
        }
    }

    /// Walks everything after the EBML header: descends into the Segment, clusters and
    /// block groups, reads Info and Tracks whole, counts the video track's blocks and
    /// skips the rest.
    fn walk(&mut self, file: &mut BufReader<File>, len: u64) -> Result<(), VideoRejection> {
        let bad = || VideoRejection::Format;
        loop {
            let at = file.stream_position().map_err(|_| bad())?;
            if at >= len {
                break;
            }
            let Some((id, _)) = vint(file, true) else {
                break;
            };
            let Some((size, _)) = vint(file, false) else {
                break;
            };
            match id {
                SEGMENT | CLUSTER | BLOCK_GROUP => continue,
                INFO | TRACKS => {
                    let size = usize::try_from(size)
                        .ok()
                        .filter(|s| *s <= 1 << 20)
                        .ok_or_else(bad)?;
                    let mut body = vec![0u8; size];
                    file.read_exact(&mut body).map_err(|_| bad())?;
                    if id == INFO {
                        self.read_info(&body)?;
                    } else {
                        self.read_tracks(&body);
                    }
                }
                SIMPLE_BLOCK | BLOCK => {
                    let (track, n) = vint(file, false).ok_or_else(bad)?;
                    if Some(track) == self.video_track {
                        self.frames += 1;
                    }
                    let rest = size.checked_sub(n).ok_or_else(bad)?;
                    file.seek(SeekFrom::Current(i64::try_from(rest).map_err(|_| bad())?))
                        .map_err(|_| bad())?;
                }
                _ => {
                    if size == u64::MAX {
                        return Err(bad());
                    }
                    file.seek(SeekFrom::Current(i64::try_from(size).map_err(|_| bad())?))
                        .map_err(|_| bad())?;
                }
            }
        }
        Ok(())
    }

    /// Takes the timecode scale and the duration (a 4- or 8-byte float) from `Info`.
    fn read_info(&mut self, body: &[u8]) -> Result<(), VideoRejection> {
        let bad = || VideoRejection::Format;
        for (id, v) in elements(body) {
            match id {
                0x2A_D7B1 => self.scale = uint(v).max(1),
                0x4489 if v.len() == 8 => {
                    self.duration = f64::from_be_bytes(v.try_into().map_err(|_| bad())?)
                }
                0x4489 if v.len() == 4 => {
                    self.duration = f64::from(f32::from_be_bytes(v.try_into().map_err(|_| bad())?))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Takes the number, codec and picture size of the first video track in `Tracks`
    /// (unless an earlier `Tracks` had one).
    fn read_tracks(&mut self, body: &[u8]) {
        for (_, entry) in elements(body).into_iter().filter(|(id, _)| *id == 0xAE) {
            let fields = elements(entry);
            let get = |want: u64| fields.iter().find(|(id, _)| *id == want).map(|(_, v)| *v);
            if get(0x83).map(uint) == Some(1) && self.video_track.is_none() {
                self.video_track = get(0xD7).map(uint);
                self.codec = String::from_utf8_lossy(get(0x86).unwrap_or_default()).into_owned();
                for (id, v) in elements(get(0xE0).unwrap_or_default()) {
                    match id {
                        0xB0 => self.width = uint(v),
                        0xBA => self.height = uint(v),
                        _ => {}
                    }
                }
            }
        }
    }

    /// The facts found; a format failure when there was no video track.
    fn into_facts(self) -> Result<VideoFacts, VideoRejection> {
        if self.video_track.is_none() {
            return Err(VideoRejection::Format);
        }
        let duration_ms = (self.duration * self.scale as f64 / 1_000_000.0) as u64;
        Ok(VideoFacts {
            format: "webm",
            codec: self.codec,
            width: self.width,
            height: self.height,
            frames: self.frames,
            frames_ms: duration_ms,
            duration_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(codec: &str, w: u64, h: u64, frames: u64, ms: u64) -> VideoFacts {
        VideoFacts {
            format: "mp4",
            codec: codec.into(),
            width: w,
            height: h,
            frames,
            frames_ms: ms,
            duration_ms: ms,
        }
    }

    #[test]
    fn limits() {
        assert_eq!(facts("avc1", 1080, 1920, 300, 10_000).check(600), Ok(()));
        // 59.94 fps passes, 60.5 does not.
        assert_eq!(facts("hvc1", 1080, 1920, 600, 10_010).check(600), Ok(()));
        assert_eq!(
            facts("hvc1", 1080, 1920, 121, 2_000).check(600),
            Err(VideoRejection::FrameRate)
        );
        assert_eq!(
            facts("av01", 1080, 1920, 300, 10_000).check(600),
            Err(VideoRejection::Format)
        );
        assert_eq!(
            facts("avc1", 200, 200, 300, 10_000).check(600),
            Err(VideoRejection::PictureSize)
        );
        assert_eq!(
            facts("avc1", 1080, 1920, 30 * 601, 601_000).check(600),
            Err(VideoRejection::Duration)
        );
        assert_eq!(
            facts("avc1", 1080, 1920, 30 * 200, 200_000).check(180),
            Err(VideoRejection::Duration)
        );
    }
}
