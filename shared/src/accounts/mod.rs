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
//!
//! The store is split by what it does: `connect` (the login's one
//! transaction), `lookups` (reads by open_id, alias and invitation),
//! `updates` (one account's state, notes and counters), `disconnect` (the
//! operator's) and `item` (the one reader of account items).

use std::fmt;

use chrono::{DateTime, Utc};

use crate::table::{Cond, Key, Table, TableError, Update, n, s};

mod connect;
mod disconnect;
mod item;
mod lookups;
mod updates;

pub use item::account_from_item;

const ACCOUNT_PREFIX: &str = "ACCOUNT#";
const ACCOUNT_SK: &str = "ACCOUNT";
const ALIAS_PREFIX: &str = "ALIAS#";
const ALIAS_SK: &str = "ALIAS";
const INVITE_PREFIX: &str = "INVITE#";
const INVITE_SK: &str = "INVITE";
/// The index partition holding every account (`gsi1sk` = open_id), so that
/// listing accounts reads accounts only, however many jobs the table holds.
const ACCOUNTS_INDEX: &str = "ACCOUNTS";

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
    /// The state as stored in the `state` attribute (and shown by the CLI).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReconnect => "needs_reconnect",
            Self::Revoked => "revoked",
        }
    }

    /// The state a stored `state` attribute names; `None` for a name this
    /// version does not know.
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
    /// TikTok's id of the user for this app (from the token exchange).
    pub open_id: String,
    /// The alias the invitation was made for: the account's name in this
    /// deployment (`uploads/<alias>/…`).
    pub alias: String,
    /// `None` leaves a stored value as it is: a failed user-info call on
    /// reconnect should not blank the name the operator knows the account by.
    pub display_name: Option<String>,
    /// The profile picture's URL from user info; `None` keeps a stored one.
    pub avatar_url: Option<String>,
    /// The scopes the creator granted, as TikTok listed them.
    pub scopes: Vec<String>,
    /// When the access token just received expires.
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
    /// The account as stored after the login.
    pub account: Account,
    /// The alias the account was moved from, when the login moved it.
    pub moved_from: Option<String>,
}

/// Who used an invitation (the `INVITE#<id>` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedInvitation {
    /// The alias the invitation connected.
    pub alias: String,
    /// The TikTok account that used it.
    pub open_id: String,
}

/// Which account an alias names (the `ALIAS#<alias>` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasBinding {
    /// The account holding the alias.
    pub open_id: String,
    /// When that account took the alias; `None` on bindings written before
    /// this was recorded.
    pub bound_at: Option<DateTime<Utc>>,
}

/// An account record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// TikTok's id of the user for this app; the account's key.
    pub open_id: String,
    /// `None` after the alias moved to another account.
    pub alias: Option<String>,
    /// The alias a rebind took from this account, so that the operator (and
    /// the CLI's hints) can name it.
    pub former_alias: Option<String>,
    /// The TikTok display name, as user info last gave it.
    pub display_name: Option<String>,
    /// The profile picture's URL, as user info last gave it.
    pub avatar_url: Option<String>,
    /// The scopes of the current grant.
    pub scopes: Vec<String>,
    /// When the stored access token expires (TikTok may end it sooner);
    /// `None` before the first tokens were recorded.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the stored refresh token expires; after it the creator must log
    /// in again. `None` when TikTok never said.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Where the account stands.
    pub state: AccountState,
    /// Why it is in that state, for the operator (what happened and what to
    /// do); `None` for a healthy account.
    pub state_reason: Option<String>,
    /// Something the operator should act on while the account still works,
    /// e.g. the refresh token expiring within days. Cleared by a login.
    pub attention: Option<String>,
    /// The TikTok username (`@name`), when known (TikTok's `creator_info`
    /// gives it to accounts with `video.publish`): it makes a post's public
    /// link.
    pub username: Option<String>,
    /// When the account was first connected to this deployment.
    pub created_at: DateTime<Utc>,
    /// When the creator last connected (or reconnected) the account through
    /// a login. Unlike `updated_at`, which token refreshes and state changes
    /// move, this says whether a grant is newer than an event about it.
    /// `None` on accounts recorded before it existed.
    pub connected_at: Option<DateTime<Utc>>,
    /// When the item last changed (a login, a refresh, a state change).
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
    /// The readable accounts, by alias then open_id.
    pub accounts: Vec<Account>,
    /// How many account items could not be read (each logged by key).
    pub unreadable: u32,
}

