//! The login fits its function: slow TikTok calls get a page in time, and a
//! login stopped at any step leaves the account connected or not at all.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};
use tiktok_drafts_tests::{FaultAction, FaultRule};

use lambda_http::http::StatusCode;
use oauth_callback::FUNCTION_TIMEOUT;
use shared::accounts::AccountState;
use shared::invite::Invitation;
use shared::tokens::TokenStore as _;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

use crate::harness::{Env, env, html};

#[tokio::test]
async fn a_login_whose_tiktok_calls_are_slow_is_answered_within_the_functions_time() {
    let env = env(false).await;
    env.sim.seed_user("open-sol", serde_json::json!({})).await;

    // TikTok's token endpoint hangs for a minute (the HTTP client alone
    // would wait 30 s).
    env.sim
        .fault(FaultRule::new(
            "/v2/oauth/token/",
            FaultAction::Delay { ms: 60_000 },
        ))
        .await;
    env.next_login("open-sol").await;
    let start = env.start(&env.invite("sol", false)).await;
    let query = env.authorize(&start).await;
    let began = Instant::now();
    let res = env.callback(&query).await;
    let took = began.elapsed();
    assert!(took < FUNCTION_TIMEOUT, "answered after {took:?}");
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT, "{}", html(&res));
    assert!(
        html(&res).contains("did not answer in time"),
        "{}",
        html(&res)
    );
    env.nothing_stored_for("open-sol").await;

    // User info hangs on every attempt: the login connects without the
    // display name, in time, and no three 30-second retries.
    env.sim
        .fault(FaultRule::new("/v2/user/info/", FaultAction::Delay { ms: 60_000 }).times(5))
        .await;
    env.next_login("open-sol").await;
    let start = env.start(&env.invite("sol", false)).await;
    let query = env.authorize(&start).await;
    let began = Instant::now();
    let res = env.callback(&query).await;
    let took = began.elapsed();
    assert!(took < FUNCTION_TIMEOUT, "answered after {took:?}");
    assert_eq!(res.status(), StatusCode::OK, "{}", html(&res));
    let account = env.accounts().get("open-sol").await.unwrap().unwrap();
    assert_eq!(account.display_name, None);
    env.sim.clear_faults().await;
    env.still_connected("open-sol", "sol").await;
}

#[tokio::test]
async fn a_reconnect_waiting_on_a_refresh_that_does_not_end_is_answered_in_time_and_she_stays_connected()
 {
    let env = env(false).await;
    env.sim.seed_user("open-lea", serde_json::json!({})).await;
    assert_eq!(
        env.login("open-lea", "lea", false).await.status(),
        StatusCode::OK
    );
    // Another invocation holds her refresh lease, for longer than a login
    // may wait (a refresh stuck on a slow TikTok).
    let leases = shared::lease::LeaseTable::new(env.aws.dynamodb.clone(), &env.table);
    let lease = "tokens#open-lea";
    assert!(
        leases
            .try_acquire(
                lease,
                "a-refresh",
                Duration::from_secs(600),
                env.clock.now()
            )
            .await
            .unwrap()
    );
    let timeouts = shared::login::LoginTimeouts::default();

    let began = Instant::now();
    let res = env.login("open-lea", "lea", false).await;
    let took = began.elapsed();
    let page = html(&res);
    assert!(took < FUNCTION_TIMEOUT, "answered after {took:?}");
    assert!(
        took < timeouts.lease_wait + Duration::from_secs(5),
        "waited {took:?} for the lease"
    );
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("Nothing was changed"), "{page}");
    // Her new grant is dropped, not revoked: what was stored still works.
    leases.release(lease, "a-refresh").await.unwrap();
    env.still_connected("open-lea", "lea").await;

    // Once the refresh is over, the same reconnect goes through.
    assert_eq!(
        env.login("open-lea", "lea", false).await.status(),
        StatusCode::OK
    );
    env.still_connected("open-lea", "lea").await;
}

/// Counts the login's own log events (the project's crates) on this thread
/// and raises `fired` at the `kill_at`-th: each one marks a step done.
struct StepCounter {
    seen: Arc<AtomicUsize>,
    kill_at: usize,
    fired: Arc<AtomicBool>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StepCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let target = event.metadata().target();
        if (target.starts_with("shared") || target.starts_with("oauth_callback"))
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.kill_at
        {
            self.fired.store(true, Ordering::SeqCst);
        }
    }
}

