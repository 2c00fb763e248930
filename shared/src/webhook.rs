//! TikTok's webhooks: checking the `TikTok-Signature` header and reading the
//! events. Plain code with no I/O; the webhook function applies the events.
//!
//! A delivery is an HTTPS POST whose JSON body is an envelope
//! `{client_key, event, create_time, user_openid, content}`, where `content`
//! is a **string** of serialized JSON with the event's own fields. The header
//! `TikTok-Signature: t=<unix seconds>,s=<hex>` carries
//! HMAC-SHA256(key = client_secret, message = `<t>.<raw body>`).
//!
//! [`verify`] compares the signature in constant time first and only then
//! looks at the timestamp, so an unsigned request learns nothing about the
//! clock; a signed one older (or further in the future) than
//! [`DEFAULT_TOLERANCE`] is refused as a replay.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::secret::Secret;
use crate::tiktok::FailReason;

/// The header TikTok signs deliveries with (names are case-insensitive; its
/// own example writes `Tiktok-Signature`).
pub const SIGNATURE_HEADER: &str = "tiktok-signature";

/// How far a delivery's `t` may be from now, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was refused. The signature, the secret and the body never
/// appear in a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No [`SIGNATURE_HEADER`]: not from TikTok, or a probe.
    #[error("the request has no TikTok-Signature header")]
    MissingSignature,
    /// The header is not `t=<seconds>,s=<hex>`; the text says which part is
    /// wrong.
    #[error("the TikTok-Signature header is malformed: {0}")]
    MalformedSignature(&'static str),
    /// The HMAC does not match: altered, or signed with another app's
    /// secret.
    #[error("the TikTok-Signature does not match the body")]
    BadSignature,
    /// Signed too long ago: possibly a replay.
    #[error("the signature's timestamp is {age_secs} s old (at most {tolerance_secs} s allowed)")]
    Stale {
        /// How old the signature's `t` is, in seconds.
        age_secs: i64,
        /// The most allowed, in seconds.
        tolerance_secs: u64,
    },
    /// Signed further ahead of our clock than allowed.
    #[error(
        "the signature's timestamp is {ahead_secs} s in the future (at most {tolerance_secs} s allowed)"
    )]
    FromTheFuture {
        /// How far the signature's `t` is ahead of now, in seconds.
        ahead_secs: i64,
        /// The most allowed, in seconds.
        tolerance_secs: u64,
    },
    /// The signature was good, the JSON is not what TikTok documents.
    #[error("the body is not a TikTok webhook: {0}")]
    MalformedBody(String),
}

impl WebhookError {
    /// Whether the request failed authentication (answer 401) rather than
    /// carrying a bad body (answer 400).
    pub fn is_authentication(&self) -> bool {
        !matches!(self, Self::MalformedBody(_))
    }
}

/// The two parts of a `TikTok-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SignatureHeader<'a> {
    /// As received: it is what TikTok signed.
    t_text: &'a str,
    t: i64,
    /// Every `s=` value (there is one; more are accepted as Stripe-style
    /// rotation, any matching one will do).
    signatures: Vec<Vec<u8>>,
}

fn parse_header(value: &str) -> Result<SignatureHeader<'_>, WebhookError> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, val) = part
            .split_once('=')
            .ok_or(WebhookError::MalformedSignature("a part is not key=value"))?;
        match key.trim() {
            "t" => {
                if t.is_some() {
                    return Err(WebhookError::MalformedSignature("t appears twice"));
                }
                let val = val.trim();
                if val.is_empty() || !val.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(WebhookError::MalformedSignature("t is not a number"));
                }
                let secs = val
                    .parse::<i64>()
                    .map_err(|_| WebhookError::MalformedSignature("t is out of range"))?;
                t = Some((val, secs));
            }
            "s" => {
                let bytes = hex::decode(val.trim())
                    .map_err(|_| WebhookError::MalformedSignature("s is not hex"))?;
                if bytes.len() != 32 {
                    return Err(WebhookError::MalformedSignature(
                        "s is not a SHA-256 HMAC (64 hex digits)",
                    ));
                }
                signatures.push(bytes);
            }
            // Unknown parts are ignored, as signature schemes of this shape do.
            _ => {}
        }
    }
    let (t_text, t) = t.ok_or(WebhookError::MalformedSignature("t is missing"))?;
    if signatures.is_empty() {
        return Err(WebhookError::MalformedSignature("s is missing"));
    }
    Ok(SignatureHeader {
        t_text,
        t,
        signatures,
    })
}

