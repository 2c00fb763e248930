//! JPEG in and out through libjpeg-turbo (the `turbojpeg` crate, built from
//! its bundled source and linked statically): decoding at reduced DCT scale
//! ("shrink on load"), and the baseline 4:2:0 encoding every converted photo
//! gets.
//!
//! Why libjpeg-turbo rather than a pure-Rust codec: a phone's 12 MP JPEG is
//! bound by entropy decoding, which costs the same at any output scale, and
//! libjpeg-turbo's Huffman decoder was the fastest we measured (on the
//! slideshow benchmark's 12 MP photos it takes 63-69 ms at 1/2 scale,
//! against 88-92 ms for `jpeg-decoder` and 104 ms for `zune-jpeg` at full
//! scale, which is all it offers). Its encoder takes a third of
//! `jpeg-encoder`'s time. It is the library libvips, Pillow's wheels and
//! Chromium use, fuzzed continuously by OSS-Fuzz; errors come back as values
//! through the TurboJPEG API (which catches libjpeg's `longjmp` in C), never
//! as a panic or a jump across Rust frames; its messages are kept for the
//! error, not printed.
//!
//! The marker walk that decides what to do before any pixel is decoded
//! (frame size, EXIF orientation, ICC profile) is plain Rust over the bytes.

use image::metadata::Orientation;
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

/// Most scans a progressive JPEG may have. Cameras write about 10; a file
/// with thousands of tiny scans makes any decoder take minutes (the
/// libjpeg-turbo authors' advice for untrusted input is to cap them).
const MAX_SCANS: u32 = 256;

/// What the headers of a JPEG say before its entropy-coded data: the frame,
/// and the metadata that decides how it is fitted and coloured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JpegHeader {
    pub frame: JpegFrame,
    /// The EXIF block's TIFF data (after `Exif\0\0`), when there is one.
    pub exif: Option<Vec<u8>>,
    /// The ICC profile reassembled from its APP2 chunks, when they are all
    /// there and consistent.
    pub icc: Option<Vec<u8>>,
}

/// The frame header of a JPEG: what decides whether the scaled decoder
/// takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JpegFrame {
    /// The SOF marker's second byte (0xC0 baseline, 0xC1 extended, 0xC2
    /// progressive, ...).
    pub marker: u8,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: u8,
}

impl JpegFrame {
    /// 8-bit Huffman-coded greyscale or YCbCr/RGB: what the scaled decoder
    /// takes. CMYK (4 components), 12-bit, lossless and arithmetic-coded
    /// frames go to the `image` crate's decoder.
    pub fn scalable(&self) -> bool {
        matches!(self.marker, 0xC0..=0xC2)
            && self.precision == 8
            && matches!(self.components, 1 | 3)
            && self.width > 0
            && self.height > 0
    }

    pub fn grey(&self) -> bool {
        self.components == 1
    }
}

/// Walks the marker segments from SOI to the first scan, keeping the frame
/// header, the EXIF block and the ICC profile's chunks. `None` when there
/// is no frame header before the scan, or the segments run off the end.
pub(super) fn header(bytes: &[u8]) -> Option<JpegHeader> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut frame = None;
    let mut exif = None;
    let mut icc_chunks: Vec<(u8, u8, &[u8])> = Vec::new();
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
        if marker == 0xDA {
            return Some(JpegHeader {
                frame: frame?,
                exif,
                icc: icc_profile(icc_chunks),
            });
        }
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        if length < 2 {
            return None;
        }
        let body = bytes.get(at + 4..at + 2 + length)?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && frame.is_none() => {
                frame = Some(JpegFrame {
                    marker,
                    precision: *body.first()?,
                    height: u16::from_be_bytes([*body.get(1)?, *body.get(2)?]),
                    width: u16::from_be_bytes([*body.get(3)?, *body.get(4)?]),
                    components: *body.get(5)?,
                });
            }
            // The first EXIF block counts, as for every other reader.
            0xE1 if exif.is_none() => {
                exif = body.strip_prefix(b"Exif\0\0").map(<[u8]>::to_vec);
            }
            0xE2 => {
                if let Some([sequence, count, data @ ..]) = body.strip_prefix(b"ICC_PROFILE\0") {
                    icc_chunks.push((*sequence, *count, data));
                }
            }
            _ => {}
        }
        at += 2 + length;
    }
}

