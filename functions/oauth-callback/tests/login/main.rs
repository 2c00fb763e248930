//! The real login handler (a lambda_http request in, a response out) against
//! local AWS (moto) and the TikTok simulator.

use std::time::Duration;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use oauth_callback::{LoginConfig, LoginService};
use shared::accounts::{AccountState, Accounts};
use shared::aws::AwsClients;
use shared::invite::{Invitation, SigningKey};
use shared::tiktok::{Endpoints, PkceEncoding};
use shared::tokens::{Clock, SecretsManagerTokenStore, TokenStore as _};
use tiktok_drafts_tests::{
    DeploymentStores, SIM_CLIENT_SECRET, SIM_REDIRECT_URI, TestSim, deployment_stores, local_aws,
};

struct Env {
    sim: TestSim,
    aws: AwsClients,
    service: LoginService,
    key: SigningKey,
    clock: Clock,
    table: String,
    prefix: String,
}

async fn env(direct_post: bool) -> Env {
    let aws = AwsClients::from_config(&local_aws().await);
    let sim = TestSim::start(|s| {
        s.pkce = tiktok_sim::PkceMode::Required;
    })
    .await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    let invite_key_secret_id = format!("{prefix}/invite-key");
    let key = SigningKey::create_if_missing(&aws.secrets, &invite_key_secret_id)
        .await
        .unwrap();
    let config = LoginConfig {
        table: table.clone(),
        secrets_prefix: prefix.clone(),
        app_secret_id,
        invite_key_secret_id,
        redirect_uri: SIM_REDIRECT_URI.into(),
        pkce_encoding: PkceEncoding::Hex,
        direct_post_enabled: direct_post,
        endpoints: Endpoints::for_base_url(sim.base_url()).unwrap(),
    };
    let clock = Clock::system();
    let service = LoginService::new(config, &aws, clock.clone())
        .await
        .unwrap();
    Env {
        sim,
        aws,
        service,
        key,
        clock,
        table,
        prefix,
    }
}

fn get(path_and_query: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("https://login.example.com{path_and_query}"))
        .body(Body::Empty)
        .unwrap()
}

fn html(res: &Response<Body>) -> String {
    match res.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Env {
    fn invite(&self, alias: &str, rebind: bool) -> String {
        Invitation::new(alias, Duration::from_secs(3600), rebind)
            .unwrap()
            .sign(&self.key)
    }

    async fn start(&self, invite: &str) -> Response<Body> {
        self.service
            .handle(get(&format!("/auth/start?invite={}", encode(invite))))
            .await
    }

    /// Follows the start redirect through the simulator's authorize page and
    /// returns the callback's query string.
    async fn authorize(&self, start: &Response<Body>) -> String {
        assert_eq!(start.status(), StatusCode::FOUND, "{}", html(start));
        let location = start.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(self.sim.base_url()), "{location}");
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = browser.get(location).send().await.unwrap();
        assert_eq!(res.status(), 302);
        let back = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(back.starts_with(SIM_REDIRECT_URI), "{back}");
        url::Url::parse(&back)
            .unwrap()
            .query()
            .unwrap_or("")
            .to_owned()
    }

    async fn callback(&self, query: &str) -> Response<Body> {
        self.service
            .handle(get(&format!("/auth/callback?{query}")))
            .await
    }

    /// A full login with a fresh invitation, as `open_id`.
    async fn login(&self, open_id: &str, alias: &str, rebind: bool) -> Response<Body> {
        self.sim
            .post(
                "/_sim/authorize/next",
                serde_json::json!({"open_id": open_id}),
            )
            .await;
        let start = self.start(&self.invite(alias, rebind)).await;
        let query = self.authorize(&start).await;
        self.callback(&query).await
    }

    fn accounts(&self) -> Accounts {
        Accounts::new(self.aws.dynamodb.clone(), &self.table)
    }

    fn tokens(&self) -> SecretsManagerTokenStore {
        SecretsManagerTokenStore::new(self.aws.secrets.clone(), &self.prefix)
    }

    async fn nothing_stored_for(&self, open_id: &str) {
        assert!(
            self.tokens().load(open_id).await.unwrap().is_none(),
            "no secret for {open_id}"
        );
        assert!(
            self.accounts().get(open_id).await.unwrap().is_none(),
            "no account for {open_id}"
        );
    }
}

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
    assert!(!location.contains("alice"), "the alias stays server-side");

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
    let none = env.service.handle(get("/auth/start")).await;
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
async fn an_invitation_connects_once() {
    let env = env(false).await;
    env.sim.seed_user("open-dora", serde_json::json!({})).await;
    let invite = env.invite("dora", false);

    // Two logins started from one link; the first to finish uses it up.
    let first = env.start(&invite).await;
    let second = env.start(&invite).await;
    let q1 = env.authorize(&first).await;
    let q2 = env.authorize(&second).await;
    assert_eq!(env.callback(&q1).await.status(), StatusCode::OK);
    let res = env.callback(&q2).await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{}", html(&res));
    assert!(html(&res).contains("used already"));
}

#[tokio::test]
async fn two_callbacks_racing_for_one_state_have_one_winner() {
    let env = env(false).await;
    env.sim.seed_user("open-eve", serde_json::json!({})).await;
    let start = env.start(&env.invite("eve", false)).await;
    let query = env.authorize(&start).await;
    let (a, b) = tokio::join!(env.callback(&query), env.callback(&query));
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
        .fault(
            serde_json::json!({"path_prefix": "/v2/oauth/token/", "times": 1,
            "action": {"type": "status", "status": 503}}),
        )
        .await;
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
