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

use super::pending::PendingTokens;
use super::refresh::{Halt, Hold};
use super::{StoredTokens, TokenError, TokenStore};
use crate::accounts::Accounts;
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::lease::LeaseTable;
use crate::secret::Secret;
use crate::tiktok::TikTokClient;
use crate::tiktok::oauth::TokenResponse;

/// Timings of refreshes and leases.
///
/// The refresh lease must outlive the longest refresh it covers: the token
/// call is bounded by [`Self::refresh_call_timeout`], the save of what it
/// returned by [`Self::save_budget`], and the lease is renewed (on the
/// condition that it is still ours) before every call and every save, so a
/// lease of [`Self::lease`] always covers the step that follows.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Refresh before use when this much or less is left (default 10 min).
    pub margin: Duration,
    /// How long a lease lasts unless renewed. [`Self::lease`] raises it to
    /// cover one token call plus the save, with a margin.
    pub lease_ttl: Duration,
    /// The most one token call to TikTok may take (its own timeout, not
    /// the HTTP client's).
    pub refresh_call_timeout: Duration,
    /// How long the save of a rotated token is retried in the secret
    /// before it is kept in the table instead (see `pending`).
    pub save_budget: Duration,
    /// How long a caller waits for another invocation's refresh (or for a
    /// dead holder's lease to expire) before giving up with
    /// [`TokenError::Busy`]. At least one lease, so that a waiter outlasts
    /// a slow holder.
    pub wait_deadline: Duration,
    /// Mean pause between looks at the secret while waiting (jittered ±50 %).
    pub poll_interval: Duration,
    /// Attempts at a refresh that fails for a passing reason.
    pub refresh_attempts: u32,
    /// The wait between those attempts ([`crate::backoff`]); a
    /// `Retry-After` from TikTok is obeyed up to the backoff's cap.
    pub retry: Backoff,
}

/// What a lease keeps beyond one token call and one save.
const LEASE_MARGIN: Duration = Duration::from_secs(15);

impl Default for RefreshSettings {
    fn default() -> Self {
        let refresh_call_timeout = Duration::from_secs(40);
        let save_budget = Duration::from_secs(20);
        let lease_ttl = refresh_call_timeout + save_budget + LEASE_MARGIN;
        Self {
            margin: Duration::from_secs(600),
            lease_ttl,
            refresh_call_timeout,
            save_budget,
            wait_deadline: lease_ttl + LEASE_MARGIN,
            poll_interval: Duration::from_millis(250),
            refresh_attempts: 4,
            retry: Backoff::new(Duration::from_millis(300), Duration::from_secs(5)),
        }
    }
}

impl RefreshSettings {
    /// The lease a holder takes and renews: never shorter than one token
    /// call plus the save, with a margin, whatever `lease_ttl` says.
    pub fn lease(&self) -> Duration {
        self.lease_ttl
            .max(self.refresh_call_timeout + self.save_budget + LEASE_MARGIN / 3)
    }

    pub(super) fn retry_delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let cap = self.retry.cap.max(self.retry.base);
        self.retry.or_asked(attempt, asked, cap)
    }

    pub(super) fn poll_delay(&self) -> Duration {
        self.poll_interval.mul_f64(0.5 + rand::random::<f64>())
    }
}

/// An access token that has more than the margin left.
#[derive(Debug, Clone)]
pub struct FreshToken {
    /// The TikTok account the token is for.
    pub open_id: String,
    /// The bearer token for TikTok's API calls.
    pub access_token: Secret,
    /// When TikTok stops taking it.
    pub expires_at: DateTime<Utc>,
    /// What the creator granted the app, as last stored.
    pub scopes: Vec<String>,
    /// True when this call (not another invocation) refreshed it.
    pub refreshed_here: bool,
}

/// What [`TokenManager::refresh_if_expiring_within`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// More than the window was left; nothing was done.
    StillFresh {
        /// When the stored access token expires.
        access_expires_at: DateTime<Utc>,
    },
    /// This call refreshed the tokens.
    Refreshed {
        /// When the new access token expires.
        access_expires_at: DateTime<Utc>,
    },
    /// Another invocation refreshed them meanwhile.
    RefreshedElsewhere {
        /// When the access token it stored expires.
        access_expires_at: DateTime<Utc>,
    },
}

