//! The events Lambda hands the functions, in the shapes it delivers them,
//! for tests that drive the real binaries: an SQS batch holding S3's
//! `ObjectCreated` notification, an EventBridge schedule's event, and an
//! HTTP API (payload 2.0) request.

use serde_json::{Value, json};

/// One SQS message holding S3's notification for `key` (its segments
/// form-encoded, as S3 writes keys in notifications).
pub fn s3_created_batch(bucket: &str, key: &str, size: u64, etag: &str) -> Value {
    let encoded: String = key
        .split('/')
        .map(|part| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/");
    let notification = json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": chrono::Utc::now().to_rfc3339(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "tiktok-drafts-uploads",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded, "size": size, "eTag": etag.trim_matches('"'), "sequencer": "0055AED6DCD90281E5"}
        }
    }]});
    json!({"Records": [{
        "messageId": format!("{:032x}", rand::random::<u128>()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": notification.to_string(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": chrono::Utc::now().timestamp_millis().to_string(),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": chrono::Utc::now().timestamp_millis().to_string()
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tiktok-drafts-uploads",
        "awsRegion": "us-east-1"
    }]})
}

/// The event an EventBridge schedule sends.
pub fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": format!("{:032x}", rand::random::<u128>()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/tiktok-drafts-check"],
        "detail": {}
    })
}

/// One request as API Gateway's HTTP API passes it to a Lambda integration
/// (payload format 2.0); `headers` names are lowercased, as API Gateway
/// gives them.
pub fn http_api_request(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let now = chrono::Utc::now();
    let host = "tdtest0000.execute-api.us-east-1.amazonaws.com";
    let mut header_map = serde_json::Map::new();
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), json!(value));
    }
    header_map.insert("host".into(), json!(host));
    header_map.insert("x-forwarded-proto".into(), json!("https"));
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "tdtest0000",
            "domainName": host,
            "domainPrefix": "tdtest0000",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": format!("{:016x}", rand::random::<u64>()),
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if !raw_query.is_empty() {
        let params: serde_json::Map<String, Value> =
            url::form_urlencoded::parse(raw_query.as_bytes())
                .map(|(k, v)| (k.into_owned(), json!(v)))
                .collect();
        event["queryStringParameters"] = Value::Object(params);
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}
