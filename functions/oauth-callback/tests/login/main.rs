//! The real login handler (a lambda_http request in, a response out) against
//! local AWS (moto) and the TikTok simulator, which reads TikTok's rules
//! strictly: a revoke ends the user's whole grant to the app. The module
//! `lambda_binary` runs the real `oauth-callback` binary under the Lambda
//! emulator (it was a test binary of its own).

mod harness;

mod aliases;
mod browser_binding;
mod deadlines;
mod keeps_connections;
mod lambda_binary;

use std::time::Duration;
use tiktok_drafts_tests::{FaultAction, FaultRule};

use harness::{env, html};
use lambda_http::http::StatusCode;
use shared::accounts::AccountState;
use shared::invite::{Invitation, SigningKey};
use shared::tokens::TokenStore as _;
use tiktok_drafts_tests::{SIM_CLIENT_SECRET, SIM_REDIRECT_URI};

#[tokio::test]
async fn a_creator_connects_with_an_invitation() {
    let env = env(false).await;
    env.sim.seed_user("open-alice", serde_json::json!({})).await;

    let start = env.start(&env.invite("alice", false)).await;
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let params: std::collections::HashMap<String, String> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(params["scope"], "user.info.basic,video.upload");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["redirect_uri"], SIM_REDIRECT_URI);
    assert_eq!(
        params["disable_auto_auth"], "1",
        "TikTok always shows whom she is connecting"
    );
    assert!(!location.contains("alice"), "the alias stays server-side");

    // The login is bound to this browser: a host-only, script-proof,
    // short-lived cookie, set on the redirect to TikTok.
    let set_cookie = start.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.starts_with("__Host-login-"), "{set_cookie}");
    let attributes: Vec<&str> = set_cookie.split("; ").skip(1).collect();
    for wanted in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(attributes.contains(&wanted), "{wanted} in {set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"), "{set_cookie}");
    assert!(
        !set_cookie.contains(&params["state"]),
        "the nonce is not the state"
    );
    assert_eq!(env.browser.cookie_count(), 1);

    let query = env.authorize(&start).await;
    let res = env.callback(&query).await;
    let page = html(&res);
    assert_eq!(res.status(), StatusCode::OK, "{page}");
    assert!(page.contains("Creator open-alice"), "{page}");
    assert!(page.contains("uploads/alice/"), "{page}");

    let account = env.accounts().get("open-alice").await.unwrap().unwrap();
    assert_eq!(account.alias.as_deref(), Some("alice"));
    assert_eq!(account.state, AccountState::Active);
    assert_eq!(account.display_name.as_deref(), Some("Creator open-alice"));
    let stored = env.tokens().load("open-alice").await.unwrap().unwrap();
    assert!(stored.access_expires_at > env.clock.now());
    // The stored token works.
    let me = env
        .sim
        .client()
        .user_info(&stored.access_token)
        .await
        .unwrap();
    assert_eq!(me.open_id.as_deref(), Some("open-alice"));
    assert!(!page.contains(stored.access_token.expose()));
    assert!(!page.contains(stored.refresh_token.expose()));
    assert_eq!(
        env.browser.cookie_count(),
        0,
        "the callback clears its cookie"
    );

    // The same callback again: the state is used up, nothing changes.
    let replay = env.callback(&query).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let again = env.tokens().load("open-alice").await.unwrap().unwrap();
    assert_eq!(again.access_token, stored.access_token);
}

#[tokio::test]
async fn direct_posting_deployments_also_ask_for_video_publish() {
    let env = env(true).await;
    let start = env.start(&env.invite("bob", false)).await;
    let location = start.headers()["location"].to_str().unwrap();
    assert!(
        location.contains("scope=user.info.basic%2Cvideo.upload%2Cvideo.publish"),
        "{location}"
    );
}

#[tokio::test]
async fn invitations_are_required_and_checked() {
    let env = env(false).await;
    let none = env.service.handle(env.browser.get("/auth/start")).await;
    assert_eq!(none.status(), StatusCode::FORBIDDEN);

    let good = env.invite("carol", false);
    let (payload, _) = good.split_once('.').unwrap();
    let other_key = SigningKey::generate();
    let forged = Invitation::new("carol", Duration::from_secs(3600), false)
        .unwrap()
        .sign(&other_key);
    let tampered = format!("{payload}.AAAA");
    for bad in [forged.as_str(), tampered.as_str(), "garbage"] {
        let res = env.start(bad).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{bad}");
        assert!(res.headers().get("location").is_none());
    }

    // Expired: the service's clock moves past the invitation's lifetime.
    env.clock.advance_secs(3601);
    let res = env.start(&good).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(html(&res).contains("expired"), "{}", html(&res));
}

#[tokio::test]
async fn two_callbacks_racing_for_one_state_have_one_winner() {
    let env = env(false).await;
    env.sim.seed_user("open-eve", serde_json::json!({})).await;
    let start = env.start(&env.invite("eve", false)).await;
    let query = env.authorize(&start).await;
    // Both from the browser that started it (the cookie is read before
    // either answer clears it).
    let (a, b) = (
        env.service
            .handle(env.browser.get(&format!("/auth/callback?{query}"))),
        env.service
            .handle(env.browser.get(&format!("/auth/callback?{query}"))),
    );
    let (a, b) = tokio::join!(a, b);
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);
    let exchanges = env.sim.requests("/v2/oauth/token/").await;
    assert_eq!(exchanges.len(), 1, "only the winner exchanged the code");
}

