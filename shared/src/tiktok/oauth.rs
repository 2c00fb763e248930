//! Login Kit v2: the authorize URL, PKCE, and the token endpoint's shapes.
//!
//! The HTTP calls themselves are on [`super::TikTokClient`]; what is here is
//! plain code with no I/O.

use std::fmt;

use base64::Engine as _;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use url::Url;

use super::config::PkceEncoding;
use crate::secret::Secret;

/// The scope for the creator's profile (open_id, display name, avatar);
/// always asked for.
pub const SCOPE_USER_INFO_BASIC: &str = "user.info.basic";
/// The scope for sending drafts to the creator's inbox; always asked for.
pub const SCOPE_VIDEO_UPLOAD: &str = "video.upload";
/// The scope for posting straight to the profile; asked for only where the
/// deployment enabled direct posts.
pub const SCOPE_VIDEO_PUBLISH: &str = "video.publish";

/// The scopes to request: drafts need `user.info.basic,video.upload`; direct
/// posting adds `video.publish` only where the deployment enabled it, so a
/// drafts-only deployment never holds the power to post publicly.
pub fn scopes_for(direct_post_enabled: bool) -> Vec<&'static str> {
    let mut scopes = vec![SCOPE_USER_INFO_BASIC, SCOPE_VIDEO_UPLOAD];
    if direct_post_enabled {
        scopes.push(SCOPE_VIDEO_PUBLISH);
    }
    scopes
}

/// Splits TikTok's comma-separated scope list (`scope` in token responses,
/// `scopes` on the callback), ignoring blanks.
pub fn parse_scopes(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The scopes of `required` that `granted` lacks; the user may switch scopes
/// off one by one on TikTok's consent page.
pub fn missing_scopes<'a>(required: &[&'a str], granted: &[String]) -> Vec<&'a str> {
    required
        .iter()
        .copied()
        .filter(|r| !granted.iter().any(|g| g == r))
        .collect()
}

/// The characters RFC 7636 allows in a verifier.
const UNRESERVED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// A PKCE verifier. TikTok wants a new one for every login, 43 to 128
/// unreserved characters, and only the `S256` method.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkceVerifier(Secret);

impl PkceVerifier {
    /// The length of the verifiers [`PkceVerifier::generate`] makes, in
    /// characters (TikTok allows 43 to 128).
    pub const LENGTH: usize = 64;

    /// A fresh random verifier from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let value: String = (0..Self::LENGTH)
            .map(|_| UNRESERVED[rng.random_range(0..UNRESERVED.len())] as char)
            .collect();
        Self(Secret::new(value))
    }

    /// Wraps a stored verifier, checking TikTok's rules.
    pub fn from_stored(value: String) -> Result<Self, String> {
        let len = value.len();
        if !(43..=128).contains(&len) {
            return Err(format!(
                "a PKCE verifier has 43 to 128 characters, not {len}"
            ));
        }
        if !value.bytes().all(|b| UNRESERVED.contains(&b)) {
            return Err("a PKCE verifier has only unreserved characters".into());
        }
        Ok(Self(Secret::new(value)))
    }

    /// The verifier itself, for the token exchange; never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The `code_challenge` for `S256` in the chosen encoding.
    pub fn challenge(&self, encoding: PkceEncoding) -> String {
        let digest = Sha256::digest(self.0.expose().as_bytes());
        match encoding {
            PkceEncoding::Hex => hex::encode(digest),
            PkceEncoding::Base64url => {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
            }
        }
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// A random value for `state` (or any single-use nonce): 32 bytes from the
/// CSPRNG, in lowercase hex. Hex, not base64url, because an operator pastes
/// a state into `tiktok-drafts connect --state`, and a value starting with
/// `-` reads as a flag there (one in 64 base64url states did).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// What goes into the authorize URL.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest<'a> {
    /// The app's client key.
    pub client_key: &'a str,
    /// The scopes to ask for ([`scopes_for`]).
    pub scopes: &'a [&'a str],
    /// Where TikTok sends the creator back; must be registered for the app
    /// exactly as written.
    pub redirect_uri: &'a str,
    /// The login's single-use anti-CSRF value, returned unchanged on the
    /// callback.
    pub state: &'a str,
    /// The verifier whose challenge to send, and its encoding; `None` sends
    /// no PKCE parameters.
    pub pkce: Option<(&'a PkceVerifier, PkceEncoding)>,
    /// `disable_auto_auth=1` always shows the consent page, so a creator can
    /// pick another account; left out when `None`.
    pub disable_auto_auth: Option<bool>,
}

/// Builds the authorize URL: parameters in the query string, URL-encoded,
/// scopes comma-separated (TikTok's rule, not OAuth's spaces).
pub fn authorize_url(auth_url: &Url, req: &AuthorizeRequest<'_>) -> Url {
    let mut url = auth_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_key", req.client_key)
            .append_pair("scope", &req.scopes.join(","))
            .append_pair("redirect_uri", req.redirect_uri)
            .append_pair("state", req.state)
            .append_pair("response_type", "code");
        if let Some((verifier, encoding)) = req.pkce {
            q.append_pair("code_challenge", &verifier.challenge(encoding))
                .append_pair("code_challenge_method", "S256");
        }
        if let Some(disable) = req.disable_auto_auth {
            q.append_pair("disable_auto_auth", if disable { "1" } else { "0" });
        }
    }
    url
}

