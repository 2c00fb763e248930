//! The lease holder's refresh: the one place a refresh token is spent.
//!
//! ```text
//!  lease taken ──> read the secret (and tokens kept in the table, moved in)
//!       │            │ good enough already ─────────────────> use them
//!       │            │ account marked / refresh token expired ─> needs reconnect
//!       v            v
//!  renew the lease ─> token call (its own timeout) ──> answer ──> renew ──> save
//!       ^  lost: stop, wait for the new holder         │             │ fails past the budget:
//!       │                                               │             │ keep in the table
//!       └──── passing fault: back off ──────────────────┤             └ lost: keep in the table,
//!                                                        │               never the secret
//!                                     invalid_grant ─────┘
//!        the secret (or the table) holds another refresh token: use it or
//!        refresh with it; still the one refused after a few looks: mark
//!        the account (never the secret) needs_reconnect
//! ```
//!
//! The lease ([`RefreshSettings::lease`]) is longer than one token call
//! plus the save, and is renewed, on the condition that it is still this
//! holder's, before every call and every save: a holder always knows it
//! holds the lease for the whole of the step it starts, and one that lost
//! it writes nothing to the secret.

use std::time::{Duration, Instant};

use super::manager::{Need, check_not_marked, store_error};
use super::{RefreshOutcome, StoredTokens, TokenError, TokenManager, TokenStore};
use crate::accounts::AccountState;
use crate::tiktok::{ErrorClass, TikTokError};

#[cfg(doc)]
use super::RefreshSettings;

/// Looks at the stored tokens after an `invalid_grant`, before concluding
/// that the grant is gone: Secrets Manager's reads are eventually
/// consistent, and a refresh that just ended may not show yet.
const SETTLE_LOOKS: u32 = 3;

/// The lease as its holder knows it.
pub(super) struct Hold<'a> {
    name: &'a str,
    holder: &'a str,
    /// Until when the lease is surely ours (its last renewal plus its TTL).
    until: Instant,
}

impl<'a> Hold<'a> {
    pub(super) fn new(name: &'a str, holder: &'a str, ttl: Duration) -> Self {
        Self {
            name,
            holder,
            until: Instant::now() + ttl,
        }
    }
}

/// Why a holder stopped without a result of its own.
pub(super) enum Halt {
    /// The lease passed to another invocation: wait for its result.
    LeaseLost,
    Failed(TokenError),
}

impl From<TokenError> for Halt {
    fn from(err: TokenError) -> Self {
        Self::Failed(err)
    }
}

type Held = Result<(StoredTokens, RefreshOutcome), Halt>;

