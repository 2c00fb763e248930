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
//! | `alias`, `invite_id`, `rebind`, `move_alias`, `redirect_uri` | from the invitation and config |
//! | `verifier` | the PKCE verifier (short-lived and single use, so it may sit here; never logged) |
//! | `browser_nonce_sha256` | hex SHA-256 of the nonce in the starting browser's cookie; absent for a login the CLI started |
//! | `created_at`, `expires_at` | epoch seconds; `expires_at` is the table's TTL attribute |
//!
//! **Whose login it is.** A state alone is not enough to finish a login: the
//! callback URL (state and code) can leak, or an attacker can send a victim a
//! callback URL of the attacker's own login. So `/auth/start` binds the login
//! to the browser that started it: a random nonce goes into a cookie there,
//! only its hash is stored here, and [`LoginStates::consume`] takes the login
//! back only for a [`Holder`] that proves it (hashes compared in constant
//! time). A login the CLI started (`connect --print-url`) has no nonce and is
//! only for the CLI; a browser login is never for the CLI.
//!
//! **A wrong holder changes nothing.** The check happens before the item is
//! deleted: whoever opens a leaked callback URL in another browser gets
//! [`StateError::NotThisBrowser`] and the state stays for the browser that
//! holds the cookie. Consuming on a mismatch would let anyone who sees the
//! URL burn the creator's login with one request; leaving it costs nothing,
//! since the code in the URL is useless without the verifier stored here,
//! and the state still dies at its TTL.
//!
//! Consuming is then one conditional `DeleteItem` that returns the old item:
//! of two callbacks racing for one state exactly one gets the item, and a
//! replay finds nothing. TTL deletion is lazy, so expiry is checked on read as
//! well.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::accounts::AliasPermits;
use crate::secret::Secret;
use crate::table::{Checked, Cond, Key, PK, SK, TTL, Table, TableError, n, opt_text, s};
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
    /// The login is still stored but its time ([`DEFAULT_TTL`] unless set
    /// otherwise) ran out before the callback.
    #[error("this login took too long and expired; please start again")]
    Expired,
    /// The login exists but was started elsewhere (another browser, or the
    /// CLI). Nothing was changed: the state is still there for its holder.
    #[error("this login was started somewhere else; nothing was changed")]
    NotThisBrowser,
    /// Storing a new login found one with the same `state`; nothing was
    /// overwritten.
    #[error("a login with this state exists already")]
    Duplicate,
    /// The stored item lacks an attribute or has one of the wrong type.
    #[error("the stored login is unreadable: {detail}")]
    Corrupt {
        /// Which attribute is missing or wrong.
        detail: String,
    },
    /// DynamoDB could not be reached, or refused the request.
    #[error("cannot reach the login store (table {table}): {detail}")]
    Store {
        /// The table's name.
        table: String,
        /// DynamoDB's error, described.
        detail: String,
    },
}

/// A login between start and callback. `Debug` hides the state and the
/// verifier: while the login is pending, the state is what a forged callback
/// would need.
#[derive(Clone)]
pub struct PendingLogin {
    /// The OAuth `state`: 32 random bytes, base64url.
    pub state: String,
    /// The alias the account will be connected under, from the invitation.
    pub alias: String,
    /// The invitation this login was started with; consumed when the login
    /// completes, in the account transaction.
    pub invite_id: String,
    /// What the invitation lets this login do with aliases.
    pub permits: AliasPermits,
    /// The PKCE verifier whose challenge went to TikTok with the authorize
    /// request; the token exchange sends it.
    pub verifier: PkceVerifier,
    /// Hex SHA-256 of the starting browser's cookie nonce; `None` for a
    /// login started by the CLI.
    pub browser_nonce_sha256: Option<String>,
    /// The exact `redirect_uri` of the authorize request; the token exchange
    /// must repeat it.
    pub redirect_uri: String,
    /// When the login was started, to the whole second.
    pub created_at: DateTime<Utc>,
    /// When the login stops being accepted (and the table's TTL removes it).
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &"[redacted]")
            .field("alias", &self.alias)
            .field("invite_id", &self.invite_id)
            .field("permits", &self.permits)
            .field("verifier", &self.verifier)
            .field("browser_bound", &self.browser_nonce_sha256.is_some())
            .field("redirect_uri", &self.redirect_uri)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PendingLogin {
    /// A new login with a fresh random `state` and PKCE verifier, bound to
    /// no browser (the CLI's); see [`PendingLogin::bind_to_browser`].
    pub fn new(
        alias: &str,
        invite_id: &str,
        permits: AliasPermits,
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
            permits,
            verifier: PkceVerifier::generate(),
            browser_nonce_sha256: None,
            redirect_uri: redirect_uri.to_owned(),
            created_at: now,
            expires_at: now + ttl,
        }
    }

    /// Binds the login to one browser: returns a fresh random nonce for that
    /// browser's cookie and keeps only its hash.
    pub fn bind_to_browser(&mut self) -> Secret {
        let nonce = random_token();
        self.browser_nonce_sha256 = Some(nonce_hash(&nonce));
        Secret::new(nonce)
    }
}

