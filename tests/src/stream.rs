//! What Lambda's DynamoDB Streams event source mapping does, for the local
//! stack: read the table's stream (moto serves it), keep the records the
//! mapping's filter criteria let through, invoke the function with batches
//! in the shard's order, in the event shape Lambda sends, and honour its
//! answer: a record named in `batchItemFailures` is delivered again with
//! everything after it; a batch that keeps failing goes to the on-failure
//! destination (an SQS queue) as a description of the batch, and the shard
//! moves on.
//!
//! Used by the events function's end-to-end test and by the demo.

use std::collections::BTreeMap;

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::{Value, json};

/// Something that can be invoked with a batch: the real function binary
/// under the Runtime API emulator, usually.
pub trait Target {
    /// The function's answer, or why the invocation failed (a function
    /// error: the whole batch counts as failed).
    fn deliver(
        &mut self,
        event: &Value,
    ) -> impl std::future::Future<Output = Result<Value, String>>;
}

impl Target for crate::lambda::LambdaFunction {
    async fn deliver(&mut self, event: &Value) -> Result<Value, String> {
        let invocation = self.try_invoke(event).await?;
        if invocation.status != 200 || invocation.body.get("errorType").is_some() {
            return Err(format!(
                "the function failed ({}): {}",
                invocation.status, invocation.body
            ));
        }
        Ok(invocation.body)
    }
}

