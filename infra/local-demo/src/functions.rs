//! The four functions, each its real binary under cargo-lambda's Lambda
//! Runtime API emulator, with the environment `template.yaml` gives it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tiktok_drafts_tests::lambda::{Invocation, LambdaFunction};
use tokio::sync::Mutex;

use crate::DemoResult;
use crate::stack::Stack;

/// Where TikTok is for this run.
#[derive(Clone)]
pub struct TikTokTarget {
    pub api_base_url: String,
    pub auth_url: String,
}

/// How TikTok reaches the converted photos.
pub enum MediaAccess {
    /// Presigned S3 URLs: only the simulator can take these (TikTok cannot
    /// verify S3's domain).
    Presigned,
    /// A prefix verified with TikTok, in front of the bucket.
    BaseUrl(String),
    /// None: photo drafts fail with a message saying what to set.
    Unavailable,
}

pub struct Functions {
    pub login: Mutex<LambdaFunction>,
    pub upload: Mutex<LambdaFunction>,
    pub checker: Mutex<LambdaFunction>,
    pub webhook: Mutex<LambdaFunction>,
}

/// The binaries, as `cargo build` leaves them next to the demo's own.
pub fn binary_dir() -> DemoResult<PathBuf> {
    let me = std::env::current_exe().map_err(|e| format!("where the demo runs from: {e}"))?;
    me.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} has no folder", me.display()))
}

impl Functions {
    pub async fn start(
        bin_dir: &Path,
        stack: &Stack,
        tiktok: &TikTokTarget,
        redirect_uri: &str,
        media: &MediaAccess,
    ) -> DemoResult<Self> {
        let common = |extra: &[(&'static str, String)]| {
            let mut env = vec![
                ("TABLE_NAME", stack.table.clone()),
                ("SECRETS_PREFIX", stack.secrets_prefix.clone()),
                ("TIKTOK_APP_SECRET_ID", stack.app_secret_id.clone()),
                ("TIKTOK_API_BASE_URL", tiktok.api_base_url.clone()),
                ("TIKTOK_AUTH_URL", tiktok.auth_url.clone()),
            ];
            env.extend(extra.iter().cloned());
            env
        };
        let login = common(&[
            ("INVITE_KEY_SECRET_ID", stack.invite_key_secret_id.clone()),
            ("REDIRECT_URI", redirect_uri.to_owned()),
        ]);
        let mut upload = common(&[
            ("CHUNK_SIZE_BYTES", "10000000".into()),
            ("UPLOAD_QUEUE_URL", stack.queue_url.clone()),
        ]);
        match media {
            MediaAccess::Presigned => upload.push(("MEDIA_PRESIGNED_URLS", "true".into())),
            MediaAccess::BaseUrl(base) => upload.push(("MEDIA_BASE_URL", base.clone())),
            MediaAccess::Unavailable => {}
        }
        let checker = common(&[
            ("UPLOAD_QUEUE_URL", stack.queue_url.clone()),
            ("CHECK_INTERVAL_MINUTES", "5".into()),
        ]);
        let webhook = common(&[]);
        let start = |name: &'static str, env: Vec<(&'static str, String)>| async move {
            LambdaFunction::try_start(&bin_dir.join(name), &env)
                .await
                .map(|f| Mutex::new(f.with_invoke_timeout(Duration::from_secs(900))))
                .map_err(|e| format!("{name}: {e}"))
        };
        Ok(Self {
            login: start("oauth-callback", login).await?,
            upload: start("s3-upload", upload).await?,
            checker: start("status-checker", checker).await?,
            webhook: start("tiktok-webhook", webhook).await?,
        })
    }
}

impl Functions {
    /// The last log lines of each function, to stderr: what went wrong.
    pub async fn print_logs(&self) {
        for (name, function) in [
            ("oauth-callback", &self.login),
            ("s3-upload", &self.upload),
            ("status-checker", &self.checker),
            ("tiktok-webhook", &self.webhook),
        ] {
            let logs = function.lock().await.logs();
            eprintln!("--- {name}: the last of {} log line(s)", logs.len());
            for line in &logs[logs.len().saturating_sub(25)..] {
                eprintln!("{line}");
            }
        }
    }
}

/// Invokes `function`; an invocation Lambda would report as an error (the
/// handler failed) is an error here too, with the function's last logs.
pub async fn invoke(
    name: &str,
    function: &Mutex<LambdaFunction>,
    event: &serde_json::Value,
) -> DemoResult<Invocation> {
    let mut function = function.lock().await;
    let invocation = function
        .try_invoke(event)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    if invocation.status != 200 || invocation.body.get("errorType").is_some() {
        let logs = function.logs();
        let tail = logs[logs.len().saturating_sub(20)..].join("\n");
        return Err(format!(
            "{name} failed ({}): {}\n{tail}",
            invocation.status, invocation.body
        ));
    }
    Ok(invocation)
}
