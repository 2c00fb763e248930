//! Fresh access tokens on demand, refreshed by one invocation at a time.
//!
//! The refresh token rotates: whoever spends it must store the new one, and
//! anyone else spending the old one afterwards gets `invalid_grant`. So a
//! refresh happens only under a lease (`LEASE#tokens#<open_id>` in the shared
//! table); the holder re-reads the secret first (another holder may have
//! refreshed already), and callers that lose the race poll the secret until
//! the winner's tokens appear. A holder that dies leaves a lease that expires
//! within [`RefreshSettings::lease_ttl`], and the next caller takes over.
//! The holder's refresh runs in a task of its own: a caller dropped or timed
//! out mid-refresh does not take the save of the rotated token with it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{StoredTokens, TokenError, TokenStore};
use crate::accounts::{AccountError, AccountState};
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::lease::LeaseTable;
use crate::secret::Secret;
use crate::tiktok::oauth::TokenResponse;
use crate::tiktok::{ErrorClass, TikTokClient, TikTokError};

/// Timings of refreshes and leases.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Refresh before use when this much or less is left (default 10 min).
    pub margin: Duration,
    /// How long a lease lasts unless renewed. Longer than one refresh call
    /// takes; renewed before every retry.
    pub lease_ttl: Duration,
    /// How long a caller waits for another invocation's refresh (or for a
    /// dead holder's lease to expire) before giving up with
    /// [`TokenError::Busy`].
    pub wait_deadline: Duration,
    /// Mean pause between looks at the secret while waiting (jittered ±50 %).
    pub poll_interval: Duration,
    /// Attempts at a refresh that fails for a passing reason.
    pub refresh_attempts: u32,
    /// The wait between those attempts ([`crate::backoff`]); a
    /// `Retry-After` from TikTok is obeyed up to the backoff's cap.
    pub retry: Backoff,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(600),
            lease_ttl: Duration::from_secs(30),
            wait_deadline: Duration::from_secs(40),
            poll_interval: Duration::from_millis(250),
            refresh_attempts: 4,
            retry: Backoff::new(Duration::from_millis(300), Duration::from_secs(5)),
        }
    }
}

impl RefreshSettings {
    fn retry_delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let cap = self.retry.cap.max(self.retry.base);
        self.retry.or_asked(attempt, asked, cap)
    }

    fn poll_delay(&self) -> Duration {
        self.poll_interval.mul_f64(0.5 + rand::random::<f64>())
    }
}

/// An access token that has more than the margin left.
#[derive(Debug, Clone)]
pub struct FreshToken {
    pub open_id: String,
    pub access_token: Secret,
    pub expires_at: DateTime<Utc>,
    pub scopes: Vec<String>,
    /// True when this call (not another invocation) refreshed it.
    pub refreshed_here: bool,
}

/// What [`TokenManager::refresh_if_expiring_within`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// More than the window was left; nothing was done.
    StillFresh { access_expires_at: DateTime<Utc> },
    /// This call refreshed the tokens.
    Refreshed { access_expires_at: DateTime<Utc> },
    /// Another invocation refreshed them meanwhile.
    RefreshedElsewhere { access_expires_at: DateTime<Utc> },
}

/// Hands out fresh access tokens and refreshes them safely.
#[derive(Debug, Clone)]
pub struct TokenManager<S> {
    store: S,
    tiktok: TikTokClient,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    leases: LeaseTable,
    settings: RefreshSettings,
    clock: Clock,
    /// Refreshes running in their own tasks (see
    /// [`TokenManager::refresh_detached`]), shared by clones.
    in_flight: Arc<watch::Sender<usize>>,
}

/// One refresh task counted in [`TokenManager::in_flight`] until it drops.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn start(count: &Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl TokenManager<super::SecretsManagerTokenStore> {
    /// The manager a deployment uses: token secrets under `secrets_prefix`,
    /// leases in `table`, the system clock.
    pub fn for_deployment(
        aws: &crate::aws::AwsClients,
        tiktok: TikTokClient,
        secrets_prefix: &str,
        table: &str,
    ) -> Self {
        Self::new(
            super::SecretsManagerTokenStore::new(aws.secrets.clone(), secrets_prefix),
            tiktok,
            aws.dynamodb.clone(),
            table,
        )
    }
}

