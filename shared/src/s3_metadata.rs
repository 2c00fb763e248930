//! Decoding S3 user metadata values (`x-amz-meta-*`).
//!
//! HTTP headers carry ASCII only, so S3 stores a non-ASCII metadata value
//! decoded and returns it RFC 2047-encoded ("when using non-US-ASCII
//! characters in your metadata values, ... encoded as per RFC 2047 to make
//! them mail-safe before returning"): a caption "Café ☕" comes back as
//! `=?UTF-8?B?Q2Fmw6kg4piV?=`. The SDK hands the header over as it is, so
//! without decoding, that text would become the TikTok caption. Uploaders
//! may also send encoded words themselves, in B or Q form, split over
//! several words.
//!
//! [`decode`] understands encoded words (`=?charset?B|Q?text?=`) in UTF-8,
//! US-ASCII and ISO-8859-1 (the charsets S3 and mail tools produce),
//! standing alone between whitespace as RFC 2047 requires. Whitespace
//! between two encoded words is dropped, and adjacent words in one charset
//! are joined before decoding, so a character split across two words comes
//! out whole. Anything malformed, or in another charset, is kept exactly as
//! given: a wrong decoding would be worse than the raw text.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 as encoded words use it (the standard alphabet); padding is
/// accepted whether present or not, since some encoders drop it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The value of metadata `key`, decoded; `None` when it is not set.
pub fn get(metadata: &HashMap<String, String>, key: &str) -> Option<String> {
    metadata.get(key).map(|value| decode(value).into_owned())
}

/// Decodes the RFC 2047 encoded words in a metadata value; a value without
/// any comes back borrowed and unchanged.
pub fn decode(value: &str) -> Cow<'_, str> {
    if !value.contains("=?") {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    // Adjacent encoded words in one charset, not yet written out: their
    // bytes, and the span of the input they cover (to write it back as it
    // was should the bytes not decode).
    let mut run: Option<Run> = None;
    // Whitespace seen after the last token, written only if the next token
    // is not an encoded word continuing a run.
    let mut pending_space = "";
    for (start, token, is_space) in tokens(value) {
        if is_space {
            pending_space = token;
            continue;
        }
        let end = start + token.len();
        match parse_word(token) {
            Some(word) => match &mut run {
                Some(current) if current.charset == word.charset => {
                    current.bytes.extend_from_slice(&word.bytes);
                    current.end = end;
                }
                _ => {
                    if let Some(done) = run.take() {
                        done.write(value, &mut out);
                    } else {
                        out.push_str(pending_space);
                    }
                    run = Some(Run {
                        charset: word.charset,
                        bytes: word.bytes,
                        start,
                        end,
                    });
                }
            },
            None => {
                if let Some(done) = run.take() {
                    done.write(value, &mut out);
                }
                out.push_str(pending_space);
                out.push_str(token);
            }
        }
        pending_space = "";
    }
    if let Some(done) = run.take() {
        done.write(value, &mut out);
    }
    out.push_str(pending_space);
    Cow::Owned(out)
}

/// The charsets decoded here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Utf8,
    /// US-ASCII is a subset of both; decoded as UTF-8, which refuses any
    /// byte over 0x7F just as ASCII would not.
    Ascii,
    Latin1,
}

/// One encoded word, decoded to bytes in its charset.
struct Word {
    charset: Charset,
    bytes: Vec<u8>,
}

/// A run of adjacent encoded words in one charset.
struct Run {
    charset: Charset,
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl Run {
    /// Writes the run's text, or the input it came from when its bytes are
    /// not valid in its charset.
    fn write(self, input: &str, out: &mut String) {
        match self.charset {
            Charset::Utf8 | Charset::Ascii => match std::str::from_utf8(&self.bytes) {
                Ok(text) if self.charset == Charset::Utf8 || text.is_ascii() => out.push_str(text),
                _ => out.push_str(&input[self.start..self.end]),
            },
            // Every byte is a character: ISO-8859-1 is the first 256 code
            // points of Unicode.
            Charset::Latin1 => out.extend(self.bytes.iter().map(|&b| char::from(b))),
        }
    }
}

/// Splits `value` into runs of whitespace and of anything else, with their
/// byte offsets.
fn tokens(value: &str) -> Vec<(usize, &str, bool)> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in value.char_indices() {
        let space = c.is_ascii_whitespace();
        match in_space {
            Some(previous) if previous != space => {
                tokens.push((start, &value[start..i], previous));
                start = i;
            }
            _ => {}
        }
        in_space = Some(space);
    }
    if let Some(space) = in_space {
        tokens.push((start, &value[start..], space));
    }
    tokens
}

/// Parses `=?charset?encoding?text?=`; `None` when `token` is not a whole,
/// well-formed encoded word in a charset known here.
fn parse_word(token: &str) -> Option<Word> {
    let inner = token.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let charset = parts.next()?;
    let encoding = parts.next()?;
    let text = parts.next()?;
    // The text may not hold '?' (it would end the word) or spaces (tokens
    // are split at whitespace already).
    if text.contains('?') {
        return None;
    }
    // RFC 2231 adds a language after '*': "UTF-8*en".
    let charset = charset.split('*').next()?;
    let charset = match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Charset::Utf8,
        "us-ascii" | "ascii" => Charset::Ascii,
        "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "l1" => Charset::Latin1,
        _ => return None,
    };
    let bytes = match encoding {
        "B" | "b" => BASE64.decode(text).ok()?,
        "Q" | "q" => decode_q(text)?,
        _ => return None,
    };
    Some(Word { charset, bytes })
}

