//! The end of a login: [`Accounts::connect`] reads what the login touches,
//! then writes it all in one transaction conditional on what it read.
//!
//! The transaction's writes are decided by a pure function
//! ([`connect_writes`]) from the snapshot, and its refusal is read by
//! another ([`after_refusal`]), so the rules are tested without a table.

use chrono::{DateTime, Utc};

use super::item::epoch_time;
use super::{
    ACCOUNTS_INDEX, AccountError, AccountState, Accounts, AliasPermits, ConnectedAccount,
    Connection, account_key, alias_key, invite_key, revoked_for_alias,
};
use crate::invite::validate_alias;
use crate::table::{
    Cond, GSI1_PK, GSI1_SK, Item, Key, Transacted, Update, Write, n, opt_text, s, texts,
};

/// How often [`Accounts::connect`] re-reads and retries when the items it
/// read changed before its transaction landed. Logins are rare; a conflict
/// means two people act on one account or alias at the same second.
const CONNECT_ATTEMPTS: u32 = 3;

/// The longest `open_id` accepted; TikTok's are well under 100 characters.
const MAX_OPEN_ID_LEN: usize = 256;

/// What [`Accounts::connect`] read before writing; its transaction is
/// conditional on all of it still being true.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The account that holds the alias a rebind takes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Displaced {
    open_id: String,
    /// Whether that account's item still claims the alias and must be revoked.
    revoke_account: bool,
}

/// How one transaction attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Done,
    Retry,
}

/// Where the writes of [`connect_writes`] stand in the transaction (and so
/// in a refusal's reasons, which come back in the same order).
const INVITE_WRITE: usize = 0;
const ALIAS_WRITE: usize = 1;

impl Accounts {
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
                .try_connect(&account, permits.rebind, invite_id, &snapshot, now)
                .await?
            {
                Attempt::Done => {
                    log_connected(&account, permits.rebind, invite_id, &snapshot);
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
                key: account_key(&account.open_id).pk,
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
        let mine = self.table.get(&account_key(&account.open_id)).await?;
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
                let binding = self.table.get(&alias_key(old)).await?;
                let points_to_me = binding
                    .as_ref()
                    .and_then(|item| opt_text(item, "open_id"))
                    .is_some_and(|holder| holder == account.open_id);
                points_to_me.then(|| old.clone())
            }
            _ => None,
        };
        let binding = self.table.get(&alias_key(&account.alias)).await?;
        let holder = binding.as_ref().and_then(|item| opt_text(item, "open_id"));
        let bound_at = match (&binding, &holder) {
            (Some(item), Some(holder)) if *holder == account.open_id => {
                // Bindings from before `bound_at`: their last write is the
                // best time known.
                epoch_time(item, "bound_at")
                    .or_else(|| epoch_time(item, "updated_at"))
                    .map(|t| t.timestamp())
            }
            _ => None,
        };
        let displaced = match holder {
            Some(holder) if permits.rebind && holder != account.open_id => {
                let theirs = self.table.get(&account_key(&holder)).await?;
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
        };
        Ok(Snapshot {
            my_alias,
            release_alias,
            displaced,
            bound_at,
        })
    }

    /// One transaction of the writes [`connect_writes`] decides.
    async fn try_connect(
        &self,
        account: &ConnectedAccount,
        rebind: bool,
        invite_id: &str,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
    ) -> Result<Attempt, AccountError> {
        let writes = connect_writes(account, rebind, invite_id, snapshot, now);
        let outcome = self.table.transact(writes).await?;
        let attempt = after_refusal(&outcome, rebind, &account.alias, self.table.name());
        match &attempt {
            Err(AccountError::InvitationUsed) => tracing::warn!(
                open_id = %account.open_id,
                alias = %account.alias,
                invite_id,
                "login with an invitation that was already used"
            ),
            Err(AccountError::AliasTaken { .. }) => tracing::warn!(
                open_id = %account.open_id,
                alias = %account.alias,
                invite_id,
                "login for an alias that another account holds"
            ),
            Err(err) => {
                tracing::error!(table = %self.table.name(), error = %err, "account transaction refused")
            }
            Ok(_) => {}
        }
        attempt
    }
}

