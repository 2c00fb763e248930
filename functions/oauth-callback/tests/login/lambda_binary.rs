//! The real `oauth-callback` binary as Lambda runs it: under cargo-lambda's
//! Runtime API emulator, invoked with the events API Gateway's HTTP API
//! (payload 2.0) sends. Those carry cookies apart from the headers, in a
//! `cookies` array, and take the answer's cookies from one: the browser
//! binding must work through exactly that.

use shared::accounts::{AccountState, Accounts};
use shared::aws::AwsClients;
use shared::invite::{Invitation, SigningKey};
use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::{
    DeploymentStores, SIM_REDIRECT_URI, TestSim, deployment_stores, local_aws,
};

/// An HTTP API (payload format 2.0) request event, as API Gateway builds it:
/// lowercase headers without `cookie`, the cookies in `cookies`, the query
/// both raw and parsed.
fn http_api_event(path: &str, raw_query: &str, cookies: &[String]) -> serde_json::Value {
    let params: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(raw_query.as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("GET {path}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {
            "accept": "text/html",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "Mozilla/5.0",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Mozilla/5.0"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": format!("GET {path}"),
            "stage": "$default",
            "time": "10/Mar/2026:12:00:00 +0000",
            "timeEpoch": 1_773_144_000_000_i64
        },
        "isBase64Encoded": false
    });
    if !params.is_empty() {
        event["queryStringParameters"] = serde_json::Value::Object(params);
    }
    if !cookies.is_empty() {
        event["cookies"] = serde_json::json!(cookies);
    }
    event
}

#[tokio::test]
async fn the_binary_binds_the_login_to_the_browser_through_api_gateways_cookies() {
    let aws = AwsClients::from_config(&local_aws().await);
    let sim = TestSim::start(|s| s.pkce = tiktok_sim::PkceMode::Required).await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    let invite_key_secret_id = format!("{prefix}/invite-key");
    let key = SigningKey::create_if_missing(&aws.secrets, &invite_key_secret_id)
        .await
        .unwrap();
    sim.seed_user("open-lam", serde_json::json!({})).await;

    let mut function = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_oauth-callback")),
        &[
            ("TABLE_NAME", table.clone()),
            ("SECRETS_PREFIX", prefix.clone()),
            ("TIKTOK_APP_SECRET_ID", app_secret_id),
            ("INVITE_KEY_SECRET_ID", invite_key_secret_id),
            ("REDIRECT_URI", SIM_REDIRECT_URI.to_owned()),
            ("TIKTOK_API_BASE_URL", sim.base_url().to_owned()),
            (
                "TIKTOK_AUTH_URL",
                format!("{}/v2/auth/authorize/", sim.base_url()),
            ),
            // As someone chasing a bug would set it: the most that can be
            // logged. Raw events must still stay out of the logs.
            ("RUST_LOG", "trace".to_owned()),
        ],
    )
    .await;

    let invite = Invitation::new("lam", std::time::Duration::from_secs(3600), false)
        .unwrap()
        .sign(&key);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("invite", &invite)
        .finish();
    let start = function
        .invoke(&http_api_event("/auth/start", &query, &[]))
        .await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    assert_eq!(
        start.body["statusCode"],
        302,
        "{}\n{}",
        start.body,
        function_logs(&function)
    );
    // The cookie comes back in the answer's `cookies` array, which API
    // Gateway turns into Set-Cookie headers.
    let set_cookies = start.body["cookies"].as_array().expect("a cookies array");
    assert_eq!(set_cookies.len(), 1, "{}", start.body);
    let set_cookie = set_cookies[0].as_str().unwrap();
    assert!(set_cookie.starts_with("__Host-login-"), "{set_cookie}");
    assert!(
        set_cookie.contains("; Secure; HttpOnly; SameSite=Lax"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split("; ").next().unwrap().to_owned();
    let nonce = cookie.split_once('=').unwrap().1.to_owned();
    let location = start.body["headers"]["location"]
        .as_str()
        .unwrap()
        .to_owned();

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let at_tiktok = browser.get(&location).send().await.unwrap();
    let back = at_tiktok.headers()["location"].to_str().unwrap().to_owned();
    let callback_query = url::Url::parse(&back).unwrap().query().unwrap().to_owned();
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    // Without the cookie (another browser): refused, nothing used.
    let elsewhere = function
        .invoke(&http_api_event("/auth/callback", &callback_query, &[]))
        .await;
    assert_eq!(elsewhere.body["statusCode"], 403, "{}", elsewhere.body);
    assert!(sim.requests("/v2/oauth/token/").await.is_empty());

    // With it, among the browser's other cookies: connected.
    let done = function
        .invoke(&http_api_event(
            "/auth/callback",
            &callback_query,
            &["theme=dark".to_owned(), cookie.clone()],
        ))
        .await;
    assert_eq!(
        done.body["statusCode"],
        200,
        "{}\n{}",
        done.body,
        function_logs(&function)
    );
    let cleared = done.body["cookies"][0].as_str().unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"), "{}", done.body);
    let account = Accounts::new(aws.dynamodb.clone(), &table)
        .get("open-lam")
        .await
        .unwrap()
        .expect("connected");
    assert_eq!(account.state, AccountState::Active);
    assert_eq!(account.alias.as_deref(), Some("lam"));

    // Logged at trace for the project's code, never a raw event: not the
    // invitation, the code, the state, the cookie's nonce.
    let logs = function_logs(&function);
    assert!(logs.contains("account connected"), "{logs}");
    assert!(
        logs.contains("tiktok token issued"),
        "debug lines are there: {logs}"
    );
    assert!(!logs.contains("raw JSON event"), "{logs}");
    let state = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    for secret in [
        invite.as_str(),
        code.as_str(),
        state.as_str(),
        nonce.as_str(),
    ] {
        assert!(!logs.contains(secret), "a raw value reached the logs");
    }
    for line in logs.lines().filter(|l| l.starts_with('{')) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "JSON log lines: {line}"
        );
    }
}

fn function_logs(function: &LambdaFunction) -> String {
    function.logs().join("\n")
}

/// With Lambda's log format left at Text, the lines go to CloudWatch (a
/// pipe here), not to a terminal: no colour codes, which CloudWatch would
/// show as `[2m...[0m` noise around every level and field.
#[tokio::test]
async fn text_logs_carry_no_colour_codes_off_a_terminal() {
    // No configuration at all: the function logs why it cannot start.
    let mut function = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_oauth-callback")),
        &[
            ("AWS_LAMBDA_LOG_FORMAT", "Text".to_owned()),
            ("RUST_LOG", "debug".to_owned()),
        ],
    )
    .await;
    let failed = function
        .try_invoke(&http_api_event("/auth/start", "", &[]))
        .await;
    assert!(failed.is_err(), "it cannot start without its settings");
    let mut logs = function_logs(&function);
    for _ in 0..50 {
        if logs.contains("oauth-callback cannot start") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        logs = function_logs(&function);
    }
    assert!(logs.contains("oauth-callback cannot start"), "{logs}");
    assert!(logs.contains("ERROR"), "text, not JSON: {logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in {logs:?}");
}
