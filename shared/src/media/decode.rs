//! Decoding a photo into pixels plus what the rest of the conversion needs
//! to know about them (orientation, colour), with its memory taken from the
//! batch's budget before any pixel buffer is allocated.

use std::io::{BufRead, Cursor, Read, Seek};

use image::{
    ColorType as PixelLayout, DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader,
    RgbImage, metadata::Orientation,
};

use super::batch::{PixelBudget, Reservation};
use super::colour::{self, Colour, ColourPlan, SourceChannels};
use super::convert::{
    ConvertError, MAX_PIXEL_BYTES, PhotoLimits, display_box, fit_inside, pixel_bytes,
};
use super::detect::ImageKind;
use super::heic::{self, HeicColour, HeicError};
use super::limits::IMAGE_MAX_BYTES;

/// A decoded photo, ready for [`super::convert`]'s common steps.
pub(super) struct Decoded<'a> {
    pub image: DynamicImage,
    /// The EXIF orientation still to apply (after fitting).
    pub orientation: Orientation,
    pub colour_plan: ColourPlan,
    /// The input's stored size, before any decoder transform or reduction.
    pub source_size: (u32, u32),
    /// Whether the decoder already turned or mirrored the image (HEIF
    /// `irot`/`imir`).
    pub transformed: bool,
    /// Held until the JPEG is made: the large buffers all live before that.
    pub reservation: Option<Reservation<'a>>,
}

/// JPEG, PNG, WebP and GIF through the `image` crate.
pub(super) fn with_image<'a, R: BufRead + Seek>(
    reader: R,
    kind: ImageKind,
    budget: Option<&'a PixelBudget>,
) -> Result<Decoded<'a>, ConvertError> {
    let format = match kind {
        ImageKind::Jpeg => ImageFormat::Jpeg,
        ImageKind::Png => ImageFormat::Png,
        ImageKind::WebP => ImageFormat::WebP,
        ImageKind::Gif => ImageFormat::Gif,
        ImageKind::Heic | ImageKind::Avif | ImageKind::CanonRaw => {
            return Err(ConvertError::NotAnImage);
        }
    };
    let decode_error = |source| image_error(kind, source);
    let mut decoder = ImageReader::with_format(reader, format)
        .into_decoder()
        .map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    let needed = pixel_bytes(decoder.color_type(), width, height);
    if needed > MAX_PIXEL_BYTES {
        return Err(ConvertError::TooManyPixels {
            format: kind,
            width,
            height,
            bytes: needed,
        });
    }
    let reservation = budget.map(|b| b.reserve(needed));
    // A broken EXIF block should not cost the creator the photo: show it as
    // stored rather than refuse it.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // The same for an unreadable ICC profile: the plan says it was ignored.
    let icc = decoder.icc_profile().ok().flatten();
    let channels = if decoder.color_type().has_color() {
        SourceChannels::Rgb
    } else {
        SourceChannels::Grey
    };
    let colour_plan = colour::plan(icc.as_deref(), channels);
    let image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    Ok(Decoded {
        source_size: (image.width(), image.height()),
        image,
        orientation,
        colour_plan,
        transformed: false,
        reservation,
    })
}

