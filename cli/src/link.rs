//! `tiktok-drafts link`: the link to an account's creator page, or the end
//! of every link made so far (`--revoke`).

use std::time::Duration;

use shared::creator_link::CreatorLink;
use shared::invite::SigningKey;

use crate::context::{CliResult, Ctx, Deployment, Fail, Output};

#[derive(clap::Args, Debug)]
pub struct LinkArgs {
    /// The account alias (the `<account>` in `uploads/<account>/...`).
    #[arg(long)]
    pub account: String,
    /// Make every link to this account's page made so far stop working,
    /// instead of printing one. Links made afterwards work.
    #[arg(long)]
    pub revoke: bool,
    /// The deployed page's base URL (the stack's CreatorPageUrl output,
    /// ending in /creator/).
    #[arg(long, env = "CREATOR_PAGE_URL")]
    pub page_url: Option<String>,
    /// How long the link works (e.g. 30d); without it, until revoked.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Option<Duration>,
    /// The secret holding the deployment's key (the invitation key).
    #[arg(
        long,
        env = "INVITE_KEY_SECRET_ID",
        default_value = "tiktok-drafts/invite-key"
    )]
    pub key_secret_id: String,
}

pub async fn run(deployment: &Deployment, args: LinkArgs) -> CliResult<Output> {
    let accounts = deployment.accounts()?;
    let account = accounts
        .get_by_alias(&args.account)
        .await
        .ctx("read the account")?
        .ok_or_else(|| {
            Fail::new(format!(
                "no account is connected as {:?} (tiktok-drafts accounts lists them)",
                args.account
            ))
        })?;
    if args.revoke {
        let version = accounts
            .revoke_links(&account.open_id)
            .await
            .ctx("revoke the links")?;
        return Ok(Output::new(
            format!(
                "Every earlier link to the page of \u{201c}{}\u{201d} stops working now. Make a new one with: tiktok-drafts link --account {}",
                args.account, args.account
            ),
            serde_json::json!({
                "account": args.account,
                "open_id": account.open_id,
                "revoked": true,
                "link_version": version,
            }),
        ));
    }
    let base = args
        .page_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Fail::new("no page URL: set CREATOR_PAGE_URL or pass --page-url (the stack's CreatorPageUrl output)")
        })?;
    let mut url = url::Url::parse(base)
        .map_err(|e| Fail::new(format!("--page-url {base:?} is not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Fail::new(format!(
            "--page-url {base:?} must be the page's base URL, without ? or #"
        )));
    }
    let expires_at = match args.ttl {
        None => None,
        Some(ttl) => Some(
            chrono::Utc::now()
                + chrono::Duration::from_std(ttl)
                    .ok()
                    .filter(|d| *d > chrono::Duration::zero())
                    .ok_or_else(|| Fail::new("--ttl must be a positive duration"))?,
        ),
    };
    let key = SigningKey::load(&deployment.aws.secrets, &args.key_secret_id)
        .await
        .map_err(|e| Fail::new(e.to_string()))?;
    let token = CreatorLink::new(&account.open_id, account.link_version, expires_at).sign(&key);
    // The token is base64url and dots: a path segment as it is.
    let path = format!("{}/{token}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    let until = match expires_at {
        Some(at) => format!("until {}", at.format("%Y-%m-%d %H:%M UTC")),
        None => format!(
            "until revoked (tiktok-drafts link --account {} --revoke)",
            args.account
        ),
    };
    Ok(Output::new(
        format!(
            "Send this link to the creator of \u{201c}{}\u{201d}: her uploads of the last 30 days, where each stands, and the captions to copy. Anyone with it can read that list; it works {until}.\n{url}",
            args.account
        ),
        serde_json::json!({
            "account": args.account,
            "open_id": account.open_id,
            "link": url.as_str(),
            "link_version": account.link_version,
            "expires_at": expires_at.map(|at| at.to_rfc3339()),
        }),
    ))
}
