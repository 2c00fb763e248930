//! `slideshow.json`: the manifest that turns a folder of images into one
//! photo draft.
//!
//! A slideshow is `uploads/<account>/<show>/slideshow.json` beside the images
//! it names:
//!
//! ```json
//! {"caption": "Day one", "title": "optional", "images": ["1.png", "2.jpg"], "cover_index": 0}
//! ```
//!
//! The manifest is written by hand, so parsing is strict and every error
//! says exactly what to change: an unknown field (a typo such as `imags`)
//! is refused rather than silently ignored, and image names may only point at
//! objects in the manifest's own folder, so a manifest can never pull another
//! show's or another account's objects into a post. Parsing is pure: no S3
//! look-ups happen here.

use std::collections::HashMap;

use serde::Deserialize;
use thiserror::Error;

use super::limits::{InputKind, TooLarge};
use crate::caption::{PHOTO_DESCRIPTION_MAX, PHOTO_TITLE_MAX, trim_to_utf16};

/// The manifest's file name, the object that triggers a slideshow job.
pub const MANIFEST_FILE_NAME: &str = "slideshow.json";
/// Fewest images in a slideshow.
pub const MIN_IMAGES: usize = 1;
/// Most images TikTok takes in one photo post (TIKTOK_API.md section 5).
pub const MAX_IMAGES: usize = 35;

/// A validated `slideshow.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The post description as written (not yet trimmed to TikTok's limit).
    pub caption: String,
    /// The post title as written, if any.
    pub title: Option<String>,
    /// Image file names in the folder, in post order; 1 to 35, all distinct.
    pub images: Vec<String>,
    /// Index into `images` of the cover photo.
    pub cover_index: usize,
}

/// Title and description as they go to TikTok, trimmed to its UTF-16 limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostText {
    /// At most [`PHOTO_TITLE_MAX`] UTF-16 units.
    pub title: String,
    /// At most [`PHOTO_DESCRIPTION_MAX`] UTF-16 units.
    pub description: String,
    /// Whether the title was cut to fit.
    pub title_was_trimmed: bool,
    /// Whether the description was cut to fit.
    pub description_was_trimmed: bool,
}

impl PostText {
    /// Whether anything was cut, so the creator can be told.
    pub fn was_trimmed(&self) -> bool {
        self.title_was_trimmed || self.description_was_trimmed
    }
}

/// Why a `slideshow.json` was refused. Messages name the field or entry and
/// say what to fix.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// Over [`super::limits::MANIFEST_MAX_BYTES`]; found by the reader from
    /// the object's size, or by [`Manifest::parse`] itself.
    #[error("{0}")]
    TooLarge(#[from] TooLarge),
    /// Not JSON, a wrong type, a missing field or an unknown one. serde's
    /// message names the field (`unknown field \`imags\`, expected one of ...`)
    /// and the line and column.
    #[error(
        "slideshow.json is not valid: {0} (expected {{\"caption\": \"...\", \"title\": \"optional\", \
         \"images\": [\"1.jpg\", ...], \"cover_index\": 0}})"
    )]
    Json(#[source] serde_json::Error),
    /// `images` is empty.
    #[error("slideshow.json lists no images; \"images\" needs 1 to {MAX_IMAGES} file names")]
    NoImages,
    /// More images than TikTok takes in one post.
    #[error(
        "slideshow.json lists {count} images; TikTok takes at most {MAX_IMAGES} in one post, \
         remove {} of them",
        .count - MAX_IMAGES
    )]
    TooManyImages {
        /// How many `images` lists.
        count: usize,
    },
    /// An entry of `images` is not a plain file name beside the manifest
    /// (see [`check_image_name`]).
    #[error("images[{index}] {name:?} must be a file name in the slideshow's folder: {reason}")]
    BadImageName {
        /// Its position in `images`, from 0.
        index: usize,
        /// The entry as written.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An image listed twice.
    #[error(
        "images[{index}] {name:?} repeats images[{first}]; each image may appear once \
         (copy the file under another name to show it twice)"
    )]
    DuplicateImage {
        /// The position of the repeat in `images`, from 0.
        index: usize,
        /// The position of its first appearance.
        first: usize,
        /// The file name.
        name: String,
    },
    /// `cover_index` does not point into `images`.
    #[error(
        "cover_index {cover_index} is out of range: there are {count} images, \
         so it must be 0 to {}",
        .count - 1
    )]
    CoverOutOfRange {
        /// The `cover_index` given.
        cover_index: usize,
        /// How many images there are.
        count: usize,
    },
}

