//! Invitations (signed, expiring tokens naming an alias) and pending logins
//! (single-use OAuth states with their PKCE verifier), against local AWS.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use shared::accounts::AliasPermits;
use shared::aws::AwsClients;
use shared::invite::{Invitation, InviteError, SigningKey};
use shared::login_state::{DEFAULT_TTL, Holder, LoginStates, PendingLogin, StateError};
use tiktok_drafts_tests::{local_aws, unique_name};

// The tests crate does not depend on chrono: `SystemTime::now().into()` makes
// the `DateTime<Utc>` the API takes.

const REDIRECT: &str = "https://drafts.example.com/auth/callback";
const NONE: AliasPermits = AliasPermits {
    rebind: false,
    move_alias: false,
};
const REBIND: AliasPermits = AliasPermits {
    rebind: true,
    move_alias: false,
};

fn key() -> SigningKey {
    SigningKey::generate()
}

async fn states() -> LoginStates {
    let aws = AwsClients::from_config(&local_aws().await);
    let table = unique_name("states");
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .unwrap();
    LoginStates::new(aws.dynamodb, table)
}

#[test]
fn invitation_round_trip() {
    let key = key();
    let invitation = Invitation::new("alice-2", Duration::from_secs(3600), false).unwrap();
    let token = invitation.sign(&key);
    assert!(!token.contains('='), "URL-safe without padding: {token}");
    let back = Invitation::verify(&token, &key, SystemTime::now().into()).unwrap();
    assert_eq!(back, invitation);
    assert_eq!(back.alias(), "alice-2");
    assert!(!back.rebind());
    assert_ne!(
        Invitation::new("alice-2", Duration::from_secs(3600), false)
            .unwrap()
            .id(),
        invitation.id(),
        "every invitation has its own id"
    );
}

#[test]
fn forged_invitations_are_refused() {
    let key = key();
    let alice = Invitation::new("alice", Duration::from_secs(3600), false)
        .unwrap()
        .sign(&key);
    let mallory = Invitation::new("mallory", Duration::from_secs(3600), true)
        .unwrap()
        .sign(&key);
    let (alice_payload, alice_sig) = alice.split_once('.').unwrap();
    let (mallory_payload, _) = mallory.split_once('.').unwrap();

    // Another payload under alice's signature.
    let swapped = format!("{mallory_payload}.{alice_sig}");
    assert_eq!(
        Invitation::verify(&swapped, &key, SystemTime::now().into()),
        Err(InviteError::BadSignature)
    );

    // One character of the payload changed.
    let mut bytes = alice_payload.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{alice_sig}", String::from_utf8(bytes).unwrap());
    assert_eq!(
        Invitation::verify(&tampered, &key, SystemTime::now().into()),
        Err(InviteError::BadSignature)
    );

    // Signed with another key.
    let other = Invitation::new("alice", Duration::from_secs(3600), false)
        .unwrap()
        .sign(&SigningKey::generate());
    assert_eq!(
        Invitation::verify(&other, &key, SystemTime::now().into()),
        Err(InviteError::BadSignature)
    );
}

#[test]
fn expired_invitations_are_refused() {
    let key = key();
    let invitation = Invitation::new("alice", Duration::from_secs(60), false).unwrap();
    let token = invitation.sign(&key);
    let later = invitation.expires_at() + Duration::from_secs(1);
    assert_eq!(
        Invitation::verify(&token, &key, later),
        Err(InviteError::Expired {
            expired_at: invitation.expires_at()
        })
    );
    assert_eq!(
        Invitation::verify(&token, &key, invitation.expires_at()),
        Err(InviteError::Expired {
            expired_at: invitation.expires_at()
        }),
        "the expiry instant itself is too late"
    );
}

