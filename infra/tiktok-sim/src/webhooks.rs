//! Webhook sending: when `webhook_url` is set, publish status changes and removed
//! authorizations are POSTed there, signed as TikTok signs them:
//! `TikTok-Signature: t=<unix seconds>,s=<hex HMAC-SHA256(client_secret, "<t>.<body>")>`,
//! with `t` and `create_time` from the virtual clock and `content` as a string of
//! serialized JSON.
//!
//! Deliveries are recorded before they are sent (`GET /_sim/webhooks`) and sent by one
//! background worker in the order they were made, so the request that caused them never
//! waits. Any one can be sent again (`POST /_sim/webhooks/{n}/redeliver`): the same body,
//! signed again at the current virtual time, as TikTok's retries are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::{App, lock};
use crate::state::{Publish, PublishStatus, State};

/// How long the receiver gets to answer one delivery.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The signature header's name (TikTok's spelling; names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "TikTok-Signature";

/// One webhook, as made and as sent.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Its position in the record, used to redeliver it.
    pub n: usize,
    pub event: String,
    pub open_id: String,
    pub publish_id: Option<String>,
    pub url: String,
    /// The exact bytes sent (a JSON envelope).
    pub body: String,
    /// The `TikTok-Signature` value sent.
    pub signature: String,
    /// The delivery this one repeats.
    pub redelivery_of: Option<usize>,
    pub created_at_ms: i64,
    /// Whether the send finished (answered or failed).
    pub done: bool,
    /// The receiver's HTTP status.
    pub response_status: Option<u16>,
    /// Why no status came back (connection refused, timeout).
    pub error: Option<String>,
}

/// The record of deliveries and the queue to the sending worker.
pub struct Webhooks {
    deliveries: Vec<Delivery>,
    queue: mpsc::UnboundedSender<usize>,
}

impl Webhooks {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<usize>) {
        let (queue, rx) = mpsc::unbounded_channel();
        (
            Self {
                deliveries: Vec::new(),
                queue,
            },
            rx,
        )
    }

    pub fn list(&self) -> Vec<Delivery> {
        self.deliveries.clone()
    }

    pub fn get(&self, n: usize) -> Option<&Delivery> {
        self.deliveries.get(n)
    }

    pub fn clear(&mut self) {
        self.deliveries.clear();
    }

    fn push(&mut self, mut delivery: Delivery) -> Delivery {
        delivery.n = self.deliveries.len();
        self.deliveries.push(delivery.clone());
        // The worker lives as long as the simulator; a closed queue means shutdown.
        let _ = self.queue.send(delivery.n);
        delivery
    }
}

/// An event about to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: &'static str,
    pub open_id: String,
    pub publish_id: Option<String>,
    pub content: Value,
}

/// `t=<t>,s=<hex>`: HMAC-SHA256 with the client secret over `<t>.<body>`.
pub fn sign(client_secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    format!("t={t},s={}", hex::encode(mac.finalize().into_bytes()))
}

/// What publishes looked like before a change, to see which ones moved.
pub type Snapshot = HashMap<String, (PublishStatus, Option<String>)>;

pub fn snapshot(state: &State) -> Snapshot {
    state
        .publishes
        .iter()
        .map(|(id, p)| (id.clone(), (p.status, p.fail_reason.clone())))
        .collect()
}

/// `publish_type` in events: `INBOX_SHARE` is documented; the direct-post value is not
/// (third parties assume `DIRECT_POST`).
fn publish_type(publish: &Publish) -> &'static str {
    if publish.is_direct_post() {
        "DIRECT_POST"
    } else {
        "INBOX_SHARE"
    }
}

/// The events for every publish whose status (or fail reason) changed since `before`.
pub fn status_events(before: &Snapshot, state: &State) -> Vec<Event> {
    let mut events = Vec::new();
    let mut changed: Vec<&Publish> = state
        .publishes
        .values()
        .filter(|p| before.get(&p.publish_id) != Some(&(p.status, p.fail_reason.clone())))
        .collect();
    changed.sort_by_key(|p| (p.updated_at_ms, p.publish_id.clone()));
    for publish in changed {
        let id = publish.publish_id.clone();
        let kind = publish_type(publish);
        let event = |name, content| Event {
            name,
            open_id: publish.open_id.clone(),
            publish_id: Some(id.clone()),
            content,
        };
        match publish.status {
            PublishStatus::ProcessingUpload | PublishStatus::ProcessingDownload => {}
            PublishStatus::SendToUserInbox => events.push(event(
                "post.publish.inbox_delivered",
                json!({"publish_id": id, "publish_type": kind}),
            )),
            PublishStatus::PublishComplete => {
                events.push(event(
                    "post.publish.complete",
                    json!({"publish_id": id, "publish_type": kind}),
                ));
                for post_id in &publish.post_ids {
                    events.push(event(
                        "post.publish.publicly_available",
                        json!({"publish_id": id, "post_id": post_id, "publish_type": kind}),
                    ));
                }
            }
            PublishStatus::Failed => events.push(event(
                "post.publish.failed",
                json!({
                    "publish_id": id,
                    "reason": publish.fail_reason.as_deref().unwrap_or("internal"),
                    "publish_type": kind,
                }),
            )),
        }
    }
    events
}