/// The mapping's settings, as the template gives them.
#[derive(Debug, Clone)]
pub struct MappingSettings {
    pub batch_size: usize,
    /// Retries of a failing batch before it goes to the on-failure
    /// destination (`MaximumRetryAttempts`).
    pub max_retries: u32,
    /// EventBridge-style patterns (`FilterCriteria.Filters[].Pattern`); a
    /// record passes when it matches any; none: every record passes.
    pub filters: Vec<String>,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollSummary {
    pub records_read: usize,
    pub records_filtered_out: usize,
    pub invocations: usize,
    pub retried_records: usize,
    /// Batches sent to the on-failure destination.
    pub batches_discarded: usize,
}

/// The poller of one table's stream.
pub struct StreamPoller {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    region: String,
    settings: MappingSettings,
    filters: Vec<Value>,
    on_failure: Option<(aws_sdk_sqs::Client, String)>,
    /// Per shard: the last sequence number handled (none: from the start).
    positions: BTreeMap<String, Option<String>>,
    /// Every batch event delivered, in order (retries included).
    delivered: Vec<Value>,
}

impl StreamPoller {
    /// A poller of `table`'s stream from its first record.
    pub async fn for_table(
        sdk: &aws_config::SdkConfig,
        table: &str,
        settings: MappingSettings,
    ) -> Result<Self, String> {
        let described = aws_sdk_dynamodb::Client::new(sdk)
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "describe table {table}: {}",
                    shared::aws::describe_sdk_error(&e)
                )
            })?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| format!("table {table} has no stream"))?
            .to_owned();
        let filters = settings
            .filters
            .iter()
            .map(|p| serde_json::from_str(p).map_err(|e| format!("filter pattern {p}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            client: aws_sdk_dynamodbstreams::Client::new(sdk),
            stream_arn,
            region: sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            settings,
            filters,
            on_failure: None,
            positions: BTreeMap::new(),
            delivered: Vec::new(),
        })
    }

    /// Sends batches that keep failing to this queue (the mapping's
    /// `DestinationConfig.OnFailure`).
    pub fn with_on_failure(mut self, sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        self.on_failure = Some((sqs, queue_url));
        self
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Every batch event delivered so far, retries included.
    pub fn delivered(&self) -> &[Value] {
        &self.delivered
    }

    /// Back to the stream's first record, as a replay from the start.
    pub fn rewind(&mut self) {
        self.positions.clear();
    }

    /// Reads what is new on every shard and delivers it to `target`.
    pub async fn poll(&mut self, target: &mut impl Target) -> Result<PollSummary, String> {
        let mut summary = PollSummary::default();
        for shard in self.shards().await? {
            let records = self.read_shard(&shard).await?;
            summary.records_read += records.len();
            let Some(last) = records.last().and_then(|r| r.dynamodb()?.sequence_number()) else {
                continue;
            };
            let last = last.to_owned();
            let events: Vec<Value> = records.iter().map(|r| self.record_event(r)).collect();
            let passing: Vec<Value> = events.into_iter().filter(|e| self.passes(e)).collect();
            summary.records_filtered_out += records.len() - passing.len();
            for batch in passing.chunks(self.settings.batch_size.max(1)) {
                self.deliver(&shard, batch.to_vec(), target, &mut summary)
                    .await?;
            }
            self.positions.insert(shard, Some(last));
        }
        Ok(summary)
    }

    async fn shards(&self) -> Result<Vec<String>, String> {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "describe the stream: {}",
                    shared::aws::describe_sdk_error(&e)
                )
            })?;
        Ok(described
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn read_shard(&self, shard: &str) -> Result<Vec<Record>, String> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard);
        let request = match self.positions.get(shard).cloned().flatten() {
            Some(after) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(after),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let mut iterator = request
            .send()
            .await
            .map_err(|e| format!("a shard iterator: {}", shared::aws::describe_sdk_error(&e)))?
            .shard_iterator;
        let mut records = Vec::new();
        // An open shard always hands out a next iterator: read until a page
        // comes back empty.
        while let Some(current) = iterator.take() {
            let page = self
                .client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .map_err(|e| format!("read the stream: {}", shared::aws::describe_sdk_error(&e)))?;
            if page.records().is_empty() {
                break;
            }
            records.extend(page.records().iter().cloned());
            iterator = page.next_shard_iterator;
        }
        Ok(records)
    }

    /// Delivers one batch, again from a reported failure until it succeeds
    /// or the retries run out.
    async fn deliver(
        &mut self,
        shard: &str,
        mut batch: Vec<Value>,
        target: &mut impl Target,
        summary: &mut PollSummary,
    ) -> Result<(), String> {
        let mut retries = 0;
        loop {
            let event = json!({ "Records": batch });
            self.delivered.push(event.clone());
            summary.invocations += 1;
            let failed_from = match target.deliver(&event).await {
                Ok(answer) => first_failure(&answer, &batch)?,
                Err(err) => {
                    eprintln!("stream poller: the invocation failed: {err}");
                    Some(0)
                }
            };
            let Some(index) = failed_from else {
                return Ok(());
            };
            batch.drain(..index);
            retries += 1;
            summary.retried_records += batch.len();
            if retries > self.settings.max_retries {
                summary.batches_discarded += 1;
                return self.send_to_on_failure(shard, &batch).await;
            }
        }
    }

    async fn send_to_on_failure(&self, shard: &str, batch: &[Value]) -> Result<(), String> {
        let sequence = |r: Option<&Value>| {
            r.and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let record = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": self.settings.max_retries + 1},
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": sequence(batch.first()),
                "endSequenceNumber": sequence(batch.last()),
                "batchSize": batch.len(),
                "streamArn": self.stream_arn,
            }
        });
        eprintln!(
            "stream poller: a batch failed {} times: {record}",
            self.settings.max_retries + 1
        );
        if let Some((sqs, queue_url)) = &self.on_failure {
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(record.to_string())
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "send to the on-failure queue: {}",
                        shared::aws::describe_sdk_error(&e)
                    )
                })?;
        }
        Ok(())
    }

    /// A record as Lambda puts it in the event.
    fn record_event(&self, record: &Record) -> Value {
        let change = record.dynamodb();
        let image = |map: Option<
            &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
        >| {
            map.map(|m| {
                let item: serde_dynamo::Item = m
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_dynamo::AttributeValue::from(v.clone())))
                    .collect::<std::collections::HashMap<_, _>>()
                    .into();
                serde_json::to_value(item).unwrap_or(Value::Null)
            })
        };
        let mut dynamodb = serde_json::Map::new();
        if let Some(at) = change.and_then(|c| c.approximate_creation_date_time()) {
            dynamodb.insert(
                "ApproximateCreationDateTime".into(),
                json!(at.as_secs_f64().floor()),
            );
        }
        for (name, value) in [
            ("Keys", image(change.and_then(|c| c.keys.as_ref()))),
            ("NewImage", image(change.and_then(|c| c.new_image.as_ref()))),
            ("OldImage", image(change.and_then(|c| c.old_image.as_ref()))),
        ] {
            if let Some(value) = value {
                dynamodb.insert(name.into(), value);
            }
        }
        dynamodb.insert(
            "SequenceNumber".into(),
            json!(change.and_then(|c| c.sequence_number())),
        );
        dynamodb.insert(
            "SizeBytes".into(),
            json!(change.and_then(|c| c.size_bytes()).unwrap_or(0)),
        );
        dynamodb.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
        json!({
            "eventID": record.event_id(),
            "eventName": record.event_name().map(|n| n.as_str()),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": dynamodb,
            "eventSourceARN": self.stream_arn,
        })
    }

    fn passes(&self, record: &Value) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| matches_pattern(f, record))
    }
}

