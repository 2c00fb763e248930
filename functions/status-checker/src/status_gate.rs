//! When a run may send status requests, so that TikTok's 30 requests per
//! token per sliding minute hold across runs, not only within one.
//!
//! The rule: a run sends no status request until 60 s (plus a second for
//! clock skew between invocations) after the previous run's last one. Then
//! no sliding minute contains requests from two runs, and the run's own
//! per-account sliding window ([`crate::rate_limit::PerAccountLimit`]),
//! which counts every HTTP attempt, is a true per-token limit.
//!
//! What the previous run's last request was is kept in one item
//! ([`shared::jobs::CheckerState`]). Before its first request a run records
//! its own deadline there (a run cannot send after it; if the run is killed
//! that bound stays), and at its end the time its last request finished
//! (the latest it can have reached TikTok). A run that sends nothing writes
//! nothing. With the default 5-minute schedule the gate is always open; with
//! a 1-minute schedule a run waits for it, and when it would only open after
//! the run's stop instant, the run sends no status request at all.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use shared::clock::Clock;
use shared::jobs::CheckerState;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// TikTok's window, plus a second for clocks of two invocations that differ.
pub const GAP_AFTER_PREVIOUS_RUN: TimeDelta = TimeDelta::seconds(61);

/// Why a status request may not go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The gate opens only after the run's stop instant.
    UntilNextRun,
    /// The run could not record its bound (DynamoDB refused): sending
    /// without it could break the limit for the next run.
    NotRecorded,
}

/// One run's gate.
pub struct StatusGate {
    state: CheckerState,
    clock: Clock,
    /// No status request before this.
    opens_at: Instant,
    /// The run's deadline on the wall clock: the bound recorded before the
    /// first request.
    deadline_at: DateTime<Utc>,
    /// Whether the previous run's requests were still within the gap.
    waits: bool,
    armed: OnceCell<bool>,
    /// When the latest request of this run finished (or was cut off).
    last_sent: Mutex<Option<Instant>>,
}

impl StatusGate {
    /// Reads the previous run's bound. A read that fails closes the gate for
    /// the run: nothing says sending is safe.
    pub async fn open(state: CheckerState, clock: Clock, deadline: Instant) -> (Self, bool) {
        let now = clock.now();
        let left = deadline.saturating_duration_since(Instant::now());
        let deadline_at = now + TimeDelta::from_std(left).unwrap_or(TimeDelta::zero());
        let (wait, read_ok) = match state.status_requests_until().await {
            Ok(Some(until)) => (
                (until + GAP_AFTER_PREVIOUS_RUN - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO),
                true,
            ),
            Ok(None) => (Duration::ZERO, true),
            Err(err) => {
                tracing::error!(error = %err, "cannot read when the last run sent status requests; none are sent this run");
                (left, false)
            }
        };
        let opens_at = Instant::now() + wait;
        let gate = Self {
            state,
            clock,
            opens_at,
            deadline_at,
            waits: !wait.is_zero(),
            armed: OnceCell::new(),
            last_sent: Mutex::new(None),
        };
        (gate, read_ok)
    }

    /// Waits until a request may go (if that is before `stop_at`), and
    /// makes sure the run's bound is recorded first.
    pub async fn wait_open(&self, stop_at: Instant) -> Result<(), Closed> {
        if self.opens_at >= stop_at {
            return Err(Closed::UntilNextRun);
        }
        tokio::time::sleep_until(self.opens_at).await;
        let recorded = self
            .armed
            .get_or_init(|| async {
                match self
                    .state
                    .record_status_requests_until(self.deadline_at)
                    .await
                {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::error!(error = %err, "cannot record the run's status-request bound; no status requests this run");
                        false
                    }
                }
            })
            .await;
        if *recorded {
            Ok(())
        } else {
            Err(Closed::NotRecorded)
        }
    }

    /// Marks a request as sent; dropping the mark (when the request ends,
    /// answered or cut off by the deadline) records when it ended.
    pub fn sending(&self) -> Sending<'_> {
        Sending { gate: self }
    }

    /// Whether the run has to wait for the previous one's requests to be a
    /// minute old.
    pub fn waits(&self) -> bool {
        self.waits
    }

    /// At the end of the run: records when its last request ended, if it
    /// sent any. Returns that instant on the wall clock.
    pub async fn close(&self) -> Option<DateTime<Utc>> {
        let last = self.last_sent.lock().ok().and_then(|l| *l)?;
        let ago = Instant::now().saturating_duration_since(last);
        let at = self.clock.now() - TimeDelta::from_std(ago).unwrap_or(TimeDelta::zero());
        if let Err(err) = self.state.record_status_requests_until(at).await {
            // The deadline bound recorded before the first request stays:
            // later than needed, never too early.
            tracing::warn!(error = %err, "cannot record the run's last status request");
        }
        Some(at)
    }
}

/// A status request in flight.
pub struct Sending<'a> {
    gate: &'a StatusGate,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if let Ok(mut last) = self.gate.last_sent.lock() {
            let now = Instant::now();
            if last.is_none_or(|l| l < now) {
                *last = Some(now);
            }
        }
    }
}