fn mac(secret: &str, t: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value TikTok would send for `body` at `t` (for tests and the
/// local tools; the simulator signs with its own code).
pub fn signature_header(client_secret: &str, t: i64, body: &[u8]) -> String {
    let digest = mac(client_secret, &t.to_string(), body)
        .finalize()
        .into_bytes();
    format!("t={t},s={}", hex::encode(digest))
}

/// Checks a delivery with [`DEFAULT_TOLERANCE`]. `header` is the value of
/// `TikTok-Signature` (however its name was cased), `body` the raw bytes.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    client_secret: &Secret,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    verify_with_tolerance(header, body, client_secret, now, DEFAULT_TOLERANCE)
}

/// [`verify`] with another tolerance for `t`.
pub fn verify_with_tolerance(
    header: Option<&str>,
    body: &[u8],
    client_secret: &Secret,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let header = header
        .filter(|h| !h.trim().is_empty())
        .ok_or(WebhookError::MissingSignature)?;
    let parsed = parse_header(header)?;
    let expected = mac(client_secret.expose(), parsed.t_text, body);
    // `verify_slice` compares in constant time; each candidate gets a fresh
    // MAC state.
    let matched = parsed
        .signatures
        .iter()
        .any(|s| expected.clone().verify_slice(s).is_ok());
    if !matched {
        return Err(WebhookError::BadSignature);
    }
    let tolerance_secs = tolerance.as_secs();
    let limit = i64::try_from(tolerance_secs).unwrap_or(i64::MAX);
    let age = now.timestamp().saturating_sub(parsed.t);
    if age > limit {
        return Err(WebhookError::Stale {
            age_secs: age,
            tolerance_secs,
        });
    }
    if age < -limit {
        return Err(WebhookError::FromTheFuture {
            ahead_secs: age.saturating_neg(),
            tolerance_secs,
        });
    }
    Ok(())
}

/// A delivery, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The app it is for; must be ours.
    pub client_key: String,
    /// TikTok's name of the event, as sent.
    pub event_name: String,
    /// When TikTok made the event (epoch seconds).
    pub create_time: i64,
    /// The creator it concerns (empty when TikTok left it out).
    pub user_openid: String,
    /// What happened, with the event's content read.
    pub event: Event,
}

/// The events this project acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `post.publish.inbox_delivered`: the draft is in the creator's inbox.
    InboxDelivered(PublishRef),
    /// `post.publish.complete`: posted (by the creator from a draft, or a
    /// direct post is up).
    Complete(PublishRef),
    /// `post.publish.failed`, with TikTok's fail reason.
    Failed {
        /// The upload that failed.
        publish: PublishRef,
        /// Why, as TikTok said it.
        reason: FailReason,
    },
    /// `post.publish.publicly_available`: the post passed moderation.
    PubliclyAvailable {
        /// The upload that became the post.
        publish: PublishRef,
        /// TikTok's id of the post (the number in its URL).
        post_id: u64,
    },
    /// `post.publish.no_longer_publicaly_available` (TikTok's spelling).
    NoLongerPubliclyAvailable {
        /// The upload that became the post.
        publish: PublishRef,
        /// TikTok's id of the post (the number in its URL).
        post_id: u64,
    },
    /// `authorization.removed`: the grant is gone (already revoked).
    AuthorizationRemoved {
        /// TikTok's reason code; [`removal_reason_text`] says it in words.
        reason: i64,
    },
    /// Any other event, by name; its content is not read.
    Unknown(String),
}

