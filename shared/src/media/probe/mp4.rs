//! MP4 and MOV: find the `moov` box among the top-level boxes (reading only
//! their headers), read it whole, and take the facts from it with
//! `mp4-atom`.

use mp4_atom::{Atom, Codec, Colr, Decode, Moov, StszSamples, Trak};

use super::reader::RangeReader;
use super::{FrameRate, HdrTransfer, ProbeError, VideoCodec, VideoProbe, VideoTrack};
use crate::media::detect::VideoKind;
use crate::storage::ChunkSource;

/// Top-level boxes looked at before giving up on finding a `moov`: a plain
/// file has a handful (`ftyp`, `free`, `mdat`, `moov`, `udta`); a
/// fragmented one has its `moov` before the fragments.
const MAX_TOP_LEVEL_BOXES: usize = 64;

pub(super) async fn probe<S: ChunkSource>(
    reader: &mut RangeReader<'_, S>,
    container: VideoKind,
) -> Result<VideoProbe, ProbeError> {
    let moov = find_moov(reader).await?;
    let moov = Moov::decode(&mut moov.as_ref())
        .map_err(|e| ProbeError::Unreadable(format!("the MP4 movie header (moov): {e}")))?;
    Ok(describe(&moov, container))
}

/// Walks the top-level boxes from the start and returns the whole `moov`.
async fn find_moov<S: ChunkSource>(
    reader: &mut RangeReader<'_, S>,
) -> Result<bytes::Bytes, ProbeError> {
    let size = reader.size();
    let mut at = 0u64;
    for _ in 0..MAX_TOP_LEVEL_BOXES {
        if at >= size {
            break;
        }
        let header = reader.read(at, 16).await?;
        let (kind, box_len) = box_header(&header, at, size)?;
        if mp4_atom::FourCC::new(&kind) == Moov::KIND {
            let moov = reader.read(at, box_len).await?;
            if (moov.len() as u64) < box_len {
                return Err(ProbeError::Damaged(
                    "the movie header (moov) is cut short".into(),
                ));
            }
            return Ok(moov);
        }
        at += box_len;
    }
    if at < size {
        // Unusual but not impossible: TikTok may still find a moov there.
        return Err(ProbeError::Unreadable(format!(
            "no movie header (moov) among the first {MAX_TOP_LEVEL_BOXES} top-level boxes"
        )));
    }
    Err(ProbeError::Damaged(
        "it has no movie header (moov): the file is incomplete or not a finished recording".into(),
    ))
}

/// The type and whole length of the box at `at`, checked against the
/// object's size.
fn box_header(header: &[u8], at: u64, size: u64) -> Result<([u8; 4], u64), ProbeError> {
    let cut = || ProbeError::Damaged(format!("a box header at byte {at} is cut short"));
    let field = header.get(0..8).ok_or_else(cut)?;
    let declared = u64::from(u32::from_be_bytes([field[0], field[1], field[2], field[3]]));
    let kind = [field[4], field[5], field[6], field[7]];
    let (header_len, box_len) = match declared {
        0 => (8, size - at),
        1 => {
            let large = header.get(8..16).ok_or_else(cut)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(large);
            (16, u64::from_be_bytes(b))
        }
        n => (8, n),
    };
    let name = String::from_utf8_lossy(&kind).into_owned();
    if box_len < header_len {
        return Err(ProbeError::Damaged(format!(
            "the {name:?} box at byte {at} claims {box_len} bytes, less than its header"
        )));
    }
    if at.saturating_add(box_len) > size {
        return Err(ProbeError::Damaged(format!(
            "the {name:?} box at byte {at} claims {box_len} bytes but the file ends at byte {size}"
        )));
    }
    Ok((kind, box_len))
}

fn describe(moov: &Moov, container: VideoKind) -> VideoProbe {
    let handler = |trak: &Trak| trak.mdia.hdlr.handler;
    let video = moov
        .trak
        .iter()
        .find(|t| handler(t) == mp4_atom::FourCC::new(b"vide"))
        .and_then(video_track);
    let has_audio = moov
        .trak
        .iter()
        .any(|t| handler(t) == mp4_atom::FourCC::new(b"soun"));
    VideoProbe {
        container,
        video,
        has_audio,
        duration_ms: duration_ms(moov),
        reads: 0,
        bytes_read: 0,
    }
}

/// The movie's duration: `mvhd`, or for a fragmented file `mehd`.
fn duration_ms(moov: &Moov) -> Option<u64> {
    let timescale = u64::from(moov.mvhd.timescale);
    let units = match moov.mvhd.duration {
        0 => moov.mvex.as_ref()?.mehd.as_ref()?.fragment_duration,
        // All ones: "unknown" in version 0 and 1.
        d if d == u64::from(u32::MAX) || d == u64::MAX => return None,
        d => d,
    };
    if timescale == 0 || units == 0 {
        return None;
    }
    Some(u64::try_from(u128::from(units) * 1000 / u128::from(timescale)).unwrap_or(u64::MAX))
}

