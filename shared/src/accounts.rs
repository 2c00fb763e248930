//! Connected TikTok accounts and the aliases that name them.
//!
//! Two kinds of item, neither holding token material (tokens live in Secrets
//! Manager, see the token store):
//!
//! | item | `pk` / `sk` | attributes |
//! |---|---|---|
//! | account | `ACCOUNT#<open_id>` / `ACCOUNT` | `open_id`, `alias`, `former_alias`, `display_name`, `username`, `avatar_url`, `scopes` (list), `access_expires_at`, `refresh_expires_at`, `state`, `state_reason`, `attention`, `link_version`, `created_at`, `connected_at`, `updated_at`; `gsi1pk` = `ACCOUNTS`, `gsi1sk` = open_id |
//! | alias binding | `ALIAS#<alias>` / `ALIAS` | `alias`, `open_id`, `bound_at` (when this account took the alias; a reconnect keeps it), `updated_at` |
//! | used invitation | `INVITE#<id>` / `INVITE` | `invite_id`, `alias`, `open_id`, `used_at` |
//!
//! Times are epoch seconds. The alias is what operators and S3 keys use
//! (`uploads/<alias>/…`); the binding item makes "which account is `alice`?"
//! one read, and makes an alias unique: two accounts cannot both hold it.
//!
//! [`Accounts::connect`] is the end of a login and writes everything in one
//! transaction: the invitation is marked used, the alias bound, the account
//! upserted, a previous alias of the same account released and, on an
//! operator-approved rebind, the alias's previous owner revoked. Either all of
//! it happens or none, so a used invitation, a taken alias or a race leaves no
//! half-connected account behind.
//!
//! An account never changes alias silently: a login under alias B by the
//! TikTok account connected as A is refused ([`AccountError::MoveNotAllowed`])
//! unless the invitation allows the move ([`AliasPermits::move_alias`]).

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use crate::aws::describe_sdk_error;
use crate::invite::validate_alias;
use crate::table::{GSI1, GSI1_PK, GSI1_SK, PK, SK, n, opt_text, s, text_list};

mod disconnect;

const ACCOUNT_PREFIX: &str = "ACCOUNT#";
const ACCOUNT_SK: &str = "ACCOUNT";
const ALIAS_PREFIX: &str = "ALIAS#";
const ALIAS_SK: &str = "ALIAS";
const INVITE_PREFIX: &str = "INVITE#";
const INVITE_SK: &str = "INVITE";
/// The index partition holding every account (`gsi1sk` = open_id), so that
/// listing accounts reads accounts only, however many jobs the table holds.
const ACCOUNTS_INDEX: &str = "ACCOUNTS";

/// How often [`Accounts::connect`] re-reads and retries when the items it
/// read changed before its transaction landed. Logins are rare; a conflict
/// means two people act on one account or alias at the same second.
const CONNECT_ATTEMPTS: u32 = 3;

/// The longest `open_id` accepted; TikTok's are well under 100 characters.
const MAX_OPEN_ID_LEN: usize = 256;

/// Where an account stands. The token store moves accounts between these
/// with the same attribute names (`state`, `state_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountState {
    /// Tokens are good (or refreshable); uploads go through.
    Active,
    /// The grant is gone or lacks a scope; the creator must log in again.
    NeedsReconnect,
    /// Disconnected for good (by the creator, TikTok or the operator, or the
    /// alias moved to another account); uploads for it are refused.
    Revoked,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReconnect => "needs_reconnect",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "needs_reconnect" => Some(Self::NeedsReconnect),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a completed login learned about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAccount {
    pub open_id: String,
    pub alias: String,
    /// `None` leaves a stored value as it is: a failed user-info call on
    /// reconnect should not blank the name the operator knows the account by.
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub scopes: Vec<String>,
    pub access_expires_at: DateTime<Utc>,
    /// `None` when TikTok did not say; a stored value is kept then.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// What an invitation lets a login do besides connecting a free alias or
/// reconnecting the account that holds it. Both are the operator's explicit
/// decision (`tiktok-drafts invite --rebind / --move`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AliasPermits {
    /// Take the alias from the TikTok account that holds it (which becomes
    /// `revoked`).
    pub rebind: bool,
    /// Move the logging-in account from the alias it holds to this one.
    pub move_alias: bool,
}

/// A completed [`Accounts::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub account: Account,
    /// The alias the account was moved from, when the login moved it.
    pub moved_from: Option<String>,
}

/// Who used an invitation (the `INVITE#<id>` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedInvitation {
    pub alias: String,
    pub open_id: String,
}

