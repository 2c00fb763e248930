//! Captions measured and trimmed in UTF-16 code units.
//!
//! TikTok counts title and description lengths in UTF-16 code units (its
//! clients are JavaScript and Java), so an emoji outside the Basic
//! Multilingual Plane counts as 2, and a family emoji joined by ZWJs as 8 or
//! more. Counting `char`s or bytes would either reject captions TikTok accepts
//! or send ones it rejects.
//!
//! When a caption is too long we cut it, but only between grapheme clusters
//! (extended, per UAX #29), so the cut never splits a surrogate pair, an
//! emoji ZWJ sequence, a flag or a letter from its combining marks: the
//! creator sees fewer characters, never a broken one.

use unicode_segmentation::UnicodeSegmentation;

/// Longest video title (the caption of a Direct Post video), in UTF-16 units.
pub const VIDEO_TITLE_MAX: usize = 2200;
/// Longest photo post title, in UTF-16 units.
pub const PHOTO_TITLE_MAX: usize = 90;
/// Longest photo post description, in UTF-16 units.
pub const PHOTO_DESCRIPTION_MAX: usize = 4000;

/// Length of `s` as TikTok measures it: UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The result of [`trim_to_utf16`]: the text to send, and whether anything
/// was cut off so the caller can tell the creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed<'a> {
    /// The longest prefix of the input that fits, ending on a grapheme boundary.
    pub text: &'a str,
    /// Whether `text` is shorter than the input.
    pub was_trimmed: bool,
}

impl Trimmed<'_> {
    /// Length of the kept text in UTF-16 units.
    pub fn utf16_len(&self) -> usize {
        utf16_len(self.text)
    }
}

/// Cuts `s` to the longest prefix of whole grapheme clusters that is at most
/// `max_units` UTF-16 code units long.
///
/// Returns `s` unchanged when it already fits. A single grapheme longer than
/// the limit (a long ZWJ sequence under a tiny limit) is dropped whole rather
/// than split, so the result may be empty.
pub fn trim_to_utf16(s: &str, max_units: usize) -> Trimmed<'_> {
    let mut used = 0usize;
    for (start, grapheme) in s.grapheme_indices(true) {
        let units = utf16_len(grapheme);
        if used + units > max_units {
            return Trimmed {
                text: &s[..start],
                was_trimmed: true,
            };
        }
        used += units;
    }
    Trimmed {
        text: s,
        was_trimmed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_utf16_units() {
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("日本"), 2);
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(utf16_len("👨‍👩‍👧"), 8);
        assert_eq!(utf16_len("🇫🇷"), 4);
        assert_eq!(utf16_len("😀"), "😀".encode_utf16().count());
    }

    #[test]
    fn short_text_is_untouched() {
        let t = trim_to_utf16("hello", 5);
        assert_eq!(t.text, "hello");
        assert!(!t.was_trimmed);
        assert_eq!(t.utf16_len(), 5);
    }

    #[test]
    fn zero_limit_gives_empty() {
        let t = trim_to_utf16("a", 0);
        assert_eq!(t.text, "");
        assert!(t.was_trimmed);
        assert!(!trim_to_utf16("", 0).was_trimmed);
    }
}
