//! HEIC/HEIF photos through the slideshow conversion: iPhone-style grids
//! (10-bit, Display P3, turned by `irot`, with thumbnail, depth and gain-map
//! items), libheif's own files (plain, thumbnail, alpha), and the files that
//! must be refused clearly (another codec inside, cut short, too large).
//!
//! The HEVC data comes from Debian's `heif-enc` (x265), committed under
//! infra/test-media/fixtures/heic; the containers are laid out here the way
//! phones write them (test_media::heif).

mod media {
    use image::{ImageFormat, RgbImage};
    use shared::media::colour::Colour;
    use shared::media::heic::{self, HeicColour, HeicError};
    use shared::media::{
        ConvertError, ImageKind, PhotoBytes, PhotoLimits, convert_all, to_tiktok_jpeg,
    };
    use test_media::fixture;
    use test_media::heif::{Coded, Heif, Primary, iphone_grid};
    use test_media::picture::{self, BOTTOM, MARK, TOP, p3_to_srgb};

    fn decode_jpeg(jpeg: &[u8]) -> RgbImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)
            .unwrap()
            .into_rgb8()
    }

    #[test]
    fn the_grid_decodes_to_the_source_picture_upright() {
        for depth in [8u8, 10] {
            let bytes = iphone_grid(depth).to_bytes();
            let info = heic::inspect(&bytes).unwrap();
            assert_eq!((info.width, info.height), (2000, 1500));
            assert!(info.transformed);
            assert!(matches!(info.colour, HeicColour::Icc(_)));
            let decoded = heic::decode(&bytes, 512 << 20).unwrap();
            let image = decoded.image.to_rgb8();
            assert_eq!(
                image.dimensions(),
                (1500, 2000),
                "{depth}-bit: turned upright"
            );
            let quality = test_media::picture::psnr(&image, &picture::iphone_grid_upright());
            assert!(
                quality > 32.0,
                "{depth}-bit grid: {quality:.1} dB against its source"
            );
        }
    }

    #[test]
    fn an_iphone_style_grid_becomes_an_upright_srgb_jpeg_within_1080_by_1920() {
        let bytes = iphone_grid(10).to_bytes();
        let photo = to_tiktok_jpeg(&bytes, &PhotoLimits::default()).unwrap();
        assert_eq!(photo.source_format, ImageKind::Heic);
        assert_eq!((photo.source_width, photo.source_height), (2000, 1500));
        assert_eq!(
            (photo.width, photo.height),
            (1080, 1440),
            "portrait, fitted"
        );
        assert!(photo.resized && photo.rotated && !photo.flattened);
        assert!(
            matches!(photo.colour, Colour::ConvertedToSrgb { .. }),
            "{:?}",
            photo.colour
        );

        let jpeg = decode_jpeg(&photo.jpeg);
        assert_eq!(jpeg.dimensions(), (1080, 1440));
        // Up is up: the top band at the top, the bottom band at the bottom,
        // the mark on the left. Turned twice (irot and EXIF), the bands
        // would be at the sides.
        let top = picture::mean(&jpeg, 100, 20, 880, 80);
        let bottom = picture::mean(&jpeg, 100, 1340, 880, 80);
        let mark = picture::mean(&jpeg, 20, 170, 80, 80);
        // And in sRGB: the P3 values converted, not copied.
        let (top_srgb, bottom_srgb, mark_srgb) =
            (p3_to_srgb(TOP), p3_to_srgb(BOTTOM), p3_to_srgb(MARK));
        assert!(
            picture::distance(top, top_srgb) <= 6.0,
            "top {top:?} vs {top_srgb:?}"
        );
        assert!(
            picture::distance(bottom, bottom_srgb) <= 6.0,
            "bottom {bottom:?} vs {bottom_srgb:?}"
        );
        assert!(
            picture::distance(mark, mark_srgb) <= 8.0,
            "mark {mark:?} vs {mark_srgb:?}"
        );
        assert!(
            picture::distance(mark, MARK) >= 12.0,
            "the P3 green must not be copied as sRGB: {mark:?}"
        );
    }

    #[test]
    fn libheif_files_convert_and_the_thumbnail_is_not_the_photo() {
        for name in ["heic/plain.heic", "heic/plain-with-thumbnail.heic"] {
            let photo = to_tiktok_jpeg(&fixture(name), &PhotoLimits::default()).unwrap();
            assert_eq!((photo.width, photo.height), (1080, 810), "{name}");
            assert!(!photo.rotated, "{name}");
            let jpeg = decode_jpeg(&photo.jpeg);
            let top = picture::mean(&jpeg, 100, 10, 880, 60);
            assert!(picture::distance(top, TOP) <= 6.0, "{name}: {top:?}");
        }
    }

    #[test]
    fn alpha_is_flattened_onto_white() {
        let photo = to_tiktok_jpeg(&fixture("heic/alpha.heic"), &PhotoLimits::default()).unwrap();
        assert_eq!((photo.width, photo.height), (640, 480));
        assert!(photo.flattened);
        let jpeg = decode_jpeg(&photo.jpeg);
        let corner = picture::mean(&jpeg, 0, 0, 12, 12);
        assert!(
            picture::distance(corner, [255, 255, 255]) <= 4.0,
            "{corner:?}"
        );
    }

    #[test]
    fn other_codecs_are_refused_naming_what_is_inside() {
        let plain = Coded::from_heif(&fixture("heic/plain.heic"));
        for (item_type, named) in [
            (b"avc1", "AVC (H.264)"),
            (b"jpeg", "JPEG"),
            (b"unci", "uncompressed (unci)"),
            (b"vvc1", "VVC (H.266)"),
        ] {
            let mut image = plain.clone();
            image.item_type = *item_type;
            let bytes = Heif::single(image).to_bytes();
            let results = convert_all(
                &[PhotoBytes {
                    name: "IMG_0042.HEIC".into(),
                    bytes,
                }],
                &PhotoLimits::default(),
                1,
            );
            let error = results.into_iter().next().unwrap().unwrap_err();
            assert!(matches!(
                error.source,
                ConvertError::Heic(HeicError::UnsupportedCodec { .. })
            ));
            let message = error.to_string();
            assert!(message.contains("\"IMG_0042.HEIC\""), "{message}");
            assert!(message.contains(named), "{message}");
            assert!(message.contains("export it as JPEG"), "{message}");
        }
        // A grid of AVC tiles too.
        let mut grid = iphone_grid(8);
        if let Primary::Grid { tiles, .. } = &mut grid.primary {
            for tile in tiles {
                tile.item_type = *b"avc1";
            }
        }
        let error = to_tiktok_jpeg(&grid.to_bytes(), &PhotoLimits::default()).unwrap_err();
        assert!(error.to_string().contains("AVC (H.264)"), "{error}");
    }

    #[test]
    fn a_truncated_heic_is_a_clear_error_naming_the_image() {
        let bytes = iphone_grid(8).to_bytes();
        for cut in [bytes.len() / 3, bytes.len() * 9 / 10, bytes.len() - 1] {
            let results = convert_all(
                &[PhotoBytes {
                    name: "IMG_0043.HEIC".into(),
                    bytes: bytes[..cut].to_vec(),
                }],
                &PhotoLimits::default(),
                1,
            );
            let error = results.into_iter().next().unwrap().unwrap_err();
            let message = error.to_string();
            assert!(message.contains("\"IMG_0043.HEIC\""), "{message}");
            assert!(
                message.contains("damaged or incomplete"),
                "cut at {cut}: {message}"
            );
        }
    }

    #[test]
    fn a_grid_claiming_billions_of_pixels_is_refused_before_decoding() {
        let mut grid = iphone_grid(8);
        if let Primary::Grid { width, height, .. } = &mut grid.primary {
            (*width, *height) = (65_000, 65_000);
        }
        let error = to_tiktok_jpeg(&grid.to_bytes(), &PhotoLimits::default()).unwrap_err();
        assert!(
            matches!(error, ConvertError::Heic(HeicError::TooManyPixels { .. })),
            "{error}"
        );
        assert!(error.to_string().contains("65000 × 65000"), "{error}");
    }

    #[test]
    fn avif_is_refused_with_what_to_export() {
        let error =
            to_tiktok_jpeg(&fixture("heic/plain.avif"), &PhotoLimits::default()).unwrap_err();
        assert!(matches!(error, ConvertError::Avif), "{error}");
        assert!(
            error.to_string().contains("export the image as JPEG"),
            "{error}"
        );
    }

    #[test]
    fn helper_items_do_not_change_the_photo() {
        let mut bare = iphone_grid(8);
        bare.thumbnail = None;
        bare.auxiliary.clear();
        bare.exif_orientation = None;
        let with = heic::decode(&iphone_grid(8).to_bytes(), 512 << 20).unwrap();
        let without = heic::decode(&bare.to_bytes(), 512 << 20).unwrap();
        assert_eq!(with.image.to_rgb8(), without.image.to_rgb8());
    }
}
