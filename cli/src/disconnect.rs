//! `disconnect`: the operator ends an account's connection for good. TikTok
//! is told first (a revoke ends this app's whole grant for the creator), then
//! the account is marked revoked and its alias freed, then its token secret
//! is deleted. Each step can be run again: a second `disconnect` after a
//! failure half-way finishes the job.

use serde_json::json;
use shared::tiktok::TikTokClient;
use shared::tokens::{FreshToken, SecretsManagerTokenStore, TokenManager, TokenStore as _};

use crate::context::{CliResult, Ctx as _, Deployment, Fail, Output};

/// Why the account item says it was revoked.
const REASON: &str = "disconnected by the operator (tiktok-drafts disconnect)";

pub async fn run(d: &Deployment, alias: &str, confirmed: bool) -> CliResult<Output> {
    let accounts = d.accounts()?;
    let account = accounts
        .get_by_alias(alias)
        .await
        .ctx("cannot look up the account")?
        .ok_or_else(|| {
            Fail::new(format!(
                "no TikTok account is connected as \u{201c}{alias}\u{201d}; see `tiktok-drafts accounts`"
            ))
        })?;
    let who = match &account.username {
        Some(username) => format!("\u{201c}{alias}\u{201d} (@{username})"),
        None => format!("\u{201c}{alias}\u{201d}"),
    };
    if !confirmed {
        return Err(Fail::new(format!(
            "this disconnects {who}: TikTok is told to end this app's access, the token secret is deleted and the alias is freed; uploads for it fail until the creator connects again. Run it again with --yes to go ahead"
        )));
    }

    // TikTok first, while the tokens still exist. A grant that is already
    // gone (the creator removed the app) cannot be revoked and needs not be.
    let tiktok = d.tiktok().await?;
    let tokens = d.tokens(tiktok.clone())?;
    let revoked_at_tiktok = match tokens.get_fresh_token(&account.open_id).await {
        Ok(token) => revoke(&tokens, &tiktok, token).await,
        Err(e) => Err(e.to_string()),
    };
    if !accounts
        .disconnect(&account.open_id, alias, REASON)
        .await
        .ctx("cannot mark the account disconnected")?
    {
        return Err(Fail::new(format!(
            "the alias \u{201c}{alias}\u{201d} was moved to another account meanwhile; nothing was disconnected here (see `tiktok-drafts accounts`)"
        )));
    }
    tokens
        .store()
        .delete(&account.open_id)
        .await
        .ctx("the account is disconnected, but its token secret could not be deleted; run the same command again")?;

    let tiktok_line = match &revoked_at_tiktok {
        Ok(()) => "TikTok ended this app's access to the account".to_owned(),
        Err(e) => format!(
            "TikTok could not be told ({e}); the creator can remove the app in TikTok's settings (Security and permissions, Apps)"
        ),
    };
    Ok(Output::new(
        format!(
            "Disconnected {who}.\n- {tiktok_line}\n- token secret deleted\n- alias \u{201c}{alias}\u{201d} is free; its unfinished uploads fail (account_revoked)"
        ),
        json!({
            "alias": alias,
            "open_id": account.open_id,
            "revoked_at_tiktok": revoked_at_tiktok.is_ok(),
            "tiktok_error": revoked_at_tiktok.err(),
            "secret_deleted": true,
        }),
    ))
}

/// Revokes the grant with an access token TikTok still takes. A revoke
/// with a token that died before its expiry may be answered as done while
/// it ends nothing, so the token is proven first by a call that refuses a
/// dead one (user info, through the one refresh-and-retry path).
async fn revoke(
    tokens: &TokenManager<SecretsManagerTokenStore>,
    tiktok: &TikTokClient,
    mut token: FreshToken,
) -> Result<(), String> {
    tokens
        .call_with_token(&mut token, |access| {
            let tiktok = tiktok.clone();
            async move { tiktok.user_info(&access).await }
        })
        .await
        .map_err(|e| e.to_string())?;
    tiktok
        .revoke(&token.access_token)
        .await
        .map_err(|e| e.to_string())
}
