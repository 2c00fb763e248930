//! Login Kit v2 against the simulator: authorize, code exchange, refresh, revoke, user info.

use crate::common::{Sim, error_code};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1/callback";
const VERIFIER: &str = "abcdefghijklmnopqrstuvwxyz0123456789-._~ABCDEFGHIJ";

fn hex_challenge(verifier: &str) -> String {
    hex::encode(Sha256::digest(verifier.as_bytes()))
}

/// Runs the authorize step and returns the callback's query pairs.
async fn authorize(sim: &Sim, extra: &[(&str, &str)]) -> (StatusCode, Vec<(String, String)>) {
    let mut query: Vec<(&str, &str)> = vec![
        ("client_key", "sim-client-key"),
        ("scope", "user.info.basic,video.upload"),
        ("redirect_uri", REDIRECT),
        ("state", "csrf-123"),
        ("response_type", "code"),
    ];
    for (k, v) in extra {
        query.retain(|(key, _)| key != k);
        query.push((k, v));
    }
    let response = sim
        .http
        .get(sim.url("/v2/auth/authorize/"))
        .query(&query)
        .send()
        .await
        .expect("authorize");
    let status = response.status();
    let pairs = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    (status, pairs)
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn token_form(sim: &Sim, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = sim
        .http
        .post(sim.url("/v2/oauth/token/"))
        .form(form)
        .send()
        .await
        .expect("token call");
    let status = response.status();
    (status, response.json().await.expect("token JSON"))
}

async fn exchange(
    sim: &Sim,
    code: &str,
    redirect: &str,
    verifier: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("client_key", "sim-client-key"),
        ("client_secret", "sim-client-secret"),
        ("code", code),
        ("grant_type", "authorization_code"),
        ("redirect_uri", redirect),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token_form(sim, &form).await
}

async fn code_with_pkce(sim: &Sim) -> String {
    let challenge = hex_challenge(VERIFIER);
    let (status, pairs) = authorize(
        sim,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(get(&pairs, "state"), Some("csrf-123"));
    get(&pairs, "code").expect("code in callback").to_owned()
}

#[tokio::test]
async fn happy_path_with_hex_pkce_then_code_reuse_fails() {
    let sim = Sim::start().await;
    sim.user("alice").await;
    let challenge = hex_challenge(VERIFIER);
    let (status, pairs) = authorize(
        &sim,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(get(&pairs, "scopes"), Some("user.info.basic,video.upload"));
    let code = get(&pairs, "code").expect("code").to_owned();

    let (status, body) = exchange(&sim, &code, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("act."))
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("rft."))
    );
    assert_eq!(body["open_id"], "alice");
    assert_eq!(body["scope"], "user.info.basic,video.upload");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["refresh_expires_in"], 15_552_000);

    let access = body["access_token"].as_str().expect("token");
    let response = sim
        .http
        .get(sim.url("/v2/user/info/?fields=open_id,display_name,username"))
        .bearer_auth(access)
        .send()
        .await
        .expect("user info");
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.expect("JSON");
    assert_eq!(info["data"]["user"]["open_id"], "alice");
    assert_eq!(info["data"]["user"]["username"], "alice_name");
    assert!(info["data"]["user"].get("avatar_url").is_none());
    assert_eq!(error_code(&info), "ok");

    // Single use: OAuth errors come back with HTTP 200 by default.
    let (status, body) = exchange(&sim, &code, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["log_id"].is_string());
    assert!(body.get("access_token").is_none());

    // The request log never shows token values.
    let log = sim
        .control(
            reqwest::Method::GET,
            "/_sim/requests?path_prefix=/v2/",
            None,
        )
        .await;
    let text = log.to_string();
    assert!(!text.contains(access));
    assert!(!text.contains(&code));
    assert!(!text.contains("sim-client-secret"));
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn exchange_errors() {
    let sim = Sim::start().await;
    sim.user("alice").await;

    let code = code_with_pkce(&sim).await;
    let (_, body) = exchange(&sim, &code, "http://127.0.0.1/other", Some(VERIFIER)).await;
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Redirect_uri is not matched with the uri when requesting code."
    );

    let (_, body) = token_form(
        &sim,
        &[
            ("client_key", "sim-client-key"),
            ("client_secret", "wrong"),
            ("code", &code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_client");

    let other_verifier = "z".repeat(50);
    let (_, body) = exchange(&sim, &code, REDIRECT, Some(&other_verifier)).await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, body) = exchange(&sim, &code, REDIRECT, None).await;
    assert_eq!(body["error"], "invalid_request");

    let (_, body) = token_form(
        &sim,
        &[
            ("client_key", "sim-client-key"),
            ("client_secret", "sim-client-secret"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(body["error"], "unsupported_grant_type");

    // JSON instead of a form.
    let response = sim
        .http
        .post(sim.url("/v2/oauth/token/"))
        .json(&json!({"client_key": "sim-client-key", "client_secret": "sim-client-secret", "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect("token call");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_request");

    // The failures above did not use the code up; an expired code is refused.
    sim.advance(301).await;
    let (_, body) = exchange(&sim, &code, REDIRECT, Some(VERIFIER)).await;
    assert_eq!(body["error"], "invalid_grant");

    // With oauth_error_status 400 the same errors come back as HTTP 400.
    sim.settings(json!({"oauth_error_status": 400})).await;
    let (status, body) = exchange(&sim, "nope", REDIRECT, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn authorize_checks() {
    let sim = Sim::start().await;
    sim.user("alice").await;
    sim.user("bob").await;

    let (status, pairs) = authorize(&sim, &[("redirect_uri", "https://evil.example/cb")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(pairs.is_empty());
    let (status, _) = authorize(&sim, &[("client_key", "other")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, pairs) = authorize(&sim, &[("scope", "user.info.basic video.upload")]).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(get(&pairs, "error"), Some("invalid_scope"));

    // base64url challenge while the setting says hex.
    let (_, pairs) = authorize(
        &sim,
        &[
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(get(&pairs, "error"), Some("invalid_request"));
    let challenge = hex_challenge(VERIFIER);
    let (_, pairs) = authorize(
        &sim,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(get(&pairs, "error"), Some("invalid_request"));

    sim.settings(json!({"pkce": "required"})).await;
    let (_, pairs) = authorize(&sim, &[]).await;
    assert_eq!(get(&pairs, "error"), Some("invalid_request"));
    assert_eq!(get(&pairs, "state"), Some("csrf-123"));
    sim.settings(json!({"pkce": "optional"})).await;

    // Scripted logins: a denial, then bob with one scope switched off.
    sim.post_control(
        "/_sim/authorize/next",
        json!({"open_id": "alice", "deny": true}),
    )
    .await;
    sim.post_control(
        "/_sim/authorize/next",
        json!({"open_id": "bob", "grant_scopes": ["video.upload"]}),
    )
    .await;
    let (_, pairs) = authorize(&sim, &[]).await;
    assert_eq!(get(&pairs, "error"), Some("access_denied"));
    assert_eq!(get(&pairs, "state"), Some("csrf-123"));
    let (_, pairs) = authorize(&sim, &[]).await;
    assert_eq!(get(&pairs, "scopes"), Some("video.upload"));
    let code = get(&pairs, "code").expect("code").to_owned();
    // No challenge was sent, so no verifier is needed (and one sent anyway is ignored).
    let (_, body) = exchange(&sim, &code, REDIRECT, Some("whatever")).await;
    assert_eq!(body["open_id"], "bob");
    assert_eq!(body["scope"], "video.upload");
    sim.handle.shutdown().await;
}

async fn refresh(sim: &Sim, refresh_token: &str) -> Value {
    token_form(
        sim,
        &[
            ("client_key", "sim-client-key"),
            ("client_secret", "sim-client-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
    .1
}

#[tokio::test]
async fn refresh_rotates_and_old_token_stops_working() {
    let sim = Sim::start().await;
    sim.user("alice").await;
    let grant = sim
        .grant("alice", &["user.info.basic", "video.upload"])
        .await;
    let first = grant["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();

    let refreshed = refresh(&sim, &first).await;
    let second = refreshed["refresh_token"]
        .as_str()
        .expect("new refresh token")
        .to_owned();
    assert_ne!(first, second);
    assert_ne!(refreshed["access_token"], grant["access_token"]);
    assert_eq!(refreshed["scope"], "user.info.basic,video.upload");

    assert_eq!(refresh(&sim, &first).await["error"], "invalid_grant");
    let third = refresh(&sim, &second).await;
    assert!(third["access_token"].is_string());

    // Expired refresh token.
    sim.advance(15_552_001).await;
    let third_refresh = third["refresh_token"].as_str().expect("refresh token");
    assert_eq!(refresh(&sim, third_refresh).await["error"], "invalid_grant");

    // Legacy mode returns the same refresh token.
    sim.settings(json!({"rotate_refresh_tokens": false})).await;
    let grant = sim.grant("alice", &["user.info.basic"]).await;
    let rt = grant["refresh_token"].as_str().expect("refresh token");
    let again = refresh(&sim, rt).await;
    assert_eq!(again["refresh_token"], rt);
    assert_eq!(refresh(&sim, rt).await["refresh_token"], rt);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn revoke_kills_access_and_refresh_tokens() {
    let sim = Sim::start().await;
    sim.user("alice").await;
    let grant = sim.grant("alice", &["user.info.basic"]).await;
    let access = grant["access_token"].as_str().expect("access token");
    let response = sim
        .http
        .post(sim.url("/v2/oauth/revoke/"))
        .form(&[
            ("client_key", "sim-client-key"),
            ("client_secret", "sim-client-secret"),
            ("token", access),
        ])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.expect("JSON"), json!({}));

    let response = sim
        .http
        .get(sim.url("/v2/user/info/?fields=open_id"))
        .bearer_auth(access)
        .send()
        .await
        .expect("user info");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "access_token_invalid");
    let rt = grant["refresh_token"].as_str().expect("refresh token");
    assert_eq!(refresh(&sim, rt).await["error"], "invalid_grant");
    sim.handle.shutdown().await;
}
