//! Photo conversion against inputs built here with the `image` crate: every
//! format a creator may drop, the fitting rules, EXIF orientation, alpha,
//! and the shape of the JPEG TikTok gets.

/// Inside `mod media` so that `cargo test -p tiktok-drafts-shared media`
/// selects these tests too.
mod media {
    use std::io::Cursor;

    use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
    use shared::media::colour::Colour;
    use shared::media::convert::{MAX_PIXEL_BYTES, fit_inside};
    use shared::media::{
        ConvertError, ImageKind, PhotoBytes, PhotoFile, PhotoLimits, convert_all, to_tiktok_jpeg,
    };

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image
            .write_to(&mut out, format)
            .expect("test image encodes");
        out.into_inner()
    }

    /// A smooth gradient: cheap to encode, not a flat colour.
    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    fn decode(jpeg: &[u8]) -> RgbImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
            .expect("output decodes")
            .into_rgb8()
    }

    fn close(a: Rgb<u8>, b: [u8; 3], tolerance: i32) -> bool {
        a.0.iter()
            .zip(b)
            .all(|(&x, y)| (i32::from(x) - i32::from(y)).abs() <= tolerance)
    }

    /// The frame header of a JPEG: its SOF marker and the (id, sampling) of
    /// each component. Walks the marker segments up to the first scan.
    fn frame_header(jpeg: &[u8]) -> (u8, Vec<(u8, u8)>) {
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "starts with SOI");
        let mut pos = 2;
        loop {
            assert_eq!(jpeg[pos], 0xFF, "marker at {pos}");
            let marker = jpeg[pos + 1];
            let length = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                let segment = &jpeg[pos + 4..pos + 2 + length];
                let count = usize::from(segment[5]);
                let components = (0..count)
                    .map(|i| (segment[6 + 3 * i], segment[7 + 3 * i]))
                    .collect();
                return (marker, components);
            }
            assert_ne!(marker, 0xDA, "scan before any frame header");
            pos += 2 + length;
        }
    }

    #[test]
    fn transparent_png_becomes_white() {
        let image = RgbaImage::from_fn(400, 300, |x, _| {
            if x < 200 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([200, 0, 0, 255])
            }
        });
        let png = encode(&DynamicImage::ImageRgba8(image), ImageFormat::Png);
        let photo = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        assert!(photo.flattened);
        assert!(!photo.resized);
        assert_eq!(photo.source_format, ImageKind::Png);
        let out = decode(&photo.jpeg);
        assert!(
            close(*out.get_pixel(50, 150), [255, 255, 255], 3),
            "{:?}",
            out.get_pixel(50, 150)
        );
        assert!(
            close(*out.get_pixel(350, 150), [200, 0, 0], 12),
            "{:?}",
            out.get_pixel(350, 150)
        );
    }

    #[test]
    fn large_landscape_fits_1080_wide() {
        let png = encode(
            &DynamicImage::ImageRgb8(gradient(4000, 3000)),
            ImageFormat::Png,
        );
        let photo = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width, photo.height), (1080, 810));
        assert_eq!((photo.source_width, photo.source_height), (4000, 3000));
        assert!(photo.resized);
        assert!(!photo.flattened);
        assert!(!photo.rotated);
        assert_eq!(decode(&photo.jpeg).dimensions(), (1080, 810));
    }

    #[test]
    fn small_image_is_not_upscaled() {
        let png = encode(
            &DynamicImage::ImageRgb8(gradient(800, 600)),
            ImageFormat::Png,
        );
        let photo = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width, photo.height), (800, 600));
        assert!(!photo.resized);
    }

    #[test]
    fn tall_portrait_fits_1920_tall() {
        let png = encode(
            &DynamicImage::ImageRgb8(gradient(1080, 2400)),
            ImageFormat::Png,
        );
        let photo = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width, photo.height), (864, 1920));
    }

    #[test]
    fn a_large_jpeg_decoded_at_reduced_scale_looks_like_a_full_decode() {
        // 2400 × 1800 for a 1080-wide slot: decoded at 1/2 (1200 × 900),
        // never at 1/4 (600 × 450, less than the slot). A 12 MP photo is
        // decoded at 1/2 the same way (see the slideshow bench).
        let scene = test_media::picture::scene(2400, 1800, 5);
        let jpeg = encode(&DynamicImage::ImageRgb8(scene.clone()), ImageFormat::Jpeg);
        let photo = to_tiktok_jpeg(&jpeg, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width, photo.height), (1080, 810));
        assert_eq!((photo.source_width, photo.source_height), (2400, 1800));
        assert!(photo.resized);
        let expected =
            image::imageops::resize(&scene, 1080, 810, image::imageops::FilterType::Lanczos3);
        let quality = test_media::picture::psnr(&decode(&photo.jpeg), &expected);
        assert!(quality > 33.0, "{quality:.1} dB against the source");

        // Turned by EXIF: the box turns too, the scale still covers it.
        let turned = to_tiktok_jpeg(
            &test_media::picture::jpeg_with_orientation(&jpeg, 6),
            &PhotoLimits::default(),
        )
        .unwrap();
        assert_eq!((turned.width, turned.height), (1080, 1440));
        let expected = image::imageops::rotate90(&image::imageops::resize(
            &test_media::picture::scene(2400, 1800, 5),
            1440,
            1080,
            image::imageops::FilterType::Lanczos3,
        ));
        let quality = test_media::picture::psnr(&decode(&turned.jpeg), &expected);
        assert!(quality > 33.0, "{quality:.1} dB turned");

        // Grey JPEGs too.
        let grey = DynamicImage::ImageRgb8(scene).into_luma8();
        let jpeg = encode(&DynamicImage::ImageLuma8(grey.clone()), ImageFormat::Jpeg);
        let photo = to_tiktok_jpeg(&jpeg, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width, photo.height), (1080, 810));
        let expected = DynamicImage::ImageLuma8(image::imageops::resize(
            &grey,
            1080,
            810,
            image::imageops::FilterType::Lanczos3,
        ))
        .into_rgb8();
        let quality = test_media::picture::psnr(&decode(&photo.jpeg), &expected);
        assert!(quality > 33.0, "{quality:.1} dB grey");
    }

    #[test]
    fn exif_orientation_6_is_applied_after_fitting() {
        // Stored 1600 × 1200 landscape with a red block in the stored top-left
        // corner; orientation 6 means "rotate 90° clockwise to display", so
        // the photo shows as 1200 × 1600 portrait with the block top-right.
        let mut stored = gradient(1600, 1200);
        for y in 0..200 {
            for x in 0..200 {
                stored.put_pixel(x, y, Rgb([255, 0, 0]));
            }
        }
        let jpeg = encode(&DynamicImage::ImageRgb8(stored), ImageFormat::Jpeg);
        let jpeg = test_media::picture::jpeg_with_orientation(&jpeg, 6);
        let photo = to_tiktok_jpeg(&jpeg, &PhotoLimits::default()).unwrap();
        assert!(photo.rotated);
        assert!(photo.resized);
        assert_eq!(photo.source_format, ImageKind::Jpeg);
        assert!(
            photo.height > photo.width,
            "{}x{}",
            photo.width,
            photo.height
        );
        assert!(photo.width <= 1080 && photo.height <= 1920);
        assert_eq!((photo.width, photo.height), (1080, 1440));
        let out = decode(&photo.jpeg);
        assert!(
            close(*out.get_pixel(1080 - 40, 40), [255, 0, 0], 40),
            "top-right {:?}",
            out.get_pixel(1080 - 40, 40)
        );
        assert!(
            !close(*out.get_pixel(40, 40), [255, 0, 0], 40),
            "top-left {:?}",
            out.get_pixel(40, 40)
        );
    }

    #[test]
    fn webp_with_alpha_converts() {
        let image = RgbaImage::from_fn(300, 200, |x, y| {
            Rgba([
                (x % 256) as u8,
                (y % 256) as u8,
                90,
                if x < 100 { 0 } else { 255 },
            ])
        });
        let webp = encode(&DynamicImage::ImageRgba8(image), ImageFormat::WebP);
        let photo = to_tiktok_jpeg(&webp, &PhotoLimits::default()).unwrap();
        assert_eq!(photo.source_format, ImageKind::WebP);
        assert_eq!((photo.width, photo.height), (300, 200));
        assert!(photo.flattened);
        assert!(close(
            *decode(&photo.jpeg).get_pixel(20, 100),
            [255, 255, 255],
            3
        ));
    }

    #[test]
    fn gif_first_frame_is_used() {
        use image::codecs::gif::GifEncoder;
        use image::{Delay, Frame};
        let red = RgbaImage::from_pixel(120, 80, Rgba([255, 0, 0, 255]));
        let blue = RgbaImage::from_pixel(120, 80, Rgba([0, 0, 255, 255]));
        let mut gif = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut gif);
            encoder
                .encode_frames([
                    Frame::from_parts(red, 0, 0, Delay::from_numer_denom_ms(100, 1)),
                    Frame::from_parts(blue, 0, 0, Delay::from_numer_denom_ms(100, 1)),
                ])
                .expect("gif encodes");
        }
        let photo = to_tiktok_jpeg(&gif, &PhotoLimits::default()).unwrap();
        assert_eq!(photo.source_format, ImageKind::Gif);
        assert_eq!((photo.width, photo.height), (120, 80));
        assert!(close(
            *decode(&photo.jpeg).get_pixel(60, 40),
            [255, 0, 0],
            12
        ));
    }

    #[test]
    fn sixteen_bit_png_converts() {
        let image = image::ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(2000, 1000, |x, y| {
            Rgb([(x * 32) as u16, (y * 64) as u16, 40_000])
        });
        let png = encode(&DynamicImage::ImageRgb16(image), ImageFormat::Png);
        let photo = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width, photo.height), (1080, 540));
        let pixel = *decode(&photo.jpeg).get_pixel(0, 0);
        assert!(close(pixel, [0, 0, 155], 10), "{pixel:?}");
    }

    #[test]
    fn corrupt_png_is_an_error_not_a_panic() {
        let png = encode(
            &DynamicImage::ImageRgb8(gradient(300, 300)),
            ImageFormat::Png,
        );
        // Cut off half way.
        let truncated = &png[..png.len() / 2];
        let err = to_tiktok_jpeg(truncated, &PhotoLimits::default()).unwrap_err();
        assert!(matches!(err, ConvertError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("PNG"), "{err}");
        // Garbage after a valid signature.
        let mut garbled = png.clone();
        for byte in garbled.iter_mut().skip(40).take(200) {
            *byte ^= 0x5A;
        }
        assert!(to_tiktok_jpeg(&garbled, &PhotoLimits::default()).is_err());
        // Signature only.
        assert!(to_tiktok_jpeg(&png[..8], &PhotoLimits::default()).is_err());
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A valid PNG header claiming `width` × `height` in colour type
    /// `color` (0 grey, 2 RGB, 6 RGBA), 8-bit, with an empty image stream.
    fn png_header_only(width: u32, height: u32, color: u8) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, color, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        // A little image data (an empty zlib stream) so the header is read.
        let mut idat = b"IDAT".to_vec();
        idat.extend_from_slice(&[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        png.extend_from_slice(&8u32.to_be_bytes());
        png.extend_from_slice(&idat);
        png.extend_from_slice(&crc32(&idat).to_be_bytes());
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IEND");
        png.extend_from_slice(&crc32(b"IEND").to_be_bytes());
        png
    }

    #[test]
    fn decompression_bomb_is_refused() {
        // 60000 × 60000 RGB: 10.8 GB decoded.
        let png = png_header_only(60_000, 60_000, 2);
        let err = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap_err();
        assert!(matches!(err, ConvertError::TooManyPixels { .. }), "{err:?}");
    }

    #[test]
    fn a_grey_image_is_judged_by_its_rgb_copy_too() {
        // 20000 × 20000 grey is 400 MB decoded, under the per-image cap, but
        // 1.6 GB once the RGB copy is made: more than two workers' share of
        // a 2048 MB function.
        let png = png_header_only(20_000, 20_000, 0);
        let err = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap_err();
        match err {
            ConvertError::TooManyPixels { bytes, .. } => {
                assert_eq!(bytes, 20_000 * 20_000 * 4);
                assert!(bytes > MAX_PIXEL_BYTES);
            }
            other => panic!("expected TooManyPixels, got {other:?}"),
        }
        // The same pixels in RGB need no copy and pass the check (then fail
        // to decode the empty stream, which is a different error).
        let rgb = png_header_only(13_000, 13_000, 2);
        let err = to_tiktok_jpeg(&rgb, &PhotoLimits::default()).unwrap_err();
        assert!(matches!(err, ConvertError::Decode { .. }), "{err:?}");
    }

    #[test]
    fn unsupported_inputs_are_clear_errors() {
        let limits = PhotoLimits::default();
        assert!(matches!(
            to_tiktok_jpeg(b"", &limits),
            Err(ConvertError::Empty)
        ));
        // A HEIC header and nothing after it (see media_heic.rs for real ones).
        let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
        let err = to_tiktok_jpeg(heic, &limits).unwrap_err();
        assert!(matches!(err, ConvertError::Heic(_)));
        assert!(err.to_string().contains("HEIC"), "{err}");
        let mp4 = b"\0\0\0\x18ftypisom\0\0\0\0isomavc1";
        assert!(matches!(
            to_tiktok_jpeg(mp4, &limits),
            Err(ConvertError::Video)
        ));
        assert!(matches!(
            to_tiktok_jpeg(b"%PDF-1.7 hello", &limits),
            Err(ConvertError::NotAnImage)
        ));
    }

    /// The start of an ISO BMFF file: an `ftyp` box and the box after it.
    fn iso_file(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut file = size.to_be_bytes().to_vec();
        file.extend_from_slice(b"ftyp");
        file.extend_from_slice(major);
        file.extend_from_slice(&[0, 0, 0, 0]);
        for brand in compatible {
            file.extend_from_slice(*brand);
        }
        file.extend_from_slice(&[0, 0, 0, 8, b'm', b'e', b't', b'a']);
        file
    }

    #[test]
    fn header_only_heic_and_any_avif_or_cr3_are_refused_with_what_to_do() {
        let limits = PhotoLimits::default();
        /// Major brand, compatible brands, what the message must say.
        type Case = (&'static [u8; 4], &'static [&'static [u8; 4]], &'static str);
        let cases: [Case; 7] = [
            (
                b"heic",
                &[b"mif1", b"heic"],
                "HEIC image is damaged or incomplete",
            ),
            (
                b"heix",
                &[b"mif1", b"heix"],
                "HEIC image is damaged or incomplete",
            ),
            (
                b"mif1",
                &[b"mif1", b"heic"],
                "HEIC image is damaged or incomplete",
            ),
            (
                b"msf1",
                &[b"msf1", b"hevc"],
                "HEIC image is damaged or incomplete",
            ),
            (
                b"avif",
                &[b"mif1", b"avif"],
                "AVIF images are not supported",
            ),
            (
                b"mif1",
                &[b"mif1", b"avif"],
                "AVIF images are not supported",
            ),
            (b"crx ", &[b"crx ", b"isom"], "CR3"),
        ];
        for (major, compatible, message) in cases {
            let err = to_tiktok_jpeg(&iso_file(major, compatible), &limits).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(message), "{major:?}: {text}");
            assert!(text.contains("export"), "{major:?}: {text}");
        }
        // In a batch, the error names the image.
        let inputs = [PhotoBytes {
            name: "IMG_0001.HEIC".to_string(),
            bytes: iso_file(b"heic", &[b"mif1", b"heic"]),
        }];
        let results = convert_all(&inputs, &limits, 1);
        let err = results[0].as_ref().unwrap_err();
        assert!(matches!(err.source, ConvertError::Heic(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("images[0] \"IMG_0001.HEIC\""), "{text}");
        assert!(text.contains("export it as JPEG"), "{text}");
    }

    #[test]
    fn output_is_baseline_420_jpeg_within_20_mb() {
        let png = encode(
            &DynamicImage::ImageRgb8(gradient(2000, 1500)),
            ImageFormat::Png,
        );
        let photo = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        assert!(photo.jpeg.len() <= 20_000_000);
        assert_eq!(photo.quality, 90);
        let (marker, components) = frame_header(&photo.jpeg);
        assert_eq!(marker, 0xC0, "SOF0 (baseline), not SOF2");
        assert_eq!(components.len(), 3);
        assert_eq!(components[0].1, 0x22, "Y sampled 2x2");
        assert_eq!(components[1].1, 0x11, "Cb 1x1");
        assert_eq!(components[2].1, 0x11, "Cr 1x1");
        assert_eq!(
            &photo.jpeg[photo.jpeg.len() - 2..],
            &[0xFF, 0xD9],
            "ends with EOI"
        );
    }

    #[test]
    fn quality_steps_down_to_meet_the_byte_limit() {
        // Noise compresses badly, so lower qualities are clearly smaller.
        let mut state = 12345u32;
        let noisy = RgbImage::from_fn(600, 400, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let v = (state >> 16) as u8;
            Rgb([v, v.wrapping_mul(3), v.wrapping_mul(7)])
        });
        let png = encode(&DynamicImage::ImageRgb8(noisy), ImageFormat::Png);
        let full = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        let limits = PhotoLimits {
            max_bytes: full.jpeg.len() - 1,
            ..PhotoLimits::default()
        };
        let smaller = to_tiktok_jpeg(&png, &limits).unwrap();
        assert!(smaller.quality < 90 && smaller.quality >= 60);
        assert!(smaller.jpeg.len() < full.jpeg.len());

        let tiny = PhotoLimits {
            max_bytes: 1000,
            ..PhotoLimits::default()
        };
        let err = to_tiktok_jpeg(&png, &tiny).unwrap_err();
        assert!(
            matches!(
                err,
                ConvertError::TooLarge {
                    quality: 60,
                    max: 1000,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn convert_all_keeps_order_and_names_the_failure() {
        let good = |w, h| encode(&DynamicImage::ImageRgb8(gradient(w, h)), ImageFormat::Png);
        let mut corrupt = good(200, 200);
        corrupt.truncate(corrupt.len() / 2);
        let inputs = vec![
            PhotoBytes {
                name: "a.png".to_string(),
                bytes: good(300, 100),
            },
            PhotoBytes {
                name: "broken one.png".to_string(),
                bytes: corrupt,
            },
            PhotoBytes {
                name: "c.png".to_string(),
                bytes: good(100, 300),
            },
            PhotoBytes {
                name: "d.jpg".to_string(),
                bytes: encode(
                    &DynamicImage::ImageRgb8(gradient(50, 60)),
                    ImageFormat::Jpeg,
                ),
            },
        ];
        for threads in [1, 2, 8] {
            let results = convert_all(&inputs, &PhotoLimits::default(), threads);
            assert_eq!(results.len(), 4);
            let dims: Vec<Option<(u32, u32)>> = results
                .iter()
                .map(|r| r.as_ref().ok().map(|p| (p.width, p.height)))
                .collect();
            assert_eq!(
                dims,
                vec![Some((300, 100)), None, Some((100, 300)), Some((50, 60))]
            );
            let err = results[1].as_ref().unwrap_err();
            assert_eq!(err.index, 1);
            assert_eq!(err.name, "broken one.png");
            let message = err.to_string();
            assert!(message.contains("images[1]"), "{message}");
            assert!(message.contains("broken one.png"), "{message}");
        }
    }

    #[test]
    fn convert_all_streams_files_and_names_a_missing_one() {
        let dir = std::env::temp_dir().join(format!(
            "media-convert-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let present = dir.join("one.png");
        std::fs::write(
            &present,
            encode(
                &DynamicImage::ImageRgb8(gradient(2160, 1000)),
                ImageFormat::Png,
            ),
        )
        .unwrap();
        let inputs = vec![
            PhotoFile {
                name: "one.png".to_string(),
                path: present,
            },
            PhotoFile {
                name: "gone.png".to_string(),
                path: dir.join("gone.png"),
            },
        ];
        let results = convert_all(&inputs, &PhotoLimits::default(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
        let photo = results[0].as_ref().unwrap();
        assert_eq!((photo.width, photo.height), (1080, 500));
        let err = results[1].as_ref().unwrap_err();
        assert!(matches!(err.source, ConvertError::Read(_)), "{err:?}");
        assert!(err.to_string().contains("gone.png"), "{err}");
    }

    #[test]
    fn fit_inside_never_upscales_or_crops() {
        for (w, h) in [
            (1, 1),
            (4000, 3000),
            (3000, 4000),
            (1081, 1921),
            (5000, 100),
        ] {
            let (fw, fh) = fit_inside(w, h, 1080, 1920);
            assert!(fw <= 1080 && fh <= 1920);
            assert!(fw <= w && fh <= h);
            // Aspect ratio kept: the side that was not set to the box's is
            // the exact scaled length, rounded to the nearest pixel.
            let exact_h = f64::from(fw) * f64::from(h) / f64::from(w);
            let exact_w = f64::from(fh) * f64::from(w) / f64::from(h);
            assert!(
                (exact_h - f64::from(fh)).abs() <= 0.5 || (exact_w - f64::from(fw)).abs() <= 0.5,
                "{w}x{h} -> {fw}x{fh}"
            );
        }
    }

    // --- Colour: embedded ICC profiles to sRGB -------------------------

    /// The RGB → XYZ matrix of an RGB space given by its primaries' and
    /// white's xy chromaticities (the textbook derivation, independent of
    /// any colour-management code).
    fn rgb_to_xyz(primaries: [(f64, f64); 3], white: (f64, f64)) -> [[f64; 3]; 3] {
        let xyz = |(x, y): (f64, f64)| [x / y, 1.0, (1.0 - x - y) / y];
        let columns = primaries.map(xyz);
        let m = [
            [columns[0][0], columns[1][0], columns[2][0]],
            [columns[0][1], columns[1][1], columns[2][1]],
            [columns[0][2], columns[1][2], columns[2][2]],
        ];
        let scale = mul_vec(&invert(&m), xyz(white));
        let mut out = m;
        for row in &mut out {
            for (c, value) in row.iter_mut().enumerate() {
                *value *= scale[c];
            }
        }
        out
    }

    fn invert(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
        let mut inv = [[0.0; 3]; 3];
        for (r, row) in inv.iter_mut().enumerate() {
            for (c, value) in row.iter_mut().enumerate() {
                let (r1, r2) = ((c + 1) % 3, (c + 2) % 3);
                let (c1, c2) = ((r + 1) % 3, (r + 2) % 3);
                *value = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
            }
        }
        inv
    }

    fn mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
        let mut out = [[0.0; 3]; 3];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, value) in row.iter_mut().enumerate() {
                *value = (0..3).map(|k| a[r][k] * b[k][c]).sum();
            }
        }
        out
    }

    fn mul_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
        [0, 1, 2].map(|r| (0..3).map(|k| m[r][k] * v[k]).sum())
    }

    const D65: (f64, f64) = (0.3127, 0.3290);
    const SRGB_PRIMARIES: [(f64, f64); 3] = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)];
    const P3_PRIMARIES: [(f64, f64); 3] = [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)];
    const ADOBE_PRIMARIES: [(f64, f64); 3] = [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)];

    fn srgb_decode(v: u8) -> f64 {
        let v = f64::from(v) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    }

    fn srgb_encode(v: f64) -> u8 {
        let v = v.clamp(0.0, 1.0);
        let e = if v <= 0.0031308 {
            v * 12.92
        } else {
            1.055 * v.powf(1.0 / 2.4) - 0.055
        };
        (e * 255.0).round() as u8
    }

    /// What `pixel` in a space with `primaries` (D65 white) and the given
    /// decoding curve is in sRGB, clipped to the sRGB gamut.
    fn expected_srgb(pixel: Rgb<u8>, primaries: [(f64, f64); 3], decode: fn(u8) -> f64) -> [u8; 3] {
        let to_srgb = mul(
            &invert(&rgb_to_xyz(SRGB_PRIMARIES, D65)),
            &rgb_to_xyz(primaries, D65),
        );
        mul_vec(&to_srgb, pixel.0.map(decode)).map(srgb_encode)
    }

    fn adobe_decode(v: u8) -> f64 {
        (f64::from(v) / 255.0).powf(563.0 / 256.0)
    }

    fn icc(profile: &moxcms::ColorProfile) -> Vec<u8> {
        profile.encode().expect("moxcms writes its own profiles")
    }

    /// Colours that sit well inside both gamuts and move visibly when
    /// re-expressed in sRGB, in flat blocks so JPEG keeps them.
    const SWATCHES: [[u8; 3]; 4] = [
        [200, 80, 100],
        [60, 150, 90],
        [230, 190, 60],
        [128, 128, 128],
    ];

    fn swatches() -> RgbImage {
        RgbImage::from_fn(64 * SWATCHES.len() as u32, 64, |x, _| {
            Rgb(SWATCHES[(x / 64) as usize])
        })
    }

    fn encode_with_profile(image: &RgbImage, format: ImageFormat, profile: &[u8]) -> Vec<u8> {
        use image::ImageEncoder;
        use image::codecs::{jpeg::JpegEncoder, png::PngEncoder, webp::WebPEncoder};
        let mut out = Vec::new();
        let (w, h) = image.dimensions();
        let color = image::ExtendedColorType::Rgb8;
        match format {
            ImageFormat::Png => {
                let mut encoder = PngEncoder::new(&mut out);
                encoder
                    .set_icc_profile(profile.to_vec())
                    .expect("PNG takes a profile");
                encoder.write_image(image.as_raw(), w, h, color)
            }
            ImageFormat::Jpeg => {
                let mut encoder = JpegEncoder::new_with_quality(&mut out, 95);
                encoder
                    .set_icc_profile(profile.to_vec())
                    .expect("JPEG takes a profile");
                encoder.write_image(image.as_raw(), w, h, color)
            }
            ImageFormat::WebP => {
                let mut encoder = WebPEncoder::new_lossless(&mut out);
                encoder
                    .set_icc_profile(profile.to_vec())
                    .expect("WebP takes a profile");
                encoder.write_image(image.as_raw(), w, h, color)
            }
            other => panic!("no test encoder for {other:?}"),
        }
        .expect("test image encodes");
        out
    }

    /// Checks each swatch's centre against the colour `expected` gives for
    /// the input as decoded (so the input's own JPEG error is not counted).
    fn assert_swatches(
        input: &[u8],
        output: &[u8],
        expected: impl Fn(Rgb<u8>) -> [u8; 3],
        tolerance: i32,
        label: &str,
    ) {
        let stored = image::load_from_memory(input)
            .expect("input decodes")
            .into_rgb8();
        let out = decode(output);
        for i in 0..SWATCHES.len() as u32 {
            let (x, y) = (i * 64 + 32, 32);
            let want = expected(*stored.get_pixel(x, y));
            let got = *out.get_pixel(x, y);
            assert!(
                close(got, want, tolerance),
                "{label} swatch {i}: stored {:?}, got {got:?}, want {want:?}",
                stored.get_pixel(x, y)
            );
        }
    }

    #[test]
    fn display_p3_png_jpeg_and_webp_become_srgb() {
        let p3 = icc(&moxcms::ColorProfile::new_display_p3());
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let input = encode_with_profile(&swatches(), format, &p3);
            let photo = to_tiktok_jpeg(&input, &PhotoLimits::default()).unwrap();
            assert!(
                matches!(photo.colour, Colour::ConvertedToSrgb { .. }),
                "{format:?}: {:?}",
                photo.colour
            );
            assert_swatches(
                &input,
                &photo.jpeg,
                |p| expected_srgb(p, P3_PRIMARIES, srgb_decode),
                4,
                &format!("{format:?}"),
            );
            // The first swatch moves by far more than the tolerance: a
            // pipeline that ignored the profile would fail above.
            let moved = expected_srgb(Rgb(SWATCHES[0]), P3_PRIMARIES, srgb_decode);
            assert!(
                i32::from(moved[0]) - i32::from(SWATCHES[0][0]) >= 10,
                "{moved:?}"
            );
        }
    }

    #[test]
    fn adobe_rgb_png_becomes_srgb_after_resizing() {
        // Larger than the box, so the transform runs on the fitted image.
        let big = RgbImage::from_fn(2160, 64, |x, _| {
            Rgb(SWATCHES[((x / 540) as usize).min(SWATCHES.len() - 1)])
        });
        let input = encode_with_profile(
            &big,
            ImageFormat::Png,
            &icc(&moxcms::ColorProfile::new_adobe_rgb()),
        );
        let photo = to_tiktok_jpeg(&input, &PhotoLimits::default()).unwrap();
        assert!(photo.resized);
        assert!(
            matches!(photo.colour, Colour::ConvertedToSrgb { .. }),
            "{:?}",
            photo.colour
        );
        let out = decode(&photo.jpeg);
        for (i, swatch) in SWATCHES.iter().enumerate() {
            let x = i as u32 * 270 + 135;
            let want = expected_srgb(Rgb(*swatch), ADOBE_PRIMARIES, adobe_decode);
            let got = *out.get_pixel(x, 16);
            assert!(
                close(got, want, 4),
                "swatch {i}: got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn untagged_and_srgb_tagged_images_keep_their_values() {
        let plain = encode(&DynamicImage::ImageRgb8(swatches()), ImageFormat::Png);
        let photo = to_tiktok_jpeg(&plain, &PhotoLimits::default()).unwrap();
        assert_eq!(photo.colour, Colour::NoProfile);
        assert_swatches(&plain, &photo.jpeg, |p| p.0, 3, "untagged");

        let srgb = icc(&moxcms::ColorProfile::new_srgb());
        let tagged = encode_with_profile(&swatches(), ImageFormat::Jpeg, &srgb);
        let photo = to_tiktok_jpeg(&tagged, &PhotoLimits::default()).unwrap();
        assert_eq!(photo.colour, Colour::Srgb);
        assert_swatches(&tagged, &photo.jpeg, |p| p.0, 3, "sRGB-tagged");
    }

    #[test]
    fn a_broken_profile_keeps_the_photo_as_stored() {
        let input = encode_with_profile(
            &swatches(),
            ImageFormat::Png,
            b"definitely not an ICC profile",
        );
        let photo = to_tiktok_jpeg(&input, &PhotoLimits::default()).unwrap();
        assert!(
            matches!(photo.colour, Colour::ProfileIgnored { .. }),
            "{:?}",
            photo.colour
        );
        assert_swatches(&input, &photo.jpeg, |p| p.0, 3, "broken profile");
    }

    #[test]
    fn a_grey_png_with_a_linear_grey_profile_is_encoded_for_srgb() {
        use image::ImageEncoder;
        let grey = image::GrayImage::from_pixel(64, 64, image::Luma([128]));
        let mut png = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut png);
        encoder
            .set_icc_profile(icc(&moxcms::ColorProfile::new_gray_with_gamma(1.0)))
            .expect("PNG takes a profile");
        encoder
            .write_image(grey.as_raw(), 64, 64, image::ExtendedColorType::L8)
            .expect("grey PNG encodes");
        let photo = to_tiktok_jpeg(&png, &PhotoLimits::default()).unwrap();
        assert!(
            matches!(photo.colour, Colour::ConvertedToSrgb { .. }),
            "{:?}",
            photo.colour
        );
        // 128 in a linear space is 0.502 of full light: sRGB writes that as 188.
        let want = srgb_encode(128.0 / 255.0);
        assert!(close(*decode(&photo.jpeg).get_pixel(32, 32), [want; 3], 3));
    }
}
