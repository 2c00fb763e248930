//! The operator's CLI (`tiktok-drafts`), run as its own process against
//! the demo's deployment, and the jobs as it lists them.

use std::path::{Path, PathBuf};

use crate::DemoResult;
use crate::functions::TikTokTarget;
use crate::stack::Stack;

/// The operator's CLI, pointed at the demo's deployment.
pub struct Cli {
    binary: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Cli {
    pub fn new(bin_dir: &Path, stack: &Stack, tiktok: &TikTokTarget) -> Self {
        let mut env = vec![
            ("TABLE_NAME", stack.table.clone()),
            ("SECRETS_PREFIX", stack.secrets_prefix.clone()),
            ("TIKTOK_APP_SECRET_ID", stack.app_secret_id.clone()),
            ("INVITE_KEY_SECRET_ID", stack.invite_key_secret_id.clone()),
            ("UPLOAD_BUCKET", stack.bucket.clone()),
            ("TIKTOK_API_BASE_URL", tiktok.api_base_url.clone()),
            ("TIKTOK_AUTH_URL", tiktok.auth_url.clone()),
        ];
        if let Some(upload) = &tiktok.upload_base_url {
            env.push(("TIKTOK_UPLOAD_BASE_URL", upload.clone()));
        }
        Self {
            binary: bin_dir.join("tiktok-drafts"),
            env,
        }
    }

    /// Runs `tiktok-drafts <args>` and returns what it printed.
    pub async fn run(&self, args: &[&str]) -> DemoResult<String> {
        let output = tokio::process::Command::new(&self.binary)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            // A run dropped on a signal leaves no CLI behind.
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("run tiktok-drafts: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "tiktok-drafts {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned())
    }

    pub async fn json(&self, args: &[&str]) -> DemoResult<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.run(&all).await?;
        serde_json::from_str(&text).map_err(|e| format!("tiktok-drafts {}: {e}", args.join(" ")))
    }
}

/// The first 12 characters of a job id, as the CLI shows it. The id comes
/// from the CLI's output, so a shorter one (or one not in ASCII) must not
/// panic.
pub fn short_id(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(end, _)| &id[..end])
}

/// One job as the CLI lists it.
#[derive(Clone)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub key: String,
    pub publish_id: Option<String>,
    pub tiktok_status: Option<String>,
}

impl JobView {
    fn from_json(job: &serde_json::Value) -> Self {
        let text = |name: &str| job[name].as_str().map(str::to_owned);
        Self {
            id: text("job_id").unwrap_or_default(),
            kind: text("kind").unwrap_or_default(),
            status: text("status").unwrap_or_default(),
            key: text("key").unwrap_or_default(),
            publish_id: text("publish_id"),
            tiktok_status: text("tiktok_status"),
        }
    }
}

pub async fn list_jobs(cli: &Cli, alias: &str) -> DemoResult<Vec<JobView>> {
    let listed = cli.json(&["jobs", "--account", alias]).await?;
    Ok(listed
        .as_array()
        .into_iter()
        .flatten()
        .map(JobView::from_json)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::short_id;

    #[test]
    fn short_ids_never_split_or_overrun() {
        assert_eq!(short_id("7f72c2ae43c2aa11"), "7f72c2ae43c2");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id(""), "");
        assert_eq!(short_id("ééééééééééééé"), "éééééééééééé");
    }
}