/// Which account an alias names (the `ALIAS#<alias>` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasBinding {
    pub open_id: String,
    /// When that account took the alias; `None` on bindings written before
    /// this was recorded.
    pub bound_at: Option<DateTime<Utc>>,
}

/// An account record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub open_id: String,
    /// `None` after the alias moved to another account.
    pub alias: Option<String>,
    /// The alias a rebind took from this account, so that the operator (and
    /// the CLI's hints) can name it.
    pub former_alias: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub scopes: Vec<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub state: AccountState,
    pub state_reason: Option<String>,
    /// Something the operator should act on while the account still works,
    /// e.g. the refresh token expiring within days. Cleared by a login.
    pub attention: Option<String>,
    /// The TikTok username (`@name`), when known (TikTok's `creator_info`
    /// gives it to accounts with `video.publish`): it makes a post's public
    /// link.
    pub username: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the creator last connected (or reconnected) the account through
    /// a login. Unlike `updated_at`, which token refreshes and state changes
    /// move, this says whether a grant is newer than an event about it.
    /// `None` on accounts recorded before it existed.
    pub connected_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The version a link to the creator's page must carry (0 until the
    /// first [`Accounts::revoke_links`]): bumping it makes every older link
    /// stop working.
    pub link_version: u64,
}

/// [`Accounts::list_readable`]: the accounts that could be read, and how
/// many items could not.
#[derive(Debug, Clone, Default)]
pub struct AccountList {
    pub accounts: Vec<Account>,
    pub unreadable: u32,
}

/// Why an account operation failed. The first three are answers for the
/// person connecting (safe to show); the rest are ours.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("this invitation was already used; ask for a new one")]
    InvitationUsed,
    /// Names the alias only: who holds it is none of the requester's business.
    #[error(
        "the alias {alias:?} is already connected to another TikTok account; ask the operator for an invitation that moves it"
    )]
    AliasTaken { alias: String },
    /// The TikTok account is connected under another alias, and the
    /// invitation does not allow moving it.
    #[error(
        "this TikTok account is connected as {from:?}; the invitation for {to:?} does not allow moving it (ask the operator for one made with --move)"
    )]
    MoveNotAllowed { from: String, to: String },
    #[error("the account changed while it was being connected; please try again")]
    Conflict,
    #[error("{alias:?} is not a valid account alias")]
    BadAlias { alias: String },
    #[error("TikTok's open_id is empty or too long")]
    BadOpenId,
    #[error("no account with open_id {open_id}")]
    NotFound { open_id: String },
    #[error("the stored item {key} is unreadable: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("cannot reach the account store (table {table}): {detail}")]
    Store { table: String, detail: String },
}

