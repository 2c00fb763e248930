//! `accounts`, `refresh` and `info`: the connected accounts and their tokens.

use std::time::Duration;

use serde_json::{Value, json};
use shared::accounts::{Account, AccountState};
use shared::tiktok::oauth::SCOPE_VIDEO_PUBLISH;
use shared::tiktok::{CreatorInfo, TikTokClient};
use shared::tokens::{RefreshOutcome, SecretsManagerTokenStore, TokenManager};

use crate::context::{CliResult, Ctx as _, Deployment, Fail, Output, reconnect_hint, table, when};

/// How to connect an account that is not active again, with its real alias.
/// An account without one lost it to a rebind: its former alias now names
/// another TikTok account, so the hint says so instead of suggesting a
/// reconnect that would be refused.
fn hint(a: &Account) -> String {
    match (&a.alias, &a.former_alias) {
        (Some(alias), _) => reconnect_hint(alias),
        (None, Some(former)) => format!(
            "{former} now names another TikTok account; take it back with tiktok-drafts invite --account {former} --rebind, or invite this account under another alias"
        ),
        (None, None) => {
            "its alias now names another TikTok account; invite this account under another alias with tiktok-drafts invite --account".to_owned()
        }
    }
}

/// The account as the operator knows it: its alias, else its open_id and
/// the alias it lost.
fn label(a: &Account) -> String {
    match (&a.alias, &a.former_alias) {
        (Some(alias), _) => alias.clone(),
        (None, Some(former)) => format!("{} (formerly {former})", a.open_id),
        (None, None) => a.open_id.clone(),
    }
}

fn account_json(a: &Account) -> Value {
    let hint = (a.state != AccountState::Active).then(|| hint(a));
    json!({
        "alias": a.alias,
        "former_alias": a.former_alias,
        "open_id": a.open_id,
        "display_name": a.display_name,
        "state": a.state.as_str(),
        "state_reason": a.state_reason,
        "scopes": a.scopes,
        "access_expires_at": a.access_expires_at.map(|t| t.to_rfc3339()),
        "refresh_expires_at": a.refresh_expires_at.map(|t| t.to_rfc3339()),
        "connected_at": a.created_at.to_rfc3339(),
        "reconnect_hint": hint,
    })
}

/// `accounts`: every account, with a reconnect hint for the ones that are
/// not active.
pub async fn run(d: &Deployment) -> CliResult<Output> {
    let accounts = d.accounts()?.list().await.ctx("cannot list the accounts")?;
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            vec![
                a.alias.clone().unwrap_or_else(|| "-".into()),
                a.open_id.clone(),
                a.display_name.clone().unwrap_or_else(|| "-".into()),
                a.state.to_string(),
                when(a.access_expires_at),
                when(a.refresh_expires_at),
            ]
        })
        .collect();
    let mut text = if accounts.is_empty() {
        "No accounts are connected. Make an invitation with `tiktok-drafts invite --account <alias>`, or connect here with `tiktok-drafts connect --account <alias>`.".to_owned()
    } else {
        table(
            &[
                "ALIAS",
                "OPEN_ID",
                "NAME",
                "STATE",
                "ACCESS EXPIRES",
                "REFRESH EXPIRES",
            ],
            &rows,
        )
    };
    for a in accounts.iter().filter(|a| a.state != AccountState::Active) {
        let fix = match &a.alias {
            Some(_) => format!("reconnect with {}", hint(a)),
            None => hint(a),
        };
        text.push_str(&format!(
            "\n{} is {}{}: {fix}",
            label(a),
            a.state,
            a.state_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
        ));
    }
    Ok(Output::new(
        text,
        Value::Array(accounts.iter().map(account_json).collect()),
    ))
}

/// Long enough that any token is "expiring within" it: `refresh` refreshes now.
const REFRESH_NOW: Duration = Duration::from_secs(3650 * 24 * 3600);

/// `refresh`: refreshes the tokens of every active account (or one) now.
pub async fn refresh(d: &Deployment, alias: Option<&str>) -> CliResult<Output> {
    let accounts = d.accounts()?;
    let targets: Vec<Account> = match alias {
        Some(alias) => vec![
            accounts
                .get_by_alias(alias)
                .await
                .ctx("cannot look up the account")?
                .ok_or_else(|| {
                    Fail::new(format!(
                        "no TikTok account is connected as \u{201c}{alias}\u{201d}"
                    ))
                })?,
        ],
        None => accounts
            .list()
            .await
            .ctx("cannot list the accounts")?
            .into_iter()
            .filter(|a| a.state == AccountState::Active)
            .collect(),
    };
    let tiktok = d.tiktok().await?;
    let tokens = d.tokens(tiktok)?;
    let mut results = Vec::new();
    let mut rows = Vec::new();
    let mut failed = false;
    for account in &targets {
        let alias = account.alias.clone().unwrap_or_else(|| "-".into());
        let (outcome, expires, error) = if account.state != AccountState::Active {
            failed = true;
            (
                "skipped",
                None,
                Some(format!(
                    "the account is {}; reconnect it ({})",
                    account.state,
                    reconnect_hint(&alias)
                )),
            )
        } else {
            match tokens
                .refresh_if_expiring_within(&account.open_id, REFRESH_NOW)
                .await
            {
                Ok(RefreshOutcome::Refreshed { access_expires_at }) => {
                    ("refreshed", Some(access_expires_at), None)
                }
                Ok(RefreshOutcome::RefreshedElsewhere { access_expires_at }) => {
                    ("refreshed_elsewhere", Some(access_expires_at), None)
                }
                Ok(RefreshOutcome::StillFresh { access_expires_at }) => {
                    ("still_fresh", Some(access_expires_at), None)
                }
                Err(err) => {
                    failed = true;
                    let mut message = err.to_string();
                    if err.needs_reconnect() {
                        message.push_str(&format!("; {}", reconnect_hint(&alias)));
                    }
                    ("failed", None, Some(message))
                }
            }
        };
        rows.push(vec![
            alias.clone(),
            account.open_id.clone(),
            outcome.to_owned(),
            when(expires),
            error.clone().unwrap_or_default(),
        ]);
        results.push(json!({
            "alias": account.alias,
            "open_id": account.open_id,
            "outcome": outcome,
            "access_expires_at": expires.map(|t| t.to_rfc3339()),
            "error": error,
        }));
    }
    let text = if targets.is_empty() {
        "No active accounts to refresh.".to_owned()
    } else {
        table(
            &["ALIAS", "OPEN_ID", "RESULT", "ACCESS EXPIRES", "ERROR"],
            &rows,
        )
    };
    let mut out = Output::new(text, Value::Array(results));
    out.failed = failed;
    Ok(out)
}