#[test]
fn malformed_invitations_are_refused() {
    let key = key();
    let good = Invitation::new("alice", Duration::from_secs(60), false)
        .unwrap()
        .sign(&key);
    let (payload, sig) = good.split_once('.').unwrap();
    for token in [
        String::new(),
        "no-dot".to_owned(),
        format!(".{sig}"),
        format!("{payload}."),
        format!("{good}.extra"),
        format!("{payload}.not*base64"),
        "x".repeat(5000),
    ] {
        let err = Invitation::verify(&token, &key, SystemTime::now().into()).unwrap_err();
        assert!(
            matches!(err, InviteError::Malformed | InviteError::BadSignature),
            "{token:?}: {err:?}"
        );
    }
    assert_eq!(
        Invitation::verify("no-dot", &key, SystemTime::now().into()),
        Err(InviteError::Malformed)
    );
    // The messages are for the person holding the link and carry nothing
    // of the token.
    assert!(!InviteError::BadSignature.to_string().contains(payload));
}

#[test]
fn bad_aliases_are_refused() {
    for alias in ["", "Alice", "a/b", "../x", "a b", "ünï", &"a".repeat(65)] {
        assert!(
            matches!(
                Invitation::new(alias, Duration::from_secs(60), false),
                Err(InviteError::BadAlias { .. })
            ),
            "{alias:?}"
        );
    }
    assert!(Invitation::new(&"a".repeat(64), Duration::from_secs(60), false).is_ok());
}

#[tokio::test]
async fn signing_key_is_created_once_and_loaded_from_secrets_manager() {
    let aws = AwsClients::from_config(&local_aws().await);
    let secret_id = unique_name("tiktok-drafts/invite-key");

    let missing = SigningKey::load(&aws.secrets, &secret_id).await;
    assert!(
        matches!(
            missing,
            Err(shared::invite::SigningKeyError::NotFound { .. })
        ),
        "{missing:?}"
    );

    let created = SigningKey::create_if_missing(&aws.secrets, &secret_id)
        .await
        .unwrap();
    let again = SigningKey::create_if_missing(&aws.secrets, &secret_id)
        .await
        .unwrap();
    let loaded = SigningKey::load(&aws.secrets, &secret_id).await.unwrap();

    // The same key each time: what one signs, the others verify.
    let token = Invitation::new("alice", Duration::from_secs(60), false)
        .unwrap()
        .sign(&created);
    assert!(Invitation::verify(&token, &again, SystemTime::now().into()).is_ok());
    assert!(Invitation::verify(&token, &loaded, SystemTime::now().into()).is_ok());
    assert!(!format!("{loaded:?}").contains(&token));

    // A secret that is not a usable key is reported, not used.
    let short = unique_name("tiktok-drafts/short-key");
    aws.secrets
        .create_secret()
        .name(&short)
        .secret_string("c2hvcnQ=")
        .send()
        .await
        .unwrap();
    assert!(matches!(
        SigningKey::load(&aws.secrets, &short).await,
        Err(shared::invite::SigningKeyError::Invalid { .. })
    ));
}

#[tokio::test]
async fn login_state_is_created_and_consumed() {
    let states = states().await;
    let now = SystemTime::now().into();
    let login = PendingLogin::new("alice", "inv-1", REBIND, REDIRECT, now, DEFAULT_TTL);
    states.create(&login).await.unwrap();
    assert!(
        matches!(states.create(&login).await, Err(StateError::Duplicate)),
        "the same state cannot be stored twice"
    );

    let back = states
        .consume(&login.state, Holder::Command, now)
        .await
        .unwrap();
    assert_eq!(back.state, login.state);
    assert_eq!(back.alias, "alice");
    assert_eq!(back.invite_id, "inv-1");
    assert!(back.permits.rebind);
    assert!(!back.permits.move_alias);
    assert_eq!(back.verifier, login.verifier);
    assert_eq!(back.redirect_uri, REDIRECT);
    assert_eq!(back.created_at, login.created_at);
    assert_eq!(back.expires_at, login.expires_at);
    let debug = format!("{back:?}");
    assert!(!debug.contains(login.verifier.expose()), "{debug}");
    assert!(!debug.contains(&login.state), "{debug}");
}

