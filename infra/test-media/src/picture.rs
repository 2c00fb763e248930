//! Deterministic photo-like pictures: the sources of the HEIC fixtures, and
//! what a test compares a decoded fixture against.
//!
//! A [`scene`] is drawn upright (as the viewer should see it): a band of
//! [`TOP`] across the top tenth, a band of [`BOTTOM`] across the bottom tenth,
//! and between them gradients, soft discs and noise, so that an encoder works
//! as it does on a photo and a test can tell up from down and left from
//! right (a [`MARK`] square sits in the top-left corner of the middle).

use image::{Rgb, RgbImage};

/// Colour of the top band, as stored (Display P3 in the P3 fixtures).
pub const TOP: [u8; 3] = [200, 80, 100];
/// Colour of the bottom band.
pub const BOTTOM: [u8; 3] = [60, 90, 200];
/// Colour of the square marking the left side, under the top band.
pub const MARK: [u8; 3] = [40, 200, 60];

/// Small deterministic PRNG (xorshift64): generated media must be the same
/// on every run.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// An upright photo-like scene of `width` × `height`.
pub fn scene(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let discs: Vec<(f32, f32, f32, [f32; 3])> = (0..5)
        .map(|_| {
            let x = (rng.next_u64() % u64::from(width.max(1))) as f32;
            let y = (rng.next_u64() % u64::from(height.max(1))) as f32;
            let r = (width.min(height) as f32) * (0.05 + (rng.next_u64() % 100) as f32 / 500.0);
            let c = [
                (rng.next_u64() % 200) as f32 + 30.0,
                (rng.next_u64() % 200) as f32 + 30.0,
                (rng.next_u64() % 200) as f32 + 30.0,
            ];
            (x, y, r, c)
        })
        .collect();
    let band = height / 10;
    let mark = (width.min(height) / 8).max(1);
    RgbImage::from_fn(width, height, |x, y| {
        if y < band {
            return Rgb(TOP);
        }
        if y >= height - band {
            return Rgb(BOTTOM);
        }
        if x < mark && y >= band && y < band + mark {
            return Rgb(MARK);
        }
        let fx = x as f32 / width as f32;
        let fy = y as f32 / height as f32;
        let mut c = [90.0 + 100.0 * fx, 110.0 + 60.0 * fy, 150.0 - 80.0 * fx * fy];
        for (dx, dy, r, dc) in &discs {
            let d = ((x as f32 - dx).powi(2) + (y as f32 - dy).powi(2)).sqrt();
            if d < *r {
                let t = 1.0 - d / r;
                for i in 0..3 {
                    c[i] += (dc[i] - c[i]) * t * t;
                }
            }
        }
        // Mild noise: texture for the encoder without making fixtures large.
        let n = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7) % 9;
        let n = n as f32 - 4.0;
        Rgb(c.map(|v| (v + n).clamp(0.0, 255.0) as u8))
    })
}

/// Mean of the pixels of `image` in the rectangle, per channel.
pub fn mean(image: &RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> [f64; 3] {
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    for y in y0..(y0 + h).min(image.height()) {
        for x in x0..(x0 + w).min(image.width()) {
            let p = image.get_pixel(x, y).0;
            for c in 0..3 {
                sum[c] += f64::from(p[c]);
            }
            n += 1.0;
        }
    }
    sum.map(|s| if n > 0.0 { s / n } else { 0.0 })
}

/// Largest per-channel difference between two colours.
pub fn distance(a: [f64; 3], b: [u8; 3]) -> f64 {
    (0..3)
        .map(|c| (a[c] - f64::from(b[c])).abs())
        .fold(0.0, f64::max)
}

/// A Display P3 ICC profile (moxcms's), as phones tag their photos.
pub fn display_p3_icc() -> Vec<u8> {
    moxcms::ColorProfile::new_display_p3()
        .encode()
        .expect("moxcms writes its own profiles")
}

/// `colour` read as Display P3, in sRGB (through moxcms, as the
/// conversion does).
pub fn p3_to_srgb(colour: [u8; 3]) -> [u8; 3] {
    let p3 = moxcms::ColorProfile::new_display_p3();
    let srgb = moxcms::ColorProfile::new_srgb();
    let transform = p3
        .create_transform_8bit(
            moxcms::Layout::Rgb,
            &srgb,
            moxcms::Layout::Rgb,
            moxcms::TransformOptions::default(),
        )
        .expect("P3 to sRGB");
    let mut out = [0u8; 3];
    transform.transform(&colour, &mut out).expect("one pixel");
    out
}

/// What [`crate::heif::iphone_grid`] shows once turned upright, in its
/// stored (P3) colours: 1500 × 2000.
pub fn iphone_grid_upright() -> RgbImage {
    use image::imageops;
    let stored = imageops::rotate270(&scene(1536, 2048, 1));
    imageops::rotate90(&imageops::crop_imm(&stored, 0, 0, 2000, 1500).to_image())
}

/// PSNR of `a` against `b` (same size), in dB.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "PSNR of images of one size");
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// A JPEG with an APP1 Exif segment carrying `orientation` (1-8) right after
/// SOI, as cameras write it.
pub fn jpeg_with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2A\0\0\0\x08"); // big-endian, IFD0 at 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let length = u16::try_from(payload.len() + 2).expect("a small segment");
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}
