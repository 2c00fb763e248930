//! Short forms of [`crate::events`] for tests that drive the real binaries:
//! one created object as the SQS batch the upload function receives, the
//! schedule's event, and an HTTP API request, each with this region and the
//! current time.

use serde_json::Value;

use crate::events::{CreatedObject, SqsRecord, api_gateway_request, s3_notification, sqs_batch};

const REGION: &str = "us-east-1";
const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:tiktok-drafts-uploads";
const RULE_ARN: &str = "arn:aws:events:us-east-1:123456789012:rule/tiktok-drafts-check";

/// One SQS message holding S3's notification for `key`.
pub fn s3_created_batch(bucket: &str, key: &str, size: u64, etag: &str) -> Value {
    let now = chrono::Utc::now();
    let body = s3_notification(
        REGION,
        &CreatedObject {
            bucket,
            key,
            size,
            etag,
            version_id: None,
        },
        now,
    )
    .to_string();
    let message_id = format!("{:032x}", rand::random::<u128>());
    let sent = now.timestamp_millis().to_string();
    sqs_batch(
        QUEUE_ARN,
        REGION,
        &[SqsRecord {
            message_id: &message_id,
            receipt_handle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            body: &body,
            // Lambda does not check it, and neither does the function.
            md5_of_body: "e4e68fb7bd0e697a0ae8f1bb342846b3",
            attributes: serde_json::json!({
                "ApproximateReceiveCount": "1",
                "SentTimestamp": sent,
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": sent,
            }),
        }],
    )
}

/// The event an EventBridge schedule sends.
pub fn scheduled_event() -> Value {
    crate::events::scheduled_event(RULE_ARN, REGION, chrono::Utc::now())
}

/// One request as API Gateway's HTTP API passes it to a Lambda integration
/// (payload format 2.0).
pub fn http_api_request(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    api_gateway_request(method, path, raw_query, &headers, body, chrono::Utc::now())
}
