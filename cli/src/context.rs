//! What every command shares: the deployment's settings (environment
//! variables, overridden by flags), the AWS clients and the stores, and the
//! error type that carries a message and an exit code.

use std::fmt::Display;
use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use shared::accounts::{Account, AccountState, Accounts};
use shared::app_secret::tiktok_client;
use shared::aws::AwsClients;
use shared::jobs::Jobs;
use shared::tiktok::{Endpoints, PkceEncoding, TikTokClient};
use shared::tokens::{SecretsManagerTokenStore, TokenManager};

/// Exit code of a command that failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of an upload that is held or refused for now because the
/// account has 5 pending drafts: try again later.
pub const EXIT_TRY_LATER: u8 = 3;

/// A failed command: what to tell the operator (stderr) and the exit code.
#[derive(Debug)]
pub struct Fail {
    pub message: String,
    pub code: u8,
}

impl Fail {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_FAILED,
        }
    }

    pub fn try_later(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_TRY_LATER,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

pub type CliResult<T> = Result<T, Fail>;

/// `result.ctx("what was being done")?`: an error with its context.
pub trait Ctx<T> {
    fn ctx(self, what: &str) -> CliResult<T>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> CliResult<T> {
        self.map_err(|e| Fail::new(format!("{what}: {e}")))
    }
}

/// What a command prints: text for people, JSON with `--json`. `failed`
/// makes the exit code non-zero after printing (a partial failure, such as
/// one account of several not refreshing).
pub struct Output {
    pub text: String,
    pub json: serde_json::Value,
    pub failed: bool,
}

impl Output {
    pub fn new(text: impl Into<String>, json: serde_json::Value) -> Self {
        Self {
            text: text.into(),
            json,
            failed: false,
        }
    }
}

/// Settings every command may need. Each reads the same environment variable
/// as the functions; a flag overrides it.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// The DynamoDB table of the deployment.
    #[arg(long = "table", env = "TABLE_NAME", global = true)]
    pub table: Option<String>,
    /// Prefix of the per-account token secrets (`<prefix>/accounts/<open_id>`).
    #[arg(
        long,
        env = "SECRETS_PREFIX",
        global = true,
        default_value = shared::tokens::DEFAULT_SECRET_PREFIX
    )]
    pub secrets_prefix: String,
    /// The secret holding the TikTok app's `{"client_key", "client_secret"}`.
    #[arg(long, env = "TIKTOK_APP_SECRET_ID", global = true)]
    pub app_secret_id: Option<String>,
    /// TikTok's API host (the simulator's URL on the local stack).
    #[arg(long, env = "TIKTOK_API_BASE_URL", global = true)]
    pub tiktok_api_base_url: Option<String>,
    /// The Login Kit authorize page.
    #[arg(long, env = "TIKTOK_AUTH_URL", global = true)]
    pub tiktok_auth_url: Option<String>,
    /// Where upload URLs' chunks go instead of TikTok's upload host (the
    /// simulator's URL on the local stack; unset against TikTok).
    #[arg(long, env = "TIKTOK_UPLOAD_BASE_URL", global = true)]
    pub tiktok_upload_base_url: Option<String>,
    /// An AWS endpoint override (moto on the local stack).
    #[arg(long, env = "AWS_ENDPOINT_URL", global = true)]
    pub aws_endpoint_url: Option<String>,
    /// The AWS region (else the SDK's usual sources).
    #[arg(long, env = "AWS_REGION", global = true)]
    pub region: Option<String>,
}

impl Settings {
    pub fn table(&self) -> CliResult<&str> {
        self.table
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Fail::new("no table: set TABLE_NAME or pass --table"))
    }

    pub fn app_secret_id(&self) -> CliResult<&str> {
        self.app_secret_id
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Fail::new("no TikTok app secret: set TIKTOK_APP_SECRET_ID or pass --app-secret-id")
            })
    }

    pub fn secrets_prefix(&self) -> &str {
        self.secrets_prefix.trim().trim_end_matches('/')
    }

    pub fn endpoints(&self) -> CliResult<Endpoints> {
        let api = self.tiktok_api_base_url.clone();
        let auth = self.tiktok_auth_url.clone();
        let upload = self.tiktok_upload_base_url.clone();
        Endpoints::from_lookup(|name| match name {
            "TIKTOK_API_BASE_URL" => api.clone().filter(|v| !v.trim().is_empty()),
            "TIKTOK_AUTH_URL" => auth.clone().filter(|v| !v.trim().is_empty()),
            "TIKTOK_UPLOAD_BASE_URL" => upload.clone().filter(|v| !v.trim().is_empty()),
            _ => None,
        })
        .map_err(|e| Fail::new(format!("configuration: {e}")))
    }
}

/// Reads a boolean setting the way the functions do.
pub fn parse_flag(name: &'static str, value: Option<&str>) -> CliResult<bool> {
    match value
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "false" | "0" | "no" => Ok(false),
        "true" | "1" | "yes" => Ok(true),
        other => Err(Fail::new(format!(
            "{name} is not valid: expected true or false, got {other:?}"
        ))),
    }
}