#[tokio::test]
async fn failures_get_a_page_and_store_nothing() {
    let env = env(false).await;
    env.sim.seed_user("open-fay", serde_json::json!({})).await;

    // The creator says no.
    env.sim
        .post(
            "/_sim/authorize/next",
            serde_json::json!({"open_id": "open-fay", "deny": true}),
        )
        .await;
    let start = env.start(&env.invite("fay", false)).await;
    let query = env.authorize(&start).await;
    let res = env.callback(&query).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(html(&res).contains("declined"), "{}", html(&res));
    env.nothing_stored_for("open-fay").await;

    // The creator switches off video.upload.
    env.sim
        .post(
            "/_sim/authorize/next",
            serde_json::json!({"open_id": "open-fay", "grant_scopes": ["user.info.basic"]}),
        )
        .await;
    let start = env.start(&env.invite("fay", false)).await;
    let query = env.authorize(&start).await;
    let res = env.callback(&query).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(html(&res).contains("video.upload"), "{}", html(&res));
    env.nothing_stored_for("open-fay").await;

    // No state, an unknown state.
    assert_eq!(
        env.callback("code=abc").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        env.callback("code=abc&state=never-issued").await.status(),
        StatusCode::BAD_REQUEST
    );

    // TikTok's token endpoint fails.
    env.sim
        .fault(FaultRule::new("/v2/oauth/token/", FaultAction::status(503)))
        .await;
    let removals_before = env.removals("open-fay").await;
    env.sim
        .post(
            "/_sim/authorize/next",
            serde_json::json!({"open_id": "open-fay"}),
        )
        .await;
    let start = env.start(&env.invite("fay", false)).await;
    let query = env.authorize(&start).await;
    let res = env.callback(&query).await;
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        html(&res)
    );
    env.nothing_stored_for("open-fay").await;
    assert_eq!(env.removals("open-fay").await, removals_before);

    // A code TikTok refuses (here: it waited past its 5 minutes at TikTok)
    // is the request's problem, a 400, not a gateway error.
    env.next_login("open-fay").await;
    let start = env.start(&env.invite("fay", false)).await;
    let query = env.authorize(&start).await;
    env.sim.advance_clock(301).await;
    let res = env.callback(&query).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", html(&res));
    assert!(
        html(&res).contains("invalid, expired or revoked"),
        "{}",
        html(&res)
    );
    env.nothing_stored_for("open-fay").await;

    // A state that waited longer than 10 minutes.
    env.sim
        .post(
            "/_sim/authorize/next",
            serde_json::json!({"open_id": "open-fay"}),
        )
        .await;
    let start = env.start(&env.invite("fay", false)).await;
    let query = env.authorize(&start).await;
    env.clock.advance_secs(11 * 60);
    let res = env.callback(&query).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(html(&res).contains("expired"), "{}", html(&res));
    env.nothing_stored_for("open-fay").await;
}

#[tokio::test]
async fn reconnecting_updates_the_account_in_place() {
    let env = env(false).await;
    env.sim.seed_user("open-hal", serde_json::json!({})).await;
    assert_eq!(
        env.login("open-hal", "hal", false).await.status(),
        StatusCode::OK
    );
    let first = env.accounts().get("open-hal").await.unwrap().unwrap();
    let first_tokens = env.tokens().load("open-hal").await.unwrap().unwrap();
    env.accounts()
        .set_state("open-hal", AccountState::NeedsReconnect, Some("test"))
        .await
        .unwrap();

    assert_eq!(
        env.login("open-hal", "hal", false).await.status(),
        StatusCode::OK
    );
    let second = env.accounts().get("open-hal").await.unwrap().unwrap();
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(second.alias.as_deref(), Some("hal"));
    assert_eq!(second.state, AccountState::Active);
    let second_tokens = env.tokens().load("open-hal").await.unwrap().unwrap();
    assert_ne!(second_tokens.access_token, first_tokens.access_token);
}

#[tokio::test]
async fn no_log_line_or_page_carries_a_token_or_the_client_secret() {
    tiktok_drafts_tests::capture_logs();

    let env = env(false).await;
    env.sim.seed_user("open-ivy", serde_json::json!({})).await;
    let mut pages = Vec::new();
    let ok = env.login("open-ivy", "ivy", false).await;
    assert_eq!(ok.status(), StatusCode::OK);
    pages.push(html(&ok));
    pages.push(html(&env.login("open-ivy", "ivy", false).await));
    env.sim
        .post(
            "/_sim/authorize/next",
            serde_json::json!({"open_id": "open-ivy", "deny": true}),
        )
        .await;
    let start = env.start(&env.invite("ivy", false)).await;
    let q = env.authorize(&start).await;
    pages.push(html(&env.callback(&q).await));
    pages.push(html(&env.callback(&q).await));
    pages.push(html(&env.start("forged.token").await));

    let stored = env.tokens().load("open-ivy").await.unwrap().unwrap();
    let logs = tiktok_drafts_tests::captured_logs();
    assert!(logs.contains("account connected"), "logs were captured");
    for secret in [
        stored.access_token.expose(),
        stored.refresh_token.expose(),
        SIM_CLIENT_SECRET,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
        for page in &pages {
            assert!(!page.contains(secret), "a secret reached a page");
        }
    }
}
