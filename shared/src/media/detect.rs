//! Media type detection by magic bytes.
//!
//! Users name files however they like: a screenshot saved as `clip.mp4`, a
//! HEIC photo called `1.jpg`. Trusting the extension would send TikTok a file
//! it rejects minutes later, after a token refresh and an upload, with an
//! error the creator cannot relate to the file. The first bytes of a file say
//! what it really is, so everything here looks only at those bytes; nothing
//! reads a key or a file name.
//!
//! All functions are pure: the caller fetches a prefix (a ranged GET of the
//! first [`DETECT_PREFIX_LEN`] bytes is enough) and passes it in.

use std::fmt;

use thiserror::Error;

/// How many leading bytes detection wants to see.
///
/// ISO BMFF needs 12 (box header and major brand) and a few more for the
/// compatible brands that tell HEIC from AVIF; an EBML header with its DocType
/// is usually under 64 bytes. 256 leaves room for unusual writers and is still
/// a trivially small ranged read.
pub const DETECT_PREFIX_LEN: usize = 256;

/// TikTok's largest accepted video, in bytes (4 GB, read as 10^9: the safe
/// reading of TikTok's "GB", see ARCHITECTURE.md).
pub const VIDEO_MAX_BYTES: u64 = 4_000_000_000;

/// What a file is, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// A video container TikTok accepts.
    Video(VideoKind),
    /// A still image (TikTok accepts only JPEG and WebP as is; the rest are
    /// converted, HEIC and AVIF cannot be converted here).
    Image(ImageKind),
    /// A Matroska file (`.mkv`): EBML like WebM, but TikTok does not accept
    /// it, so it is kept apart from [`VideoKind::WebM`] to be refused with a
    /// message that says so.
    Matroska,
    /// Anything else, including a prefix too short to tell.
    Unknown,
}

/// Video containers TikTok accepts (TIKTOK_API.md section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoKind {
    /// ISO BMFF with an MP4 family brand (isom, mp41, mp42, avc1, ...).
    Mp4,
    /// ISO BMFF with the QuickTime brand `qt  `.
    Mov,
    /// EBML with DocType `webm`.
    WebM,
}

/// Still image formats recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Jpeg,
    Png,
    WebP,
    Gif,
    /// HEIF with HEVC (iPhone photos): recognised so it can be refused clearly.
    Heic,
    /// HEIF with AV1.
    Avif,
}

impl VideoKind {
    /// Short human name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            VideoKind::Mp4 => "MP4",
            VideoKind::Mov => "MOV",
            VideoKind::WebM => "WebM",
        }
    }
}

impl ImageKind {
    /// Short human name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "JPEG",
            ImageKind::Png => "PNG",
            ImageKind::WebP => "WebP",
            ImageKind::Gif => "GIF",
            ImageKind::Heic => "HEIC",
            ImageKind::Avif => "AVIF",
        }
    }
}

impl fmt::Display for VideoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a video object cannot go to TikTok. Each message says what the file
/// is and what to do instead, because it ends up in front of the creator.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MediaError {
    #[error("the file is empty (0 bytes); upload the video again")]
    Empty,
    #[error(
        "the file is {size} bytes, more than TikTok's limit of {max} bytes (4 GB); \
         shorten or compress the video"
    )]
    TooLarge { size: u64, max: u64 },
    #[error(
        "the file is a {0} image, not a video; TikTok accepts MP4, MOV and WebM \
         (put images in a slideshow folder with a slideshow.json instead)"
    )]
    ImageNotVideo(ImageKind),
    #[error(
        "the file is a Matroska (.mkv) video, which TikTok does not accept; \
         remux or export it as MP4 (or WebM)"
    )]
    Matroska,
    #[error(
        "the file is not a recognised video; TikTok accepts MP4, MOV and WebM \
         (the file's contents decide, not its name)"
    )]
    NotVideo,
    #[error("the file looks like an MP4/MOV video but its header is broken: {0}; upload it again")]
    TruncatedHeader(String),
}

/// Tells what `bytes_prefix` (the first bytes of a file) is.
///
/// Never fails: a prefix too short or unlike anything known is
/// [`MediaKind::Unknown`].
pub fn detect(bytes_prefix: &[u8]) -> MediaKind {
    let b = bytes_prefix;
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return MediaKind::Image(ImageKind::Jpeg);
    }
    if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return MediaKind::Image(ImageKind::Png);
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return MediaKind::Image(ImageKind::Gif);
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return MediaKind::Image(ImageKind::WebP);
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        return detect_iso_bmff(b);
    }
    if b.starts_with(&EBML_MAGIC) {
        return detect_ebml(b);
    }
    MediaKind::Unknown
}

