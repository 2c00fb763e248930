//! Helpers shared by the simulator's integration tests: plain reqwest calls, no project
//! client.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tiktok_sim::{SimConfig, SimHandle};

pub struct Sim {
    pub handle: SimHandle,
    pub base: String,
    pub http: reqwest::Client,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("build reqwest client")
}

impl Sim {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default()).await
    }

    pub async fn start_with(config: SimConfig) -> Self {
        let handle = tiktok_sim::start(config).await.expect("start simulator");
        let base = handle.base_url();
        Self {
            handle,
            base,
            http: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Calls the control API and returns its JSON, failing the test on a non-2xx status.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control call");
        let status = response.status();
        let value: Value = response.json().await.expect("control JSON");
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn post_control(&self, path: &str, body: Value) -> Value {
        self.control(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn settings(&self, patch: Value) {
        let mut settings = self
            .control(reqwest::Method::GET, "/_sim/settings", None)
            .await;
        for (k, v) in patch.as_object().expect("settings patch is an object") {
            settings[k] = v.clone();
        }
        self.control(reqwest::Method::PUT, "/_sim/settings", Some(settings))
            .await;
    }

    pub async fn user(&self, open_id: &str) {
        self.post_control(
            "/_sim/users",
            json!({"open_id": open_id, "username": format!("{open_id}_name"), "display_name": format!("User {open_id}")}),
        )
        .await;
    }

    pub async fn user_with(&self, body: Value) {
        self.post_control("/_sim/users", body).await;
    }

    /// Mints a grant and returns the whole token response.
    pub async fn grant(&self, open_id: &str, scopes: &[&str]) -> Value {
        self.post_control(
            "/_sim/tokens",
            json!({"open_id": open_id, "scopes": scopes}),
        )
        .await
    }

    pub async fn token(&self, open_id: &str, scopes: &[&str]) -> String {
        self.grant(open_id, scopes).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub async fn advance(&self, seconds: i64) {
        self.post_control("/_sim/clock/advance", json!({"seconds": seconds}))
            .await;
    }

    /// POSTs JSON to an API endpoint with a bearer token.
    pub async fn api(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .header("Content-Type", "application/json; charset=UTF-8")
            .body(body.to_string())
            .send()
            .await
            .expect("API call");
        let status = response.status();
        let text = response.text().await.expect("API body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| json!(text));
        (status, value)
    }

    pub async fn status(&self, token: &str, publish_id: &str) -> Value {
        let (status, body) = self
            .api(
                "/v2/post/publish/status/fetch/",
                token,
                json!({"publish_id": publish_id}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    pub async fn publish(&self, publish_id: &str) -> Value {
        self.control(
            reqwest::Method::GET,
            &format!("/_sim/publishes/{publish_id}"),
            None,
        )
        .await
    }

    /// Waits (real time, briefly) until a background pull leaves PROCESSING_DOWNLOAD.
    pub async fn wait_settled(&self, publish_id: &str) -> Value {
        for _ in 0..200 {
            let publish = self.publish(publish_id).await;
            if publish["status"] != "PROCESSING_DOWNLOAD" {
                return publish;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("publish {publish_id} stayed in PROCESSING_DOWNLOAD");
    }
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// A `len`-byte MP4 that TikTok's checks pass: a real `moov` (1080 × 1920
/// H.264 at 30 fps) around samples of noise.
pub fn fake_mp4(len: usize) -> Vec<u8> {
    test_media::video::VideoSpec::default()
        .fitting(len as u64)
        .bytes(len, 0x1234_5678)
}

pub fn file_upload_source(size: u64, chunk: u64) -> Value {
    json!({"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk, "total_chunk_count": size / chunk})
}
