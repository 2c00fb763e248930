//! TikTok's per-token limit on status requests (30 per sliding minute),
//! kept per account within a run; every HTTP attempt takes a slot (the
//! checker's status reads are never retried). Runs never overlap (the
//! function has a reserved concurrency of 1), and `status_gate` keeps a
//! minute between one run's last status request and the next run's first,
//! so a window that starts empty each run is still the whole count.
//!
//! A request that would break the limit is not delayed: the job is left for
//! the next run, which keeps a run's length bounded by its work, not by
//! waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct PerAccountLimit {
    max: u32,
    window: Duration,
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// The fullest any account's window has been.
    peak: std::sync::atomic::AtomicU32,
}

impl PerAccountLimit {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            sent: Mutex::new(HashMap::new()),
            peak: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Takes one request for `account` at `now` if the window has room.
    pub fn try_take(&self, account: &str, now: Instant) -> bool {
        let Ok(mut sent) = self.sent.lock() else {
            // A poisoned lock means a panic elsewhere; refusing is safe.
            return false;
        };
        let times = sent.entry(account.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= usize::try_from(self.max).unwrap_or(usize::MAX) {
            return false;
        }
        times.push_back(now);
        let in_window = u32::try_from(times.len()).unwrap_or(u32::MAX);
        self.peak
            .fetch_max(in_window, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// The most requests any one account had within one window during the
    /// run (what the bench reports against the limit of 30).
    pub fn busiest(&self) -> u32 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn thirty_per_sliding_minute_per_account() {
        let limit = PerAccountLimit::new(30, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..30 {
            assert!(limit.try_take("a", start));
        }
        assert!(!limit.try_take("a", start), "the 31st in the minute");
        assert!(limit.try_take("b", start), "accounts are separate");
        assert!(!limit.try_take("a", start + Duration::from_secs(59)));
        assert!(limit.try_take("a", start + Duration::from_secs(60)));
        assert_eq!(limit.busiest(), 30);
    }
}
