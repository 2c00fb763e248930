//! Helpers for the end-to-end tests: the local AWS endpoint, unique names,
//! generated media, the Lambda emulator harness ([`lambda`]) and the
//! DynamoDB stream's event source mapping ([`stream`]).

pub mod bus;
pub mod events;
pub mod http_api;
pub mod lambda;
pub mod lambda_events;
pub mod stream;
pub mod template_stack;

/// The simulator's fault rules, for [`TestSim::fault`].
pub use tiktok_sim::{FaultAction, FaultRule};

use aws_config::SdkConfig;

/// The SDK configuration for moto. The tests need `AWS_ENDPOINT_URL`, which
/// `make test` (infra/with-local-stack.sh) sets after starting moto; without
/// it they fail loudly instead of reaching real AWS or skipping quietly.
pub async fn local_aws() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
        "AWS_ENDPOINT_URL must point at the local moto server (got {endpoint:?}); run the tests with `make test`"
    );
    shared::aws::load_config().await
}

/// A binary of the workspace (a function, the CLI), as `cargo test
/// --workspace` (`make test`) and `cargo build` leave it: next to the
/// running test or tool, or in `TIKTOK_DRAFTS_BIN_DIR` when that is set
/// (binaries built elsewhere, e.g. copied out of a target folder other
/// clones build into too).
pub fn workspace_binary(name: &str) -> Result<std::path::PathBuf, String> {
    let dir = match std::env::var_os("TIKTOK_DRAFTS_BIN_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("where this runs from: {e}"))?;
            // A test runs from target/debug/deps, a tool from target/debug.
            let dir = exe.parent().ok_or("the binary's folder")?;
            if dir.ends_with("deps") {
                dir.parent().ok_or("the target folder")?.to_path_buf()
            } else {
                dir.to_path_buf()
            }
        }
    };
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built: `make test` and `make demo` build every binary first",
            path.display()
        ))
    }
}

/// A name no other test uses, so tests can share one moto server in parallel.
pub fn unique_name(prefix: &str) -> String {
    let suffix: u64 = rand::random();
    format!("{prefix}-{suffix:016x}")
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A `len`-byte MP4 TikTok takes: a real `moov` describing a 1080 × 1920
/// H.264 track at 30 fps (10 s, or fewer frames when `len` is small) and
/// samples of noise from `seed`, so format checks pass and hashes differ
/// between seeds. See `test_media::video` for other codecs, rates and
/// sizes.
pub fn fake_mp4(len: usize, seed: u64) -> Vec<u8> {
    test_media::video::VideoSpec::default()
        .fitting(len as u64)
        .bytes(len, seed)
}

/// `len` deterministic pseudo-random bytes (xorshift64: fast, and
/// incompressible enough that nothing on the way can shortcut them).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    test_media::noise(len, seed)
}

/// The TikTok simulator started in-process for one test, plus the control-API
/// calls the tests use.
pub struct TestSim {
    handle: Option<tiktok_sim::SimHandle>,
    base: String,
    http: reqwest::Client,
}

/// The app credentials every test sim is configured with.
pub const SIM_CLIENT_KEY: &str = "test-client-key";
pub const SIM_CLIENT_SECRET: &str = "test-client-secret-0123456789";
pub const SIM_REDIRECT_URI: &str = "https://drafts.example.com/auth/callback";