/// The transaction of a login, in this order (a refusal's reasons follow
/// it): 0 the invitation becomes used, 1 the alias binding, 2 the account
/// upserted, then the account's previous alias released (when it still
/// points here) and, on a rebind, the alias's previous holder revoked.
fn connect_writes(
    account: &ConnectedAccount,
    rebind: bool,
    invite_id: &str,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
) -> Vec<Write> {
    let me = s(&account.open_id);
    let now_n = n(now.timestamp());

    // The invitation item is also the record of who used it and when.
    let invite = item(
        &invite_key(invite_id),
        [
            ("invite_id", s(invite_id)),
            ("alias", s(&account.alias)),
            ("open_id", me.clone()),
            ("used_at", now_n.clone()),
        ],
    );

    // Without rebind the alias may only be new or ours already. With rebind
    // any holder is overridden, but only the holder seen in the snapshot,
    // because that is the account revoked below.
    let binding = item(
        &alias_key(&account.alias),
        [
            ("alias", s(&account.alias)),
            ("open_id", me.clone()),
            ("bound_at", n(snapshot.bound_at.unwrap_or(now.timestamp()))),
            ("updated_at", now_n.clone()),
        ],
    );
    let binding_free = match (&snapshot.displaced, rebind) {
        (Some(prev), true) => {
            Cond::eq("open_id", me.clone()).or(Cond::eq("open_id", s(&prev.open_id)))
        }
        _ => Cond::no_item().or(Cond::eq("open_id", me.clone())),
    };

    let mut writes = vec![
        Write::Put(invite, Some(Cond::no_item())),
        Write::Put(binding, Some(binding_free)),
        Write::Update(
            account_key(&account.open_id),
            account_upsert(account, snapshot, now),
        ),
    ];
    if let Some(old) = &snapshot.release_alias {
        writes.push(Write::Delete(alias_key(old), Some(Cond::eq("open_id", me))));
    }
    // The previous holder no longer resolves through the alias; its tokens
    // are the token store's business.
    if let Some(prev) = snapshot.displaced.as_ref().filter(|d| d.revoke_account) {
        let reason = format!(
            "alias {} was moved to another TikTok account",
            account.alias
        );
        writes.push(Write::Update(
            account_key(&prev.open_id),
            revoked_for_alias(&account.alias, &reason, now),
        ));
    }
    writes
}

/// The account item as a login leaves it, updated in place: `created_at`
/// stays, and what the login did not learn anew (a name, an avatar, the
/// refresh expiry) keeps its stored value. Conditional on the account's
/// alias being what the snapshot saw.
fn account_upsert(account: &ConnectedAccount, snapshot: &Snapshot, now: DateTime<Utc>) -> Update {
    let now_n = n(now.timestamp());
    let mut update = Update::new()
        .set("open_id", s(&account.open_id))
        .set("alias", s(&account.alias))
        .set("scopes", texts(&account.scopes))
        .set(
            "access_expires_at",
            n(account.access_expires_at.timestamp()),
        )
        .set("state", s(AccountState::Active.as_str()))
        .set("updated_at", now_n.clone())
        .set("connected_at", now_n.clone())
        .set_if_absent("created_at", now_n)
        .set(GSI1_PK, s(ACCOUNTS_INDEX))
        .set(GSI1_SK, s(&account.open_id))
        .remove("state_reason")
        .remove("attention");
    if let Some(name) = &account.display_name {
        update = update.set("display_name", s(name));
    }
    if let Some(url) = &account.avatar_url {
        update = update.set("avatar_url", s(url));
    }
    if let Some(at) = account.refresh_expires_at {
        update = update.set("refresh_expires_at", n(at.timestamp()));
    }
    update.when(match &snapshot.my_alias {
        None => Cond::no_item(),
        Some(None) => Cond::item_exists().and(Cond::absent("alias")),
        Some(Some(old)) => Cond::eq("alias", s(old)),
    })
}

