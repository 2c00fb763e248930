//! Any photo to a TikTok-ready JPEG.
//!
//! TikTok's photo posts take JPEG or WebP only, at most 1080p and 20 MB
//! (TIKTOK_API.md section 5); creators drop PNG screenshots, phone JPEGs with
//! EXIF rotation, WebPs with transparency and the odd GIF. Every image is
//! therefore re-encoded the same way: decode, flatten alpha onto white, fit
//! inside 1080 × 1920, convert an embedded colour profile to sRGB, apply the
//! EXIF orientation, encode as baseline 4:2:0 JPEG.
//!
//! The pipeline: libjpeg-turbo decodes JPEGs at reduced scale (the `image`
//! crate the other formats, `heifer` HEIC), `fast_image_resize` (Lanczos3)
//! resizes and libjpeg-turbo encodes; `make bench-slideshow` measures it
//! beside Pillow and libvips. Conversion works on bytes in memory and does no I/O;
//! [`convert_all`] loads each input through a [`PhotoSource`] only when a
//! worker picks it up, so at most one encoded input per worker is held.

use std::io::{BufRead, Cursor, Read, Seek, SeekFrom};

use fast_image_resize as fir;
use image::{ColorType as PixelLayout, DynamicImage, RgbImage, metadata::Orientation};
use thiserror::Error;

use super::batch::PixelBudget;
pub use super::batch::{
    PhotoBytes, PhotoError, PhotoFile, PhotoReader, PhotoSource, convert_all, worker_count,
};
use super::colour::{Colour, ColourPlan};
use super::decode::{self, Decoded};
use super::detect::{DETECT_PREFIX_LEN, ImageKind, MediaKind, detect};
use super::heic::HeicError;
use super::jpeg;
use super::limits::IMAGE_MAX_BYTES;

/// Most memory the pixel buffers of one image may take at once (512 MiB).
///
/// That is the decoded image plus the 8-bit RGB(A) copy made from it when
/// the decoder's format is another one (grey, 16-bit): the decoded size
/// alone hid a 4× factor, since a grey image of 512 MiB needs 1.5 GiB more
/// as RGB. Checked against the header's dimensions before any pixel buffer
/// is allocated, see [`pixel_bytes`]. What fits: 8-bit RGB up to 178 MP,
/// RGBA or grey up to 134 MP, 16-bit RGB up to 59 MP; a 12 MP phone photo
/// needs 36–108 MB.
pub const MAX_PIXEL_BYTES: u64 = 512 * 1024 * 1024;

/// Most memory the pixel buffers of all [`convert_all`] workers may take at
/// once (1 GiB): a worker that would go over waits until another finishes,
/// so memory stays bounded whatever the number of cores.
///
/// The upload function has 2048 MiB (template.yaml) and 2 vCPUs, so 2
/// workers. At most it holds, besides this budget:
/// - per worker, the encoded file the JPEG and WebP decoders read whole
///   ([`IMAGE_MAX_BYTES`], 50 MB) and the resizer's scratch and output
///   plus the colour-transformed and oriented copies of the fitted image
///   (under 80 MB);
/// - the 35 converted JPEGs until they are written to S3 (each under the
///   6.2 MB of raw 1080 × 1920 RGB; photos are 0.3–2 MB);
/// - the runtime, the SDK clients and the streamed S3 buffers (under
///   100 MB).
///
/// That is 1074 + 2 × 130 + 218 + 100 = 1652 MB of 2147 MB, a margin of
/// about 23 %; the assertion below keeps it when a number changes. With two
/// images at the per-image maximum the workers run one after the other.
pub const PIXEL_BUDGET_BYTES: u64 = 2 * MAX_PIXEL_BYTES;

