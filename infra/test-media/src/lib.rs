//! Media for tests, benches and the demo.
//!
//! - [`video`]: MP4 and MOV files with a real `moov` (an H.264, HEVC or VP9
//!   track with plausible timing and size) around noise, and WebM files with
//!   real headers and clusters of noise: what the probe and the simulator
//!   read, at any size, generated fast and streamable.
//! - [`heif`]: HEIF files assembled, phone style (grids, `irot`, ICC
//!   profile, auxiliary images), from HEVC images `heif-enc` encoded.
//! - [`picture`]: the deterministic scenes the HEIC fixtures were made from.
//! - [`fixture`]: the small files `fixtures/make.sh` made with Debian's
//!   `ffmpeg` and `heif-enc` (their provenance is in `fixtures/README.md`).

pub mod boxes;
pub mod heif;
pub mod picture;
pub mod video;
pub mod webm;

use std::path::PathBuf;

/// Where the committed fixtures are.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The bytes of a committed fixture, by its path under `fixtures/`.
///
/// Panics with the path when it is missing: a test cannot go on without it.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// `len` deterministic pseudo-random bytes (xorshift64: fast, and
/// incompressible enough that nothing on the way can shortcut them).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
