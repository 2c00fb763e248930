//! What the demo uploads: your files, or generated ones.

use std::path::{Path, PathBuf};

use crate::DemoResult;

pub struct MediaFile {
    /// The object's file name under `uploads/<alias>/`.
    pub name: String,
    pub bytes: Vec<u8>,
    pub description: String,
}

/// Bytes of the generated video: 75 MB, so it goes up in several chunks.
const GENERATED_VIDEO_BYTES: usize = 75_000_000;

/// The video file given, or a generated 75 MB MP4: a real container (a
/// `moov` describing a 10 s 1080 × 1920 H.264 track at 30 fps) around
/// samples of noise. The upload's probe and the simulator read its headers,
/// as TikTok's checks do; nothing ever decodes the picture.
pub fn video(path: Option<&Path>) -> DemoResult<MediaFile> {
    match path {
        Some(path) => read(path),
        None => Ok(MediaFile {
            name: "holiday clip.mp4".into(),
            bytes: tiktok_drafts_tests::fake_mp4(GENERATED_VIDEO_BYTES, 42),
            description: "generated MP4".into(),
        }),
    }
}

/// The images given, or three generated photos as phones and apps write
/// them, which need each of the conversion's steps: a 12 MP camera JPEG
/// shot upright (stored landscape, turned by its EXIF orientation, decoded
/// at half scale), an iPhone-style HEIC (a grid of 10-bit HEVC tiles,
/// Display P3, turned by `irot`, with the gain map, depth map and thumbnail
/// an iPhone adds) and a transparent PNG sticker to flatten onto white.
pub fn images(paths: &[PathBuf]) -> DemoResult<Vec<MediaFile>> {
    if !paths.is_empty() {
        return paths.iter().map(|p| read(p)).collect();
    }
    Ok(vec![
        camera_jpeg(
            "1-harbour.jpg",
            photo_like(4032, 3024, 7),
            "12 MP phone JPEG, EXIF orientation 6",
        )?,
        MediaFile {
            name: "2-tower.heic".into(),
            bytes: test_media::heif::iphone_grid(10).to_bytes(),
            description: "iPhone-style HEIC: 10-bit grid, Display P3, irot".into(),
        },
        png("3-sticker.png", sticker(800), "transparent PNG")?,
    ])
}

fn read(path: &Path) -> DemoResult<MediaFile> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no usable file name", path.display()))?
        .to_owned();
    Ok(MediaFile {
        name,
        bytes,
        description: "your file".into(),
    })
}

fn png(name: &str, image: image::DynamicImage, description: &str) -> DemoResult<MediaFile> {
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| format!("encode {name}: {e}"))?;
    Ok(MediaFile {
        name: name.into(),
        bytes: out.into_inner(),
        description: description.into(),
    })
}

/// A phone's JPEG of a photo held upright: the sensor's landscape pixels
/// at quality 92, with an EXIF block saying to turn them a quarter
/// clockwise (orientation 6) for display.
fn camera_jpeg(name: &str, image: image::DynamicImage, description: &str) -> DemoResult<MediaFile> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&image)
        .map_err(|e| format!("encode {name}: {e}"))?;
    if jpeg.len() < 2 {
        return Err(format!("encode {name}: the JPEG encoder wrote nothing"));
    }
    let bytes = test_media::picture::jpeg_with_orientation(&jpeg, 6);
    Ok(MediaFile {
        name: name.into(),
        bytes,
        description: description.into(),
    })
}

/// Gradients with noise, like a photo (flat colour would compress to
/// nothing and convert unrealistically fast).
fn photo_like(width: u32, height: u32, seed: u64) -> image::DynamicImage {
    let noise = tiktok_drafts_tests::noise((width * height) as usize, seed);
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
        let n = noise[(y * width + x) as usize] as u32 % 24;
        image::Rgb([
            ((x * 255 / width) + n).min(255) as u8,
            ((y * 255 / height) + n).min(255) as u8,
            (((x + y) * 127 / (width + height)) + 64 + n).min(255) as u8,
        ])
    }))
}

/// A disc on a transparent square.
fn sticker(size: u32) -> image::DynamicImage {
    let centre = size as f32 / 2.0;
    image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(size, size, |x, y| {
        let (dx, dy) = (x as f32 - centre, y as f32 - centre);
        if (dx * dx + dy * dy).sqrt() < centre * 0.8 {
            image::Rgba([230, 60, 90, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    }))
}
