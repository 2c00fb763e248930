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

use super::ebml::{EBML_MAGIC, read_vint};

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
    /// An ISO BMFF audio file (iTunes brands): a video container with no
    /// picture, which TikTok refuses after the whole upload.
    Audio(AudioKind),
    /// A 3GPP or 3GPP2 phone video (`3gp4`, `3g2a`, ...): ISO BMFF, but not a
    /// format TikTok lists, and usually H.263 or MPEG-4 Part 2 with AMR sound,
    /// codecs TikTok does not take either.
    ThreeGpp,
    /// An ISO BMFF file whose brands name nothing known here (a camera raw
    /// container, a JPEG 2000 in `ftyp`, a private format). Holds the major
    /// brand so the message can name it.
    OtherIsoMedia([u8; 4]),
    /// Anything else, including a prefix too short to tell.
    Unknown,
}

/// ISO BMFF audio brands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioKind {
    /// `M4A ` / `F4A `: AAC or ALAC music.
    M4a,
    /// `M4B ` / `F4B `: an audiobook.
    M4b,
    /// `M4P `: protected (DRM) iTunes music.
    M4p,
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
    /// JPEG (JFIF or Exif).
    Jpeg,
    /// PNG.
    Png,
    /// WebP, lossy or lossless.
    WebP,
    /// GIF; only its first frame is converted.
    Gif,
    /// HEIF with HEVC (iPhone photos): recognised so it can be refused clearly.
    Heic,
    /// HEIF with AV1.
    Avif,
    /// Canon's CR3 raw photo (ISO BMFF brand `crx `).
    CanonRaw,
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
            ImageKind::CanonRaw => "Canon raw (CR3)",
        }
    }
}

impl AudioKind {
    /// Short human name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            AudioKind::M4a => "M4A",
            AudioKind::M4b => "M4B",
            AudioKind::M4p => "M4P",
        }
    }
}

impl fmt::Display for AudioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
    /// A zero-byte object.
    #[error("the file is empty (0 bytes); upload the video again")]
    Empty,
    /// Over TikTok's 4 GB.
    #[error(
        "the file is {size} bytes, more than TikTok's limit of {max} bytes (4 GB); \
         shorten or compress the video"
    )]
    TooLarge {
        /// The object's size, in bytes.
        size: u64,
        /// The limit, in bytes.
        max: u64,
    },
    /// An image (it belongs in a slideshow folder).
    #[error(
        "the file is a {0} image, not a video; TikTok accepts MP4, MOV and WebM \
         (put images in a slideshow folder with a slideshow.json instead)"
    )]
    ImageNotVideo(ImageKind),
    /// A Matroska (`.mkv`) file: TikTok takes WebM, not general Matroska.
    #[error(
        "the file is a Matroska (.mkv) video, which TikTok does not accept; \
         remux or export it as MP4 (or WebM)"
    )]
    Matroska,
    /// An MPEG-4 audio file (M4A and kin): no picture.
    #[error(
        "the file is an audio file ({0}), not a video; TikTok accepts MP4, MOV and WebM \
         videos with a picture"
    )]
    AudioNotVideo(AudioKind),
    /// A 3GP phone video.
    #[error(
        "the file is a 3GP phone video, which TikTok does not accept; \
         export or convert it to MP4 (H.264)"
    )]
    ThreeGpp,
    /// An ISO media file (MP4's family) of a brand that is not a video
    /// TikTok takes.
    #[error(
        "the file is an ISO media file of type {brand:?}, not an MP4 or MOV video; \
         TikTok accepts MP4, MOV and WebM"
    )]
    OtherIsoMedia {
        /// The `ftyp` major brand, as read.
        brand: String,
    },
    /// Nothing recognised by its first bytes.
    #[error(
        "the file is not a recognised video; TikTok accepts MP4, MOV and WebM \
         (the file's contents decide, not its name)"
    )]
    NotVideo,
    /// An MP4/MOV whose first boxes are cut short or malformed; the text says
    /// where.
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
        MediaKind::Audio(kind) => Err(MediaError::AudioNotVideo(kind)),
        MediaKind::ThreeGpp => Err(MediaError::ThreeGpp),
        MediaKind::OtherIsoMedia(brand) => Err(MediaError::OtherIsoMedia {
            brand: brand_text(brand),
        }),
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

