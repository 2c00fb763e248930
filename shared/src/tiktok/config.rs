//! Where TikTok lives and who we are to it.
//!
//! The base URLs are settings so that the same binaries talk to TikTok in
//! production and to the simulator in tests and in the local stack.

use std::time::Duration;

use url::Url;

use super::upload::UploadHosts;
use crate::secret::Secret;

/// TikTok's API host, used when `TIKTOK_API_BASE_URL` is not set.
pub const DEFAULT_API_BASE_URL: &str = "https://open.tiktokapis.com";
/// TikTok's Login Kit authorize page, used when `TIKTOK_AUTH_URL` is not set.
pub const DEFAULT_AUTH_URL: &str = "https://www.tiktok.com/v2/auth/authorize/";

/// A configuration value that is missing or malformed, named so the operator
/// can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required value is not set.
    #[error("{name} is not set")]
    Missing {
        /// The environment variable (or setting) that is missing.
        name: &'static str,
    },
    /// A value is set but cannot be used.
    #[error("{name} is not valid: {reason}")]
    Invalid {
        /// The environment variable (or setting) at fault.
        name: &'static str,
        /// What is wrong with it, quoting the value given.
        reason: String,
    },
}

/// TikTok's hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `https://open.tiktokapis.com` in production; every `/v2/...` path hangs below it.
    pub api_base_url: Url,
    /// The Login Kit authorize page.
    pub auth_url: Url,
    /// A stand-in for TikTok's upload hosts (the simulator): `None` in
    /// production, where chunks go to the upload URL init returned.
    pub upload_base_url: Option<Url>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            // Constants, checked by a test.
            api_base_url: Url::parse(DEFAULT_API_BASE_URL).expect("default API URL parses"),
            auth_url: Url::parse(DEFAULT_AUTH_URL).expect("default auth URL parses"),
            upload_base_url: None,
        }
    }
}

impl Endpoints {
    /// Reads `TIKTOK_API_BASE_URL` and `TIKTOK_AUTH_URL`, each defaulting to
    /// TikTok's production host, and `TIKTOK_UPLOAD_BASE_URL` (unset in
    /// production).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Endpoints::from_env`] with any source of variables (tests, a
    /// config file).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let api_base_url = parse_url(
            "TIKTOK_API_BASE_URL",
            lookup("TIKTOK_API_BASE_URL").as_deref(),
            DEFAULT_API_BASE_URL,
        )?;
        let auth_url = parse_url(
            "TIKTOK_AUTH_URL",
            lookup("TIKTOK_AUTH_URL").as_deref(),
            DEFAULT_AUTH_URL,
        )?;
        let upload_base_url = match lookup("TIKTOK_UPLOAD_BASE_URL") {
            Some(v) if !v.trim().is_empty() => {
                Some(parse_url("TIKTOK_UPLOAD_BASE_URL", Some(&v), &v)?)
            }
            _ => None,
        };
        Ok(Self {
            api_base_url,
            auth_url,
            upload_base_url,
        })
    }

    /// Every URL under one base, as the simulator serves them (its upload
    /// host included).
    pub fn for_base_url(base: &str) -> Result<Self, ConfigError> {
        let api_base_url = parse_url("TIKTOK_API_BASE_URL", Some(base), DEFAULT_API_BASE_URL)?;
        let auth_url =
            api_base_url
                .join("/v2/auth/authorize/")
                .map_err(|e| ConfigError::Invalid {
                    name: "TIKTOK_API_BASE_URL",
                    reason: e.to_string(),
                })?;
        Ok(Self {
            upload_base_url: Some(api_base_url.clone()),
            api_base_url,
            auth_url,
        })
    }

    /// Which upload URLs are taken and where their chunks go.
    pub fn upload_hosts(&self) -> UploadHosts {
        match &self.upload_base_url {
            Some(base) => UploadHosts::stand_in(base.clone()),
            None => UploadHosts::tiktok(),
        }
    }

    /// The full URL of an API path such as `/v2/oauth/token/`.
    pub(crate) fn api(&self, path: &str) -> Url {
        let mut url = self.api_base_url.clone();
        // Keep any path prefix of the base (a proxy in front of the
        // simulator, say) and append ours.
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        url
    }
}

fn parse_url(name: &'static str, value: Option<&str>, default: &str) -> Result<Url, ConfigError> {
    let raw = match value {
        Some(v) if !v.trim().is_empty() => v.trim(),
        _ => default,
    };
    let url = Url::parse(raw).map_err(|e| ConfigError::Invalid {
        name,
        reason: format!("{e} (got {raw:?})"),
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("must be an http(s) URL (got {raw:?})"),
        });
    }
    Ok(url)
}