impl<S: TokenStore + Clone + 'static> TokenManager<S> {
    /// `table` is the shared table: leases and the account items live there.
    pub fn new(
        store: S,
        tiktok: TikTokClient,
        dynamodb: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
    ) -> Self {
        let table = table.into();
        Self {
            store,
            tiktok,
            leases: LeaseTable::new(dynamodb.clone(), table.clone()),
            dynamodb,
            table,
            settings: RefreshSettings::default(),
            clock: Clock::system(),
            in_flight: Arc::new(watch::channel(0).0),
        }
    }

    pub fn with_settings(mut self, settings: RefreshSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn settings(&self) -> &RefreshSettings {
        &self.settings
    }

    /// Stores the tokens of a code exchange (a new or renewed connection),
    /// under the account's lease so that it cannot interleave with a refresh.
    /// Clears any earlier "reconnect required" mark in the secret.
    pub async fn save_token_response(
        &self,
        answer: &TokenResponse,
    ) -> Result<StoredTokens, TokenError> {
        let open_id = answer.open_id.as_str();
        super::check_open_id(open_id)?;
        let lease = lease_name(open_id);
        let holder = LeaseTable::new_holder();
        let started = Instant::now();
        loop {
            if self
                .leases
                .try_acquire(&lease, &holder, self.settings.lease_ttl, self.clock.now())
                .await
                .map_err(|e| store_error(open_id, e.to_string()))?
            {
                break;
            }
            if started.elapsed() >= self.settings.wait_deadline {
                return Err(TokenError::Busy {
                    open_id: open_id.to_owned(),
                    waited_ms: millis(started.elapsed()),
                });
            }
            tokio::time::sleep(self.settings.poll_delay()).await;
        }
        let result = async {
            let previous = self.store.load(open_id).await?;
            let tokens = StoredTokens::from_response(previous.as_ref(), answer, self.clock.now())?;
            self.store.save(&tokens).await?;
            self.record_expiry(&tokens).await;
            tracing::info!(
                open_id,
                access_expires_at = %tokens.access_expires_at,
                scopes = %tokens.scopes.join(","),
                "tokens stored"
            );
            Ok(tokens)
        }
        .await;
        self.release(open_id, &lease, &holder).await;
        result
    }

    /// An access token with more than [`RefreshSettings::margin`] left,
    /// refreshed first when needed.
    pub async fn get_fresh_token(&self, open_id: &str) -> Result<FreshToken, TokenError> {
        let (tokens, outcome) = self.ensure_fresh(open_id, self.settings.margin).await?;
        Ok(FreshToken {
            open_id: tokens.open_id,
            access_token: tokens.access_token,
            expires_at: tokens.access_expires_at,
            scopes: tokens.scopes,
            refreshed_here: matches!(outcome, RefreshOutcome::Refreshed { .. }),
        })
    }

    /// For the scheduled sweep: refreshes when `window` or less is left of the
    /// access token, with the same lease as [`Self::get_fresh_token`].
    pub async fn refresh_if_expiring_within(
        &self,
        open_id: &str,
        window: Duration,
    ) -> Result<RefreshOutcome, TokenError> {
        self.ensure_fresh(open_id, window)
            .await
            .map(|(_, outcome)| outcome)
    }

    async fn ensure_fresh(
        &self,
        open_id: &str,
        window: Duration,
    ) -> Result<(StoredTokens, RefreshOutcome), TokenError> {
        super::check_open_id(open_id)?;
        let started = Instant::now();
        let lease = lease_name(open_id);
        let mut waited = false;
        loop {
            let last_blip = match self.attempt(open_id, window, &lease, waited).await {
                Look::Done(result) => return result,
                Look::Held => None,
                // Only while waiting: a first look that fails (a missing
                // permission, say) is reported at once.
                Look::StoreBlip(err) if waited => {
                    tracing::warn!(open_id, error = %err, "token store unavailable while waiting; looking again");
                    Some(err)
                }
                Look::StoreBlip(err) => return Err(err),
            };
            let elapsed = started.elapsed();
            if elapsed >= self.settings.wait_deadline {
                if let Some(err) = last_blip {
                    return Err(err);
                }
                tracing::warn!(
                    open_id,
                    waited_ms = millis(elapsed),
                    "gave up waiting for another token refresh"
                );
                return Err(TokenError::Busy {
                    open_id: open_id.to_owned(),
                    waited_ms: millis(elapsed),
                });
            }
            if !waited {
                tracing::debug!(open_id, "another invocation is refreshing; waiting for it");
            }
            waited = true;
            let pause = self
                .settings
                .poll_delay()
                .min(self.settings.wait_deadline.saturating_sub(elapsed))
                .max(Duration::from_millis(10));
            tokio::time::sleep(pause).await;
        }
    }

    /// One look: fresh enough, or refresh under the lease if it is free.
    async fn attempt(&self, open_id: &str, window: Duration, lease: &str, waited: bool) -> Look {
        let current = match self.load_required(open_id).await {
            Ok(tokens) => tokens,
            Err(err) if err.is_retryable() => return Look::StoreBlip(err),
            Err(err) => return Look::Done(Err(err)),
        };
        if let Err(err) = check_not_marked(&current) {
            return Look::Done(Err(err));
        }
        let now = self.clock.now();
        if !current.needs_refresh(now, window) {
            let access_expires_at = current.access_expires_at;
            let outcome = if waited {
                RefreshOutcome::RefreshedElsewhere { access_expires_at }
            } else {
                RefreshOutcome::StillFresh { access_expires_at }
            };
            return Look::Done(Ok((current, outcome)));
        }
        let holder = LeaseTable::new_holder();
        match self
            .leases
            .try_acquire(lease, &holder, self.settings.lease_ttl, now)
            .await
        {
            Ok(true) => {
                tracing::debug!(open_id, holder = %holder, "token lease acquired");
                Look::Done(self.refresh_detached(open_id, window, lease, holder).await)
            }
            Ok(false) => Look::Held,
            Err(err) => Look::StoreBlip(store_error(open_id, err.to_string())),
        }
    }

    /// Runs the refresh under the lease held by `holder` in a task of its
    /// own and waits for it. Once TikTok answers a refresh, the rotated
    /// refresh token exists only in this process until it is saved: a
    /// caller cut off by a timeout (the checker's stop instant) or dropped
    /// must not take the save and the lease release down with it. Dropping
    /// a `JoinHandle` does not cancel its task, so the refresh, the save and
    /// the release always run to their end; [`Self::refreshes_settled`]
    /// lets a caller that is about to be frozen wait for them.
    async fn refresh_detached(
        &self,
        open_id: &str,
        window: Duration,
        lease: &str,
        holder: String,
    ) -> Result<(StoredTokens, RefreshOutcome), TokenError> {
        let manager = self.clone();
        let in_flight = InFlight::start(&self.in_flight);
        let (task_open_id, lease) = (open_id.to_owned(), lease.to_owned());
        let task = tokio::spawn(async move {
            let _in_flight = in_flight;
            let open_id = task_open_id.as_str();
            let result = manager
                .refresh_holding_lease(open_id, window, &lease, &holder)
                .await;
            manager.release(open_id, &lease, &holder).await;
            result
        });
        match task.await {
            Ok(result) => result,
            // A panic in the task, or a runtime shutting down: whatever it
            // had done is in the store or lost with the process; the lease
            // runs out by itself.
            Err(err) => {
                tracing::error!(open_id, error = %err, "the token refresh task did not finish");
                Err(TokenError::RefreshInterrupted {
                    open_id: open_id.to_owned(),
                    detail: if err.is_panic() {
                        "the refresh task panicked".into()
                    } else {
                        "the refresh task was cancelled".into()
                    },
                })
            }
        }
    }

    /// Waits until no refresh started by this manager (or a clone of it) is
    /// still running, or until `deadline`. `true` when none is. For a
    /// caller that is about to end its invocation (a Lambda is frozen when
    /// its handler returns, and a refresh frozen between TikTok's answer and
    /// the save would lose the rotated refresh token).
    pub async fn refreshes_settled(&self, deadline: tokio::time::Instant) -> bool {
        let mut running = self.in_flight.subscribe();
        tokio::time::timeout_at(deadline, running.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|seen| seen.is_ok())
    }

    async fn refresh_holding_lease(
        &self,
        open_id: &str,
        window: Duration,
        lease: &str,
        holder: &str,
    ) -> Result<(StoredTokens, RefreshOutcome), TokenError> {
        // Another holder may have refreshed between our read and the lease.
        let current = self.load_required(open_id).await?;
        check_not_marked(&current)?;
        let now = self.clock.now();
        if !current.needs_refresh(now, window) {
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
                .mark_needs_reconnect(current, "the refresh token expired")
                .await);
        }
        let mut attempt: u32 = 0;
        loop {
            tracing::debug!(open_id, attempt, "refreshing the access token");
            match self.tiktok.refresh_token(&current.refresh_token).await {
                Ok(answer) => {
                    let tokens =
                        StoredTokens::from_response(Some(&current), &answer, self.clock.now())?;
                    self.save_after_refresh(&tokens).await?;
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
                Err(err) => match err.class() {
                    ErrorClass::Retryable
                        if attempt + 1 < self.settings.refresh_attempts.max(1) =>
                    {
                        let delay = self.settings.retry_delay(attempt, err.retry_after());
                        tracing::warn!(
                            open_id,
                            attempt,
                            error = %err,
                            delay_ms = millis(delay),
                            "token refresh failed for a passing reason; retrying"
                        );
                        tokio::time::sleep(delay).await;
                        // Keep the lease for the next attempt; a lost lease
                        // means someone else took over and may have
                        // spent the refresh token: stop.
                        let renewed = self
                            .leases
                            .renew(lease, holder, self.settings.lease_ttl, self.clock.now())
                            .await
                            .map_err(|e| store_error(open_id, e.to_string()))?;
                        if !renewed {
                            tracing::warn!(open_id, "token lease lost while retrying");
                            return Err(TokenError::RefreshUnavailable {
                                open_id: open_id.to_owned(),
                                source: err,
                            });
                        }
                        attempt += 1;
                    }
                    ErrorClass::Retryable => {
                        tracing::warn!(open_id, attempt, error = %err, "token refresh failed; giving up for now");
                        return Err(TokenError::RefreshUnavailable {
                            open_id: open_id.to_owned(),
                            source: err,
                        });
                    }
                    ErrorClass::NeedsReauthorization => {
                        return self.on_refused(open_id, window, &current, err).await;
                    }
                    ErrorClass::NeedsRefresh | ErrorClass::CapReached | ErrorClass::Permanent => {
                        tracing::error!(open_id, error = %err, "TikTok rejected the token refresh");
                        return Err(TokenError::RefreshRejected {
                            open_id: open_id.to_owned(),
                            source: err,
                        });
                    }
                },
            }
        }
    }

    /// TikTok refused the refresh token. Unless someone else rotated it in
    /// the meantime (a lease lost to a slow call), the grant is gone.
    async fn on_refused(
        &self,
        open_id: &str,
        window: Duration,
        used: &StoredTokens,
        err: TikTokError,
    ) -> Result<(StoredTokens, RefreshOutcome), TokenError> {
        let latest = self.load_required(open_id).await?;
        if latest.refresh_token != used.refresh_token {
            if !latest.needs_refresh(self.clock.now(), window) {
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
            return Err(TokenError::RefreshUnavailable {
                open_id: open_id.to_owned(),
                source: err,
            });
        }
        tracing::warn!(
            open_id,
            code = err.code_str(),
            "TikTok refused the refresh token; the account needs a reconnect"
        );
        let reason = format!("TikTok answered {} to the token refresh", err.code_str());
        Err(self.mark_needs_reconnect(latest, &reason).await)
    }

    /// Copies the new expiry times onto the account item, which the sweep
    /// reads instead of every secret. Best effort: the secret is the truth,
    /// and a stale copy only makes the sweep open a secret it did not need.
    async fn record_expiry(&self, tokens: &StoredTokens) {
        let accounts = crate::accounts::Accounts::new(self.dynamodb.clone(), &self.table);
        if let Err(err) = accounts
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

    /// Marks the secret (no more refresh attempts) and the account item,
    /// and returns the error for the caller.
    async fn mark_needs_reconnect(&self, mut tokens: StoredTokens, reason: &str) -> TokenError {
        let open_id = tokens.open_id.clone();
        let now = self.clock.now();
        tokens.reconnect_required_at = Some(now);
        tokens.updated_at = now;
        if let Err(err) = self.store.save(&tokens).await {
            tracing::warn!(open_id = %open_id, error = %err, "could not mark the token secret");
        }
        // The account item has one writer, `Accounts`; the sweep and the
        // CLI read its state from there.
        let accounts = crate::accounts::Accounts::new(self.dynamodb.clone(), &self.table);
        match accounts
            .set_state(&open_id, AccountState::NeedsReconnect, Some(reason))
            .await
        {
            Ok(_) => tracing::info!(open_id = %open_id, reason, "account marked needs_reconnect"),
            Err(AccountError::NotFound { .. }) => {
                tracing::debug!(open_id = %open_id, "no account item to mark");
            }
            Err(err) => {
                tracing::error!(open_id = %open_id, error = %err, "could not mark the account needs_reconnect");
            }
        }
        TokenError::NeedsReconnect {
            open_id,
            reason: reason.to_owned(),
        }
    }

    /// The new refresh token exists only in memory until this succeeds:
    /// try hard.
    async fn save_after_refresh(&self, tokens: &StoredTokens) -> Result<(), TokenError> {
        let mut attempt = 0;
        loop {
            match self.store.save(tokens).await {
                Ok(()) => return Ok(()),
                Err(err) if err.is_retryable() && attempt + 1 < 4 => {
                    tracing::warn!(open_id = %tokens.open_id, attempt, error = %err, "saving refreshed tokens failed; retrying");
                    tokio::time::sleep(self.settings.retry_delay(attempt, None)).await;
                    attempt += 1;
                }
                Err(err) => {
                    tracing::error!(open_id = %tokens.open_id, error = %err, "refreshed tokens could not be saved; the account may need a reconnect");
                    return Err(err);
                }
            }
        }
    }

    async fn load_required(&self, open_id: &str) -> Result<StoredTokens, TokenError> {
        if let Some(tokens) = self.store.load(open_id).await? {
            return Ok(tokens);
        }
        // Look once more before concluding: a reader that catches a
        // concurrent write half way (local stand-ins of Secrets Manager move
        // the AWSCURRENT label in two steps) must not report a connected
        // account as unknown.
        tokio::time::sleep(self.settings.poll_delay()).await;
        self.store
            .load(open_id)
            .await?
            .ok_or_else(|| TokenError::NotConnected {
                open_id: open_id.to_owned(),
            })
    }

    async fn release(&self, open_id: &str, lease: &str, holder: &str) {
        match self.leases.release(lease, holder).await {
            Ok(true) => tracing::debug!(open_id, "token lease released"),
            Ok(false) => {
                tracing::warn!(open_id, "token lease had already passed to another holder")
            }
            // It expires by itself.
            Err(err) => tracing::warn!(open_id, error = %err, "could not release the token lease"),
        }
    }
}

/// The result of one look in [`TokenManager::ensure_fresh`].
enum Look {
    Done(Result<(StoredTokens, RefreshOutcome), TokenError>),
    /// Someone else holds the lease.
    Held,
    /// A passing store or lease-table failure.
    StoreBlip(TokenError),
}

fn check_not_marked(tokens: &StoredTokens) -> Result<(), TokenError> {
    match tokens.reconnect_required_at {
        Some(at) => Err(TokenError::NeedsReconnect {
            open_id: tokens.open_id.clone(),
            reason: format!("TikTok refused the refresh token at {}", at.to_rfc3339()),
        }),
        None => Ok(()),
    }
}

fn lease_name(open_id: &str) -> String {
    format!("tokens#{open_id}")
}

fn store_error(open_id: &str, detail: String) -> TokenError {
    TokenError::Store {
        open_id: open_id.to_owned(),
        detail,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_are_capped_and_never_zero() {
        let s = RefreshSettings::default();
        for attempt in 0..10 {
            let d = s.retry_delay(attempt, None);
            assert!(d <= s.retry.cap, "{d:?}");
            assert!(d >= s.retry.base / 2, "{d:?}");
        }
        assert_eq!(
            s.retry_delay(0, Some(Duration::from_secs(600))),
            s.retry.cap
        );
        let p = s.poll_delay();
        assert!(p >= s.poll_interval / 2 && p <= s.poll_interval * 3 / 2);
    }

    #[test]
    fn lease_names_are_per_account() {
        assert_eq!(LeaseTable::lease_pk(&lease_name("o1")), "LEASE#tokens#o1");
    }
}
