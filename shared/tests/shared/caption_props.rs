//! Properties of caption trimming: the result is the longest prefix of whole
//! grapheme clusters within the UTF-16 limit.

use proptest::prelude::*;
use shared::caption::{
    PHOTO_DESCRIPTION_MAX, PHOTO_TITLE_MAX, VIDEO_TITLE_MAX, trim_to_utf16, utf16_len,
};
use unicode_segmentation::UnicodeSegmentation;

const FAMILY: &str = "👨\u{200d}👩\u{200d}👧\u{200d}👦"; // 11 UTF-16 units
const FLAG_JP: &str = "🇯🇵"; // 4 units
const THUMBS_UP_MEDIUM: &str = "👍🏽"; // 4 units, skin-tone modifier
const KEYCAP_ONE: &str = "1\u{fe0f}\u{20e3}"; // 3 units

/// Text rich in the cases that break naive cutting.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        "[a-z ]{1,5}",
        "[一-龥]{1,3}",
        Just("😀".to_owned()),
        Just(FAMILY.to_owned()),
        Just(FLAG_JP.to_owned()),
        Just("🇫🇷".to_owned()),
        Just(THUMBS_UP_MEDIUM.to_owned()),
        Just(KEYCAP_ONE.to_owned()),
        Just("e\u{301}".to_owned()),
        Just("a\u{301}\u{302}\u{303}".to_owned()),
        Just("\u{1100}\u{1161}\u{11a8}".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{200d}".to_owned()),
        Just("\u{1f1ef}".to_owned()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn grapheme_boundaries(s: &str) -> Vec<usize> {
    let mut bounds: Vec<usize> = s.grapheme_indices(true).map(|(i, _)| i).collect();
    bounds.push(s.len());
    bounds
}

fn check(s: &str, max: usize) -> Result<(), TestCaseError> {
    let trimmed = trim_to_utf16(s, max);
    let text = trimmed.text;
    prop_assert!(s.starts_with(text), "not a prefix");
    prop_assert!(utf16_len(text) <= max, "over the limit");
    prop_assert_eq!(trimmed.utf16_len(), utf16_len(text));
    prop_assert!(
        grapheme_boundaries(s).contains(&text.len()),
        "not on a grapheme boundary"
    );
    prop_assert_eq!(trimmed.was_trimmed, text.len() < s.len());
    if utf16_len(s) <= max {
        prop_assert_eq!(text, s);
        prop_assert!(!trimmed.was_trimmed);
    } else {
        let next = s[text.len()..].graphemes(true).next().unwrap_or_default();
        prop_assert!(!next.is_empty());
        prop_assert!(utf16_len(text) + utf16_len(next) > max, "not maximal");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn utf16_len_counts_code_units(s in any::<String>()) {
        prop_assert_eq!(utf16_len(&s), s.encode_utf16().count());
    }

    #[test]
    fn trimming_any_text_is_a_maximal_grapheme_prefix(s in any::<String>(), max in 0usize..64) {
        check(&s, max)?;
    }

    #[test]
    fn trimming_tricky_text_is_a_maximal_grapheme_prefix(s in tricky_text(), max in 0usize..120) {
        check(&s, max)?;
    }

    #[test]
    fn trimming_at_the_real_limits(s in tricky_text(), limit in prop_oneof![
        Just(PHOTO_TITLE_MAX), Just(VIDEO_TITLE_MAX), Just(PHOTO_DESCRIPTION_MAX),
    ]) {
        check(&s, limit)?;
    }

    #[test]
    fn trimming_is_idempotent(s in tricky_text(), max in 0usize..120) {
        let once = trim_to_utf16(&s, max).text;
        let twice = trim_to_utf16(once, max);
        prop_assert_eq!(twice.text, once);
        prop_assert!(!twice.was_trimmed);
    }
}

#[test]
fn emoji_count_two_and_are_never_split() {
    assert_eq!(utf16_len("😀😀😀"), 6);
    let t = trim_to_utf16("😀😀😀", 5);
    assert_eq!(t.text, "😀😀");
    assert!(t.was_trimmed);
    assert_eq!(trim_to_utf16("ab😀", 3).text, "ab");
    assert_eq!(trim_to_utf16("ab😀", 4).text, "ab😀");
}

#[test]
fn zwj_families_stay_whole() {
    assert_eq!(utf16_len(FAMILY), 11);
    let s = format!("a{FAMILY}b");
    assert_eq!(trim_to_utf16(&s, 11).text, "a");
    assert_eq!(trim_to_utf16(&s, 12).text, format!("a{FAMILY}"));
    assert_eq!(trim_to_utf16(FAMILY, 10).text, "");
}

#[test]
fn flags_stay_whole() {
    let s = format!("{FLAG_JP}🇫🇷");
    assert_eq!(utf16_len(&s), 8);
    assert_eq!(trim_to_utf16(&s, 7).text, FLAG_JP);
    assert_eq!(trim_to_utf16(&s, 3).text, "");
}

#[test]
fn combining_sequences_stay_whole() {
    let s = "cafe\u{301}s";
    assert_eq!(trim_to_utf16(s, 4).text, "caf");
    assert_eq!(trim_to_utf16(s, 5).text, "cafe\u{301}");
    assert_eq!(trim_to_utf16("a\u{301}\u{302}\u{303}", 3).text, "");
    assert_eq!(trim_to_utf16(KEYCAP_ONE, 2).text, "");
    assert_eq!(trim_to_utf16(THUMBS_UP_MEDIUM, 3).text, "");
    assert_eq!(
        trim_to_utf16("\u{1100}\u{1161}\u{11a8}x", 3).text,
        "\u{1100}\u{1161}\u{11a8}"
    );
    assert_eq!(trim_to_utf16("a\r\nb", 2).text, "a");
}

#[test]
fn cjk_counts_one_per_character() {
    let s = "日本語のテキスト";
    assert_eq!(utf16_len(s), 8);
    assert_eq!(trim_to_utf16(s, 3).text, "日本語");
    // Rare CJK outside the BMP counts two.
    assert_eq!(utf16_len("𠮷野家"), 4);
    assert_eq!(trim_to_utf16("𠮷野家", 1).text, "");
}

#[test]
fn the_real_limits() {
    let long = "x".repeat(VIDEO_TITLE_MAX);
    assert!(!trim_to_utf16(&long, VIDEO_TITLE_MAX).was_trimmed);
    let longer = format!("{long}y");
    let t = trim_to_utf16(&longer, VIDEO_TITLE_MAX);
    assert_eq!(t.text, long);
    assert!(t.was_trimmed);

    let emoji = "😀".repeat(46); // 92 units
    let t = trim_to_utf16(&emoji, PHOTO_TITLE_MAX);
    assert_eq!(t.text.chars().count(), 45);
    assert_eq!(t.utf16_len(), 90);

    let description = "é".repeat(PHOTO_DESCRIPTION_MAX + 1);
    assert_eq!(
        trim_to_utf16(&description, PHOTO_DESCRIPTION_MAX).utf16_len(),
        PHOTO_DESCRIPTION_MAX
    );
}
