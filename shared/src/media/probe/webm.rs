//! WebM: the Segment's `Info` (timecode scale, duration) and `Tracks`
//! (codec, picture size, default frame duration, colour), read from the
//! headers before the first Cluster, or where the `SeekHead` points when a
//! writer put them after it.

use super::reader::RangeReader;
use super::{FrameRate, HdrTransfer, ProbeError, VideoCodec, VideoProbe, VideoTrack};
use crate::media::detect::VideoKind;
use crate::media::ebml::{self, EBML_MAGIC, UNKNOWN_SIZE};
use crate::tiktok::upload::ChunkSource;

const SEGMENT: u64 = 0x1853_8067;
const SEEK_HEAD: u64 = 0x114D_9B74;
const SEEK: u64 = 0x4DBB;
const SEEK_ID: u64 = 0x53AB;
const SEEK_POSITION: u64 = 0x53AC;
const INFO: u64 = 0x1549_A966;
const TIMECODE_SCALE: u64 = 0x2A_D7B1;
const DURATION: u64 = 0x4489;
const TRACKS: u64 = 0x1654_AE6B;
const TRACK_ENTRY: u64 = 0xAE;
const TRACK_TYPE: u64 = 0x83;
const CODEC_ID: u64 = 0x86;
const DEFAULT_DURATION: u64 = 0x23_E383;
const VIDEO: u64 = 0xE0;
const PIXEL_WIDTH: u64 = 0xB0;
const PIXEL_HEIGHT: u64 = 0xBA;
const COLOUR: u64 = 0x55B0;
const TRANSFER_CHARACTERISTICS: u64 = 0x55BA;
const CLUSTER: u64 = 0x1F43_B675;

/// Segment children looked at before giving up.
const MAX_SEGMENT_CHILDREN: usize = 64;

/// What `Info` and `Tracks` said.
#[derive(Default)]
struct Found {
    timecode_scale: Option<u64>,
    duration: Option<f64>,
    info_seen: bool,
    tracks_seen: bool,
    video: Option<VideoTrack>,
    has_audio: bool,
}

pub(super) async fn probe<S: ChunkSource>(
    reader: &mut RangeReader<'_, S>,
) -> Result<VideoProbe, ProbeError> {
    let size = reader.size();
    let head = reader.head().await?;
    // The EBML header, then the Segment.
    let ebml = ebml::read_header(&head).ok_or_else(|| damaged("the EBML header is cut short"))?;
    if head.get(..4) != Some(&EBML_MAGIC[..]) || ebml.size == UNKNOWN_SIZE {
        return Err(damaged("the EBML header is malformed"));
    }
    let segment_at = ebml.len as u64 + ebml.size;
    let segment = element_at(reader, segment_at).await?;
    if segment.id != SEGMENT {
        return Err(damaged("no Segment follows the EBML header"));
    }
    let data_start = segment_at + segment.len as u64;
    let data_end = match segment.size {
        UNKNOWN_SIZE => size,
        n => data_start.saturating_add(n).min(size),
    };

    let mut found = Found::default();
    let mut seek_targets: Vec<(u64, u64)> = Vec::new();
    let mut at = data_start;
    for _ in 0..MAX_SEGMENT_CHILDREN {
        if at >= data_end || (found.info_seen && found.tracks_seen) {
            break;
        }
        let child = element_at(reader, at).await?;
        let body_at = at + child.len as u64;
        match child.id {
            CLUSTER => break,
            INFO | TRACKS | SEEK_HEAD => {
                let body = read_body(reader, body_at, child.size, data_end).await?;
                match child.id {
                    INFO => read_info(&body, &mut found),
                    TRACKS => read_tracks(&body, &mut found),
                    _ => seek_targets = read_seek_head(&body),
                }
            }
            _ => {}
        }
        if child.size == UNKNOWN_SIZE {
            break;
        }
        at = body_at.saturating_add(child.size);
    }
    // A writer that put Info or Tracks after the clusters says where in
    // its SeekHead.
    for (id, position) in seek_targets {
        let wanted = (id == INFO && !found.info_seen) || (id == TRACKS && !found.tracks_seen);
        if !wanted {
            continue;
        }
        let at = data_start.saturating_add(position);
        let element = element_at(reader, at).await?;
        if element.id != id {
            continue;
        }
        let body = read_body(reader, at + element.len as u64, element.size, data_end).await?;
        if id == INFO {
            read_info(&body, &mut found);
        } else {
            read_tracks(&body, &mut found);
        }
    }
    if !found.tracks_seen {
        return Err(damaged("it has no track list (Tracks)"));
    }
    let scale = found.timecode_scale.unwrap_or(1_000_000);
    let duration_ms = found
        .duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(|d| (d * scale as f64 / 1_000_000.0) as u64);
    Ok(VideoProbe {
        container: VideoKind::WebM,
        video: found.video,
        has_audio: found.has_audio,
        duration_ms,
        reads: 0,
        bytes_read: 0,
    })
}

