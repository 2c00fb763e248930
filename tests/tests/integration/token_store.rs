//! The token store against local AWS (moto) and the TikTok simulator:
//! refreshes under a lease (one refresh for many concurrent callers), passing
//! faults retried, refused grants marked for reconnect, dead leases taken
//! over, and no token material in logs, errors or the table.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiktok_drafts_tests::{FaultAction, FaultRule};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shared::Secret;
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::tiktok::{OAuthErrorCode, TikTokClient};
use shared::tokens::{
    RefreshOutcome, RefreshSettings, SecretsManagerTokenStore, TokenErrorKind, TokenManager,
    TokenStore,
};
use tiktok_drafts_tests::{TestSim, local_aws, unique_name};

const SCOPES: [&str; 2] = ["user.info.basic", "video.upload"];
/// The simulator's default access token lifetime.
const ACCESS_TTL: i64 = 7200;

// ---------------------------------------------------------------------------
// Log capture: one global subscriber for the whole test binary, writing every
// event (ours, the TikTok client's, the AWS SDK's, at debug level) into a
// buffer that each test checks for the token values it saw.

/// Neither the captured logs nor `texts` (error messages) hold any of `tokens`.
fn assert_no_token_leaks(tokens: &[Secret], texts: &[String]) {
    let logs = tiktok_drafts_tests::captured_logs();
    for token in tokens {
        let value = token.expose();
        assert!(value.len() >= 8, "test tokens are long enough to search");
        assert!(
            !logs.contains(value),
            "a token value appears in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(value))
                .collect::<Vec<_>>()
                .join("\n")
                .replace(value, "<THE TOKEN>")
        );
        for text in texts {
            assert!(
                !text.contains(value),
                "a token value appears in an error message"
            );
        }
    }
}

// ---------------------------------------------------------------------------

struct Env {
    sim: TestSim,
    client: TikTokClient,
    aws: AwsClients,
    table: String,
    prefix: String,
    clock: Clock,
    manager: Arc<TokenManager<SecretsManagerTokenStore>>,
}

fn fast_settings() -> RefreshSettings {
    RefreshSettings {
        margin: Duration::from_secs(600),
        lease_ttl: Duration::from_secs(10),
        refresh_call_timeout: Duration::from_secs(5),
        save_budget: Duration::from_secs(2),
        wait_deadline: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
        refresh_attempts: 4,
        retry: shared::backoff::Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
    }
}

impl Env {
    async fn start(adjust: impl FnOnce(&mut tiktok_sim::Settings)) -> Self {
        tiktok_drafts_tests::capture_logs();
        let sim = TestSim::start(adjust).await;
        let client = sim.client();
        let aws = AwsClients::from_config(&local_aws().await);
        let table = unique_name("tokens");
        shared::table::create_table(&aws.dynamodb, &table)
            .await
            .expect("table");
        let prefix = unique_name("tiktok-drafts-test");
        let clock = Clock::system();
        let manager = Arc::new(Self::build_manager(
            &client,
            &aws,
            &table,
            &prefix,
            &clock,
            fast_settings(),
        ));
        Self {
            sim,
            client,
            aws,
            table,
            prefix,
            clock,
            manager,
        }
    }

    fn build_manager(
        client: &TikTokClient,
        aws: &AwsClients,
        table: &str,
        prefix: &str,
        clock: &Clock,
        settings: RefreshSettings,
    ) -> TokenManager<SecretsManagerTokenStore> {
        TokenManager::new(
            SecretsManagerTokenStore::new(aws.secrets.clone(), prefix),
            client.clone(),
            aws.dynamodb.clone(),
            table,
        )
        .with_settings(settings)
        .with_clock(clock.clone())
    }

    /// Another manager (another "invocation") on the same store, table and clock.
    fn other_manager(&self, settings: RefreshSettings) -> TokenManager<SecretsManagerTokenStore> {
        Self::build_manager(
            &self.client,
            &self.aws,
            &self.table,
            &self.prefix,
            &self.clock,
            settings,
        )
    }

    /// A seeded creator with minted tokens, saved in the store.
    async fn connect(&self, open_id: &str) -> shared::tiktok::oauth::TokenResponse {
        self.sim.seed_user(open_id, json!({})).await;
        let minted = self.sim.tokens(open_id, &SCOPES).await;
        self.manager
            .save_token_response(&minted)
            .await
            .expect("tokens saved");
        minted
    }

