//! Structurally valid MP4 and MOV files of any size, fast.
//!
//! A real `moov` describes one video track (codec, size, timing, sample
//! table) and an `mdat` of noise holds its samples: what a header probe, the
//! simulator's checks and TikTok's own container check read, without
//! encoding a picture. Writing one costs what writing the noise costs, so
//! tests can make objects of 150 MB to 1 GB.
//!
//! The sample table is honest: `stts` gives every frame the same duration,
//! `stsz` one size for all (the noise divided by the frame count; any
//! remainder is trailing `mdat` bytes no sample uses) and `stco`/`co64` one
//! chunk at the start of the `mdat` payload.

use std::io::Write;

use crate::boxes::{self, Body};
use crate::webm::WebmSpec;

/// The video codec in the sample entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `avc1` with an `avcC`.
    H264,
    /// `hvc1` with an `hvcC` (as iPhones write it).
    Hevc,
    /// `vp09` with a `vpcC`.
    Vp9,
    /// `av01` with an `av1C`: a codec TikTok does not take.
    Av1,
    /// `apcn` (ProRes 422): a codec TikTok does not take.
    ProRes,
}

/// MP4 (`isom` brands) or QuickTime (`qt  `).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Mov,
}

/// An HDR transfer in the sample entry's `colr` (`nclx`) box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hdr {
    /// SMPTE ST 2084 (transfer characteristics 16).
    Pq,
    /// ARIB STD-B67 (transfer characteristics 18).
    Hlg,
}

impl Hdr {
    pub fn transfer(self) -> u8 {
        match self {
            Hdr::Pq => 16,
            Hdr::Hlg => 18,
        }
    }
}

/// What the generated file says about its video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoSpec {
    pub container: Container,
    pub codec: Codec,
    pub width: u16,
    pub height: u16,
    /// Frame rate as a fraction: 30/1, 30000/1001, ...
    pub fps_num: u32,
    pub fps_den: u32,
    /// Frames in the track: the duration is `frames * fps_den / fps_num`.
    pub frames: u32,
    /// `moov` after the `mdat`, as cameras and ffmpeg without
    /// `+faststart` write it.
    pub moov_at_end: bool,
    pub hdr: Option<Hdr>,
}

impl Default for VideoSpec {
    /// A 10 s portrait 1080 × 1920 H.264 MP4 at 30 fps, `moov` first: what
    /// TikTok takes.
    fn default() -> Self {
        VideoSpec {
            container: Container::Mp4,
            codec: Codec::H264,
            width: 1080,
            height: 1920,
            fps_num: 30,
            fps_den: 1,
            frames: 300,
            moov_at_end: false,
            hdr: None,
        }
    }
}

/// The bytes around the noise: write `head`, then `payload_len` bytes of
/// anything, then `tail`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub head: Vec<u8>,
    pub payload_len: u64,
    pub tail: Vec<u8>,
}

impl VideoSpec {
    /// The same video for `seconds` (whole frames, rounded down).
    pub fn with_seconds(mut self, seconds: f64) -> Self {
        self.frames = (seconds * f64::from(self.fps_num) / f64::from(self.fps_den)) as u32;
        self
    }

    /// The same video with as many of its frames as `total_len` bytes can
    /// hold (one byte each at least, after the headers): small test files
    /// keep their frame rate and picture and get a shorter duration.
    pub fn fitting(mut self, total_len: u64) -> Self {
        let headers = self.headers_len(total_len);
        let room = total_len.saturating_sub(headers);
        self.frames = self
            .frames
            .min(u32::try_from(room).unwrap_or(u32::MAX))
            .max(1);
        self
    }

    /// Bytes of everything but the samples in a file of `total_len` bytes.
    pub fn headers_len(&self, total_len: u64) -> u64 {
        let large = total_len > u64::from(u32::MAX);
        self.ftyp().len() as u64
            + self.moov(0, 0, large).len() as u64
            + boxes::header(b"mdat", total_len).len() as u64
    }

    /// Duration in milliseconds, rounded down.
    pub fn duration_ms(&self) -> u64 {
        u64::from(self.frames) * u64::from(self.fps_den) * 1000 / u64::from(self.fps_num)
    }

