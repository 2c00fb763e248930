//! From the Lambda event to the S3 objects to handle.
//!
//! In AWS, S3 notifies an SQS queue and the queue invokes the function with a
//! batch; each message's body is an S3 event (or S3's one-off `s3:TestEvent`
//! when the notification is set up). For local use the function also takes a
//! direct S3 event. Keys arrive URL-encoded, with `+` for a space.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde::Deserialize;

/// An S3 notification: only the fields the function reads. Not
/// `aws_lambda_events`' `S3Event`, which refuses a record without
/// `userIdentity`, `requestParameters` or `responseElements`: S3 sends them,
/// but nothing here needs them, and other senders (moto, a replay tool)
/// leave them out.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records", default)]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3EventRecord {
    #[serde(default)]
    pub event_name: Option<String>,
    #[serde(default)]
    pub s3: S3EventEntity,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3EventEntity {
    #[serde(default)]
    pub bucket: S3EventBucket,
    #[serde(default)]
    pub object: S3EventObject,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct S3EventBucket {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3EventObject {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub e_tag: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
}

/// One created object, as the event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// Decoded: `uploads/alice/my clip.mp4`, not `uploads/alice/my+clip.mp4`.
    pub key: String,
    pub version_id: Option<String>,
    pub e_tag: Option<String>,
    pub size: Option<u64>,
}

/// An event or message that cannot be understood. Retrying will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is neither an SQS batch nor an S3 event: {0}")]
    Unrecognised(String),
    #[error("SQS message {message_id} does not hold an S3 event: {detail}")]
    BadMessage { message_id: String, detail: String },
    #[error("an S3 record has no {0}")]
    MissingField(&'static str),
    #[error("the S3 key {raw:?} is not valid URL encoding of UTF-8")]
    BadKey { raw: String },
}

/// What invoked the function.
#[derive(Debug, Clone)]
pub enum Incoming {
    Sqs(SqsEvent),
    S3(S3Event),
}

impl Incoming {
    /// Tells an SQS batch from a direct S3 event by their records' source.
    pub fn parse(value: serde_json::Value) -> Result<Self, EventError> {
        let source = value
            .get("Records")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")))
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_owned();
        match source.as_str() {
            "aws:sqs" => serde_json::from_value(value)
                .map(Incoming::Sqs)
                .map_err(|e| EventError::Unrecognised(e.to_string())),
            "aws:s3" => serde_json::from_value(value)
                .map(Incoming::S3)
                .map_err(|e| EventError::Unrecognised(e.to_string())),
            "" => Err(EventError::Unrecognised("no Records[0].eventSource".into())),
            other => Err(EventError::Unrecognised(format!(
                "unexpected event source {other:?}"
            ))),
        }
    }
}

/// The created objects of a direct S3 event; other event kinds are skipped.
pub fn objects_in_s3_event(event: &S3Event) -> Result<Vec<ObjectRef>, EventError> {
    event
        .records
        .iter()
        .filter(|r| is_created(r))
        .map(object_ref)
        .collect()
}

/// The created objects in one SQS message. S3's `s3:TestEvent` yields none.
pub fn objects_in_message(message: &SqsMessage) -> Result<Vec<ObjectRef>, EventError> {
    let message_id = message.message_id.clone().unwrap_or_default();
    let bad = |detail: String| EventError::BadMessage {
        message_id: message_id.clone(),
        detail,
    };
    let body = message
        .body
        .as_deref()
        .ok_or_else(|| bad("the message has no body".into()))?;
    #[derive(Deserialize)]
    struct TestEvent {
        #[serde(rename = "Event")]
        event: String,
    }
    if let Ok(test) = serde_json::from_str::<TestEvent>(body)
        && test.event == "s3:TestEvent"
    {
        return Ok(Vec::new());
    }
    let event: S3Event = serde_json::from_str(body).map_err(|e| bad(e.to_string()))?;
    objects_in_s3_event(&event)
}

fn is_created(record: &S3EventRecord) -> bool {
    record
        .event_name
        .as_deref()
        .is_some_and(|n| n.starts_with("ObjectCreated:"))
}

fn object_ref(record: &S3EventRecord) -> Result<ObjectRef, EventError> {
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .ok_or(EventError::MissingField("bucket name"))?;
    let raw_key = record
        .s3
        .object
        .key
        .as_deref()
        .ok_or(EventError::MissingField("object key"))?;
    Ok(ObjectRef {
        bucket,
        key: decode_key(raw_key)?,
        version_id: record
            .s3
            .object
            .version_id
            .clone()
            .filter(|v| !v.is_empty() && v != "null"),
        e_tag: record.s3.object.e_tag.clone().filter(|t| !t.is_empty()),
        size: record.s3.object.size.and_then(|s| u64::try_from(s).ok()),
    })
}

/// Decodes an S3 event key: `+` is a space and `%XX` a byte, as in a form
/// (a literal `+` arrives as `%2B`).
pub fn decode_key(raw: &str) -> Result<String, EventError> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| EventError::BadKey {
            raw: raw.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_like_s3_encodes_them() {
        assert_eq!(
            decode_key("uploads/a/my+clip.mp4").unwrap(),
            "uploads/a/my clip.mp4"
        );
        assert_eq!(
            decode_key("uploads/a/1%2B1.mp4").unwrap(),
            "uploads/a/1+1.mp4"
        );
        assert_eq!(
            decode_key("uploads/a/%C3%A9t%C3%A9+%F0%9F%8E%AC.mp4").unwrap(),
            "uploads/a/été 🎬.mp4"
        );
        assert!(decode_key("uploads/a/%FF.mp4").is_err());
    }

    #[test]
    fn a_record_with_only_what_is_read_is_enough() {
        // moto's notification: no userIdentity, requestParameters or
        // responseElements, no versionId.
        let body = r#"{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
            "awsRegion": "us-east-1", "eventTime": "2026-12-02T08:00:00.000Z",
            "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0",
            "configurationId": "c", "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
            "object": {"key": "uploads/demo/holiday+clip.mp4", "size": 3, "eTag": "abc"}}}]}"#;
        let event: S3Event = serde_json::from_str(body).unwrap();
        assert_eq!(
            objects_in_s3_event(&event).unwrap(),
            vec![ObjectRef {
                bucket: "b".into(),
                key: "uploads/demo/holiday clip.mp4".into(),
                version_id: None,
                e_tag: Some("abc".into()),
                size: Some(3),
            }]
        );
    }
}