    /// Moves both the simulator's clock and the store's.
    /// `open_id` connected (its account item and tokens stored), then its
    /// access token's life run out. The minted tokens and their refresh
    /// token.
    async fn connected_and_expired(
        &self,
        open_id: &str,
    ) -> (shared::tiktok::oauth::TokenResponse, shared::Secret) {
        self.put_account(open_id).await;
        let minted = self.connect(open_id).await;
        let refresh = minted.refresh_token.clone().expect("refresh token");
        self.advance(ACCESS_TTL + 60).await;
        (minted, refresh)
    }

    async fn advance(&self, seconds: i64) {
        self.sim.advance_clock(seconds).await;
        self.clock.advance_secs(seconds);
    }

    /// `POST /v2/oauth/token/` requests that reached the simulator.
    async fn token_posts(&self) -> usize {
        self.sim
            .requests("/v2/oauth/token/")
            .await
            .iter()
            .filter(|r| r["method"] == "POST" && r["path"] == "/v2/oauth/token/")
            .count()
    }

    async fn put_account(&self, open_id: &str) {
        self.aws
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("ACCOUNT#{open_id}")))
            .item("sk", AttributeValue::S("ACCOUNT".into()))
            .item("open_id", AttributeValue::S(open_id.into()))
            .item("state", AttributeValue::S("active".into()))
            .item("created_at", AttributeValue::N("1700000000".into()))
            .item("updated_at", AttributeValue::N("1700000000".into()))
            .send()
            .await
            .expect("account item");
    }

    /// `(state, state_reason)` of the account item.
    async fn account_state(&self, open_id: &str) -> (String, Option<String>) {
        let item = self
            .aws
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("ACCOUNT#{open_id}")))
            .key("sk", AttributeValue::S("ACCOUNT".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get account")
            .item
            .expect("account item exists");
        let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        (s("state").unwrap_or_default(), s("state_reason"))
    }

    async fn lease_item(&self, open_id: &str) -> Option<String> {
        self.aws
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("LEASE#tokens#{open_id}")))
            .key("sk", AttributeValue::S("LEASE".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get lease")
            .item
            .and_then(|i| i.get("holder").and_then(|v| v.as_s().ok()).cloned())
    }

    async fn put_lease(&self, open_id: &str, holder: &str, expires_in_secs: i64) {
        let expires_at = self.clock.now().timestamp() + expires_in_secs;
        self.aws
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("LEASE#tokens#{open_id}")))
            .item("sk", AttributeValue::S("LEASE".into()))
            .item("holder", AttributeValue::S(holder.into()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .expect("lease item");
    }

    /// Every string value in the table, for the "no tokens in DynamoDB" check.
    async fn table_text(&self) -> String {
        let items = self
            .aws
            .dynamodb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .expect("scan")
            .items
            .unwrap_or_default();
        format!("{items:?}")
    }
}

