//! The events AWS hands the functions, in the shapes Lambda delivers them
//! (the demo and the tests that run the function binaries build them here):
//! an API Gateway HTTP API request (payload 2.0), an SQS batch from the
//! event source mapping, an EventBridge scheduled event, and the body of
//! S3's `ObjectCreated` notification.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The API id the local HTTP API pretends to have.
const API_ID: &str = "tdlocal000";
const ACCOUNT_ID: &str = "123456789012";

/// One HTTP request as API Gateway's HTTP API passes it to a Lambda
/// integration (payload format 2.0). Header names are lowercase, as API
/// Gateway gives them; `body` is the raw text (the webhook's signature is
/// over it byte for byte).
pub fn api_gateway_request(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &[(String, String)],
    body: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let route_key = format!("{method} {path}");
    let mut header_map = serde_json::Map::new();
    // Cookies are not headers in payload 2.0: API Gateway passes them in
    // `cookies`, one entry per cookie.
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_owned())),
            );
            continue;
        }
        // API Gateway joins repeated headers with commas.
        let joined = match header_map.get(&name).and_then(Value::as_str) {
            Some(prev) => format!("{prev},{value}"),
            None => value.clone(),
        };
        header_map.insert(name, Value::String(joined));
    }
    let host = format!("{API_ID}.execute-api.us-east-1.amazonaws.com");
    header_map
        .entry("host")
        .or_insert_with(|| Value::String(host.clone()));
    header_map.insert("x-forwarded-proto".into(), "https".into());
    header_map.insert("x-forwarded-port".into(), "443".into());
    let user_agent = header_map
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": user_agent,
            },
            "requestId": format!("{:016x}", rand::random::<u64>()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if !raw_query.is_empty() {
        // API Gateway also gives the query as a map (repeated names joined
        // with commas).
        let mut params = serde_json::Map::new();
        for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
            let joined = match params.get(name.as_ref()).and_then(Value::as_str) {
                Some(prev) => format!("{prev},{value}"),
                None => value.into_owned(),
            };
            params.insert(name.into_owned(), Value::String(joined));
        }
        event["queryStringParameters"] = Value::Object(params);
    }
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if let Some(body) = body {
        event["body"] = Value::String(body.to_owned());
    }
    event
}

/// A message as the SQS event source mapping hands it to Lambda.
pub struct SqsRecord<'a> {
    pub message_id: &'a str,
    pub receipt_handle: &'a str,
    pub body: &'a str,
    pub md5_of_body: &'a str,
    pub attributes: Value,
}

/// An SQS batch event for the queue `queue_arn`.
pub fn sqs_batch(queue_arn: &str, region: &str, records: &[SqsRecord<'_>]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "messageId": r.message_id,
                "receiptHandle": r.receipt_handle,
                "body": r.body,
                "attributes": r.attributes,
                "messageAttributes": {},
                "md5OfBody": r.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// What an EventBridge schedule sends its target.
pub fn scheduled_event(rule_arn: &str, region: &str, now: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": format!("{:08x}-0000-4000-8000-{:012x}", rand::random::<u32>(), rand::random::<u64>() >> 16),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    })
}

/// The object an `ObjectCreated` notification names.
pub struct CreatedObject<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub size: u64,
    pub etag: &'a str,
    pub version_id: Option<&'a str>,
}

/// The body S3 sends to a queue for a created object: the key form-encoded
/// (`+` for a space), as S3 writes it. Used where the demo may not change a
/// bucket's notification settings (a bucket of yours), so that the message
/// the upload function reads is the one S3 would have sent.
pub fn s3_notification(region: &str, object: &CreatedObject<'_>, now: DateTime<Utc>) -> Value {
    let key: String = url::form_urlencoded::byte_serialize(object.key.as_bytes()).collect();
    // S3 keeps `/` as it is.
    let key = key.replace("%2F", "/");
    let mut s3_object = json!({
        "key": key,
        "size": object.size,
        "eTag": object.etag.trim_matches('"'),
        "sequencer": format!("{:016X}", now.timestamp_nanos_opt().unwrap_or_default()),
    });
    if let Some(version) = object.version_id {
        s3_object["versionId"] = Value::String(version.to_owned());
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "tiktok-drafts-demo"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": format!("{:016X}", rand::random::<u64>())},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "tiktok-drafts-uploads",
            "bucket": {"name": object.bucket, "arn": format!("arn:aws:s3:::{}", object.bucket)},
            "object": s3_object,
        }
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T08:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap()
    }

    #[test]
    fn an_http_api_request_reads_back_through_lambda_http() {
        let event = api_gateway_request(
            "GET",
            "/auth/callback",
            "code=a%2Bb&state=s1&scopes=user.info.basic%2Cvideo.upload",
            &[
                ("User-Agent".into(), "demo".into()),
                ("Cookie".into(), "__Host-login-ab=n1; theme=dark".into()),
            ],
            None,
            now(),
        );
        // As API Gateway does: cookies in `cookies`, not in the headers.
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(
            event["cookies"],
            serde_json::json!(["__Host-login-ab=n1", "theme=dark"])
        );
        let request: lambda_http::request::LambdaRequest =
            serde_json::from_value(event.clone()).unwrap();
        let request: lambda_http::Request = request.into();
        assert_eq!(
            request.headers()["cookie"],
            "__Host-login-ab=n1; theme=dark"
        );
        assert_eq!(request.uri().path(), "/auth/callback");
        assert_eq!(request.method(), "GET");
        use lambda_http::RequestExt as _;
        let query = request.query_string_parameters();
        assert_eq!(query.first("code"), Some("a+b"));
        assert_eq!(query.first("scopes"), Some("user.info.basic,video.upload"));
        assert_eq!(event["headers"]["user-agent"], "demo");
    }

    #[test]
    fn a_webhook_body_is_passed_byte_for_byte() {
        let body = r#"{"event":"post.publish.complete","content":"{\"publish_id\":\"p\"}"}"#;
        let event = api_gateway_request(
            "POST",
            "/webhooks/tiktok",
            "",
            &[("TikTok-Signature".into(), "t=1,s=ab".into())],
            Some(body),
            now(),
        );
        assert_eq!(event["body"], body);
        assert_eq!(event["headers"]["tiktok-signature"], "t=1,s=ab");
        assert!(event.get("queryStringParameters").is_none());
    }

    #[test]
    fn notifications_encode_keys_as_s3_does() {
        let body = s3_notification(
            "us-east-1",
            &CreatedObject {
                bucket: "b",
                key: "uploads/demo/holiday clip é.mp4",
                size: 3,
                etag: "\"abc\"",
                version_id: Some("v1"),
            },
            now(),
        );
        let object = &body["Records"][0]["s3"]["object"];
        assert_eq!(object["key"], "uploads/demo/holiday+clip+%C3%A9.mp4");
        assert_eq!(object["eTag"], "abc");
        assert_eq!(object["versionId"], "v1");
        assert_eq!(body["Records"][0]["eventName"], "ObjectCreated:Put");
    }
}
