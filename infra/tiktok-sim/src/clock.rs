//! The simulator's virtual clock: real time plus an offset that tests move forward, so
//! expiries, rate-limit windows and 24 h caps can be tested without sleeping.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Milliseconds added to the wall clock.
    pub offset_ms: i64,
}

impl Clock {
    /// Current simulated time in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.offset_ms
    }

    /// Moves simulated time forward (or back, for a negative value).
    pub fn advance_secs(&mut self, seconds: i64) {
        self.offset_ms = self.offset_ms.saturating_add(seconds.saturating_mul(1000));
    }
}

/// Formats Unix milliseconds as RFC 3339 for control-API output.
pub fn rfc3339(ms: i64) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now() {
        let mut clock = Clock::default();
        let before = clock.now_ms();
        clock.advance_secs(3600);
        assert!(clock.now_ms() - before >= 3_600_000);
    }
}