/// What a login transaction came to: done; the user's problem (a used
/// invitation, `alias` taken); a retry when only the snapshot went stale;
/// or a failure of the store (`table`).
fn after_refusal(
    outcome: &Transacted,
    rebind: bool,
    alias: &str,
    table: &str,
) -> Result<Attempt, AccountError> {
    match outcome {
        Transacted::Done => Ok(Attempt::Done),
        refused if refused.condition_failed(INVITE_WRITE) => Err(AccountError::InvitationUsed),
        refused if refused.condition_failed(ALIAS_WRITE) && !rebind => {
            Err(AccountError::AliasTaken {
                alias: alias.to_owned(),
            })
        }
        refused if refused.lost_race() => Ok(Attempt::Retry),
        Transacted::Cancelled(reasons) => Err(AccountError::Store {
            table: table.to_owned(),
            detail: format!("transaction cancelled: [{}]", reasons.join(", ")),
        }),
    }
}

/// An item at `key` with these attributes.
fn item<const N: usize>(
    key: &Key,
    attributes: [(&str, aws_sdk_dynamodb::types::AttributeValue); N],
) -> Item {
    let mut item = key.attributes();
    item.extend(attributes.map(|(name, value)| (name.to_owned(), value)));
    item
}

/// The line an operator reads when a login connected an account.
fn log_connected(account: &ConnectedAccount, rebind: bool, invite_id: &str, snapshot: &Snapshot) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::PK;

    fn login(open_id: &str, alias: &str) -> ConnectedAccount {
        ConnectedAccount {
            open_id: open_id.into(),
            alias: alias.into(),
            display_name: None,
            avatar_url: None,
            scopes: vec!["video.upload".into()],
            access_expires_at: DateTime::from_timestamp(2_000, 0).unwrap(),
            refresh_expires_at: None,
        }
    }

    fn fresh() -> Snapshot {
        Snapshot {
            my_alias: None,
            release_alias: None,
            displaced: None,
            bound_at: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_000, 0).unwrap()
    }

    fn condition(write: &Write) -> Option<&Cond> {
        match write {
            Write::Put(_, when) | Write::Delete(_, when) => when.as_ref(),
            Write::Update(_, update) => update.condition(),
            Write::Check(_, cond) => Some(cond),
        }
    }

    #[test]
    fn a_first_login_creates_the_invitation_binding_and_account_only_if_none_exist() {
        let writes = connect_writes(&login("o1", "alice"), false, "inv1", &fresh(), now());
        assert_eq!(writes.len(), 3);
        let Write::Put(invite, Some(used_once)) = &writes[INVITE_WRITE] else {
            panic!("{:?}", writes[0]);
        };
        assert_eq!(invite.get(PK), Some(&s("INVITE#inv1")));
        assert_eq!(*used_once, Cond::no_item());
        assert_eq!(
            condition(&writes[ALIAS_WRITE]),
            Some(&Cond::no_item().or(Cond::eq("open_id", s("o1"))))
        );
        let Write::Update(key, account) = &writes[2] else {
            panic!("{:?}", writes[2]);
        };
        assert_eq!(key.pk, "ACCOUNT#o1");
        assert_eq!(account.condition(), Some(&Cond::no_item()));
        assert_eq!(account.sets("state"), Some(&s("active")));
        assert!(account.removes("state_reason") && account.removes("attention"));
        assert_eq!(
            account.sets("display_name"),
            None,
            "a name not learnt is kept"
        );
    }

    #[test]
    fn a_reconnect_requires_the_alias_it_saw_and_keeps_the_binding_time() {
        let snapshot = Snapshot {
            my_alias: Some(Some("alice".into())),
            bound_at: Some(500),
            ..fresh()
        };
        let writes = connect_writes(&login("o1", "alice"), false, "inv2", &snapshot, now());
        let Write::Put(binding, _) = &writes[ALIAS_WRITE] else {
            panic!("{:?}", writes[1]);
        };
        assert_eq!(binding.get("bound_at"), Some(&n(500)));
        assert_eq!(condition(&writes[2]), Some(&Cond::eq("alias", s("alice"))));
    }

    #[test]
    fn a_move_releases_the_old_alias_only_while_it_still_names_the_account() {
        let snapshot = Snapshot {
            my_alias: Some(Some("old".into())),
            release_alias: Some("old".into()),
            ..fresh()
        };
        let writes = connect_writes(&login("o1", "new"), false, "inv", &snapshot, now());
        assert_eq!(writes.len(), 4);
        assert_eq!(
            writes[3],
            Write::Delete(alias_key("old"), Some(Cond::eq("open_id", s("o1"))))
        );
    }

    #[test]
    fn a_rebind_overrides_only_the_holder_it_saw_and_revokes_it() {
        let snapshot = Snapshot {
            displaced: Some(Displaced {
                open_id: "o2".into(),
                revoke_account: true,
            }),
            ..fresh()
        };
        let writes = connect_writes(&login("o1", "alice"), true, "inv", &snapshot, now());
        assert_eq!(
            condition(&writes[ALIAS_WRITE]),
            Some(&Cond::eq("open_id", s("o1")).or(Cond::eq("open_id", s("o2"))))
        );
        let Write::Update(key, revoke) = &writes[3] else {
            panic!("{:?}", writes[3]);
        };
        assert_eq!(key.pk, "ACCOUNT#o2");
        assert_eq!(revoke.sets("state"), Some(&s("revoked")));
        assert_eq!(revoke.sets("former_alias"), Some(&s("alice")));
        assert!(revoke.removes("alias"));
        assert_eq!(revoke.condition(), Some(&Cond::eq("alias", s("alice"))));
        // A holder whose item no longer claims the alias is left alone.
        let gone = Snapshot {
            displaced: Some(Displaced {
                open_id: "o2".into(),
                revoke_account: false,
            }),
            ..fresh()
        };
        assert_eq!(
            connect_writes(&login("o1", "alice"), true, "inv", &gone, now()).len(),
            3
        );
    }

    #[test]
    fn refusals_name_the_users_problem_or_retry_a_stale_read() {
        let cancelled = |reasons: &[&str]| {
            Transacted::Cancelled(reasons.iter().map(|r| (*r).to_owned()).collect())
        };
        assert_eq!(
            after_refusal(&Transacted::Done, false, "alice", "t").ok(),
            Some(Attempt::Done)
        );
        assert!(matches!(
            after_refusal(
                &cancelled(&["ConditionalCheckFailed", "None", "None"]),
                true,
                "alice",
                "t"
            ),
            Err(AccountError::InvitationUsed)
        ));
        assert!(matches!(
            after_refusal(&cancelled(&["None", "ConditionalCheckFailed", "None"]), false, "alice", "t"),
            Err(AccountError::AliasTaken { alias }) if alias == "alice"
        ));
        // On a rebind, a binding that changed is a stale read.
        assert_eq!(
            after_refusal(
                &cancelled(&["None", "ConditionalCheckFailed", "None"]),
                true,
                "alice",
                "t"
            )
            .ok(),
            Some(Attempt::Retry)
        );
        assert_eq!(
            after_refusal(
                &cancelled(&["None", "None", "TransactionConflict"]),
                false,
                "alice",
                "t"
            )
            .ok(),
            Some(Attempt::Retry)
        );
        assert!(matches!(
            after_refusal(&cancelled(&["None", "ThrottlingError", "None"]), false, "alice", "t"),
            Err(AccountError::Store { detail, .. }) if detail.contains("ThrottlingError")
        ));
    }
}