/// The JSON as written, before the rules are checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    caption: String,
    #[serde(default)]
    title: Option<String>,
    images: Vec<String>,
    #[serde(default)]
    cover_index: usize,
}

impl Manifest {
    /// Parses and checks a `slideshow.json`.
    ///
    /// Rules: at most 64 KiB; strict JSON with only the fields `caption`, `title`, `images`
    /// and `cover_index`; 1 to 35 images; each image a plain file name
    /// (see [`check_image_name`]); no name twice; `cover_index` (default 0)
    /// names one of the images. Caption and title lengths are not checked
    /// here: [`Manifest::post_text`] trims them.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        InputKind::Manifest.check(MANIFEST_FILE_NAME, size)?;
        let raw: RawManifest = serde_json::from_slice(bytes).map_err(ManifestError::Json)?;
        let count = raw.images.len();
        if count < MIN_IMAGES {
            return Err(ManifestError::NoImages);
        }
        if count > MAX_IMAGES {
            return Err(ManifestError::TooManyImages { count });
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(count);
        for (index, name) in raw.images.iter().enumerate() {
            if let Err(reason) = check_image_name(name) {
                return Err(ManifestError::BadImageName {
                    index,
                    name: name.clone(),
                    reason,
                });
            }
            if let Some(&first) = seen.get(name.as_str()) {
                return Err(ManifestError::DuplicateImage {
                    index,
                    first,
                    name: name.clone(),
                });
            }
            seen.insert(name.as_str(), index);
        }
        if raw.cover_index >= count {
            return Err(ManifestError::CoverOutOfRange {
                cover_index: raw.cover_index,
                count,
            });
        }
        Ok(Manifest {
            caption: raw.caption,
            title: raw.title,
            images: raw.images,
            cover_index: raw.cover_index,
        })
    }

    /// The title and description to send to TikTok.
    ///
    /// The title is `title` when it has any non-blank text, else the
    /// caption's first non-blank line (a caption usually opens with its
    /// headline); the description is the caption. Both are trimmed on
    /// grapheme boundaries to TikTok's photo limits (90 and 4000 UTF-16
    /// units), and the flags say whether anything was cut.
    pub fn post_text(&self) -> PostText {
        let title_source = match self.title.as_deref().map(str::trim) {
            Some(title) if !title.is_empty() => title,
            _ => self
                .caption
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .unwrap_or(""),
        };
        let title = trim_to_utf16(title_source, PHOTO_TITLE_MAX);
        let description = trim_to_utf16(&self.caption, PHOTO_DESCRIPTION_MAX);
        PostText {
            title: title.text.to_string(),
            description: description.text.to_string(),
            title_was_trimmed: title.was_trimmed,
            description_was_trimmed: description.was_trimmed,
        }
    }

    /// The S3 keys of the images, in post order, given the manifest's key:
    /// each name replaces the manifest's file name in the same folder.
    pub fn image_keys(&self, manifest_key: &str) -> Vec<String> {
        let folder = match manifest_key.rfind('/') {
            Some(slash) => &manifest_key[..=slash],
            None => "",
        };
        self.images
            .iter()
            .map(|name| format!("{folder}{name}"))
            .collect()
    }
}

