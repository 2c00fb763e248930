//! The account store against local AWS: connecting, reconnecting, single-use
//! invitations, alias ownership and rebinding, state changes and listing.
//!
//! The tests crate does not depend on chrono: `SystemTime` converts into the
//! `DateTime<Utc>` the API takes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use shared::accounts::{
    Account, AccountError, AccountState, Accounts, AliasPermits, ConnectedAccount,
};
use shared::aws::AwsClients;
use tiktok_drafts_tests::{local_aws, unique_name};

struct Fixture {
    accounts: Accounts,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

async fn fixture() -> Fixture {
    let aws = AwsClients::from_config(&local_aws().await);
    let table = unique_name("accounts");
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .unwrap();
    Fixture {
        accounts: Accounts::new(aws.dynamodb.clone(), table.clone()),
        dynamodb: aws.dynamodb,
        table,
    }
}

impl Fixture {
    /// `open_id` logs in through an invitation for `alias` that grants no
    /// permits, and must be connected.
    async fn connect(&self, open_id: &str, alias: &str, display_name: &str) {
        self.accounts
            .connect(
                login(open_id, alias, display_name),
                NO_PERMITS,
                &invite_id(),
            )
            .await
            .unwrap();
    }
}

fn login(open_id: &str, alias: &str, display_name: &str) -> ConnectedAccount {
    let now = SystemTime::now();
    ConnectedAccount {
        open_id: open_id.to_owned(),
        alias: alias.to_owned(),
        display_name: Some(display_name.to_owned()),
        avatar_url: Some(format!("https://p16.example.com/{open_id}.jpg")),
        scopes: vec!["user.info.basic".into(), "video.upload".into()],
        access_expires_at: (now + Duration::from_secs(86_400)).into(),
        refresh_expires_at: Some((now + Duration::from_secs(365 * 86_400)).into()),
    }
}

const NO_PERMITS: AliasPermits = AliasPermits {
    rebind: false,
    move_alias: false,
};
const REBIND: AliasPermits = AliasPermits {
    rebind: true,
    move_alias: false,
};
const MOVE: AliasPermits = AliasPermits {
    rebind: false,
    move_alias: true,
};

fn invite_id() -> String {
    unique_name("inv")
}

/// Every item in the table, for "nothing changed" checks.
async fn all_items(f: &Fixture) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let out = f
        .dynamodb
        .scan()
        .table_name(&f.table)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let mut items = out.items().to_vec();
    items.sort_by_key(|i| format!("{:?}{:?}", i.get("pk"), i.get("sk")));
    items
}

#[tokio::test]
async fn connect_a_new_account() {
    let f = fixture().await;
    let connected = login("open-a", "alice", "Alice");
    let account = f
        .accounts
        .connect(connected.clone(), NO_PERMITS, &invite_id())
        .await
        .unwrap()
        .account;
    assert_eq!(account.open_id, "open-a");
    assert_eq!(account.alias.as_deref(), Some("alice"));
    assert_eq!(account.display_name.as_deref(), Some("Alice"));
    assert_eq!(account.avatar_url, connected.avatar_url);
    assert_eq!(account.scopes, connected.scopes);
    assert_eq!(
        account.access_expires_at.map(|t| t.timestamp()),
        Some(connected.access_expires_at.timestamp())
    );
    assert_eq!(
        account.refresh_expires_at.map(|t| t.timestamp()),
        connected.refresh_expires_at.map(|t| t.timestamp())
    );
    assert_eq!(account.state, AccountState::Active);
    assert_eq!(account.state_reason, None);
    assert_eq!(account.created_at, account.updated_at);

    assert_eq!(
        f.accounts.get("open-a").await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        f.accounts.get_by_alias("alice").await.unwrap(),
        Some(account)
    );
    assert_eq!(f.accounts.get("open-b").await.unwrap(), None);
    assert_eq!(f.accounts.get_by_alias("bob").await.unwrap(), None);
    assert_eq!(f.accounts.get_by_alias("Not/Valid").await.unwrap(), None);

    // No token material anywhere in the table.
    let dump = format!("{:?}", all_items(&f).await);
    assert!(!dump.contains("act.") && !dump.contains("rft."));
}

