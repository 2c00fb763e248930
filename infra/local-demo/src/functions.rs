//! The functions, each its real binary under cargo-lambda's Lambda
//! Runtime API emulator, with the environment `template.yaml` gives it:
//! on the local stack exactly what moto's Lambda holds for it (the stack
//! was made from the template), on real AWS the template's environment
//! resolved against the resources the demo made. On top of that only what
//! running here needs, by name ([`local_overrides`]): a variable the
//! template does not give is never made up here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tiktok_drafts_tests::lambda::{Invocation, LambdaFunction};
use tiktok_drafts_tests::template_stack::{LocalOverrides, resolved_environments, template_path};
use tokio::sync::Mutex;

use crate::DemoResult;
use crate::stack::Stack;

/// Where TikTok is for this run.
#[derive(Clone)]
pub struct TikTokTarget {
    pub api_base_url: String,
    pub auth_url: String,
    /// The simulator, standing in for TikTok's upload hosts; `None` against
    /// TikTok.
    pub upload_base_url: Option<String>,
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
    /// The table's stream to EventBridge, and the creator's page: only on a
    /// stack made from the template (by hand there is no stream, no bus).
    pub events: Option<Mutex<LambdaFunction>>,
    pub page: Option<Mutex<LambdaFunction>>,
}

/// The binaries, as `cargo build` leaves them next to the demo's own (or
/// in `TIKTOK_DRAFTS_BIN_DIR`).
pub fn binary_dir() -> DemoResult<PathBuf> {
    let demo = tiktok_drafts_tests::workspace_binary("tiktok-drafts")?;
    demo.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} has no folder", demo.display()))
}

/// What running the functions here needs on top of the template's
/// environment.
fn local_overrides(
    binary: &str,
    tiktok: &TikTokTarget,
    redirect_uri: &str,
    media: &MediaAccess,
) -> LocalOverrides {
    // The simulator, or TikTok itself (then these equal the code's defaults).
    let mut overrides = LocalOverrides {
        replace: Vec::new(),
        add: vec![
            ("TIKTOK_API_BASE_URL", tiktok.api_base_url.clone()),
            ("TIKTOK_AUTH_URL", tiktok.auth_url.clone()),
        ],
    };
    if let Some(upload) = &tiktok.upload_base_url {
        overrides
            .add
            .push(("TIKTOK_UPLOAD_BASE_URL", upload.clone()));
    }
    match binary {
        // The local HTTP API's callback; the template's parameter must be
        // https, which a loopback address is not.
        "oauth-callback" => overrides
            .replace
            .push(("REDIRECT_URI", redirect_uri.to_owned())),
        "s3-upload" => match media {
            // The simulator pulls presigned S3 URLs (TikTok cannot).
            MediaAccess::Presigned => overrides
                .add
                .push(("MEDIA_PRESIGNED_URLS", "true".to_owned())),
            MediaAccess::BaseUrl(base) => overrides.replace.push(("MEDIA_BASE_URL", base.clone())),
            MediaAccess::Unavailable => {}
        },
        _ => {}
    }
    overrides
}

/// Each function's environment from the template, by binary; a function
/// the demo does not start may fail to get one (a resource of its own the
/// demo did not make): only the ones it starts must.
async fn template_environments(
    stack: &Stack,
    tiktok: &TikTokTarget,
    redirect_uri: &str,
    media: &MediaAccess,
) -> DemoResult<BTreeMap<String, DemoResult<Vec<(String, String)>>>> {
    let mut envs = BTreeMap::new();
    match &stack.template {
        Some(template) => {
            for (id, function) in &template.functions {
                let Some(binary) = function.binary.clone() else {
                    continue;
                };
                let overrides = local_overrides(&binary, tiktok, redirect_uri, media);
                envs.insert(binary, function.local_env(id, &overrides));
            }
        }
        None => {
            let resolved = resolved_environments(
                &template_path(),
                &stack.region,
                &[
                    ("Table", &stack.table),
                    ("AppSecret", &stack.app_secret_id),
                    ("InviteKeySecret", &stack.invite_key_secret_id),
                    ("UploadQueue", &stack.queue_url),
                    ("UploadBucket", &stack.bucket),
                ],
                &[
                    ("RedirectUri", redirect_uri),
                    ("SecretsPrefix", &stack.secrets_prefix),
                ],
            )
            .await?;
            for (id, function) in resolved {
                let Some(binary) = function.binary else {
                    continue;
                };
                let env = match (function.environment, function.error) {
                    (Some(env), _) => {
                        let overrides = local_overrides(&binary, tiktok, redirect_uri, media);
                        overrides
                            .apply(&id, &env)
                            .map(|env| env.into_iter().collect())
                    }
                    (None, error) => Err(error.unwrap_or_else(|| format!("{id}: no environment"))),
                };
                envs.insert(binary, env);
            }
        }
    }
    Ok(envs)
}

impl Functions {
    pub async fn start(
        bin_dir: &Path,
        stack: &Stack,
        tiktok: &TikTokTarget,
        redirect_uri: &str,
        media: &MediaAccess,
    ) -> DemoResult<Self> {
        let envs = template_environments(stack, tiktok, redirect_uri, media).await?;
        let start = |name: &'static str| {
            let env = match envs.get(name) {
                Some(Ok(env)) => Ok(env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect::<Vec<_>>()),
                Some(Err(e)) => Err(e.clone()),
                None => Err(format!("no function of the template runs {name}")),
            };
            async move {
                let env = env?;
                LambdaFunction::try_start(&bin_dir.join(name), &env)
                    .await
                    .map(|f| Mutex::new(f.with_invoke_timeout(Duration::from_secs(900))))
                    .map_err(|e| format!("{name}: {e}"))
            }
        };
        let from_template = stack.template.is_some();
        Ok(Self {
            login: start("oauth-callback").await?,
            upload: start("s3-upload").await?,
            checker: start("status-checker").await?,
            webhook: start("tiktok-webhook").await?,
            events: if from_template {
                Some(start("events").await?)
            } else {
                None
            },
            page: if from_template {
                Some(start("creator-page").await?)
            } else {
                None
            },
        })
    }
}

impl Functions {
    /// The last log lines of each function, to stderr: what went wrong.
    pub async fn print_logs(&self) {
        for (name, function) in [
            ("oauth-callback", Some(&self.login)),
            ("s3-upload", Some(&self.upload)),
            ("status-checker", Some(&self.checker)),
            ("tiktok-webhook", Some(&self.webhook)),
            ("events", self.events.as_ref()),
            ("creator-page", self.page.as_ref()),
        ] {
            let Some(function) = function else { continue };
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
