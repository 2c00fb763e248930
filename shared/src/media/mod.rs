//! Media handling for uploads: what a file is, how a photo becomes a JPEG
//! TikTok accepts, and what a slideshow manifest may say.
//!
//! - [`mod@detect`]: type by magic bytes (never by extension), and the checks an
//!   object must pass before it is sent as a video.
//! - [`colour`]: an embedded ICC profile (Display P3, AdobeRGB, ...) to sRGB.
//! - [`convert`]: any supported photo to a baseline 4:2:0 JPEG that fits
//!   1080 × 1920 and 20 MB, one at a time or in a capped parallel batch
//!   (decoding in `decode`, the batch's workers and memory in `batch`).
//! - `jpeg`: JPEG through libjpeg-turbo: decoding at reduced scale, and the
//!   encoding every converted photo gets.
//! - [`heic`]: HEIC/HEIF photos (iPhone grids, 10-bit, Display P3, `irot`)
//!   decoded in pure Rust.
//! - [`probe`]: what a video is (container, codec, size, frame rate,
//!   duration, HDR) from a few ranged reads of its headers, and whether
//!   TikTok takes it.
//! - [`limits`]: how large each input object (image, manifest, sidecar) may be.
//! - [`manifest`]: `slideshow.json` parsing and validation.
//! - [`urls`]: the URLs TikTok pulls media from (a verified prefix, or
//!   presigned S3 URLs on the local stack; presigning sends no request).
//!
//! Nothing here talks to TikTok or reads S3: detection and manifest validation are
//! pure functions of bytes, and conversion works on bytes in memory, so the
//! handlers stay thin and the rules are tested without a network.

mod batch;
pub mod colour;
pub mod convert;
mod decode;
pub mod detect;
mod ebml;
pub mod heic;
mod jpeg;
pub mod limits;
pub mod manifest;
pub mod probe;
pub mod urls;

pub use convert::{
    ConvertError, ConvertedPhoto, PhotoBytes, PhotoError, PhotoFile, PhotoLimits, PhotoReader,
    PhotoSource, convert_all, convert_reader, to_tiktok_jpeg,
};
pub use detect::{AudioKind, ImageKind, MediaError, MediaKind, VideoKind, check_video, detect};
pub use manifest::{Manifest, ManifestError, PostText};
pub use urls::{MediaUrlError, MediaUrls};