#[tokio::test]
async fn reconnect_updates_in_place_and_keeps_created_at_and_alias() {
    let f = fixture().await;
    f.connect("open-a", "alice", "Alice").await;
    // Age the record, so a rewritten created_at would show.
    f.dynamodb
        .update_item()
        .table_name(&f.table)
        .key("pk", AttributeValue::S("ACCOUNT#open-a".into()))
        .key("sk", AttributeValue::S("ACCOUNT".into()))
        .update_expression("SET created_at = :old, updated_at = :old")
        .expression_attribute_values(":old", AttributeValue::N("1600000000".into()))
        .send()
        .await
        .unwrap();
    f.accounts
        .set_state(
            "open-a",
            AccountState::NeedsReconnect,
            Some("refresh failed"),
        )
        .await
        .unwrap();

    let mut again = login("open-a", "alice", "Alice Renamed");
    again.scopes.push("video.publish".into());
    again.avatar_url = None;
    let account = f
        .accounts
        .connect(again, NO_PERMITS, &invite_id())
        .await
        .unwrap()
        .account;
    assert_eq!(account.created_at.timestamp(), 1_600_000_000);
    assert!(account.updated_at.timestamp() > 1_600_000_000);
    assert_eq!(account.display_name.as_deref(), Some("Alice Renamed"));
    assert_eq!(
        account.avatar_url.as_deref(),
        Some("https://p16.example.com/open-a.jpg"),
        "a value the login did not learn anew is kept"
    );
    assert_eq!(account.scopes.len(), 3);
    assert_eq!(account.alias.as_deref(), Some("alice"));
    assert_eq!(account.state, AccountState::Active);
    assert_eq!(account.state_reason, None);
    assert_eq!(
        f.accounts.get_by_alias("alice").await.unwrap(),
        Some(account)
    );
    assert_eq!(f.accounts.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_move_to_a_new_alias_needs_its_permit_and_releases_the_old_one() {
    let f = fixture().await;
    f.connect("open-a", "alice", "Alice").await;
    let before = all_items(&f).await;

    // Without the permit: refused, naming both aliases, nothing changed.
    for permits in [NO_PERMITS, REBIND] {
        let refused = f
            .accounts
            .connect(login("open-a", "alice-2", "Alice"), permits, &invite_id())
            .await;
        assert!(
            matches!(&refused, Err(AccountError::MoveNotAllowed { from, to }) if from == "alice" && to == "alice-2"),
            "{refused:?}"
        );
        assert_eq!(all_items(&f).await, before);
    }

    let moved = f
        .accounts
        .connect(login("open-a", "alice-2", "Alice"), MOVE, &invite_id())
        .await
        .unwrap();
    assert_eq!(moved.moved_from.as_deref(), Some("alice"));
    let account = moved.account;
    assert_eq!(account.alias.as_deref(), Some("alice-2"));
    assert_eq!(f.accounts.get_by_alias("alice").await.unwrap(), None);
    assert_eq!(
        f.accounts.get_by_alias("alice-2").await.unwrap(),
        Some(account)
    );
    // The released alias is free for another account, without rebind.
    f.connect("open-b", "alice", "Bob").await;
    assert_eq!(
        f.accounts
            .get_by_alias("alice")
            .await
            .unwrap()
            .map(|a| a.open_id),
        Some("open-b".to_owned())
    );
}

#[tokio::test]
async fn an_invitation_is_used_once_and_a_second_use_changes_nothing() {
    let f = fixture().await;
    let invitation = invite_id();
    f.accounts
        .connect(login("open-a", "alice", "Alice"), NO_PERMITS, &invitation)
        .await
        .unwrap();
    let before = all_items(&f).await;

    let replay = f
        .accounts
        .connect(login("open-a", "alice", "Changed"), NO_PERMITS, &invitation)
        .await;
    assert!(
        matches!(replay, Err(AccountError::InvitationUsed)),
        "{replay:?}"
    );
    let stranger = f
        .accounts
        .connect(login("open-b", "bob", "Bob"), NO_PERMITS, &invitation)
        .await;
    assert!(
        matches!(stranger, Err(AccountError::InvitationUsed)),
        "{stranger:?}"
    );
    assert_eq!(all_items(&f).await, before, "nothing changed");
}

#[tokio::test]
async fn concurrent_logins_with_one_invitation_have_one_winner() {
    let f = fixture().await;
    let accounts = Arc::new(f.accounts.clone());
    let invitation = invite_id();
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let accounts = Arc::clone(&accounts);
            let invitation = invitation.clone();
            tokio::spawn(async move {
                accounts
                    .connect(
                        login(&format!("open-{i}"), &format!("user-{i}"), "X"),
                        NO_PERMITS,
                        &invitation,
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(AccountError::InvitationUsed) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(f.accounts.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_alias_held_by_another_account_is_not_taken_without_rebind() {
    let f = fixture().await;
    let alice = f
        .accounts
        .connect(login("open-a", "alice", "Alice"), NO_PERMITS, &invite_id())
        .await
        .unwrap()
        .account;

    let err = f
        .accounts
        .connect(
            login("open-b", "alice", "Mallory"),
            NO_PERMITS,
            &invite_id(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AccountError::AliasTaken { alias } if alias == "alice"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("alice"), "{message}");
    assert!(
        !message.contains("open-a") && !message.contains("open-b"),
        "{message}"
    );

    assert_eq!(f.accounts.get_by_alias("alice").await.unwrap(), Some(alice));
    assert_eq!(f.accounts.get("open-b").await.unwrap(), None);
}

#[tokio::test]
async fn rebind_moves_the_alias_and_revokes_the_previous_holder() {
    let f = fixture().await;
    f.connect("open-a", "alice", "Alice").await;

    let new_holder = f
        .accounts
        .connect(
            login("open-b", "alice", "Alice's new phone"),
            REBIND,
            &invite_id(),
        )
        .await
        .unwrap()
        .account;
    assert_eq!(new_holder.alias.as_deref(), Some("alice"));
    assert_eq!(
        f.accounts.get_by_alias("alice").await.unwrap(),
        Some(new_holder)
    );

    let previous: Account = f.accounts.get("open-a").await.unwrap().unwrap();
    assert_eq!(previous.state, AccountState::Revoked);
    assert_eq!(previous.alias, None);
    assert!(
        previous
            .state_reason
            .as_deref()
            .is_some_and(|r| r.contains("alice")),
        "{previous:?}"
    );
    // Its history is kept.
    assert_eq!(previous.display_name.as_deref(), Some("Alice"));

    // Reconnecting the new holder with rebind again is harmless.
    let again = f
        .accounts
        .connect(login("open-b", "alice", "B"), REBIND, &invite_id())
        .await
        .unwrap()
        .account;
    assert_eq!(again.alias.as_deref(), Some("alice"));
    assert_eq!(f.accounts.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn rebind_from_another_alias_releases_it_and_revokes_the_holder_at_once() {
    let f = fixture().await;
    f.connect("open-a", "alice", "Alice").await;
    f.connect("open-b", "bob", "Bob").await;

    // Taking "alice" moves open-b away from "bob": a rebind alone does not
    // allow that.
    let refused = f
        .accounts
        .connect(login("open-b", "alice", "Bob"), REBIND, &invite_id())
        .await;
    assert!(
        matches!(&refused, Err(AccountError::MoveNotAllowed { from, .. }) if from == "bob"),
        "{refused:?}"
    );

    // One transaction: invitation, alias, account, release of "bob", revoke of open-a.
    let both = AliasPermits {
        rebind: true,
        move_alias: true,
    };
    let connection = f
        .accounts
        .connect(login("open-b", "alice", "Bob"), both, &invite_id())
        .await
        .unwrap();
    assert_eq!(connection.moved_from.as_deref(), Some("bob"));
    let moved = connection.account;
    assert_eq!(moved.alias.as_deref(), Some("alice"));
    assert_eq!(f.accounts.get_by_alias("bob").await.unwrap(), None);
    assert_eq!(
        f.accounts
            .get_by_alias("alice")
            .await
            .unwrap()
            .map(|a| a.open_id),
        Some("open-b".to_owned())
    );
    let previous = f.accounts.get("open-a").await.unwrap().unwrap();
    assert_eq!(previous.state, AccountState::Revoked);
    assert_eq!(previous.alias, None);
    assert_eq!(previous.former_alias.as_deref(), Some("alice"));
}

#[tokio::test]
async fn set_state_changes_state_and_reason() {
    let f = fixture().await;
    f.connect("open-a", "alice", "Alice").await;

    let account = f
        .accounts
        .set_state(
            "open-a",
            AccountState::NeedsReconnect,
            Some("invalid_grant on refresh"),
        )
        .await
        .unwrap();
    assert_eq!(account.state, AccountState::NeedsReconnect);
    assert_eq!(
        account.state_reason.as_deref(),
        Some("invalid_grant on refresh")
    );
    assert_eq!(f.accounts.get("open-a").await.unwrap(), Some(account));

    let account = f
        .accounts
        .set_state("open-a", AccountState::Active, None)
        .await
        .unwrap();
    assert_eq!(account.state, AccountState::Active);
    assert_eq!(account.state_reason, None);
    assert_eq!(account.alias.as_deref(), Some("alice"));

    let missing = f
        .accounts
        .set_state("open-zzz", AccountState::Revoked, None)
        .await;
    assert!(
        matches!(&missing, Err(AccountError::NotFound { open_id }) if open_id == "open-zzz"),
        "{missing:?}"
    );
    assert_eq!(f.accounts.get("open-zzz").await.unwrap(), None);
}

#[tokio::test]
async fn list_returns_only_accounts_sorted_by_alias() {
    let f = fixture().await;
    assert!(f.accounts.list().await.unwrap().is_empty());
    for (open_id, alias) in [("open-c", "carol"), ("open-a", "alice"), ("open-b", "bob")] {
        f.accounts
            .connect(login(open_id, alias, alias), NO_PERMITS, &invite_id())
            .await
            .unwrap();
    }
    // Other items in the table (aliases, used invitations, a login state)
    // are not accounts.
    let states = shared::login_state::LoginStates::new(f.dynamodb.clone(), f.table.clone());
    let pending = shared::login_state::PendingLogin::new(
        "dave",
        "inv-x",
        NO_PERMITS,
        "https://drafts.example.com/auth/callback",
        SystemTime::now().into(),
        shared::login_state::DEFAULT_TTL,
    );
    states.create(&pending).await.unwrap();

    let listed = f.accounts.list().await.unwrap();
    let aliases: Vec<_> = listed.iter().map(|a| a.alias.as_deref()).collect();
    assert_eq!(aliases, vec![Some("alice"), Some("bob"), Some("carol")]);
}
