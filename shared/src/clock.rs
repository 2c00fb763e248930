//! The clock: "now" for everything that judges time, one offset for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// The clock every store and function judges time by (token expiry, leases,
/// a job's timestamps and backoff). The system clock in production; tests
/// move it forward to make tokens expire or backoffs end without waiting.
/// Clones share one offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, as this clock sees it.
    pub fn now(&self) -> DateTime<Utc> {
        let offset = chrono::TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst));
        Utc::now() + offset
    }

    /// Moves this clock (and its clones) forward by `seconds` (back when
    /// negative).
    pub fn advance_secs(&self, seconds: i64) {
        self.offset_ms
            .fetch_add(seconds.saturating_mul(1000), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_clones_share_the_offset() {
        let a = Clock::system();
        let b = a.clone();
        let before = b.now();
        a.advance_secs(3600);
        assert!(b.now() - before >= chrono::TimeDelta::seconds(3600));
    }
}
