//! The function's configuration, read once per cold start.

use shared::tiktok::config::ConfigError;

/// Everything the webhook function needs besides its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub table: String,
    /// The secret holding the TikTok app's client key and secret (the
    /// client secret is the webhook signing key).
    pub app_secret_id: String,
    /// Where the account token secrets are (`SECRETS_PREFIX`): a revoked
    /// account's is deleted.
    pub secrets_prefix: String,
}

impl WebhookConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings from any source of variables; a missing one is named.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::Missing { name })
        };
        Ok(Self {
            table: required(shared::table::TABLE_NAME_VAR)?,
            app_secret_id: required(shared::app_secret::APP_SECRET_ID_VAR)?,
            secrets_prefix: lookup(shared::tokens::SECRET_PREFIX_VAR)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| shared::tokens::DEFAULT_SECRET_PREFIX.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_variables_are_required_and_named() {
        let all = |name: &str| match name {
            "TABLE_NAME" => Some("t".to_owned()),
            "TIKTOK_APP_SECRET_ID" => Some(" app ".to_owned()),
            _ => None,
        };
        assert_eq!(
            WebhookConfig::from_lookup(all).unwrap(),
            WebhookConfig {
                table: "t".into(),
                app_secret_id: "app".into(),
                secrets_prefix: "tiktok-drafts".into(),
            }
        );
        let err = WebhookConfig::from_lookup(|n| all(n).filter(|_| n != "TABLE_NAME")).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"), "{err}");
        let err = WebhookConfig::from_lookup(|n| {
            if n == "TIKTOK_APP_SECRET_ID" {
                Some("  ".into())
            } else {
                all(n)
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("TIKTOK_APP_SECRET_ID"), "{err}");
    }
}
