//! The token store: one Secrets Manager secret per connected account, and
//! refreshes that never race.
//!
//! - [`StoredTokens`] is what the secret `<prefix>/accounts/<open_id>` holds
//!   (JSON). Expiry instants come from `expires_in` / `refresh_expires_in` of
//!   TikTok's answers, never from assumed lifetimes.
//! - [`TokenStore`] loads, saves and deletes it; [`SecretsManagerTokenStore`]
//!   is the implementation on AWS.
//! - [`TokenManager`] hands out access tokens ([`TokenManager::get_fresh_token`])
//!   and refreshes them under a DynamoDB lease ([`crate::lease`]), so that one
//!   invocation at most spends the (rotating) refresh token; the others wait
//!   for its result and use it.
//!
//! Token values live only in the secret. They are held in [`Secret`], whose
//! `Debug`/`Display` print a placeholder, so no log line or error message of
//! this module can carry them.

mod authed;
mod manager;
mod pending;
mod refresh;
mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::tiktok::TikTokError;
use crate::tiktok::oauth::TokenResponse;

pub use authed::{AuthedCallError, token_refused};
pub use manager::{FreshToken, RefreshOutcome, RefreshSettings, TokenManager};
pub use store::{STACK_NAME_VAR, STACK_TAG, SecretsManagerTokenStore};

/// The default first part of every secret name.
pub const DEFAULT_SECRET_PREFIX: &str = "tiktok-drafts";
/// The environment variable that overrides [`DEFAULT_SECRET_PREFIX`].
pub const SECRET_PREFIX_VAR: &str = "SECRETS_PREFIX";

/// The tokens of one account, as the secret holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTokens {
    /// The TikTok account the tokens are for; also the secret's last name
    /// part.
    pub open_id: String,
    /// The bearer token for TikTok's API calls.
    pub access_token: Secret,
    /// When TikTok stops taking the access token (from `expires_in`).
    pub access_expires_at: DateTime<Utc>,
    /// The token that gets a new access token; TikTok rotates it, so each
    /// refresh stores the one it returns.
    pub refresh_token: Secret,
    /// `None` when TikTok did not say how long the refresh token lives.
    #[serde(default)]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// What the creator granted the app (`video.upload`, …), as TikTok last
    /// listed it.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When these tokens were received (the login or the last refresh).
    pub updated_at: DateTime<Utc>,
    /// Set when TikTok refused the refresh token (or it expired): no further
    /// refresh is tried until the creator connects again, which overwrites
    /// the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_required_at: Option<DateTime<Utc>>,
}

impl StoredTokens {
    /// The tokens after a TikTok token answer received at `now`.
    ///
    /// The returned refresh token is stored every time (TikTok rotates them);
    /// the previous one is kept only when the answer carries none. Scopes are
    /// kept when the answer lists none.
    pub fn from_response(
        previous: Option<&StoredTokens>,
        answer: &TokenResponse,
        now: DateTime<Utc>,
    ) -> Result<Self, TokenError> {
        let open_id = match (answer.open_id.trim(), previous) {
            ("", Some(prev)) => prev.open_id.clone(),
            ("", None) => {
                return Err(TokenError::BadTokenAnswer(
                    "the token answer names no open_id".into(),
                ));
            }
            (id, Some(prev)) if id != prev.open_id => {
                return Err(TokenError::BadTokenAnswer(format!(
                    "the token answer is for account {id}, not {}",
                    prev.open_id
                )));
            }
            (id, _) => id.to_owned(),
        };
        if answer.access_token.is_empty() {
            return Err(TokenError::BadTokenAnswer(format!(
                "the token answer for account {open_id} has an empty access token"
            )));
        }
        let access_expires_at = add_seconds(now, answer.expires_in, "expires_in")?;
        let new_refresh_expiry = answer
            .refresh_expires_in
            .map(|secs| add_seconds(now, secs, "refresh_expires_in"))
            .transpose()?;
        let (refresh_token, refresh_expires_at) = match (&answer.refresh_token, previous) {
            (Some(token), _) if !token.is_empty() => (token.clone(), new_refresh_expiry),
            // No refresh token in the answer: the old one stays valid. A
            // `refresh_expires_in` in such an answer can only be about it.
            (_, Some(prev)) => (
                prev.refresh_token.clone(),
                new_refresh_expiry.or(prev.refresh_expires_at),
            ),
            (_, None) => {
                return Err(TokenError::BadTokenAnswer(format!(
                    "the first token answer for account {open_id} has no refresh token"
                )));
            }
        };
        let mut scopes = answer.scopes();
        if scopes.is_empty()
            && let Some(prev) = previous
        {
            scopes = prev.scopes.clone();
        }
        Ok(Self {
            open_id,
            access_token: answer.access_token.clone(),
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            scopes,
            updated_at: now,
            reconnect_required_at: None,
        })
    }

