//! Putting one event on the bus, once.
//!
//! EventBridge's PutEvents has no idempotency key: every call makes a new
//! event. So "once" is kept in the table, by a marker item per published
//! event id (`EVENT#<event id>` / `EVENT`, with a TTL):
//!
//! 1. a strongly consistent read of the marker: there, the event was
//!    published before (a retried batch, a replayed stream): skip it;
//! 2. PutEvents;
//! 3. write the marker.
//!
//! **Which way it fails.** Dying between 2 and 3 (a timeout, a crash, a
//! failed marker write) leaves an event on the bus without its marker, and
//! the retry publishes it again: a duplicate, never a loss. That is the
//! side to err on: a creator who never hears that her upload failed is
//! worse off than an operator's tool that sees one event twice. And every
//! event carries its deterministic `event_id` in `detail`, so a consumer
//! that must act once dedupes on it (EventBridge itself delivers to targets
//! at least once, so consumers must do that anyway). Marking first would
//! turn that window into lost events instead.
//!
//! The stream gives one shard to one invocation at a time, so two
//! invocations never publish the same change at once; the marker's write is
//! conditional all the same, and a marker found written by someone else is
//! logged as a duplicate.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use shared::aws::describe_sdk_error;
use shared::table::{Checked, Cond, Key, TTL, Table};

use crate::schema::{Detail, SOURCE};

const MARKER_PREFIX: &str = "EVENT#";
const MARKER_SK: &str = "EVENT";

/// Why an event could not be published now (the batch is retried from it).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read the marker of event {event_id}: {detail}")]
    Marker { event_id: String, detail: String },
    #[error("cannot put event {event_id} on bus {bus}: {detail}")]
    PutEvents {
        event_id: String,
        bus: String,
        detail: String,
    },
}

/// What publishing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Sent,
    /// Its marker was there: published before.
    AlreadySent,
}

#[derive(Debug, Clone)]
pub struct Publisher {
    table: Table,
    eventbridge: aws_sdk_eventbridge::Client,
    bus: String,
    marker_ttl: Duration,
}

impl Publisher {
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        eventbridge: aws_sdk_eventbridge::Client,
        bus: impl Into<String>,
        marker_ttl: Duration,
    ) -> Self {
        Self {
            table: Table::new(dynamodb, table),
            eventbridge,
            bus: bus.into(),
            marker_ttl,
        }
    }

    /// Puts `detail` on the bus unless its marker says it was put before.
    pub async fn publish_once(
        &self,
        detail: &Detail,
        now: DateTime<Utc>,
    ) -> Result<Published, PublishError> {
        if self.marker_exists(&detail.event_id).await? {
            tracing::info!(event_id = %detail.event_id, kind = detail.kind.as_str(), "event published before; not again");
            return Ok(Published::AlreadySent);
        }
        self.put_event(detail).await?;
        tracing::info!(
            event_id = %detail.event_id,
            kind = detail.kind.as_str(),
            job_id = detail.upload.as_ref().map(|u| u.job_id.as_str()),
            alias = detail.account.alias.as_deref(),
            "event published"
        );
        // The event is out: a marker that cannot be written costs only the
        // protection against a later replay, so it is logged, not retried
        // (a retry now would publish the event a second time at once).
        if let Err(err) = self.put_marker(detail, now).await {
            tracing::error!(event_id = %detail.event_id, error = %err, "event published but its marker not written; a replay would publish it again");
        }
        Ok(Published::Sent)
    }

    async fn marker_exists(&self, event_id: &str) -> Result<bool, PublishError> {
        let marker =
            self.table
                .get(&marker_key(event_id))
                .await
                .map_err(|e| PublishError::Marker {
                    event_id: event_id.to_owned(),
                    detail: e.detail,
                })?;
        Ok(marker.is_some_and(|item| !item.is_empty()))
    }

    async fn put_event(&self, detail: &Detail) -> Result<(), PublishError> {
        let failed = |why: String| PublishError::PutEvents {
            event_id: detail.event_id.clone(),
            bus: self.bus.clone(),
            detail: why,
        };
        let json = serde_json::to_string(detail).map_err(|e| failed(e.to_string()))?;
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail.kind.detail_type())
            .detail(json)
            .event_bus_name(&self.bus)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                detail.occurred_at.timestamp_millis(),
            ))
            .build();
        let answer = self
            .eventbridge
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| failed(describe_sdk_error(&e)))?;
        // PutEvents answers 200 with per-entry failures.
        if answer.failed_entry_count() > 0 {
            let entry = answer.entries().first();
            return Err(failed(format!(
                "refused: {} {}",
                entry.and_then(|e| e.error_code()).unwrap_or("(no code)"),
                entry.and_then(|e| e.error_message()).unwrap_or_default()
            )));
        }
        Ok(())
    }

    async fn put_marker(&self, detail: &Detail, now: DateTime<Utc>) -> Result<(), String> {
        let expires = now
            .timestamp()
            .saturating_add(self.marker_ttl.as_secs() as i64);
        let mut item = marker_key(&detail.event_id).attributes();
        item.extend([
            (
                "event_id".to_owned(),
                AttributeValue::S(detail.event_id.clone()),
            ),
            (
                "kind".to_owned(),
                AttributeValue::S(detail.kind.as_str().into()),
            ),
            (
                "published_at".to_owned(),
                AttributeValue::N(now.timestamp().to_string()),
            ),
            (TTL.to_owned(), AttributeValue::N(expires.to_string())),
        ]);
        match self.table.put(item, Some(&Cond::no_item())).await {
            Ok(Checked::Done(())) => Ok(()),
            Ok(Checked::ConditionFailed) => {
                tracing::warn!(event_id = %detail.event_id, "another invocation published this event too (a duplicate on the bus)");
                Ok(())
            }
            Err(err) => Err(err.detail),
        }
    }
}

/// The marker item of a published event.
fn marker_key(event_id: &str) -> Key {
    Key::new(format!("{MARKER_PREFIX}{event_id}"), MARKER_SK)
}