/// The figures of the budget above, in bytes.
const FUNCTION_MEMORY_BYTES: u64 = 2048 * 1024 * 1024;
const FUNCTION_WORKERS: u64 = 2;
const WORKER_SCRATCH_BYTES: u64 = 80_000_000;
const CONVERTED_JPEGS_BYTES: u64 = 35 * 1080 * 1920 * 3;
const RUNTIME_BYTES: u64 = 100_000_000;
const _: () = assert!(
    (PIXEL_BUDGET_BYTES
        + FUNCTION_WORKERS * (IMAGE_MAX_BYTES + WORKER_SCRATCH_BYTES)
        + CONVERTED_JPEGS_BYTES
        + RUNTIME_BYTES)
        * 5
        <= FUNCTION_MEMORY_BYTES * 4,
    "photo conversion must leave a fifth of the function's memory free"
);
const _: () = assert!(MAX_PIXEL_BYTES <= PIXEL_BUDGET_BYTES);

/// The pixel memory converting a `width` × `height` image of `color`
/// needs at its peak: the decoded buffer, plus the 8-bit RGB(A) copy
/// `flatten_onto_white` makes unless the decoder already gave 8-bit
/// RGB(A) (which it takes over in place).
pub fn pixel_bytes(color: PixelLayout, width: u32, height: u32) -> u64 {
    // Saturating: a header may claim 2^32 - 1 on both sides, whose byte
    // count does not fit; saturated, it is still over the cap.
    let pixels = u64::from(width) * u64::from(height);
    let decoded = pixels.saturating_mul(u64::from(color.bytes_per_pixel()));
    let copy = match color {
        PixelLayout::Rgb8 | PixelLayout::Rgba8 => 0,
        other if other.has_alpha() => pixels.saturating_mul(4),
        _ => pixels.saturating_mul(3),
    };
    decoded.saturating_add(copy)
}

/// What the converted photo must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoLimits {
    /// Widest the displayed (oriented) photo may be, in pixels.
    pub max_width: u32,
    /// Tallest the displayed (oriented) photo may be, in pixels.
    pub max_height: u32,
    /// Largest JPEG accepted, in bytes.
    pub max_bytes: usize,
    /// JPEG quality to try first (1–100).
    pub quality: u8,
    /// Lowest quality to fall back to before giving up on `max_bytes`: below
    /// about 60 blocking becomes visible, so a failure is better than a
    /// photo the creator would not post.
    pub min_quality: u8,
}

impl Default for PhotoLimits {
    /// TikTok's photo limits: fit inside 1080 wide × 1920 tall (portrait
    /// 9:16, which also keeps landscape photos at 1080 wide), 20 MB, q90.
    fn default() -> Self {
        PhotoLimits {
            max_width: 1080,
            max_height: 1920,
            max_bytes: 20_000_000,
            quality: 90,
            min_quality: 60,
        }
    }
}

/// A converted photo and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedPhoto {
    /// Baseline JPEG, 4:2:0.
    pub jpeg: Vec<u8>,
    /// Width of the JPEG (after orientation).
    pub width: u32,
    /// Height of the JPEG (after orientation).
    pub height: u32,
    /// The input's format, from its magic bytes.
    pub source_format: ImageKind,
    /// The input's stored width, before orientation.
    pub source_width: u32,
    /// The input's stored height, before orientation.
    pub source_height: u32,
    /// Whether the image was scaled down to fit.
    pub resized: bool,
    /// Whether the image had transparent pixels, painted onto white.
    pub flattened: bool,
    /// Whether an EXIF orientation other than "normal" was applied.
    pub rotated: bool,
    /// What was done about the input's colour space: the JPEG is sRGB
    /// (untagged) unless a profile had to be ignored.
    pub colour: Colour,
    /// The JPEG quality used (lower than asked only to meet `max_bytes`).
    pub quality: u8,
}