pub fn pkce_encoding() -> CliResult<PkceEncoding> {
    PkceEncoding::from_env().map_err(|e| Fail::new(format!("configuration: {e}")))
}

/// The deployment as this process sees it: clients built once.
pub struct Deployment {
    pub settings: Settings,
    pub aws: AwsClients,
}

impl Deployment {
    pub async fn connect(settings: Settings) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(endpoint) = settings
            .aws_endpoint_url
            .as_deref()
            .filter(|e| !e.is_empty())
        {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = settings.region.clone().filter(|r| !r.is_empty()) {
            loader = loader.region(Region::new(region));
        }
        let config = loader.load().await;
        Self {
            aws: AwsClients::from_config(&config),
            settings,
        }
    }

    pub fn accounts(&self) -> CliResult<Accounts> {
        Ok(Accounts::new(
            self.aws.dynamodb.clone(),
            self.settings.table()?,
        ))
    }

    pub fn jobs(&self) -> CliResult<Jobs> {
        Ok(Jobs::new(self.aws.dynamodb.clone(), self.settings.table()?))
    }

    /// The TikTok client with the app's credentials from Secrets Manager.
    pub async fn tiktok(&self) -> CliResult<TikTokClient> {
        let endpoints = self.settings.endpoints()?;
        tiktok_client(&self.aws.secrets, self.settings.app_secret_id()?, endpoints)
            .await
            .map_err(|e| Fail::new(e.to_string()))
    }

    pub fn tokens(
        &self,
        tiktok: TikTokClient,
    ) -> CliResult<TokenManager<SecretsManagerTokenStore>> {
        Ok(TokenManager::for_deployment(
            &self.aws,
            tiktok,
            self.settings.secrets_prefix(),
            self.settings.table()?,
        ))
    }

    /// The account an upload goes to: `--account`, else `DEFAULT_ACCOUNT`,
    /// else the only connected account. It must exist and be active.
    pub async fn upload_account(&self, alias: Option<&str>) -> CliResult<Account> {
        let accounts = self.accounts()?;
        let alias = alias
            .map(str::to_owned)
            .or_else(|| std::env::var("DEFAULT_ACCOUNT").ok())
            .filter(|a| !a.trim().is_empty());
        let account = match alias {
            Some(alias) => accounts
                .get_by_alias(&alias)
                .await
                .ctx("cannot look up the account")?
                .ok_or_else(|| {
                    Fail::new(format!(
                        "no TikTok account is connected as \u{201c}{alias}\u{201d}; see `tiktok-drafts accounts`, or connect it (tiktok-drafts invite --account {alias}, or tiktok-drafts connect --account {alias})"
                    ))
                })?,
            None => {
                let all = accounts.list().await.ctx("cannot list the accounts")?;
                let bound: Vec<Account> = all.into_iter().filter(|a| a.alias.is_some()).collect();
                match bound.len() {
                    1 => bound.into_iter().next().expect("one account"),
                    0 => return Err(Fail::new("no TikTok account is connected; connect one first (tiktok-drafts invite or tiktok-drafts connect)")),
                    _ => {
                        let names: Vec<String> =
                            bound.iter().filter_map(|a| a.alias.clone()).collect();
                        return Err(Fail::new(format!(
                            "several accounts are connected ({}); choose one with --account",
                            names.join(", ")
                        )));
                    }
                }
            }
        };
        if account.state != AccountState::Active {
            let alias = account.alias.clone().unwrap_or_default();
            return Err(Fail::new(format!(
                "the account \u{201c}{alias}\u{201d} is {}: connect it again ({})",
                account.state,
                reconnect_hint(&alias)
            )));
        }
        Ok(account)
    }
}

/// How to fix an account that is not active.
pub fn reconnect_hint(alias: &str) -> String {
    format!("tiktok-drafts invite --account {alias}, or tiktok-drafts connect --account {alias}")
}

/// This machine's name, for the keys of uploads from local files.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A plain text table: headers, then rows, columns padded to fit.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// A time for tables: `2026-01-02 15:04 UTC`, or `-`.
pub fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Whether progress bars may draw: stderr is a terminal and `--json` is off.
pub fn progress_visible(json: bool) -> bool {
    use std::io::IsTerminal as _;
    !json && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_to_the_widest_cell() {
        let t = table(
            &["A", "LONG HEADER"],
            &[
                vec!["wide cell".into(), "x".into()],
                vec!["b".into(), "".into()],
            ],
        );
        assert_eq!(t, "A          LONG HEADER\nwide cell  x\nb");
    }

    #[test]
    fn flags_read_like_the_functions_read_them() {
        assert!(!parse_flag("X", None).unwrap());
        assert!(parse_flag("X", Some(" TRUE ")).unwrap());
        assert!(!parse_flag("X", Some("no")).unwrap());
        let err = parse_flag("X", Some("maybe")).unwrap_err();
        assert!(err.message.contains("X is not valid"), "{}", err.message);
    }
}