/// Checks the start of an object that should be a video for TikTok.
///
/// `prefix` is the object's first bytes (at least 12, ideally
/// [`DETECT_PREFIX_LEN`], fewer only if the object is that small) and `size`
/// its full length. Refuses empty and oversized objects, anything that is not
/// MP4, MOV or WebM, and MP4/MOV files whose `ftyp` header is cut short or
/// impossible, so that the upload fails here, with a clear reason, instead of
/// at TikTok after the transfer.
pub fn check_video(prefix: &[u8], size: u64) -> Result<VideoKind, MediaError> {
    if size == 0 {
        return Err(MediaError::Empty);
    }
    if size > VIDEO_MAX_BYTES {
        return Err(MediaError::TooLarge {
            size,
            max: VIDEO_MAX_BYTES,
        });
    }
    // An ISO BMFF start (`????ftyp`) with no room for the major brand:
    // `detect` cannot see the brand and would call it Unknown.
    if prefix.len() >= 8 && &prefix[4..8] == b"ftyp" && prefix.len() < 12 {
        return Err(MediaError::TruncatedHeader(format!(
            "only {} bytes, fewer than the 12 an ftyp box needs",
            prefix.len()
        )));
    }
    match detect(prefix) {
        MediaKind::Video(kind @ (VideoKind::Mp4 | VideoKind::Mov)) => {
            check_ftyp_box(prefix, size)?;
            Ok(kind)
        }
        MediaKind::Video(VideoKind::WebM) => Ok(VideoKind::WebM),
        MediaKind::Image(kind) => Err(MediaError::ImageNotVideo(kind)),
        MediaKind::Matroska => Err(MediaError::Matroska),
        MediaKind::Unknown => Err(MediaError::NotVideo),
    }
}

/// Checks the `ftyp` box size field against what an `ftyp` box can be.
///
/// An `ftyp` holds a major brand, a minor version and whole 4-byte compatible
/// brands, so its size is at least 16 and 16 plus a multiple of 4; it must
/// also fit inside the object. Sizes 0 ("to the end of the file") and 1 (a
/// 64-bit size follows) are legal for other boxes but not for a file-type box
/// that has to be followed by the movie.
fn check_ftyp_box(prefix: &[u8], size: u64) -> Result<(), MediaError> {
    let Some(field) = prefix.get(0..4) else {
        return Err(MediaError::TruncatedHeader(
            "fewer than 12 bytes".to_string(),
        ));
    };
    let box_size = u64::from(u32::from_be_bytes([field[0], field[1], field[2], field[3]]));
    if box_size < 16 {
        return Err(MediaError::TruncatedHeader(format!(
            "the ftyp box claims {box_size} bytes, fewer than the 16 it needs"
        )));
    }
    if !(box_size - 16).is_multiple_of(4) {
        return Err(MediaError::TruncatedHeader(format!(
            "the ftyp box claims {box_size} bytes, which is not a whole number of brands"
        )));
    }
    if box_size >= size {
        return Err(MediaError::TruncatedHeader(format!(
            "the ftyp box claims {box_size} bytes but the whole file is {size} bytes, \
             so no video follows it"
        )));
    }
    Ok(())
}

const HEIC_BRANDS: [&[u8; 4]; 8] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
];
const AVIF_BRANDS: [&[u8; 4]; 2] = [b"avif", b"avis"];
/// Generic HEIF brands: HEIC unless a compatible brand says AVIF.
const HEIF_GENERIC_BRANDS: [&[u8; 4]; 2] = [b"mif1", b"msf1"];

/// Sorts an ISO BMFF file (prefix has `ftyp` at offset 4 and at least 12
/// bytes) by its major brand, looking at the compatible brands only to tell
/// generic HEIF apart.
fn detect_iso_bmff(b: &[u8]) -> MediaKind {
    let major: &[u8] = &b[8..12];
    if major == b"qt  " {
        return MediaKind::Video(VideoKind::Mov);
    }
    if HEIC_BRANDS.iter().any(|brand| major == brand.as_slice()) {
        return MediaKind::Image(ImageKind::Heic);
    }
    if AVIF_BRANDS.iter().any(|brand| major == brand.as_slice()) {
        return MediaKind::Image(ImageKind::Avif);
    }
    if HEIF_GENERIC_BRANDS
        .iter()
        .any(|brand| major == brand.as_slice())
    {
        let compatible = compatible_brands(b);
        if compatible
            .iter()
            .any(|c| AVIF_BRANDS.iter().any(|a| *c == a.as_slice()))
        {
            return MediaKind::Image(ImageKind::Avif);
        }
        return MediaKind::Image(ImageKind::Heic);
    }
    // isom, mp41, mp42, avc1, iso2..iso9, M4V , 3gp4..3gp6, dash, ...:
    // all MP4 family brands.
    MediaKind::Video(VideoKind::Mp4)
}