fn damaged(what: &str) -> ProbeError {
    ProbeError::Damaged(what.to_string())
}

/// The element header at `at`.
async fn element_at<S: ChunkSource>(
    reader: &mut RangeReader<'_, S>,
    at: u64,
) -> Result<ebml::Header, ProbeError> {
    let bytes = reader.read(at, 12).await?;
    ebml::read_header(&bytes)
        .ok_or_else(|| ProbeError::Damaged(format!("an element header at byte {at} is cut short")))
}

/// An element's body, which must end inside its parent.
async fn read_body<S: ChunkSource>(
    reader: &mut RangeReader<'_, S>,
    at: u64,
    size: u64,
    parent_end: u64,
) -> Result<bytes::Bytes, ProbeError> {
    if size == UNKNOWN_SIZE || at.saturating_add(size) > parent_end {
        return Err(ProbeError::Damaged(format!(
            "a header element at byte {at} runs past the end of the file"
        )));
    }
    reader.read(at, size).await
}

/// The (id, body) pairs of the elements laid out in `data`; stops at the
/// first that does not fit.
fn children(data: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(header) = data.get(pos..).and_then(ebml::read_header) {
        let start = pos + header.len;
        let Some(end) = usize::try_from(header.size)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|end| *end <= data.len())
        else {
            break;
        };
        out.push((header.id, &data[start..end]));
        pos = end;
    }
    out
}

fn read_info(body: &[u8], found: &mut Found) {
    found.info_seen = true;
    for (id, value) in children(body) {
        match id {
            TIMECODE_SCALE => found.timecode_scale = ebml::read_uint(value).filter(|s| *s > 0),
            DURATION => found.duration = ebml::read_float(value),
            _ => {}
        }
    }
}

fn read_tracks(body: &[u8], found: &mut Found) {
    found.tracks_seen = true;
    for (id, entry) in children(body) {
        if id != TRACK_ENTRY {
            continue;
        }
        let mut track_type = None;
        let mut codec_id = String::new();
        let mut default_duration = None;
        let mut size = (0u64, 0u64);
        let mut transfer = None;
        for (id, value) in children(entry) {
            match id {
                TRACK_TYPE => track_type = ebml::read_uint(value),
                CODEC_ID => {
                    codec_id = String::from_utf8_lossy(value)
                        .trim_end_matches('\0')
                        .to_string();
                }
                DEFAULT_DURATION => default_duration = ebml::read_uint(value).filter(|d| *d > 0),
                VIDEO => {
                    for (id, value) in children(value) {
                        match id {
                            PIXEL_WIDTH => size.0 = ebml::read_uint(value).unwrap_or(0),
                            PIXEL_HEIGHT => size.1 = ebml::read_uint(value).unwrap_or(0),
                            COLOUR => {
                                transfer = children(value)
                                    .into_iter()
                                    .find(|(id, _)| *id == TRANSFER_CHARACTERISTICS)
                                    .and_then(|(_, v)| ebml::read_uint(v));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        match track_type {
            Some(1) if found.video.is_none() => {
                found.video = Some(VideoTrack {
                    codec: codec(&codec_id),
                    width: u32::try_from(size.0).unwrap_or(u32::MAX),
                    height: u32::try_from(size.1).unwrap_or(u32::MAX),
                    frame_rate: default_duration.map(|ns| FrameRate {
                        frames: 1_000_000_000,
                        per: ns,
                    }),
                    hdr: transfer.and_then(HdrTransfer::from_code),
                });
            }
            Some(2) => found.has_audio = true,
            _ => {}
        }
    }
}

fn codec(codec_id: &str) -> VideoCodec {
    match codec_id {
        "V_VP8" => VideoCodec::Vp8,
        "V_VP9" => VideoCodec::Vp9,
        "V_AV1" => VideoCodec::Av1,
        "V_MPEG4/ISO/AVC" => VideoCodec::H264,
        "V_MPEGH/ISO/HEVC" => VideoCodec::H265,
        "V_PRORES" => VideoCodec::ProRes,
        other => VideoCodec::Other(other.chars().take(32).collect()),
    }
}

/// The (element id, position in the Segment) pairs of a `SeekHead`.
fn read_seek_head(body: &[u8]) -> Vec<(u64, u64)> {
    children(body)
        .into_iter()
        .filter(|(id, _)| *id == SEEK)
        .filter_map(|(_, seek)| {
            let fields = children(seek);
            let id = fields
                .iter()
                .find(|(id, _)| *id == SEEK_ID)
                .and_then(|(_, v)| ebml::read_uint(v))?;
            let position = fields
                .iter()
                .find(|(id, _)| *id == SEEK_POSITION)
                .and_then(|(_, v)| ebml::read_uint(v))?;
            Some((id, position))
        })
        .collect()
}
