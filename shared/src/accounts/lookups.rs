//! Reading accounts: by open_id, by alias, all of them, and who used an
//! invitation. Reads of single items are strongly consistent; the list is
//! an index query (eventually consistent, as every index read is).

use super::item::epoch_time;
use super::{
    ACCOUNTS_INDEX, Account, AccountError, AccountList, Accounts, AliasBinding, UsedInvitation,
    account_from_item, account_key, alias_key, invite_key,
};
use crate::invite::validate_alias;
use crate::table::{Item, PK, opt_text};

impl Accounts {
    /// Who used invitation `invite_id`, if it was used.
    pub async fn invitation_use(
        &self,
        invite_id: &str,
    ) -> Result<Option<UsedInvitation>, AccountError> {
        let key = invite_key(invite_id);
        let Some(item) = self.table.get(&key).await? else {
            return Ok(None);
        };
        match (opt_text(&item, "alias"), opt_text(&item, "open_id")) {
            (Some(alias), Some(open_id)) => Ok(Some(UsedInvitation { alias, open_id })),
            _ => Err(AccountError::Corrupt {
                key: key.pk,
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
        let key = alias_key(alias);
        let Some(item) = self.table.get(&key).await? else {
            return Ok(None);
        };
        Ok(Some(AliasBinding {
            open_id: binding_holder(&key.pk, &item)?,
            bound_at: epoch_time(&item, "bound_at"),
        }))
    }

    /// The account with this `open_id`, if any.
    pub async fn get(&self, open_id: &str) -> Result<Option<Account>, AccountError> {
        let key = account_key(open_id);
        match self.table.get(&key).await? {
            Some(item) => account_from_item(&key.pk, &item).map(Some),
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
        let key = alias_key(alias);
        let Some(binding) = self.table.get(&key).await? else {
            return Ok(None);
        };
        let open_id = binding_holder(&key.pk, &binding)?;
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
        sort_accounts(&mut accounts);
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
                    tracing::error!(table = %self.table.name(), key = %key, error = %err, "unreadable account item; skipped");
                }
            }
        }
        sort_accounts(&mut list.accounts);
        Ok(list)
    }

    /// The raw account items with their keys: every page of the index
    /// partition that holds accounts only.
    async fn account_items(&self) -> Result<Vec<(String, Item)>, AccountError> {
        let items = self.table.query_index(ACCOUNTS_INDEX).await?;
        Ok(items
            .into_iter()
            .map(|item| (opt_text(&item, PK).unwrap_or_default(), item))
            .collect())
    }
}

/// The open_id an alias binding names.
fn binding_holder(key: &str, item: &Item) -> Result<String, AccountError> {
    opt_text(item, "open_id").ok_or_else(|| AccountError::Corrupt {
        key: key.to_owned(),
        detail: "open_id is missing or not a string".into(),
    })
}

/// The order accounts are listed in: by alias (accounts without one first),
/// then open_id.
fn sort_accounts(accounts: &mut [Account]) {
    accounts.sort_by(|a, b| (&a.alias, &a.open_id).cmp(&(&b.alias, &b.open_id)));
}
