//! The video probe on real files (made by ffmpeg, committed under
//! infra/test-media/fixtures/video), on generated containers of any size,
//! and on broken input; and its verdicts against TikTok's limits.

mod media {
    use std::sync::atomic::{AtomicU64, Ordering};

    use bytes::Bytes;
    use shared::media::detect::{MediaError, VideoKind};
    use shared::media::probe::{
        self, HdrTransfer, Note, ProbeError, RefusalKind, VideoCodec, VideoLimits, VideoProbe,
    };
    use shared::storage::{BytesSource, ChunkSource, FileSource, SourceError};
    use test_media::video::{Codec, Container, Hdr, VideoSpec};
    use test_media::webm::WebmSpec;

    async fn probe_fixture(name: &str) -> Result<VideoProbe, ProbeError> {
        let path = test_media::fixtures_dir().join("video").join(name);
        let source = FileSource::open(&path).await.expect("fixture opens");
        probe::probe(&source, source.len()).await
    }

    fn verdict(probe: &VideoProbe) -> Result<Vec<Note>, probe::Refusal> {
        probe::check(probe, 1_000_000, &VideoLimits::default())
    }

    #[tokio::test]
    async fn fixtures_within_tiktok_limits_pass() {
        for (name, container, codec, fps, duration_ms, audio) in [
            (
                "h264-30fps.mp4",
                VideoKind::Mp4,
                VideoCodec::H264,
                "30",
                2000,
                true,
            ),
            (
                "h264-moov-at-end.mp4",
                VideoKind::Mp4,
                VideoCodec::H264,
                "30",
                2000,
                false,
            ),
            (
                "hevc-60fps.mov",
                VideoKind::Mov,
                VideoCodec::H265,
                "60",
                1000,
                false,
            ),
            (
                "h264-29.97fps.mp4",
                VideoKind::Mp4,
                VideoCodec::H264,
                "29.97",
                2002,
                false,
            ),
            (
                "h264-59.94fps.mp4",
                VideoKind::Mp4,
                VideoCodec::H264,
                "59.94",
                1001,
                false,
            ),
            (
                "vp9.webm",
                VideoKind::WebM,
                VideoCodec::Vp9,
                "30",
                2000,
                false,
            ),
            (
                "vp8.webm",
                VideoKind::WebM,
                VideoCodec::Vp8,
                "30",
                2000,
                false,
            ),
        ] {
            let probe = probe_fixture(name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(probe.container, container, "{name}");
            let video = probe.video.as_ref().expect("a video track");
            assert_eq!(video.codec, codec, "{name}");
            assert_eq!((video.width, video.height), (360, 640), "{name}");
            let rate = video.frame_rate.expect("a frame rate");
            assert_eq!(rate.to_string(), fps, "{name}");
            let measured = probe.duration_ms.expect("a duration");
            assert!(
                measured.abs_diff(duration_ms) <= 50,
                "{name}: {measured} ms"
            );
            assert_eq!(probe.has_audio, audio, "{name}");
            assert_eq!(verdict(&probe), Ok(vec![]), "{name}");
        }
    }

    #[tokio::test]
    async fn hdr_is_noted_not_refused() {
        let probe = probe_fixture("hevc-hdr-pq.mp4").await.unwrap();
        let video = probe.video.as_ref().unwrap();
        assert_eq!(video.hdr, Some(HdrTransfer::Pq));
        assert_eq!(verdict(&probe), Ok(vec![Note::Hdr(HdrTransfer::Pq)]));
    }

    #[tokio::test]
    async fn fixtures_outside_the_limits_are_refused_with_the_measured_value() {
        for (name, kind, message) in [
            (
                "h264-120fps.mp4",
                RefusalKind::FrameRate,
                "120 fps; TikTok accepts 23-60 fps",
            ),
            (
                "h264-60.5fps.mp4",
                RefusalKind::FrameRate,
                "60.5 fps; TikTok accepts 23-60 fps",
            ),
            (
                "h264-15fps.mp4",
                RefusalKind::FrameRate,
                "15 fps; TikTok accepts 23-60 fps",
            ),
            (
                "h264-200x200.mp4",
                RefusalKind::PictureSize,
                "200 × 200 pixels; TikTok accepts 360-4096 pixels on each side",
            ),
            (
                "h264-11min.mp4",
                RefusalKind::Duration,
                "11 min 0 s (660 s) long; TikTok accepts videos of at most 10 min 0 s (600 s)",
            ),
            (
                "av1.mp4",
                RefusalKind::Format,
                "AV1 video; TikTok accepts H.264, H.265, VP8 and VP9",
            ),
            (
                "prores.mov",
                RefusalKind::Format,
                "Apple ProRes video; TikTok accepts H.264, H.265, VP8 and VP9",
            ),
            (
                "audio-only.mp4",
                RefusalKind::Format,
                "the file has sound but no picture",
            ),
        ] {
            let probe = probe_fixture(name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let refusal = verdict(&probe).expect_err(name);
            assert_eq!(refusal.kind, kind, "{name}");
            assert!(
                refusal.message.starts_with(message),
                "{name}: {}",
                refusal.message
            );
        }
    }

    #[tokio::test]
    async fn matroska_is_refused_before_reading_tracks() {
        let error = probe_fixture("h264.mkv").await.unwrap_err();
        assert_eq!(error, ProbeError::Media(MediaError::Matroska));
    }

    /// A source that makes a generated file's bytes on demand (headers,
    /// zeros for the samples) and counts what is read: a 1 GB object with
    /// nothing on disk.
    struct Generated {
        head: Vec<u8>,
        payload: u64,
        tail: Vec<u8>,
        reads: AtomicU64,
        bytes: AtomicU64,
    }

    impl Generated {
        fn new(spec: &VideoSpec, size: u64) -> Self {
            let layout = spec.layout(size);
            Self {
                head: layout.head,
                payload: layout.payload_len,
                tail: layout.tail,
                reads: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
            }
        }

        fn size(&self) -> u64 {
            self.head.len() as u64 + self.payload + self.tail.len() as u64
        }

        fn byte(&self, at: u64) -> u8 {
            let head = self.head.len() as u64;
            if at < head {
                self.head[at as usize]
            } else if at < head + self.payload {
                0
            } else {
                self.tail[(at - head - self.payload) as usize]
            }
        }
    }

    impl ChunkSource for Generated {
        async fn read_range(&self, start: u64, end: u64) -> Result<Bytes, SourceError> {
            assert!(start < end && end <= self.size(), "{start}..{end}");
            assert!(
                end - start <= 64 << 20,
                "a probe never reads {} bytes at once",
                end - start
            );
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(end - start, Ordering::Relaxed);
            Ok((start..end)
                .map(|at| self.byte(at))
                .collect::<Vec<u8>>()
                .into())
        }
    }

    #[tokio::test]
    async fn a_1_gb_mp4_with_moov_at_the_end_costs_a_few_small_reads() {
        let spec = VideoSpec {
            moov_at_end: true,
            ..VideoSpec::default().with_seconds(95.0)
        };
        let size = 1_000_000_000;
        let source = Generated::new(&spec, size);
        let probe = probe::probe(&source, size).await.unwrap();
        let video = probe.video.as_ref().unwrap();
        assert_eq!(video.codec, VideoCodec::H264);
        assert_eq!((video.width, video.height), (1080, 1920));
        assert_eq!(video.frame_rate.unwrap().to_string(), "30");
        assert_eq!(probe.duration_ms, Some(95_000));
        let (reads, bytes) = (source.reads.into_inner(), source.bytes.into_inner());
        assert_eq!((probe.reads, probe.bytes_read), (reads as u32, bytes));
        assert!(reads <= 3, "{reads} ranged reads");
        assert!(bytes * 100 < size, "{bytes} bytes read of {size}");
    }

    #[tokio::test]
    async fn generated_containers_describe_what_was_asked() {
        let specs = [
            VideoSpec::default(),
            VideoSpec {
                container: Container::Mov,
                codec: Codec::Hevc,
                fps_num: 60_000,
                fps_den: 1001,
                frames: 600,
                width: 3840,
                height: 2160,
                ..VideoSpec::default()
            },
            VideoSpec {
                codec: Codec::Vp9,
                hdr: Some(Hdr::Hlg),
                moov_at_end: true,
                ..VideoSpec::default()
            },
        ];
        for (i, spec) in specs.iter().enumerate() {
            let size = 2_000_000;
            let source = Generated::new(spec, size);
            let probe = probe::probe(&source, size)
                .await
                .unwrap_or_else(|e| panic!("{i}: {e}"));
            let video = probe.video.as_ref().unwrap();
            assert_eq!(
                (video.width, video.height),
                (u32::from(spec.width), u32::from(spec.height)),
                "{i}"
            );
            let rate = video.frame_rate.unwrap();
            assert!(
                (rate.fps() - f64::from(spec.fps_num) / f64::from(spec.fps_den)).abs() < 1e-9,
                "{i}: {rate}"
            );
            assert_eq!(probe.duration_ms, Some(spec.duration_ms()), "{i}");
            assert_eq!(video.hdr.is_some(), spec.hdr.is_some(), "{i}");
        }
        // Over 4 GB (and 4 GiB: 64-bit box sizes and chunk offsets): refused
        // by its size before anything else is read.
        let huge = Generated::new(&VideoSpec::default(), 4_500_000_000);
        let error = probe::probe(&huge, 4_500_000_000).await.unwrap_err();
        assert!(
            matches!(error, ProbeError::Media(MediaError::TooLarge { .. })),
            "{error}"
        );
        assert_eq!(huge.reads.into_inner(), 1, "only the first bytes are read");

        let webm = WebmSpec {
            hdr: Some(Hdr::Pq),
            ..WebmSpec::default()
        };
        let bytes = webm.bytes(3_000_000, 5);
        assert_eq!(bytes.len(), 3_000_000);
        let probe = probe::probe(&BytesSource::new(bytes), 3_000_000)
            .await
            .unwrap();
        let video = probe.video.unwrap();
        assert_eq!(video.codec, VideoCodec::Vp9);
        assert_eq!(video.frame_rate.unwrap().to_string(), "30");
        assert_eq!(video.hdr, Some(HdrTransfer::Pq));
        assert_eq!(probe.duration_ms, Some(10_000));
    }

    #[tokio::test]
    async fn cut_short_files_are_damaged_not_misread() {
        let whole = test_media::fixture("video/h264-moov-at-end.mp4");
        for cut in [100, whole.len() / 2, whole.len() - 10] {
            let part = whole[..cut].to_vec();
            let error = probe::probe(&BytesSource::new(part), cut as u64)
                .await
                .unwrap_err();
            assert!(
                matches!(error, ProbeError::Damaged(_)),
                "cut at {cut}: {error}"
            );
            assert!(
                error.to_string().contains("damaged or incomplete"),
                "{error}"
            );
        }
    }
}