/// Hands out fresh access tokens and refreshes them safely.
#[derive(Debug, Clone)]
pub struct TokenManager<S> {
    pub(super) store: S,
    pub(super) tiktok: TikTokClient,
    /// The account items (expiry copies, the needs_reconnect mark).
    pub(super) accounts: Accounts,
    /// Rotated tokens the secret would not take.
    pub(super) pending: PendingTokens,
    pub(super) leases: LeaseTable,
    pub(super) settings: RefreshSettings,
    pub(super) clock: Clock,
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
            accounts: Accounts::new(dynamodb.clone(), &table),
            pending: PendingTokens::new(dynamodb, &table),
            settings: RefreshSettings::default(),
            clock: Clock::system(),
            in_flight: Arc::new(watch::channel(0).0),
        }
    }

    /// With other refresh margins, waits and retries than the defaults.
    pub fn with_settings(mut self, settings: RefreshSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Judges expiries by `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Where the tokens are kept.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The clock expiries are judged by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The refresh margins, waits and retries in use.
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
                .try_acquire(&lease, &holder, self.settings.lease(), self.clock.now())
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
        let need = Need::Window(self.settings.margin);
        let (tokens, outcome) = self.ensure(open_id, need).await?;
        Ok(FreshToken::new(tokens, outcome))
    }

    /// TikTok refused `rejected` (`access_token_invalid`, HTTP 401) before
    /// its stored expiry: a new access token, refreshed under the lease
    /// whatever that expiry says. When another caller has replaced the
    /// rejected token already, its replacement is used and TikTok is not
    /// asked again (many callers refused one token make one refresh).
    pub async fn replace_rejected_token(
        &self,
        open_id: &str,
        rejected: &Secret,
    ) -> Result<FreshToken, TokenError> {
        let (tokens, outcome) = self
            .ensure(open_id, Need::Replace(rejected.clone()))
            .await?;
        Ok(FreshToken::new(tokens, outcome))
    }

    /// For the scheduled sweep: refreshes when `window` or less is left of the
    /// access token, with the same lease as [`Self::get_fresh_token`].
    pub async fn refresh_if_expiring_within(
        &self,
        open_id: &str,
        window: Duration,
    ) -> Result<RefreshOutcome, TokenError> {
        self.ensure(open_id, Need::Window(window))
            .await
            .map(|(_, outcome)| outcome)
    }

    async fn ensure(
        &self,
        open_id: &str,
        need: Need,
    ) -> Result<(StoredTokens, RefreshOutcome), TokenError> {
        super::check_open_id(open_id)?;
        let started = Instant::now();
        let lease = lease_name(open_id);
        let mut waited = false;
        loop {
            let last_blip = match self.attempt(open_id, &need, &lease, waited).await {
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

    /// One look: good enough, or refresh under the lease if it is free.
    async fn attempt(&self, open_id: &str, need: &Need, lease: &str, waited: bool) -> Look {
        let current = match self.load_required(open_id).await {
            Ok(tokens) => tokens,
            Err(err) if err.is_retryable() => return Look::StoreBlip(err),
            Err(err) => return Look::Done(Err(err)),
        };
        if let Err(err) = check_not_marked(&current) {
            return Look::Done(Err(err));
        }
        if need.met_by(&current, self.clock.now()) {
            let access_expires_at = current.access_expires_at;
            let outcome = if waited || matches!(need, Need::Replace(_)) {
                RefreshOutcome::RefreshedElsewhere { access_expires_at }
            } else {
                RefreshOutcome::StillFresh { access_expires_at }
            };
            return Look::Done(Ok((current, outcome)));
        }
        let holder = LeaseTable::new_holder();
        match self
            .leases
            .try_acquire(lease, &holder, self.settings.lease(), self.clock.now())
            .await
        {
            Ok(true) => {
                tracing::debug!(open_id, holder = %holder, "token lease acquired");
                self.refresh_detached(open_id, need.clone(), lease, holder)
                    .await
            }
            Ok(false) => Look::Held,
            Err(err) => Look::StoreBlip(store_error(open_id, err.to_string())),
        }
    }

    /// Runs the refresh under the lease held by `holder` in a task of its
    /// own and waits for it. Once TikTok answers a refresh, the rotated
    /// refresh token exists only in this process until it is saved: a
    /// caller cut off by a timeout or dropped must not take the save and
    /// the lease release down with it. Dropping a `JoinHandle` does not
    /// cancel its task, so the refresh, the save and the release always run
    /// to their end; [`Self::refreshes_ended`] lets a caller that is about
    /// to be frozen wait for them.
    async fn refresh_detached(
        &self,
        open_id: &str,
        need: Need,
        lease: &str,
        holder: String,
    ) -> Look {
        let manager = self.clone();
        let in_flight = InFlight::start(&self.in_flight);
        let task_open_id = open_id.to_owned();
        let lease = lease.to_owned();
        let task = tokio::spawn(async move {
            let _in_flight = in_flight;
            let open_id = task_open_id.as_str();
            let mut hold = Hold::new(&lease, &holder, manager.settings.lease());
            let result = manager
                .refresh_holding_lease(open_id, &need, &mut hold)
                .await;
            manager.release(open_id, &lease, &holder).await;
            result
        });
        match task.await {
            Ok(Ok(done)) => Look::Done(Ok(done)),
            Ok(Err(Halt::Failed(err))) => Look::Done(Err(err)),
            // Another invocation holds the lease now: wait for its result.
            Ok(Err(Halt::LeaseLost)) => Look::Held,
            // A panic in the task, or a runtime shutting down: whatever it
            // had done is in the store or lost with the process; the lease
            // runs out by itself.
            Err(err) => {
                tracing::error!(open_id, error = %err, "the token refresh task did not finish");
                Look::Done(Err(TokenError::RefreshInterrupted {
                    open_id: open_id.to_owned(),
                    detail: if err.is_panic() {
                        "the refresh task panicked".into()
                    } else {
                        "the refresh task was cancelled".into()
                    },
                }))
            }
        }
    }

    /// Waits until no refresh started by this manager (or a clone of it) is
    /// still running, or until `deadline`. `true` when none is.
    pub async fn refreshes_settled(&self, deadline: tokio::time::Instant) -> bool {
        tokio::time::timeout_at(deadline, self.refreshes_ended())
            .await
            .is_ok()
    }

    /// Waits until no refresh started by this manager (or a clone of it) is
    /// still running, however long that takes: each is bounded by its token
    /// call's timeout and its save budget. For a caller about to end its
    /// invocation (a Lambda is frozen when its handler returns, and a
    /// refresh frozen between TikTok's answer and the save would lose the
    /// rotated refresh token).
    pub async fn refreshes_ended(&self) {
        let mut running = self.in_flight.subscribe();
        // An error means the sender is gone, and with it every refresh.
        let _ = running.wait_for(|n| *n == 0).await;
    }

    pub(super) async fn load_required(&self, open_id: &str) -> Result<StoredTokens, TokenError> {
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

impl FreshToken {
    fn new(tokens: StoredTokens, outcome: RefreshOutcome) -> Self {
        Self {
            open_id: tokens.open_id,
            access_token: tokens.access_token,
            expires_at: tokens.access_expires_at,
            scopes: tokens.scopes,
            refreshed_here: matches!(outcome, RefreshOutcome::Refreshed { .. }),
        }
    }
}

/// What a caller needs of the stored tokens.
#[derive(Debug, Clone)]
pub(super) enum Need {
    /// More than this left of the access token.
    Window(Duration),
    /// Any live access token but this one, which TikTok refused.
    Replace(Secret),
}

impl Need {
    /// Whether `tokens` give what is needed at `now`, without a refresh.
    pub(super) fn met_by(&self, tokens: &StoredTokens, now: DateTime<Utc>) -> bool {
        match self {
            Self::Window(window) => !tokens.needs_refresh(now, *window),
            Self::Replace(rejected) => {
                tokens.access_token != *rejected && !tokens.needs_refresh(now, Duration::ZERO)
            }
        }
    }
}

/// The result of one look in [`TokenManager::ensure`].
enum Look {
    Done(Result<(StoredTokens, RefreshOutcome), TokenError>),
    /// Someone else holds the lease.
    Held,
    /// A passing store or lease-table failure.
    StoreBlip(TokenError),
}

pub(super) fn check_not_marked(tokens: &StoredTokens) -> Result<(), TokenError> {
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

pub(super) fn store_error(open_id: &str, detail: String) -> TokenError {
    TokenError::Store {
        open_id: open_id.to_owned(),
        detail,
    }
}

pub(super) fn millis(d: Duration) -> u64 {
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
    fn the_lease_outlives_one_token_call_and_its_save() {
        let s = RefreshSettings::default();
        assert!(s.lease() > s.refresh_call_timeout + s.save_budget);
        assert!(s.wait_deadline > s.lease(), "a waiter outlasts a holder");
        // A short configured lease is raised, never trusted.
        let short = RefreshSettings {
            lease_ttl: Duration::from_secs(1),
            ..RefreshSettings::default()
        };
        assert!(short.lease() > short.refresh_call_timeout + short.save_budget);
    }

    fn tokens(access: &str, expires_in: i64, now: DateTime<Utc>) -> StoredTokens {
        StoredTokens {
            open_id: "o1".into(),
            access_token: Secret::new(access),
            access_expires_at: now + chrono::TimeDelta::seconds(expires_in),
            refresh_token: Secret::new("rft"),
            refresh_expires_at: None,
            scopes: Vec::new(),
            updated_at: now,
            reconnect_required_at: None,
        }
    }

    #[test]
    fn what_is_needed_of_the_stored_tokens() {
        let now = Utc::now();
        let window = Need::Window(Duration::from_secs(600));
        assert!(window.met_by(&tokens("a", 3600, now), now));
        assert!(!window.met_by(&tokens("a", 600, now), now));
        // A refused token is replaced whatever its stored expiry says...
        let replace = Need::Replace(Secret::new("a"));
        assert!(!replace.met_by(&tokens("a", 3600, now), now));
        // ...by any other live one (another caller's replacement).
        assert!(replace.met_by(&tokens("b", 3600, now), now));
        assert!(!replace.met_by(&tokens("b", 0, now), now));
    }

    #[test]
    fn lease_names_are_per_account() {
        assert_eq!(LeaseTable::lease_pk(&lease_name("o1")), "LEASE#tokens#o1");
    }
}
