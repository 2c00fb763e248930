//! A login is finished only by the browser that started it.

use lambda_http::http::StatusCode;

use crate::harness::{Browser, Env, env, html};

/// Code exchanges the simulator received.
async fn exchanges(env: &Env) -> usize {
    env.sim
        .requests("/v2/oauth/token/")
        .await
        .iter()
        .filter(|r| r["grant_type"] == "authorization_code")
        .count()
}

#[tokio::test]
async fn a_callback_replayed_from_another_browser_is_refused_and_changes_nothing() {
    let env = env(false).await;
    env.sim.seed_user("open-rita", serde_json::json!({})).await;
    env.next_login("open-rita").await;
    let start = env.start(&env.invite("rita", false)).await;
    let query = env.authorize(&start).await;
    let creators_cookie = env.browser.cookie_header();
    let cookie_name = creators_cookie.split('=').next().unwrap().to_owned();

    // The callback URL leaks and is opened elsewhere: with no cookie, with a
    // guessed one under the right name, with the other browser's own login
    // cookie.
    let other = Browser::default();
    let guessed = Browser::default();
    guessed.set(&cookie_name, "a-guessed-nonce");
    let own_login = Browser::default();
    env.start_in(&own_login, &env.invite("someone-else", false))
        .await;
    assert_eq!(own_login.cookie_count(), 1);
    for browser in [&other, &guessed, &own_login] {
        let res = env.callback_in(browser, &query).await;
        let page = html(&res);
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{page}");
        assert!(page.contains("started in another browser"), "{page}");
        assert!(page.contains("Nothing was changed"), "{page}");
    }
    // Nothing was used: no code exchange, nothing stored.
    assert_eq!(exchanges(&env).await, 0);
    env.nothing_stored_for("open-rita").await;

    // The creator's own browser still finishes her login.
    let res = env.callback(&query).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", html(&res));
    env.still_connected("open-rita", "rita").await;

    // A replay elsewhere afterwards finds a used-up login, and changes
    // nothing either.
    let res = env.callback_in(&other, &query).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{}", html(&res));
    assert_eq!(exchanges(&env).await, 1);
    env.still_connected("open-rita", "rita").await;
}

#[tokio::test]
async fn an_attackers_callback_sent_to_a_creator_connects_nothing() {
    // Login CSRF: the attacker starts a login with an invitation of his
    // own, stops at TikTok's redirect and sends the creator the callback
    // URL. Her browser has no cookie for that login.
    let env = env(false).await;
    env.sim
        .seed_user("open-attacker", serde_json::json!({}))
        .await;
    let attacker = Browser::default();
    env.next_login("open-attacker").await;
    let start = env.start_in(&attacker, &env.invite("tess", false)).await;
    let query = env.authorize(&start).await;

    let res = env.callback(&query).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{}", html(&res));
    env.nothing_stored_for("open-attacker").await;
    assert!(env.accounts().get_by_alias("tess").await.unwrap().is_none());
}
