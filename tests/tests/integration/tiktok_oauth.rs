//! The project's OAuth client against the simulator: the browser round trip
//! with PKCE, code exchange, rotation of refresh tokens, revocation, and each
//! class of error.

use shared::Secret;
use shared::tiktok::oauth::{PkceVerifier, random_token, scopes_for};
use shared::tiktok::{ErrorClass, OAuthErrorCode, PkceEncoding};
use tiktok_drafts_tests::{SIM_REDIRECT_URI, TestSim};

/// Follows the authorize URL like a browser whose user says yes (or no), and
/// returns the callback's query parameters.
async fn login(sim: &TestSim, url: &url::Url) -> std::collections::HashMap<String, String> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 302, "authorize must redirect");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(SIM_REDIRECT_URI),
        "redirected to {location}, not to the registered redirect URI"
    );
    let _ = sim;
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn login_with_pkce_exchange_and_rotating_refresh() {
    for encoding in [PkceEncoding::Hex, PkceEncoding::Base64url] {
        let sim = TestSim::start(|s| {
            s.pkce = tiktok_sim::PkceMode::Required;
            s.pkce_encoding = match encoding {
                PkceEncoding::Hex => tiktok_sim::PkceEncoding::Hex,
                PkceEncoding::Base64url => tiktok_sim::PkceEncoding::Base64url,
            };
        })
        .await;
        sim.seed_user("open-alice", serde_json::json!({})).await;
        let client = sim.client();

        let verifier = PkceVerifier::generate();
        let state = random_token();
        let scopes = scopes_for(false);
        let url = client.authorize_url(
            &scopes,
            SIM_REDIRECT_URI,
            &state,
            Some((&verifier, encoding)),
        );
        let callback = login(&sim, &url).await;
        assert_eq!(callback["state"], state, "state comes back unchanged");
        assert_eq!(callback["scopes"], "user.info.basic,video.upload");

        let tokens = client
            .exchange_code(&callback["code"], SIM_REDIRECT_URI, Some(&verifier))
            .await
            .expect("exchange succeeds");
        assert_eq!(tokens.open_id, "open-alice");
        assert!(tokens.expires_in > 0);
        assert_eq!(tokens.scopes(), vec!["user.info.basic", "video.upload"]);
        let first_refresh = tokens.refresh_token.clone().expect("a refresh token");

        // The code is single use.
        let reused = client
            .exchange_code(&callback["code"], SIM_REDIRECT_URI, Some(&verifier))
            .await
            .unwrap_err();
        assert_eq!(reused.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
        assert_eq!(reused.class(), ErrorClass::NeedsReauthorization);

        // Refresh rotates: a new refresh token, and the old one stops working.
        let refreshed = client.refresh_token(&first_refresh).await.unwrap();
        let second_refresh = refreshed.refresh_token.clone().expect("rotated token");
        assert_ne!(second_refresh, first_refresh);
        assert_ne!(refreshed.access_token, tokens.access_token);
        let stale = client.refresh_token(&first_refresh).await.unwrap_err();
        assert_eq!(stale.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));

        // The new access token works, and user info names the creator.
        let me = client.user_info(&refreshed.access_token).await.unwrap();
        assert_eq!(me.open_id.as_deref(), Some("open-alice"));
        assert_eq!(me.display_name.as_deref(), Some("Creator open-alice"));
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_uri_fails_the_exchange() {
    let sim = TestSim::start(|s| s.pkce = tiktok_sim::PkceMode::Required).await;
    sim.seed_user("open-bob", serde_json::json!({})).await;
    let client = sim.client();
    let scopes = scopes_for(false);

    let verifier = PkceVerifier::generate();
    let url = client.authorize_url(
        &scopes,
        SIM_REDIRECT_URI,
        "s1",
        Some((&verifier, PkceEncoding::Hex)),
    );
    let code = login(&sim, &url).await["code"].clone();
    let other = PkceVerifier::generate();
    let err = client
        .exchange_code(&code, SIM_REDIRECT_URI, Some(&other))
        .await
        .unwrap_err();
    assert!(
        matches!(err, shared::tiktok::TikTokError::OAuth(_)),
        "{err}"
    );
    assert_ne!(err.class(), ErrorClass::Retryable);

    let url = client.authorize_url(
        &scopes,
        SIM_REDIRECT_URI,
        "s2",
        Some((&verifier, PkceEncoding::Hex)),
    );
    let code = login(&sim, &url).await["code"].clone();
    let err = client
        .exchange_code(&code, "https://drafts.example.com/other", Some(&verifier))
        .await
        .unwrap_err();
    assert_eq!(
        err.oauth_code(),
        Some(&OAuthErrorCode::InvalidRequest),
        "{err}"
    );

    // Without PKCE a strict TikTok refuses at the authorize page already.
    let url = client.authorize_url(&scopes, SIM_REDIRECT_URI, "s3", None);
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url.as_str())
        .send()
        .await
        .unwrap();
    let refused = res.status() != 302
        || res.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=");
    assert!(
        refused,
        "authorize without a challenge must not hand out a code"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_client_secret_is_a_permanent_error_judged_by_the_body() {
    let sim = TestSim::start(|s| s.oauth_error_status = 200).await;
    sim.seed_user("open-carol", serde_json::json!({})).await;
    let good = sim.client();
    let tokens = sim
        .tokens("open-carol", &["user.info.basic", "video.upload"])
        .await;

    let bad = shared::tiktok::TikTokClient::new(
        shared::tiktok::config::http_client(Default::default()).unwrap(),
        good.endpoints().clone(),
        shared::tiktok::AppCredentials {
            client_key: tiktok_drafts_tests::SIM_CLIENT_KEY.into(),
            client_secret: Secret::new("not-the-secret"),
        },
    );
    let err = bad
        .refresh_token(tokens.refresh_token.as_ref().unwrap())
        .await
        .unwrap_err();
    // HTTP 200 with an error body is still an error.
    assert_eq!(
        err.oauth_code(),
        Some(&OAuthErrorCode::InvalidClient),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(!err.to_string().contains("not-the-secret"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_denied_login_comes_back_as_access_denied() {
    let sim = TestSim::start(|_| {}).await;
    sim.seed_user("open-dan", serde_json::json!({})).await;
    sim.post(
        "/_sim/authorize/next",
        serde_json::json!({"open_id": "open-dan", "deny": true}),
    )
    .await;
    let client = sim.client();
    let verifier = PkceVerifier::generate();
    let url = client.authorize_url(
        &scopes_for(false),
        SIM_REDIRECT_URI,
        "st",
        Some((&verifier, PkceEncoding::Hex)),
    );
    let callback = login(&sim, &url).await;
    assert_eq!(callback["error"], "access_denied");
    assert_eq!(callback["state"], "st");
    assert!(!callback.contains_key("code"));
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_and_revoked_access_tokens() {
    let sim = TestSim::start(|s| s.access_token_ttl_secs = 7200).await;
    sim.seed_user("open-erin", serde_json::json!({})).await;
    let client = sim.client();
    let tokens = sim
        .tokens("open-erin", &["user.info.basic", "video.upload"])
        .await;
    assert_eq!(tokens.expires_in, 7200, "lifetime comes from the answer");
    client.user_info(&tokens.access_token).await.unwrap();

    sim.advance_clock(7201).await;
    let err = client.user_info(&tokens.access_token).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NeedsRefresh, "{err}");
    let fresh = client
        .refresh_token(tokens.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    client.user_info(&fresh.access_token).await.unwrap();

    client.revoke(&fresh.access_token).await.unwrap();
    let err = client.user_info(&fresh.access_token).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NeedsRefresh, "{err}");
    let err = client
        .refresh_token(fresh.refresh_token.as_ref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
    sim.shutdown().await;
}