impl TestSim {
    /// Starts a simulator with the test credentials, one redirect URI and
    /// whatever `adjust` changes in the settings.
    pub async fn start(adjust: impl FnOnce(&mut tiktok_sim::Settings)) -> Self {
        let mut settings = tiktok_sim::Settings {
            client_key: SIM_CLIENT_KEY.into(),
            client_secret: SIM_CLIENT_SECRET.into(),
            redirect_uris: vec![SIM_REDIRECT_URI.into()],
            ..Default::default()
        };
        adjust(&mut settings);
        let handle = tiktok_sim::start(tiktok_sim::SimConfig {
            settings,
            ..Default::default()
        })
        .await
        .expect("the simulator starts");
        let base = handle.base_url();
        Self {
            handle: Some(handle),
            base,
            http: reqwest::Client::new(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The project's client, pointed at this simulator. Reads are retried
    /// without waiting, so tests do not sleep.
    pub fn client(&self) -> shared::tiktok::TikTokClient {
        let endpoints = shared::tiktok::Endpoints::for_base_url(&self.base).expect("sim URL");
        let http = shared::tiktok::config::http_client(Default::default()).expect("http client");
        shared::tiktok::TikTokClient::new(
            http,
            endpoints,
            shared::tiktok::AppCredentials {
                client_key: SIM_CLIENT_KEY.into(),
                client_secret: SIM_CLIENT_SECRET.into(),
            },
        )
        .with_read_retry(shared::tiktok::ReadRetry::immediate(3))
    }

    /// Calls the control API and returns its JSON answer; panics on a non-2xx.
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("control API reachable");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path} -> {status}: {text}");
        if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        self.control(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        self.control(reqwest::Method::GET, path, None).await
    }

    /// Seeds a creator; `extra` fields override the defaults.
    pub async fn seed_user(&self, open_id: &str, extra: serde_json::Value) {
        let mut user = serde_json::json!({
            "open_id": open_id,
            "username": format!("user_{open_id}"),
            "display_name": format!("Creator {open_id}"),
        });
        if let (Some(u), Some(e)) = (user.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                u.insert(k.clone(), v.clone());
            }
        }
        self.post("/_sim/users", user).await;
    }

    /// Mints tokens for a seeded user without the browser step.
    pub async fn tokens(
        &self,
        open_id: &str,
        scopes: &[&str],
    ) -> shared::tiktok::oauth::TokenResponse {
        let value = self
            .post(
                "/_sim/tokens",
                serde_json::json!({"open_id": open_id, "scopes": scopes}),
            )
            .await;
        serde_json::from_value(value).expect("token JSON")
    }

    /// The simulator's record of one publish.
    pub async fn publish(&self, publish_id: &str) -> serde_json::Value {
        let encoded: String = url::form_urlencoded::byte_serialize(publish_id.as_bytes()).collect();
        self.get(&format!("/_sim/publishes/{encoded}")).await
    }

    /// Schedules a fault (see the simulator's README).
    pub async fn fault(&self, rule: tiktok_sim::FaultRule) {
        self.post("/_sim/faults", serde_json::json!(rule)).await;
    }

    /// Drops every fault not spent yet.
    pub async fn clear_faults(&self) {
        self.control(reqwest::Method::DELETE, "/_sim/faults", None)
            .await;
    }

    pub async fn advance_clock(&self, seconds: i64) {
        self.post(
            "/_sim/clock/advance",
            serde_json::json!({"seconds": seconds}),
        )
        .await;
    }

    /// The request log, optionally below a path prefix.
    pub async fn requests(&self, path_prefix: &str) -> Vec<serde_json::Value> {
        let v = self
            .get(&format!("/_sim/requests?path_prefix={path_prefix}"))
            .await;
        match v {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Object(mut o) => match o.remove("requests") {
                Some(serde_json::Value::Array(items)) => items,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }
}

/// An encoded image of the given format with a gradient, so that decoders and
/// size checks see real pixels.
pub fn test_image(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .expect("encode test image");
    out.into_inner()
}

/// Every log line of this test process, captured at debug level (the
/// project's and its dependencies'), so tests can prove that no token or
/// secret is ever logged. Call [`capture_logs`] before the code under test.
pub fn capture_logs() {
    log_buffer();
}

/// What has been logged since [`capture_logs`] was first called.
pub fn captured_logs() -> String {
    let buf = log_buffer().lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&buf).into_owned()
}

fn log_buffer() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer_buf = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || LogWriter(writer_buf.clone()))
            .finish();
        // A test binary has one global subscriber; ours is it.
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fresh table and secrets prefix for one test deployment, with the TikTok
/// app secret holding the test simulator's credentials.
pub struct DeploymentStores {
    pub table: String,
    pub prefix: String,
    pub app_secret_id: String,
}

pub async fn deployment_stores(aws: &shared::aws::AwsClients) -> DeploymentStores {
    let table = unique_name("drafts");
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .expect("create the table");
    let prefix = unique_name("tiktok-drafts");
    let app_secret_id = format!("{prefix}/app");
    aws.secrets
        .create_secret()
        .name(&app_secret_id)
        .secret_string(
            serde_json::json!({"client_key": SIM_CLIENT_KEY, "client_secret": SIM_CLIENT_SECRET})
                .to_string(),
        )
        .send()
        .await
        .expect("create the app secret");
    DeploymentStores {
        table,
        prefix,
        app_secret_id,
    }
}

/// Connects `alias` as the login function leaves an account: the simulator
/// mints tokens for the (already seeded) user, `manager` stores them in
/// Secrets Manager and the account is bound in the table.
pub async fn connect_account(
    sim: &TestSim,
    manager: &shared::tokens::TokenManager<shared::tokens::SecretsManagerTokenStore>,
    accounts: &shared::accounts::Accounts,
    open_id: &str,
    alias: &str,
    scopes: &[&str],
) -> shared::tokens::StoredTokens {
    let tokens = sim.tokens(open_id, scopes).await;
    let stored = manager
        .save_token_response(&tokens)
        .await
        .expect("store the tokens");
    accounts
        .connect(
            shared::accounts::ConnectedAccount {
                open_id: open_id.into(),
                alias: alias.into(),
                display_name: None,
                avatar_url: None,
                scopes: stored.scopes.clone(),
                access_expires_at: stored.access_expires_at,
                refresh_expires_at: stored.refresh_expires_at,
            },
            shared::accounts::AliasPermits::default(),
            &format!("invite-{open_id}"),
        )
        .await
        .expect("bind the account");
    stored
}
