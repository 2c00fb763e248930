//! Pending logins: the OAuth `state` and the PKCE verifier between
//! `/auth/start` and `/auth/callback`.
//!
//! The `state` is the anti-CSRF value TikTok hands back unchanged; keeping it
//! server-side (not in a cookie) makes it single use and lets it carry what the
//! callback needs: the alias and invitation the login was started with, and
//! the PKCE verifier whose challenge went to TikTok. One item per login:
//!
//! | attribute | value |
//! |---|---|
//! | `pk` / `sk` | `OAUTHSTATE#<state>` / `STATE` |
//! | `alias`, `invite_id`, `rebind`, `redirect_uri` | from the invitation and config |
//! | `verifier` | the PKCE verifier (short-lived and single use, so it may sit here; never logged) |
//! | `created_at`, `expires_at` | epoch seconds; `expires_at` is the table's TTL attribute |
//!
//! Consuming is one conditional `DeleteItem` that returns the old item: of two
//! callbacks racing for one state exactly one gets the item, and a replay finds
//! nothing. TTL deletion is lazy, so expiry is checked on read as well.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use crate::aws::describe_sdk_error;
use crate::table::{PK, SK, TTL, n, s};
use crate::tiktok::oauth::{PkceVerifier, random_token};

const PK_PREFIX: &str = "OAUTHSTATE#";
const SK_VALUE: &str = "STATE";

/// How long a login may take from `/auth/start` to the callback by default:
/// long enough to sign in to TikTok, short enough that a leaked link dies.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);

/// The longest `state` accepted from a callback; ours are 43 characters.
const MAX_STATE_LEN: usize = 128;

/// Why a pending login could not be stored or taken back. The first two are
/// the user's problem and safe to show; the others are ours.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Unknown, already used, or lost to a concurrent callback. A consumed
    /// state is deleted, so these cannot be told apart, on purpose: no
    /// tombstone keeps login data around.
    #[error("this login is unknown or was already completed; please start again")]
    Unknown,
    #[error("this login took too long and expired; please start again")]
    Expired,
    #[error("a login with this state exists already")]
    Duplicate,
    #[error("the stored login is unreadable: {detail}")]
    Corrupt { detail: String },
    #[error("cannot reach the login store (table {table}): {detail}")]
    Store { table: String, detail: String },
}

/// A login between start and callback. `Debug` hides the state and the
/// verifier: while the login is pending, the state is what a forged callback
/// would need.
#[derive(Clone)]
pub struct PendingLogin {
    /// The OAuth `state`: 32 random bytes, base64url.
    pub state: String,
    pub alias: String,
    /// The invitation this login was started with; consumed when the login
    /// completes, in the account transaction.
    pub invite_id: String,
    pub rebind: bool,
    pub verifier: PkceVerifier,
    /// The exact `redirect_uri` of the authorize request; the token exchange
    /// must repeat it.
    pub redirect_uri: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &"[redacted]")
            .field("alias", &self.alias)
            .field("invite_id", &self.invite_id)
            .field("rebind", &self.rebind)
            .field("verifier", &self.verifier)
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PendingLogin {
    /// A new login with a fresh random `state` and PKCE verifier.
    pub fn new(
        alias: &str,
        invite_id: &str,
        rebind: bool,
        redirect_uri: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Self {
        // Only a lifetime of billions of years fails to convert; such a value
        // is a bug, and the default is the safe reading of it.
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10));
        // Whole seconds, as stored, so what `create` stores is what `consume` returns.
        let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        Self {
            state: random_token(),
            alias: alias.to_owned(),
            invite_id: invite_id.to_owned(),
            rebind,
            verifier: PkceVerifier::generate(),
            redirect_uri: redirect_uri.to_owned(),
            created_at: now,
            expires_at: now + ttl,
        }
    }
}

/// The pending logins in the project table.
#[derive(Debug, Clone)]
pub struct LoginStates {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl LoginStates {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stores a pending login. The write is conditional on the state being
    /// new, so a (vanishingly unlikely) collision fails instead of replacing
    /// someone else's login.
    pub async fn create(&self, login: &PendingLogin) -> Result<(), StateError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(format!("{PK_PREFIX}{}", login.state)))
            .item(SK, s(SK_VALUE))
            .item("alias", s(&login.alias))
            .item("invite_id", s(&login.invite_id))
            .item("rebind", AttributeValue::Bool(login.rebind))
            .item("verifier", s(login.verifier.expose()))
            .item("redirect_uri", s(&login.redirect_uri))
            .item("created_at", n(login.created_at.timestamp()))
            .item(TTL, n(login.expires_at.timestamp()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => {
                tracing::info!(
                    alias = %login.alias,
                    invite_id = %login.invite_id,
                    expires_at = %login.expires_at,
                    "login started"
                );
                Ok(())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StateError::Duplicate)
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Takes a pending login back, exactly once. The item is deleted whatever
    /// happens next, expired or not: a state is never good twice.
    pub async fn consume(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<PendingLogin, StateError> {
        // A callback's `state` is user input; one that we cannot have made is
        // unknown without asking DynamoDB (and without a key of any size).
        if state.is_empty()
            || state.len() > MAX_STATE_LEN
            || !state
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            tracing::warn!("callback with a state we cannot have made");
            return Err(StateError::Unknown);
        }
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(format!("{PK_PREFIX}{state}")))
            .key(SK, s(SK_VALUE))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let item = match deleted {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::warn!("callback with an unknown or already used state");
                return Err(StateError::Unknown);
            }
            Err(err) => return Err(self.store_error(&err)),
        };
        let login = from_item(state, &item)?;
        if now >= login.expires_at {
            tracing::warn!(
                alias = %login.alias,
                invite_id = %login.invite_id,
                expires_at = %login.expires_at,
                "callback for an expired login"
            );
            return Err(StateError::Expired);
        }
        tracing::info!(alias = %login.alias, invite_id = %login.invite_id, "login state consumed");
        Ok(login)
    }

    fn store_error<E: std::error::Error>(&self, err: &E) -> StateError {
        let detail = describe_sdk_error(err);
        tracing::error!(table = %self.table, error = %detail, "login store failed");
        StateError::Store {
            table: self.table.clone(),
            detail,
        }
    }
}

fn from_item(
    state: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<PendingLogin, StateError> {
    let corrupt = |detail: String| StateError::Corrupt { detail };
    let text = |name: &str| -> Result<String, StateError> {
        match item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(corrupt(format!("{name} is missing or not a string"))),
        }
    };
    let time = |name: &str| -> Result<DateTime<Utc>, StateError> {
        match item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse::<i64>()
                .ok()
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .ok_or_else(|| corrupt(format!("{name} is not a time"))),
            _ => Err(corrupt(format!("{name} is missing or not a number"))),
        }
    };
    let rebind = match item.get("rebind") {
        Some(AttributeValue::Bool(b)) => *b,
        _ => return Err(corrupt("rebind is missing or not a boolean".into())),
    };
    // The error of `from_stored` describes the rule, not the value.
    let verifier = PkceVerifier::from_stored(text("verifier")?).map_err(corrupt)?;
    Ok(PendingLogin {
        state: state.to_owned(),
        alias: text("alias")?,
        invite_id: text("invite_id")?,
        rebind,
        verifier,
        redirect_uri: text("redirect_uri")?,
        created_at: time("created_at")?,
        expires_at: time(TTL)?,
    })
}