/// Why one image could not be converted. The messages speak to the
/// creator; [`PhotoError`] adds which image it was.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// A zero-byte file.
    #[error("the file is empty")]
    Empty,
    /// A HEIC/HEIF photo that cannot be decoded: another codec inside,
    /// damaged, or too large.
    #[error(transparent)]
    Heic(#[from] HeicError),
    /// No AV1 decoder here that is both permissively licensed and builds
    /// without a system library the Lambda runtime lacks (see README).
    #[error("AVIF images are not supported: export the image as JPEG and upload it again")]
    Avif,
    /// A camera's raw photo (Canon CR3): no decoder here.
    #[error(
        "camera raw photos (CR3) are not supported: export the photo as JPEG or PNG \
         and upload it again"
    )]
    CameraRaw,
    /// A video where an image was expected.
    #[error("the file is a video, not an image; photos must be JPEG, PNG, WebP or GIF")]
    Video,
    /// Not a format recognised by its first bytes.
    #[error("the file is not a recognised image; photos must be JPEG, PNG, WebP or GIF")]
    NotAnImage,
    /// The image's format is known but its data is damaged or cut short.
    #[error("the {format} image is damaged or incomplete and could not be decoded: {source}")]
    Decode {
        /// The format its first bytes claim.
        format: ImageKind,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// A small file can claim enormous dimensions (a decompression bomb);
    /// refusing it before decoding keeps it from exhausting the function's
    /// memory.
    #[error(
        "the {format} image is {width} × {height} pixels, too large to convert (it would \
         need {bytes} bytes of memory, more than {MAX_PIXEL_BYTES}); scale it down and \
         upload it again"
    )]
    TooManyPixels {
        /// The image's format.
        format: ImageKind,
        /// The width its header claims, in pixels.
        width: u32,
        /// The height its header claims, in pixels.
        height: u32,
        /// The memory decoding would take, in bytes.
        bytes: u64,
    },
    /// The header claims a width or height of zero.
    #[error("the {format} image has zero width or height")]
    ZeroSize {
        /// The image's format.
        format: ImageKind,
    },
    /// Even the lowest quality tried cannot bring the JPEG under the
    /// byte limit.
    #[error(
        "the JPEG would be {bytes} bytes even at quality {quality}, more than the limit of \
         {max} bytes; use a simpler or smaller image"
    )]
    TooLarge {
        /// The JPEG's size at that quality, in bytes.
        bytes: usize,
        /// The limit, in bytes.
        max: usize,
        /// The lowest quality tried.
        quality: u8,
    },
    /// The limits given to the conversion contradict themselves (a caller's
    /// bug); the text says which.
    #[error("invalid photo limits: {0}")]
    InvalidLimits(&'static str),
    /// Reading the encoded image failed (a local file, a download).
    #[error("could not read the image: {0}")]
    Read(#[source] std::io::Error),
    /// Resizer or encoder refused buffers we built: a bug here, not in the
    /// input, but still an error rather than a panic.
    #[error("internal conversion error: {0}")]
    Internal(String),
}

/// Converts one image (JPEG, PNG incl. 16-bit, WebP incl. alpha, GIF's first
/// frame) to a JPEG that TikTok accepts as a photo.
///
/// Steps, in the order that keeps the work smallest: decode; read the EXIF
/// orientation and the embedded ICC profile; flatten transparency onto white (JPEG has no alpha, and
/// `image`'s own RGB conversion would turn transparent areas black); resize
/// with Lanczos3 to fit the box, never enlarging or cropping, with the box
/// turned for 90°/270° orientations so that the *displayed* photo fits
/// `max_width` × `max_height`; transform the small result from its ICC
/// profile to sRGB when it has one that is not sRGB; orient it; encode baseline
/// JPEG with 4:2:0 chroma at `limits.quality`, stepping the quality down by
/// 5 to `limits.min_quality` if the file is over `limits.max_bytes`.
pub fn to_tiktok_jpeg(input: &[u8], limits: &PhotoLimits) -> Result<ConvertedPhoto, ConvertError> {
    convert_reader(Cursor::new(input), limits)
}

/// [`to_tiktok_jpeg`] on a reader positioned at the start of the image.
///
/// The decoder pulls the encoded bytes through the reader, so a file read
/// this way is never held in memory whole: for a photo-like 12 MP PNG that
/// is about 30 MB less per image in flight.
pub fn convert_reader<R: BufRead + Seek>(
    reader: R,
    limits: &PhotoLimits,
) -> Result<ConvertedPhoto, ConvertError> {
    convert_within(reader, limits, None)
}

/// [`convert_reader`], taking the image's pixel memory from `budget` (when
/// given) for as long as its buffers live.
pub(super) fn convert_within<R: BufRead + Seek>(
    mut reader: R,
    limits: &PhotoLimits,
    budget: Option<&PixelBudget>,
) -> Result<ConvertedPhoto, ConvertError> {
    check_limits(limits)?;
    let kind = sniff(&mut reader)?;
    let decoded = match kind {
        ImageKind::Heic => decode::heic(reader, budget)?,
        ImageKind::Jpeg => decode::jpeg(reader, limits, budget)?,
        _ => decode::with_image(reader, kind, budget)?,
    };
    finish(kind, decoded, limits)
}

/// What the input is, by its first bytes; the reader is put back at the
/// start. Anything but a photo this module converts is refused here.
fn sniff<R: BufRead + Seek>(reader: &mut R) -> Result<ImageKind, ConvertError> {
    let mut prefix = [0u8; DETECT_PREFIX_LEN];
    let prefix_len = read_prefix(reader, &mut prefix).map_err(ConvertError::Read)?;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(ConvertError::Read)?;
    if prefix_len == 0 {
        return Err(ConvertError::Empty);
    }
    match detect(&prefix[..prefix_len]) {
        MediaKind::Image(ImageKind::Avif) => Err(ConvertError::Avif),
        MediaKind::Image(ImageKind::CanonRaw) => Err(ConvertError::CameraRaw),
        MediaKind::Image(kind) => Ok(kind),
        MediaKind::Video(_) | MediaKind::Matroska | MediaKind::ThreeGpp => Err(ConvertError::Video),
        MediaKind::Audio(_) | MediaKind::OtherIsoMedia(_) | MediaKind::Unknown => {
            Err(ConvertError::NotAnImage)
        }
    }
}

/// The steps after decoding, the same for every format: flatten, fit,
/// colour to sRGB, orient, encode.
fn finish(
    kind: ImageKind,
    decoded: Decoded<'_>,
    limits: &PhotoLimits,
) -> Result<ConvertedPhoto, ConvertError> {
    let Decoded {
        image,
        orientation,
        colour_plan,
        source_size: (source_width, source_height),
        transformed,
        reservation: _reservation,
    } = decoded;
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err(ConvertError::ZeroSize { format: kind });
    }

    let (rgb, flattened) = flatten_onto_white(image);

    let (box_w, box_h) = display_box(orientation, limits);
    let (fit_w, fit_h) = fit_inside(width, height, box_w, box_h);
    // Compared by area: a HEIC comes out of its decoder already turned, and
    // a JPEG may have been decoded at a reduced scale.
    let resized =
        u64::from(fit_w) * u64::from(fit_h) < u64::from(source_width) * u64::from(source_height);
    let pixels = if (fit_w, fit_h) != (width, height) {
        resize_rgb(rgb, width, height, fit_w, fit_h)?
    } else {
        rgb
    };
    // To sRGB on the fitted image: a few milliseconds instead of tens (see
    // the colour module for why the order is sound).
    let (pixels, colour) = match colour_plan {
        ColourPlan::Keep(colour) => (pixels, colour),
        ColourPlan::Transform(to_srgb) => {
            let converted = to_srgb
                .apply(&pixels)
                .map_err(|e| ConvertError::Internal(format!("colour transform: {e}")))?;
            (converted, to_srgb.outcome())
        }
    };
    if let Colour::ProfileIgnored { reason } = &colour {
        tracing::warn!(format = %kind, %reason, "colour profile ignored; the photo keeps its stored colours");
    }

    let oriented = orientation != Orientation::NoTransforms;
    let (pixels, width, height) = if oriented {
        let buffer = RgbImage::from_raw(fit_w, fit_h, pixels).ok_or_else(|| {
            ConvertError::Internal("resized buffer has the wrong length".to_string())
        })?;
        let mut oriented = DynamicImage::ImageRgb8(buffer);
        oriented.apply_orientation(orientation);
        let (w, h) = (oriented.width(), oriented.height());
        (oriented.into_rgb8().into_raw(), w, h)
    } else {
        (pixels, fit_w, fit_h)
    };

    let (jpeg, quality) = encode_within(&pixels, width, height, limits)?;
    Ok(ConvertedPhoto {
        jpeg,
        width,
        height,
        source_format: kind,
        source_width,
        source_height,
        resized,
        flattened,
        rotated: oriented || transformed,
        colour,
        quality,
    })
}

