//! The one exponential backoff, and its one jitter rule.
//!
//! Every wait that grows with repeated failures is `base * 2^n`, capped:
//! chunk PUTs, TikTok reads, token refreshes, saving an init's answer, the
//! upload queue's redeliveries and a job's `retry_wait`. Waits inside a call
//! (many invocations may fail together and must not come back together) are
//! jittered by one rule, "equal jitter": half the wait is kept, the other
//! half drawn at random. So a retry never comes back at once, and a crowd of
//! them spreads over the upper half of the window. Waits that are recorded
//! (a job's `not_before`) are not jittered: they are seen by people and
//! tests, and the checker's schedule spreads them anyway.

use std::time::Duration;

/// `base * 2^n`, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure (`n = 0`).
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Backoff {
    /// A backoff from `base`, doubling up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// No waiting at all (tests).
    pub const fn none() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }

    /// The wait after failure number `n` (0 for the first): `base * 2^n`,
    /// at most `cap`, without jitter.
    pub fn step(&self, n: u32) -> Duration {
        let factor = 2u32.checked_pow(n).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// [`Backoff::step`] with the jitter rule: between half of it and all of
    /// it, drawn uniformly.
    pub fn jittered(&self, n: u32) -> Duration {
        let full = self.step(n);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        if spread == 0 {
            return full;
        }
        half + Duration::from_nanos(rand::random_range(0..=spread))
    }

    /// The wait before retry `n` (0 for the first) of a call the server may
    /// have asked to be delayed: its `Retry-After`, at most `asked_cap`,
    /// when it sent one; the jittered backoff otherwise.
    pub fn or_asked(&self, n: u32, asked: Option<Duration>, asked_cap: Duration) -> Duration {
        match asked {
            Some(wait) => wait.min(asked_cap),
            None => self.jittered(n),
        }
    }
}

/// Sleeps for `wait`, unless it is zero (tests that retry without waiting
/// never touch the timer).
pub async fn sleep(wait: Duration) {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_and_stop_at_the_cap() {
        let b = Backoff::new(Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(b.step(0), Duration::from_secs(60));
        assert_eq!(b.step(1), Duration::from_secs(120));
        assert_eq!(b.step(5), Duration::from_secs(1920));
        assert_eq!(b.step(6), Duration::from_secs(3600));
        assert_eq!(b.step(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn jitter_keeps_half_and_varies() {
        let b = Backoff::new(Duration::from_millis(300), Duration::from_secs(5));
        for n in 0..12 {
            for _ in 0..20 {
                let wait = b.jittered(n);
                assert!(wait <= b.step(n), "{wait:?}");
                assert!(wait >= b.step(n) / 2, "{wait:?}");
            }
        }
        let seen: std::collections::HashSet<Duration> = (0..20).map(|_| b.jittered(3)).collect();
        assert!(seen.len() > 1, "the jitter varies");
        assert_eq!(Backoff::none().jittered(7), Duration::ZERO);
    }

    #[test]
    fn a_servers_retry_after_wins_within_its_cap() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let cap = Duration::from_secs(60);
        assert_eq!(
            b.or_asked(0, Some(Duration::from_secs(3)), cap),
            Duration::from_secs(3)
        );
        assert_eq!(b.or_asked(0, Some(Duration::from_secs(3600)), cap), cap);
        assert!(b.or_asked(2, None, cap) <= b.step(2));
    }
}
