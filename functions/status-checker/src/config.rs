//! The checker's configuration, read once per cold start.

use std::time::Duration;

use shared::tiktok::Endpoints;
use shared::tiktok::config::ConfigError;

#[derive(Debug, Clone)]
pub struct CheckerConfig {
    pub table: String,
    pub secrets_prefix: String,
    pub app_secret_id: String,
    /// The upload queue: held and retried uploads go back through it, the
    /// same path a new S3 object takes.
    pub upload_queue_url: String,
    /// How often the schedule runs (`CHECK_INTERVAL_MINUTES`): tokens that
    /// would expire before the next run are refreshed in this one.
    pub interval: Duration,
    /// Status requests in flight at once, across accounts.
    pub concurrency: usize,
    pub endpoints: Endpoints,
}

/// TikTok allows 30 status requests per minute per access token.
pub const STATUS_REQUESTS_PER_MINUTE: u32 = 30;

impl CheckerConfig {
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
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| ConfigError::Invalid {
                        name,
                        reason: format!(
                            "expected a whole number from {} to {}, got {v:?}",
                            range.start(),
                            range.end()
                        ),
                    }),
            }
        };
        let minutes = number("CHECK_INTERVAL_MINUTES", 5, 1..=1440)?;
        let concurrency = number("CHECK_CONCURRENCY", 16, 1..=256)?;
        Ok(Self {
            table: required("TABLE_NAME")?,
            secrets_prefix: get(shared::tokens::SECRET_PREFIX_VAR)
                .unwrap_or_else(|| shared::tokens::DEFAULT_SECRET_PREFIX.to_owned()),
            app_secret_id: required("TIKTOK_APP_SECRET_ID")?,
            upload_queue_url: required("UPLOAD_QUEUE_URL")?,
            interval: Duration::from_secs(minutes * 60),
            concurrency: usize::try_from(concurrency).unwrap_or(16),
            endpoints: Endpoints::from_lookup(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("TABLE_NAME", "t"),
        ("TIKTOK_APP_SECRET_ID", "app"),
        ("UPLOAD_QUEUE_URL", "http://127.0.0.1:1/q"),
    ];

    #[test]
    fn defaults_and_bounds() {
        let config = CheckerConfig::from_lookup(env(&BASE)).unwrap();
        assert_eq!(config.interval, Duration::from_secs(300));
        assert_eq!(config.concurrency, 16);

        let mut pairs = BASE.to_vec();
        pairs.push(("CHECK_INTERVAL_MINUTES", "0"));
        let err = CheckerConfig::from_lookup(env(&pairs)).unwrap_err();
        assert!(err.to_string().contains("CHECK_INTERVAL_MINUTES"), "{err}");

        let err = CheckerConfig::from_lookup(env(&BASE[..2])).unwrap_err();
        assert!(err.to_string().contains("UPLOAD_QUEUE_URL"), "{err}");
    }
}
