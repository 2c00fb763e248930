//! The page's style sheet and script, inline, and the Content-Security-Policy
//! that allows exactly them by hash: no other script or style can run, even
//! if some text ever slipped past escaping.

use std::sync::LazyLock;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The style sheet, as put between `<style>` and `</style>`.
pub const STYLE: &str = include_str!("../assets/page.css");
/// The Copy buttons' script, as put between `<script>` and `</script>`.
pub const SCRIPT: &str = include_str!("../assets/copy.js");

static POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; img-src 'none'; \
         connect-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash_source(SCRIPT),
        hash_source(STYLE)
    )
});

/// The `Content-Security-Policy` of every page.
pub fn content_security_policy() -> &'static str {
    &POLICY
}

/// A CSP hash source (`sha256-<base64>`) for an inline element's text.
pub fn hash_source(text: &str) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_our_inline_code_by_hash_and_nothing_else() {
        let policy = content_security_policy();
        assert!(policy.starts_with("default-src 'none';"));
        assert!(policy.contains(&format!("script-src '{}'", hash_source(SCRIPT))));
        assert!(policy.contains(&format!("style-src '{}'", hash_source(STYLE))));
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
        // Nothing that could end the inline element early.
        for text in [SCRIPT, STYLE] {
            assert!(!text.contains("</"), "inline code must not contain \"</\"");
        }
        // A known value, so the hashing is the one browsers use.
        assert_eq!(
            hash_source("alert(1)"),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
    }
}