    /// The layout of a file of exactly `total_len` bytes.
    ///
    /// Panics when `total_len` cannot hold the headers and one byte per
    /// frame: a test asked for something impossible.
    pub fn layout(&self, total_len: u64) -> Layout {
        let ftyp = self.ftyp();
        // The moov's size does not depend on the offsets it holds, only on
        // whether they need 64 bits; the mdat header's size on whether the
        // payload does.
        let large = total_len > u64::from(u32::MAX);
        let moov_len = self.moov(0, 0, large).len() as u64;
        let mdat_header_len = boxes::header(b"mdat", total_len).len() as u64;
        let fixed = ftyp.len() as u64 + moov_len + mdat_header_len;
        let payload_len = total_len.checked_sub(fixed).unwrap_or_else(|| {
            panic!("{total_len} bytes cannot hold this video's {fixed} bytes of headers")
        });
        assert!(
            payload_len >= u64::from(self.frames),
            "{total_len} bytes leave {payload_len} for {} frames: ask for more bytes",
            self.frames
        );
        let sample_size = payload_len / u64::from(self.frames.max(1));
        let sample_size = u32::try_from(sample_size).expect("samples under 4 GiB");
        let mdat = boxes::header(b"mdat", payload_len);
        if self.moov_at_end {
            let data_at = ftyp.len() as u64 + mdat.len() as u64;
            let moov = self.moov(data_at, sample_size, large);
            Layout {
                head: [ftyp, mdat].concat(),
                payload_len,
                tail: moov,
            }
        } else {
            let data_at = ftyp.len() as u64 + moov_len + mdat.len() as u64;
            let moov = self.moov(data_at, sample_size, large);
            Layout {
                head: [ftyp, moov, mdat].concat(),
                payload_len,
                tail: Vec::new(),
            }
        }
    }

    /// A whole file of `len` bytes, its samples noise from `seed`.
    pub fn bytes(&self, len: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        self.write(&mut out, len as u64, seed)
            .expect("writing to memory cannot fail");
        out
    }

    /// Writes a file of `len` bytes to `out`, the noise in 1 MiB blocks.
    pub fn write(&self, out: &mut impl Write, len: u64, seed: u64) -> std::io::Result<()> {
        let layout = self.layout(len);
        out.write_all(&layout.head)?;
        write_noise(out, layout.payload_len, seed)?;
        out.write_all(&layout.tail)
    }