/// Which upload a `post.publish.*` event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRef {
    /// The `publish_id` TikTok gave the upload at init; the job records it.
    pub publish_id: String,
    /// `INBOX_SHARE` for drafts; the direct-post value is undocumented.
    pub publish_type: Option<String>,
}

impl Event {
    /// The upload the event names, if any.
    pub fn publish(&self) -> Option<&PublishRef> {
        match self {
            Self::InboxDelivered(p) | Self::Complete(p) => Some(p),
            Self::Failed { publish, .. }
            | Self::PubliclyAvailable { publish, .. }
            | Self::NoLongerPubliclyAvailable { publish, .. } => Some(publish),
            Self::AuthorizationRemoved { .. } | Self::Unknown(_) => None,
        }
    }
}

/// What `authorization.removed`'s `reason` means (TikTok's list).
pub fn removal_reason_text(reason: i64) -> &'static str {
    match reason {
        1 => "the user disconnected the app",
        2 => "the account was deleted",
        3 => "the user's age changed",
        4 => "the account was banned",
        5 => "the developer revoked the authorization",
        _ => "unknown reason",
    }
}

#[derive(Deserialize)]
struct RawEnvelope {
    client_key: String,
    event: String,
    create_time: i64,
    #[serde(default)]
    user_openid: String,
    #[serde(default)]
    content: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPublish {
    publish_id: String,
    #[serde(default)]
    publish_type: Option<String>,
}

#[derive(Deserialize)]
struct RawFailed {
    publish_id: String,
    #[serde(default)]
    publish_type: Option<String>,
    #[serde(alias = "fail_reason")]
    reason: String,
}

#[derive(Deserialize)]
struct RawPost {
    publish_id: String,
    #[serde(default)]
    publish_type: Option<String>,
    post_id: PostId,
}

/// Post ids exceed 2^53: read as u64 from a number or a string of digits,
/// never through f64.
#[derive(Deserialize)]
#[serde(untagged)]
enum PostId {
    Number(u64),
    Text(String),
}

impl PostId {
    fn value(self) -> Result<u64, WebhookError> {
        match self {
            Self::Number(n) => Ok(n),
            Self::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| WebhookError::MalformedBody("post_id is not an integer".into())),
        }
    }
}

#[derive(Deserialize)]
struct RawRemoved {
    reason: i64,
}

/// serde's message without the input echoed back (it names position and kind).
fn describe(err: &serde_json::Error) -> String {
    let kind = match err.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a missing or mistyped field",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", err.line(), err.column())
}

