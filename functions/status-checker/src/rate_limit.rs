//! TikTok's per-token limit on status requests (30 per sliding minute),
//! kept per account within a run; every HTTP attempt takes a slot (the
//! checker's status reads are never retried). Runs never overlap (the
//! function has a reserved concurrency of 1), and `status_gate` keeps a
//! minute between one run's last status request and the next run's first,
//! so a window that starts empty each run is still the whole count.
//!
//! TikTok counts a request when it arrives, which is some time after it was
//! sent and at the latest when its answer is back. So a request holds its
//! slot while it is in flight and is stamped when it finishes: a request
//! started a minute after another one finished cannot arrive within the
//! same minute of TikTok's, however slow either was. (Stamping at the start
//! would let a slow request arrive late and a 31st fit into its minute.)
//!
//! A request that would break the limit is not delayed: the job is left for
//! the next run, which keeps a run's length bounded by its work, not by
//! waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct PerAccountLimit {
    max: u32,
    window: Duration,
    accounts: Mutex<HashMap<String, Window>>,
    /// The fullest any account's window has been.
    peak: AtomicU32,
}

/// One account's requests: those still in flight, and when the others
/// finished.
#[derive(Debug, Default)]
struct Window {
    in_flight: u32,
    finished: Vec<Instant>,
}

impl Window {
    fn count(&self) -> u32 {
        self.in_flight
            .saturating_add(u32::try_from(self.finished.len()).unwrap_or(u32::MAX))
    }
}

/// A slot taken by [`PerAccountLimit::try_take`]: in flight until
/// [`Slot::finish`], or until dropped (a request cut off at the stop
/// instant), which stamps it at that moment.
#[derive(Debug)]
pub struct Slot<'a> {
    limit: &'a PerAccountLimit,
    account: String,
    done: bool,
}

impl Slot<'_> {
    /// The request's answer (or error) came back at `at`.
    pub fn finish(mut self, at: Instant) {
        self.limit.finish(&self.account, at);
        self.done = true;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.limit.finish(&self.account, Instant::now());
        }
    }
}

impl PerAccountLimit {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            accounts: Mutex::new(HashMap::new()),
            peak: AtomicU32::new(0),
        }
    }

    /// Takes a slot for one request of `account` starting at `now`, if
    /// the requests in flight and those finished within the window leave
    /// room.
    pub fn try_take(&self, account: &str, now: Instant) -> Option<Slot<'_>> {
        // A poisoned lock means a panic elsewhere; refusing is safe.
        let mut accounts = self.accounts.lock().ok()?;
        let window = accounts.entry(account.to_owned()).or_default();
        window
            .finished
            .retain(|t| now.saturating_duration_since(*t) < self.window);
        if window.count() >= self.max {
            return None;
        }
        window.in_flight += 1;
        self.peak.fetch_max(window.count(), Ordering::Relaxed);
        Some(Slot {
            limit: self,
            account: account.to_owned(),
            done: false,
        })
    }

    fn finish(&self, account: &str, at: Instant) {
        if let Ok(mut accounts) = self.accounts.lock()
            && let Some(window) = accounts.get_mut(account)
        {
            window.in_flight = window.in_flight.saturating_sub(1);
            window.finished.push(at);
        }
    }

    /// The most requests any one account had within one window during the
    /// run, in flight or finished (what the bench reports against the
    /// limit of 30).
    pub fn busiest(&self) -> u32 {
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn thirty_per_sliding_minute_per_account() {
        let limit = PerAccountLimit::new(30, MINUTE);
        let start = Instant::now();
        for _ in 0..30 {
            limit.try_take("a", start).expect("room").finish(start);
        }
        assert!(
            limit.try_take("a", start).is_none(),
            "the 31st in the minute"
        );
        assert!(
            limit.try_take("b", start).is_some(),
            "accounts are separate"
        );
        assert!(
            limit
                .try_take("a", start + Duration::from_secs(59))
                .is_none()
        );
        assert!(limit.try_take("a", start + MINUTE).is_some());
        assert_eq!(limit.busiest(), 30);
    }

    /// Requests that take long are counted from when they finish: the
    /// window of a slow request ends a minute after its answer, not after
    /// it was sent.
    #[tokio::test(start_paused = true)]
    async fn a_slow_request_counts_from_when_it_finishes() {
        let limit = PerAccountLimit::new(30, MINUTE);
        let start = Instant::now();
        let answered = start + Duration::from_secs(25);
        let slots: Vec<_> = (0..30)
            .map(|_| limit.try_take("a", start).expect("room"))
            .collect();
        // In flight, they hold their slots however long they take.
        assert!(
            limit
                .try_take("a", start + Duration::from_secs(20))
                .is_none()
        );
        for slot in slots {
            slot.finish(answered);
        }
        // A minute after the start but not after the answers: TikTok may
        // have seen them arrive as late as that.
        assert!(limit.try_take("a", start + MINUTE).is_none());
        assert!(
            limit
                .try_take("a", answered + Duration::from_secs(59))
                .is_none()
        );
        assert!(limit.try_take("a", answered + MINUTE).is_some());
    }

    /// A slot dropped without an answer (a request cut off at the stop
    /// instant) is stamped when it is dropped.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_slot_is_stamped_when_dropped() {
        let limit = PerAccountLimit::new(1, MINUTE);
        let slot = limit.try_take("a", Instant::now()).expect("room");
        assert!(limit.try_take("a", Instant::now()).is_none(), "in flight");
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(slot);
        let dropped = Instant::now();
        assert!(
            limit
                .try_take("a", dropped + Duration::from_secs(59))
                .is_none()
        );
        assert!(limit.try_take("a", dropped + MINUTE).is_some());
        assert_eq!(limit.busiest(), 1);
    }
}
