//! The status checker's one state item on the shared table: until when the
//! last run may have sent status requests to TikTok.
//!
//! | item | `pk` / `sk` | attributes |
//! |---|---|---|
//! | checker state | `CHECKER#STATE` / `STATUS_REQUESTS` | `until_ms` (epoch milliseconds) |
//!
//! TikTok allows 30 status requests per token in any sliding minute. A run
//! counts its own requests in a sliding window, but a window that starts
//! empty every run cannot see the previous run's requests. The checker
//! therefore keeps the rule "a run sends no status request until a minute
//! after the previous run's last one": then no sliding minute holds
//! requests of two runs, and each run's own count is the whole count. The
//! item holds the instant that rule is measured from. Runs never overlap
//! (the function's reserved concurrency is 1), so one item and plain writes
//! are enough.

use chrono::{DateTime, Utc};

use super::store::JobError;
use crate::table::{Key, Table, Update, n, opt_i64};

const STATE_PK: &str = "CHECKER#STATE";
const STATE_SK: &str = "STATUS_REQUESTS";
const UNTIL: &str = "until_ms";

/// The checker's state item.
#[derive(Debug, Clone)]
pub struct CheckerState {
    table: Table,
}

impl CheckerState {
    /// The state item in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    fn key() -> Key {
        Key::new(STATE_PK, STATE_SK)
    }

    /// Until when the previous run may have sent status requests, if any
    /// run ever recorded it (strongly consistent).
    pub async fn status_requests_until(&self) -> Result<Option<DateTime<Utc>>, JobError> {
        let Some(item) = self.table.get(&Self::key()).await? else {
            return Ok(None);
        };
        let corrupt = |detail: String| JobError::Corrupt {
            key: STATE_PK.into(),
            detail,
        };
        match item.get(UNTIL) {
            Some(_) => opt_i64(&item, UNTIL)
                .and_then(DateTime::from_timestamp_millis)
                .map(Some)
                .ok_or_else(|| corrupt(format!("{UNTIL} is not a time"))),
            None => Err(corrupt(format!("{UNTIL} is missing or not a number"))),
        }
    }

    /// Records that this run may send status requests until `at`: before
    /// its first request with the run's deadline (a run that is killed
    /// leaves that bound behind), at its end with the time of its last one.
    pub async fn record_status_requests_until(&self, at: DateTime<Utc>) -> Result<(), JobError> {
        let update = Update::new().set(UNTIL, n(at.timestamp_millis()));
        // Unconditional: runs never overlap, so there is nothing to guard.
        self.table.update(&Self::key(), &update).await?;
        tracing::debug!(until = %at, "checker status-request bound recorded");
        Ok(())
    }
}