/// The compatible brands of the `ftyp` box that lie within the prefix.
fn compatible_brands(b: &[u8]) -> Vec<&[u8]> {
    let declared = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let end = declared.min(b.len());
    if end <= 16 {
        return Vec::new();
    }
    b[16..end].chunks_exact(4).collect()
}

const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
const EBML_DOCTYPE_ID: u32 = 0x4282;

/// Reads the EBML header's DocType: `webm` is WebM, anything else is
/// Matroska. A header cut off by the end of the prefix before the DocType
/// gets the benefit of the doubt (WebM) and is left to TikTok; a complete
/// header without DocType is Matroska, the EBML default.
fn detect_ebml(b: &[u8]) -> MediaKind {
    let mut pos = EBML_MAGIC.len();
    let Some((header_len, n)) = read_vint(&b[pos..], true) else {
        return MediaKind::Video(VideoKind::WebM);
    };
    pos += n;
    let header_end = pos.saturating_add(usize::try_from(header_len).unwrap_or(usize::MAX));
    while pos < header_end {
        let Some((id, id_len)) = read_vint(&b[pos.min(b.len())..], false) else {
            return MediaKind::Video(VideoKind::WebM);
        };
        pos += id_len;
        let Some((len, len_len)) = read_vint(&b[pos.min(b.len())..], true) else {
            return MediaKind::Video(VideoKind::WebM);
        };
        pos += len_len;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let data_end = pos.saturating_add(len);
        if id == u64::from(EBML_DOCTYPE_ID) {
            return match b.get(pos..data_end) {
                Some(doc_type) => {
                    // DocType strings may be padded with NULs.
                    let trimmed: Vec<u8> =
                        doc_type.iter().copied().take_while(|&c| c != 0).collect();
                    if trimmed == b"webm" {
                        MediaKind::Video(VideoKind::WebM)
                    } else {
                        MediaKind::Matroska
                    }
                }
                None => MediaKind::Video(VideoKind::WebM),
            };
        }
        pos = data_end;
    }
    if header_end > b.len() {
        MediaKind::Video(VideoKind::WebM)
    } else {
        MediaKind::Matroska
    }
}

