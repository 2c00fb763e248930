//! Per-token, per-endpoint sliding one-minute windows, on the simulated clock.

use std::collections::{HashMap, VecDeque};

/// The endpoints with their own limit. Each init endpoint is counted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    InboxVideoInit,
    DirectVideoInit,
    ContentInit,
    CreatorInfo,
    StatusFetch,
    UserInfo,
}

const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Keyed by (SHA-256 of the access token, endpoint); holds the times of allowed calls.
    windows: HashMap<(String, Bucket), VecDeque<i64>>,
}

impl RateLimiter {
    /// Records a call when it is within the limit; otherwise returns the seconds until a
    /// slot frees up. Refused calls are not recorded.
    pub fn check(
        &mut self,
        token_sha256: &str,
        bucket: Bucket,
        limit: u32,
        now_ms: i64,
    ) -> Result<(), u64> {
        let window = self
            .windows
            .entry((token_sha256.to_owned(), bucket))
            .or_default();
        while window.front().is_some_and(|&t| t <= now_ms - WINDOW_MS) {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            let oldest = window.front().copied().unwrap_or(now_ms);
            let wait_ms = (oldest + WINDOW_MS - now_ms).max(0);
            let wait_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
            return Err(wait_secs);
        }
        window.push_back(now_ms);
        Ok(())
    }

    pub fn clear(&mut self) {
        self.windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seventh_call_in_a_minute_is_refused_then_allowed_after_window() {
        let mut limiter = RateLimiter::default();
        for i in 0..6 {
            assert!(
                limiter
                    .check("t", Bucket::InboxVideoInit, 6, i * 1000)
                    .is_ok()
            );
        }
        assert_eq!(
            limiter.check("t", Bucket::InboxVideoInit, 6, 10_000),
            Err(50)
        );
        // Another endpoint and another token have their own windows.
        assert!(limiter.check("t", Bucket::ContentInit, 6, 10_000).is_ok());
        assert!(
            limiter
                .check("u", Bucket::InboxVideoInit, 6, 10_000)
                .is_ok()
        );
        assert!(
            limiter
                .check("t", Bucket::InboxVideoInit, 6, 60_001)
                .is_ok()
        );
    }
}