/// Checks that `name` is a plain file name, meaning an object directly in
/// the manifest's folder. Spaces and non-ASCII letters are fine (S3 keys
/// allow them); path syntax is not, because it could reach outside the
/// folder.
///
/// Returns the reason for refusal, phrased to follow "must be a file name
/// in the slideshow's folder: ".
pub fn check_image_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.trim().is_empty() {
        return Err("the name is only spaces");
    }
    if name.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    if name.contains('/') {
        return Err("it may not contain '/' (put the image beside slideshow.json)");
    }
    if name.contains('\\') {
        return Err("it may not contain '\\'");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not file names");
    }
    if name.chars().any(char::is_control) {
        return Err("it may not contain control characters such as newlines");
    }
    if name == MANIFEST_FILE_NAME {
        return Err("slideshow.json is the manifest, not an image");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(json.as_bytes())
    }

    fn with_images(names: &[&str]) -> String {
        let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        format!(r#"{{"caption": "hi", "images": [{}]}}"#, list.join(", "))
    }

    #[test]
    fn a_manifest_over_64_kib_is_refused_before_parsing() {
        let padding = " ".repeat(70_000);
        let json = format!(r#"{{"caption": "x", "images": ["1.jpg"]{padding}}}"#);
        let err = parse(&json).unwrap_err();
        assert!(matches!(err, ManifestError::TooLarge(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("\"slideshow.json\" is 70"), "{text}");
        assert!(text.contains("64 KiB"), "{text}");
        // Just under the limit still parses.
        let padding = " ".repeat(65_000);
        let json = format!(r#"{{"caption": "x", "images": ["1.jpg"]{padding}}}"#);
        assert!(parse(&json).is_ok());
    }

    #[test]
    fn parses_a_full_manifest() {
        let m = parse(
            r#"{"caption": "Day one\nmore", "title": "Trip", "images": ["1.png", "2.jpg", "mon été 3.webp"], "cover_index": 2}"#,
        )
        .unwrap();
        assert_eq!(m.caption, "Day one\nmore");
        assert_eq!(m.title.as_deref(), Some("Trip"));
        assert_eq!(m.images, vec!["1.png", "2.jpg", "mon été 3.webp"]);
        assert_eq!(m.cover_index, 2);
    }

    #[test]
    fn cover_index_and_title_default() {
        let m = parse(r#"{"caption": "c", "images": ["a.jpg"]}"#).unwrap();
        assert_eq!(m.cover_index, 0);
        assert_eq!(m.title, None);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse(r#"{"caption": "c", "imags": ["a.jpg"]}"#).unwrap_err();
        assert!(matches!(err, ManifestError::Json(_)));
        assert!(err.to_string().contains("imags"), "{err}");
    }

    #[test]
    fn missing_fields_and_bad_json() {
        let err = parse(r#"{"caption": "c"}"#).unwrap_err();
        assert!(err.to_string().contains("images"), "{err}");
        let err = parse(r#"{"images": ["a.jpg"]}"#).unwrap_err();
        assert!(err.to_string().contains("caption"), "{err}");
        assert!(matches!(parse("{not json"), Err(ManifestError::Json(_))));
        assert!(matches!(parse(""), Err(ManifestError::Json(_))));
        assert!(matches!(
            parse(r#"{"caption": "c", "images": "a.jpg"}"#),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            parse(r#"{"caption": "c", "images": ["a.jpg"], "cover_index": -1}"#),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            parse(r#"{"caption": "c", "images": ["a.jpg"]} trailing"#),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn image_count_limits() {
        assert!(matches!(
            parse(&with_images(&[])),
            Err(ManifestError::NoImages)
        ));
        let names: Vec<String> = (1..=35).map(|i| format!("{i}.jpg")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(parse(&with_images(&refs)).unwrap().images.len(), 35);
        let names: Vec<String> = (1..=36).map(|i| format!("{i}.jpg")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let err = parse(&with_images(&refs)).unwrap_err();
        assert!(matches!(err, ManifestError::TooManyImages { count: 36 }));
        assert!(err.to_string().contains("at most 35"), "{err}");
    }

    #[test]
    fn bad_names_are_refused_with_their_index() {
        for bad in [
            "",
            "  ",
            "/etc/passwd",
            "../x.png",
            "sub/x.png",
            "a\\b.png",
            ".",
            "..",
            "a\nb.png",
            "slideshow.json",
        ] {
            let err = parse(&with_images(&["ok.jpg", bad])).unwrap_err();
            match &err {
                ManifestError::BadImageName { index, name, .. } => {
                    assert_eq!(*index, 1);
                    assert_eq!(name, bad);
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let err = parse(&with_images(&["1.jpg", "2.jpg", "3.jpg", "../x.png"])).unwrap_err();
        assert!(
            err.to_string().starts_with(
                r#"images[3] "../x.png" must be a file name in the slideshow's folder"#
            ),
            "{err}"
        );
    }

    #[test]
    fn allowed_names() {
        for good in [
            "my photo.png",
            "été.jpg",
            "写真.webp",
            "..x.png",
            "a..b.jpg",
            "x",
        ] {
            assert!(check_image_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let err = parse(&with_images(&["a.jpg", "b.jpg", "a.jpg"])).unwrap_err();
        assert!(matches!(
            err,
            ManifestError::DuplicateImage {
                index: 2,
                first: 0,
                ..
            }
        ));
        assert!(err.to_string().contains("images[2]"), "{err}");
    }

    #[test]
    fn cover_index_must_be_in_range() {
        let err = parse(r#"{"caption": "c", "images": ["a.jpg", "b.jpg"], "cover_index": 2}"#)
            .unwrap_err();
        assert!(matches!(
            err,
            ManifestError::CoverOutOfRange {
                cover_index: 2,
                count: 2
            }
        ));
        assert!(err.to_string().contains("0 to 1"), "{err}");
        assert!(
            parse(r#"{"caption": "c", "images": ["a.jpg", "b.jpg"], "cover_index": 1}"#).is_ok()
        );
    }

    #[test]
    fn post_text_uses_title_or_first_line() {
        let m = parse(r#"{"caption": "\n  Headline  \nrest", "images": ["a.jpg"]}"#).unwrap();
        let text = m.post_text();
        assert_eq!(text.title, "Headline");
        assert_eq!(text.description, "\n  Headline  \nrest");
        assert!(!text.was_trimmed());

        let m = parse(r#"{"caption": "c", "title": "T", "images": ["a.jpg"]}"#).unwrap();
        assert_eq!(m.post_text().title, "T");

        let m = parse(r#"{"caption": "line", "title": "  ", "images": ["a.jpg"]}"#).unwrap();
        assert_eq!(m.post_text().title, "line");

        let m = parse(r#"{"caption": "", "images": ["a.jpg"]}"#).unwrap();
        assert_eq!(m.post_text().title, "");
    }

    #[test]
    fn post_text_trims_to_utf16_limits() {
        let long_title = "😀".repeat(50); // 100 UTF-16 units
        let long_caption = "a".repeat(4001);
        let json = serde_json::json!({
            "caption": long_caption,
            "title": long_title,
            "images": ["a.jpg"],
        })
        .to_string();
        let text = parse(&json).unwrap().post_text();
        assert_eq!(text.title, "😀".repeat(45));
        assert!(text.title_was_trimmed);
        assert_eq!(text.description.len(), 4000);
        assert!(text.description_was_trimmed);
        assert!(text.was_trimmed());
    }

    #[test]
    fn image_keys_sit_beside_the_manifest() {
        let m = parse(&with_images(&["1.png", "b c.jpg"])).unwrap();
        assert_eq!(
            m.image_keys("uploads/acct/show/slideshow.json"),
            vec!["uploads/acct/show/1.png", "uploads/acct/show/b c.jpg"]
        );
        assert_eq!(m.image_keys("slideshow.json"), vec!["1.png", "b c.jpg"]);
    }
}