    fn ftyp(&self) -> Vec<u8> {
        match self.container {
            Container::Mp4 => boxes::ftyp(b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"]),
            Container::Mov => boxes::ftyp(b"qt  ", &[b"qt  "]),
        }
    }

    fn moov(&self, data_at: u64, sample_size: u32, large: bool) -> Vec<u8> {
        let timescale = self.fps_num * 1000;
        let delta = self.fps_den * 1000;
        let media_duration = u64::from(self.frames) * u64::from(delta);
        let movie_duration = self.duration_ms();
        let mvhd = boxes::full(
            b"mvhd",
            1,
            0,
            &Body::new()
                .u64(0)
                .u64(0)
                .u32(1000)
                .u64(movie_duration)
                .u32(0x0001_0000)
                .u16(0x0100)
                .zeros(10)
                .bytes(&MATRIX)
                .zeros(24)
                .u32(2)
                .done(),
        );
        let tkhd = boxes::full(
            b"tkhd",
            1,
            3,
            &Body::new()
                .u64(0)
                .u64(0)
                .u32(1)
                .u32(0)
                .u64(movie_duration)
                .zeros(8)
                .u16(0)
                .u16(0)
                .u16(0)
                .u16(0)
                .bytes(&MATRIX)
                .u32(u32::from(self.width) << 16)
                .u32(u32::from(self.height) << 16)
                .done(),
        );
        let mdhd = boxes::full(
            b"mdhd",
            1,
            0,
            &Body::new()
                .u64(0)
                .u64(0)
                .u32(timescale)
                .u64(media_duration)
                .u16(0x55C4)
                .u16(0)
                .done(),
        );
        let handler_type = match self.container {
            Container::Mp4 => 0,
            Container::Mov => u32::from_be_bytes(*b"mhlr"),
        };
        let hdlr = boxes::full(
            b"hdlr",
            0,
            0,
            &Body::new()
                .u32(handler_type)
                .bytes(b"vide")
                .zeros(12)
                .bytes(b"VideoHandler\0")
                .done(),
        );
        let vmhd = boxes::full(b"vmhd", 0, 1, &[0u8; 8]);
        let dinf = boxes::container(
            b"dinf",
            &[boxes::full(
                b"dref",
                0,
                0,
                &[1u32.to_be_bytes().to_vec(), boxes::full(b"url ", 0, 1, &[])].concat(),
            )],
        );
        let stsd = boxes::full(
            b"stsd",
            0,
            0,
            &[1u32.to_be_bytes().to_vec(), self.sample_entry()].concat(),
        );
        let stts = boxes::full(
            b"stts",
            0,
            0,
            &Body::new().u32(1).u32(self.frames).u32(delta).done(),
        );
        let stsc = boxes::full(
            b"stsc",
            0,
            0,
            &Body::new().u32(1).u32(1).u32(self.frames).u32(1).done(),
        );
        let stsz = boxes::full(
            b"stsz",
            0,
            0,
            &Body::new().u32(sample_size).u32(self.frames).done(),
        );
        let chunk_offsets = if large {
            boxes::full(b"co64", 0, 0, &Body::new().u32(1).u64(data_at).done())
        } else {
            let offset = u32::try_from(data_at).expect("checked by `large`");
            boxes::full(b"stco", 0, 0, &Body::new().u32(1).u32(offset).done())
        };
        let stbl = boxes::container(b"stbl", &[stsd, stts, stsc, stsz, chunk_offsets]);
        let minf = boxes::container(b"minf", &[vmhd, dinf, stbl]);
        let mdia = boxes::container(b"mdia", &[mdhd, hdlr, minf]);
        let trak = boxes::container(b"trak", &[tkhd, mdia]);
        boxes::container(b"moov", &[mvhd, trak])
    }

    fn sample_entry(&self) -> Vec<u8> {
        let visual = Body::new()
            .zeros(6)
            .u16(1)
            .zeros(16)
            .u16(self.width)
            .u16(self.height)
            .u32(0x0048_0000)
            .u32(0x0048_0000)
            .u32(0)
            .u16(1)
            .zeros(32)
            .u16(0x0018)
            .u16(0xFFFF)
            .done();
        let colr = self.hdr.map(|hdr| {
            boxes::plain(
                b"colr",
                &Body::new()
                    .bytes(b"nclx")
                    .u16(9)
                    .u16(u16::from(hdr.transfer()))
                    .u16(9)
                    .u8(0)
                    .done(),
            )
        });
        let (kind, config): (&[u8; 4], Option<Vec<u8>>) = match self.codec {
            Codec::H264 => (b"avc1", Some(avcc())),
            Codec::Hevc => (b"hvc1", Some(hvcc())),
            Codec::Vp9 => (b"vp09", Some(vpcc(self.hdr))),
            Codec::Av1 => (
                b"av01",
                Some(boxes::plain(b"av1C", &[0x81, 0x08, 0x0C, 0x00])),
            ),
            Codec::ProRes => (b"apcn", None),
        };
        let mut body = visual;
        if let Some(config) = config {
            body.extend_from_slice(&config);
        }
        if let Some(colr) = colr {
            body.extend_from_slice(&colr);
        }
        boxes::plain(kind, &body)
    }

    /// The generated file's description in WebM terms, for [`WebmSpec`].
    pub fn as_webm(&self) -> WebmSpec {
        WebmSpec {
            codec_id: match self.codec {
                Codec::Vp9 => "V_VP9",
                Codec::Av1 => "V_AV1",
                Codec::H264 => "V_MPEG4/ISO/AVC",
                Codec::Hevc => "V_MPEGH/ISO/HEVC",
                Codec::ProRes => "V_PRORES",
            },
            width: self.width,
            height: self.height,
            fps_num: self.fps_num,
            fps_den: self.fps_den,
            frames: self.frames,
            hdr: self.hdr,
        }
    }
}

/// Identity transformation matrix of `mvhd` and `tkhd`.
const MATRIX: [u8; 36] = [
    0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
    0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, //
    0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0,
];

/// An `avcC` for High profile, level 4.0, with a short SPS and PPS.
fn avcc() -> Vec<u8> {
    let sps = [
        0x67, 0x64, 0x00, 0x28, 0xAC, 0xD9, 0x40, 0x44, 0x02, 0x27, 0xE5, 0x84,
    ];
    let pps = [0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0];
    let body = Body::new()
        .u8(1)
        .u8(0x64)
        .u8(0)
        .u8(0x28)
        .u8(0xFF)
        .u8(0xE1)
        .u16(sps.len() as u16)
        .bytes(&sps)
        .u8(1)
        .u16(pps.len() as u16)
        .bytes(&pps)
        // High profile extension: 4:2:0, 8-bit, no SPS extensions.
        .u8(0xFD)
        .u8(0xF8)
        .u8(0xF8)
        .u8(0)
        .done();
    boxes::plain(b"avcC", &body)
}

/// An `hvcC` for Main profile, level 4.1, without parameter set arrays.
fn hvcc() -> Vec<u8> {
    let body = Body::new()
        .u8(1)
        .u8(0x01)
        .u32(0x6000_0000)
        .bytes(&[0x90, 0, 0, 0, 0, 0])
        .u8(123)
        .u16(0xF000)
        .u8(0xFC)
        .u8(0xFD)
        .u8(0xF8)
        .u8(0xF8)
        .u16(0)
        .u8(0x0F)
        .u8(0)
        .done();
    boxes::plain(b"hvcC", &body)
}

/// A `vpcC` (version 1) for profile 0, 8-bit 4:2:0, with the HDR transfer
/// when there is one.
fn vpcc(hdr: Option<Hdr>) -> Vec<u8> {
    let (primaries, transfer, matrix) = match hdr {
        Some(hdr) => (9, hdr.transfer(), 9),
        None => (1, 1, 1),
    };
    boxes::full(
        b"vpcC",
        1,
        0,
        &Body::new()
            .u8(0)
            .u8(31)
            .u8(0x82)
            .u8(primaries)
            .u8(transfer)
            .u8(matrix)
            .u16(0)
            .done(),
    )
}

/// Writes `len` bytes of noise from `seed`, 1 MiB at a time.
pub fn write_noise(out: &mut impl Write, len: u64, seed: u64) -> std::io::Result<()> {
    const BLOCK: u64 = 1 << 20;
    let mut left = len;
    let mut seed = seed;
    while left > 0 {
        let n = left.min(BLOCK);
        out.write_all(&crate::noise(n as usize, seed))?;
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        left -= n;
    }
    Ok(())
}
