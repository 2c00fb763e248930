//! A test deployment for the CLI: moto (table, secrets, bucket), the TikTok
//! simulator, and the real `tiktok-drafts` binary pointed at both through
//! the environment variables the functions use.

use std::process::{Command, Output};

use shared::accounts::{Accounts, ConnectedAccount};
use shared::aws::AwsClients;
use shared::tokens::TokenManager;
use tiktok_drafts_tests::{DeploymentStores, TestSim, deployment_stores, local_aws, unique_name};

pub struct Stack {
    pub sim: TestSim,
    pub aws: AwsClients,
    pub table: String,
    pub prefix: String,
    pub app_secret_id: String,
    pub bucket: String,
}

/// The settings the CLI reads; everything else that could leak in from the
/// environment running the tests is removed.
const CLEARED: [&str; 8] = [
    "DEFAULT_ACCOUNT",
    "MEDIA_BASE_URL",
    "MEDIA_PRESIGNED_URLS",
    "UPLOAD_BUCKET",
    "CHUNK_SIZE_BYTES",
    "DIRECT_POST_ENABLED",
    "LOGIN_URL",
    "TIKTOK_PKCE_ENCODING",
];

impl Stack {
    /// A fresh deployment; photo pulls from the bucket on moto are allowed
    /// (the simulator treats its presigned URLs as a verified prefix).
    pub async fn start() -> Self {
        let aws = AwsClients::from_config(&local_aws().await);
        let bucket = unique_name("uploads");
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
        let media_prefix = format!("{}/{bucket}/media/", endpoint.trim_end_matches('/'));
        let sim = TestSim::start(|s| {
            s.verified_url_prefixes = vec![media_prefix.clone()];
            s.allow_http_pull = true;
        })
        .await;
        let DeploymentStores {
            table,
            prefix,
            app_secret_id,
        } = deployment_stores(&aws).await;
        aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
        Self {
            sim,
            aws,
            table,
            prefix,
            app_secret_id,
            bucket,
        }
    }

    /// A creator on the simulator, connected as `alias` the way the login
    /// function leaves an account (tokens stored, account bound).
    pub async fn connect(&self, open_id: &str, alias: &str, scopes: &[&str]) {
        self.sim.seed_user(open_id, serde_json::json!({})).await;
        let tokens = self.sim.tokens(open_id, scopes).await;
        let manager =
            TokenManager::for_deployment(&self.aws, self.sim.client(), &self.prefix, &self.table);
        let stored = manager.save_token_response(&tokens).await.unwrap();
        Accounts::new(self.aws.dynamodb.clone(), &self.table)
            .connect(
                ConnectedAccount {
                    open_id: open_id.into(),
                    alias: alias.into(),
                    display_name: Some(format!("Creator {open_id}")),
                    avatar_url: None,
                    scopes: stored.scopes.clone(),
                    access_expires_at: stored.access_expires_at,
                    refresh_expires_at: stored.refresh_expires_at,
                },
                shared::accounts::AliasPermits::default(),
                &unique_name("invite"),
            )
            .await
            .unwrap();
    }

    /// The binary, configured for this deployment.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tiktok-drafts"));
        for name in CLEARED {
            cmd.env_remove(name);
        }
        cmd.env("TABLE_NAME", &self.table)
            .env("SECRETS_PREFIX", &self.prefix)
            .env("TIKTOK_APP_SECRET_ID", &self.app_secret_id)
            .env("TIKTOK_API_BASE_URL", self.sim.base_url())
            .env("TIKTOK_UPLOAD_BASE_URL", self.sim.base_url())
            .env(
                "TIKTOK_AUTH_URL",
                format!("{}/v2/auth/authorize/", self.sim.base_url()),
            )
            .env("UPLOAD_BUCKET", &self.bucket)
            .env("MEDIA_PRESIGNED_URLS", "true");
        cmd
    }

    /// Runs the binary with `args` off the async runtime (the simulator
    /// lives on it and must keep answering).
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.cli();
        cmd.args(args);
        tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
            .await
            .unwrap()
    }

    /// Runs with `--json`, expects success, and parses stdout.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all).await;
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        // No progress bar or chatter when stderr is not a terminal.
        assert!(
            out.stderr.is_empty(),
            "{args:?} wrote to stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Publishes the simulator has seen.
    pub async fn publishes(&self) -> Vec<serde_json::Value> {
        match self.sim.get("/_sim/publishes").await {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Object(mut o) => match o.remove("publishes") {
                Some(serde_json::Value::Array(items)) => items,
                other => panic!("unexpected publishes answer: {other:?}"),
            },
            other => panic!("unexpected publishes answer: {other:?}"),
        }
    }

    /// Requests the simulator received below a path.
    pub async fn requests(&self, prefix: &str) -> usize {
        self.sim.requests(prefix).await.len()
    }
}

/// Asserts a failed run: non-zero exit, stderr naming `expected`.
pub fn assert_fails(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(expected),
        "stderr should name {expected:?}: {stderr}"
    );
    assert!(
        stderr.starts_with("tiktok-drafts: "),
        "errors are one clear line: {stderr}"
    );
}