/// Why an account operation failed. The first three are answers for the
/// person connecting (safe to show); the rest are ours.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The invitation's single use is spent.
    #[error("this invitation was already used; ask for a new one")]
    InvitationUsed,
    /// Names the alias only: who holds it is none of the requester's business.
    #[error(
        "the alias {alias:?} is already connected to another TikTok account; ask the operator for an invitation that moves it"
    )]
    AliasTaken {
        /// The alias the login asked for.
        alias: String,
    },
    /// The TikTok account is connected under another alias, and the
    /// invitation does not allow moving it.
    #[error(
        "this TikTok account is connected as {from:?}; the invitation for {to:?} does not allow moving it (ask the operator for one made with --move)"
    )]
    MoveNotAllowed {
        /// The alias the account holds.
        from: String,
        /// The alias the invitation is for.
        to: String,
    },
    /// The items kept changing under the login's transaction, past its
    /// retries.
    #[error("the account changed while it was being connected; please try again")]
    Conflict,
    /// Not an alias this deployment accepts (see `invite::validate_alias`).
    #[error("{alias:?} is not a valid account alias")]
    BadAlias {
        /// The alias as given.
        alias: String,
    },
    /// TikTok's `open_id` is empty or too long to be a key.
    #[error("TikTok's open_id is empty or too long")]
    BadOpenId,
    /// There is no account item with this `open_id`.
    #[error("no account with open_id {open_id}")]
    NotFound {
        /// The `open_id` asked for.
        open_id: String,
    },
    /// A stored item does not read as what it should be.
    #[error("the stored item {key} is unreadable: {detail}")]
    Corrupt {
        /// The item's partition key.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The table could not be reached or refused the request.
    #[error("cannot reach the account store (table {table}): {detail}")]
    Store {
        /// The table's name.
        table: String,
        /// What failed; never an item's values.
        detail: String,
    },
}

/// The account store.
#[derive(Debug, Clone)]
pub struct Accounts {
    table: Table,
}

impl Accounts {
    /// The account store on table `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }
}

impl From<TableError> for AccountError {
    fn from(err: TableError) -> Self {
        AccountError::Store {
            table: err.table,
            detail: err.detail,
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

/// The update that takes `alias` from the account holding it: the account
/// becomes `revoked` with `reason` and keeps the alias as `former_alias`
/// (so its jobs and the operator can still name it). Only while the account
/// still claims the alias.
fn revoked_for_alias(alias: &str, reason: &str, now: DateTime<Utc>) -> Update {
    Update::new()
        .set("state", s(AccountState::Revoked.as_str()))
        .set("state_reason", s(reason))
        .set("updated_at", n(now.timestamp()))
        .set("former_alias", s(alias))
        .remove("alias")
        .when(Cond::eq("alias", s(alias)))
}

/// The account item's partition key.
fn account_pk(open_id: &str) -> String {
    format!("{ACCOUNT_PREFIX}{open_id}")
}

/// The account item's key.
fn account_key(open_id: &str) -> Key {
    Key::new(account_pk(open_id), ACCOUNT_SK)
}

/// The alias binding's key.
fn alias_key(alias: &str) -> Key {
    Key::new(format!("{ALIAS_PREFIX}{alias}"), ALIAS_SK)
}

/// The used-invitation item's key.
fn invite_key(invite_id: &str) -> Key {
    Key::new(format!("{INVITE_PREFIX}{invite_id}"), INVITE_SK)
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
}