/// Major or compatible brands of MP4 files that carry video: ISO base
/// media (`isom`, `iso2`..`iso9`), MP4 v1/v2 and MPEG-7 in MP4, AVC, DASH
/// and fragmented files, iTunes video (`M4V `, `M4VH`, `M4VP`) and Sony's
/// PSP MP4 (`MSNV`). An allowlist, not "anything in an `ftyp`": the same
/// container holds music, photos and camera raws, and TikTok refuses those
/// only after the whole upload.
const MP4_VIDEO_BRANDS: [&[u8; 4]; 18] = [
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
    b"mp42", b"mp71", b"avc1", b"dash", b"M4V ", b"M4VH", b"M4VP", b"MSNV",
];
/// QuickTime's brand.
const QUICKTIME_BRAND: &[u8; 4] = b"qt  ";
/// iTunes audio brands (and Adobe's F4A/F4B twins).
const AUDIO_BRANDS: [(&[u8; 4], AudioKind); 5] = [
    (b"M4A ", AudioKind::M4a),
    (b"F4A ", AudioKind::M4a),
    (b"M4B ", AudioKind::M4b),
    (b"F4B ", AudioKind::M4b),
    (b"M4P ", AudioKind::M4p),
];
/// HEVC-coded HEIF (HEIC) and AVC-coded HEIF brands, images and sequences.
const HEIC_BRANDS: [&[u8; 4]; 10] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"avci", b"avcs",
];
const AVIF_BRANDS: [&[u8; 4]; 2] = [b"avif", b"avis"];
/// Generic HEIF brands: HEIC unless a compatible brand says AVIF.
const HEIF_GENERIC_BRANDS: [&[u8; 4]; 3] = [b"mif1", b"mif2", b"msf1"];
/// Canon CR3 raw photos.
const CANON_RAW_BRAND: &[u8; 4] = b"crx ";

fn is_in(brand: &[u8], list: &[&[u8; 4]]) -> bool {
    list.iter().any(|b| brand == b.as_slice())
}

/// 3GPP (`3gp4`, `3gg6`, `3ge7`, ...) and 3GPP2 (`3g2a`, ...) brands all
/// start with `3g`.
fn is_3gpp(brand: &[u8]) -> bool {
    brand.starts_with(b"3g")
}

/// What a single brand says the file is, if it says anything.
fn brand_kind(brand: &[u8], compatible: &[&[u8]]) -> Option<MediaKind> {
    if brand == QUICKTIME_BRAND.as_slice() {
        return Some(MediaKind::Video(VideoKind::Mov));
    }
    if is_in(brand, &MP4_VIDEO_BRANDS) {
        return Some(MediaKind::Video(VideoKind::Mp4));
    }
    if let Some((_, kind)) = AUDIO_BRANDS.iter().find(|(b, _)| brand == b.as_slice()) {
        return Some(MediaKind::Audio(*kind));
    }
    if is_in(brand, &HEIC_BRANDS) {
        return Some(MediaKind::Image(ImageKind::Heic));
    }
    if is_in(brand, &AVIF_BRANDS) {
        return Some(MediaKind::Image(ImageKind::Avif));
    }
    if is_in(brand, &HEIF_GENERIC_BRANDS) {
        if compatible.iter().any(|c| is_in(c, &AVIF_BRANDS)) {
            return Some(MediaKind::Image(ImageKind::Avif));
        }
        return Some(MediaKind::Image(ImageKind::Heic));
    }
    if brand == CANON_RAW_BRAND.as_slice() {
        return Some(MediaKind::Image(ImageKind::CanonRaw));
    }
    if is_3gpp(brand) {
        return Some(MediaKind::ThreeGpp);
    }
    None
}

/// Sorts an ISO BMFF file (prefix has `ftyp` at offset 4 and at least 12
/// bytes) by its brands.
///
/// The major brand decides when it is one known here. A major brand that is
/// not (camera makers' own, such as Sony's `XAVC`, or a new one) is judged
/// by the compatible brands, which list the specifications the file follows:
/// a video brand among them makes it a video (MP4 first, the QuickTime brand
/// only without one), else the first brand that names something else wins,
/// else it is refused under its own brand name. Audio and still-image brands
/// are never let through, since TikTok refuses them only after the upload.
fn detect_iso_bmff(b: &[u8]) -> MediaKind {
    let major: &[u8] = &b[8..12];
    let compatible = compatible_brands(b);
    if let Some(kind) = brand_kind(major, &compatible) {
        return kind;
    }
    if compatible.iter().any(|c| is_in(c, &MP4_VIDEO_BRANDS)) {
        return MediaKind::Video(VideoKind::Mp4);
    }
    if compatible.contains(&QUICKTIME_BRAND.as_slice()) {
        return MediaKind::Video(VideoKind::Mov);
    }
    if let Some(kind) = compatible.iter().find_map(|c| brand_kind(c, &compatible)) {
        return kind;
    }
    MediaKind::OtherIsoMedia([major[0], major[1], major[2], major[3]])
}