/// Who is finishing a login, for [`LoginStates::consume`].
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// A browser, with the nonce its cookie for this login carried (`None`
    /// when it sent none).
    Browser {
        /// The nonce from the browser's login cookie.
        nonce: Option<&'a str>,
    },
    /// `tiktok-drafts connect`, finishing a login it started with
    /// `--print-url` (it has no cookie; the operator's table access is its
    /// proof).
    Command,
}

fn nonce_hash(nonce: &str) -> String {
    hex::encode(Sha256::digest(nonce.as_bytes()))
}

/// Whether `holder` may finish a login stored with `stored_hash`. The hashes
/// are compared in constant time: how long a wrong guess takes says nothing
/// about the right one.
fn holder_matches(stored_hash: Option<&str>, holder: Holder<'_>) -> bool {
    match (stored_hash, holder) {
        (Some(stored), Holder::Browser { nonce: Some(nonce) }) => {
            let given = nonce_hash(nonce);
            bool::from(given.as_bytes().ct_eq(stored.as_bytes()))
        }
        (None, Holder::Command) => true,
        _ => false,
    }
}

/// The pending logins in the project table.
#[derive(Debug, Clone)]
pub struct LoginStates {
    table: Table,
}

impl LoginStates {
    /// The pending logins kept in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    /// Stores a pending login. The write is conditional on the state being
    /// new, so a (vanishingly unlikely) collision fails instead of replacing
    /// someone else's login.
    pub async fn create(&self, login: &PendingLogin) -> Result<(), StateError> {
        let mut item = HashMap::from([
            (PK.to_owned(), s(format!("{PK_PREFIX}{}", login.state))),
            (SK.to_owned(), s(SK_VALUE)),
            ("alias".to_owned(), s(&login.alias)),
            ("invite_id".to_owned(), s(&login.invite_id)),
            (
                "rebind".to_owned(),
                AttributeValue::Bool(login.permits.rebind),
            ),
            (
                "move_alias".to_owned(),
                AttributeValue::Bool(login.permits.move_alias),
            ),
            ("verifier".to_owned(), s(login.verifier.expose())),
            ("redirect_uri".to_owned(), s(&login.redirect_uri)),
            ("created_at".to_owned(), n(login.created_at.timestamp())),
            (TTL.to_owned(), n(login.expires_at.timestamp())),
        ]);
        if let Some(hash) = &login.browser_nonce_sha256 {
            item.insert("browser_nonce_sha256".to_owned(), s(hash));
        }
        match self
            .table
            .put(item, Some(&Cond::no_item()))
            .await
            .map_err(store_error)?
        {
            Checked::Done(()) => {
                tracing::info!(
                    alias = %login.alias,
                    invite_id = %login.invite_id,
                    expires_at = %login.expires_at,
                    "login started"
                );
                Ok(())
            }
            Checked::ConditionFailed => Err(StateError::Duplicate),
        }
    }

