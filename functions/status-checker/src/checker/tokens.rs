//! The token sweep: access tokens refreshed before they would expire in a
//! later run, operators told about refresh tokens that expire soon; and the
//! warm cache of access tokens the status checks use.

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt as _};
use shared::accounts::{Account, AccountState};
use shared::tokens::{FreshToken, RefreshOutcome, TokenError};
use tokio::time::timeout_at;

use super::{Checker, Run};

/// A token older than this margin before its expiry is fetched again.
const TOKEN_CACHE_MARGIN: TimeDelta = TimeDelta::minutes(10);

/// Concurrent refreshes in the sweep (each is one lease, one secret read,
/// maybe one TikTok call).
const SWEEP_CONCURRENCY: usize = 8;

impl Checker {
    /// Refreshes access tokens that would expire before the run after next,
    /// and flags accounts whose refresh token expires within 7 days. Reads
    /// only account items; a secret is opened only when a refresh is due.
    pub(super) async fn sweep(&self, accounts: &[Account], run: &Run) {
        let now = self.clock.now();
        let window = self.settings.refresh_window();
        let window_delta = TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX);
        stream::iter(accounts.iter().filter(|a| a.state == AccountState::Active))
            .for_each_concurrent(SWEEP_CONCURRENCY, |account| async move {
                if run.past_stop() {
                    run.bump(|r| r.stopped_early = true);
                    return;
                }
                let open_id = account.open_id.as_str();
                let due = account
                    .access_expires_at
                    .is_none_or(|at| at - now <= window_delta);
                if due {
                    let refreshed = timeout_at(
                        run.stop_at,
                        self.tokens.refresh_if_expiring_within(open_id, window),
                    )
                    .await;
                    match refreshed {
                        Err(_) => {
                            run.bump(|r| {
                                r.stopped_early = true;
                                r.cut_off += 1;
                            });
                            return;
                        }
                        Ok(Ok(RefreshOutcome::Refreshed { .. })) => {
                            self.forget_token(open_id);
                            run.bump(|r| r.tokens_refreshed += 1);
                        }
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => {
                            // The manager has marked an account that must
                            // reconnect; a passing failure is retried next run.
                            if err.needs_reconnect() {
                                run.account_lost(open_id);
                            }
                            tracing::warn!(open_id, alias = account.alias.as_deref(), error = %err, "token refresh failed");
                            run.bump(|r| r.token_failures += 1);
                        }
                    }
                }
                self.check_refresh_expiry(account, now, run).await;
            })
            .await;
    }

    async fn check_refresh_expiry(&self, account: &Account, now: DateTime<Utc>, run: &Run) {
        let open_id = account.open_id.as_str();
        let alias = account.alias.as_deref().unwrap_or(open_id);
        let note = match account.refresh_expires_at {
            Some(at) if at - now <= self.settings.refresh_warning => {
                tracing::warn!(
                    open_id,
                    alias,
                    refresh_expires_at = %at,
                    "refresh token expires within 7 days; the creator must log in again"
                );
                run.bump(|r| r.refresh_expiring_soon += 1);
                Some(format!(
                    "TikTok authorization expires at {}: the creator must log in again before then (tiktok-drafts invite --account {alias})",
                    at.format("%Y-%m-%d %H:%M UTC")
                ))
            }
            _ => None,
        };
        if note.is_none() && account.attention.is_none() {
            return;
        }
        if let Err(err) = self.accounts.set_attention(open_id, note.as_deref()).await {
            tracing::warn!(open_id, error = %err, "could not record the account note");
        }
    }

    /// The account's access token, from the warm cache while it has more
    /// than ten minutes left.
    pub(super) async fn token(&self, open_id: &str) -> Result<FreshToken, TokenError> {
        let now = self.clock.now();
        if let Ok(cache) = self.token_cache.lock()
            && let Some(token) = cache.get(open_id)
            && token.expires_at - now > TOKEN_CACHE_MARGIN
        {
            return Ok(token.clone());
        }
        let token = self.tokens.get_fresh_token(open_id).await?;
        self.remember_token(&token);
        Ok(token)
    }

    /// Keeps `token` for the account's next requests (a token refreshed
    /// because TikTok refused the cached one replaces it).
    pub(super) fn remember_token(&self, token: &FreshToken) {
        if let Ok(mut cache) = self.token_cache.lock() {
            cache.insert(token.open_id.clone(), token.clone());
        }
    }

    pub(super) fn forget_token(&self, open_id: &str) {
        if let Ok(mut cache) = self.token_cache.lock() {
            cache.remove(open_id);
        }
    }
}
