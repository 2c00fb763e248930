//! An account never changes alias silently, and an alias changes hands only
//! with the operator's rebind.

use lambda_http::http::StatusCode;

use crate::harness::{env, html};

#[tokio::test]
async fn an_alias_cannot_be_taken_over_without_a_rebind_invitation() {
    let env = env(false).await;
    env.sim.seed_user("open-gus", serde_json::json!({})).await;
    env.sim
        .seed_user("open-mallory", serde_json::json!({}))
        .await;
    assert_eq!(
        env.login("open-gus", "gus", false).await.status(),
        StatusCode::OK
    );

    let res = env.login("open-mallory", "gus", false).await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{}", html(&res));
    env.nothing_stored_for("open-mallory").await;
    let owner = env.accounts().get_by_alias("gus").await.unwrap().unwrap();
    assert_eq!(owner.open_id, "open-gus");

    // The operator decides to move the alias.
    let res = env.login("open-mallory", "gus", true).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", html(&res));
    let owner = env.accounts().get_by_alias("gus").await.unwrap().unwrap();
    assert_eq!(owner.open_id, "open-mallory");
}

#[tokio::test]
async fn an_invitation_for_another_alias_moves_the_account_only_when_it_says_so() {
    let env = env(false).await;
    env.sim.seed_user("open-ada", serde_json::json!({})).await;
    assert_eq!(
        env.login("open-ada", "ada", false).await.status(),
        StatusCode::OK
    );

    // An ordinary invitation for "ada-studio", used by the account connected
    // as "ada": refused, both aliases named, nothing changed.
    let res = env.login("open-ada", "ada-studio", false).await;
    let page = html(&res);
    assert_eq!(res.status(), StatusCode::CONFLICT, "{page}");
    assert!(page.contains("connected as \u{201c}ada\u{201d}"), "{page}");
    assert!(page.contains("\u{201c}ada-studio\u{201d}"), "{page}");
    assert!(page.contains("--move"), "{page}");
    env.still_connected("open-ada", "ada").await;
    assert!(
        env.accounts()
            .get_by_alias("ada-studio")
            .await
            .unwrap()
            .is_none()
    );

    // The same with an invitation made with --move: moved, and said so.
    let res = env
        .login_with("open-ada", &env.move_invite("ada-studio"))
        .await;
    let page = html(&res);
    assert_eq!(res.status(), StatusCode::OK, "{page}");
    assert!(
        page.contains("moved from \u{201c}ada\u{201d} to \u{201c}ada-studio\u{201d}"),
        "{page}"
    );
    env.still_connected("open-ada", "ada-studio").await;
    assert!(env.accounts().get_by_alias("ada").await.unwrap().is_none());

    // The released alias is free again: a newcomer takes it without rebind.
    env.sim.seed_user("open-bea", serde_json::json!({})).await;
    assert_eq!(
        env.login("open-bea", "ada", false).await.status(),
        StatusCode::OK
    );
    env.still_connected("open-bea", "ada").await;
}

#[tokio::test]
async fn a_link_for_an_alias_connected_after_it_was_made_stops_before_tiktok() {
    let env = env(false).await;
    env.sim.seed_user("open-cy", serde_json::json!({})).await;
    // The operator sent two links for the new alias "cy"; the second made
    // half a minute before the first was used.
    let stale = shared::invite::Invitation::new_at(
        "cy",
        std::time::Duration::from_secs(3600),
        false,
        chrono::Utc::now() - chrono::Duration::seconds(30),
    )
    .unwrap()
    .sign(&env.key);
    assert_eq!(
        env.login_with("open-cy", &env.invite("cy", false))
            .await
            .status(),
        StatusCode::OK
    );

    // The alias was free when that link was made and is taken now: it goes
    // nowhere, not even to TikTok.
    let authorizations = env.sim.requests("/v2/auth/authorize/").await.len();
    let res = env.start(&stale).await;
    let page = html(&res);
    assert_eq!(res.status(), StatusCode::CONFLICT, "{page}");
    assert!(res.headers().get("location").is_none());
    assert!(page.contains("after this link was made"), "{page}");
    assert_eq!(
        env.sim.requests("/v2/auth/authorize/").await.len(),
        authorizations
    );

    // A link made once it was bound is a reconnect link: on to TikTok.
    let res = env.start(&env.invite("cy", false)).await;
    assert_eq!(res.status(), StatusCode::FOUND, "{}", html(&res));
    env.still_connected("open-cy", "cy").await;
}
