//! `connect` against the simulator: the loopback flow driven like a browser
//! would drive it, the print-then-paste flow, and refusals that store nothing.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use crate::common::{Stack, assert_fails};
use serde_json::json;
use tiktok_drafts_tests::SIM_REDIRECT_URI;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows the authorize URL on the simulator (its scripted user answers at
/// once) and returns where TikTok redirects to.
async fn authorize(url: &str) -> url::Url {
    let res = no_redirects().get(url).send().await.unwrap();
    assert_eq!(
        res.status(),
        302,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    url::Url::parse(&location).unwrap()
}

/// Adds a redirect URI to the simulator's app and makes PKCE required.
async fn register(stack: &Stack, redirect_uri: &str) {
    let mut settings = stack.sim.get("/_sim/settings").await;
    settings["redirect_uris"]
        .as_array_mut()
        .unwrap()
        .push(json!(redirect_uri));
    settings["pkce"] = json!("required");
    stack
        .sim
        .control(reqwest::Method::PUT, "/_sim/settings", Some(settings))
        .await;
}

#[tokio::test]
async fn loopback_login_binds_the_account_and_stores_tokens() {
    let stack = Stack::start().await;
    stack
        .sim
        .seed_user("open-loop", json!({"display_name": "Frank"}))
        .await;
    stack
        .sim
        .post("/_sim/authorize/next", json!({"open_id": "open-loop"}))
        .await;

    let mut cmd = stack.cli();
    cmd.args(["--json", "connect", "--account", "frank", "--port", "0"])
        .args(["--timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // The authorize URL is printed on stderr (stdout is for the result).
    let (url, mut reader) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "no URL printed");
            if line.starts_with("http") {
                return (line.trim().to_owned(), reader);
            }
        }
    })
    .await
    .unwrap();
    let authorize_url = url::Url::parse(&url).unwrap();
    let query: std::collections::HashMap<String, String> =
        authorize_url.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "user.info.basic,video.upload");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 64, "hex SHA-256");
    let redirect_uri = query["redirect_uri"].clone();
    assert!(
        redirect_uri.starts_with("http://127.0.0.1:") && redirect_uri.ends_with("/callback"),
        "{redirect_uri}"
    );
    register(&stack, &redirect_uri).await;

    // A callback with another state is turned away, and the command waits on.
    let forged = reqwest::get(format!("{redirect_uri}?code=x&state=forged"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);

    let callback = authorize(&url).await;
    assert!(callback.as_str().starts_with(&redirect_uri), "{callback}");
    let page = reqwest::get(callback.as_str()).await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("Frank is now connected as"), "{body}");

    let out = tokio::task::spawn_blocking(move || {
        let out = child.wait_with_output().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        (out, rest)
    })
    .await
    .unwrap();
    let (out, rest) = out;
    assert!(out.status.success(), "{rest}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["account"], "frank");
    assert_eq!(json["open_id"], "open-loop");
    assert_eq!(json["display_name"], "Frank");
    assert_eq!(json["state"], "active");

    // `accounts` shows it, and its tokens work: a refresh goes through.
    let accounts = stack.json(&["accounts"]).await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_eq!(accounts[0]["alias"], "frank");
    assert_eq!(accounts[0]["open_id"], "open-loop");
    assert_eq!(accounts[0]["reconnect_hint"], serde_json::Value::Null);
    let refreshed = stack.json(&["refresh", "--account", "frank"]).await;
    assert_eq!(refreshed[0]["outcome"], "refreshed");
    stack.sim.shutdown().await;
}

#[tokio::test]
async fn a_printed_url_and_a_pasted_code_connect_once() {
    let stack = Stack::start().await;
    stack
        .sim
        .seed_user("open-paste", json!({"display_name": "Gina"}))
        .await;
    register(&stack, SIM_REDIRECT_URI).await;

    let printed = stack
        .json(&[
            "connect",
            "--account",
            "gina",
            "--print-url",
            "--redirect-uri",
            SIM_REDIRECT_URI,
        ])
        .await;
    let state = printed["state"].as_str().unwrap().to_owned();
    let callback = authorize(printed["authorize_url"].as_str().unwrap()).await;
    assert!(callback.as_str().starts_with(SIM_REDIRECT_URI));

    // The whole redirected URL is pasted; the state comes from it.
    let connected = stack.json(&["connect", "--code", callback.as_str()]).await;
    assert_eq!(connected["account"], "gina");
    assert_eq!(connected["open_id"], "open-paste");
    assert_eq!(connected["state"], "active");

    // The state was single use.
    let again = stack
        .run(&["connect", "--code", callback.as_str(), "--state", &state])
        .await;
    assert_fails(&again, "start again");

    // A denied login stores nothing.
    stack
        .sim
        .post(
            "/_sim/authorize/next",
            json!({"open_id": "open-paste", "deny": true}),
        )
        .await;
    let printed = stack
        .json(&[
            "connect",
            "--account",
            "hank",
            "--print-url",
            "--redirect-uri",
            SIM_REDIRECT_URI,
        ])
        .await;
    let callback = authorize(printed["authorize_url"].as_str().unwrap()).await;
    let denied = stack.run(&["connect", "--code", callback.as_str()]).await;
    assert_fails(&denied, "access_denied");
    let accounts = stack.json(&["accounts"]).await;
    let aliases: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, vec!["gina"]);

    // Usage errors are clear.
    let out = stack.run(&["connect", "--code", "abc"]).await;
    assert_fails(&out, "--state is required");
    let out = stack.run(&["connect", "--account", "Not An Alias"]).await;
    assert_fails(&out, "alias");
    stack.sim.shutdown().await;
}

