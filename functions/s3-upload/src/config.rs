//! The upload function's configuration, read once per cold start.

use shared::tiktok::Endpoints;
use shared::tiktok::chunk_plan::{DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use shared::tiktok::config::ConfigError;

#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub table: String,
    pub secrets_prefix: String,
    pub app_secret_id: String,
    /// The alias of a one-account deployment, whose keys may leave it out.
    pub default_account: Option<String>,
    /// Preferred FILE_UPLOAD chunk size; memory is about two chunks.
    pub chunk_size: u64,
    pub endpoints: Endpoints,
}

impl UploadConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing { name });
        let chunk_size = match get("CHUNK_SIZE_BYTES") {
            None => DEFAULT_CHUNK_SIZE,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "CHUNK_SIZE_BYTES",
                    reason: format!(
                        "expected a byte count from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}, got {v:?}"
                    ),
                })?,
        };
        let default_account = get("DEFAULT_ACCOUNT");
        if let Some(alias) = &default_account {
            shared::invite::validate_alias(alias).map_err(|e| ConfigError::Invalid {
                name: "DEFAULT_ACCOUNT",
                reason: e.to_string(),
            })?;
        }
        Ok(Self {
            table: required("TABLE_NAME")?,
            secrets_prefix: get(shared::tokens::SECRET_PREFIX_VAR)
                .unwrap_or_else(|| shared::tokens::DEFAULT_SECRET_PREFIX.to_owned()),
            app_secret_id: required("TIKTOK_APP_SECRET_ID")?,
            default_account,
            chunk_size,
            endpoints: Endpoints::from_lookup(&lookup)?,
        })
    }
}