/// A brand as text for messages: printable ASCII as it is (trailing spaces
/// dropped, as in `M4A `), anything else as hex.
fn brand_text(brand: [u8; 4]) -> String {
    if brand.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        String::from_utf8_lossy(&brand).trim_end().to_string()
    } else {
        brand.iter().map(|c| format!("{c:02x}")).collect()
    }
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
            b"isom", b"mp41", b"mp42", b"avc1", b"iso5", b"M4V ", b"dash",
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
    fn every_allowlisted_mp4_brand_is_a_video() {
        for brand in MP4_VIDEO_BRANDS {
            // As the major brand, and as the only allowlisted compatible
            // brand behind a major brand nobody registered.
            assert_eq!(
                detect(&ftyp(brand, &[])),
                MediaKind::Video(VideoKind::Mp4),
                "{brand:?}"
            );
            assert_eq!(
                detect(&ftyp(b"XAVC", &[b"XAVC", brand])),
                MediaKind::Video(VideoKind::Mp4),
                "XAVC + {brand:?}"
            );
        }
        // A QuickTime-compatible file under a private major brand.
        assert_eq!(
            detect(&ftyp(b"NKN1", &[b"qt  "])),
            MediaKind::Video(VideoKind::Mov)
        );
    }

    #[test]
    fn audio_brands_are_audio_even_when_mp4_compatible() {
        // iTunes writes M4A with mp42 and isom as compatible brands: the
        // major brand decides.
        for (brand, kind) in [
            (b"M4A ", AudioKind::M4a),
            (b"M4B ", AudioKind::M4b),
            (b"M4P ", AudioKind::M4p),
            (b"F4A ", AudioKind::M4a),
        ] {
            assert_eq!(
                detect(&ftyp(brand, &[brand, b"mp42", b"isom"])),
                MediaKind::Audio(kind),
                "{brand:?}"
            );
        }
        // An unknown major brand that only says M4A.
        assert_eq!(
            detect(&ftyp(b"abcd", &[b"M4A "])),
            MediaKind::Audio(AudioKind::M4a)
        );
    }

    #[test]
    fn still_image_brands_are_images_even_when_iso_compatible() {
        for (major, compatible, kind) in [
            (b"heic", &[b"mif1", b"heic"], ImageKind::Heic),
            (b"heix", &[b"mif1", b"heix"], ImageKind::Heic),
            (b"mif1", &[b"mif1", b"heic"], ImageKind::Heic),
            (b"msf1", &[b"msf1", b"hevc"], ImageKind::Heic),
            (b"avif", &[b"mif1", b"avif"], ImageKind::Avif),
            (b"mif1", &[b"mif1", b"avif"], ImageKind::Avif),
            (b"crx ", &[b"crx ", b"isom"], ImageKind::CanonRaw),
        ] {
            assert_eq!(
                detect(&ftyp(major, compatible)),
                MediaKind::Image(kind),
                "{major:?}"
            );
        }
    }

    #[test]
    fn three_gpp_and_unknown_brands_are_not_mp4() {
        for brand in [b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"3ge7"] {
            assert_eq!(
                detect(&ftyp(brand, &[brand, b"isom"])),
                MediaKind::ThreeGpp,
                "{brand:?}"
            );
        }
        assert_eq!(
            detect(&ftyp(b"jpx ", &[b"jpx ", b"jp2 "])),
            MediaKind::OtherIsoMedia(*b"jpx ")
        );
        assert_eq!(
            detect(&ftyp(b"abcd", &[])),
            MediaKind::OtherIsoMedia(*b"abcd")
        );
    }

    #[test]
    fn check_video_refuses_audio_images_3gp_and_unknown_brands_clearly() {
        let size = 1_000_000;
        let err = check_video(&ftyp(b"M4A ", &[b"M4A ", b"mp42", b"isom"]), size).unwrap_err();
        assert_eq!(err, MediaError::AudioNotVideo(AudioKind::M4a));
        assert!(
            err.to_string().contains("an audio file (M4A), not a video"),
            "{err}"
        );
        let err = check_video(&ftyp(b"M4B ", &[b"isom"]), size).unwrap_err();
        assert!(err.to_string().contains("(M4B)"), "{err}");

        let err = check_video(&ftyp(b"heic", &[b"mif1"]), size).unwrap_err();
        assert_eq!(err, MediaError::ImageNotVideo(ImageKind::Heic));
        assert!(err.to_string().contains("HEIC image, not a video"), "{err}");
        let err = check_video(&ftyp(b"avif", &[b"mif1"]), size).unwrap_err();
        assert_eq!(err, MediaError::ImageNotVideo(ImageKind::Avif));
        let err = check_video(&ftyp(b"mif1", &[b"mif1"]), size).unwrap_err();
        assert_eq!(err, MediaError::ImageNotVideo(ImageKind::Heic));
        let err = check_video(&ftyp(b"crx ", &[b"crx ", b"isom"]), size).unwrap_err();
        assert!(err.to_string().contains("CR3"), "{err}");

        let err = check_video(&ftyp(b"3gp4", &[b"isom", b"3gp4"]), size).unwrap_err();
        assert_eq!(err, MediaError::ThreeGpp);
        assert!(err.to_string().contains("3GP"), "{err}");

        let err = check_video(&ftyp(b"abcd", &[b"abcd"]), size).unwrap_err();
        assert_eq!(
            err,
            MediaError::OtherIsoMedia {
                brand: "abcd".to_string()
            }
        );
        let err = check_video(&ftyp(&[0, 1, 2, 3], &[]), size).unwrap_err();
        assert!(err.to_string().contains("00010203"), "{err}");

        // A camera's private major brand with MP4 compatibility still goes.
        assert_eq!(
            check_video(&ftyp(b"XAVC", &[b"XAVC", b"mp42", b"iso2"]), size),
            Ok(VideoKind::Mp4)
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
}
