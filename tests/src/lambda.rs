//! Running a real function binary as Lambda runs it: cargo-lambda's Runtime
//! API emulator on a free loopback port (`--only-lambda-apis`, so it does not
//! rebuild anything), the binary started against it as its runtime, and
//! invocations sent through the emulator's Invoke API.
//!
//! `CARGO_LAMBDA` names the cargo-lambda executable; `infra/with-local-stack.sh`
//! installs and exports it. Without it the harness fails, loudly.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// One function under the emulator. Both processes die with it.
pub struct LambdaFunction {
    emulator: Child,
    function: Child,
    port: u16,
    http: reqwest::Client,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The tasks reading its stdout and stderr into `logs`: they end at
    /// the process's end, once all it printed is in.
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// When the function's process was started (its init began).
    started_at: std::time::Instant,
    invoke_timeout: Duration,
}

/// What an invocation returned.
#[derive(Debug)]
pub struct Invocation {
    pub status: u16,
    pub body: serde_json::Value,
}

impl LambdaFunction {
    /// Starts the emulator and `binary` with `env` (plus what the Lambda
    /// runtime sets), and waits until both are up. Panics on failure (tests).
    pub async fn start(binary: &Path, env: &[(&str, String)]) -> Self {
        Self::try_start(binary, env)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`Self::start`], failing with a message instead of panicking (the demo).
    pub async fn try_start(binary: &Path, env: &[(&str, String)]) -> Result<Self, String> {
        let cargo_lambda = std::env::var("CARGO_LAMBDA").map_err(|_| {
            "CARGO_LAMBDA is not set: run through infra/with-local-stack.sh (make test, make demo)"
                .to_owned()
        })?;
        if !binary.is_file() {
            return Err(format!(
                "{} is not built: build the workspace's binaries first (make demo and make test do)",
                binary.display()
            ));
        }
        let port = free_port()?;
        // The emulator only serves the Runtime and Invoke APIs here; it needs
        // a Cargo project as its working directory, any will do.
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("the workspace root")?;
        let emulator = Command::new(&cargo_lambda)
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            // Lambda's longest timeout, so the function's own deadline handling is
            // what ends a run.
            .args(["--timeout", "900"])
            .args(["-P", &port.to_string()])
            .current_dir(workspace)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("start cargo-lambda's emulator ({cargo_lambda}): {err}"))?;
        wait_for_port(port).await?;

        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("RUST_LOG", "info");
        // What the AWS SDK's default chain reads, so that the function finds
        // the same credentials as the demo (keys, a profile, SSO, a
        // container's or a web identity's credentials) on real AWS too.
        for name in [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_ROLE_SESSION_NAME",
            "AWS_EC2_METADATA_DISABLED",
            "HOME",
        ] {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let started_at = std::time::Instant::now();
        let mut function = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("start {}: {err}", binary.display()))?;
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            function
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            function
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut logs) = logs.lock() {
                        logs.push(line);
                    }
                }
            }));
        }
        Ok(Self {
            emulator,
            function,
            port,
            http: reqwest::Client::new(),
            logs,
            readers,
            started_at,
            invoke_timeout: Duration::from_secs(120),
        })
    }

    /// When the function's process was started: its init began then.
    pub fn started_at(&self) -> std::time::Instant {
        self.started_at
    }

    /// How long an invocation may take before it counts as hung (120 s
    /// unless set; a real upload over a slow line needs longer).
    pub fn with_invoke_timeout(mut self, timeout: Duration) -> Self {
        self.invoke_timeout = timeout;
        self
    }

    /// Invokes the function with `payload` through the emulator, as the
    /// Lambda service would (an SQS batch, an API Gateway request, a
    /// scheduled event). Panics on failure (tests).
    pub async fn invoke(&mut self, payload: &serde_json::Value) -> Invocation {
        match self.try_invoke(payload).await {
            Ok(invocation) => invocation,
            Err(err) => panic!("{err}"),
        }
    }

    /// [`Self::invoke`], failing with a message (and the function's logs)
    /// instead of panicking.
    pub async fn try_invoke(&mut self, payload: &serde_json::Value) -> Result<Invocation, String> {
        if let Ok(Some(status)) = self.function.try_wait() {
            return Err(format!(
                "the function exited ({status}) before the invocation:\n{}",
                self.logs_after_exit().await.join("\n")
            ));
        }
        let request = self
            .http
            .post(format!(
                "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
                self.port
            ))
            .timeout(self.invoke_timeout)
            .json(payload)
            .send();
        // A function that dies (a failed cold start) leaves the emulator
        // waiting for ever: whichever ends first decides.
        let response = tokio::select! {
            response = request => response.map_err(|err| {
                format!("invoke through the emulator: {err}\n{}", self.logs().join("\n"))
            })?,
            exited = self.function.wait() => return Err(format!(
                "the function exited ({exited:?}) during the invocation:\n{}",
                self.logs_after_exit().await.join("\n")
            )),
        };
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|err| format!("read the invocation's answer: {err}"))?;
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok(Invocation { status, body })
    }

    /// Everything an exited function printed: what it said last (why it
    /// stopped) may still be on its way through the pipes.
    async fn logs_after_exit(&mut self) -> Vec<String> {
        for reader in &mut self.readers {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        self.logs()
    }

    /// Everything the function printed so far (its JSON log lines).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for LambdaFunction {
    fn drop(&mut self) {
        let _ = self.function.start_kill();
        let _ = self.emulator.start_kill();
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|err| format!("a free loopback port: {err}"))
}

async fn wait_for_port(port: u16) -> Result<(), String> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("cargo-lambda's emulator did not open port {port}"))
}