impl<S: TokenStore + Clone + 'static> TokenManager<S> {
    pub(super) async fn refresh_holding_lease(
        &self,
        open_id: &str,
        need: &Need,
        hold: &mut Hold<'_>,
    ) -> Held {
        // Another holder may have refreshed between our read and the lease.
        let mut current = self.load_under_lease(open_id, hold).await?;
        check_not_marked(&current)?;
        self.check_still_connected(open_id).await?;
        let now = self.clock.now();
        if need.met_by(&current, now) {
            let access_expires_at = current.access_expires_at;
            return Ok((
                current,
                RefreshOutcome::RefreshedElsewhere { access_expires_at },
            ));
        }
        if current.refresh_expired(now) {
            tracing::warn!(
                open_id,
                "refresh token expired; the account needs a reconnect"
            );
            return Err(self
                .mark_needs_reconnect(open_id, "the refresh token expired")
                .await
                .into());
        }
        let timeout = self.settings.refresh_call_timeout;
        let attempts = self.settings.refresh_attempts.max(1);
        let mut attempt: u32 = 0;
        loop {
            // The call and the save that follows it fit in the lease.
            self.keep_lease(open_id, hold, timeout + self.settings.save_budget)
                .await?;
            tracing::debug!(open_id, attempt, "refreshing the access token");
            let err = match self
                .tiktok
                .refresh_token_within(&current.refresh_token, timeout)
                .await
            {
                Ok(answer) => {
                    let tokens =
                        StoredTokens::from_response(Some(&current), &answer, self.clock.now())?;
                    self.save_rotated(&tokens, hold).await?;
                    self.record_expiry(&tokens).await;
                    tracing::info!(
                        open_id,
                        attempt,
                        access_expires_at = %tokens.access_expires_at,
                        refresh_token_rotated = tokens.refresh_token != current.refresh_token,
                        "access token refreshed"
                    );
                    let access_expires_at = tokens.access_expires_at;
                    return Ok((tokens, RefreshOutcome::Refreshed { access_expires_at }));
                }
                Err(err) => err,
            };
            let last = attempt + 1 >= attempts;
            match err.class() {
                ErrorClass::Retryable if !last => {
                    let delay = self.settings.retry_delay(attempt, err.retry_after());
                    tracing::warn!(open_id, attempt, error = %err, delay_ms = super::manager::millis(delay), "token refresh failed for a passing reason; retrying");
                    tokio::time::sleep(delay).await;
                }
                ErrorClass::Retryable => {
                    tracing::warn!(open_id, attempt, error = %err, "token refresh failed; giving up for now");
                    return Err(unavailable(open_id, err));
                }
                ErrorClass::NeedsReauthorization => {
                    let latest = self.after_refused(open_id, &current, hold, &err).await?;
                    if need.met_by(&latest, self.clock.now()) {
                        tracing::info!(
                            open_id,
                            "refresh token was rotated by another invocation; using its tokens"
                        );
                        let access_expires_at = latest.access_expires_at;
                        return Ok((
                            latest,
                            RefreshOutcome::RefreshedElsewhere { access_expires_at },
                        ));
                    }
                    if last {
                        return Err(unavailable(open_id, err));
                    }
                    // Theirs needs a refresh too: spend the refresh token
                    // that is current now.
                    current = latest;
                }
                ErrorClass::NeedsRefresh | ErrorClass::CapReached | ErrorClass::Permanent => {
                    tracing::error!(open_id, error = %err, "TikTok rejected the token refresh");
                    return Err(TokenError::RefreshRejected {
                        open_id: open_id.to_owned(),
                        source: err,
                    }
                    .into());
                }
            }
            attempt += 1;
        }
    }

    /// TikTok refused the refresh token `used` had. Unless the stored
    /// tokens (or tokens kept in the table) hold another one by now, the
    /// grant is gone: the account is marked. Returns the newer tokens.
    async fn after_refused(
        &self,
        open_id: &str,
        used: &StoredTokens,
        hold: &mut Hold<'_>,
        err: &TikTokError,
    ) -> Result<StoredTokens, Halt> {
        for look in 0..SETTLE_LOOKS {
            if look > 0 {
                tokio::time::sleep(self.settings.poll_delay()).await;
            }
            // A lease that passed to someone else: theirs is the result.
            self.keep_lease(open_id, hold, Duration::ZERO).await?;
            let latest = self.load_under_lease(open_id, hold).await?;
            if latest.refresh_token != used.refresh_token {
                return Ok(latest);
            }
        }
        tracing::warn!(
            open_id,
            code = err.code_str(),
            "TikTok refused the stored refresh token; the account needs a reconnect"
        );
        let reason = format!("TikTok answered {} to the token refresh", err.code_str());
        Err(self.mark_needs_reconnect(open_id, &reason).await.into())
    }

    /// The secret's tokens; tokens kept in the table after a failed save
    /// win when they are newer, and are moved into the secret.
    async fn load_under_lease(
        &self,
        open_id: &str,
        hold: &mut Hold<'_>,
    ) -> Result<StoredTokens, Halt> {
        let stored = self.load_required(open_id).await?;
        let kept = match self.pending.get(open_id).await {
            Ok(Some(kept)) => kept,
            Ok(None) => return Ok(stored),
            Err(err) => {
                tracing::warn!(open_id, error = %err, "could not look for kept tokens");
                return Ok(stored);
            }
        };
        if kept.updated_at <= stored.updated_at || kept.refresh_token == stored.refresh_token {
            // The secret has them or newer ones.
            self.pending.clear(open_id, kept.updated_at).await;
            return Ok(stored);
        }
        self.keep_lease(open_id, hold, Duration::ZERO).await?;
        match self.store.save(&kept).await {
            Ok(()) => {
                tracing::info!(open_id, "kept tokens moved into the secret");
                self.pending.clear(open_id, kept.updated_at).await;
            }
            Err(err) => {
                tracing::warn!(open_id, error = %err, "kept tokens still cannot be saved in the secret; using them");
            }
        }
        Ok(kept)
    }

    /// Saves rotated tokens: only under a lease that is still ours, tried
    /// again for [`RefreshSettings::save_budget`]; then (or when the lease
    /// was lost) kept in the table, where the next holder finds them.
    async fn save_rotated(&self, tokens: &StoredTokens, hold: &mut Hold<'_>) -> Result<(), Halt> {
        let open_id = tokens.open_id.as_str();
        let started = Instant::now();
        let mut attempt = 0;
        let failure = loop {
            match self.keep_lease(open_id, hold, Duration::ZERO).await {
                Ok(()) => {}
                Err(Halt::LeaseLost) => {
                    let alias = self.alias_of(open_id).await;
                    tracing::error!(
                        open_id,
                        alias,
                        "the refresh lease was lost before the save; the rotated token is not written to the secret"
                    );
                    self.keep_in_table(tokens, &alias).await;
                    return Err(Halt::LeaseLost);
                }
                Err(Halt::Failed(err)) => break err,
            }
            match self.store.save(tokens).await {
                Ok(()) => return Ok(()),
                Err(err) if err.is_retryable() => {
                    let delay = self.settings.retry_delay(attempt, None);
                    if started.elapsed() + delay >= self.settings.save_budget {
                        break err;
                    }
                    tracing::warn!(open_id, attempt, error = %err, "saving refreshed tokens failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => break err,
            }
        };
        let alias = self.alias_of(open_id).await;
        tracing::error!(open_id, alias, error = %failure, "the rotated TikTok tokens could not be saved in their secret");
        if self.keep_in_table(tokens, &alias).await {
            // The tokens work and the next holder finds them.
            Ok(())
        } else {
            Err(failure.into())
        }
    }

    /// Keeps rotated tokens in the table; `false` when that failed too.
    async fn keep_in_table(&self, tokens: &StoredTokens, alias: &str) -> bool {
        let open_id = tokens.open_id.as_str();
        match self.pending.keep(tokens).await {
            Ok(()) => {
                tracing::warn!(
                    open_id,
                    alias,
                    "rotated tokens kept in the table; the next refresh moves them into the secret"
                );
                true
            }
            Err(err) => {
                tracing::error!(open_id, alias, error = %err, "the rotated TikTok tokens are lost: neither the secret nor the table took them; the account will need a reconnect once its access token expires");
                false
            }
        }
    }

    /// Renews the lease, on the condition that it is still ours. A table
    /// error is survived while the lease is surely ours for `needed` more.
    async fn keep_lease(
        &self,
        open_id: &str,
        hold: &mut Hold<'_>,
        needed: Duration,
    ) -> Result<(), Halt> {
        let ttl = self.settings.lease();
        let asked = Instant::now();
        match self
            .leases
            .renew(hold.name, hold.holder, ttl, self.clock.now())
            .await
        {
            Ok(true) => {
                hold.until = asked + ttl;
                Ok(())
            }
            Ok(false) => {
                tracing::warn!(open_id, "token lease passed to another holder");
                Err(Halt::LeaseLost)
            }
            Err(err) if Instant::now() + needed < hold.until => {
                tracing::warn!(open_id, error = %err, "could not renew the token lease; it is still ours for a while");
                Ok(())
            }
            Err(err) => Err(store_error(open_id, err.to_string()).into()),
        }
    }

    /// An account already marked `needs_reconnect` (by a refused refresh,
    /// a refused scope, the creator removing the app) is not refreshed: the
    /// refresh token is not spent on a grant known to be gone.
    async fn check_still_connected(&self, open_id: &str) -> Result<(), TokenError> {
        match self.accounts.get(open_id).await {
            Ok(Some(account)) if account.state == AccountState::NeedsReconnect => {
                Err(TokenError::NeedsReconnect {
                    open_id: open_id.to_owned(),
                    reason: account
                        .state_reason
                        .unwrap_or_else(|| "the account is marked needs_reconnect".into()),
                })
            }
            Ok(_) => Ok(()),
            Err(err) => {
                tracing::warn!(open_id, error = %err, "could not read the account before a refresh");
                Ok(())
            }
        }
    }

    /// Copies the new expiry times onto the account item, which the sweep
    /// reads instead of every secret. Best effort: the secret is the truth,
    /// and a stale copy only makes the sweep open a secret it did not need.
    pub(super) async fn record_expiry(&self, tokens: &StoredTokens) {
        if let Err(err) = self
            .accounts
            .record_token_expiry(
                &tokens.open_id,
                tokens.access_expires_at,
                tokens.refresh_expires_at,
            )
            .await
        {
            tracing::warn!(open_id = %tokens.open_id, error = %err, "could not record token expiry on the account");
        }
    }

    /// Marks the account item (never the secret, whose tokens a concurrent
    /// login or refresh may be writing) and returns the error for the
    /// caller.
    pub(super) async fn mark_needs_reconnect(&self, open_id: &str, reason: &str) -> TokenError {
        match self.accounts.mark_needs_reconnect(open_id, reason).await {
            Ok(Some(_)) => {}
            Ok(None) => tracing::debug!(open_id, "no active account item to mark"),
            Err(err) => {
                tracing::error!(open_id, error = %err, "could not mark the account needs_reconnect");
            }
        }
        TokenError::NeedsReconnect {
            open_id: open_id.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// The account's alias, for an operator reading an error.
    async fn alias_of(&self, open_id: &str) -> String {
        match self.accounts.get(open_id).await {
            Ok(Some(account)) => account.alias.unwrap_or_default(),
            _ => String::new(),
        }
    }
}

fn unavailable(open_id: &str, source: TikTokError) -> Halt {
    Halt::Failed(TokenError::RefreshUnavailable {
        open_id: open_id.to_owned(),
        source,
    })
}