/// Reads up to `buffer.len()` bytes, fewer only at the end of the input.
fn read_prefix<R: Read>(reader: &mut R, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn check_limits(limits: &PhotoLimits) -> Result<(), ConvertError> {
    if limits.max_width == 0 || limits.max_height == 0 {
        return Err(ConvertError::InvalidLimits(
            "max width and height must be above 0",
        ));
    }
    // JPEG stores dimensions in 16 bits.
    if limits.max_width > u32::from(u16::MAX) || limits.max_height > u32::from(u16::MAX) {
        return Err(ConvertError::InvalidLimits(
            "max width and height must be at most 65535 (JPEG's limit)",
        ));
    }
    if limits.quality == 0 || limits.quality > 100 || limits.min_quality == 0 {
        return Err(ConvertError::InvalidLimits("quality must be 1 to 100"));
    }
    if limits.min_quality > limits.quality {
        return Err(ConvertError::InvalidLimits(
            "min_quality must not be above quality",
        ));
    }
    Ok(())
}

/// The box the stored image must fit so that, once `orientation` is
/// applied, it fits `limits`: turned for 90°/270° orientations.
pub(super) fn display_box(orientation: Orientation, limits: &PhotoLimits) -> (u32, u32) {
    let quarter_turn = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    if quarter_turn {
        (limits.max_height, limits.max_width)
    } else {
        (limits.max_width, limits.max_height)
    }
}

/// The largest size with the same aspect ratio as `width` × `height` that
/// fits inside `box_w` × `box_h`, or the size itself if it already fits
/// (photos are never enlarged: that only adds bytes, not detail).
///
/// Integer arithmetic decides which side limits, so 4000 × 3000 gives
/// exactly 1080 × 810; the other side is rounded and kept at least 1.
pub fn fit_inside(width: u32, height: u32, box_w: u32, box_h: u32) -> (u32, u32) {
    if width <= box_w && height <= box_h {
        return (width, height);
    }
    let (w, h, bw, bh) = (
        u64::from(width),
        u64::from(height),
        u64::from(box_w),
        u64::from(box_h),
    );
    // width / height >= box_w / box_h: the width hits the box first.
    let (new_w, new_h) = if w * bh >= h * bw {
        (bw, ((h * bw + w / 2) / w).clamp(1, bh))
    } else {
        (((w * bh + h / 2) / h).clamp(1, bw), bh)
    };
    // Both are at most the box's u32 sides.
    (
        u32::try_from(new_w).unwrap_or(box_w),
        u32::try_from(new_h).unwrap_or(box_h),
    )
}

/// Turns any decoded image into 8-bit RGB, painting transparent and
/// translucent pixels onto white, and says whether any pixel was not opaque.
///
/// Images with an alpha channel are converted to RGBA8 once and compacted
/// to RGB in place, so flattening costs no second full-size buffer.
fn flatten_onto_white(image: DynamicImage) -> (Vec<u8>, bool) {
    if !image.color().has_alpha() {
        return (image.into_rgb8().into_raw(), false);
    }
    let mut data = image.into_rgba8().into_raw();
    let pixels = data.len() / 4;
    let mut any_transparent = false;
    for i in 0..pixels {
        let src = i * 4;
        let alpha = u32::from(data[src + 3]);
        let dst = i * 3;
        if alpha == 255 {
            data.copy_within(src..src + 3, dst);
        } else {
            any_transparent = true;
            // out = c * a + 255 * (1 - a), rounded: written with integers so
            // a fully transparent pixel is exactly 255 (white).
            for c in 0..3 {
                let value = u32::from(data[src + c]);
                data[dst + c] = ((value * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
            }
        }
    }
    data.truncate(pixels * 3);
    data.shrink_to_fit();
    (data, any_transparent)
}

/// Resizes packed RGB8 pixels with Lanczos3.
fn resize_rgb(
    pixels: Vec<u8>,
    width: u32,
    height: u32,
    new_width: u32,
    new_height: u32,
) -> Result<Vec<u8>, ConvertError> {
    let src = fir::images::Image::from_vec_u8(width, height, pixels, fir::PixelType::U8x3)
        .map_err(|e| ConvertError::Internal(format!("resize source: {e}")))?;
    let mut dst = fir::images::Image::new(new_width, new_height, fir::PixelType::U8x3);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3));
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| ConvertError::Internal(format!("resize: {e}")))?;
    Ok(dst.into_vec())
}