/// The index in `batch` of the first record the answer names in
/// `batchItemFailures`; `None` when it names none. A name that is no
/// record's sequence number fails the whole batch, as Lambda does.
fn first_failure(answer: &Value, batch: &[Value]) -> Result<Option<usize>, String> {
    let failures = match &answer["batchItemFailures"] {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        other => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    let mut first: Option<usize> = None;
    for failure in failures {
        let id = failure["itemIdentifier"].as_str().unwrap_or_default();
        let index = batch
            .iter()
            .position(|r| r["dynamodb"]["SequenceNumber"] == id)
            .unwrap_or(0);
        first = Some(first.map_or(index, |f| f.min(index)));
    }
    Ok(first)
}

/// Whether `event` matches an EventBridge-style `pattern`, for the parts
/// filter criteria use here: nested objects, lists of exact values, and
/// `{"prefix": ...}`. Anything else in a pattern matches nothing (a test
/// with such a pattern fails instead of passing by accident).
pub fn matches_pattern(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(name, wanted)| {
        let Some(actual) = event.get(name) else {
            return false;
        };
        match wanted {
            Value::Object(_) => matches_pattern(wanted, actual),
            Value::Array(options) => options.iter().any(|option| match option {
                Value::Object(op) => match (op.get("prefix"), actual.as_str()) {
                    (Some(Value::String(prefix)), Some(text)) if op.len() == 1 => {
                        text.starts_with(prefix.as_str())
                    }
                    _ => false,
                },
                exact => exact == actual,
            }),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_values_prefixes_and_nested_fields() {
        let pattern = json!({"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "JOB#"}]}, "sk": {"S": ["JOB"]}}}});
        let record = |name: &str, pk: &str, sk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}});
        assert!(matches_pattern(&pattern, &record("MODIFY", "JOB#1", "JOB")));
        assert!(!matches_pattern(
            &pattern,
            &record("REMOVE", "JOB#1", "JOB")
        ));
        assert!(!matches_pattern(
            &pattern,
            &record("INSERT", "EVENT#1", "EVENT")
        ));
        assert!(!matches_pattern(
            &pattern,
            &record("INSERT", "JOB#1", "OTHER")
        ));
        assert!(!matches_pattern(&pattern, &json!({"eventName": "INSERT"})));
        assert!(!matches_pattern(
            &json!({"x": [{"anything-but": "a"}]}),
            &json!({"x": "b"})
        ));
    }

    #[test]
    fn failures_point_at_the_first_named_record() {
        let batch: Vec<Value> = ["1", "2", "3"]
            .iter()
            .map(|s| json!({"dynamodb": {"SequenceNumber": s}}))
            .collect();
        assert_eq!(
            first_failure(&json!({"batchItemFailures": []}), &batch),
            Ok(None)
        );
        assert_eq!(first_failure(&json!({}), &batch), Ok(None));
        assert_eq!(
            first_failure(
                &json!({"batchItemFailures": [{"itemIdentifier": "3"}, {"itemIdentifier": "2"}]}),
                &batch
            ),
            Ok(Some(1))
        );
        assert_eq!(
            first_failure(
                &json!({"batchItemFailures": [{"itemIdentifier": "9"}]}),
                &batch
            ),
            Ok(Some(0)),
            "an unknown id fails the whole batch"
        );
    }
}
