//! HEIC/HEIF photos: the primary image, decoded in pure Rust.
//!
//! iPhones (and many Android phones) store photos as HEIF: a primary image
//! that is usually a grid of 512 × 512 HEVC tiles, 8- or 10-bit, with a
//! Display P3 profile, `irot`/`imir` transforms, and helper items that are
//! not the photo (a thumbnail, depth and HDR gain maps). `heifer` decodes the
//! primary image with its grid, alpha plane and transforms, and ignores the
//! helper items; this module adds what the slideshow needs around it:
//!
//! - a look at the container first, so that a file coded with something
//!   other than HEVC (AVC, JPEG, uncompressed, VVC, AV1) is refused with a
//!   message naming what is inside, and a decompression bomb before any
//!   pixel is allocated;
//! - the embedded ICC profile (or the `nclx` colour description) for
//!   [`super::colour`], which converts to sRGB after the photo is fitted,
//!   exactly as for other formats.
//!
//! Orientation: HEIF's `irot` and `imir` are normative and `heifer` applies
//! them. The EXIF orientation an iPhone also writes describes the same turn
//! (HEIF says it is informative only), so it is not applied a second time.

use heifer::heifer_isobmff::boxes::{ColorInfo, Property};
use heifer::heifer_isobmff::{HeifFile, ItemId};
use image::{DynamicImage, RgbaImage};
use thiserror::Error;

/// Bytes of memory per pixel a HEIC decode holds at its peak: the RGBA
/// canvas (4), plus, for a single coded image, its decoded YUV planes at 16
/// bits (3 for 4:2:0; grids decode tile by tile, far less).
pub const HEIC_BYTES_PER_PIXEL: u64 = 7;

/// Why a HEIF file could not be decoded. The messages speak to the
/// creator; the batch error adds the image's name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeicError {
    /// The photo inside is not HEVC-coded.
    #[error(
        "the HEIF image is coded as {codec}, not as the HEVC (HEIC) phones write, and \
         cannot be converted; export it as JPEG and upload it again"
    )]
    UnsupportedCodec {
        /// What the photo is coded as (AVC, JPEG, uncompressed, …).
        codec: String,
    },
    /// A HEIF feature `heifer` does not decode.
    #[error(
        "the HEIC image uses something not supported here ({0}); export it as JPEG and upload it again"
    )]
    Unsupported(String),
    /// Cut short or corrupt.
    #[error("the HEIC image is damaged or incomplete ({0}); upload it again or export it as JPEG")]
    Damaged(String),
    /// Too many pixels to decode within the memory allowed (a
    /// decompression bomb, or simply a huge photo); refused before decoding.
    #[error(
        "the HEIC image is {width} × {height} pixels, too large to convert (it would need \
         {bytes} bytes of memory, more than {max}); scale it down and upload it again"
    )]
    TooManyPixels {
        /// The width the container claims, in pixels.
        width: u32,
        /// The height the container claims, in pixels.
        height: u32,
        /// The memory decoding would take at its peak, in bytes.
        bytes: u64,
        /// The memory allowed, in bytes.
        max: u64,
    },
}

/// The colour description of the primary image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeicColour {
    /// An embedded ICC profile.
    Icc(Vec<u8>),
    /// H.273 code points (`nclx`): primaries and transfer characteristics.
    Nclx {
        /// The colour primaries code (1: BT.709/sRGB, 12: Display P3, …).
        primaries: u16,
        /// The transfer characteristics code (13: sRGB, 16: PQ, 18: HLG, …).
        transfer: u16,
    },
    /// Nothing said: sRGB, as for every other untagged photo.
    Unspecified,
}

/// What [`inspect`] learns from the container alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeicInfo {
    /// Stored size of the primary image (before `irot`).
    pub width: u32,
    /// Stored height of the primary image, in pixels (before `irot`).
    pub height: u32,
    /// How the image's colours are described.
    pub colour: HeicColour,
    /// Whether the primary image is turned or mirrored for display (`irot`,
    /// `imir`), which [`decode`] applies.
    pub transformed: bool,
}

/// A decoded primary image: 8-bit RGBA, transforms applied, in the colour
/// space [`HeicInfo::colour`] describes.
pub struct HeicImage {
    /// What the container said about it.
    pub info: HeicInfo,
    /// The pixels, as displayed (turned and mirrored already).
    pub image: DynamicImage,
}

/// Reads the container: the primary image's codec, size and colour, with
/// no pixel decoded.
pub fn inspect(bytes: &[u8]) -> Result<HeicInfo, HeicError> {
    let file = HeifFile::parse(bytes).map_err(container_error)?;
    inspect_file(&file)
}

fn inspect_file(file: &HeifFile<'_>) -> Result<HeicInfo, HeicError> {
    let primary = file.primary_id;
    check_codec(file, primary)?;
    let (width, height) = file
        .image_size(primary)
        .map_err(container_error)?
        .ok_or_else(|| HeicError::Damaged("the primary image has no size (ispe)".into()))?;
    let transformed = file
        .item_properties(primary)
        .map_err(container_error)?
        .any(|p| matches!(p, Property::Rotation(1..) | Property::Mirror(_)));
    Ok(HeicInfo {
        width,
        height,
        colour: colour(file, primary)?,
        transformed,
    })
}