/// Encodes at `limits.quality`, then 5 lower at a time down to
/// `limits.min_quality`, until the JPEG fits `limits.max_bytes`.
fn encode_within(
    pixels: &[u8],
    width: u32,
    height: u32,
    limits: &PhotoLimits,
) -> Result<(Vec<u8>, u8), ConvertError> {
    let mut quality = limits.quality;
    loop {
        let jpeg = encode_jpeg(pixels, width, height, quality)?;
        if jpeg.len() <= limits.max_bytes {
            return Ok((jpeg, quality));
        }
        if quality <= limits.min_quality {
            return Err(ConvertError::TooLarge {
                bytes: jpeg.len(),
                max: limits.max_bytes,
                quality,
            });
        }
        quality = quality.saturating_sub(5).max(limits.min_quality);
    }
}

/// Baseline (sequential) JPEG with 4:2:0 chroma, by libjpeg-turbo.
fn encode_jpeg(
    pixels: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Vec<u8>, ConvertError> {
    jpeg::encode_rgb(pixels, width, height, quality)
        .map_err(|e| ConvertError::Internal(format!("JPEG encoding: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_inside_cases() {
        assert_eq!(fit_inside(4000, 3000, 1080, 1920), (1080, 810));
        assert_eq!(fit_inside(800, 600, 1080, 1920), (800, 600));
        assert_eq!(fit_inside(1080, 2400, 1080, 1920), (864, 1920));
        assert_eq!(fit_inside(1600, 1200, 1920, 1080), (1440, 1080));
        assert_eq!(fit_inside(1080, 1920, 1080, 1920), (1080, 1920));
        assert_eq!(fit_inside(100_000, 1, 1080, 1920), (1080, 1));
        assert_eq!(fit_inside(1, 100_000, 1080, 1920), (1, 1920));
    }

    #[test]
    fn flatten_paints_transparency_white() {
        let mut img = image::RgbaImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgba([10, 20, 30, 255]));
        img.put_pixel(1, 0, image::Rgba([0, 0, 0, 0]));
        let (rgb, flattened) = flatten_onto_white(DynamicImage::ImageRgba8(img));
        assert!(flattened);
        assert_eq!(rgb, vec![10, 20, 30, 255, 255, 255]);

        let opaque = image::RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 255]));
        let (rgb, flattened) = flatten_onto_white(DynamicImage::ImageRgba8(opaque));
        assert!(!flattened);
        assert_eq!(rgb.len(), 12);
    }

    #[test]
    fn limits_are_checked() {
        let bad = PhotoLimits {
            min_quality: 95,
            ..PhotoLimits::default()
        };
        assert!(matches!(
            to_tiktok_jpeg(b"x", &bad),
            Err(ConvertError::InvalidLimits(_))
        ));
    }

    #[test]
    fn pixel_bytes_counts_the_rgb_copy() {
        assert_eq!(pixel_bytes(PixelLayout::Rgb8, 100, 10), 3_000);
        assert_eq!(pixel_bytes(PixelLayout::Rgba8, 100, 10), 4_000);
        // Grey: 1 byte decoded, then 3 for the RGB copy.
        assert_eq!(pixel_bytes(PixelLayout::L8, 100, 10), 4_000);
        assert_eq!(pixel_bytes(PixelLayout::La8, 100, 10), 2_000 + 4_000);
        assert_eq!(pixel_bytes(PixelLayout::Rgb16, 100, 10), 6_000 + 3_000);
        assert_eq!(pixel_bytes(PixelLayout::Rgba16, 100, 10), 8_000 + 4_000);
        // No overflow at JPEG's and PNG's largest sizes.
        assert!(pixel_bytes(PixelLayout::Rgba16, u32::MAX, u32::MAX) > MAX_PIXEL_BYTES);
    }
}