/// The account store.
#[derive(Debug, Clone)]
pub struct Accounts {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// What [`Accounts::connect`] read before writing; its transaction is
/// conditional on all of it still being true.
#[derive(Debug)]
struct Snapshot {
    /// `None`: no account item yet. `Some(None)`: an item without an alias.
    my_alias: Option<Option<String>>,
    /// The account's previous alias, when it still points to the account and
    /// must be released.
    release_alias: Option<String>,
    /// The alias's current holder, when another account (rebind only).
    displaced: Option<Displaced>,
    /// When the account took the alias, when it holds it already (a
    /// reconnect keeps the time).
    bound_at: Option<i64>,
}

#[derive(Debug)]
struct Displaced {
    open_id: String,
    /// Whether that account's item still claims the alias and must be revoked.
    revoke_account: bool,
}

/// How one transaction attempt ended.
enum Attempt {
    Done,
    Retry,
}

impl Accounts {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Records a completed login: uses up invitation `invite_id`, binds the
    /// alias to the account and upserts the account (state `active`), all in
    /// one transaction.
    ///
    /// - A used invitation fails with [`AccountError::InvitationUsed`].
    /// - An alias held by another TikTok account fails with
    ///   [`AccountError::AliasTaken`], unless `permits.rebind` (the
    ///   operator's decision, carried by the invitation): then the alias
    ///   moves, and the previous holder's account loses it and becomes
    ///   `revoked`.
    /// - Reconnecting updates the account in place: `created_at` stays, and so
    ///   does anything the login did not learn anew.
    /// - An account connected under another alias fails with
    ///   [`AccountError::MoveNotAllowed`], unless `permits.move_alias`: then
    ///   its old binding is released and [`Connection::moved_from`] names it.
    ///
    /// Every write is conditional on what was read first; when something
    /// changed in between, the whole transaction is refused and retried from
    /// a fresh read, a few times.
    pub async fn connect(
        &self,
        account: ConnectedAccount,
        permits: AliasPermits,
        invite_id: &str,
    ) -> Result<Connection, AccountError> {
        let rebind = permits.rebind;
        validate_alias(&account.alias).map_err(|_| AccountError::BadAlias {
            alias: account.alias.clone(),
        })?;
        if account.open_id.is_empty() || account.open_id.len() > MAX_OPEN_ID_LEN {
            return Err(AccountError::BadOpenId);
        }
        let now = Utc::now();
        let mut attempt = 1;
        let moved_from = loop {
            let snapshot = self.snapshot(&account, permits).await?;
            match self
                .try_connect(&account, rebind, invite_id, &snapshot, now)
                .await?
            {
                Attempt::Done => {
                    tracing::info!(
                        open_id = %account.open_id,
                        alias = %account.alias,
                        invite_id,
                        rebind,
                        reconnect = snapshot.my_alias.is_some(),
                        released_alias = snapshot.release_alias.as_deref(),
                        displaced_open_id = snapshot.displaced.as_ref().map(|d| d.open_id.as_str()),
                        "account connected"
                    );
                    break match &snapshot.my_alias {
                        Some(Some(old)) if *old != account.alias => Some(old.clone()),
                        _ => None,
                    };
                }
                Attempt::Retry if attempt < CONNECT_ATTEMPTS => {
                    tracing::warn!(
                        open_id = %account.open_id,
                        alias = %account.alias,
                        attempt,
                        "account changed while connecting; retrying"
                    );
                    attempt += 1;
                }
                Attempt::Retry => return Err(AccountError::Conflict),
            }
        };
        let stored = self
            .get(&account.open_id)
            .await?
            .ok_or_else(|| AccountError::Corrupt {
                key: account_pk(&account.open_id),
                detail: "the account vanished right after it was written".into(),
            })?;
        Ok(Connection {
            account: stored,
            moved_from,
        })
    }

    /// Reads what the transaction depends on (strongly consistent).
    async fn snapshot(
        &self,
        account: &ConnectedAccount,
        permits: AliasPermits,
    ) -> Result<Snapshot, AccountError> {
        let mine = self
            .get_item(&account_pk(&account.open_id), ACCOUNT_SK)
            .await?;
        let my_alias = mine.as_ref().map(|item| opt_text(item, "alias"));
        // Checked again by the transaction's condition on the account's
        // alias, so a move that races this read is refused too.
        if let Some(Some(old)) = &my_alias
            && *old != account.alias
            && !permits.move_alias
        {
            tracing::warn!(
                open_id = %account.open_id,
                from = %old,
                to = %account.alias,
                "login would move the account to another alias without a permit"
            );
            return Err(AccountError::MoveNotAllowed {
                from: old.clone(),
                to: account.alias.clone(),
            });
        }
        let release_alias = match &my_alias {
            Some(Some(old)) if *old != account.alias => {
                let binding = self.get_item(&alias_pk(old), ALIAS_SK).await?;
                let points_to_me = binding
                    .as_ref()
                    .and_then(|item| opt_text(item, "open_id"))
                    .is_some_and(|holder| holder == account.open_id);
                points_to_me.then(|| old.clone())
            }
            _ => None,
        };
        let binding = self.get_item(&alias_pk(&account.alias), ALIAS_SK).await?;
        let holder = binding.as_ref().and_then(|item| opt_text(item, "open_id"));
        let bound_at = match (&binding, &holder) {
            (Some(item), Some(holder)) if *holder == account.open_id => {
                // Bindings from before `bound_at`: their last write is the
                // best time known.
                epoch(item, "bound_at").or_else(|| epoch(item, "updated_at"))
            }
            _ => None,
        };
        let displaced = if permits.rebind {
            match holder {
                Some(holder) if holder != account.open_id => {
                    let theirs = self.get_item(&account_pk(&holder), ACCOUNT_SK).await?;
                    let revoke_account = theirs
                        .as_ref()
                        .and_then(|item| opt_text(item, "alias"))
                        .is_some_and(|a| a == account.alias);
                    Some(Displaced {
                        open_id: holder,
                        revoke_account,
                    })
                }
                _ => None,
            }
        } else {
            None
        };
        Ok(Snapshot {
            my_alias,
            release_alias,
            displaced,
            bound_at,
        })
    }