fn error_texts(err: &shared::tokens::TokenError) -> Vec<String> {
    vec![err.to_string(), format!("{err:?}")]
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_callers_refresh_once_and_share_the_new_token() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-concurrent";
    let minted = env.connect(open_id).await;
    let original_refresh = minted.refresh_token.clone().expect("refresh token");
    // Past the access token's life, on TikTok's clock and on the store's.
    env.advance(ACCESS_TTL + 60).await;
    let before = env.token_posts().await;

    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let manager = env.manager.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            manager.get_fresh_token(open_id).await
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.expect("task").expect("a fresh token"));
    }

    let refreshes = env.token_posts().await - before;
    println!("refresh requests that reached the simulator: {refreshes}");
    assert_eq!(refreshes, 1, "exactly one refresh for 20 callers");

    let first = &tokens[0].access_token;
    assert_ne!(first, &minted.access_token, "a new access token");
    assert!(tokens.iter().all(|t| &t.access_token == first));
    assert_eq!(tokens.iter().filter(|t| t.refreshed_here).count(), 1);
    assert!(tokens.iter().all(|t| t.expires_at > env.clock.now()));

    // The token works.
    let me = env.client.user_info(first).await.expect("user info");
    assert_eq!(me.open_id.as_deref(), Some(open_id));

    // The stored refresh token is the newest: it refreshes, the original is refused.
    let stored = env
        .manager
        .store()
        .load(open_id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(&stored.access_token, first);
    assert_ne!(stored.refresh_token, original_refresh);
    let forced = env
        .client
        .refresh_token(&stored.refresh_token)
        .await
        .expect("the stored refresh token works");
    let stale = env
        .client
        .refresh_token(&original_refresh)
        .await
        .expect_err("the original refresh token was rotated away");
    assert_eq!(stale.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
    assert!(env.lease_item(open_id).await.is_none(), "lease released");

    let mut seen = vec![
        minted.access_token.clone(),
        original_refresh,
        stored.access_token.clone(),
        stored.refresh_token.clone(),
        forced.access_token.clone(),
    ];
    seen.extend(forced.refresh_token.clone());
    let table = env.table_text().await;
    assert_no_token_leaks(&seen, &[table]);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn a_fresh_token_is_returned_without_refresh_and_the_sweep_refreshes_early() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-fresh";
    env.put_account(open_id).await;
    let minted = env.connect(open_id).await;

    let fresh = env.manager.get_fresh_token(open_id).await.unwrap();
    assert_eq!(fresh.access_token, minted.access_token);
    assert!(!fresh.refreshed_here);
    assert_eq!(fresh.scopes, SCOPES);
    // Expiry from the answer's expires_in.
    let left = (fresh.expires_at - env.clock.now()).num_seconds();
    assert!((ACCESS_TTL - 60..=ACCESS_TTL).contains(&left), "{left}");

    // Still fresh for a sweep with a small window...
    let outcome = env
        .manager
        .refresh_if_expiring_within(open_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(outcome, RefreshOutcome::StillFresh { .. }));
    assert_eq!(env.token_posts().await, 0, "no refresh call");

    // ...and refreshed by a sweep whose window covers the rest of its life.
    let outcome = env
        .manager
        .refresh_if_expiring_within(open_id, Duration::from_secs(3 * 3600))
        .await
        .unwrap();
    assert!(matches!(outcome, RefreshOutcome::Refreshed { .. }));
    assert_eq!(env.token_posts().await, 1);
    let after = env.manager.get_fresh_token(open_id).await.unwrap();
    assert_ne!(after.access_token, minted.access_token);
    env.client.user_info(&after.access_token).await.unwrap();
    // The account item carries the new expiry, which the sweep reads
    // instead of opening every secret.
    let account = shared::accounts::Accounts::new(env.aws.dynamodb.clone(), &env.table)
        .get(open_id)
        .await
        .unwrap()
        .expect("account");
    assert_eq!(
        account.access_expires_at.map(|t| t.timestamp()),
        Some(after.expires_at.timestamp())
    );

    // An account the store does not know is "not connected".
    let err = env
        .manager
        .get_fresh_token("open-nobody")
        .await
        .unwrap_err();
    assert!(err.needs_reconnect(), "{err}");

    let stored = env.manager.store().load(open_id).await.unwrap().unwrap();
    let mut seen = vec![minted.access_token.clone(), stored.access_token.clone()];
    seen.extend(minted.refresh_token.clone());
    seen.push(stored.refresh_token.clone());
    assert_no_token_leaks(&seen, &error_texts(&err));
    env.sim.shutdown().await;
}

#[tokio::test]
async fn a_passing_failure_is_retried_and_never_marks_the_account() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-transient";
    let minted = env.connect(open_id).await;
    env.put_account(open_id).await;
    env.advance(ACCESS_TTL + 60).await;

    env.sim
        .fault(FaultRule::new("/v2/oauth/token/", FaultAction::status(503)))
        .await;
    let fresh = env.manager.get_fresh_token(open_id).await.expect("retried");
    assert!(fresh.refreshed_here);
    assert_ne!(fresh.access_token, minted.access_token);
    env.client.user_info(&fresh.access_token).await.unwrap();
    assert_eq!(env.token_posts().await, 2, "the 503 and the retry");
    assert_eq!(env.account_state(open_id).await.0, "active");

    // A fault that outlasts every attempt: "retry later", account untouched,
    // stored tokens unchanged.
    env.advance(ACCESS_TTL + 60).await;
    env.sim
        .fault(FaultRule::new("/v2/oauth/token/", FaultAction::status(503)).times(10))
        .await;
    let before = env.manager.store().load(open_id).await.unwrap().unwrap();
    let err = env.manager.get_fresh_token(open_id).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.kind(), TokenErrorKind::RetryLater);
    assert!(err.to_string().contains("try again later"), "{err}");
    assert_eq!(env.account_state(open_id).await.0, "active");
    let after = env.manager.store().load(open_id).await.unwrap().unwrap();
    assert_eq!(after, before);
    assert!(env.lease_item(open_id).await.is_none(), "lease released");

    // Once TikTok is back, the same refresh token works.
    env.sim.clear_faults().await;
    let fresh2 = env.manager.get_fresh_token(open_id).await.unwrap();
    assert!(fresh2.refreshed_here);

    let stored = env.manager.store().load(open_id).await.unwrap().unwrap();
    let mut seen = vec![
        minted.access_token.clone(),
        fresh.access_token.clone(),
        stored.access_token.clone(),
        stored.refresh_token.clone(),
        before.refresh_token.clone(),
    ];
    seen.extend(minted.refresh_token.clone());
    assert_no_token_leaks(&seen, &error_texts(&err));
    env.sim.shutdown().await;
}