/// Reads an EBML variable-length integer. With `strip_marker` the length
/// marker bit is removed (sizes); without it the raw value is kept (IDs are
/// written with their marker). Returns the value and its length in bytes.
fn read_vint(b: &[u8], strip_marker: bool) -> Option<(u64, usize)> {
    let first = *b.first()?;
    if first == 0 {
        return None;
    }
    let len = first.leading_zeros() as usize + 1;
    let bytes = b.get(0..len)?;
    let mut value: u64 = if strip_marker {
        u64::from(first) & ((1u64 << (8 - len)) - 1)
    } else {
        u64::from(first)
    };
    for &byte in &bytes[1..] {
        value = (value << 8) | u64::from(byte);
    }
    Some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len();
        let mut v = Vec::new();
        v.extend_from_slice(&(size as u32).to_be_bytes());
        v.extend_from_slice(b"ftyp");
        v.extend_from_slice(major);
        v.extend_from_slice(&[0, 0, 2, 0]);
        for c in compatible {
            v.extend_from_slice(*c);
        }
        // The start of the next box.
        v.extend_from_slice(&[0, 0, 0, 8, b'f', b'r', b'e', b'e']);
        v
    }

    fn ebml(doc_type: &[u8]) -> Vec<u8> {
        let mut body = vec![0x42, 0x86, 0x81, 0x01]; // EBMLVersion 1
        body.extend_from_slice(&[0x42, 0x82, 0x80 | doc_type.len() as u8]);
        body.extend_from_slice(doc_type);
        let mut v = EBML_MAGIC.to_vec();
        v.push(0x80 | body.len() as u8);
        v.extend_from_slice(&body);
        v.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]); // Segment
        v
    }

    #[test]
    fn detects_iso_bmff_brands() {
        assert_eq!(
            detect(&ftyp(b"qt  ", &[b"qt  "])),
            MediaKind::Video(VideoKind::Mov)
        );
        for brand in [
            b"isom", b"mp41", b"mp42", b"avc1", b"iso5", b"M4V ", b"3gp5",
        ] {
            assert_eq!(
                detect(&ftyp(brand, &[b"isom"])),
                MediaKind::Video(VideoKind::Mp4)
            );
        }
        assert_eq!(
            detect(&ftyp(b"heic", &[b"mif1"])),
            MediaKind::Image(ImageKind::Heic)
        );
        assert_eq!(
            detect(&ftyp(b"mif1", &[b"heic"])),
            MediaKind::Image(ImageKind::Heic)
        );
        assert_eq!(
            detect(&ftyp(b"mif1", &[b"mif1", b"avif"])),
            MediaKind::Image(ImageKind::Avif)
        );
        assert_eq!(
            detect(&ftyp(b"avif", &[])),
            MediaKind::Image(ImageKind::Avif)
        );
    }

    #[test]
    fn detects_images() {
        assert_eq!(
            detect(&[0xFF, 0xD8, 0xFF, 0xE0]),
            MediaKind::Image(ImageKind::Jpeg)
        );
        assert_eq!(
            detect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            MediaKind::Image(ImageKind::Png)
        );
        assert_eq!(detect(b"GIF89a\x01\x00"), MediaKind::Image(ImageKind::Gif));
        assert_eq!(
            detect(b"RIFF\x10\0\0\0WEBPVP8 "),
            MediaKind::Image(ImageKind::WebP)
        );
        assert_eq!(detect(b"RIFF\x10\0\0\0WAVEfmt "), MediaKind::Unknown);
    }

    #[test]
    fn detects_webm_and_matroska() {
        assert_eq!(detect(&ebml(b"webm")), MediaKind::Video(VideoKind::WebM));
        assert_eq!(detect(&ebml(b"matroska")), MediaKind::Matroska);
        // Header cut by the prefix before the DocType: benefit of the doubt.
        assert_eq!(
            detect(&ebml(b"webm")[..8]),
            MediaKind::Video(VideoKind::WebM)
        );
    }

    #[test]
    fn unknown_and_short_prefixes() {
        assert_eq!(detect(b""), MediaKind::Unknown);
        assert_eq!(detect(b"%PDF-1.7"), MediaKind::Unknown);
        assert_eq!(detect(b"\0\0\0\x18ftyp"), MediaKind::Unknown);
    }

    #[test]
    fn check_video_accepts_videos() {
        let mp4 = ftyp(b"isom", &[b"isom", b"avc1"]);
        assert_eq!(check_video(&mp4, 1_000_000), Ok(VideoKind::Mp4));
        assert_eq!(
            check_video(&ftyp(b"qt  ", &[]), 1_000_000),
            Ok(VideoKind::Mov)
        );
        assert_eq!(check_video(&ebml(b"webm"), 1_000), Ok(VideoKind::WebM));
        assert_eq!(check_video(&mp4, VIDEO_MAX_BYTES), Ok(VideoKind::Mp4));
    }

    #[test]
    fn check_video_rejects_sizes() {
        let mp4 = ftyp(b"isom", &[]);
        assert_eq!(check_video(&mp4, 0), Err(MediaError::Empty));
        assert_eq!(
            check_video(&mp4, VIDEO_MAX_BYTES + 1),
            Err(MediaError::TooLarge {
                size: VIDEO_MAX_BYTES + 1,
                max: VIDEO_MAX_BYTES
            })
        );
    }

    #[test]
    fn check_video_rejects_png_renamed_mp4() {
        let err = check_video(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 5000).unwrap_err();
        assert_eq!(err, MediaError::ImageNotVideo(ImageKind::Png));
        let message = err.to_string();
        assert!(message.contains("PNG image, not a video"), "{message}");
        assert!(message.contains("MP4, MOV and WebM"), "{message}");
    }

    #[test]
    fn check_video_rejects_matroska_and_unknown() {
        assert_eq!(
            check_video(&ebml(b"matroska"), 1000),
            Err(MediaError::Matroska)
        );
        assert_eq!(check_video(b"hello world!", 12), Err(MediaError::NotVideo));
    }

    #[test]
    fn check_video_rejects_truncated_headers() {
        assert!(matches!(
            check_video(b"\0\0\0\x18ftyp", 8),
            Err(MediaError::TruncatedHeader(_))
        ));
        assert!(matches!(
            check_video(b"\0\0\0\x18ftypis", 10),
            Err(MediaError::TruncatedHeader(_))
        ));
        let mut tiny = ftyp(b"isom", &[]);
        tiny[3] = 8; // size 8: no room for the brands
        assert!(matches!(
            check_video(&tiny, 1000),
            Err(MediaError::TruncatedHeader(_))
        ));
        let mut odd = ftyp(b"isom", &[]);
        odd[3] = 18;
        assert!(matches!(
            check_video(&odd, 1000),
            Err(MediaError::TruncatedHeader(_))
        ));
        // The box claims more than the whole file.
        let header = ftyp(b"isom", &[b"isom"]);
        assert!(matches!(
            check_video(&header[..20], 20),
            Err(MediaError::TruncatedHeader(_))
        ));
    }

    #[test]
    fn vint_reading() {
        assert_eq!(read_vint(&[0x81], true), Some((1, 1)));
        assert_eq!(read_vint(&[0x40, 0x02], true), Some((2, 2)));
        assert_eq!(read_vint(&[0x42, 0x82], false), Some((0x4282, 2)));
        assert_eq!(read_vint(&[0x00], true), None);
        assert_eq!(read_vint(&[0x40], true), None);
    }
}