/// Records and queues `events` when a `webhook_url` is set. Called with the state locked
/// (the state lock is always taken before the webhook record's).
pub fn enqueue(app: &App, state: &State, events: Vec<Event>) {
    let Some(url) = state.settings.webhook_url.clone() else {
        return;
    };
    let now_ms = state.now_ms();
    let t = now_ms.div_euclid(1000);
    let mut record = lock(&app.webhooks);
    for event in events {
        let body = json!({
            "client_key": state.settings.client_key,
            "event": event.name,
            "create_time": t,
            "user_openid": event.open_id,
            // TikTok sends the event's fields as a string of serialized JSON.
            "content": event.content.to_string(),
        })
        .to_string();
        let signature = sign(&state.settings.client_secret, t, &body);
        let delivery = record.push(Delivery {
            n: 0,
            event: event.name.to_owned(),
            open_id: event.open_id,
            publish_id: event.publish_id,
            url: url.clone(),
            body,
            signature,
            redelivery_of: None,
            created_at_ms: now_ms,
            done: false,
            response_status: None,
            error: None,
        });
        tracing::debug!(n = delivery.n, event = %delivery.event, "webhook queued");
    }
}

/// Why a delivery cannot be repeated.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("no delivery {0}")]
    Unknown(usize),
    #[error("webhook_url is not set")]
    NoUrl,
}

/// Queues delivery `n` again: the same body, signed now, to the current `webhook_url`.
pub fn redeliver(app: &App, n: usize) -> Result<Delivery, RedeliverError> {
    app.read(|state| {
        let url = state
            .settings
            .webhook_url
            .clone()
            .ok_or(RedeliverError::NoUrl)?;
        let now_ms = state.now_ms();
        let t = now_ms.div_euclid(1000);
        let mut record = lock(&app.webhooks);
        let original = record.get(n).cloned().ok_or(RedeliverError::Unknown(n))?;
        let signature = sign(&state.settings.client_secret, t, &original.body);
        Ok(record.push(Delivery {
            url,
            signature,
            redelivery_of: Some(n),
            created_at_ms: now_ms,
            done: false,
            response_status: None,
            error: None,
            ..original
        }))
    })
}

/// Sends queued deliveries one after another until the simulator stops.
pub fn spawn_worker(app: Arc<App>, mut queue: mpsc::UnboundedReceiver<usize>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(n) = queue.recv().await {
            let Some(delivery) = lock(&app.webhooks).get(n).cloned() else {
                continue; // cleared meanwhile
            };
            let sent = app
                .http
                .post(&delivery.url)
                .timeout(SEND_TIMEOUT)
                .header("Content-Type", "application/json")
                .header(SIGNATURE_HEADER, &delivery.signature)
                .body(delivery.body.clone())
                .send()
                .await;
            let (status, error) = match sent {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(e) => (None, Some(e.without_url().to_string())),
            };
            tracing::debug!(n, event = %delivery.event, status, error, "webhook sent");
            let mut record = lock(&app.webhooks);
            if let Some(d) = record.deliveries.get_mut(n)
                && d.body == delivery.body
            {
                d.done = true;
                d.response_status = status;
                d.error = error;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn the_signature_is_hmac_sha256_over_t_dot_body() {
        // Known answer, computed independently with Python's hmac module:
        // hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign("secret", 1_700_000_000, "{}"),
            "t=1700000000,s=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn status_changes_become_events() {
        let mut state = State::fresh(Settings::default());
        let publish: Publish = serde_json::from_value(json!({
            "publish_id": "v_inbox_file~v2.1", "open_id": "alice", "kind": "inbox_video",
            "post_mode": "MEDIA_UPLOAD", "source": "FILE_UPLOAD", "status": "PROCESSING_UPLOAD",
            "fail_reason": null, "post_info": null, "video_size": 1, "chunk_size": 1,
            "total_chunk_count": 1, "uploaded_bytes": 1, "downloaded_bytes": null,
            "video_url": null, "photo_cover_index": null, "sha256": null,
            "media_format": null, "images": [], "post_ids": [], "upload_id": null,
            "media_ready": true, "created_at_ms": 0, "updated_at_ms": 0
        }))
        .unwrap();
        state.publishes.insert(publish.publish_id.clone(), publish);
        let before = snapshot(&state);
        assert!(status_events(&before, &state).is_empty());

        let p = state.publishes.get_mut("v_inbox_file~v2.1").unwrap();
        p.set_status(PublishStatus::SendToUserInbox, None, 1);
        let events = status_events(&before, &state);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "post.publish.inbox_delivered");
        assert_eq!(events[0].content["publish_type"], "INBOX_SHARE");

        let before = snapshot(&state);
        let p = state.publishes.get_mut("v_inbox_file~v2.1").unwrap();
        p.set_status(PublishStatus::PublishComplete, None, 2);
        let post_id = p.post_ids[0];
        let names: Vec<_> = status_events(&before, &state)
            .iter()
            .map(|e| (e.name, e.content.get("post_id").and_then(Value::as_u64)))
            .collect();
        assert_eq!(
            names,
            vec![
                ("post.publish.complete", None),
                ("post.publish.publicly_available", Some(post_id)),
            ]
        );

        let before = snapshot(&state);
        let p = state.publishes.get_mut("v_inbox_file~v2.1").unwrap();
        p.set_status(PublishStatus::Failed, Some("spam_risk_text".into()), 3);
        let events = status_events(&before, &state);
        assert_eq!(events[0].name, "post.publish.failed");
        assert_eq!(events[0].content["reason"], "spam_risk_text");
    }
}