/// A caller cut off while TikTok is answering its refresh (the checker's
/// stop instant, any timeout) must not lose the rotated refresh token: the
/// refresh, its save and the lease release run to their end without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_caller_times_out_still_saves_the_rotated_token() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-cut-off";
    let (minted, original_refresh) = env.connected_and_expired(open_id).await;

    // TikTok takes 3 s to answer; the caller gives up after 1 s, while the
    // request is on its way.
    env.sim
        .fault(FaultRule::new(
            "/v2/oauth/token/",
            FaultAction::Delay { ms: 3000 },
        ))
        .await;
    let cut =
        tokio::time::timeout(Duration::from_secs(1), env.manager.get_fresh_token(open_id)).await;
    assert!(
        cut.is_err(),
        "the caller was cut off before TikTok answered"
    );
    assert!(
        !env.manager
            .refreshes_settled(tokio::time::Instant::now() + Duration::from_millis(50))
            .await,
        "the refresh is still running without its caller"
    );
    assert!(
        env.manager
            .refreshes_settled(tokio::time::Instant::now() + Duration::from_secs(15))
            .await,
        "the refresh finished"
    );

    // What TikTok rotated was saved: the stored refresh token is the new
    // one (the old one is refused), and the lease is free.
    assert_eq!(env.token_posts().await, 1, "one refresh reached TikTok");
    let stored = env.manager.store().load(open_id).await.unwrap().unwrap();
    assert_ne!(stored.access_token, minted.access_token);
    assert_ne!(stored.refresh_token, original_refresh);
    let stale = env
        .client
        .refresh_token(&original_refresh)
        .await
        .expect_err("the original refresh token was rotated away");
    assert_eq!(stale.oauth_code(), Some(&OAuthErrorCode::InvalidGrant));
    assert!(env.lease_item(open_id).await.is_none(), "lease released");
    env.client
        .user_info(&stored.access_token)
        .await
        .expect("the saved access token works");

    // A later refresh spends the saved token and works; the account is fine.
    env.advance(ACCESS_TTL + 60).await;
    let later = env
        .manager
        .get_fresh_token(open_id)
        .await
        .expect("a later refresh works");
    assert!(later.refreshed_here);
    assert_ne!(later.access_token, stored.access_token);
    assert_eq!(env.account_state(open_id).await.0, "active");

    let after = env.manager.store().load(open_id).await.unwrap().unwrap();
    let seen = vec![
        minted.access_token.clone(),
        original_refresh,
        stored.access_token.clone(),
        stored.refresh_token.clone(),
        after.access_token.clone(),
        after.refresh_token.clone(),
    ];
    assert_no_token_leaks(&seen, &[]);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_grant_marks_the_account_for_reconnect() {
    let env = Env::start(|_| {}).await;
    let mut seen = Vec::new();
    let mut texts = Vec::new();

    // Revoked by the creator (or us): refresh answers invalid_grant.
    let revoked = "open-revoked";
    let minted = env.connect(revoked).await;
    env.put_account(revoked).await;
    env.client
        .revoke(&minted.access_token)
        .await
        .expect("revoke");
    env.advance(ACCESS_TTL + 60).await;
    let err = env.manager.get_fresh_token(revoked).await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    assert_eq!(err.kind(), TokenErrorKind::Reconnect);
    assert!(err.to_string().contains("reconnect"), "{err}");
    assert!(err.to_string().contains(revoked), "{err}");
    let (state, reason) = env.account_state(revoked).await;
    assert_eq!(state, "needs_reconnect");
    assert!(reason.unwrap_or_default().contains("invalid_grant"));
    texts.extend(error_texts(&err));
    // No second call to TikTok with a dead token.
    let posts = env.token_posts().await;
    let again = env.manager.get_fresh_token(revoked).await.unwrap_err();
    assert!(again.needs_reconnect());
    assert_eq!(env.token_posts().await, posts);
    texts.extend(error_texts(&again));
    seen.push(minted.access_token.clone());
    seen.extend(minted.refresh_token.clone());

    // Connecting again clears the mark.
    let renewed = env.sim.tokens(revoked, &SCOPES).await;
    env.manager.save_token_response(&renewed).await.unwrap();
    let fresh = env.manager.get_fresh_token(revoked).await.unwrap();
    assert_eq!(fresh.access_token, renewed.access_token);
    seen.push(renewed.access_token.clone());
    seen.extend(renewed.refresh_token.clone());

    // Rotated away behind the store's back (a lost write): also a reconnect.
    let rotated = "open-rotated";
    let minted = env.connect(rotated).await;
    env.put_account(rotated).await;
    let elsewhere = env
        .client
        .refresh_token(minted.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    env.advance(ACCESS_TTL + 60).await;
    let err = env.manager.get_fresh_token(rotated).await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    assert_eq!(env.account_state(rotated).await.0, "needs_reconnect");
    texts.extend(error_texts(&err));
    seen.push(minted.access_token.clone());
    seen.extend(minted.refresh_token.clone());
    seen.push(elsewhere.access_token.clone());
    seen.extend(elsewhere.refresh_token.clone());

    // Without an account item the error is the same (nothing to mark).
    let orphan = "open-orphan";
    let minted = env.connect(orphan).await;
    env.client.revoke(&minted.access_token).await.unwrap();
    env.advance(ACCESS_TTL + 60).await;
    let err = env.manager.get_fresh_token(orphan).await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    texts.extend(error_texts(&err));
    seen.push(minted.access_token.clone());
    seen.extend(minted.refresh_token.clone());

    texts.push(env.table_text().await);
    assert_no_token_leaks(&seen, &texts);
    env.sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_refresh_token_needs_reconnect_without_calling_tiktok() {
    let env = Env::start(|s| s.refresh_token_ttl_secs = 3600).await;
    let open_id = "open-old";
    let minted = env.connect(open_id).await;
    env.put_account(open_id).await;
    // The store's clock only: TikTok is never asked.
    env.clock.advance_secs(ACCESS_TTL + 60);
    let err = env.manager.get_fresh_token(open_id).await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
    assert_eq!(env.token_posts().await, 0);
    let (state, reason) = env.account_state(open_id).await;
    assert_eq!(state, "needs_reconnect");
    assert!(reason.unwrap_or_default().contains("expired"));
    let mut seen = vec![minted.access_token.clone()];
    seen.extend(minted.refresh_token.clone());
    assert_no_token_leaks(&seen, &error_texts(&err));
    env.sim.shutdown().await;
}

#[tokio::test]
async fn a_dead_holders_lease_is_taken_over_after_it_expires() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-dead-holder";
    let minted = env.connect(open_id).await;
    env.advance(ACCESS_TTL + 60).await;
    // A holder that took the lease and died: it ends in 2 s.
    env.put_lease(open_id, "dead-holder", 2).await;

    let started = Instant::now();
    let fresh = env
        .manager
        .get_fresh_token(open_id)
        .await
        .expect("taken over");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(fresh.refreshed_here);
    assert_eq!(env.token_posts().await, 1);
    env.client.user_info(&fresh.access_token).await.unwrap();
    assert!(env.lease_item(open_id).await.is_none(), "lease released");

    // A live holder that does not finish within the caller's deadline:
    // "busy, retry later", and no refresh of our own.
    let held = "open-held";
    let minted2 = env.connect(held).await;
    env.advance(ACCESS_TTL + 60).await;
    env.put_lease(held, "slow-holder", 600).await;
    let impatient = env.other_manager(RefreshSettings {
        wait_deadline: Duration::from_secs(1),
        ..fast_settings()
    });
    let posts = env.token_posts().await;
    let err = impatient.get_fresh_token(held).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(err, shared::tokens::TokenError::Busy { .. }),
        "{err:?}"
    );
    assert_eq!(env.token_posts().await, posts);
    assert_eq!(env.lease_item(held).await.as_deref(), Some("slow-holder"));

    let stored = env.manager.store().load(open_id).await.unwrap().unwrap();
    let mut seen = vec![
        minted.access_token.clone(),
        minted2.access_token.clone(),
        stored.access_token.clone(),
        stored.refresh_token.clone(),
    ];
    seen.extend(minted.refresh_token.clone());
    assert_no_token_leaks(&seen, &error_texts(&err));
    env.sim.shutdown().await;
}

