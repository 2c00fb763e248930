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
}

/// What an invocation returned.
#[derive(Debug)]
pub struct Invocation {
    pub status: u16,
    pub body: serde_json::Value,
}

impl LambdaFunction {
    /// Starts the emulator and `binary` with `env` (plus what the Lambda
    /// runtime sets), and waits until both are up.
    pub async fn start(binary: &Path, env: &[(&str, String)]) -> Self {
        let cargo_lambda = std::env::var("CARGO_LAMBDA").expect(
            "CARGO_LAMBDA is not set: run the tests through infra/with-local-stack.sh (make test)",
        );
        let port = free_port();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
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
            .expect("start cargo-lambda's emulator");
        wait_for_port(port).await;

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
        for name in [
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_EC2_METADATA_DISABLED",
        ] {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut function = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the function binary");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
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
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut logs) = logs.lock() {
                        logs.push(line);
                    }
                }
            });
        }
        Self {
            emulator,
            function,
            port,
            http: reqwest::Client::new(),
            logs,
        }
    }

    /// Invokes the function with `payload` through the emulator, as the
    /// Lambda service would (an SQS batch, an API Gateway request, a
    /// scheduled event).
    pub async fn invoke(&mut self, payload: &serde_json::Value) -> Invocation {
        if let Ok(Some(status)) = self.function.try_wait() {
            panic!(
                "the function exited ({status}) before the invocation:\n{}",
                self.logs().join("\n")
            );
        }
        let request = self
            .http
            .post(format!(
                "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
                self.port
            ))
            .timeout(Duration::from_secs(120))
            .json(payload)
            .send();
        // A function that dies (a failed cold start) leaves the emulator
        // waiting for ever: whichever ends first decides.
        let response = tokio::select! {
            response = request => match response {
                Ok(r) => r,
                Err(err) => panic!("invoke through the emulator: {err}\n{}", self.logs().join("\n")),
            },
            exited = self.function.wait() => panic!(
                "the function exited ({exited:?}) during the invocation:\n{}",
                self.logs().join("\n")
            ),
        };
        let status = response.status().as_u16();
        let text = response.text().await.expect("invocation body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Invocation { status, body }
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cargo-lambda's emulator did not open port {port}");
}
