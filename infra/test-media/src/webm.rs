//! Structurally valid WebM files of any size, fast.
//!
//! The EBML header (DocType `webm`), a Segment with `Info` (timecode scale,
//! duration), `Tracks` (one video track: codec, default duration, pixel
//! size, HDR transfer when asked) and one Cluster per second of SimpleBlocks
//! whose payloads are noise: one block per frame, so counting blocks gives
//! the frame count as a demuxer would. Every element size is written as an
//! 8-byte EBML integer, so the file's length is exact for any size asked.

use std::io::Write;

use crate::video::Hdr;

/// What the generated WebM file says about its video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebmSpec {
    /// Matroska codec id: `V_VP9`, `V_VP8`, `V_AV1`, ...
    pub codec_id: &'static str,
    pub width: u16,
    pub height: u16,
    pub fps_num: u32,
    pub fps_den: u32,
    pub frames: u32,
    pub hdr: Option<Hdr>,
}

impl Default for WebmSpec {
    /// A 10 s 1080 × 1920 VP9 WebM at 30 fps.
    fn default() -> Self {
        WebmSpec {
            codec_id: "V_VP9",
            width: 1080,
            height: 1920,
            fps_num: 30,
            fps_den: 1,
            frames: 300,
            hdr: None,
        }
    }
}

/// An element with an 8-byte size.
fn element(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&size(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// An 8-byte EBML size.
fn size(n: u64) -> [u8; 8] {
    let mut b = n.to_be_bytes();
    b[0] = 0x01;
    b
}

fn uint(id: &[u8], v: u64) -> Vec<u8> {
    element(id, &v.to_be_bytes())
}

const EBML: &[u8] = &[0x1A, 0x45, 0xDF, 0xA3];
const SEGMENT: &[u8] = &[0x18, 0x53, 0x80, 0x67];
const CLUSTER: &[u8] = &[0x1F, 0x43, 0xB6, 0x75];
/// Bytes of a cluster's own header and timecode element.
const CLUSTER_OVERHEAD: u64 = 4 + 8 + 1 + 8 + 8;
/// Bytes of a SimpleBlock's header: id, size, track, timecode, flags.
const BLOCK_OVERHEAD: u64 = 1 + 8 + 1 + 2 + 1;

impl WebmSpec {
    fn frame_ns(&self) -> u64 {
        1_000_000_000 * u64::from(self.fps_den) / u64::from(self.fps_num)
    }

    fn frames_per_cluster(&self) -> u64 {
        u64::from(self.fps_num.div_ceil(self.fps_den)).max(1)
    }

    fn headers(&self) -> Vec<u8> {
        let ebml = element(
            EBML,
            &[
                uint(&[0x42, 0x86], 1),
                uint(&[0x42, 0xF7], 1),
                uint(&[0x42, 0xF2], 4),
                uint(&[0x42, 0xF3], 8),
                element(&[0x42, 0x82], b"webm"),
                uint(&[0x42, 0x87], 4),
                uint(&[0x42, 0x85], 2),
            ]
            .concat(),
        );
        let duration_ms =
            self.frames as f64 * f64::from(self.fps_den) * 1000.0 / f64::from(self.fps_num);
        let info = element(
            &[0x15, 0x49, 0xA9, 0x66],
            &[
                uint(&[0x2A, 0xD7, 0xB1], 1_000_000),
                element(&[0x44, 0x89], &duration_ms.to_be_bytes()),
                element(&[0x4D, 0x80], b"test-media"),
                element(&[0x57, 0x41], b"test-media"),
            ]
            .concat(),
        );
        let mut video = vec![
            uint(&[0xB0], u64::from(self.width)),
            uint(&[0xBA], u64::from(self.height)),
        ];
        if let Some(hdr) = self.hdr {
            video.push(element(
                &[0x55, 0xB0],
                &[
                    uint(&[0x55, 0xBA], u64::from(hdr.transfer())),
                    uint(&[0x55, 0xBB], 9),
                ]
                .concat(),
            ));
        }
        let entry = element(
            &[0xAE],
            &[
                uint(&[0xD7], 1),
                uint(&[0x73, 0xC5], 1),
                uint(&[0x83], 1),
                element(&[0x86], self.codec_id.as_bytes()),
                uint(&[0x23, 0xE3, 0x83], self.frame_ns()),
                element(&[0xE0], &video.concat()),
            ]
            .concat(),
        );
        let tracks = element(&[0x16, 0x54, 0xAE, 0x6B], &entry);
        [ebml, info, tracks].concat()
    }

    /// Writes a file of exactly `len` bytes to `out`.
    ///
    /// Panics when `len` cannot hold the headers and one byte per frame.
    pub fn write(&self, out: &mut impl Write, len: u64, seed: u64) -> std::io::Result<()> {
        let headers = self.headers();
        // EBML header, Segment id and size, Info and Tracks.
        let head_len = headers.len() as u64 + SEGMENT.len() as u64 + 8;
        let frames = u64::from(self.frames);
        let per_cluster = self.frames_per_cluster();
        let clusters = frames.div_ceil(per_cluster);
        let overhead = head_len + clusters * CLUSTER_OVERHEAD + frames * BLOCK_OVERHEAD;
        let payload = len.checked_sub(overhead).unwrap_or_else(|| {
            panic!("{len} bytes cannot hold this WebM's {overhead} bytes of headers")
        });
        assert!(
            payload >= frames,
            "{len} bytes leave {payload} for {frames} frames"
        );
        let block = payload / frames.max(1);
        let mut last_extra = payload - block * frames;

        // The EBML header is the first element of `headers`; the Segment
        // holds the rest.
        let ebml_end = headers
            .windows(4)
            .position(|w| w == [0x15, 0x49, 0xA9, 0x66])
            .unwrap_or(0);
        out.write_all(&headers[..ebml_end])?;
        out.write_all(SEGMENT)?;
        out.write_all(&size(len - ebml_end as u64 - SEGMENT.len() as u64 - 8))?;
        out.write_all(&headers[ebml_end..])?;

        let frame_ns = self.frame_ns();
        let mut seed = seed;
        let mut frame = 0u64;
        while frame < frames {
            let in_cluster = per_cluster.min(frames - frame);
            let cluster_start_ms = frame * frame_ns / 1_000_000;
            let mut cluster_body = 8 + 1 + 8;
            for i in 0..in_cluster {
                let extra = if frame + i == frames - 1 {
                    last_extra
                } else {
                    0
                };
                cluster_body += BLOCK_OVERHEAD + block + extra;
            }
            out.write_all(CLUSTER)?;
            out.write_all(&size(cluster_body))?;
            out.write_all(&uint(&[0xE7], cluster_start_ms))?;
            for i in 0..in_cluster {
                let n = frame + i;
                let extra = if n == frames - 1 {
                    std::mem::take(&mut last_extra)
                } else {
                    0
                };
                let relative = (n * frame_ns / 1_000_000 - cluster_start_ms) as i16;
                out.write_all(&[0xA3])?;
                out.write_all(&size(4 + block + extra))?;
                out.write_all(&[0x81])?;
                out.write_all(&relative.to_be_bytes())?;
                out.write_all(&[if n == 0 { 0x80 } else { 0x00 }])?;
                crate::video::write_noise(out, block + extra, seed)?;
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            }
            frame += in_cluster;
        }
        Ok(())
    }

    /// A whole file of `len` bytes.
    pub fn bytes(&self, len: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        self.write(&mut out, len as u64, seed)
            .expect("writing to memory cannot fail");
        out
    }
}