/// A successful answer of `/v2/oauth/token/` (flat JSON, no `data` wrapper).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The TikTok account the grant is for (stable per app).
    pub open_id: String,
    /// The bearer token for API calls.
    pub access_token: Secret,
    /// Seconds. TikTok's pages disagree on the lifetime (24 h or 2 h): never
    /// assume one, always use this.
    pub expires_in: i64,
    /// Rotating refresh tokens: a refresh may return a new one, and then the
    /// old one stops working. Absent in some answers; then keep the old one.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Seconds the refresh token lives; `None` when TikTok left it out.
    #[serde(default)]
    pub refresh_expires_in: Option<i64>,
    /// Comma-separated, as TikTok sends it.
    #[serde(default)]
    pub scope: String,
    /// `Bearer` in TikTok's answers; not relied on.
    #[serde(default)]
    pub token_type: Option<String>,
}

impl TokenResponse {
    /// The granted scopes, split ([`parse_scopes`]).
    pub fn scopes(&self) -> Vec<String> {
        parse_scopes(&self.scope)
    }
}

/// The body of the OAuth endpoints' errors.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub log_id: Option<String>,
}

/// The `user` object of `/v2/user/info/`; every field is optional in the
/// answer, depending on the fields asked for and the scopes granted.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct UserInfo {
    /// The account's id for this app.
    #[serde(default)]
    pub open_id: Option<String>,
    /// The account's id across the apps of one developer.
    #[serde(default)]
    pub union_id: Option<String>,
    /// The profile's display name (free text, not unique).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The `@` handle, as in profile and post URLs, when asked for;
    /// [`super::TikTokClient::user_info`] does not ask for it.
    #[serde(default)]
    pub username: Option<String>,
    /// A link to the profile picture.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_follows_tiktoks_rules() {
        let v = PkceVerifier::generate();
        assert_eq!(v.expose().len(), PkceVerifier::LENGTH);
        assert!(v.expose().bytes().all(|b| UNRESERVED.contains(&b)));
        assert_ne!(v.expose(), PkceVerifier::generate().expose());
        assert!(PkceVerifier::from_stored(v.expose().to_owned()).is_ok());
        assert!(PkceVerifier::from_stored("short".into()).is_err());
        assert!(PkceVerifier::from_stored("x".repeat(43) + "+").is_err());
    }

    #[test]
    fn challenge_encodings_match_the_specs() {
        // RFC 7636 appendix B's example verifier and challenge.
        let v = PkceVerifier::from_stored("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into())
            .unwrap();
        assert_eq!(
            v.challenge(PkceEncoding::Base64url),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let hex = v.challenge(PkceEncoding::Hex);
        assert_eq!(hex.len(), 64);
        assert_eq!(
            hex,
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
    }

    #[test]
    fn authorize_url_has_every_parameter_encoded() {
        let base = Url::parse("https://www.tiktok.com/v2/auth/authorize/").unwrap();
        let v = PkceVerifier::generate();
        let scopes = scopes_for(false);
        let url = authorize_url(
            &base,
            &AuthorizeRequest {
                client_key: "ck",
                scopes: &scopes,
                redirect_uri: "https://example.com/auth/callback",
                state: "s t",
                pkce: Some((&v, PkceEncoding::Hex)),
                disable_auto_auth: None,
            },
        );
        let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["client_key"], "ck");
        assert_eq!(pairs["scope"], "user.info.basic,video.upload");
        assert_eq!(pairs["redirect_uri"], "https://example.com/auth/callback");
        assert_eq!(pairs["state"], "s t");
        assert_eq!(pairs["response_type"], "code");
        assert_eq!(pairs["code_challenge"], v.challenge(PkceEncoding::Hex));
        assert_eq!(pairs["code_challenge_method"], "S256");
        assert!(!pairs.contains_key("disable_auto_auth"));
        assert!(
            url.as_str()
                .contains("scope=user.info.basic%2Cvideo.upload")
        );
    }

    #[test]
    fn direct_post_scope_only_when_enabled() {
        assert!(!scopes_for(false).contains(&SCOPE_VIDEO_PUBLISH));
        assert!(scopes_for(true).contains(&SCOPE_VIDEO_PUBLISH));
    }

    #[test]
    fn scopes_parse_and_missing_ones_are_found() {
        let granted = parse_scopes("user.info.basic, ,video.upload");
        assert_eq!(granted, vec!["user.info.basic", "video.upload"]);
        assert!(missing_scopes(&scopes_for(false), &granted).is_empty());
        assert_eq!(
            missing_scopes(&scopes_for(true), &granted),
            vec![SCOPE_VIDEO_PUBLISH]
        );
    }

    #[test]
    fn token_response_parses_tiktoks_example() {
        let body = r#"{"access_token":"act.1","expires_in":86400,"open_id":"o1","refresh_expires_in":31536000,
            "refresh_token":"rft.1","scope":"user.info.basic,video.list","token_type":"Bearer"}"#;
        let t: TokenResponse = serde_json::from_str(body).unwrap();
        assert_eq!(t.open_id, "o1");
        assert_eq!(t.access_token.expose(), "act.1");
        assert_eq!(t.expires_in, 86400);
        assert_eq!(t.refresh_expires_in, Some(31_536_000));
        assert_eq!(t.scopes(), vec!["user.info.basic", "video.list"]);
        assert!(!format!("{t:?}").contains("act.1"));
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, random_token());
    }
}