#[tokio::test]
async fn without_rotation_the_same_refresh_token_is_kept() {
    let env = Env::start(|s| s.rotate_refresh_tokens = false).await;
    let open_id = "open-legacy";
    let minted = env.connect(open_id).await;
    env.advance(ACCESS_TTL + 60).await;
    let fresh = env.manager.get_fresh_token(open_id).await.unwrap();
    assert!(fresh.refreshed_here);
    let stored = env.manager.store().load(open_id).await.unwrap().unwrap();
    assert_eq!(Some(&stored.refresh_token), minted.refresh_token.as_ref());
    assert!(stored.refresh_expires_at.is_some());
    env.client
        .refresh_token(&stored.refresh_token)
        .await
        .expect("still valid");
    let mut seen = vec![minted.access_token.clone(), fresh.access_token.clone()];
    seen.extend(minted.refresh_token.clone());
    assert_no_token_leaks(&seen, &[]);
    env.sim.shutdown().await;
}

/// The flows above in one place, checking the logs (which must have caught
/// the store's own events), the error messages, the table and the secret's
/// name for token material.
#[tokio::test]
async fn no_token_material_in_logs_errors_or_the_table() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-logs";
    let minted = env.connect(open_id).await;
    env.put_account(open_id).await;
    let mut seen = vec![minted.access_token.clone()];
    seen.extend(minted.refresh_token.clone());
    let mut texts = Vec::new();

    env.manager.get_fresh_token(open_id).await.unwrap();
    env.advance(ACCESS_TTL + 60).await;
    env.sim
        .fault(FaultRule::new("/v2/oauth/token/", FaultAction::status(503)))
        .await;
    let fresh = env.manager.get_fresh_token(open_id).await.unwrap();
    seen.push(fresh.access_token.clone());
    let stored = env.manager.store().load(open_id).await.unwrap().unwrap();
    seen.push(stored.refresh_token.clone());
    texts.push(format!("{stored:?}"));
    texts.push(format!("{fresh:?}"));

    env.client.revoke(&fresh.access_token).await.unwrap();
    env.advance(ACCESS_TTL + 60).await;
    let err = env.manager.get_fresh_token(open_id).await.unwrap_err();
    assert!(err.needs_reconnect());
    texts.extend(error_texts(&err));
    texts.push(env.table_text().await);

    let logs = tiktok_drafts_tests::captured_logs();
    assert!(
        logs.contains("access token refreshed") && logs.contains(open_id),
        "the capture sees the store's events"
    );
    assert!(logs.contains("account marked needs_reconnect"));
    assert!(logs.contains("retrying"));
    assert_no_token_leaks(&seen, &texts);

    // The secret itself does hold them, under the expected name.
    let name = format!("{}/accounts/{open_id}", env.prefix);
    let raw = env
        .aws
        .secrets
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(raw.secret_string().unwrap()).unwrap();
    assert_eq!(json["open_id"], open_id);
    assert_eq!(json["refresh_token"], stored.refresh_token.expose());
    for field in [
        "access_token",
        "access_expires_at",
        "refresh_expires_at",
        "scopes",
        "updated_at",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }

    // Deleting forgets them; deleting twice is fine.
    env.manager.store().delete(open_id).await.unwrap();
    env.manager.store().delete(open_id).await.unwrap();
    assert!(env.manager.store().load(open_id).await.unwrap().is_none());
    std::io::stdout().flush().ok();
    env.sim.shutdown().await;
}

