//! Writes the source pictures of the HEIC fixtures as PNGs into a folder,
//! for `fixtures/make.sh` to encode with `heif-enc`:
//!
//! - `tile8-R-C.png` / `tile16-R-C.png`: the 512 × 512 tiles (8- and 16-bit)
//!   of a 2048 × 1536 landscape picture, which is [`picture::scene`]
//!   (portrait, 1536 × 2048) turned a quarter anticlockwise, as a phone
//!   stores a portrait shot;
//! - `thumb.png`: a 320 × 240 thumbnail of it;
//! - `plain.png`: a 1200 × 900 upright landscape scene;
//! - `alpha.png`: a 640 × 480 scene whose corners fade to transparent.

use std::path::PathBuf;

use image::{DynamicImage, ImageBuffer, Rgb, Rgba, imageops};
use test_media::picture;

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: heic-sources OUT_DIR"),
    );
    std::fs::create_dir_all(&out).expect("create the output folder");
    let upright = picture::scene(1536, 2048, 1);
    let stored = imageops::rotate270(&upright);
    assert_eq!(stored.dimensions(), (2048, 1536));
    for row in 0..3 {
        for col in 0..4 {
            let tile = imageops::crop_imm(&stored, col * 512, row * 512, 512, 512).to_image();
            tile.save(out.join(format!("tile8-{row}-{col}.png")))
                .expect("write tile");
            let wide: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(512, 512, |x, y| {
                Rgb(tile.get_pixel(x, y).0.map(|v| u16::from(v) * 257))
            });
            DynamicImage::ImageRgb16(wide)
                .save(out.join(format!("tile16-{row}-{col}.png")))
                .expect("write 16-bit tile");
        }
    }
    imageops::resize(&stored, 320, 240, imageops::FilterType::Triangle)
        .save(out.join("thumb.png"))
        .expect("write thumbnail");
    picture::scene(1200, 900, 2)
        .save(out.join("plain.png"))
        .expect("write plain");
    let base = picture::scene(640, 480, 3);
    let alpha = ImageBuffer::from_fn(640, 480, |x, y| {
        let p = base.get_pixel(x, y).0;
        let dx = (x as f32 - 320.0) / 320.0;
        let dy = (y as f32 - 240.0) / 240.0;
        let d = (dx * dx + dy * dy).sqrt();
        let a = ((1.2 - d) * 400.0).clamp(0.0, 255.0) as u8;
        Rgba([p[0], p[1], p[2], a])
    });
    alpha.save(out.join("alpha.png")).expect("write alpha");
}