    /// One transaction. Item order matters: the cancellation reasons come
    /// back in the same order, 0 = invitation, 1 = alias, 2 = account, then
    /// the optional release and revoke.
    async fn try_connect(
        &self,
        account: &ConnectedAccount,
        rebind: bool,
        invite_id: &str,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
    ) -> Result<Attempt, AccountError> {
        let me = s(&account.open_id);
        let now_n = n(now.timestamp());
        let build = |e: aws_sdk_dynamodb::error::BuildError| AccountError::Store {
            table: self.table.clone(),
            detail: e.to_string(),
        };

        // 0: the invitation becomes used; the item is also the record of who
        // used it and when.
        let invite = Put::builder()
            .table_name(&self.table)
            .item(PK, s(format!("{INVITE_PREFIX}{invite_id}")))
            .item(SK, s(INVITE_SK))
            .item("invite_id", s(invite_id))
            .item("alias", s(&account.alias))
            .item("open_id", me.clone())
            .item("used_at", now_n.clone())
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;

        // 1: the alias binding. Without rebind it may only be new or ours
        // already. With rebind any holder is overridden, but only the holder
        // seen in the snapshot, because that is the account revoked below.
        let mut alias = Put::builder()
            .table_name(&self.table)
            .item(PK, s(alias_pk(&account.alias)))
            .item(SK, s(ALIAS_SK))
            .item("alias", s(&account.alias))
            .item("open_id", me.clone())
            .item("bound_at", n(snapshot.bound_at.unwrap_or(now.timestamp())))
            .item("updated_at", now_n.clone())
            .expression_attribute_values(":me", me.clone());
        alias = match (&snapshot.displaced, rebind) {
            (Some(prev), true) => alias
                .condition_expression("open_id = :me OR open_id = :prev")
                .expression_attribute_values(":prev", s(&prev.open_id)),
            _ => alias.condition_expression("attribute_not_exists(pk) OR open_id = :me"),
        };
        let alias = alias.build().map_err(build)?;

        // 2: the account, updated in place.
        let mut set = vec![
            "#open_id = :me",
            "#alias = :alias",
            "#scopes = :scopes",
            "#access_expires_at = :access_expires_at",
            "#state = :active",
            "#updated_at = :now",
            "#connected_at = :now",
            "#created_at = if_not_exists(#created_at, :now)",
            "#gsi1pk = :accounts",
            "#gsi1sk = :me",
        ];
        let mut names: Vec<(&str, &str)> = vec![
            ("#open_id", "open_id"),
            ("#alias", "alias"),
            ("#scopes", "scopes"),
            ("#access_expires_at", "access_expires_at"),
            ("#state", "state"),
            ("#state_reason", "state_reason"),
            ("#attention", "attention"),
            ("#updated_at", "updated_at"),
            ("#connected_at", "connected_at"),
            ("#created_at", "created_at"),
            ("#gsi1pk", GSI1_PK),
            ("#gsi1sk", GSI1_SK),
        ];
        let mut values: Vec<(&str, AttributeValue)> = vec![
            (":me", me.clone()),
            (":alias", s(&account.alias)),
            (
                ":scopes",
                AttributeValue::L(account.scopes.iter().map(s).collect()),
            ),
            (
                ":access_expires_at",
                n(account.access_expires_at.timestamp()),
            ),
            (":active", s(AccountState::Active.as_str())),
            (":now", now_n.clone()),
            (":accounts", s(ACCOUNTS_INDEX)),
        ];
        if let Some(name) = &account.display_name {
            set.push("#display_name = :display_name");
            names.push(("#display_name", "display_name"));
            values.push((":display_name", s(name)));
        }
        if let Some(url) = &account.avatar_url {
            set.push("#avatar_url = :avatar_url");
            names.push(("#avatar_url", "avatar_url"));
            values.push((":avatar_url", s(url)));
        }
        if let Some(at) = account.refresh_expires_at {
            set.push("#refresh_expires_at = :refresh_expires_at");
            names.push(("#refresh_expires_at", "refresh_expires_at"));
            values.push((":refresh_expires_at", n(at.timestamp())));
        }
        let condition = match &snapshot.my_alias {
            None => "attribute_not_exists(pk)",
            Some(None) => "attribute_exists(pk) AND attribute_not_exists(#alias)",
            Some(Some(old)) => {
                values.push((":old_alias", s(old)));
                "#alias = :old_alias"
            }
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(account_pk(&account.open_id)))
            .key(SK, s(ACCOUNT_SK))
            .update_expression(format!(
                "SET {} REMOVE #state_reason, #attention",
                set.join(", ")
            ))
            .condition_expression(condition);
        for (placeholder, name) in names {
            update = update.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in values {
            update = update.expression_attribute_values(placeholder, value);
        }
        let update = update.build().map_err(build)?;

        let mut items = vec![
            TransactWriteItem::builder().put(invite).build(),
            TransactWriteItem::builder().put(alias).build(),
            TransactWriteItem::builder().update(update).build(),
        ];

        // 3: the account's previous alias, if it still points here.
        if let Some(old) = &snapshot.release_alias {
            let release = Delete::builder()
                .table_name(&self.table)
                .key(PK, s(alias_pk(old)))
                .key(SK, s(ALIAS_SK))
                .condition_expression("open_id = :me")
                .expression_attribute_values(":me", me.clone())
                .build()
                .map_err(build)?;
            items.push(TransactWriteItem::builder().delete(release).build());
        }

        // 4: on rebind, the previous holder no longer resolves through the
        // alias and is revoked; its tokens are the token store's business.
        if let Some(prev) = snapshot.displaced.as_ref().filter(|d| d.revoke_account) {
            let revoke = Update::builder()
                .table_name(&self.table)
                .key(PK, s(account_pk(&prev.open_id)))
                .key(SK, s(ACCOUNT_SK))
                .update_expression(
                    "SET #state = :revoked, #state_reason = :reason, #updated_at = :now, #former_alias = :alias REMOVE #alias",
                )
                .condition_expression("#alias = :alias")
                .expression_attribute_names("#former_alias", "former_alias")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#state_reason", "state_reason")
                .expression_attribute_names("#updated_at", "updated_at")
                .expression_attribute_names("#alias", "alias")
                .expression_attribute_values(":revoked", s(AccountState::Revoked.as_str()))
                .expression_attribute_values(
                    ":reason",
                    s(format!(
                        "alias {} was moved to another TikTok account",
                        account.alias
                    )),
                )
                .expression_attribute_values(":now", now_n.clone())
                .expression_attribute_values(":alias", s(&account.alias))
                .build()
                .map_err(build)?;
            items.push(TransactWriteItem::builder().update(revoke).build());
        }

        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match written {
            Ok(_) => Ok(Attempt::Done),
            Err(err) => self.classify_cancellation(err, account, rebind, invite_id),
        }
    }

    /// Turns a refused transaction into the error the user should see, or a
    /// retry when only our snapshot went stale.
    fn classify_cancellation(
        &self,
        err: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
        account: &ConnectedAccount,
        rebind: bool,
        invite_id: &str,
    ) -> Result<Attempt, AccountError> {
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            err.as_service_error()
        else {
            return Err(self.store_error(&err));
        };
        let reasons: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        let failed = |i: usize| {
            reasons
                .get(i)
                .is_some_and(|c| *c == "ConditionalCheckFailed")
        };
        if failed(0) {
            tracing::warn!(
                open_id = %account.open_id,
                alias = %account.alias,
                invite_id,
                "login with an invitation that was already used"
            );
            return Err(AccountError::InvitationUsed);
        }
        if failed(1) && !rebind {
            tracing::warn!(
                open_id = %account.open_id,
                alias = %account.alias,
                invite_id,
                "login for an alias that another account holds"
            );
            return Err(AccountError::AliasTaken {
                alias: account.alias.clone(),
            });
        }
        let retryable = reasons.iter().all(|c| {
            matches!(
                *c,
                "None" | "ConditionalCheckFailed" | "TransactionConflict"
            )
        });
        if retryable && !reasons.is_empty() {
            Ok(Attempt::Retry)
        } else {
            Err(AccountError::Store {
                table: self.table.clone(),
                detail: format!("transaction cancelled: [{}]", reasons.join(", ")),
            })
        }
    }

    /// Who used invitation `invite_id`, if it was used.
    pub async fn invitation_use(
        &self,
        invite_id: &str,
    ) -> Result<Option<UsedInvitation>, AccountError> {
        let key = format!("{INVITE_PREFIX}{invite_id}");
        let Some(item) = self.get_item(&key, INVITE_SK).await? else {
            return Ok(None);
        };
        match (opt_text(&item, "alias"), opt_text(&item, "open_id")) {
            (Some(alias), Some(open_id)) => Ok(Some(UsedInvitation { alias, open_id })),
            _ => Err(AccountError::Corrupt {
                key,
                detail: "alias or open_id is missing".into(),
            }),
        }
    }

    /// The binding of `alias`, if it is bound. Unlike
    /// [`Accounts::get_by_alias`] this says who holds the alias even when
    /// that account does not claim it back.
    pub async fn alias_binding(&self, alias: &str) -> Result<Option<AliasBinding>, AccountError> {
        if validate_alias(alias).is_err() {
            return Ok(None);
        }
        let key = alias_pk(alias);
        let Some(item) = self.get_item(&key, ALIAS_SK).await? else {
            return Ok(None);
        };
        let open_id = opt_text(&item, "open_id").ok_or_else(|| AccountError::Corrupt {
            key: key.clone(),
            detail: "open_id is missing or not a string".into(),
        })?;
        Ok(Some(AliasBinding {
            open_id,
            bound_at: epoch(&item, "bound_at").and_then(|t| DateTime::from_timestamp(t, 0)),
        }))
    }

    /// The account with this `open_id`, if any.
    pub async fn get(&self, open_id: &str) -> Result<Option<Account>, AccountError> {
        let key = account_pk(open_id);
        match self.get_item(&key, ACCOUNT_SK).await? {
            Some(item) => account_from_item(&key, &item).map(Some),
            None => Ok(None),
        }
    }

    /// The account the alias names, if any. A binding whose account does not
    /// claim the alias back resolves to nothing, so a half-moved alias can
    /// never route uploads to the wrong account.
    pub async fn get_by_alias(&self, alias: &str) -> Result<Option<Account>, AccountError> {
        if validate_alias(alias).is_err() {
            return Ok(None);
        }
        let key = alias_pk(alias);
        let Some(binding) = self.get_item(&key, ALIAS_SK).await? else {
            return Ok(None);
        };
        let open_id = opt_text(&binding, "open_id").ok_or_else(|| AccountError::Corrupt {
            key: key.clone(),
            detail: "open_id is missing or not a string".into(),
        })?;
        let account = self.get(&open_id).await?;
        match account {
            Some(account) if account.alias.as_deref() == Some(alias) => Ok(Some(account)),
            _ => {
                tracing::warn!(alias, open_id = %open_id, "alias binding without a matching account");
                Ok(None)
            }
        }
    }

    /// Every account, sorted by alias then open_id: a Query of the index
    /// partition that holds accounts only, so its cost grows with accounts,
    /// never with jobs. The scheduled token sweep uses it every run.
    pub async fn list(&self) -> Result<Vec<Account>, AccountError> {
        let mut accounts = Vec::new();
        for (key, item) in self.account_items().await? {
            accounts.push(account_from_item(&key, &item)?);
        }
        accounts.sort_by(|a, b| (&a.alias, &a.open_id).cmp(&(&b.alias, &b.open_id)));
        Ok(accounts)
    }

    /// Every account that can be read, as [`Accounts::list`], except that an
    /// unreadable item is skipped and logged by key instead of failing the
    /// whole list: the scheduled sweep must not stop for every account
    /// because of one.
    pub async fn list_readable(&self) -> Result<AccountList, AccountError> {
        let mut list = AccountList::default();
        for (key, item) in self.account_items().await? {
            match account_from_item(&key, &item) {
                Ok(account) => list.accounts.push(account),
                Err(err) => {
                    list.unreadable += 1;
                    tracing::error!(table = %self.table, key = %key, error = %err, "unreadable account item; skipped");
                }
            }
        }
        list.accounts
            .sort_by(|a, b| (&a.alias, &a.open_id).cmp(&(&b.alias, &b.open_id)));
        Ok(list)
    }

    /// The raw account items with their keys, every page of the index
    /// partition that holds accounts only.
    async fn account_items(
        &self,
    ) -> Result<Vec<(String, HashMap<String, AttributeValue>)>, AccountError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gsi1pk = :accounts")
                .expression_attribute_names("#gsi1pk", GSI1_PK)
                .expression_attribute_values(":accounts", s(ACCOUNTS_INDEX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.store_error(&e))?;
            for item in page.items.unwrap_or_default() {
                let key = opt_text(&item, PK).unwrap_or_default();
                items.push((key, item));
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Records the account's TikTok username (from `creator_info`). A name
    /// that could not be part of a profile URL is refused, so a share link
    /// built from it always points at TikTok's profile path.
    pub async fn record_username(&self, open_id: &str, username: &str) -> Result<(), AccountError> {
        if !is_username(username) {
            tracing::warn!(
                open_id,
                "TikTok username not usable in a link; not recorded"
            );
            return Ok(());
        }
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(account_pk(open_id)))
            .key(SK, s(ACCOUNT_SK))
            .update_expression("SET #username = :username")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#username", "username")
            .expression_attribute_values(":username", s(username))
            .send()
            .await;
        match updated {
            Ok(_) => {
                tracing::info!(open_id, username, "account username recorded");
                Ok(())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(AccountError::NotFound {
                    open_id: open_id.to_owned(),
                })
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Sets (or with `None` clears) the operator note of an account that
    /// still works but needs someone to act soon. Unchanged notes are not
    /// rewritten, so a sweep that finds the same thing every run is cheap.
    pub async fn set_attention(
        &self,
        open_id: &str,
        note: Option<&str>,
    ) -> Result<(), AccountError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(account_pk(open_id)))
            .key(SK, s(ACCOUNT_SK))
            .expression_attribute_names("#attention", "attention");
        let request = match note {
            Some(note) => request
                .update_expression("SET #attention = :note")
                .condition_expression("attribute_exists(pk) AND (NOT #attention = :note)")
                .expression_attribute_values(":note", s(note)),
            None => request
                .update_expression("REMOVE #attention")
                .condition_expression("attribute_exists(pk) AND attribute_exists(#attention)"),
        };
        match request.send().await {
            Ok(_) => {
                tracing::info!(open_id, attention = note, "account note changed");
                Ok(())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Records the expiry times of newly stored tokens on the account, so
    /// that the sweep can decide from the account list alone which secrets
    /// to open. A missing account is left alone.
    pub async fn record_token_expiry(
        &self,
        open_id: &str,
        access_expires_at: DateTime<Utc>,
        refresh_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), AccountError> {
        let mut expression = "SET #access_expires_at = :access, #updated_at = :now".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(account_pk(open_id)))
            .key(SK, s(ACCOUNT_SK))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#access_expires_at", "access_expires_at")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_values(":access", n(access_expires_at.timestamp()))
            .expression_attribute_values(":now", n(Utc::now().timestamp()));
        if let Some(at) = refresh_expires_at {
            expression.push_str(", #refresh_expires_at = :refresh");
            request = request
                .expression_attribute_names("#refresh_expires_at", "refresh_expires_at")
                .expression_attribute_values(":refresh", n(at.timestamp()));
        }
        match request.update_expression(expression).send().await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                tracing::debug!(open_id, "no account item to record token expiry on");
                Ok(())
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }

    /// Moves an account to `state`, with a reason for the operator (cleared
    /// when `None`). Returns the account as stored afterwards.
    pub async fn set_state(
        &self,
        open_id: &str,
        state: AccountState,
        reason: Option<&str>,
    ) -> Result<Account, AccountError> {
        let key = account_pk(open_id);
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&key))
            .key(SK, s(ACCOUNT_SK))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#state_reason", "state_reason")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .return_values(ReturnValue::AllNew);
        request = match reason {
            Some(reason) => request
                .update_expression(
                    "SET #state = :state, #state_reason = :reason, #updated_at = :now",
                )
                .expression_attribute_values(":reason", s(reason)),
            None => request
                .update_expression("SET #state = :state, #updated_at = :now REMOVE #state_reason"),
        };
        let updated = request.send().await;
        let item = match updated {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Err(AccountError::NotFound {
                    open_id: open_id.to_owned(),
                });
            }
            Err(err) => return Err(self.store_error(&err)),
        };
        tracing::info!(open_id, state = %state, reason, "account state changed");
        account_from_item(&key, &item)
    }

    /// Makes every link to the account's creator page that exists stop
    /// working, by bumping its link version; returns the new version. Links
    /// made afterwards carry it and work.
    pub async fn revoke_links(&self, open_id: &str) -> Result<u64, AccountError> {
        let key = account_pk(open_id);
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&key))
            .key(SK, s(ACCOUNT_SK))
            .update_expression("ADD #link_version :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#link_version", "link_version")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let attributes = match updated {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Err(AccountError::NotFound {
                    open_id: open_id.to_owned(),
                });
            }
            Err(err) => return Err(self.store_error(&err)),
        };
        let version = match attributes.get("link_version") {
            Some(AttributeValue::N(v)) => v.parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| AccountError::Corrupt {
            key,
            detail: "link_version is not a count".into(),
        })?;
        tracing::info!(
            open_id,
            link_version = version,
            "creator page links revoked"
        );
        Ok(version)
    }