/// Runs `login`, dropping it at the first await after its `kill_at`-th
/// step, as a Lambda invocation cut off there would stop. `None`: killed.
async fn killed_after<F: Future>(kill_at: usize, login: F) -> Option<F::Output> {
    let fired = Arc::new(AtomicBool::new(false));
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(StepCounter {
        seen: Arc::default(),
        kill_at,
        fired: fired.clone(),
    }));
    // This test's runtime is single-threaded: every step of the login runs
    // on this thread, under this dispatcher.
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let mut login = std::pin::pin!(login);
    std::future::poll_fn(|cx| match login.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending if fired.load(Ordering::SeqCst) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// Whether the account is connected in full: active under `alias`, the
/// alias bound to it, and tokens that work.
async fn fully_connected(env: &Env, open_id: &str, alias: &str) -> bool {
    let Some(account) = env.accounts().get(open_id).await.unwrap() else {
        return false;
    };
    assert_eq!(account.state, AccountState::Active, "{account:?}");
    assert_eq!(account.alias.as_deref(), Some(alias));
    let holder = env.accounts().get_by_alias(alias).await.unwrap();
    assert_eq!(holder.map(|a| a.open_id).as_deref(), Some(open_id));
    let stored = env
        .tokens()
        .load(open_id)
        .await
        .unwrap()
        .expect("a connected account has tokens");
    env.sim
        .client()
        .user_info(&stored.access_token)
        .await
        .expect("a connected account's tokens work");
    true
}

#[tokio::test]
async fn a_login_killed_at_any_step_after_the_exchange_leaves_the_account_connected_or_not_at_all()
{
    let env = env(false).await;
    let mut first_login_kills = 0;
    let mut reconnect_kills = 0;
    // Kill points of a first login by outcome: after the exchange with the
    // tokens already stored but the account not yet recorded; after the
    // account transaction.
    let mut stored_not_connected = 0;
    let mut killed_but_connected = 0;
    for reconnect in [false, true] {
        for kill_at in 1.. {
            assert!(kill_at < 100, "the login never completed");
            let open_id = format!("open-k{kill_at}-{reconnect}");
            let alias = format!("k{kill_at}-{reconnect}");
            env.sim.seed_user(&open_id, serde_json::json!({})).await;
            if reconnect {
                assert_eq!(
                    env.login(&open_id, &alias, false).await.status(),
                    StatusCode::OK
                );
            }
            let invitation = Invitation::new(&alias, Duration::from_secs(3600), false).unwrap();
            let link = invitation.sign(&env.key);
            env.next_login(&open_id).await;
            let start = env.start(&link).await;
            let query = env.authorize(&start).await;

            let Some(res) = killed_after(kill_at, env.callback(&query)).await else {
                let connected = fully_connected(&env, &open_id, &alias).await;
                let used = env
                    .accounts()
                    .invitation_use(invitation.id())
                    .await
                    .unwrap();
                if reconnect {
                    reconnect_kills += 1;
                    assert!(
                        connected,
                        "killed after step {kill_at}: she stays connected"
                    );
                } else {
                    first_login_kills += 1;
                    if connected {
                        killed_but_connected += 1;
                        assert_eq!(used.map(|u| u.open_id).as_deref(), Some(open_id.as_str()));
                    } else {
                        if env.tokens().load(&open_id).await.unwrap().is_some() {
                            stored_not_connected += 1;
                        }
                        // Not connected at all: no account, the alias free,
                        // the invitation unused, so her link still works.
                        assert!(env.accounts().get(&open_id).await.unwrap().is_none());
                        assert!(
                            env.accounts()
                                .alias_binding(&alias)
                                .await
                                .unwrap()
                                .is_none()
                        );
                        assert!(
                            used.is_none(),
                            "killed after step {kill_at}: the invitation is not used up"
                        );
                        // A login stopped while it held the account's
                        // refresh lease leaves it to expire.
                        let lease = shared::tokens::RefreshSettings::default().lease();
                        env.clock
                            .advance_secs(i64::try_from(lease.as_secs()).unwrap() + 1);
                        let retry = env.login_with(&open_id, &link).await;
                        assert_eq!(retry.status(), StatusCode::OK, "{}", html(&retry));
                        assert!(fully_connected(&env, &open_id, &alias).await);
                    }
                }
                continue;
            };
            // Past its last step: the login ran to the end.
            assert_eq!(res.status(), StatusCode::OK, "{}", html(&res));
            assert!(fully_connected(&env, &open_id, &alias).await);
            break;
        }
    }
    // The login has several steps after the exchange; each was a kill point,
    // among them the two that matter most.
    eprintln!(
        "kill points: first login {first_login_kills} ({stored_not_connected} with tokens stored and no account, {killed_but_connected} after the account was recorded), reconnect {reconnect_kills}"
    );
    assert!(first_login_kills >= 4, "{first_login_kills} kill points");
    assert!(reconnect_kills >= 4, "{reconnect_kills} kill points");
    assert!(
        stored_not_connected >= 1,
        "a kill between the token save and the account"
    );
    assert!(
        killed_but_connected >= 1,
        "a kill after the account transaction"
    );
}
