//! The events function's settings, read once at cold start.

use std::time::Duration;

use shared::table::TABLE_NAME_VAR;

/// The bus events go to.
pub const EVENT_BUS_VAR: &str = "EVENT_BUS_NAME";
/// How long a published event's marker is kept (days).
pub const MARKER_DAYS_VAR: &str = "EVENT_MARKER_DAYS";

/// A stream keeps records for 24 hours and the event source mapping retries
/// within that; an operator may replay a batch from its on-failure record a
/// little later. A week covers all of it with room to spare.
pub const DEFAULT_MARKER_DAYS: u64 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub table: String,
    /// Name or ARN of the event bus.
    pub event_bus: String,
    pub marker_ttl: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} must be a whole number of days from 1 to 365, got {value:?}")]
    BadDays { name: &'static str, value: String },
}

impl EventsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let days = match get(MARKER_DAYS_VAR).filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_MARKER_DAYS,
            Some(value) => value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|d| (1..=365).contains(d))
                .ok_or(ConfigError::BadDays {
                    name: MARKER_DAYS_VAR,
                    value,
                })?,
        };
        Ok(Self {
            table: required(TABLE_NAME_VAR)?,
            event_bus: required(EVENT_BUS_VAR)?,
            marker_ttl: Duration::from_secs(days * 24 * 3600),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_checked() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let config =
            EventsConfig::from_lookup(env(&[("TABLE_NAME", "t"), ("EVENT_BUS_NAME", "bus")]))
                .unwrap();
        assert_eq!(config.marker_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(
            EventsConfig::from_lookup(env(&[("TABLE_NAME", "t")])),
            Err(ConfigError::Missing("EVENT_BUS_NAME"))
        );
        assert!(matches!(
            EventsConfig::from_lookup(env(&[
                ("TABLE_NAME", "t"),
                ("EVENT_BUS_NAME", "b"),
                ("EVENT_MARKER_DAYS", "0"),
            ])),
            Err(ConfigError::BadDays { .. })
        ));
    }
}
