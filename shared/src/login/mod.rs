//! The end of a login, shared by the login function and `tiktok-drafts
//! connect`: exchange the code, check what the grant may do, store the
//! tokens, then record the account.
//!
//! Three rules shape it:
//!
//! - **A login never takes away what is already connected.** TikTok's revoke
//!   ends the user's whole grant to the app (every token of her `open_id`),
//!   so a grant whose `open_id` has an account here is never revoked: when
//!   the login cannot use it (a used invitation, a second tab, a refused
//!   move), it is dropped and her stored tokens keep working. Only a
//!   first-time login that cannot complete revokes what it was given, and
//!   says so in the log (alias and reason, never a token). See
//!   [`rules::unused_grant`].
//! - **Tokens before the invitation.** The tokens are saved (under the
//!   account's refresh lease) before the one transaction that uses up the
//!   invitation, binds the alias and marks the account active. A login
//!   killed between the two leaves either a secret no account points to
//!   (first login: not connected, and the invitation still works) or fresh
//!   tokens of the same creator (reconnect: still connected). Never an
//!   active account without tokens, nor a used invitation without an
//!   account.
//! - **Every TikTok call has its own deadline** ([`LoginTimeouts`]), all
//!   together well inside the login function's 29 s, so a slow TikTok gets a
//!   clear page instead of a killed invocation.
//!
//! The checks read the table first ([`rules::check`]), so that a refusal
//! costs no write; the account transaction checks again, atomically.

pub mod rules;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::accounts::{
    Account, AccountError, Accounts, AliasPermits, ConnectedAccount, Connection,
};
use crate::tiktok::oauth::{PkceVerifier, TokenResponse, missing_scopes, parse_scopes};
use crate::tiktok::{TikTokClient, TikTokError};
use crate::tokens::{
    RefreshSettings, SecretsManagerTokenStore, StoredTokens, TokenError, TokenManager,
};
use rules::{Facts, UnusedGrant};

/// How long each step of a login may take. The defaults add up to 21 s, so
/// that with the table and Secrets Manager calls a login ends well inside
/// the 29 s API Gateway allows the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginTimeouts {
    /// The code exchange. Past it the code may or may not be spent; either
    /// way the creator starts again.
    pub exchange: Duration,
    /// The profile (display name, avatar): a nicety, skipped when slow.
    pub user_info: Duration,
    /// Waiting for the account's refresh lease before storing the tokens
    /// (another invocation may be refreshing the same account).
    pub lease_wait: Duration,
    /// Revoking a first-time grant that cannot be used: best effort.
    pub revoke: Duration,
}

impl Default for LoginTimeouts {
    fn default() -> Self {
        Self {
            exchange: Duration::from_secs(8),
            user_info: Duration::from_secs(4),
            lease_wait: Duration::from_secs(5),
            revoke: Duration::from_secs(4),
        }
    }
}

impl LoginTimeouts {
    /// The longest a login can spend waiting on TikTok and the lease.
    pub fn total(&self) -> Duration {
        self.exchange + self.user_info + self.lease_wait + self.revoke
    }

    /// Refresh settings for the login's token manager: the same as
    /// everywhere, but a bounded wait for the lease.
    pub fn refresh_settings(&self) -> RefreshSettings {
        RefreshSettings {
            wait_deadline: self.lease_wait,
            ..RefreshSettings::default()
        }
    }
}

/// What the login knows when TikTok sends the creator back.
#[derive(Debug, Clone)]
pub struct Callback<'a> {
    /// The authorization code from the redirect's query; single use and
    /// short-lived.
    pub code: &'a str,
    /// The `redirect_uri` the authorize request named; the exchange must
    /// repeat it exactly.
    pub redirect_uri: &'a str,
    /// The PKCE verifier stored with the pending login.
    pub verifier: &'a PkceVerifier,
    /// `scopes` of the redirect's query, when TikTok sent it.
    pub granted_in_query: Option<&'a str>,
    /// The scopes this deployment needs.
    pub required: &'a [&'static str],
    /// The alias the invitation names; the account is connected under it.
    pub alias: &'a str,
    /// What the invitation lets this login do with aliases (rebind, move).
    pub permits: AliasPermits,
    /// The invitation this login uses up.
    pub invite_id: &'a str,
    /// The time the login goes by: token expiries and the account's
    /// timestamps are counted from it.
    pub now: DateTime<Utc>,
}

