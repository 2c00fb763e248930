//! How large each kind of input object may be, and the error that says so.
//!
//! The upload function reads slideshow images, manifests and caption
//! sidecars from S3. Without a cap, one oversized object (a 2 GB "photo",
//! a manifest padded to a gigabyte) would fill Lambda's /tmp or its memory
//! and kill the invocation, which SQS would then retry until the message
//! lands in the dead-letter queue, with no word to the creator. Each kind
//! therefore has a limit, checked against the object's size before its
//! body is read, and again while it streams (should the size be missing or
//! wrong).

use std::fmt;

use thiserror::Error;

/// Largest slideshow image accepted, in bytes (50 MB).
///
/// - Enough for what people drop: a 12 MP phone JPEG is 2–8 MB, a 48 MP
///   one 15–25 MB, a photo-like 12 MP PNG about 30 MB. The JPEG sent to
///   TikTok is at most 1080 × 1920 (2 MP), so a bigger file adds nothing
///   but bytes; exporting it as JPEG brings it under the limit.
/// - /tmp holds a slideshow's images while they are converted: 35 × 50 MB
///   = 1.75 GB fits the function's 2048 MB of ephemeral storage.
/// - The JPEG and WebP decoders read the file whole, so each conversion
///   worker holds up to this much besides the pixels (counted in the
///   memory budget in [`super::convert`]).
pub const IMAGE_MAX_BYTES: u64 = 50_000_000;

/// Largest `slideshow.json`, in bytes (64 KiB): a 4000-unit caption
/// written entirely as `\uXXXX` escapes is 24 KB, and 35 image names of
/// 1 KB each another 35 KB.
pub const MANIFEST_MAX_BYTES: u64 = 64 * 1024;

/// Largest caption sidecar (`<video>.json`), in bytes (64 KiB): a
/// 2200-unit caption is at most about 13 KB even fully escaped.
pub const SIDECAR_MAX_BYTES: u64 = 64 * 1024;

/// The kinds of input object with a size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// An image named by a slideshow manifest.
    Image,
    /// A `slideshow.json`.
    Manifest,
    /// A video's `<name>.json` caption sidecar.
    CaptionSidecar,
}

impl InputKind {
    /// The largest object of this kind, in bytes.
    pub fn max_bytes(self) -> u64 {
        match self {
            InputKind::Image => IMAGE_MAX_BYTES,
            InputKind::Manifest => MANIFEST_MAX_BYTES,
            InputKind::CaptionSidecar => SIDECAR_MAX_BYTES,
        }
    }

    /// The limit as people write it.
    fn max_text(self) -> &'static str {
        match self {
            InputKind::Image => "50 MB",
            InputKind::Manifest | InputKind::CaptionSidecar => "64 KiB",
        }
    }

    /// What the object is, in a sentence.
    fn what(self) -> &'static str {
        match self {
            InputKind::Image => "a slideshow image",
            InputKind::Manifest => "a slideshow.json",
            InputKind::CaptionSidecar => "a caption sidecar",
        }
    }

    /// What to do about it.
    fn advice(self) -> &'static str {
        match self {
            InputKind::Image => "export it as JPEG (or at a smaller size) and upload it again",
            InputKind::Manifest => {
                "it should hold only the caption, the title, the image names and the cover index"
            }
            InputKind::CaptionSidecar => "it should hold only {\"caption\": \"...\"}",
        }
    }

    /// `Ok` when `size` bytes are within the limit, else the error naming
    /// `name` (the file name the creator knows).
    pub fn check(self, name: &str, size: u64) -> Result<(), TooLarge> {
        if size > self.max_bytes() {
            return Err(TooLarge {
                kind: self,
                name: name.to_string(),
                size: Some(size),
            });
        }
        Ok(())
    }

    /// The error for an object found to be over the limit while streaming,
    /// when its full size is not known.
    pub fn exceeded(self, name: &str) -> TooLarge {
        TooLarge {
            kind: self,
            name: name.to_string(),
            size: None,
        }
    }
}

/// An object over its kind's limit. The message names it, gives both sizes
/// and says what to do, because it ends up in front of the creator.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct TooLarge {
    /// What the object is (an image, a manifest, a caption sidecar), which
    /// sets its limit.
    pub kind: InputKind,
    /// The object's file name.
    pub name: String,
    /// Its size, when known (from S3); `None` when the body ran past the
    /// limit without a size to compare first.
    pub size: Option<u64>,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind;
        match self.size {
            Some(size) => write!(f, "{:?} is {size} bytes, more", self.name)?,
            None => write!(f, "{:?} is larger", self.name)?,
        }
        write!(
            f,
            " than the {} ({} bytes) {} may be; {}",
            kind.max_text(),
            kind.max_bytes(),
            kind.what(),
            kind.advice()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive_and_messages_name_the_object() {
        assert_eq!(InputKind::Image.check("a.png", IMAGE_MAX_BYTES), Ok(()));
        let err = InputKind::Image
            .check("big photo.png", IMAGE_MAX_BYTES + 1)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"big photo.png\" is 50000001 bytes, more than the 50 MB"),
            "{text}"
        );
        assert!(text.contains("50 MB (50000000 bytes)"), "{text}");
        assert!(text.contains("export it as JPEG"), "{text}");

        assert_eq!(InputKind::Manifest.check("slideshow.json", 65_536), Ok(()));
        let text = InputKind::Manifest
            .check("slideshow.json", 65_537)
            .unwrap_err()
            .to_string();
        assert!(text.contains("64 KiB (65536 bytes)"), "{text}");

        let text = InputKind::CaptionSidecar.exceeded("clip.json").to_string();
        assert!(
            text.starts_with("\"clip.json\" is larger than the 64 KiB"),
            "{text}"
        );
    }
}