/// A JPEG decoded at the smallest DCT scale (1/8, 1/4, 1/2 or whole) that
/// still covers the size it will be fitted to, as libjpeg-turbo and libvips
/// do ("shrink on load"): a 12 MP photo for a 1080-wide slot is decoded at
/// 2000 × 1500, which skips most of the inverse DCT, colour conversion and
/// resizing work and three quarters of the pixel memory.
///
/// `jpeg-decoder` does the scaled decode; what it does not handle (CMYK,
/// 12-bit, an unusual frame, anything it fails on) goes through the `image`
/// crate's decoder as before, so a JPEG that decoded yesterday still does.
/// Its inverse DCT and colour conversion run as rayon tasks: inside
/// [`super::convert_all`] on the batch's capped workers, no extra threads.
pub(super) fn jpeg<'a, R: BufRead + Seek>(
    mut reader: R,
    limits: &PhotoLimits,
    budget: Option<&'a PixelBudget>,
) -> Result<Decoded<'a>, ConvertError> {
    let mut bytes = Vec::new();
    (&mut reader)
        .take(IMAGE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ConvertError::Read)?;
    let Some(frame) = jpeg_frame(&bytes).filter(JpegFrame::scalable) else {
        return with_image(Cursor::new(bytes), ImageKind::Jpeg, budget);
    };
    let layout = if frame.components == 1 {
        PixelLayout::L8
    } else {
        PixelLayout::Rgb8
    };
    let (width, height) = (u32::from(frame.width), u32::from(frame.height));
    let needed = pixel_bytes(layout, width, height);
    if needed > MAX_PIXEL_BYTES {
        return Err(ConvertError::TooManyPixels {
            format: ImageKind::Jpeg,
            width,
            height,
            bytes: needed,
        });
    }
    let reservation = budget.map(|b| b.reserve(needed));
    let mut decoder = jpeg_decoder::Decoder::new(bytes.as_slice());
    let scaled = decoder.read_info().ok().and_then(|()| {
        let orientation = decoder
            .exif_data()
            .and_then(Orientation::from_exif_chunk)
            .unwrap_or(Orientation::NoTransforms);
        let (box_w, box_h) = display_box(orientation, limits);
        let (fit_w, fit_h) = fit_inside(width, height, box_w, box_h);
        let fit_w = u16::try_from(fit_w).ok()?;
        let fit_h = u16::try_from(fit_h).ok()?;
        let (out_w, out_h) = decoder.scale(fit_w, fit_h).ok()?;
        let icc = decoder.icc_profile();
        let pixels = decoder.decode().ok()?;
        let (out_w, out_h) = (u32::from(out_w), u32::from(out_h));
        let image = if frame.components == 1 {
            DynamicImage::ImageLuma8(GrayImage::from_raw(out_w, out_h, pixels)?)
        } else {
            DynamicImage::ImageRgb8(RgbImage::from_raw(out_w, out_h, pixels)?)
        };
        Some((image, orientation, icc))
    });
    let Some((image, orientation, icc)) = scaled else {
        drop(reservation);
        return with_image(Cursor::new(bytes), ImageKind::Jpeg, budget);
    };
    let channels = if frame.components == 1 {
        SourceChannels::Grey
    } else {
        SourceChannels::Rgb
    };
    Ok(Decoded {
        image,
        orientation,
        colour_plan: colour::plan(icc.as_deref(), channels),
        source_size: (width, height),
        transformed: false,
        reservation,
    })
}

/// The frame header of a JPEG: what decides whether the scaled decoder
/// takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JpegFrame {
    /// The SOF marker's second byte (0xC0 baseline, 0xC1 extended, 0xC2
    /// progressive, ...).
    marker: u8,
    precision: u8,
    width: u16,
    height: u16,
    components: u8,
}

impl JpegFrame {
    /// 8-bit Huffman-coded greyscale or YCbCr/RGB: what `jpeg-decoder`
    /// scales. CMYK (4 components), 12-bit, lossless and arithmetic-coded
    /// frames go to the `image` crate's decoder.
    fn scalable(&self) -> bool {
        matches!(self.marker, 0xC0..=0xC2)
            && self.precision == 8
            && matches!(self.components, 1 | 3)
            && self.width > 0
            && self.height > 0
    }
}

/// Walks the marker segments from SOI to the first frame header.
fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2usize;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let body = bytes.get(at + 4..at + 2 + length)?;
            return Some(JpegFrame {
                marker,
                precision: *body.first()?,
                height: u16::from_be_bytes([*body.get(1)?, *body.get(2)?]),
                width: u16::from_be_bytes([*body.get(3)?, *body.get(4)?]),
                components: *body.get(5)?,
            });
        }
        if marker == 0xDA || length < 2 {
            return None;
        }
        at += 2 + length;
    }
}

