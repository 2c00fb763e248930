//! Webhook sending: signed deliveries on status changes and removed authorizations, the
//! delivery record, redelivery, and nothing sent without a `webhook_url`.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{Sim, error_code, fake_mp4, file_upload_source};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::post;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use tiktok_sim::{Settings, SimConfig};

const SECRET: &str = "webhook-test-secret";
const CLIENT_KEY: &str = "webhook-test-key";
const INBOX: &str = "/v2/post/publish/inbox/video/init/";

/// What the test's receiver got: the signature header and the raw body.
#[derive(Debug, Clone)]
struct Received {
    signature: Option<String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<AtomicU16>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    r.got.lock().unwrap().push(Received {
        // Looked up with TikTok's example casing: names are case-insensitive.
        signature: header("Tiktok-Signature"),
        content_type: header("content-type"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    AxStatus::from_u16(r.answer.load(Ordering::SeqCst)).unwrap()
}

/// A local HTTP receiver; returns its URL.
async fn receiver() -> (Receiver, String) {
    let r = Receiver {
        got: Arc::default(),
        answer: Arc::new(AtomicU16::new(200)),
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (r, url)
}

async fn sim_with_webhooks(url: Option<&str>) -> Sim {
    let sim = Sim::start_with(SimConfig {
        settings: Settings {
            client_key: CLIENT_KEY.into(),
            client_secret: SECRET.into(),
            webhook_url: url.map(str::to_owned),
            ..Settings::default()
        },
        ..SimConfig::default()
    })
    .await;
    sim.user("alice").await;
    sim
}

/// Checks the signature the way a receiver must, with an HMAC computed here.
fn assert_signed(received: &Received, now_secs: i64) -> Value {
    let header = received
        .signature
        .as_deref()
        .expect("TikTok-Signature sent");
    let (t, s) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",s="))
        .unwrap_or_else(|| panic!("header shape: {header}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    mac.verify_slice(&hex::decode(s).unwrap())
        .expect("signature matches body and t");
    let t: i64 = t.parse().unwrap();
    assert!((t - now_secs).abs() <= 5, "t {t} vs now {now_secs}");
    assert_eq!(received.content_type.as_deref(), Some("application/json"));
    let envelope: Value = serde_json::from_str(&received.body).unwrap();
    assert_eq!(envelope["client_key"], CLIENT_KEY);
    // The event's time; a redelivery keeps it and is signed later.
    let created = envelope["create_time"].as_i64().expect("create_time");
    assert!(
        created <= t && t - created <= 3600,
        "create_time {created}, t {t}"
    );
    envelope
}

/// The envelope's `content`, which must be a string of JSON.
fn content(envelope: &Value) -> Value {
    let text = envelope["content"].as_str().expect("content is a string");
    serde_json::from_str(text).unwrap()
}

async fn deliveries(sim: &Sim) -> Vec<Value> {
    sim.control(reqwest::Method::GET, "/_sim/webhooks", None)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Waits (real time, briefly) until `count` deliveries are done.
async fn settled(sim: &Sim, count: usize) -> Vec<Value> {
    for _ in 0..400 {
        let list = deliveries(sim).await;
        if list.len() >= count && list.iter().all(|d| d["done"] == true) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("deliveries did not settle: {:?}", deliveries(sim).await);
}

async fn now_secs(sim: &Sim) -> i64 {
    sim.control(reqwest::Method::GET, "/_sim/clock", None).await["now_ms"]
        .as_i64()
        .unwrap()
        / 1000
}

/// A one-chunk inbox upload; returns (token, publish_id).
async fn upload(sim: &Sim) -> (String, String) {
    let token = sim.token("alice", &["video.upload"]).await;
    let data = fake_mp4(1000);
    let (status, body) = sim
        .api(
            INBOX,
            &token,
            json!({"source_info": file_upload_source(1000, 1000)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["data"]["publish_id"].as_str().unwrap().to_owned();
    let url = body["data"]["upload_url"].as_str().unwrap();
    let put = sim
        .http
        .put(url)
        .header("Content-Type", "video/mp4")
        .header("Content-Range", "bytes 0-999/1000")
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    (token, id)
}

#[tokio::test]
async fn an_inbox_delivery_is_signed_and_recorded() {
    let (receiver, url) = receiver().await;
    let sim = sim_with_webhooks(Some(&url)).await;
    sim.advance(3600).await; // t comes from the virtual clock, not the wall clock
    let (_, publish_id) = upload(&sim).await;

    let list = settled(&sim, 1).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let d = &list[0];
    assert_eq!(d["event"], "post.publish.inbox_delivered");
    assert_eq!(d["publish_id"], publish_id.as_str());
    assert_eq!(d["open_id"], "alice");
    assert_eq!(d["response_status"], 200);
    assert_eq!(d["url"], url.as_str());

    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, d["body"].as_str().unwrap());
    assert_eq!(got[0].signature.as_deref(), d["signature"].as_str());
    let envelope = assert_signed(&got[0], now_secs(&sim).await);
    assert_eq!(envelope["event"], "post.publish.inbox_delivered");
    assert_eq!(envelope["user_openid"], "alice");
    assert_eq!(
        content(&envelope),
        json!({"publish_id": publish_id, "publish_type": "INBOX_SHARE"})
    );
}

#[tokio::test]
async fn complete_sends_publicly_available_with_a_u64_post_id_and_failed_its_reason() {
    let (receiver, url) = receiver().await;
    let sim = sim_with_webhooks(Some(&url)).await;
    let (_, first) = upload(&sim).await;
    let big: u64 = 7_459_287_841_546_292_488;
    sim.post_control(
        &format!("/_sim/publishes/{first}/status"),
        json!({"status": "PUBLISH_COMPLETE", "post_ids": [big]}),
    )
    .await;
    let (_, second) = upload(&sim).await;
    sim.post_control(
        &format!("/_sim/publishes/{second}/status"),
        json!({"status": "FAILED", "fail_reason": "file_format_check_failed"}),
    )
    .await;

    let list = settled(&sim, 5).await;
    let events: Vec<(&str, &str)> = list
        .iter()
        .map(|d| {
            (
                d["event"].as_str().unwrap(),
                d["publish_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("post.publish.inbox_delivered", first.as_str()),
            ("post.publish.complete", first.as_str()),
            ("post.publish.publicly_available", first.as_str()),
            ("post.publish.inbox_delivered", second.as_str()),
            ("post.publish.failed", second.as_str()),
        ]
    );
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 5);
    let now = now_secs(&sim).await;
    let available = content(&assert_signed(&got[2], now));
    assert_eq!(available["post_id"].as_u64(), Some(big));
    // The number is written exactly, not through a float.
    assert!(got[2].body.contains(&big.to_string()), "{}", got[2].body);
    let failed = content(&assert_signed(&got[4], now));
    assert_eq!(failed["reason"], "file_format_check_failed");
    assert_eq!(failed["publish_id"], second.as_str());
}

#[tokio::test]
async fn deauthorize_revokes_tokens_sends_the_event_and_fails_processing_publishes() {
    let (receiver, url) = receiver().await;
    let sim = sim_with_webhooks(Some(&url)).await;
    sim.settings(json!({"auto_advance": false})).await;
    let (token, publish_id) = upload(&sim).await; // stays PROCESSING_UPLOAD

    let answer = sim
        .post_control("/_sim/users/alice/deauthorize", json!({"reason": 4}))
        .await;
    assert_eq!(answer["revoked_grants"], 1);
    assert_eq!(answer["failed_publishes"], json!([publish_id]));
    let (status, body) = sim
        .api(
            "/v2/post/publish/status/fetch/",
            &token,
            json!({"publish_id": publish_id}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "access_token_invalid");

    let list = settled(&sim, 2).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let got = receiver.got.lock().unwrap().clone();
    let now = now_secs(&sim).await;
    let removed = assert_signed(&got[0], now);
    assert_eq!(removed["event"], "authorization.removed");
    assert_eq!(removed["user_openid"], "alice");
    assert_eq!(content(&removed), json!({"reason": 4}));
    let failed = assert_signed(&got[1], now);
    assert_eq!(failed["event"], "post.publish.failed");
    assert_eq!(content(&failed)["reason"], "auth_removed");

    // An unknown user is refused; an empty body means reason 1.
    let response = sim
        .http
        .post(sim.url("/_sim/users/nobody/deauthorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    sim.post_control("/_sim/users/alice/deauthorize", json!({}))
        .await;
    let list = settled(&sim, 3).await;
    let last = serde_json::from_str::<Value>(list[2]["body"].as_str().unwrap()).unwrap();
    assert_eq!(content(&last), json!({"reason": 1}));
}

/// The strict reading of revoke: it "disconnects your app from the user's TikTok account",
/// so it ends every grant of the user (tokens of earlier code exchanges too), and TikTok
/// says so with `authorization.removed`. Other users keep theirs.
#[tokio::test]
async fn revoke_ends_the_users_whole_grant_and_sends_authorization_removed() {
    let (receiver, url) = receiver().await;
    let sim = sim_with_webhooks(Some(&url)).await;
    sim.user("bob").await;
    let scopes = ["user.info.basic", "video.upload"];
    let first = sim.grant("alice", &scopes).await;
    let second = sim.grant("alice", &scopes).await;
    let bobs = sim.grant("bob", &scopes).await;
    let user_info = |token: &Value| {
        let request = sim
            .http
            .get(sim.url("/v2/user/info/?fields=open_id"))
            .bearer_auth(token.as_str().unwrap())
            .send();
        async move { request.await.unwrap().status() }
    };
    assert_eq!(user_info(&second["access_token"]).await, StatusCode::OK);

    // The app revokes the newer grant's access token ...
    let response = sim
        .http
        .post(sim.url("/v2/oauth/revoke/"))
        .form(&[
            ("client_key", CLIENT_KEY),
            ("client_secret", SECRET),
            ("token", second["access_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // ... and the older grant dies with it: access and refresh token alike.
    for grant in [&first, &second] {
        assert_eq!(
            user_info(&grant["access_token"]).await,
            StatusCode::UNAUTHORIZED
        );
        let refreshed: Value = sim
            .http
            .post(sim.url("/v2/oauth/token/"))
            .form(&[
                ("client_key", CLIENT_KEY),
                ("client_secret", SECRET),
                ("grant_type", "refresh_token"),
                ("refresh_token", grant["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(refreshed["error"], "invalid_grant", "{refreshed}");
    }
    assert_eq!(user_info(&bobs["access_token"]).await, StatusCode::OK);

    let list = settled(&sim, 1).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let got = receiver.got.lock().unwrap().clone();
    let removed = assert_signed(&got[0], now_secs(&sim).await);
    assert_eq!(removed["event"], "authorization.removed");
    assert_eq!(removed["user_openid"], "alice");
    assert_eq!(content(&removed), json!({"reason": 5}), "developer revoked");

    // Revoking a dead token again changes nothing and sends nothing.
    let again = sim
        .http
        .post(sim.url("/v2/oauth/revoke/"))
        .form(&[
            ("client_key", CLIENT_KEY),
            ("client_secret", SECRET),
            ("token", first["access_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(deliveries(&sim).await.len(), 1);
    assert_eq!(user_info(&bobs["access_token"]).await, StatusCode::OK);
}

#[tokio::test]
async fn redelivery_repeats_the_body_signed_again_and_failures_are_recorded() {
    let (receiver, url) = receiver().await;
    let sim = sim_with_webhooks(Some(&url)).await;
    receiver.answer.store(500, Ordering::SeqCst);
    upload(&sim).await;
    let list = settled(&sim, 1).await;
    assert_eq!(list[0]["response_status"], 500);

    sim.advance(120).await;
    receiver.answer.store(200, Ordering::SeqCst);
    let again = sim
        .post_control("/_sim/webhooks/0/redeliver", json!({}))
        .await;
    assert_eq!(again["n"], 1);
    assert_eq!(again["redelivery_of"], 0);
    let list = settled(&sim, 2).await;
    assert_eq!(list[1]["response_status"], 200);
    assert_eq!(list[1]["body"], list[0]["body"]);
    assert_ne!(list[1]["signature"], list[0]["signature"]);
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    let envelope = assert_signed(&got[1], now_secs(&sim).await);
    let t: i64 = got[1].signature.as_deref().unwrap()[2..12].parse().unwrap();
    assert!(envelope["create_time"].as_i64().unwrap() <= t - 120);

    let missing = sim
        .http
        .post(sim.url("/_sim/webhooks/9/redeliver"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // A receiver that is not there: recorded as an error, nothing blocks.
    sim.settings(json!({"webhook_url": "http://127.0.0.1:9/nothing"}))
        .await;
    upload(&sim).await;
    let list = settled(&sim, 3).await;
    assert_eq!(list[2]["response_status"], Value::Null);
    assert!(list[2]["error"].as_str().is_some(), "{:?}", list[2]);

    // reset forgets deliveries.
    sim.post_control("/_sim/reset", json!({})).await;
    assert!(deliveries(&sim).await.is_empty());
}

#[tokio::test]
async fn nothing_is_sent_without_a_webhook_url() {
    let sim = sim_with_webhooks(None).await;
    let (_, publish_id) = upload(&sim).await;
    sim.post_control(
        &format!("/_sim/publishes/{publish_id}/status"),
        json!({"status": "PUBLISH_COMPLETE"}),
    )
    .await;
    sim.post_control("/_sim/users/alice/deauthorize", json!({}))
        .await;
    assert!(deliveries(&sim).await.is_empty());
    let response = sim
        .http
        .post(sim.url("/_sim/webhooks/0/redeliver"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A webhook_url that is not a URL is refused.
    let mut settings = sim
        .control(reqwest::Method::GET, "/_sim/settings", None)
        .await;
    settings["webhook_url"] = json!("not a url");
    let response = sim
        .http
        .put(sim.url("/_sim/settings"))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