/// `info`: the settings in use, and what TikTok says about each active
/// account (creator_info needs the `video.publish` scope, which a
/// drafts-only deployment does not ask for; such accounts say so).
pub async fn info(d: &Deployment) -> CliResult<Output> {
    let s = &d.settings;
    let endpoints = s.endpoints()?;
    let table_name = s.table()?.to_owned();
    let region = d.aws.dynamodb.config().region().map(|r| r.to_string());
    let aws_endpoint = s.aws_endpoint_url.clone().filter(|e| !e.is_empty());
    let accounts = d.accounts()?.list().await.ctx("cannot list the accounts")?;
    let active: Vec<&Account> = accounts
        .iter()
        .filter(|a| a.state == AccountState::Active)
        .collect();
    let tiktok = d.tiktok().await?;
    let tokens = d.tokens(tiktok.clone())?;
    let mut creators = Vec::new();
    let mut lines = vec![
        format!("table:            {table_name}"),
        format!("region:           {}", region.as_deref().unwrap_or("-")),
        format!(
            "aws endpoint:     {}",
            aws_endpoint.as_deref().unwrap_or("(AWS)")
        ),
        format!("app secret:       {}", s.app_secret_id()?),
        format!("secrets prefix:   {}", s.secrets_prefix()),
        format!("tiktok api:       {}", endpoints.api_base_url),
        format!("tiktok authorize: {}", endpoints.auth_url),
        format!("client key:       {}", tiktok.client_key()),
        format!(
            "accounts:         {} ({} active)",
            accounts.len(),
            active.len()
        ),
    ];
    for account in active {
        let alias = account.alias.clone().unwrap_or_else(|| "-".into());
        let (info, error) = creator_info(&tokens, &tiktok, account).await;
        lines.push(creator_line(&alias, info.as_ref(), error.as_deref()));
        creators.push(creator_json(account, info.as_ref(), error.as_deref()));
    }
    Ok(Output::new(
        lines.join("\n"),
        json!({
            "table": table_name,
            "region": region,
            "aws_endpoint_url": aws_endpoint,
            "app_secret_id": s.app_secret_id()?,
            "secrets_prefix": s.secrets_prefix(),
            "tiktok_api_base_url": endpoints.api_base_url.as_str(),
            "tiktok_auth_url": endpoints.auth_url.as_str(),
            "client_key": tiktok.client_key(),
            "accounts": accounts.len(),
            "active_accounts": creators,
        }),
    ))
}

/// What TikTok's creator_info says about an active account, or why there is
/// nothing: the account did not grant the `video.publish` scope it needs,
/// or the token or the call failed.
async fn creator_info(
    tokens: &TokenManager<SecretsManagerTokenStore>,
    tiktok: &TikTokClient,
    account: &Account,
) -> (Option<CreatorInfo>, Option<String>) {
    if !account.scopes.iter().any(|s| s == SCOPE_VIDEO_PUBLISH) {
        return (
            None,
            Some(format!(
                "creator_info needs the {SCOPE_VIDEO_PUBLISH} scope (direct posting); this account granted {}, which is all drafts need",
                account.scopes.join(",")
            )),
        );
    }
    match tokens.get_fresh_token(&account.open_id).await {
        Err(err) => (None, Some(err.to_string())),
        Ok(mut token) => match tokens
            .call_with_token(&mut token, |access| async move {
                tiktok.creator_info(&access).await
            })
            .await
        {
            Ok(info) => (Some(info), None),
            Err(err) => (None, Some(err.to_string())),
        },
    }
}

/// The `info` text line for one active account: its creator info, or why
/// there is none.
fn creator_line(alias: &str, info: Option<&CreatorInfo>, error: Option<&str>) -> String {
    match info {
        Some(i) => format!(
            "  {alias}: {} (@{}), privacy options {}, max video {} s",
            i.creator_nickname.as_deref().unwrap_or("-"),
            i.creator_username.as_deref().unwrap_or("-"),
            i.privacy_level_options.join(","),
            i.max_video_post_duration_sec
                .map_or_else(|| "-".to_owned(), |d| d.to_string())
        ),
        None => format!("  {alias}: {}", error.unwrap_or_default()),
    }
}

/// The `info` JSON for one active account.
fn creator_json(account: &Account, info: Option<&CreatorInfo>, error: Option<&str>) -> Value {
    json!({
        "alias": account.alias,
        "open_id": account.open_id,
        "creator_info": info.map(|i| json!({
            "nickname": i.creator_nickname,
            "username": i.creator_username,
            "privacy_level_options": i.privacy_level_options,
            "max_video_post_duration_sec": i.max_video_post_duration_sec,
            "comment_disabled": i.comment_disabled,
            "duet_disabled": i.duet_disabled,
            "stitch_disabled": i.stitch_disabled,
        })),
        "error": error,
    })
}