/// Reads a delivery's body (after [`verify`]).
pub fn parse(body: &[u8]) -> Result<Webhook, WebhookError> {
    let raw: RawEnvelope = serde_json::from_slice(body)
        .map_err(|e| WebhookError::MalformedBody(format!("envelope: {}", describe(&e))))?;
    let content = || -> Result<&str, WebhookError> {
        match &raw.content {
            Some(serde_json::Value::String(text)) => Ok(text),
            Some(_) => Err(WebhookError::MalformedBody(
                "content is not a string of serialized JSON".into(),
            )),
            None => Err(WebhookError::MalformedBody("content is missing".into())),
        }
    };
    fn read<'a, T: Deserialize<'a>>(text: &'a str, event: &str) -> Result<T, WebhookError> {
        serde_json::from_str(text).map_err(|e| {
            WebhookError::MalformedBody(format!("content of {event}: {}", describe(&e)))
        })
    }
    let name = raw.event.as_str();
    let publish = |p: RawPublish| PublishRef {
        publish_id: p.publish_id,
        publish_type: p.publish_type,
    };
    let event = match name {
        "post.publish.inbox_delivered" => Event::InboxDelivered(publish(read(content()?, name)?)),
        "post.publish.complete" => Event::Complete(publish(read(content()?, name)?)),
        "post.publish.failed" => {
            let f: RawFailed = read(content()?, name)?;
            Event::Failed {
                publish: PublishRef {
                    publish_id: f.publish_id,
                    publish_type: f.publish_type,
                },
                reason: FailReason::from(f.reason),
            }
        }
        "post.publish.publicly_available" | "post.publish.no_longer_publicaly_available" => {
            let p: RawPost = read(content()?, name)?;
            let publish = PublishRef {
                publish_id: p.publish_id,
                publish_type: p.publish_type,
            };
            let post_id = p.post_id.value()?;
            if name == "post.publish.publicly_available" {
                Event::PubliclyAvailable { publish, post_id }
            } else {
                Event::NoLongerPubliclyAvailable { publish, post_id }
            }
        }
        "authorization.removed" => {
            let r: RawRemoved = read(content()?, name)?;
            Event::AuthorizationRemoved { reason: r.reason }
        }
        other => Event::Unknown(other.to_owned()),
    };
    if let Some(p) = event.publish()
        && p.publish_id.trim().is_empty()
    {
        return Err(WebhookError::MalformedBody("publish_id is empty".into()));
    }
    Ok(Webhook {
        client_key: raw.client_key,
        event_name: raw.event,
        create_time: raw.create_time,
        user_openid: raw.user_openid,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "client-secret-123";

    fn secret() -> Secret {
        Secret::new(SECRET)
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn body(event: &str, content: &str) -> Vec<u8> {
        serde_json::json!({
            "client_key": "ck",
            "event": event,
            "create_time": 1_633_174_500,
            "user_openid": "open-1",
            "content": content,
        })
        .to_string()
        .into_bytes()
    }

    /// HMAC-SHA256 computed from its definition (RFC 2104) with plain
    /// SHA-256, so the production code is checked against an independent
    /// implementation rather than against itself.
    fn reference_hmac(key: &[u8], message: &[u8]) -> String {
        use sha2::Digest as _;
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::digest([ipad.as_slice(), message].concat());
        hex::encode(Sha256::digest([opad.as_slice(), inner.as_slice()].concat()))
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_t_dot_body_with_the_client_secret() {
        let b = body("post.publish.complete", r#"{"publish_id":"p1"}"#);
        let header = signature_header(SECRET, 1_633_174_587, &b);
        let mut message = b"1633174587.".to_vec();
        message.extend_from_slice(&b);
        let expected = reference_hmac(SECRET.as_bytes(), &message);
        assert_eq!(header, format!("t=1633174587,s={expected}"));
        assert_eq!(
            verify(Some(&header), &b, &secret(), at(1_633_174_600)),
            Ok(())
        );
    }

    #[test]
    fn tiktoks_documented_header_shape_parses() {
        // The example header from TikTok's docs: a timestamp and 64 hex digits.
        let example =
            "t=1633174587,s=18494715036ac4416a1d0a673871a2edbcfc94d94bd88ccd2c5ec9b3425afe66";
        let parsed = parse_header(example).unwrap();
        assert_eq!(parsed.t, 1_633_174_587);
        assert_eq!(parsed.t_text, "1633174587");
        assert_eq!(parsed.signatures.len(), 1);
        assert_eq!(parsed.signatures[0][0], 0x18);
        // Its body and secret are not published, so it verifies as a bad
        // signature (well-formed, not matching), not as malformed.
        assert_eq!(
            verify(Some(example), b"{}", &secret(), at(1_633_174_587)),
            Err(WebhookError::BadSignature)
        );
        // Spaces around parts and uppercase hex are tolerated.
        let b = b"x";
        let good = signature_header(SECRET, 1_633_174_587, b);
        let spaced = good
            .replace(',', ", ")
            .to_uppercase()
            .replace("T=", "t=")
            .replace("S=", "s=");
        assert_eq!(
            verify(Some(&spaced), b, &secret(), at(1_633_174_587)),
            Ok(())
        );
    }

    #[test]
    fn a_wrong_secret_or_a_tampered_body_is_refused() {
        let b = body("post.publish.complete", r#"{"publish_id":"p1"}"#);
        let now = at(1_700_000_000);
        let forged = signature_header("not-the-secret", now.timestamp(), &b);
        assert_eq!(
            verify(Some(&forged), &b, &secret(), now),
            Err(WebhookError::BadSignature)
        );
        let header = signature_header(SECRET, now.timestamp(), &b);
        let mut tampered = b.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 1;
        assert_eq!(
            verify(Some(&header), &tampered, &secret(), now),
            Err(WebhookError::BadSignature)
        );
        // The timestamp is signed too: moving it breaks the signature.
        let moved = header.replace(
            &format!("t={}", now.timestamp()),
            &format!("t={}", now.timestamp() + 1),
        );
        assert_eq!(
            verify(Some(&moved), &b, &secret(), now),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_after_the_signature_check() {
        let b = b"{}";
        let t = 1_700_000_000;
        let header = signature_header(SECRET, t, b);
        assert_eq!(verify(Some(&header), b, &secret(), at(t + 300)), Ok(()));
        assert_eq!(verify(Some(&header), b, &secret(), at(t - 300)), Ok(()));
        assert_eq!(
            verify(Some(&header), b, &secret(), at(t + 301)),
            Err(WebhookError::Stale {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            verify(Some(&header), b, &secret(), at(t - 301)),
            Err(WebhookError::FromTheFuture {
                ahead_secs: 301,
                tolerance_secs: 300
            })
        );
        // A forged and stale request is told it is forged: the clock is only
        // looked at for authentic requests.
        let forged = signature_header("other", t, b);
        assert_eq!(
            verify(Some(&forged), b, &secret(), at(t + 10_000)),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let s64 = "a".repeat(64);
        for (header, what) in [
            ("", "missing"),
            ("   ", "missing"),
            ("garbage", "not key=value"),
            (&format!("s={s64}") as &str, "t is missing"),
            ("t=1700000000", "s is missing"),
            (&format!("t=abc,s={s64}"), "t is not a number"),
            (&format!("t=-5,s={s64}"), "t is not a number"),
            (&format!("t=,s={s64}"), "t is not a number"),
            (&format!("t=99999999999999999999,s={s64}"), "out of range"),
            ("t=1700000000,s=zz", "not hex"),
            ("t=1700000000,s=abcd", "64 hex digits"),
            (&format!("t=1,t=2,s={s64}"), "twice"),
        ] {
            let got = verify(Some(header), b"{}", &secret(), at(1_700_000_000)).unwrap_err();
            if what == "missing" {
                assert_eq!(got, WebhookError::MissingSignature, "{header:?}");
            } else {
                assert!(
                    matches!(got, WebhookError::MalformedSignature(m) if m.contains(what)),
                    "{header:?}: {got}"
                );
            }
            assert!(got.is_authentication());
        }
        assert_eq!(
            verify(None, b"{}", &secret(), at(0)),
            Err(WebhookError::MissingSignature)
        );
    }

    #[test]
    fn errors_never_carry_the_signature_or_secret() {
        let b = b"{}";
        let header = signature_header(SECRET, 1, b);
        let sig = header.split("s=").nth(1).unwrap().to_owned();
        for err in [
            verify(Some(&header), b, &Secret::new("x"), at(1)).unwrap_err(),
            verify(Some(&header), b, &secret(), at(100_000)).unwrap_err(),
        ] {
            let text = format!("{err} {err:?}");
            assert!(!text.contains(&sig) && !text.contains(SECRET), "{text}");
        }
    }

    #[test]
    fn publish_events_parse() {
        let w = parse(&body(
            "post.publish.inbox_delivered",
            r#"{"publish_id":"v_inbox_file~v2.1","publish_type":"INBOX_SHARE"}"#,
        ))
        .unwrap();
        assert_eq!(w.client_key, "ck");
        assert_eq!(w.user_openid, "open-1");
        assert_eq!(w.create_time, 1_633_174_500);
        assert_eq!(w.event_name, "post.publish.inbox_delivered");
        assert_eq!(
            w.event,
            Event::InboxDelivered(PublishRef {
                publish_id: "v_inbox_file~v2.1".into(),
                publish_type: Some("INBOX_SHARE".into()),
            })
        );
        let w = parse(&body("post.publish.complete", r#"{"publish_id":"p"}"#)).unwrap();
        assert!(
            matches!(w.event, Event::Complete(ref p) if p.publish_id == "p" && p.publish_type.is_none())
        );

        let w = parse(&body(
            "post.publish.failed",
            r#"{"publish_id":"p","reason":"file_format_check_failed","publish_type":"INBOX_SHARE"}"#,
        ))
        .unwrap();
        assert!(matches!(
            w.event,
            Event::Failed { ref reason, .. } if *reason == FailReason::FileFormatCheckFailed
        ));
        let w = parse(&body(
            "post.publish.failed",
            r#"{"publish_id":"p","reason":"something_new"}"#,
        ))
        .unwrap();
        assert!(matches!(
            w.event,
            Event::Failed { reason: FailReason::Other(ref r), .. } if r == "something_new"
        ));
    }

    #[test]
    fn post_ids_parse_as_u64_from_numbers_and_strings() {
        let big = 7_459_287_841_546_292_488u64;
        for content in [
            format!(r#"{{"publish_id":"p","post_id":{big}}}"#),
            format!(r#"{{"publish_id":"p","post_id":"{big}"}}"#),
        ] {
            let w = parse(&body("post.publish.publicly_available", &content)).unwrap();
            assert_eq!(
                w.event,
                Event::PubliclyAvailable {
                    publish: PublishRef {
                        publish_id: "p".into(),
                        publish_type: None
                    },
                    post_id: big
                }
            );
        }
        let w = parse(&body(
            "post.publish.no_longer_publicaly_available",
            r#"{"publish_id":"p","post_id":5}"#,
        ))
        .unwrap();
        assert!(matches!(
            w.event,
            Event::NoLongerPubliclyAvailable { post_id: 5, .. }
        ));
        for bad in [
            r#"{"publish_id":"p","post_id":"12x"}"#,
            r#"{"publish_id":"p","post_id":1.5}"#,
            r#"{"publish_id":"p","post_id":-1}"#,
            r#"{"publish_id":"p"}"#,
        ] {
            assert!(
                matches!(
                    parse(&body("post.publish.publicly_available", bad)),
                    Err(WebhookError::MalformedBody(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn authorization_removed_and_unknown_events() {
        let w = parse(&body("authorization.removed", r#"{"reason":1}"#)).unwrap();
        assert_eq!(w.event, Event::AuthorizationRemoved { reason: 1 });
        assert_eq!(removal_reason_text(1), "the user disconnected the app");
        assert_eq!(removal_reason_text(42), "unknown reason");
        let w = parse(&body("video.upload.failed", r#"{"share_id":"x"}"#)).unwrap();
        assert_eq!(w.event, Event::Unknown("video.upload.failed".into()));
        // An unknown event's content is not read, whatever its shape.
        let odd = serde_json::json!({
            "client_key": "ck", "event": "new.thing", "create_time": 1, "content": {"a": 1}
        })
        .to_string();
        assert_eq!(
            parse(odd.as_bytes()).unwrap().event,
            Event::Unknown("new.thing".into())
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let as_object = serde_json::json!({
            "client_key": "ck", "event": "post.publish.complete", "create_time": 1,
            "user_openid": "u", "content": {"publish_id": "p"}
        })
        .to_string();
        let err = parse(as_object.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("not a string"), "{err}");
        assert!(!err.is_authentication());
        for bad in [
            b"not json".to_vec(),
            b"{}".to_vec(),
            br#"{"client_key":"ck","event":"post.publish.complete","create_time":"soon","content":"{}"}"#.to_vec(),
            br#"{"client_key":"ck","event":"post.publish.complete","create_time":1}"#.to_vec(),
            body("post.publish.complete", "{not json"),
            body("post.publish.complete", r#"{"publish_id":""}"#),
            body("post.publish.complete", r#"{"publish_id":7}"#),
            body("post.publish.failed", r#"{"publish_id":"p"}"#),
            body("authorization.removed", r#"{"reason":"one"}"#),
        ] {
            assert!(
                matches!(parse(&bad), Err(WebhookError::MalformedBody(_))),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
    }
}