    async fn get_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, AccountError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.store_error(&e))?;
        Ok(out.item)
    }

    fn store_error<E: std::error::Error>(&self, err: &E) -> AccountError {
        let detail = describe_sdk_error(err);
        tracing::error!(table = %self.table, error = %detail, "account store failed");
        AccountError::Store {
            table: self.table.clone(),
            detail,
        }
    }
}

/// Whether `name` can be a TikTok username in a profile URL: letters,
/// digits, `_` and `.` (TikTok's own rule), plus `-` which simulators and old
/// accounts use; at most 64 characters.
pub fn is_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A number attribute as epoch seconds; `None` when absent or not a number.
fn epoch(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn account_pk(open_id: &str) -> String {
    format!("{ACCOUNT_PREFIX}{open_id}")
}

fn alias_pk(alias: &str) -> String {
    format!("{ALIAS_PREFIX}{alias}")
}

/// Reads an account item (as stored, or an image from the table's stream);
/// `key` names it in errors. The one reader of account items.
pub fn account_from_item(
    key: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<Account, AccountError> {
    let corrupt = |detail: String| AccountError::Corrupt {
        key: key.to_owned(),
        detail,
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, AccountError> {
        match item.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse::<i64>()
                .ok()
                .and_then(|secs| DateTime::from_timestamp(secs, 0))
                .map(Some)
                .ok_or_else(|| corrupt(format!("{name} is not a time"))),
            Some(_) => Err(corrupt(format!("{name} is not a number"))),
        }
    };
    let required_time = |name: &str| -> Result<DateTime<Utc>, AccountError> {
        time(name)?.ok_or_else(|| corrupt(format!("{name} is missing")))
    };
    let open_id = opt_text(item, "open_id").ok_or_else(|| corrupt("open_id is missing".into()))?;
    let state_text = opt_text(item, "state").ok_or_else(|| corrupt("state is missing".into()))?;
    let state = AccountState::parse(&state_text)
        .ok_or_else(|| corrupt(format!("unknown state {state_text:?}")))?;
    let scopes = text_list(item, "scopes").map_err(corrupt)?;
    let link_version = match item.get("link_version") {
        None => 0,
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| corrupt("link_version is not a count".into()))?,
        Some(_) => return Err(corrupt("link_version is not a number".into())),
    };
    Ok(Account {
        open_id,
        alias: opt_text(item, "alias"),
        former_alias: opt_text(item, "former_alias"),
        display_name: opt_text(item, "display_name"),
        avatar_url: opt_text(item, "avatar_url"),
        scopes,
        access_expires_at: time("access_expires_at")?,
        refresh_expires_at: time("refresh_expires_at")?,
        state,
        state_reason: opt_text(item, "state_reason"),
        attention: opt_text(item, "attention"),
        username: opt_text(item, "username"),
        created_at: required_time("created_at")?,
        connected_at: time("connected_at")?,
        updated_at: required_time("updated_at")?,
        link_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_with_the_token_stores_names() {
        for state in [
            AccountState::Active,
            AccountState::NeedsReconnect,
            AccountState::Revoked,
        ] {
            assert_eq!(AccountState::parse(state.as_str()), Some(state));
        }
        assert_eq!(AccountState::NeedsReconnect.as_str(), "needs_reconnect");
        assert_eq!(AccountState::parse("Active"), None);
    }

    #[test]
    fn usernames_that_fit_a_profile_url() {
        for good in ["alice", "a.b_c", "user_open-a", "A1"] {
            assert!(is_username(good), "{good}");
        }
        for bad in ["", "a/b", "a b", "@alice", "a?x=1", &"x".repeat(65), "é"] {
            assert!(!is_username(bad), "{bad}");
        }
    }

    #[test]
    fn items_parse_and_bad_ones_are_corrupt() {
        let mut item = HashMap::from([
            ("open_id".to_owned(), s("o1")),
            ("alias".to_owned(), s("alice")),
            (
                "scopes".to_owned(),
                AttributeValue::L(vec![s("video.upload")]),
            ),
            ("state".to_owned(), s("needs_reconnect")),
            ("created_at".to_owned(), n(1_700_000_000)),
            ("updated_at".to_owned(), n(1_700_000_100)),
        ]);
        let account = account_from_item("ACCOUNT#o1", &item).unwrap();
        assert_eq!(account.state, AccountState::NeedsReconnect);
        assert_eq!(account.scopes, vec!["video.upload"]);
        assert_eq!(account.access_expires_at, None);
        assert_eq!(account.link_version, 0, "no link revoked yet");
        item.insert("link_version".into(), n(3));
        assert_eq!(
            account_from_item("ACCOUNT#o1", &item).unwrap().link_version,
            3
        );
        item.insert("link_version".into(), s("3"));
        assert!(matches!(
            account_from_item("ACCOUNT#o1", &item),
            Err(AccountError::Corrupt { .. })
        ));
        item.insert("link_version".into(), n(3));
        item.insert("state".into(), s("gone"));
        assert!(matches!(
            account_from_item("ACCOUNT#o1", &item),
            Err(AccountError::Corrupt { .. })
        ));
    }
}
