//! What a run did, logged at its end and returned to the caller (and to
//! Lambda, as the invocation's answer).

use std::collections::BTreeMap;

use serde::Serialize;

/// What a run did, logged at its end and returned to the caller.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    pub accounts: u32,
    /// Account items that could not be read (skipped, logged by key).
    pub unreadable_accounts: u32,
    pub tokens_refreshed: u32,
    pub token_failures: u32,
    pub refresh_expiring_soon: u32,
    /// Due jobs read from the index.
    pub jobs_seen: u32,
    /// Index entries that could not be read as jobs (skipped, logged by key).
    pub unreadable_jobs: u32,
    /// Index queries made (pages read).
    pub index_queries: u32,
    /// Index entries DynamoDB read for jobs (grows with the backlog only).
    pub index_items_read: u32,
    /// What reading the index cost in DynamoDB read units, from the items'
    /// sizes (DynamoDB's rule: 4 KB per unit, half for eventual reads).
    pub index_read_units: f64,
    /// The read units DynamoDB itself reported for those queries.
    pub index_consumed_units: f64,
    /// Status requests sent to TikTok: every HTTP attempt, none retried.
    pub status_requests: u32,
    /// Moves made, by the status moved to.
    pub moved: BTreeMap<String, u32>,
    pub retries_released: u32,
    pub queued_released: u32,
    /// Retries not re-initialised because TikTok had the upload after all.
    pub retries_found_at_tiktok: u32,
    pub flagged_stuck: u32,
    /// Jobs whose place in the index moved on after a check that left them
    /// where they were, so the next run asks about others first.
    pub rescheduled: u32,
    /// Drafts in the inbox old enough to stop following.
    pub inbox_unfollowed: u32,
    /// Status checks left for the next run to keep within 30 per minute.
    pub rate_limited: u32,
    /// The run waited for a minute to pass since the previous run's last
    /// status request.
    pub waited_for_previous_run: bool,
    pub errors: u32,
    /// The most status requests one account had in a sliding minute.
    pub busiest_account_per_minute: u32,
    /// Jobs whose work the stop instant cut off.
    pub cut_off: u32,
    /// The deadline came first; the rest waits for the next run.
    pub stopped_early: bool,
}
