//! `accounts`, `refresh` and `info` against the local stack.

use crate::common::{Stack, assert_fails};
use shared::accounts::{AccountState, Accounts, AliasPermits, ConnectedAccount};
use tiktok_drafts_tests::{FaultAction, FaultRule};

#[tokio::test]
async fn accounts_refresh_and_info_report_every_account() {
    let stack = Stack::start().await;
    stack
        .connect("open-ivy", "ivy", &["user.info.basic", "video.upload"])
        .await;
    stack
        .connect(
            "open-jack",
            "jack",
            &["user.info.basic", "video.upload", "video.publish"],
        )
        .await;
    stack
        .connect("open-kim", "kim", &["user.info.basic", "video.upload"])
        .await;
    Accounts::new(stack.aws.dynamodb.clone(), &stack.table)
        .set_state(
            "open-kim",
            AccountState::NeedsReconnect,
            Some("TikTok refused the refresh token"),
        )
        .await
        .unwrap();

    let accounts = stack.json(&["accounts"]).await;
    let list = accounts.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let by_alias = |alias: &str| {
        list.iter()
            .find(|a| a["alias"] == alias)
            .unwrap_or_else(|| panic!("{alias} listed: {accounts}"))
            .clone()
    };
    let ivy = by_alias("ivy");
    assert_eq!(ivy["open_id"], "open-ivy");
    assert_eq!(ivy["display_name"], "Creator open-ivy");
    assert_eq!(ivy["state"], "active");
    assert!(ivy["access_expires_at"].as_str().is_some());
    assert!(ivy["refresh_expires_at"].as_str().is_some());
    assert_eq!(ivy["reconnect_hint"], serde_json::Value::Null);
    let kim = by_alias("kim");
    assert_eq!(kim["state"], "needs_reconnect");
    assert_eq!(
        kim["reconnect_hint"],
        "tiktok-drafts invite --account kim, or tiktok-drafts connect --account kim"
    );
    // The text form says how to fix it.
    let text = stack.run(&["accounts"]).await;
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("kim is needs_reconnect")
            && text.contains("tiktok-drafts connect --account kim"),
        "{text}"
    );

    // refresh: the two active accounts, each with a new expiry.
    let before = stack.sim.requests("/v2/oauth/token/").await.len();
    let refreshed = stack.json(&["refresh"]).await;
    let results = refreshed.as_array().unwrap();
    assert_eq!(results.len(), 2, "{refreshed}");
    for r in results {
        assert_eq!(r["outcome"], "refreshed", "{r}");
        assert!(r["access_expires_at"].as_str().is_some());
    }
    assert_eq!(
        stack.sim.requests("/v2/oauth/token/").await.len(),
        before + 2
    );
    // One account, and one that does not exist.
    let one = stack.json(&["refresh", "--account", "ivy"]).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["alias"], "ivy");
    let out = stack.run(&["refresh", "--account", "nobody"]).await;
    assert_fails(
        &out,
        "no TikTok account is connected as \u{201c}nobody\u{201d}",
    );
    // An account that must reconnect: reported, exit non-zero.
    let out = stack.run(&["--json", "refresh", "--account", "kim"]).await;
    assert!(!out.status.success());
    let kim: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(kim[0]["outcome"], "skipped");

    // info: what the CLI points at, and creator info where the scope allows.
    let info = stack.json(&["info"]).await;
    assert_eq!(info["table"], stack.table.as_str());
    assert_eq!(info["app_secret_id"], stack.app_secret_id.as_str());
    assert_eq!(info["secrets_prefix"], stack.prefix.as_str());
    assert_eq!(
        info["tiktok_api_base_url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        stack.sim.base_url().trim_end_matches('/')
    );
    assert_eq!(
        info["aws_endpoint_url"],
        std::env::var("AWS_ENDPOINT_URL").unwrap().as_str()
    );
    assert_eq!(info["accounts"], 3);
    let active = info["active_accounts"].as_array().unwrap();
    assert_eq!(active.len(), 2);
    let jack = active.iter().find(|a| a["alias"] == "jack").unwrap();
    assert_eq!(jack["creator_info"]["nickname"], "Creator open-jack");
    assert!(
        !jack["creator_info"]["privacy_level_options"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(jack["creator_info"]["max_video_post_duration_sec"].is_number());
    let ivy = active.iter().find(|a| a["alias"] == "ivy").unwrap();
    assert_eq!(ivy["creator_info"], serde_json::Value::Null);
    assert!(
        ivy["error"].as_str().unwrap().contains("video.publish"),
        "{ivy}"
    );
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn missing_settings_are_named() {
    let stack = Stack::start().await;
    let mut cmd = stack.cli();
    cmd.env_remove("TABLE_NAME").arg("accounts");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_fails(&out, "TABLE_NAME");
    let mut cmd = stack.cli();
    cmd.env_remove("TIKTOK_APP_SECRET_ID").arg("info");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_fails(&out, "TIKTOK_APP_SECRET_ID");
    // A flag overrides the environment.
    let out = stack.run(&["--table", "no-such-table", "accounts"]).await;
    assert_fails(&out, "no-such-table");
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn an_account_that_lost_its_alias_is_hinted_with_the_real_alias() {
    let stack = Stack::start().await;
    let scopes = ["user.info.basic", "video.upload"];
    stack.connect("open-lou", "lou", &scopes).await;
    stack.sim.seed_user("open-max", serde_json::json!({})).await;
    // The operator rebinds "lou" to another TikTok account.
    let now = chrono::Utc::now();
    Accounts::new(stack.aws.dynamodb.clone(), &stack.table)
        .connect(
            ConnectedAccount {
                open_id: "open-max".into(),
                alias: "lou".into(),
                display_name: None,
                avatar_url: None,
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                access_expires_at: now + chrono::Duration::hours(2),
                refresh_expires_at: None,
            },
            AliasPermits {
                rebind: true,
                move_alias: false,
            },
            "invite-rebind",
        )
        .await
        .unwrap();

    let accounts = stack.json(&["accounts"]).await;
    let lou = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["open_id"] == "open-lou")
        .unwrap()
        .clone();
    assert_eq!(lou["state"], "revoked");
    assert_eq!(lou["alias"], serde_json::Value::Null);
    assert_eq!(lou["former_alias"], "lou");
    let hint = lou["reconnect_hint"].as_str().unwrap();
    assert!(!hint.contains("<alias>"), "{hint}");
    assert!(
        hint.contains("tiktok-drafts invite --account lou --rebind"),
        "{hint}"
    );
    let text = stack.run(&["accounts"]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(!text.contains("<alias>"), "{text}");
    assert!(
        text.contains("open-lou (formerly lou) is revoked"),
        "{text}"
    );
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn disconnect_ends_the_grant_deletes_the_secret_and_frees_the_alias() {
    use shared::tokens::{SecretsManagerTokenStore, TokenStore as _};

    let stack = Stack::start().await;
    let scopes = ["user.info.basic", "video.upload"];
    stack.connect("open-nia", "nia", &scopes).await;
    stack.connect("open-oz", "oz", &scopes).await;
    let store = SecretsManagerTokenStore::new(stack.aws.secrets.clone(), &stack.prefix);
    let accounts = Accounts::new(stack.aws.dynamodb.clone(), &stack.table);
    // A second grant of the same creator (another login): TikTok's revoke
    // ends the whole grant, so this one must stop working too.
    let other_grant = stack.sim.tokens("open-nia", &scopes).await;
    // And the stored access token died early: a revoke made with it would
    // end nothing.
    stack
        .sim
        .post(
            "/_sim/users/open-nia/invalidate_access",
            serde_json::json!({}),
        )
        .await;

    // Without --yes: says what it would do, changes nothing.
    let out = stack.run(&["disconnect", "--account", "nia"]).await;
    assert_fails(&out, "Run it again with --yes");
    assert_eq!(stack.requests("/v2/oauth/revoke/").await, 0);
    assert!(store.load("open-nia").await.unwrap().is_some());
    // An alias nobody holds.
    let out = stack
        .run(&["disconnect", "--account", "nobody", "--yes"])
        .await;
    assert_fails(
        &out,
        "no TikTok account is connected as \u{201c}nobody\u{201d}",
    );

    let done = stack
        .json(&["disconnect", "--account", "nia", "--yes"])
        .await;
    assert_eq!(done["open_id"], "open-nia");
    assert_eq!(done["revoked_at_tiktok"], true, "{done}");
    assert_eq!(stack.requests("/v2/oauth/revoke/").await, 1);
    // The early death was found and cured (one refresh) before the revoke.
    assert_eq!(stack.requests("/v2/oauth/token/").await, 1);
    // The grant is gone at TikTok: no token of the creator works any more.
    assert!(
        stack
            .sim
            .client()
            .refresh_token(other_grant.refresh_token.as_ref().unwrap())
            .await
            .is_err(),
        "the creator's other grant still works: the revoke ended nothing"
    );
    assert!(store.load("open-nia").await.unwrap().is_none());
    let nia = accounts.get("open-nia").await.unwrap().unwrap();
    assert_eq!(nia.state, AccountState::Revoked);
    assert_eq!(nia.alias, None);
    assert_eq!(nia.former_alias.as_deref(), Some("nia"));
    assert!(accounts.alias_binding("nia").await.unwrap().is_none());
    // The other account is untouched.
    let oz = accounts.get_by_alias("oz").await.unwrap().unwrap();
    assert_eq!(oz.state, AccountState::Active);
    assert!(store.load("open-oz").await.unwrap().is_some());

    // TikTok cannot be told (it keeps failing): the rest still happens, and
    // the output says what the creator can do instead.
    stack
        .sim
        .fault(FaultRule::new("/v2/oauth/revoke/", FaultAction::status(500)).times(20))
        .await;
    let done = stack
        .json(&["disconnect", "--account", "oz", "--yes"])
        .await;
    assert_eq!(done["revoked_at_tiktok"], false, "{done}");
    assert!(done["tiktok_error"].as_str().is_some(), "{done}");
    let text = stack.run(&["disconnect", "--account", "oz", "--yes"]).await;
    // Done already: the alias is free, so there is nothing to disconnect.
    assert_fails(
        &text,
        "no TikTok account is connected as \u{201c}oz\u{201d}",
    );
    assert!(store.load("open-oz").await.unwrap().is_none());
    assert!(accounts.alias_binding("oz").await.unwrap().is_none());
    stack.sim.shutdown().await;
}
