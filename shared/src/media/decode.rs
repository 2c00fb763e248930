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
use super::jpeg;
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
/// libjpeg-turbo does the scaled decode (see [`super::jpeg`]); what it is
/// not given (CMYK, 12-bit, lossless, arithmetic-coded) or fails on (a
/// damaged or cut-off file) goes through the `image` crate's more lenient
/// decoder, so a JPEG that decoded before still does.
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
    let Some(header) = jpeg::header(&bytes).filter(|h| h.frame.scalable()) else {
        return with_image(Cursor::new(bytes), ImageKind::Jpeg, budget);
    };
    let frame = header.frame;
    let layout = if frame.grey() {
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
    let orientation = jpeg::orientation(&header);
    let (box_w, box_h) = display_box(orientation, limits);
    let fit = fit_inside(width, height, box_w, box_h);
    let eighths = jpeg::shrink_on_load(width, height, fit);
    let decoded = jpeg::decode_scaled(&bytes, &frame, eighths)
        .inspect_err(|error| {
            tracing::debug!(%error, "libjpeg-turbo did not take the JPEG; the image crate's decoder tries it");
        });
    let image = decoded.ok().and_then(|scaled| {
        let (w, h, pixels) = (scaled.width, scaled.height, scaled.pixels);
        if frame.grey() {
            GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        } else {
            RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
        }
    });
    let Some(image) = image else {
        drop(reservation);
        return with_image(Cursor::new(bytes), ImageKind::Jpeg, budget);
    };
    let channels = if frame.grey() {
        SourceChannels::Grey
    } else {
        SourceChannels::Rgb
    };
    Ok(Decoded {
        image,
        orientation,
        colour_plan: colour::plan(header.icc.as_deref(), channels),
        source_size: (width, height),
        transformed: false,
        reservation,
    })
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