/// Asks our local AWS server to answer the next `times` requests of
/// `target` whose body names `contains` with a 500 (a Secrets Manager
/// outage, as far as this client can tell).
async fn aws_fault(target: &str, contains: &str, times: u32) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("local AWS");
    let answer = reqwest::Client::new()
        .post(format!("{}/_faults", endpoint.trim_end_matches('/')))
        .json(&json!({
            "target": target, "contains": contains, "times": times,
            "status": 500, "code": "InternalServiceError"
        }))
        .send()
        .await
        .expect("fault control");
    assert!(answer.status().is_success());
}

async fn clear_aws_faults() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("local AWS");
    let answer = reqwest::Client::new()
        .delete(format!("{}/_faults", endpoint.trim_end_matches('/')))
        .send()
        .await
        .expect("fault control");
    assert!(answer.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_the_secret_will_not_take_is_kept_and_moved_in_by_the_next_holder() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-kept";
    let (_, original_refresh) = env.connected_and_expired(open_id).await;
    let secret = env.manager.store().secret_name(open_id).unwrap();

    // Secrets Manager refuses every save for longer than the save budget.
    aws_fault("secretsmanager.PutSecretValue", &secret, 1000).await;
    let fresh = env
        .manager
        .get_fresh_token(open_id)
        .await
        .expect("the refresh works although its save does not");
    assert!(fresh.refreshed_here);
    assert_eq!(env.token_posts().await, 1);
    // The secret still holds the spent token; the rotated one is in the
    // table, not lost.
    let in_secret = env.manager.store().load(open_id).await.unwrap().unwrap();
    assert_eq!(in_secret.refresh_token, original_refresh);
    let kept = env
        .aws
        .dynamodb
        .get_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S(format!("TOKENS_PENDING#{open_id}")))
        .key("sk", AttributeValue::S("PENDING".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    assert!(kept.is_some(), "the rotated tokens are kept in the table");
    assert!(
        kept.as_ref()
            .and_then(|item| item.get("expires_at"))
            .is_some(),
        "the kept item expires by itself"
    );

    // Secrets Manager is back. The next holder moves the kept tokens into
    // the secret before it spends any refresh token, and spends the kept
    // one, not the burnt one: the account stays connected.
    clear_aws_faults().await;
    env.advance(ACCESS_TTL + 60).await;
    let later = env
        .manager
        .get_fresh_token(open_id)
        .await
        .expect("the next refresh uses the kept token");
    assert!(later.refreshed_here);
    assert_eq!(env.token_posts().await, 2, "no refresh with a burnt token");
    assert_eq!(env.account_state(open_id).await.0, "active");
    let after = env.manager.store().load(open_id).await.unwrap().unwrap();
    assert_eq!(after.access_token, later.access_token);
    assert_ne!(after.refresh_token, original_refresh);
    let gone = env
        .aws
        .dynamodb
        .get_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S(format!("TOKENS_PENDING#{open_id}")))
        .key("sk", AttributeValue::S("PENDING".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    assert!(gone.is_none(), "the kept item is gone once moved");
    env.client
        .user_info(&after.access_token)
        .await
        .expect("the stored access token works");
    env.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_lost_its_lease_never_writes_the_secret() {
    let env = Env::start(|_| {}).await;
    let open_id = "open-lost-lease";
    let (_, original_refresh) = env.connected_and_expired(open_id).await;

    // TikTok answers in 1.5 s; meanwhile someone else holds the lease (as
    // after a pause longer than the lease).
    env.sim
        .fault(FaultRule::new(
            "/v2/oauth/token/",
            FaultAction::Delay { ms: 1500 },
        ))
        .await;
    let manager = env.manager.clone();
    let refresh = tokio::spawn(async move { manager.get_fresh_token(open_id).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        env.lease_item(open_id).await.is_some(),
        "the refresh holds the lease"
    );
    env.put_lease(open_id, "someone-else", 60).await;
    let _ = refresh.await.expect("the task ends");

    // The secret was not written by the holder that lost the lease: it still
    // holds the tokens of the connection, and the other holder's lease
    // stands. The rotated tokens are kept in the table for the next holder.
    assert_eq!(env.token_posts().await, 1);
    let in_secret = env.manager.store().load(open_id).await.unwrap().unwrap();
    assert_eq!(in_secret.refresh_token, original_refresh);
    assert_eq!(
        env.lease_item(open_id).await.as_deref(),
        Some("someone-else")
    );
    let kept = env
        .aws
        .dynamodb
        .get_item()
        .table_name(&env.table)
        .key("pk", AttributeValue::S(format!("TOKENS_PENDING#{open_id}")))
        .key("sk", AttributeValue::S("PENDING".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    assert!(kept.is_some(), "the rotated tokens are kept, not lost");
    env.sim.shutdown().await;
}