/// The app's credentials from the TikTok developer portal.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// Names the app in every request; not secret.
    pub client_key: String,
    /// Authenticates the app in token exchanges, refreshes and revokes.
    pub client_secret: Secret,
}

/// How the PKCE `code_challenge` is encoded.
///
/// TikTok's desktop docs say hex of SHA-256(verifier); RFC 7636 says
/// base64url. Hex is the default because it is what TikTok documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PkceEncoding {
    /// Lowercase hex of SHA-256(verifier), as TikTok's desktop docs say.
    #[default]
    Hex,
    /// Base64url of SHA-256(verifier), unpadded, as RFC 7636 says.
    Base64url,
}

impl PkceEncoding {
    /// Reads `TIKTOK_PKCE_ENCODING` (`hex` when unset).
    pub fn from_env() -> Result<Self, ConfigError> {
        std::env::var("TIKTOK_PKCE_ENCODING")
            .unwrap_or_default()
            .parse()
    }
}

impl std::str::FromStr for PkceEncoding {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hex" | "" => Ok(Self::Hex),
            "base64url" | "base64" => Ok(Self::Base64url),
            other => Err(ConfigError::Invalid {
                name: "TIKTOK_PKCE_ENCODING",
                reason: format!("expected hex or base64url, got {other:?}"),
            }),
        }
    }
}

/// Timeouts for calls to TikTok. Uploads of large chunks need longer than
/// JSON calls, so the uploader sets its own per request.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// For setting up the connection (TCP and TLS).
    pub connect: Duration,
    /// For a whole request, from sending to the end of the answer's body.
    pub request: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// An HTTP client for TikTok: rustls, no proxies from the environment, a
/// user agent that names us. Build one per cold start and share it.
pub fn http_client(timeouts: HttpTimeouts) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("tiktok-drafts/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        // A TikTok endpoint never redirects; following one could send a
        // bearer token somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_tiktoks_hosts() {
        let e = Endpoints::from_lookup(|_| None).unwrap();
        assert_eq!(e, Endpoints::default());
        assert_eq!(
            e.api("/v2/oauth/token/").as_str(),
            "https://open.tiktokapis.com/v2/oauth/token/"
        );
        assert_eq!(e.auth_url.as_str(), DEFAULT_AUTH_URL);
        assert_eq!(e.upload_hosts(), UploadHosts::tiktok());
    }

    #[test]
    fn an_upload_stand_in_is_read_and_checked() {
        let e = Endpoints::from_lookup(|name| match name {
            "TIKTOK_UPLOAD_BASE_URL" => Some("http://127.0.0.1:9300".into()),
            _ => None,
        })
        .unwrap();
        let target = e
            .upload_hosts()
            .target("https://open-upload-i18n.tiktokapis.com/upload/video/?upload_id=1")
            .unwrap();
        assert_eq!(
            target.as_str(),
            "http://127.0.0.1:9300/upload/video/?upload_id=1"
        );
        let err = Endpoints::from_lookup(|name| match name {
            "TIKTOK_UPLOAD_BASE_URL" => Some("nope".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("TIKTOK_UPLOAD_BASE_URL"), "{err}");
    }

    #[test]
    fn overrides_and_path_prefixes_are_kept() {
        let e = Endpoints::from_lookup(|name| match name {
            "TIKTOK_API_BASE_URL" => Some("http://127.0.0.1:9300/prefix/".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            e.api("/v2/post/publish/status/fetch/").as_str(),
            "http://127.0.0.1:9300/prefix/v2/post/publish/status/fetch/"
        );
    }

    #[test]
    fn a_bad_url_names_the_variable() {
        let err = Endpoints::from_lookup(|name| match name {
            "TIKTOK_AUTH_URL" => Some("not a url".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("TIKTOK_AUTH_URL"), "{err}");
        let err = Endpoints::from_lookup(|name| match name {
            "TIKTOK_API_BASE_URL" => Some("ftp://x".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("TIKTOK_API_BASE_URL"), "{err}");
    }

    #[test]
    fn pkce_encoding_parses() {
        assert_eq!("hex".parse::<PkceEncoding>().unwrap(), PkceEncoding::Hex);
        assert_eq!(
            "BASE64URL".parse::<PkceEncoding>().unwrap(),
            PkceEncoding::Base64url
        );
        assert!("plain".parse::<PkceEncoding>().is_err());
    }
}
