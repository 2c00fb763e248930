//! The test deployment (local AWS, the simulator, the real login service)
//! and a browser that keeps cookies, as the handler's tests drive them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use lambda_http::http::StatusCode;
use lambda_http::http::header::{COOKIE, SET_COOKIE};
use lambda_http::{Body, Request, Response};
use oauth_callback::{LoginConfig, LoginService};
use shared::accounts::{AccountState, Accounts};
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::invite::{Invitation, SigningKey};
use shared::tiktok::{Endpoints, PkceEncoding};
use shared::tokens::{SecretsManagerTokenStore, StoredTokens, TokenStore as _};
use tiktok_drafts_tests::{
    DeploymentStores, SIM_REDIRECT_URI, TestSim, deployment_stores, local_aws,
};

pub struct Env {
    pub sim: TestSim,
    pub aws: AwsClients,
    pub service: LoginService,
    pub key: SigningKey,
    pub clock: Clock,
    pub table: String,
    pub prefix: String,
    /// The creator's browser, unless a test says otherwise.
    pub browser: Browser,
}

pub async fn env(direct_post: bool) -> Env {
    let aws = AwsClients::from_config(&local_aws().await);
    let sim = TestSim::start(|s| {
        s.pkce = tiktok_sim::PkceMode::Required;
        // Nothing listens there; the simulator records every webhook it
        // sends (authorization.removed above all) whatever the answer.
        s.webhook_url = Some("http://127.0.0.1:9/webhooks/tiktok".into());
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
        browser: Browser::default(),
    }
}

/// A browser: sends the cookies it was given back, forgets the cleared
/// ones. It follows no redirect by itself.
#[derive(Debug, Default)]
pub struct Browser {
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    /// A GET of the login function with this browser's cookies, in the one
    /// `cookie` header lambda_http makes of API Gateway's `cookies` array.
    pub fn get(&self, path_and_query: &str) -> Request {
        let mut request = lambda_http::http::Request::builder()
            .method("GET")
            .uri(format!("https://login.example.com{path_and_query}"));
        let cookies = self.cookie_header();
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies);
        }
        request.body(Body::Empty).unwrap()
    }

    /// Keeps (or clears) what the answer's `Set-Cookie` headers say.
    pub fn keep(&self, response: &Response<Body>) {
        let mut jar = self.cookies.lock().unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let mut parts = value.split("; ");
            let (name, val) = parts.next().unwrap().split_once('=').unwrap();
            if parts.any(|a| a == "Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), val.to_owned());
            }
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn cookie_count(&self) -> usize {
        self.cookies.lock().unwrap().len()
    }

    /// Sets a cookie by hand (an attacker forging one).
    pub fn set(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }
}

pub fn html(res: &Response<Body>) -> String {
    match res.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Env {
    pub fn invite(&self, alias: &str, rebind: bool) -> String {
        Invitation::new(alias, Duration::from_secs(3600), rebind)
            .unwrap()
            .sign(&self.key)
    }

    /// An invitation that allows moving the account to `alias`.
    pub fn move_invite(&self, alias: &str) -> String {
        Invitation::new(alias, Duration::from_secs(3600), false)
            .unwrap()
            .allowing_move(true)
            .sign(&self.key)
    }

    pub async fn start(&self, invite: &str) -> Response<Body> {
        self.start_in(&self.browser, invite).await
    }

    pub async fn start_in(&self, browser: &Browser, invite: &str) -> Response<Body> {
        let res = self
            .service
            .handle(browser.get(&format!("/auth/start?invite={}", encode(invite))))
            .await;
        browser.keep(&res);
        res
    }

    /// Follows the start redirect through the simulator's authorize page and
    /// returns the callback's query string.
    pub async fn authorize(&self, start: &Response<Body>) -> String {
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

    pub async fn callback(&self, query: &str) -> Response<Body> {
        self.callback_in(&self.browser, query).await
    }

    pub async fn callback_in(&self, browser: &Browser, query: &str) -> Response<Body> {
        let res = self
            .service
            .handle(browser.get(&format!("/auth/callback?{query}")))
            .await;
        browser.keep(&res);
        res
    }

    /// Scripts who logs in at TikTok next.
    pub async fn next_login(&self, open_id: &str) {
        self.sim
            .post(
                "/_sim/authorize/next",
                serde_json::json!({"open_id": open_id}),
            )
            .await;
    }

    /// A full login with `invite`, as `open_id`, in the default browser.
    pub async fn login_with(&self, open_id: &str, invite: &str) -> Response<Body> {
        self.next_login(open_id).await;
        let start = self.start(invite).await;
        let query = self.authorize(&start).await;
        self.callback(&query).await
    }

    /// A full login with a fresh invitation, as `open_id`.
    pub async fn login(&self, open_id: &str, alias: &str, rebind: bool) -> Response<Body> {
        self.login_with(open_id, &self.invite(alias, rebind)).await
    }

    pub fn accounts(&self) -> Accounts {
        Accounts::new(self.aws.dynamodb.clone(), &self.table)
    }

    pub fn tokens(&self) -> SecretsManagerTokenStore {
        SecretsManagerTokenStore::new(self.aws.secrets.clone(), &self.prefix)
    }

    /// `authorization.removed` events the simulator sent for `open_id`.
    pub async fn removals(&self, open_id: &str) -> usize {
        let sent = self.sim.get("/_sim/webhooks").await;
        sent.as_array()
            .unwrap()
            .iter()
            .filter(|d| d["event"] == "authorization.removed" && d["open_id"] == open_id)
            .count()
    }

    /// She is still connected at TikTok: the tokens stored for her work,
    /// nothing revoked her grant and TikTok sent no `authorization.removed`.
    pub async fn still_connected(&self, open_id: &str, alias: &str) {
        let stored = self.tokens().load(open_id).await.unwrap().unwrap();
        let me = self
            .sim
            .client()
            .user_info(&stored.access_token)
            .await
            .expect("her stored access token still works");
        assert_eq!(me.open_id.as_deref(), Some(open_id));
        let refreshed = self
            .sim
            .client()
            .refresh_token(&stored.refresh_token)
            .await
            .expect("her stored refresh token still works");
        assert_eq!(refreshed.open_id, open_id);
        // The refresh rotated her refresh token: keep the new one, as the
        // token manager would, so that she can be checked again.
        let rotated =
            StoredTokens::from_response(Some(&stored), &refreshed, self.clock.now()).unwrap();
        self.tokens().save(&rotated).await.unwrap();
        assert!(
            self.sim.requests("/v2/oauth/revoke/").await.is_empty(),
            "no revoke call"
        );
        assert_eq!(self.removals(open_id).await, 0, "no authorization.removed");
        let account = self.accounts().get(open_id).await.unwrap().unwrap();
        assert_eq!(account.state, AccountState::Active);
        assert_eq!(account.alias.as_deref(), Some(alias));
        let holder = self.accounts().get_by_alias(alias).await.unwrap().unwrap();
        assert_eq!(holder.open_id, open_id);
    }

    pub async fn nothing_stored_for(&self, open_id: &str) {
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