/// `authorization.removed` deliveries and revoke calls at the simulator,
/// and whether `open_id`'s stored tokens still work there.
async fn still_connected(stack: &Stack, open_id: &str) {
    use shared::tokens::{SecretsManagerTokenStore, TokenStore as _};
    let stored = SecretsManagerTokenStore::new(stack.aws.secrets.clone(), &stack.prefix)
        .load(open_id)
        .await
        .unwrap()
        .expect("her tokens are stored");
    stack
        .sim
        .client()
        .user_info(&stored.access_token)
        .await
        .expect("her stored token still works");
    assert!(
        stack.sim.requests("/v2/oauth/revoke/").await.is_empty(),
        "no revoke call"
    );
    let sent = stack.sim.get("/_sim/webhooks").await;
    assert!(
        !sent
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["event"] == "authorization.removed"),
        "no authorization.removed: {sent}"
    );
}

/// Prints an authorize URL for `alias` (with `extra` flags), logs in as
/// `open_id` at the simulator and pastes the redirect back.
async fn pasted_login(
    stack: &Stack,
    open_id: &str,
    alias: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "connect",
        "--account",
        alias,
        "--print-url",
        "--redirect-uri",
        SIM_REDIRECT_URI,
    ];
    args.extend_from_slice(extra);
    let printed = stack.json(&args).await;
    stack
        .sim
        .post("/_sim/authorize/next", json!({"open_id": open_id}))
        .await;
    let callback = authorize(printed["authorize_url"].as_str().unwrap()).await;
    stack
        .run(&["--json", "connect", "--code", callback.as_str()])
        .await
}

/// The loopback flow for `alias` (with `extra` flags) as `open_id`, driven
/// like a browser; the command's output and the page it answered.
async fn loopback_login(
    stack: &Stack,
    open_id: &str,
    alias: &str,
    extra: &[&str],
) -> (std::process::Output, u16, String) {
    stack
        .sim
        .post("/_sim/authorize/next", json!({"open_id": open_id}))
        .await;
    let mut cmd = stack.cli();
    cmd.args(["--json", "connect", "--account", alias, "--port", "0"])
        .args(["--timeout", "60s"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (url, reader) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "no URL printed");
            if line.starts_with("http") {
                return (line.trim().to_owned(), reader);
            }
        }
    })
    .await
    .unwrap();
    let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    register(stack, &query["redirect_uri"]).await;
    let callback = authorize(&url).await;
    let page = reqwest::get(callback.as_str()).await.unwrap();
    let status = page.status().as_u16();
    let body = page.text().await.unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let mut out = child.wait_with_output().unwrap();
        let mut rest = String::new();
        let mut reader = reader;
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        // What the command said after the URL, less its progress lines
        // ("Waiting up to ... for TikTok's redirect"): the outcome.
        let outcome: Vec<&str> = rest
            .lines()
            .skip_while(|l| !l.starts_with("tiktok-drafts: "))
            .collect();
        out.stderr = outcome.join("\n").into_bytes();
        out
    })
    .await
    .unwrap();
    (out, status, body)
}

#[tokio::test]
async fn a_login_that_cannot_complete_never_disconnects_a_connected_creator() {
    let stack = Stack::start().await;
    let scopes = ["user.info.basic", "video.upload"];
    stack.connect("open-cat", "cat", &scopes).await;
    stack.connect("open-dan", "dan", &scopes).await;
    // The strict reading: TikTok would send authorization.removed on a
    // revoke; the simulator records every delivery.
    let mut settings = stack.sim.get("/_sim/settings").await;
    settings["webhook_url"] = json!("http://127.0.0.1:9/webhooks/tiktok");
    stack
        .sim
        .control(reqwest::Method::PUT, "/_sim/settings", Some(settings))
        .await;
    register(&stack, SIM_REDIRECT_URI).await;

    // Pasted code: Cat logs in for a new alias without --move.
    let out = pasted_login(&stack, "open-cat", "cat-studio", &[]).await;
    assert_fails(&out, "run again with --move");
    assert_fails(&out, "stays connected as \u{201c}cat\u{201d}");
    still_connected(&stack, "open-cat").await;

    // Pasted code: Cat logs in for the alias Dan holds.
    let out = pasted_login(&stack, "open-cat", "dan", &[]).await;
    assert_fails(&out, "already connected to another TikTok account");
    still_connected(&stack, "open-cat").await;
    still_connected(&stack, "open-dan").await;

    // Loopback: the same refusal, on the page and in the command.
    let (out, status, page) = loopback_login(&stack, "open-cat", "cat-studio", &[]).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("--move"), "{page}");
    assert_fails(&out, "run again with --move");
    still_connected(&stack, "open-cat").await;

    // With --move the account moves, and says so.
    let (out, status, page) = loopback_login(&stack, "open-cat", "cat-studio", &["--move"]).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("moved from \u{201c}cat\u{201d} to \u{201c}cat-studio\u{201d}"),
        "{page}"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["account"], "cat-studio");
    assert_eq!(json["moved_from"], "cat");
    still_connected(&stack, "open-cat").await;
    let accounts = stack.json(&["accounts"]).await;
    let aliases: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["alias"].as_str())
        .collect();
    assert_eq!(aliases, vec!["cat-studio", "dan"]);
    stack.sim.shutdown().await;
}