    /// Takes a pending login back, exactly once, for the `holder` that
    /// started it. A wrong holder gets [`StateError::NotThisBrowser`] and the
    /// login stays as it was (see the module documentation). For the right
    /// holder the item is deleted whatever happens next, expired or not: a
    /// state is never good twice.
    pub async fn consume(
        &self,
        state: &str,
        holder: Holder<'_>,
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
        let key = Key::new(format!("{PK_PREFIX}{state}"), SK_VALUE);
        let Some(item) = self.table.get(&key).await.map_err(store_error)? else {
            tracing::warn!("callback with an unknown or already used state");
            return Err(StateError::Unknown);
        };
        let login = from_item(state, &item)?;
        if !holder_matches(login.browser_nonce_sha256.as_deref(), holder) {
            tracing::warn!(
                alias = %login.alias,
                invite_id = %login.invite_id,
                started_by_browser = login.browser_nonce_sha256.is_some(),
                finished_by_browser = matches!(holder, Holder::Browser { .. }),
                cookie_sent = matches!(holder, Holder::Browser { nonce: Some(_) }),
                "callback from somewhere other than where the login started; state left as it was"
            );
            return Err(StateError::NotThisBrowser);
        }
        // The item is never updated, so the one deleted is the one checked;
        // the condition says so all the same.
        let same_holder = match &login.browser_nonce_sha256 {
            Some(hash) => Cond::eq("browser_nonce_sha256", s(hash)),
            None => Cond::absent("browser_nonce_sha256"),
        };
        let when = Cond::item_exists().and(same_holder);
        match self
            .table
            .delete(&key, Some(&when))
            .await
            .map_err(store_error)?
        {
            Checked::Done(Some(_)) => {}
            Checked::Done(None) => return Err(StateError::Unknown),
            Checked::ConditionFailed => {
                tracing::warn!(alias = %login.alias, "a concurrent callback consumed the state first");
                return Err(StateError::Unknown);
            }
        }
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
}

/// The table logged the failure already ([`Table::error`]).
fn store_error(err: TableError) -> StateError {
    StateError::Store {
        table: err.table,
        detail: err.detail,
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
    // Absent on logins started before moves needed a permit: no move.
    let move_alias = match item.get("move_alias") {
        None => false,
        Some(AttributeValue::Bool(b)) => *b,
        Some(_) => return Err(corrupt("move_alias is not a boolean".into())),
    };
    // The error of `from_stored` describes the rule, not the value.
    let verifier = PkceVerifier::from_stored(text("verifier")?).map_err(corrupt)?;
    Ok(PendingLogin {
        state: state.to_owned(),
        alias: text("alias")?,
        invite_id: text("invite_id")?,
        permits: AliasPermits { rebind, move_alias },
        verifier,
        browser_nonce_sha256: opt_text(item, "browser_nonce_sha256"),
        redirect_uri: text("redirect_uri")?,
        created_at: time("created_at")?,
        expires_at: time(TTL)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_holder_that_started_a_login_may_finish_it() {
        let mut login = PendingLogin::new(
            "alice",
            "inv",
            AliasPermits::default(),
            "https://x.example.com/cb",
            Utc::now(),
            DEFAULT_TTL,
        );
        assert!(holder_matches(None, Holder::Command));
        assert!(!holder_matches(None, Holder::Browser { nonce: Some("x") }));
        assert!(!holder_matches(None, Holder::Browser { nonce: None }));

        let nonce = login.bind_to_browser();
        let stored = login.browser_nonce_sha256.as_deref();
        assert_eq!(stored.map(str::len), Some(64));
        assert_ne!(stored, Some(nonce.expose()), "only the hash is kept");
        let right = Holder::Browser {
            nonce: Some(nonce.expose()),
        };
        assert!(holder_matches(stored, right));
        assert!(!holder_matches(stored, Holder::Browser { nonce: None }));
        assert!(!holder_matches(
            stored,
            Holder::Browser {
                nonce: Some("not-the-nonce")
            }
        ));
        assert!(!holder_matches(stored, Holder::Command));
        let debug = format!("{login:?}");
        assert!(!debug.contains(nonce.expose()) && !debug.contains(stored.unwrap()));
    }
}
