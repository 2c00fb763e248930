//! A login never takes away what is already connected: under the strict
//! reading (a revoke ends the user's whole grant to the app), no login that
//! fails revokes the grant of an account connected here.

use lambda_http::http::StatusCode;

use crate::harness::{env, html};

#[tokio::test]
async fn two_tabs_completing_one_invitation_leave_her_connected() {
    let env = env(false).await;
    env.sim.seed_user("open-dora", serde_json::json!({})).await;
    let invite = env.invite("dora", false);

    // Two logins started from one link (two tabs); the first to finish
    // uses it up.
    let first = env.start(&invite).await;
    let second = env.start(&invite).await;
    let q1 = env.authorize(&first).await;
    let q2 = env.authorize(&second).await;
    assert_eq!(env.callback(&q1).await.status(), StatusCode::OK);
    let res = env.callback(&q2).await;
    // The second tab's grant is dropped, not revoked: a revoke would end
    // the first tab's connection too.
    env.still_connected("open-dora", "dora").await;
    let page = html(&res);
    assert_eq!(res.status(), StatusCode::CONFLICT, "{page}");
    assert!(page.contains("already used"), "{page}");
    assert!(
        page.contains("Creator open-dora"),
        "names who is connected: {page}"
    );
}

#[tokio::test]
async fn a_connected_creator_reopening_her_used_invitation_stays_connected() {
    let env = env(false).await;
    env.sim.seed_user("open-olga", serde_json::json!({})).await;
    let invite = env.invite("olga", false);
    let start = env.start(&invite).await;
    let query = env.authorize(&start).await;
    assert_eq!(env.callback(&query).await.status(), StatusCode::OK);

    // Days later she opens the same link again: refused before TikTok,
    // with a page that says she is connected, and as whom.
    let again = env.start(&invite).await;
    let page = html(&again);
    assert_eq!(again.status(), StatusCode::CONFLICT, "{page}");
    assert!(
        again.headers().get("location").is_none(),
        "not sent to TikTok"
    );
    assert!(
        page.contains("This link was already used; the account"),
        "{page}"
    );
    assert!(page.contains("Creator open-olga"), "{page}");
    assert!(page.contains("is connected"), "{page}");
    assert_eq!(
        env.sim.requests("/v2/auth/authorize/").await.len(),
        1,
        "only the first login went to TikTok"
    );
    env.still_connected("open-olga", "olga").await;
}

#[tokio::test]
async fn a_connected_creator_refused_an_alias_stays_connected() {
    let env = env(false).await;
    env.sim.seed_user("open-gus", serde_json::json!({})).await;
    env.sim.seed_user("open-mia", serde_json::json!({})).await;
    assert_eq!(
        env.login("open-gus", "gus", false).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        env.login("open-mia", "mia", false).await.status(),
        StatusCode::OK
    );

    // Mia logs in with an invitation for the alias Gus holds.
    let res = env.login("open-mia", "gus", false).await;
    let page = html(&res);
    assert_eq!(res.status(), StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("already connected to another TikTok account"),
        "{page}"
    );
    assert!(
        page.contains("stays connected as \u{201c}mia\u{201d}"),
        "{page}"
    );
    env.still_connected("open-mia", "mia").await;
    env.still_connected("open-gus", "gus").await;
}

#[tokio::test]
async fn only_a_first_time_login_that_cannot_complete_is_revoked_and_it_is_logged() {
    tiktok_drafts_tests::capture_logs();
    let env = env(false).await;
    env.sim.seed_user("open-gil", serde_json::json!({})).await;
    env.sim
        .seed_user("open-newcomer", serde_json::json!({}))
        .await;
    assert_eq!(
        env.login("open-gil", "gil", false).await.status(),
        StatusCode::OK
    );

    let res = env.login("open-newcomer", "gil", false).await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{}", html(&res));
    // Her grant is of no use here and she is connected nowhere here: it is
    // ended at TikTok, and nothing of it is kept.
    assert_eq!(env.sim.requests("/v2/oauth/revoke/").await.len(), 1);
    assert_eq!(env.removals("open-newcomer").await, 1);
    env.nothing_stored_for("open-newcomer").await;
    let logs = tiktok_drafts_tests::captured_logs();
    let line = logs
        .lines()
        .find(|l| {
            l.contains("revoking the grant of a first-time login") && l.contains("open-newcomer")
        })
        .unwrap_or_else(|| panic!("the revoke is logged:\n{logs}"));
    assert!(
        line.contains("alias=\"gil\"") || line.contains("alias=gil"),
        "{line}"
    );
    assert!(line.contains("reason="), "{line}");

    // Gil, who holds the alias, is untouched by the revoke.
    assert_eq!(env.removals("open-gil").await, 0);
    let stored = {
        use shared::tokens::TokenStore as _;
        env.tokens().load("open-gil").await.unwrap().unwrap()
    };
    env.sim
        .client()
        .user_info(&stored.access_token)
        .await
        .expect("Gil's token still works");
}
