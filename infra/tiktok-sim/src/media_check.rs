//! What TikTok checks on arrived media: the container by its magic bytes, and for photos
//! the format, byte size and dimensions.

use std::io::Cursor;

use image::{ImageDecoder, ImageReader};

/// Bytes needed at the start of a file to tell its type.
pub const MAGIC_LEN: usize = 12;

/// Container of an uploaded or pulled video, or `None` when it is none TikTok takes.
pub fn video_format(head: &[u8]) -> Option<&'static str> {
    if head.len() >= 8 && &head[4..8] == b"ftyp" {
        // QuickTime files carry the brand "qt  "; everything else with ftyp is ISO BMFF.
        if head.len() >= 12 && &head[8..12] == b"qt  " {
            return Some("mov");
        }
        return Some("mp4");
    }
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return Some("webm");
    }
    None
}

/// Photo formats TikTok accepts.
pub fn photo_format(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("jpeg");
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("webp");
    }
    None
}

/// Dimensions and orientation of an accepted photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoInfo {
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    pub exif_orientation: Option<u8>,
}

/// Why a photo is refused, as a TikTok fail_reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoRejection {
    Format,
    Size,
}

impl PhotoRejection {
    pub fn fail_reason(self) -> &'static str {
        match self {
            Self::Format => "file_format_check_failed",
            Self::Size => "picture_size_check_failed",
        }
    }
}

/// Limits a photo must fit.
#[derive(Debug, Clone, Copy)]
pub struct PhotoLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_bytes: u64,
}

/// Checks one downloaded photo. Only the header is decoded, never the pixels.
pub fn check_photo(bytes: &[u8], limits: PhotoLimits) -> Result<PhotoInfo, PhotoRejection> {
    let Some(format) = photo_format(bytes) else {
        return Err(PhotoRejection::Format);
    };
    if bytes.len() as u64 > limits.max_bytes {
        return Err(PhotoRejection::Size);
    }
    let image_format = match format {
        "jpeg" => image::ImageFormat::Jpeg,
        _ => image::ImageFormat::WebP,
    };
    let reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut decoder = reader.into_decoder().map_err(|_| PhotoRejection::Format)?;
    let (width, height) = decoder.dimensions();
    // A broken EXIF block is not TikTok's problem to report; record no orientation then.
    let exif_orientation = decoder
        .exif_metadata()
        .ok()
        .flatten()
        .and_then(|exif| image::metadata::Orientation::from_exif_chunk(&exif))
        .map(|o| o.to_exif());
    if width > limits.max_width || height > limits.max_height {
        return Err(PhotoRejection::Size);
    }
    Ok(PhotoInfo {
        format,
        width,
        height,
        exif_orientation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PhotoLimits = PhotoLimits {
        max_width: 1080,
        max_height: 1920,
        max_bytes: 20_000_000,
    };

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::new(width, height);
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg)
            .expect("encode test JPEG");
        out.into_inner()
    }

    #[test]
    fn video_magic() {
        assert_eq!(video_format(b"\0\0\0\x20ftypisom"), Some("mp4"));
        assert_eq!(video_format(b"\0\0\0\x14ftypqt  "), Some("mov"));
        assert_eq!(video_format(&[0x1A, 0x45, 0xDF, 0xA3, 0, 0]), Some("webm"));
        assert_eq!(video_format(b"RIFF....AVI "), None);
        assert_eq!(video_format(b""), None);
    }

    #[test]
    fn jpeg_within_limits_is_measured() {
        let info = check_photo(&jpeg(800, 600), LIMITS).expect("accepted");
        assert_eq!((info.format, info.width, info.height), ("jpeg", 800, 600));
        assert_eq!(info.exif_orientation, None);
    }

    #[test]
    fn wide_jpeg_is_refused() {
        assert_eq!(
            check_photo(&jpeg(1200, 600), LIMITS),
            Err(PhotoRejection::Size)
        );
    }

    #[test]
    fn png_is_refused() {
        let img = image::RgbImage::new(10, 10);
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("encode test PNG");
        assert_eq!(
            check_photo(&out.into_inner(), LIMITS),
            Err(PhotoRejection::Format)
        );
    }
}