fn video_track(trak: &Trak) -> Option<VideoTrack> {
    let stbl = &trak.mdia.minf.stbl;
    let entry = stbl.stsd.codecs.first()?;
    // A sample entry mp4-atom does not know (ProRes, ...) has no parsed
    // visual fields: the track header gives the size then.
    let (width, height) = match entry.visual() {
        Some(visual) => (u32::from(visual.width), u32::from(visual.height)),
        None => (
            u32::from(trak.tkhd.width.integer()),
            u32::from(trak.tkhd.height.integer()),
        ),
    };
    let (codec, colr, vp_transfer) = match entry {
        Codec::Avc1(e) => (VideoCodec::H264, e.colr.as_ref(), None),
        Codec::Avc3(e) => (VideoCodec::H264, e.colr.as_ref(), None),
        Codec::Hvc1(e) => (VideoCodec::H265, e.colr.as_ref(), None),
        Codec::Hev1(e) => (VideoCodec::H265, e.colr.as_ref(), None),
        Codec::Vp08(e) => (
            VideoCodec::Vp8,
            e.colr.as_ref(),
            Some(e.vpcc.transfer_characteristics),
        ),
        Codec::Vp09(e) => (
            VideoCodec::Vp9,
            e.colr.as_ref(),
            Some(e.vpcc.transfer_characteristics),
        ),
        Codec::Av01(e) => (VideoCodec::Av1, e.colr.as_ref(), None),
        Codec::Unknown(kind, _) if kind.to_string().starts_with("ap") => {
            (VideoCodec::ProRes, None, None)
        }
        Codec::Unknown(kind, _) => (VideoCodec::Other(kind.to_string()), None, None),
        // A visual sample entry mp4-atom knows but TikTok does not take
        // (Motion JPEG, uncompressed).
        Codec::Jpeg(_) => (VideoCodec::Other("jpeg".into()), None, None),
        _ => (VideoCodec::Other("uncompressed".into()), None, None),
    };
    let colr_transfer = colr.and_then(|c| match c {
        Colr::Nclx {
            transfer_characteristics,
            ..
        }
        | Colr::Nclc {
            transfer_characteristics,
            ..
        } => Some(u64::from(*transfer_characteristics)),
        _ => None,
    });
    let hdr = colr_transfer
        .or(vp_transfer.map(u64::from))
        .and_then(HdrTransfer::from_code);
    Some(VideoTrack {
        codec,
        width,
        height,
        frame_rate: frame_rate(trak),
        hdr,
    })
}

/// The average frame rate over the track: frames over the time they cover,
/// from the sample table. The last frame's duration is left out (writers
/// often shorten or guess it), so a constant-rate track gives its exact
/// rate however it ends.
fn frame_rate(trak: &Trak) -> Option<FrameRate> {
    let stbl = &trak.mdia.minf.stbl;
    let timescale = u64::from(trak.mdia.mdhd.timescale);
    let frames = match &stbl.stsz.samples {
        StszSamples::Identical { count, .. } => u64::from(*count),
        StszSamples::Different { sizes } => sizes.len() as u64,
    };
    let mut total: u128 = 0;
    let mut counted: u64 = 0;
    let mut last_delta: u64 = 0;
    for entry in &stbl.stts.entries {
        total += u128::from(entry.sample_count) * u128::from(entry.sample_delta);
        counted = counted.saturating_add(u64::from(entry.sample_count));
        if entry.sample_count > 0 {
            last_delta = u64::from(entry.sample_delta);
        }
    }
    if frames < 2 || timescale == 0 || counted != frames {
        return None;
    }
    let span = total.checked_sub(u128::from(last_delta))?;
    let span = u64::try_from(span).ok().filter(|s| *s > 0)?;
    // (frames - 1) / (span / timescale), kept as a fraction.
    let frames_part = u128::from(frames - 1) * u128::from(timescale);
    let (mut num, mut den) = (frames_part, u128::from(span));
    let g = gcd(num, den);
    num /= g;
    den /= g;
    Some(FrameRate {
        frames: u64::try_from(num).ok()?,
        per: u64::try_from(den).ok()?,
    })
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_headers_are_checked_against_the_file() {
        let mut header = 32u32.to_be_bytes().to_vec();
        header.extend_from_slice(b"moov");
        assert_eq!(box_header(&header, 0, 100).unwrap(), (*b"moov", 32));
        assert!(matches!(
            box_header(&header, 80, 100),
            Err(ProbeError::Damaged(_))
        ));
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&5_000_000_000u64.to_be_bytes());
        assert_eq!(
            box_header(&large, 0, 6_000_000_000).unwrap(),
            (*b"mdat", 5_000_000_000)
        );
        assert!(box_header(&large[..12], 0, 6_000_000_000).is_err());
        let mut tiny = 4u32.to_be_bytes().to_vec();
        tiny.extend_from_slice(b"free");
        assert!(box_header(&tiny, 0, 100).is_err());
        let mut rest = 0u32.to_be_bytes().to_vec();
        rest.extend_from_slice(b"mdat");
        assert_eq!(box_header(&rest, 40, 100).unwrap(), (*b"mdat", 60));
    }

    #[test]
    fn gcd_reduces() {
        assert_eq!(gcd(60_000, 1001), 1);
        assert_eq!(gcd(0, 0), 1);
        assert_eq!(gcd(30_000, 1000), 1000);
    }
}