/// Why a login did not connect the account. In every case the creator's
/// existing connection, if any, is as it was.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The creator switched off a permission the service needs.
    #[error("the login switched off permissions this service needs: {}", .missing.join(", "))]
    ScopesMissing {
        /// The required scopes the grant lacks.
        missing: Vec<&'static str>,
    },
    /// TikTok refused the code (expired, used, or not this app's) or could
    /// not be reached; no grant was made.
    #[error("TikTok did not exchange the code: {0}")]
    Exchange(#[source] TikTokError),
    /// The code exchange took longer than [`LoginTimeouts::exchange`] (the
    /// value here); whether the code was spent is unknown.
    #[error("TikTok did not answer the code exchange within {} s", .0.as_secs())]
    ExchangeTimedOut(Duration),
    /// TikTok's answer lacks what must be stored (an `open_id`, a token).
    #[error("TikTok's token answer could not be used: {0}")]
    Unusable(#[source] TokenError),
    /// The invitation or the alias does not allow this login (used, taken,
    /// a move without a permit). `connected` is the logging-in TikTok
    /// account as this deployment knows it, when it is connected here.
    #[error("{reason}")]
    Refused {
        /// The rule that refused it (invitation used, alias taken, move not
        /// allowed).
        reason: AccountError,
        /// The logging-in TikTok account as connected here; `None` when it
        /// is not connected (or could not be read).
        connected: Option<Box<Account>>,
    },
    /// The account store failed; nothing was recorded.
    #[error(transparent)]
    Account(AccountError),
    /// The tokens could not be stored; nothing was recorded.
    #[error("the tokens could not be stored: {0}")]
    TokensNotStored(#[source] TokenError),
}

/// Completes a login; see the module documentation for the order of steps.
pub async fn complete(
    tiktok: &TikTokClient,
    accounts: &Accounts,
    tokens: &TokenManager<SecretsManagerTokenStore>,
    timeouts: &LoginTimeouts,
    callback: Callback<'_>,
) -> Result<Connection, LoginError> {
    if let Some(granted) = callback.granted_in_query {
        let missing = missing_scopes(callback.required, &parse_scopes(granted));
        if !missing.is_empty() {
            return Err(LoginError::ScopesMissing { missing });
        }
    }
    let exchange = tiktok.exchange_code(
        callback.code,
        callback.redirect_uri,
        Some(callback.verifier),
    );
    let answer = match tokio::time::timeout(timeouts.exchange, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => return Err(LoginError::Exchange(err)),
        Err(_) => {
            tracing::warn!(
                alias = callback.alias,
                timeout_s = timeouts.exchange.as_secs(),
                "code exchange timed out"
            );
            return Err(LoginError::ExchangeTimedOut(timeouts.exchange));
        }
    };
    // From here on the login holds a grant: whatever stops it decides what
    // becomes of the grant.
    match connect(tiktok, accounts, tokens, timeouts, &callback, &answer).await {
        Ok(connection) => Ok(connection),
        Err(err) => Err(give_up(tiktok, accounts, timeouts, &callback, &answer, err).await),
    }
}

/// The steps after the exchange.
async fn connect(
    tiktok: &TikTokClient,
    accounts: &Accounts,
    tokens: &TokenManager<SecretsManagerTokenStore>,
    timeouts: &LoginTimeouts,
    callback: &Callback<'_>,
    answer: &TokenResponse,
) -> Result<Connection, LoginError> {
    let alias = callback.alias;
    let granted = answer.scopes();
    let missing = missing_scopes(callback.required, &granted);
    if !missing.is_empty() {
        return Err(LoginError::ScopesMissing { missing });
    }
    // An answer that could not be stored (no open_id, no token) is refused
    // before anything is decided on it.
    let storable =
        StoredTokens::from_response(None, answer, callback.now).map_err(LoginError::Unusable)?;
    let open_id = storable.open_id.as_str();

    let (existing, invitation_used, alias_holder) = tokio::try_join!(
        accounts.get(open_id),
        accounts.invitation_use(callback.invite_id),
        accounts.alias_binding(alias),
    )
    .map_err(LoginError::Account)?;
    rules::check(&Facts {
        open_id,
        alias,
        permits: callback.permits,
        existing: existing.as_ref(),
        invitation_used: invitation_used.as_ref(),
        alias_holder: alias_holder.as_ref(),
    })
    .map_err(|reason| LoginError::Refused {
        reason,
        connected: None,
    })?;

    // The display name is a nicety: a slow or failed answer does not stop
    // the login.
    let profile = match tokio::time::timeout(
        timeouts.user_info,
        tiktok.user_info(&answer.access_token),
    )
    .await
    {
        Ok(Ok(profile)) => Some(profile),
        Ok(Err(err)) => {
            tracing::warn!(alias, error = %err, "user info unavailable");
            None
        }
        Err(_) => {
            tracing::warn!(
                alias,
                timeout_s = timeouts.user_info.as_secs(),
                "user info timed out; connecting without it"
            );
            None
        }
    };

    // Tokens first: see the module documentation.
    let saved = tokens
        .save_token_response(answer)
        .await
        .map_err(LoginError::TokensNotStored)?;

    let connected = ConnectedAccount {
        open_id: saved.open_id.clone(),
        alias: alias.to_owned(),
        display_name: profile.as_ref().and_then(|p| p.display_name.clone()),
        avatar_url: profile.as_ref().and_then(|p| p.avatar_url.clone()),
        scopes: granted,
        access_expires_at: saved.access_expires_at,
        refresh_expires_at: saved.refresh_expires_at,
    };
    let connection = accounts
        .connect(connected, callback.permits, callback.invite_id)
        .await
        .map_err(|err| match err {
            reason @ (AccountError::InvitationUsed
            | AccountError::AliasTaken { .. }
            | AccountError::MoveNotAllowed { .. }) => LoginError::Refused {
                reason,
                connected: None,
            },
            other => LoginError::Account(other),
        })?;
    tracing::info!(
        alias,
        open_id = %connection.account.open_id,
        moved_from = connection.moved_from.as_deref(),
        "account connected"
    );
    Ok(connection)
}

/// A login that will not connect: the grant is dropped when its `open_id`
/// has an account here (revoking would disconnect her), revoked otherwise,
/// and the answer names the connected account where that helps the page.
///
/// A first-time login that lost a race after storing its tokens leaves its
/// secret behind, holding the revoked (dead) grant: no account points to it,
/// nothing reads it, and the creator's next login overwrites it. The
/// login's role may create and write token secrets, never delete them.
async fn give_up(
    tiktok: &TikTokClient,
    accounts: &Accounts,
    timeouts: &LoginTimeouts,
    callback: &Callback<'_>,
    answer: &TokenResponse,
    err: LoginError,
) -> LoginError {
    let alias = callback.alias;
    let open_id = answer.open_id.trim();
    let reason = err.to_string();
    // Read after the failure: a racing tab of the same creator may have
    // connected her meanwhile, and then her grant must live.
    let account = if open_id.is_empty() {
        None
    } else {
        match accounts.get(open_id).await {
            Ok(account) => Some(account),
            Err(read) => {
                tracing::warn!(alias, open_id, error = %read, "cannot tell whether the account is connected; the grant is dropped, not revoked");
                None
            }
        }
    };
    let connected_here = account.as_ref().map(Option::is_some);
    match rules::unused_grant(connected_here) {
        UnusedGrant::Drop => {
            tracing::info!(
                alias,
                open_id,
                reason = %reason,
                connected_here,
                "login not completed; its new grant is dropped, not revoked"
            );
        }
        UnusedGrant::Revoke => {
            tracing::warn!(alias, open_id, reason = %reason, "revoking the grant of a first-time login that cannot complete");
            match tokio::time::timeout(timeouts.revoke, tiktok.revoke(&answer.access_token)).await {
                Ok(Ok(())) => tracing::info!(alias, open_id, "grant revoked"),
                Ok(Err(e)) => {
                    tracing::warn!(alias, open_id, error = %e, "could not revoke the unused grant")
                }
                Err(_) => tracing::warn!(alias, open_id, "revoking the unused grant timed out"),
            }
        }
    }
    match err {
        LoginError::Refused { reason, .. } => LoginError::Refused {
            reason,
            connected: account.flatten().map(Box::new),
        },
        other => other,
    }
}
