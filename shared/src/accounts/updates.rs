//! Changes to one account item after it was connected: its state, the
//! operator's note, the token expiry times, the username and the creator
//! page's link version. Each is one conditional update on an item that
//! must exist; a missing account is an answer ([`AccountError::NotFound`] or
//! nothing to do), never a new item.

use chrono::{DateTime, Utc};

use super::{
    Account, AccountError, AccountState, Accounts, account_from_item, account_key, is_username,
};
use crate::table::{Checked, Cond, Update, n, opt_u64, s};

impl Accounts {
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
        let update = Update::new()
            .set("username", s(username))
            .when(Cond::item_exists());
        match self.table.update(&account_key(open_id), &update).await? {
            Checked::Done(_) => {
                tracing::info!(open_id, username, "account username recorded");
                Ok(())
            }
            Checked::ConditionFailed => Err(not_found(open_id)),
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
        let update = match note {
            Some(note) => Update::new()
                .set("attention", s(note))
                .when(Cond::item_exists().and(!Cond::eq("attention", s(note)))),
            None => Update::new()
                .remove("attention")
                .when(Cond::item_exists().and(Cond::exists("attention"))),
        };
        match self.table.update(&account_key(open_id), &update).await? {
            Checked::Done(_) => {
                tracing::info!(open_id, attention = note, "account note changed");
                Ok(())
            }
            // No account, or the note is as it should be already.
            Checked::ConditionFailed => Ok(()),
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
        let mut update = Update::new()
            .set("access_expires_at", n(access_expires_at.timestamp()))
            .set("updated_at", n(Utc::now().timestamp()))
            .when(Cond::item_exists());
        // An unknown refresh expiry leaves the stored one as it is.
        if let Some(at) = refresh_expires_at {
            update = update.set("refresh_expires_at", n(at.timestamp()));
        }
        if self.table.update(&account_key(open_id), &update).await? == Checked::ConditionFailed {
            tracing::debug!(open_id, "no account item to record token expiry on");
        }
        Ok(())
    }

    /// Moves an account to `state`, with a reason for the operator (cleared
    /// when `None`). Returns the account as stored afterwards.
    pub async fn set_state(
        &self,
        open_id: &str,
        state: AccountState,
        reason: Option<&str>,
    ) -> Result<Account, AccountError> {
        let key = account_key(open_id);
        let update = Update::new()
            .set("state", s(state.as_str()))
            .set_or_remove("state_reason", reason.map(s))
            .set("updated_at", n(Utc::now().timestamp()))
            .when(Cond::item_exists());
        let Checked::Done(item) = self.table.update(&key, &update).await? else {
            return Err(not_found(open_id));
        };
        tracing::info!(open_id, state = %state, reason, "account state changed");
        account_from_item(&key.pk, &item)
    }

    /// Marks an `active` account `needs_reconnect` because TikTok refused
    /// its grant (the refresh token, a freshly refreshed access token).
    /// Only the account item changes, never the token secret: the tokens a
    /// concurrent refresh or login is saving stay as they are. An account
    /// that is no longer active (revoked, already marked) is left as it is.
    /// `Ok(None)` when there is no account item or it was not active.
    pub async fn mark_needs_reconnect(
        &self,
        open_id: &str,
        reason: &str,
    ) -> Result<Option<Account>, AccountError> {
        let key = account_key(open_id);
        let update = Update::new()
            .set("state", s(AccountState::NeedsReconnect.as_str()))
            .set("state_reason", s(reason))
            .set("updated_at", n(Utc::now().timestamp()))
            .when(Cond::eq("state", s(AccountState::Active.as_str())));
        let Checked::Done(item) = self.table.update(&key, &update).await? else {
            return Ok(None);
        };
        tracing::info!(open_id, reason, "account marked needs_reconnect");
        account_from_item(&key.pk, &item).map(Some)
    }

    /// Makes every link to the account's creator page that exists stop
    /// working, by bumping its link version; returns the new version. Links
    /// made afterwards carry it and work.
    pub async fn revoke_links(&self, open_id: &str) -> Result<u64, AccountError> {
        let key = account_key(open_id);
        let update = Update::new()
            .add("link_version", 1)
            .when(Cond::item_exists());
        let Checked::Done(item) = self.table.update(&key, &update).await? else {
            return Err(not_found(open_id));
        };
        let version = opt_u64(&item, "link_version").ok_or_else(|| AccountError::Corrupt {
            key: key.pk,
            detail: "link_version is not a count".into(),
        })?;
        tracing::info!(
            open_id,
            link_version = version,
            "creator page links revoked"
        );
        Ok(version)
    }
}

/// No account item for `open_id`.
fn not_found(open_id: &str) -> AccountError {
    AccountError::NotFound {
        open_id: open_id.to_owned(),
    }
}