/// An ICC profile split over APP2 chunks numbered 1..=count: joined in
/// order, or `None` if a chunk is missing, repeated or says another count.
fn icc_profile(mut chunks: Vec<(u8, u8, &[u8])>) -> Option<Vec<u8>> {
    let count = chunks.first()?.1;
    chunks.sort_by_key(|&(sequence, _, _)| sequence);
    let complete = chunks.len() == usize::from(count)
        && chunks
            .iter()
            .zip(1u8..)
            .all(|(&(sequence, chunk_count, _), expected)| {
                sequence == expected && chunk_count == count
            });
    complete.then(|| {
        chunks
            .iter()
            .flat_map(|&(_, _, data)| data)
            .copied()
            .collect()
    })
}

/// The EXIF orientation, or none when there is no EXIF or it is broken (a
/// broken block should not cost the creator the photo: it is shown as
/// stored).
pub(super) fn orientation(header: &JpegHeader) -> Orientation {
    header
        .exif
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// The smallest DCT scale (1/8, 1/4, 1/2 or whole, as eighths) whose output
/// still covers `fit` on both sides, so the resize that follows only ever
/// shrinks. libjpeg rounds scaled sides up.
pub(super) fn shrink_on_load(width: u32, height: u32, fit: (u32, u32)) -> u8 {
    [1u8, 2, 4]
        .into_iter()
        .find(|&eighths| {
            let scaled = |side: u32| (u64::from(side) * u64::from(eighths)).div_ceil(8);
            scaled(width) >= u64::from(fit.0) && scaled(height) >= u64::from(fit.1)
        })
        .unwrap_or(8)
}

/// Pixels decoded at `eighths`/8 of the stored size: RGB, or one byte per
/// pixel for greyscale.
pub(super) struct ScaledPixels {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Decodes at `eighths`/8 scale the frame [`header`] found. An error is
/// libjpeg-turbo's message: a damaged file, or one with warnings (corrupt or
/// cut-off data), which the caller hands to the more lenient decoder.
pub(super) fn decode_scaled(
    bytes: &[u8],
    frame: &JpegFrame,
    eighths: u8,
) -> Result<ScaledPixels, turbojpeg::Error> {
    let mut decompressor = Decompressor::new()?;
    decompressor.set_scan_limit(MAX_SCANS)?;
    let stored = decompressor.read_header(bytes)?;
    // The pixel budget was taken for the frame the marker walk found; a
    // file whose library-read size differs is not decoded here.
    if (stored.width, stored.height) != (usize::from(frame.width), usize::from(frame.height)) {
        return Err(turbojpeg::Error::TurboJpegError(format!(
            "the frame is {}x{} but libjpeg-turbo reads {}x{}",
            frame.width, frame.height, stored.width, stored.height
        )));
    }
    let scale = ScalingFactor::new(usize::from(eighths), 8);
    decompressor.set_scaling_factor(scale)?;
    let header = stored.scaled(scale);
    let format = if frame.grey() {
        PixelFormat::GRAY
    } else {
        PixelFormat::RGB
    };
    let pitch = header.width * format.size();
    let mut image = Image {
        pixels: vec![0; pitch * header.height],
        width: header.width,
        pitch,
        height: header.height,
        format,
    };
    decompressor.decompress(bytes, image.as_deref_mut())?;
    let side = |value: usize, name: &'static str| {
        u32::try_from(value).map_err(|_| turbojpeg::Error::IntegerOverflow(name))
    };
    Ok(ScaledPixels {
        width: side(image.width, "width")?,
        height: side(image.height, "height")?,
        pixels: image.pixels,
    })
}

/// Baseline (sequential) JPEG with 4:2:0 chroma from packed RGB. 4:2:0
/// rather than 4:4:4 at high quality: the files are 40-47 % smaller for no
/// visible gain in a phone feed; chroma is averaged, not point-sampled.
pub(super) fn encode_rgb(
    pixels: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Vec<u8>, turbojpeg::Error> {
    let side = |value: u32, name: &'static str| {
        usize::try_from(value).map_err(|_| turbojpeg::Error::IntegerOverflow(name))
    };
    let (width, height) = (side(width, "width")?, side(height, "height")?);
    let pitch = width * PixelFormat::RGB.size();
    if pitch
        .checked_mul(height)
        .is_none_or(|needed| pixels.len() < needed)
    {
        return Err(turbojpeg::Error::TurboJpegError(format!(
            "{} bytes are too few for {width}x{height} RGB",
            pixels.len()
        )));
    }
    let mut compressor = Compressor::new()?;
    compressor.set_quality(i32::from(quality))?;
    compressor.set_subsamp(Subsamp::Sub2x2)?;
    compressor.compress_to_vec(Image {
        pixels,
        width,
        pitch,
        height,
        format: PixelFormat::RGB,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let length = u16::try_from(body.len() + 2).unwrap();
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn sof(marker: u8) -> Vec<u8> {
        segment(
            marker,
            &[
                8, 0x0B, 0xB8, 0x0F, 0xA0, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
            ],
        )
    }

    fn icc_chunk(sequence: u8, count: u8, data: &[u8]) -> Vec<u8> {
        let mut body = b"ICC_PROFILE\0".to_vec();
        body.extend_from_slice(&[sequence, count]);
        body.extend_from_slice(data);
        segment(0xE2, &body)
    }

    fn jpeg(segments: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        for s in segments {
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        out
    }

    #[test]
    fn frame_headers_are_found_past_other_segments_and_fill_bytes() {
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend(segment(0xE0, b"JFIF\0"));
        bytes.extend([0xFF, 0xFF]);
        bytes.extend(sof(0xC2));
        bytes.extend(segment(0xDA, &[0; 6]));
        let frame = header(&bytes).unwrap().frame;
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
        for other in [
            JpegFrame {
                components: 4,
                ..frame
            },
            JpegFrame {
                components: 2,
                ..frame
            },
            JpegFrame {
                precision: 12,
                ..frame
            },
            JpegFrame {
                marker: 0xC3,
                ..frame
            },
            JpegFrame {
                marker: 0xC9,
                ..frame
            },
            JpegFrame { width: 0, ..frame },
        ] {
            assert!(!other.scalable(), "{other:?}");
        }
    }

    #[test]
    fn a_header_cut_short_or_without_a_frame_is_none() {
        let whole = jpeg(&[sof(0xC0)]);
        assert!(header(&whole).is_some());
        // Up to the scan marker's second byte (the scan segment is 10 bytes).
        for cut in 0..whole.len() - 8 {
            assert_eq!(header(&whole[..cut]), None, "cut at {cut}");
        }
        assert_eq!(header(b"not a jpeg"), None);
        assert_eq!(header(&jpeg(&[])), None, "a scan before any frame");
        assert_eq!(
            header(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]),
            None,
            "length under 2"
        );
    }

    #[test]
    fn exif_orientation_is_read_from_the_first_exif_block() {
        // A big-endian TIFF header with one IFD entry: orientation 6.
        let tiff = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0,
            0,
        ];
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(&tiff);
        let xmp = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>");
        let parsed = header(&jpeg(&[xmp, segment(0xE1, &exif), sof(0xC0)])).unwrap();
        assert_eq!(parsed.exif.as_deref(), Some(&tiff[..]));
        assert_eq!(orientation(&parsed), Orientation::Rotate90);

        let mut broken = b"Exif\0\0".to_vec();
        broken.extend_from_slice(b"II*\0garbage");
        let parsed = header(&jpeg(&[segment(0xE1, &broken), sof(0xC0)])).unwrap();
        assert_eq!(orientation(&parsed), Orientation::NoTransforms);
        let parsed = header(&jpeg(&[sof(0xC0)])).unwrap();
        assert_eq!(orientation(&parsed), Orientation::NoTransforms);
    }

    #[test]
    fn an_icc_profile_is_joined_from_its_chunks_in_sequence_order() {
        let parsed = header(&jpeg(&[
            icc_chunk(2, 3, b"def"),
            sof(0xC0),
            icc_chunk(1, 3, b"abc"),
            icc_chunk(3, 3, b"gh"),
        ]))
        .unwrap();
        assert_eq!(parsed.icc.as_deref(), Some(&b"abcdefgh"[..]));

        for broken in [
            vec![icc_chunk(1, 3, b"abc"), icc_chunk(3, 3, b"gh")],
            vec![icc_chunk(1, 2, b"abc"), icc_chunk(1, 2, b"abc")],
            vec![icc_chunk(1, 2, b"abc"), icc_chunk(2, 3, b"def")],
            vec![icc_chunk(0, 1, b"abc")],
        ] {
            let mut segments = broken.clone();
            segments.push(sof(0xC0));
            assert_eq!(header(&jpeg(&segments)).unwrap().icc, None, "{broken:?}");
        }
    }

    #[test]
    fn shrink_on_load_takes_the_smallest_scale_that_still_covers_the_fit() {
        assert_eq!(
            shrink_on_load(4000, 3000, (1080, 810)),
            4,
            "12 MP to 1080 wide: 1/2"
        );
        assert_eq!(shrink_on_load(8000, 6000, (1080, 810)), 2, "48 MP: 1/4");
        assert_eq!(shrink_on_load(16000, 12000, (1080, 810)), 1, "192 MP: 1/8");
        assert_eq!(shrink_on_load(2160, 1620, (1080, 810)), 4, "exactly half");
        assert_eq!(
            shrink_on_load(2159, 1619, (1080, 810)),
            4,
            "rounded up, still covers"
        );
        assert_eq!(
            shrink_on_load(2150, 1612, (1080, 806)),
            8,
            "half would be too small"
        );
        assert_eq!(shrink_on_load(800, 600, (800, 600)), 8, "no shrink needed");
        assert_eq!(shrink_on_load(3024, 4032, (1080, 1440)), 4, "portrait");
        assert_eq!(shrink_on_load(65535, 1, (1080, 1)), 1, "a one-pixel strip");
        assert_eq!(
            shrink_on_load(u32::MAX, u32::MAX, (1080, 1920)),
            1,
            "no overflow"
        );
    }

    fn gradient(width: u32, height: u32) -> Vec<u8> {
        (0..height)
            .flat_map(|y| {
                (0..width)
                    .flat_map(move |x| [(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
            })
            .collect()
    }

    #[test]
    fn encoded_jpegs_decode_at_each_scale_with_their_colours() {
        let (width, height) = (400, 300);
        let bytes = encode_rgb(&gradient(width, height), width, height, 90).unwrap();
        let frame = header(&bytes).unwrap().frame;
        assert_eq!((frame.width, frame.height), (400, 300));
        assert_eq!(frame.marker, 0xC0, "baseline");
        for (eighths, side) in [(8, 400), (4, 200), (2, 100), (1, 50)] {
            let decoded = decode_scaled(&bytes, &frame, eighths).unwrap();
            // libjpeg rounds a scaled side up: 300 / 8 is 38.
            let expected_h = (300 * u32::from(eighths)).div_ceil(8);
            assert_eq!((decoded.width, decoded.height), (side, expected_h));
            assert_eq!(decoded.pixels.len(), (side * expected_h * 3) as usize);
            // The right edge is red, the bottom green, blue flat.
            let at = |x: u32, y: u32| {
                let i = ((y * decoded.width + x) * 3) as usize;
                &decoded.pixels[i..i + 3]
            };
            let right = at(decoded.width - 1, 0);
            assert!(right[0] > 230 && right[1] < 25, "{eighths}/8: {right:?}");
            let bottom = at(0, decoded.height - 1);
            assert!(bottom[0] < 25 && bottom[1] > 230, "{eighths}/8: {bottom:?}");
            assert!(decoded.pixels.chunks(3).all(|p| p[2].abs_diff(128) < 8));
        }
        let grey = JpegFrame {
            components: 1,
            ..frame
        };
        assert_eq!(
            decode_scaled(&bytes, &grey, 8).unwrap().pixels.len(),
            400 * 300
        );
        let other = JpegFrame {
            width: 401,
            ..frame
        };
        assert!(
            decode_scaled(&bytes, &other, 8).is_err(),
            "a frame the library reads otherwise"
        );
    }

    #[test]
    fn a_damaged_jpeg_is_an_error_not_a_panic() {
        let bytes = encode_rgb(&gradient(64, 48), 64, 48, 90).unwrap();
        let frame = header(&bytes).unwrap().frame;
        assert!(
            decode_scaled(&bytes[..bytes.len() / 2], &frame, 8).is_err(),
            "cut off"
        );
        assert!(decode_scaled(b"not a jpeg at all", &frame, 8).is_err());
        assert!(decode_scaled(&[], &frame, 4).is_err());
        assert!(encode_rgb(&[0; 10], 64, 48, 90).is_err(), "too few pixels");
    }
}
