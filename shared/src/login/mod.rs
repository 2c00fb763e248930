//! The end of a login, shared by the login function and `tiktok-drafts
//! connect`: exchange the code, check the scopes, record the account, then
//! store the tokens. Either the account is connected with its tokens, or
//! nothing is kept and the grant is revoked.
//!
//! The order matters. The account transaction is the gate (the invitation is
//! single use, the alias has one owner), so tokens are stored only once it
//! has passed; they are stored under the account's refresh lease, so a
//! refresh running at that moment cannot overwrite the new grant.

use chrono::{DateTime, Utc};

use crate::accounts::{Account, AccountError, AccountState, Accounts, ConnectedAccount};
use crate::tiktok::oauth::{PkceVerifier, missing_scopes, parse_scopes};
use crate::tiktok::{TikTokClient, TikTokError};
use crate::tokens::{SecretsManagerTokenStore, StoredTokens, TokenError, TokenManager};

/// What the login knows when TikTok sends the creator back.
#[derive(Debug, Clone)]
pub struct Callback<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub verifier: &'a PkceVerifier,
    /// `scopes` of the redirect's query, when TikTok sent it.
    pub granted_in_query: Option<&'a str>,
    /// The scopes this deployment needs.
    pub required: &'a [&'static str],
    pub alias: &'a str,
    pub rebind: bool,
    /// The invitation this login uses up.
    pub invite_id: &'a str,
    pub now: DateTime<Utc>,
}

/// Why a login did not connect the account. Nothing was kept in each case.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The creator switched off a permission the service needs.
    #[error("the login switched off permissions this service needs: {}", .missing.join(", "))]
    ScopesMissing { missing: Vec<&'static str> },
    #[error("TikTok did not exchange the code: {0}")]
    Exchange(#[source] TikTokError),
    #[error("TikTok's token answer could not be used: {0}")]
    Unusable(#[source] TokenError),
    #[error(transparent)]
    Account(AccountError),
    /// The account is recorded (and marked to reconnect), its tokens are not.
    #[error("the account was recorded but its tokens could not be stored: {0}")]
    TokensNotStored(#[source] TokenError),
}

/// Completes a login; see the module documentation for the order of steps.
pub async fn complete(
    tiktok: &TikTokClient,
    accounts: &Accounts,
    tokens: &TokenManager<SecretsManagerTokenStore>,
    callback: Callback<'_>,
) -> Result<Account, LoginError> {
    let alias = callback.alias;
    if let Some(granted) = callback.granted_in_query {
        let missing = missing_scopes(callback.required, &parse_scopes(granted));
        if !missing.is_empty() {
            return Err(LoginError::ScopesMissing { missing });
        }
    }
    let answer = tiktok
        .exchange_code(
            callback.code,
            callback.redirect_uri,
            Some(callback.verifier),
        )
        .await
        .map_err(LoginError::Exchange)?;
    let revoke = || async {
        if let Err(err) = tiktok.revoke(&answer.access_token).await {
            tracing::warn!(alias, error = %err, "could not revoke an unused grant");
        }
    };
    let granted = answer.scopes();
    let missing = missing_scopes(callback.required, &granted);
    if !missing.is_empty() {
        revoke().await;
        return Err(LoginError::ScopesMissing { missing });
    }
    // What the secret will hold, worked out first for the account record.
    let stored = match StoredTokens::from_response(None, &answer, callback.now) {
        Ok(t) => t,
        Err(err) => {
            revoke().await;
            return Err(LoginError::Unusable(err));
        }
    };
    // The display name is a nicety: a failure here does not stop the login.
    let profile = match tiktok.user_info(&answer.access_token).await {
        Ok(p) => Some(p),
        Err(err) => {
            tracing::warn!(alias, error = %err, "user info unavailable");
            None
        }
    };
    let connected = ConnectedAccount {
        open_id: stored.open_id.clone(),
        alias: alias.to_owned(),
        display_name: profile.as_ref().and_then(|p| p.display_name.clone()),
        avatar_url: profile.as_ref().and_then(|p| p.avatar_url.clone()),
        scopes: granted,
        access_expires_at: stored.access_expires_at,
        refresh_expires_at: stored.refresh_expires_at,
    };
    let account = match accounts
        .connect(connected, callback.rebind, callback.invite_id)
        .await
    {
        Ok(account) => account,
        Err(err) => {
            revoke().await;
            return Err(LoginError::Account(err));
        }
    };
    if let Err(err) = tokens.save_token_response(&answer).await {
        tracing::error!(alias, open_id = %stored.open_id, error = %err, "cannot store tokens");
        let _ = accounts
            .set_state(
                &stored.open_id,
                AccountState::NeedsReconnect,
                Some("the tokens could not be stored when the account connected"),
            )
            .await;
        return Err(LoginError::TokensNotStored(err));
    }
    tracing::info!(alias, open_id = %account.open_id, "account connected");
    Ok(account)
}
