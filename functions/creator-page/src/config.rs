//! The page function's settings, read once at cold start.

use shared::table::TABLE_NAME_VAR;

/// The secret holding the deployment's key (the invitation key: links are
/// signed with a key derived from it for this purpose only).
pub const KEY_SECRET_VAR: &str = "INVITE_KEY_SECRET_ID";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    pub table: String,
    pub key_secret_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0} is not set")]
pub struct MissingSetting(pub &'static str);

impl PageConfig {
    pub fn from_env() -> Result<Self, MissingSetting> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, MissingSetting> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(MissingSetting(name))
        };
        Ok(Self {
            table: required(TABLE_NAME_VAR)?,
            key_secret_id: required(KEY_SECRET_VAR)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_settings_are_required() {
        let get = |name: &str| (name == "TABLE_NAME").then(|| "t".to_owned());
        assert_eq!(
            PageConfig::from_lookup(get),
            Err(MissingSetting("INVITE_KEY_SECRET_ID"))
        );
    }
}