    /// How long the access token still lives at `now` (zero when expired).
    pub fn access_valid_for(&self, now: DateTime<Utc>) -> Duration {
        (self.access_expires_at - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// True when `margin` or less is left of the access token.
    pub fn needs_refresh(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        self.access_valid_for(now) <= margin
    }

    /// True when the refresh token is known to be past its own expiry.
    pub fn refresh_expired(&self, now: DateTime<Utc>) -> bool {
        self.refresh_expires_at.is_some_and(|at| at <= now)
    }
}

fn add_seconds(
    now: DateTime<Utc>,
    secs: i64,
    field: &'static str,
) -> Result<DateTime<Utc>, TokenError> {
    // A negative lifetime is treated as "expired now".
    chrono::TimeDelta::try_seconds(secs.max(0))
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| TokenError::BadTokenAnswer(format!("{field} = {secs} is out of range")))
}

/// Loading, saving and deleting the tokens of one account.
pub trait TokenStore: Send + Sync {
    /// The stored tokens, or `None` when the account has none.
    fn load(
        &self,
        open_id: &str,
    ) -> impl Future<Output = Result<Option<StoredTokens>, TokenError>> + Send;

    /// Replaces the stored tokens of `tokens.open_id` (creating them on first
    /// save).
    fn save(&self, tokens: &StoredTokens) -> impl Future<Output = Result<(), TokenError>> + Send;

    /// Forgets the account's tokens; nothing stored is fine.
    fn delete(&self, open_id: &str) -> impl Future<Output = Result<(), TokenError>> + Send;
}

/// What a caller should do about a [`TokenError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// A passing problem (TikTok or AWS unavailable, another invocation
    /// still refreshing): try again later; the account is fine.
    RetryLater,
    /// The grant is gone: the creator must connect the account again.
    Reconnect,
    /// Neither waiting nor reconnecting helps: a configuration or data
    /// problem for the operator.
    Permanent,
}

/// The errors of the token store boundary. Messages name the account
/// (`open_id`) and never carry token material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The account has no stored tokens: never connected, or disconnected.
    #[error("no TikTok tokens are stored for account {open_id}; connect the account first")]
    NotConnected {
        /// The account's TikTok `open_id`.
        open_id: String,
    },

    /// The grant is gone (refresh token refused or expired, or a fresh
    /// access token refused); the account is marked `needs_reconnect`.
    #[error(
        "the TikTok authorization of account {open_id} is no longer valid ({reason}); the creator must reconnect the account"
    )]
    NeedsReconnect {
        /// The account's TikTok `open_id`.
        open_id: String,
        /// What showed the grant is gone, for the operator.
        reason: String,
    },

    /// The refresh failed for a passing reason (TikTok down, rate limited)
    /// after its retries; the stored tokens are unchanged.
    #[error(
        "TikTok could not refresh the token of account {open_id} right now ({source}); try again later"
    )]
    RefreshUnavailable {
        /// The account's TikTok `open_id`.
        open_id: String,
        /// TikTok's last error.
        #[source]
        source: TikTokError,
    },

    /// TikTok refused the refresh for a reason that retrying will not mend
    /// (a request or app problem, not the creator's grant).
    #[error("TikTok refused to refresh the token of account {open_id}: {source}")]
    RefreshRejected {
        /// The account's TikTok `open_id`.
        open_id: String,
        /// TikTok's error.
        #[source]
        source: TikTokError,
    },

    /// Another invocation holds the account's refresh lease and did not
    /// finish within [`RefreshSettings::wait_deadline`].
    #[error(
        "another invocation is refreshing the token of account {open_id} and did not finish within {waited_ms} ms; try again later"
    )]
    Busy {
        /// The account's TikTok `open_id`.
        open_id: String,
        /// How long this call waited, in milliseconds.
        waited_ms: u64,
    },

    /// The refresh task stopped before it answered (it panicked or was
    /// cancelled); whatever it did is in the store or lost with it.
    #[error("the token refresh of account {open_id} did not finish ({detail}); try again later")]
    RefreshInterrupted {
        /// The account's TikTok `open_id`.
        open_id: String,
        /// Why the task ended, from the runtime.
        detail: String,
    },

    /// Secrets Manager (or the table, for tokens kept there) failed.
    #[error("the token store is unavailable for account {open_id}: {detail}; try again later")]
    Store {
        /// The account's TikTok `open_id`.
        open_id: String,
        /// The AWS error, described.
        detail: String,
    },

    /// The stored value is not [`StoredTokens`] JSON; the message never
    /// quotes it.
    #[error("the stored tokens of account {open_id} are unreadable: {detail}")]
    Corrupt {
        /// The account's TikTok `open_id`.
        open_id: String,
        /// Where the JSON breaks, or what is missing.
        detail: String,
    },

    /// The `open_id` (given here, cut short) cannot be part of a secret
    /// name.
    #[error("{0:?} is not a valid TikTok open_id for a secret name")]
    InvalidOpenId(String),

    /// TikTok's token answer lacks what must be stored (an `open_id`, an
    /// access or first refresh token, a lifetime in range), or is for
    /// another account; the text says which.
    #[error("unusable TikTok token answer: {0}")]
    BadTokenAnswer(String),
}