/// A HEIC/HEIF photo: the container is read whole (the decoder needs it in
/// memory; it is at most [`IMAGE_MAX_BYTES`]), checked, then decoded.
pub(super) fn heic<'a, R: Read>(
    reader: R,
    budget: Option<&'a PixelBudget>,
) -> Result<Decoded<'a>, ConvertError> {
    let mut bytes = Vec::new();
    reader
        .take(IMAGE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ConvertError::Read)?;
    if bytes.len() as u64 > IMAGE_MAX_BYTES {
        return Err(ConvertError::Read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the HEIC file is larger than the 50 MB a slideshow image may be",
        )));
    }
    let info = heic::inspect(&bytes)?;
    let needed = heic::pixel_bytes(info.width, info.height);
    if needed > MAX_PIXEL_BYTES {
        return Err(HeicError::TooManyPixels {
            width: info.width,
            height: info.height,
            bytes: needed,
            max: MAX_PIXEL_BYTES,
        }
        .into());
    }
    let reservation = budget.map(|b| b.reserve(needed));
    let decoded = heic::decode(&bytes, MAX_PIXEL_BYTES)?;
    drop(bytes);
    let colour_plan = match &decoded.info.colour {
        HeicColour::Icc(icc) => colour::plan(Some(icc), SourceChannels::Rgb),
        HeicColour::Nclx {
            primaries,
            transfer,
        } => colour::plan_cicp(*primaries, *transfer),
        HeicColour::Unspecified => ColourPlan::Keep(Colour::NoProfile),
    };
    Ok(Decoded {
        image: decoded.image,
        // HEIF's irot/imir are applied by the decoder; the EXIF orientation
        // repeats them and is not applied again (see the heic module).
        orientation: Orientation::NoTransforms,
        colour_plan,
        source_size: (decoded.info.width, decoded.info.height),
        transformed: decoded.info.transformed,
        reservation,
    })
}

/// A decoder error as the creator should read it. A failing reader (a file
/// that vanished, a broken download) is a read error, not a damaged image;
/// decoders report cut-off or malformed data as UnexpectedEof/InvalidData,
/// which stay decode errors.
fn image_error(kind: ImageKind, source: image::ImageError) -> ConvertError {
    match source {
        image::ImageError::IoError(error)
            if !matches!(
                error.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::InvalidInput
                    | std::io::ErrorKind::Other
            ) =>
        {
            ConvertError::Read(error)
        }
        source => ConvertError::Decode {
            format: kind,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_are_found_past_other_segments() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xFF];
        jpeg.extend_from_slice(&[0xFF, 0xC2, 0, 17, 8, 0x0B, 0xB8, 0x0F, 0xA0, 3]);
        jpeg.extend_from_slice(&[0; 9]);
        let frame = jpeg_frame(&jpeg).unwrap();
        assert_eq!(
            frame,
            JpegFrame {
                marker: 0xC2,
                precision: 8,
                width: 4000,
                height: 3000,
                components: 3
            }
        );
        assert!(frame.scalable());
        assert!(
            !JpegFrame {
                components: 4,
                ..frame
            }
            .scalable()
        );
        assert!(
            !JpegFrame {
                precision: 12,
                ..frame
            }
            .scalable()
        );
        assert!(
            !JpegFrame {
                marker: 0xC3,
                ..frame
            }
            .scalable()
        );
        assert!(
            !JpegFrame {
                components: 2,
                ..frame
            }
            .scalable()
        );
        assert_eq!(jpeg_frame(&jpeg[..12]), None);
        assert_eq!(jpeg_frame(b"not a jpeg"), None);
        assert_eq!(jpeg_frame(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
    }
}
