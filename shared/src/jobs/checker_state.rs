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
use crate::aws::describe_sdk_error;
use crate::table::{PK, SK, n};

const STATE_PK: &str = "CHECKER#STATE";
const STATE_SK: &str = "STATUS_REQUESTS";
const UNTIL: &str = "until_ms";

/// The checker's state item.
#[derive(Debug, Clone)]
pub struct CheckerState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl CheckerState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Until when the previous run may have sent status requests, if any
    /// run ever recorded it (strongly consistent).
    pub async fn status_requests_until(&self) -> Result<Option<DateTime<Utc>>, JobError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, crate::table::s(STATE_PK))
            .key(SK, crate::table::s(STATE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.store_error(&e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        match item.get(UNTIL) {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(text)) => text
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .map(Some)
                .ok_or_else(|| JobError::Corrupt {
                    key: STATE_PK.into(),
                    detail: format!("{UNTIL} is not a time"),
                }),
            _ => Err(JobError::Corrupt {
                key: STATE_PK.into(),
                detail: format!("{UNTIL} is missing or not a number"),
            }),
        }
    }

    /// Records that this run may send status requests until `at`: before
    /// its first request with the run's deadline (a run that is killed
    /// leaves that bound behind), at its end with the time of its last one.
    pub async fn record_status_requests_until(&self, at: DateTime<Utc>) -> Result<(), JobError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, crate::table::s(STATE_PK))
            .key(SK, crate::table::s(STATE_SK))
            .update_expression("SET #until = :until")
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_values(":until", n(at.timestamp_millis()))
            .send()
            .await
            .map_err(|e| self.store_error(&e))?;
        tracing::debug!(until = %at, "checker status-request bound recorded");
        Ok(())
    }

    fn store_error<E: std::error::Error>(&self, err: &E) -> JobError {
        let detail = describe_sdk_error(err);
        tracing::error!(table = %self.table, error = %detail, "checker state store failed");
        JobError::Store {
            table: self.table.clone(),
            detail,
        }
    }
}