impl TokenError {
    /// Whether to retry, ask the creator to reconnect, or tell the operator.
    pub fn kind(&self) -> TokenErrorKind {
        match self {
            Self::NeedsReconnect { .. } | Self::NotConnected { .. } => TokenErrorKind::Reconnect,
            Self::RefreshUnavailable { .. }
            | Self::RefreshInterrupted { .. }
            | Self::Busy { .. }
            | Self::Store { .. } => TokenErrorKind::RetryLater,
            Self::RefreshRejected { .. }
            | Self::Corrupt { .. }
            | Self::InvalidOpenId(_)
            | Self::BadTokenAnswer(_) => TokenErrorKind::Permanent,
        }
    }

    /// Try again later; the account itself is fine.
    pub fn is_retryable(&self) -> bool {
        self.kind() == TokenErrorKind::RetryLater
    }

    /// The creator must connect the account again.
    pub fn needs_reconnect(&self) -> bool {
        self.kind() == TokenErrorKind::Reconnect
    }
}

/// TikTok open ids are URL-safe base64-ish strings; a secret name allows
/// `A-Za-z0-9/_+=.@-`. Anything else (or a `/`, which would escape the
/// account's name) is refused.
pub(crate) fn check_open_id(open_id: &str) -> Result<(), TokenError> {
    let ok = !open_id.is_empty()
        && open_id.len() <= 200
        && open_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(TokenError::InvalidOpenId(
            open_id.chars().take(80).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> TokenResponse {
        serde_json::from_str(json).unwrap()
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn first_answer_sets_expiries_from_the_answer() {
        let a = answer(
            r#"{"access_token":"act.1","expires_in":7200,"open_id":"o1","refresh_expires_in":15552000,
                "refresh_token":"rft.1","scope":"user.info.basic,video.upload","token_type":"Bearer"}"#,
        );
        let t = StoredTokens::from_response(None, &a, t0()).unwrap();
        assert_eq!(t.open_id, "o1");
        assert_eq!(t.access_token.expose(), "act.1");
        assert_eq!(t.refresh_token.expose(), "rft.1");
        assert_eq!(t.access_expires_at, t0() + chrono::TimeDelta::seconds(7200));
        assert_eq!(
            t.refresh_expires_at,
            Some(t0() + chrono::TimeDelta::seconds(15_552_000))
        );
        assert_eq!(t.scopes, vec!["user.info.basic", "video.upload"]);
        assert_eq!(t.updated_at, t0());
        // Another lifetime in the answer gives another expiry: nothing is hard-coded.
        let b = answer(
            r#"{"access_token":"act.1","expires_in":86400,"open_id":"o1","refresh_token":"rft.1"}"#,
        );
        let t = StoredTokens::from_response(None, &b, t0()).unwrap();
        assert_eq!(
            t.access_expires_at,
            t0() + chrono::TimeDelta::seconds(86400)
        );
        assert_eq!(t.refresh_expires_at, None);
    }

    #[test]
    fn an_answer_without_refresh_token_keeps_the_old_one() {
        let first = StoredTokens::from_response(
            None,
            &answer(
                r#"{"access_token":"act.1","expires_in":7200,"open_id":"o1","refresh_expires_in":1000,
                    "refresh_token":"rft.old","scope":"user.info.basic"}"#,
            ),
            t0(),
        )
        .unwrap();
        let later = t0() + chrono::TimeDelta::seconds(500);
        let merged = StoredTokens::from_response(
            Some(&first),
            &answer(r#"{"access_token":"act.2","expires_in":3600,"open_id":"o1"}"#),
            later,
        )
        .unwrap();
        assert_eq!(merged.access_token.expose(), "act.2");
        assert_eq!(merged.refresh_token.expose(), "rft.old");
        assert_eq!(merged.refresh_expires_at, first.refresh_expires_at);
        assert_eq!(merged.scopes, vec!["user.info.basic"]);
        assert_eq!(
            merged.access_expires_at,
            later + chrono::TimeDelta::seconds(3600)
        );

        // An empty string is no refresh token either.
        let merged = StoredTokens::from_response(
            Some(&first),
            &answer(
                r#"{"access_token":"act.3","expires_in":3600,"open_id":"o1","refresh_token":""}"#,
            ),
            later,
        )
        .unwrap();
        assert_eq!(merged.refresh_token.expose(), "rft.old");

        // A returned one always wins, and its expiry comes with it.
        let rotated = StoredTokens::from_response(
            Some(&first),
            &answer(
                r#"{"access_token":"act.4","expires_in":3600,"open_id":"o1",
                    "refresh_token":"rft.new","refresh_expires_in":99}"#,
            ),
            later,
        )
        .unwrap();
        assert_eq!(rotated.refresh_token.expose(), "rft.new");
        assert_eq!(
            rotated.refresh_expires_at,
            Some(later + chrono::TimeDelta::seconds(99))
        );
    }

    #[test]
    fn bad_answers_are_refused() {
        let no_refresh = answer(r#"{"access_token":"act.1","expires_in":7200,"open_id":"o1"}"#);
        let err = StoredTokens::from_response(None, &no_refresh, t0()).unwrap_err();
        assert!(matches!(err, TokenError::BadTokenAnswer(_)), "{err}");

        let first = StoredTokens::from_response(
            None,
            &answer(
                r#"{"access_token":"act.1","expires_in":7200,"open_id":"o1","refresh_token":"rft.1"}"#,
            ),
            t0(),
        )
        .unwrap();
        let other = answer(
            r#"{"access_token":"act.9","expires_in":7200,"open_id":"o2","refresh_token":"rft.9"}"#,
        );
        let err = StoredTokens::from_response(Some(&first), &other, t0()).unwrap_err();
        assert!(err.to_string().contains("o2"));
        assert!(!err.to_string().contains("act.9") && !err.to_string().contains("rft.9"));

        let huge = answer(
            r#"{"access_token":"act.1","expires_in":9223372036854775807,"open_id":"o1","refresh_token":"r"}"#,
        );
        assert!(StoredTokens::from_response(None, &huge, t0()).is_err());
    }

    #[test]
    fn expiry_checks_use_the_margin() {
        let t = StoredTokens::from_response(
            None,
            &answer(
                r#"{"access_token":"a","expires_in":1200,"open_id":"o1","refresh_token":"r","refresh_expires_in":5000}"#,
            ),
            t0(),
        )
        .unwrap();
        let ten_min = Duration::from_secs(600);
        assert!(!t.needs_refresh(t0(), ten_min));
        assert!(!t.needs_refresh(t0() + chrono::TimeDelta::seconds(599), ten_min));
        assert!(t.needs_refresh(t0() + chrono::TimeDelta::seconds(600), ten_min));
        assert!(t.needs_refresh(t0() + chrono::TimeDelta::seconds(5000), ten_min));
        assert_eq!(
            t.access_valid_for(t0() + chrono::TimeDelta::seconds(9999)),
            Duration::ZERO
        );
        assert!(!t.refresh_expired(t0() + chrono::TimeDelta::seconds(4999)));
        assert!(t.refresh_expired(t0() + chrono::TimeDelta::seconds(5000)));
    }

    #[test]
    fn secret_json_has_the_documented_fields_and_debug_hides_tokens() {
        let t = StoredTokens::from_response(
            None,
            &answer(
                r#"{"access_token":"act.zzz","expires_in":60,"open_id":"o1","refresh_token":"rft.zzz","scope":"a,b"}"#,
            ),
            t0(),
        )
        .unwrap();
        let json: serde_json::Value = serde_json::to_value(&t).unwrap();
        for field in [
            "open_id",
            "access_token",
            "access_expires_at",
            "refresh_token",
            "refresh_expires_at",
            "scopes",
            "updated_at",
        ] {
            assert!(json.get(field).is_some(), "{field} missing in {json}");
        }
        assert!(json.get("reconnect_required_at").is_none());
        let back: StoredTokens = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
        let debug = format!("{t:?}");
        assert!(!debug.contains("zzz"), "{debug}");
    }

    #[test]
    fn open_ids_are_checked_for_secret_names() {
        assert!(check_open_id("-000OXnEnyx0vj3MdZ_ynYt1BvS1xWcvRqGG").is_ok());
        assert!(check_open_id("open-alice").is_ok());
        assert!(check_open_id("").is_err());
        assert!(check_open_id("a/b").is_err());
        assert!(check_open_id("a b").is_err());
    }

    #[test]
    fn error_kinds() {
        let reconnect = TokenError::NeedsReconnect {
            open_id: "o".into(),
            reason: "invalid_grant".into(),
        };
        assert!(reconnect.needs_reconnect());
        assert!(!reconnect.is_retryable());
        assert!(reconnect.to_string().contains("reconnect"));
        let busy = TokenError::Busy {
            open_id: "o".into(),
            waited_ms: 5,
        };
        assert!(busy.is_retryable());
        assert_eq!(
            TokenError::InvalidOpenId("x".into()).kind(),
            TokenErrorKind::Permanent
        );
    }
}
