//! Malformed input never panics (the release build aborts on a panic, which
//! would kill the invocation and leave the creator with no answer): real
//! HEIC files and videos, mutated at random — bytes overwritten, box sizes
//! and counts replaced by extreme values, files cut short — through the
//! HEIC decoder, the photo conversion and the video probe. Each must answer
//! `Ok` or a clean error.

mod media {
    use proptest::prelude::*;
    use shared::media::heic;
    use shared::media::probe;
    use shared::media::{PhotoLimits, to_tiktok_jpeg};
    use shared::storage::BytesSource;
    use test_media::heif::{Heif, Primary, tile};
    use test_media::video::{Codec, VideoSpec};
    use test_media::webm::WebmSpec;

    /// A small grid (2 × 2 tiles, 1000 × 1000 shown) with every kind of
    /// box the phone files have, so mutations reach each parser.
    fn small_grid() -> Vec<u8> {
        let mut heif = test_media::heif::iphone_grid(8);
        heif.primary = Primary::Grid {
            tiles: vec![tile(8, 0, 0), tile(8, 0, 1), tile(8, 1, 0), tile(8, 1, 1)],
            columns: 2,
            rows: 2,
            width: 1000,
            height: 1000,
        };
        heif.to_bytes()
    }

    fn heic_inputs() -> Vec<Vec<u8>> {
        vec![
            small_grid(),
            Heif::single(tile(10, 0, 1)).to_bytes(),
            test_media::fixture("heic/alpha.heic"),
        ]
    }

    /// A JPEG, made once, large enough for [`SMALL`] to decode it at
    /// reduced scale.
    fn jpeg_input() -> Vec<u8> {
        static JPEG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        JPEG.get_or_init(|| {
            let mut out = std::io::Cursor::new(Vec::new());
            test_media::picture::scene(640, 480, 3)
                .write_to(&mut out, image::ImageFormat::Jpeg)
                .expect("encodes");
            out.into_inner()
        })
        .clone()
    }

    /// A small box, so that conversions of the inputs stay quick and JPEGs
    /// take the reduced-scale path.
    const SMALL: PhotoLimits = PhotoLimits {
        max_width: 150,
        max_height: 150,
        max_bytes: 20_000_000,
        quality: 90,
        min_quality: 60,
    };

    fn video_inputs() -> Vec<Vec<u8>> {
        vec![
            test_media::fixture("video/h264-30fps.mp4"),
            test_media::fixture("video/h264-moov-at-end.mp4"),
            test_media::fixture("video/hevc-60fps.mov"),
            test_media::fixture("video/vp9.webm"),
            VideoSpec {
                codec: Codec::Hevc,
                moov_at_end: true,
                ..VideoSpec::default()
            }
            .bytes(20_000, 1),
            WebmSpec::default().bytes(20_000, 2),
        ]
    }

    /// One change to a file.
    #[derive(Debug, Clone)]
    enum Mutation {
        /// Overwrite one byte.
        Byte { at: usize, value: u8 },
        /// Overwrite four bytes with an extreme or random big-endian value:
        /// sizes, counts and offsets are 32-bit fields.
        Word { at: usize, value: u32 },
        /// Cut the file.
        Truncate { at: usize },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
            (
                any::<usize>(),
                prop_oneof![
                    Just(0u32),
                    Just(1),
                    Just(7),
                    Just(8),
                    Just(u32::MAX),
                    Just(0x7FFF_FFFF),
                    Just(0x8000_0000),
                    any::<u32>()
                ]
            )
                .prop_map(|(at, value)| Mutation::Word { at, value }),
            any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        ]
    }

    /// Mutations land in the first 4 KiB most of the time: the headers,
    /// where a wrong value does the most.
    fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
        for m in mutations {
            if bytes.is_empty() {
                break;
            }
            let place = |at: usize| {
                if at.is_multiple_of(4) {
                    at % bytes.len()
                } else {
                    at % bytes.len().min(4096)
                }
            };
            match *m {
                Mutation::Byte { at, value } => {
                    let i = place(at);
                    bytes[i] = value;
                }
                Mutation::Word { at, value } => {
                    let i = place(at).min(bytes.len().saturating_sub(4));
                    let end = (i + 4).min(bytes.len());
                    bytes[i..end].copy_from_slice(&value.to_be_bytes()[..end - i]);
                }
                Mutation::Truncate { at } => {
                    let i = place(at);
                    bytes.truncate(i);
                }
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn mutated_heic_never_panics(
            which in 0usize..3,
            mutations in prop::collection::vec(mutation(), 1..4),
        ) {
            let input = apply(heic_inputs().swap_remove(which), &mutations);
            let _ = heic::inspect(&input);
            // Small enough for any claimed size to be refused before decoding
            // a bomb; large enough for the real files.
            let _ = heic::decode(&input, 64 << 20);
            let _ = to_tiktok_jpeg(&input, &SMALL);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn mutated_jpeg_never_panics(mutations in prop::collection::vec(mutation(), 1..4)) {
            let input = apply(jpeg_input(), &mutations);
            // libjpeg-turbo (C) reads these first; what it refuses goes to
            // the `image` crate's decoder. Either way: a JPEG in the box, or
            // an error that says something.
            match to_tiktok_jpeg(&input, &SMALL) {
                Ok(photo) => {
                    prop_assert!(photo.width <= SMALL.max_width && photo.height <= SMALL.max_height);
                    prop_assert_eq!(photo.jpeg.get(..2), Some(&[0xFF, 0xD8][..]));
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn mutated_video_never_panics_the_probe(
            which in 0usize..6,
            mutations in prop::collection::vec(mutation(), 1..6),
        ) {
            let input = apply(video_inputs().swap_remove(which), &mutations);
            let len = input.len() as u64;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            let result = runtime.block_on(probe::probe(&BytesSource::new(input), len));
            if let Ok(probe) = result {
                let _ = probe::check(&probe, len, &probe::VideoLimits::default());
            }
        }
    }
}