#[tokio::test]
async fn a_consumed_state_cannot_be_replayed() {
    let states = states().await;
    let now = SystemTime::now().into();
    let login = PendingLogin::new("alice", "inv-1", NONE, REDIRECT, now, DEFAULT_TTL);
    states.create(&login).await.unwrap();
    states
        .consume(&login.state, Holder::Command, now)
        .await
        .unwrap();
    assert!(matches!(
        states.consume(&login.state, Holder::Command, now).await,
        Err(StateError::Unknown)
    ));
    assert!(matches!(
        states.consume("never-issued", Holder::Command, now).await,
        Err(StateError::Unknown)
    ));
    assert!(matches!(
        states
            .consume("bad state/with#chars", Holder::Command, now)
            .await,
        Err(StateError::Unknown)
    ));
}

#[tokio::test]
async fn concurrent_consumes_of_one_state_have_exactly_one_winner() {
    let states = Arc::new(states().await);
    let now = SystemTime::now().into();
    let login = PendingLogin::new("alice", "inv-1", NONE, REDIRECT, now, DEFAULT_TTL);
    states.create(&login).await.unwrap();

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let states = Arc::clone(&states);
            let state = login.state.clone();
            tokio::spawn(async move { states.consume(&state, Holder::Command, now).await })
        })
        .collect();
    let mut won = 0;
    let mut lost = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(back) => {
                assert_eq!(back.verifier, login.verifier);
                won += 1;
            }
            Err(StateError::Unknown) => lost += 1,
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((won, lost), (1, 9));
}

#[tokio::test]
async fn an_expired_state_is_refused_and_gone() {
    let states = states().await;
    let now = SystemTime::now().into();
    let login = PendingLogin::new(
        "alice",
        "inv-1",
        NONE,
        REDIRECT,
        now,
        Duration::from_secs(60),
    );
    states.create(&login).await.unwrap();
    let later = login.expires_at + Duration::from_secs(1);
    assert!(matches!(
        states.consume(&login.state, Holder::Command, later).await,
        Err(StateError::Expired)
    ));
    // Refused once, gone for good: the item was deleted all the same.
    assert!(matches!(
        states.consume(&login.state, Holder::Command, now).await,
        Err(StateError::Unknown)
    ));
}

#[tokio::test]
async fn a_browser_login_is_only_for_the_browser_holding_its_nonce() {
    let states = states().await;
    let now = SystemTime::now().into();
    let mut login = PendingLogin::new(
        "alice",
        "inv-1",
        AliasPermits {
            rebind: false,
            move_alias: true,
        },
        REDIRECT,
        now,
        DEFAULT_TTL,
    );
    let nonce = login.bind_to_browser();
    states.create(&login).await.unwrap();

    // No cookie, a wrong one, the CLI: refused, and the state stays.
    for holder in [
        Holder::Browser { nonce: None },
        Holder::Browser {
            nonce: Some("a-guess"),
        },
        Holder::Command,
    ] {
        assert!(
            matches!(
                states.consume(&login.state, holder, now).await,
                Err(StateError::NotThisBrowser)
            ),
            "{holder:?}"
        );
    }
    let right = Holder::Browser {
        nonce: Some(nonce.expose()),
    };
    let back = states.consume(&login.state, right, now).await.unwrap();
    assert!(back.permits.move_alias);
    assert_eq!(back.browser_nonce_sha256, login.browser_nonce_sha256);
    // Used up for its own browser too.
    assert!(matches!(
        states.consume(&login.state, right, now).await,
        Err(StateError::Unknown)
    ));

    // A CLI login is not for a browser, cookie or not.
    let cli = PendingLogin::new("bob", "inv-2", NONE, REDIRECT, now, DEFAULT_TTL);
    states.create(&cli).await.unwrap();
    assert!(matches!(
        states
            .consume(&cli.state, Holder::Browser { nonce: Some("x") }, now)
            .await,
        Err(StateError::NotThisBrowser)
    ));
    assert!(
        states
            .consume(&cli.state, Holder::Command, now)
            .await
            .is_ok()
    );
}