/// Decodes the primary image, refusing it before any pixel is allocated
/// when it would need more than `max_bytes` (see [`HEIC_BYTES_PER_PIXEL`]).
pub fn decode(bytes: &[u8], max_bytes: u64) -> Result<HeicImage, HeicError> {
    let file = HeifFile::parse(bytes).map_err(container_error)?;
    let info = inspect_file(&file)?;
    let needed = pixel_bytes(info.width, info.height);
    if needed > max_bytes {
        return Err(HeicError::TooManyPixels {
            width: info.width,
            height: info.height,
            bytes: needed,
            max: max_bytes,
        });
    }
    let options = heifer::Options {
        // Slideshows convert several photos at once, one per worker: tiles
        // on more threads would only compete with them.
        max_threads: 1,
        max_pixels: (max_bytes / HEIC_BYTES_PER_PIXEL).max(1),
    };
    let decoded = heifer::decode_rgba8(bytes, &options).map_err(decode_error)?;
    let (width, height) = (decoded.width, decoded.height);
    let image = RgbaImage::from_raw(width, height, decoded.data).ok_or_else(|| {
        HeicError::Damaged(format!(
            "the decoder returned a wrong buffer for {width} × {height}"
        ))
    })?;
    Ok(HeicImage {
        info,
        image: DynamicImage::ImageRgba8(image),
    })
}

/// The memory [`decode`] needs for a `width` × `height` primary image.
pub fn pixel_bytes(width: u32, height: u32) -> u64 {
    (u64::from(width) * u64::from(height)).saturating_mul(HEIC_BYTES_PER_PIXEL)
}

/// Refuses a primary image (or the tiles of a grid, or the source of an
/// `iden`) coded with anything but HEVC, naming the codec.
fn check_codec(file: &HeifFile<'_>, id: ItemId) -> Result<(), HeicError> {
    let mut current = id;
    // Derived images point at their sources; four levels is more than any
    // real file uses, and bounds a reference loop.
    for _ in 0..4 {
        let item = file.item(current).map_err(container_error)?;
        match &item.item_type.0 {
            b"hvc1" | b"hev1" => return Ok(()),
            b"grid" | b"iden" | b"iovl" => match file.referenced_items(current, b"dimg").first() {
                Some(&source) if source != current => current = source,
                _ => {
                    return Err(HeicError::Damaged(format!(
                        "the {} image has no source images",
                        item.item_type
                    )));
                }
            },
            other => {
                return Err(HeicError::UnsupportedCodec {
                    codec: codec_name(other),
                });
            }
        }
    }
    Err(HeicError::Damaged("derived images nest too deeply".into()))
}

/// A HEIF item type as people know the codec.
fn codec_name(item_type: &[u8; 4]) -> String {
    match item_type {
        b"avc1" => "AVC (H.264)".into(),
        b"jpeg" => "JPEG".into(),
        b"unci" => "uncompressed (unci)".into(),
        b"vvc1" | b"vvi1" => "VVC (H.266)".into(),
        b"av01" => "AV1 (AVIF)".into(),
        b"j2k1" => "JPEG 2000".into(),
        b"mski" => "mask".into(),
        other => {
            let text = String::from_utf8_lossy(other);
            format!("`{}`-coded", text.trim_end())
        }
    }
}

/// The colour description of `id`, or of its first source for a derived
/// image that has none of its own.
fn colour(file: &HeifFile<'_>, id: ItemId) -> Result<HeicColour, HeicError> {
    if let Some(icc) = file.icc_profile(id).map_err(container_error)? {
        return Ok(HeicColour::Icc(icc.to_vec()));
    }
    let mut current = id;
    for _ in 0..4 {
        let nclx = file
            .item_properties(current)
            .map_err(container_error)?
            .find_map(|p| match p {
                Property::Color(ColorInfo::Nclx {
                    primaries,
                    transfer,
                    ..
                }) => Some(HeicColour::Nclx {
                    primaries: *primaries,
                    transfer: *transfer,
                }),
                _ => None,
            });
        if let Some(nclx) = nclx {
            return Ok(nclx);
        }
        match file.referenced_items(current, b"dimg").first() {
            Some(&source) if source != current => current = source,
            _ => break,
        }
    }
    Ok(HeicColour::Unspecified)
}

fn container_error(error: heifer::heifer_isobmff::Error) -> HeicError {
    match error {
        heifer::heifer_isobmff::Error::UnexpectedEof => {
            HeicError::Damaged("the file ends before its data does".into())
        }
        heifer::heifer_isobmff::Error::Unimplemented(what) => HeicError::Unsupported(what.into()),
        other => HeicError::Damaged(other.to_string()),
    }
}

fn decode_error(error: heifer::Error) -> HeicError {
    match error {
        heifer::Error::Container(inner) => container_error(inner),
        heifer::Error::Unsupported(what) => HeicError::Unsupported(what),
        other => HeicError::Damaged(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_say_what_is_inside() {
        assert_eq!(codec_name(b"avc1"), "AVC (H.264)");
        assert_eq!(codec_name(b"unci"), "uncompressed (unci)");
        assert_eq!(codec_name(b"vvc1"), "VVC (H.266)");
        assert_eq!(codec_name(b"xyz "), "`xyz`-coded");
    }

    #[test]
    fn garbage_is_damaged_not_a_panic() {
        for bytes in [&b""[..], b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", &[0xFF; 64]] {
            assert!(matches!(
                inspect(bytes),
                Err(HeicError::Damaged(_) | HeicError::Unsupported(_))
            ));
        }
    }

    #[test]
    fn pixel_bytes_saturates() {
        assert_eq!(pixel_bytes(10, 10), 700);
        assert_eq!(pixel_bytes(u32::MAX, u32::MAX), u64::MAX);
    }
}
