//! The function's configuration, read once per cold start.

use shared::tiktok::config::ConfigError;
use shared::tiktok::{Endpoints, PkceEncoding};

/// Everything the login function needs besides its clients.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    pub table: String,
    /// Prefix of the per-account token secrets (`<prefix>/accounts/<open_id>`).
    pub secrets_prefix: String,
    /// The secret holding the TikTok app's client key and secret.
    pub app_secret_id: String,
    /// The secret holding the invitation signing key.
    pub invite_key_secret_id: String,
    /// This function's public callback URL, registered with the TikTok app.
    pub redirect_uri: String,
    pub pkce_encoding: PkceEncoding,
    /// Whether the deployment allows direct posting (adds `video.publish`).
    pub direct_post_enabled: bool,
    pub endpoints: Endpoints,
}

impl LoginConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings from any source of variables; every missing or
    /// malformed one is named.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::Missing { name })
        };
        let redirect_uri = required("REDIRECT_URI")?;
        let parsed = url::Url::parse(&redirect_uri).map_err(|e| ConfigError::Invalid {
            name: "REDIRECT_URI",
            reason: e.to_string(),
        })?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            // TikTok requires a static redirect URI.
            return Err(ConfigError::Invalid {
                name: "REDIRECT_URI",
                reason: "must have no query string or fragment".into(),
            });
        }
        let direct_post_enabled = match lookup("DIRECT_POST_ENABLED")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "false" | "0" | "no" => false,
            "true" | "1" | "yes" => true,
            other => {
                return Err(ConfigError::Invalid {
                    name: "DIRECT_POST_ENABLED",
                    reason: format!("expected true or false, got {other:?}"),
                });
            }
        };
        Ok(Self {
            table: required("TABLE_NAME")?,
            secrets_prefix: lookup(shared::tokens::SECRET_PREFIX_VAR)
                .map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| shared::tokens::DEFAULT_SECRET_PREFIX.to_owned()),
            app_secret_id: required("TIKTOK_APP_SECRET_ID")?,
            invite_key_secret_id: required("INVITE_KEY_SECRET_ID")?,
            redirect_uri,
            pkce_encoding: lookup("TIKTOK_PKCE_ENCODING").unwrap_or_default().parse()?,
            direct_post_enabled,
            endpoints: Endpoints::from_lookup(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut all: Vec<(String, String)> = [
            ("TABLE_NAME", "t"),
            ("TIKTOK_APP_SECRET_ID", "app"),
            ("INVITE_KEY_SECRET_ID", "inv"),
            ("REDIRECT_URI", "https://x.example.com/auth/callback"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            all.retain(|(name, _)| name != k);
            all.push((k.to_string(), v.to_string()));
        }
        move |name| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_are_drafts_only_and_hex_pkce() {
        let c = LoginConfig::from_lookup(vars(&[])).unwrap();
        assert!(!c.direct_post_enabled);
        assert_eq!(c.pkce_encoding, PkceEncoding::Hex);
        assert_eq!(c.secrets_prefix, "tiktok-drafts");
    }

    #[test]
    fn missing_and_bad_values_are_named() {
        let err = LoginConfig::from_lookup(vars(&[("TABLE_NAME", " ")])).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"), "{err}");
        let err =
            LoginConfig::from_lookup(vars(&[("REDIRECT_URI", "https://x.example.com/cb?a=1")]))
                .unwrap_err();
        assert!(err.to_string().contains("REDIRECT_URI"), "{err}");
        let err = LoginConfig::from_lookup(vars(&[("DIRECT_POST_ENABLED", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("DIRECT_POST_ENABLED"), "{err}");
        assert!(
            LoginConfig::from_lookup(vars(&[("DIRECT_POST_ENABLED", "true")]))
                .unwrap()
                .direct_post_enabled
        );
    }
}