/// The "Q" encoding: `_` is a space, `=XX` a byte in hex, other printable
/// ASCII stands for itself.
fn decode_q(text: &str) -> Option<Vec<u8>> {
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = raw.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c if c.is_ascii_graphic() => out.push(c),
            _ => return None,
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_borrowed_unchanged() {
        for value in ["", "Hello", "a = b ? c", "50% off =)", "  spaced  "] {
            assert!(matches!(decode(value), Cow::Borrowed(v) if v == value));
        }
    }

    #[test]
    fn what_s3_returns_for_non_ascii_values() {
        // "Café ☕" and "日本語のキャプション #旅行 🎉" as S3 returns them.
        assert_eq!(decode("=?UTF-8?B?Q2Fmw6kg4piV?="), "Café ☕");
        assert_eq!(
            decode("=?UTF-8?B?5pel5pys6Kqe44Gu44Kt44Oj44OX44K344On44OzICPml4XooYwg8J+OiQ==?="),
            "日本語のキャプション #旅行 🎉"
        );
        // The same in Q form, as mail tools write it.
        assert_eq!(decode("=?utf-8?q?Caf=C3=A9_=E2=98=95?="), "Café ☕");
    }

    #[test]
    fn rfc_2047_section_8_examples() {
        assert_eq!(decode("=?US-ASCII?Q?Keith_Moore?="), "Keith Moore");
        assert_eq!(decode("=?ISO-8859-1?Q?Andr=E9?= Pirard"), "André Pirard");
        assert_eq!(
            decode("=?ISO-8859-1?Q?Olle_J=E4rnefors?="),
            "Olle Järnefors"
        );
        assert_eq!(
            decode(
                "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= \
                 =?ISO-8859-1?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="
            ),
            "If you can read this you understand the example."
        );
        // Whitespace between encoded words goes, other whitespace stays.
        assert_eq!(decode("=?ISO-8859-1?Q?a?="), "a");
        assert_eq!(decode("=?ISO-8859-1?Q?a?= b"), "a b");
        assert_eq!(decode("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?="), "ab");
        assert_eq!(decode("=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?="), "ab");
        assert_eq!(decode("=?ISO-8859-1?Q?a?=\r\n\t=?ISO-8859-1?Q?b?="), "ab");
        assert_eq!(decode("=?ISO-8859-1?Q?a_b?="), "a b");
        assert_eq!(
            decode("=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?="),
            "a =?ISO-8859-2?Q?_b?="
        );
    }

    #[test]
    fn a_character_split_across_words_is_joined() {
        // "é" is C3 A9 in UTF-8; an encoder that splits by length may cut
        // between the two bytes.
        assert_eq!(decode("=?UTF-8?Q?Caf=C3?= =?UTF-8?Q?=A9?="), "Café");
        assert_eq!(decode("=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?="), "éé");
        // Mixed charsets decode word by word.
        assert_eq!(decode("=?ISO-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?="), "éé");
    }

    #[test]
    fn text_around_encoded_words_is_kept() {
        assert_eq!(decode("Trip =?UTF-8?B?8J+MjQ==?= day 1"), "Trip 🌍 day 1");
        assert_eq!(decode("  =?UTF-8?Q?x?=  "), "  x  ");
    }

    #[test]
    fn malformed_words_are_kept_as_given() {
        for value in [
            "=?UTF-8?B?not base64!?=",
            "=?UTF-8?B?####?=",
            "=?UTF-8?Q?bad=ZZ?=",
            "=?UTF-8?Q?cut=A?=",
            "=?UTF-8?X?abc?=",
            "=?UTF-8?B?abc",
            "=?UTF-8?=",
            "=??B?YQ==?=",
            "=?KOI8-R?B?8NLJ18XU?=",
            "x=?UTF-8?Q?a?=",
            "=?UTF-8?Q?a?=x",
            // Valid base64 of bytes that are not UTF-8 (a lone 0xE9).
            "=?UTF-8?B?6Q==?=",
            // Not ASCII.
            "=?US-ASCII?Q?=E9?=",
        ] {
            assert_eq!(decode(value), value, "{value}");
        }
        // A malformed word next to a good one: only the good one decodes.
        assert_eq!(
            decode("=?UTF-8?Q?ok?= =?UTF-8?Q?bad=Z?="),
            "ok =?UTF-8?Q?bad=Z?="
        );
    }

    #[test]
    fn charset_names_and_language_suffixes() {
        assert_eq!(decode("=?utf8?Q?a?="), "a");
        assert_eq!(decode("=?UTF-8*en?Q?a?="), "a");
        assert_eq!(decode("=?latin1?Q?=FC?="), "ü");
        assert_eq!(decode("=?UTF-8?b?w7w?="), "ü", "missing padding");
    }

    #[test]
    fn get_decodes_the_named_value() {
        let metadata = HashMap::from([
            (
                "caption".to_string(),
                "=?UTF-8?B?Q2Fmw6kg4piV?=".to_string(),
            ),
            ("post-mode".to_string(), "draft".to_string()),
        ]);
        assert_eq!(get(&metadata, "caption").as_deref(), Some("Café ☕"));
        assert_eq!(get(&metadata, "post-mode").as_deref(), Some("draft"));
        assert_eq!(get(&metadata, "title"), None);
    }
}
