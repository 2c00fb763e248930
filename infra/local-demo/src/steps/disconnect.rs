//! The last step, in the cleanup: the demo's account is disconnected
//! (its authorization revoked at TikTok) before its token secret goes.

use shared::accounts::Accounts;
use shared::tokens::TokenManager;

use crate::DemoResult;
use crate::functions::TikTokTarget;
use crate::stack::Stack;

/// Revokes the account's authorization before its secret is deleted, so
/// that nothing is left connected to the demo.
pub async fn disconnect(stack: &Stack, tiktok: &TikTokTarget) -> DemoResult<()> {
    let accounts = Accounts::new(stack.aws.dynamodb.clone(), &stack.table);
    let Some(account) = accounts
        .get_by_alias(&stack.alias)
        .await
        .map_err(|e| format!("read the account: {e}"))?
    else {
        return Ok(());
    };
    let client = shared::app_secret::tiktok_client(
        &stack.aws.secrets,
        &stack.app_secret_id,
        shared::tiktok::Endpoints::from_lookup(|name| match name {
            "TIKTOK_API_BASE_URL" => Some(tiktok.api_base_url.clone()),
            "TIKTOK_AUTH_URL" => Some(tiktok.auth_url.clone()),
            _ => None,
        })
        .map_err(|e| format!("TikTok's endpoints: {e}"))?,
    )
    .await
    .map_err(|e| format!("the TikTok client: {e}"))?;
    let tokens = TokenManager::for_deployment(
        &stack.aws,
        client.clone(),
        &stack.secrets_prefix,
        &stack.table,
    );
    let token = tokens
        .get_fresh_token(&account.open_id)
        .await
        .map_err(|e| format!("the account's token: {e}"))?;
    client
        .revoke(&token.access_token)
        .await
        .map_err(|e| format!("revoke the authorization: {e}"))?;
    println!("    authorization     revoked (the demo's account is disconnected)");
    Ok(())
}
