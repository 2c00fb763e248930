//! One invocation: a batch of stream records, in the shard's order.
//!
//! Records are handled one after another; at the first one that cannot be
//! published now (EventBridge or the marker read failing) the handler stops
//! and reports that record in `batchItemFailures`. Lambda then checkpoints
//! before it and delivers it and everything after it again: events keep
//! their order per item, and what was published before the failure is not
//! published twice (its marker says so). A record whose image cannot be
//! read is logged and passed over: no retry can make it readable, and it
//! must not hold up the shard.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use shared::table::{Item, PK, SK};

use crate::decide::{self, ItemKind, item_kind};
use crate::publisher::{PublishError, Published, Publisher};

/// The clock, so tests can pin it.
pub type Now = fn() -> DateTime<Utc>;

/// What one batch did (logged at its end).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub records: usize,
    /// Records of items this function does not read, and removals.
    pub ignored: usize,
    pub unreadable: usize,
    pub published: usize,
    /// Events whose marker was there already (a retried or replayed batch).
    pub already_published: usize,
    /// Whether the batch stopped at a record to be delivered again.
    pub stopped: bool,
}

pub struct EventsService {
    publisher: Publisher,
    now: Now,
}

/// A record without a sequence number cannot be reported alone; the whole
/// batch is failed instead (Lambda retries it).
#[derive(Debug, thiserror::Error)]
#[error("record {event_id} failed and has no sequence number to report: {source}")]
pub struct UnreportableFailure {
    event_id: String,
    #[source]
    source: PublishError,
}

impl From<UnreportableFailure> for lambda_runtime::Diagnostic {
    fn from(err: UnreportableFailure) -> Self {
        Self {
            error_type: "UnreportableFailure".into(),
            error_message: err.to_string(),
        }
    }
}

impl EventsService {
    pub fn new(publisher: Publisher) -> Self {
        Self {
            publisher,
            now: Utc::now,
        }
    }

    pub fn with_clock(mut self, now: Now) -> Self {
        self.now = now;
        self
    }

    /// Handles a batch; the answer names the first record to deliver again.
    pub async fn handle(
        &self,
        event: Event,
    ) -> Result<(DynamoDbEventResponse, BatchSummary), UnreportableFailure> {
        let mut response = DynamoDbEventResponse::default();
        let mut summary = BatchSummary {
            records: event.records.len(),
            ..BatchSummary::default()
        };
        for record in &event.records {
            if let Err(err) = self.handle_record(record, &mut summary).await {
                let Some(sequence) = record.change.sequence_number.clone() else {
                    return Err(UnreportableFailure {
                        event_id: record.event_id.clone(),
                        source: err,
                    });
                };
                tracing::error!(error = %err, sequence_number = %sequence, "record not published; the batch is delivered again from it");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence);
                response.batch_item_failures.push(failure);
                summary.stopped = true;
                break;
            }
        }
        tracing::info!(
            records = summary.records,
            ignored = summary.ignored,
            unreadable = summary.unreadable,
            published = summary.published,
            already_published = summary.already_published,
            stopped = summary.stopped,
            "stream batch handled"
        );
        Ok((response, summary))
    }

    async fn handle_record(
        &self,
        record: &EventRecord,
        summary: &mut BatchSummary,
    ) -> Result<(), PublishError> {
        let keys = sdk_item(&record.change.keys);
        let text = |name| match keys.get(name) {
            Some(AttributeValue::S(v)) => v.as_str(),
            _ => "",
        };
        let (pk, sk) = (text(PK), text(SK));
        // The event source mapping's filters keep these out already; this
        // is the same rule for a mapping or a replay without them.
        if item_kind(pk, sk) == ItemKind::Other || record.event_name == "REMOVE" {
            summary.ignored += 1;
            return Ok(());
        }
        let old = image(&record.change.old_image);
        let new = image(&record.change.new_image);
        let details = match decide::notices(pk, sk, old.as_ref(), new.as_ref()) {
            Ok(details) => details,
            Err(err) => {
                summary.unreadable += 1;
                tracing::error!(error = %err, "stream record skipped");
                return Ok(());
            }
        };
        for detail in &details {
            match self.publisher.publish_once(detail, (self.now)()).await? {
                Published::Sent => summary.published += 1,
                Published::AlreadySent => summary.already_published += 1,
            }
        }
        Ok(())
    }
}

/// A stream image as the SDK's item type, which the shared codecs read.
fn sdk_item(item: &serde_dynamo::Item) -> Item {
    item.iter()
        .map(|(name, value)| (name.clone(), AttributeValue::from(value.clone())))
        .collect()
}

/// An image, or `None` when the record has none (an insert's old image).
fn image(item: &serde_dynamo::Item) -> Option<Item> {
    (!item.is_empty()).then(|| sdk_item(item))
}
