//! The operator disconnects an account: it stops being usable and its alias
//! is freed, in one transaction. The account item stays (as `revoked`, with
//! its alias kept as `former_alias`) so that its jobs still name whose they
//! were; the token secret and TikTok's grant are the caller's to end (see
//! `tiktok-drafts disconnect`).

use chrono::Utc;

use super::{AccountError, Accounts, account_key, alias_key, revoked_for_alias};
use crate::table::{Cond, Transacted, Write, s};

impl Accounts {
    /// Marks the account holding `alias` revoked with `reason`, and deletes
    /// the alias binding, both only if the alias still names `open_id`:
    /// either both happen or neither. `Ok(false)` when the alias no longer
    /// names that account (someone moved it meanwhile): nothing changed.
    pub async fn disconnect(
        &self,
        open_id: &str,
        alias: &str,
        reason: &str,
    ) -> Result<bool, AccountError> {
        let writes = vec![
            Write::Update(
                account_key(open_id),
                revoked_for_alias(alias, reason, Utc::now()),
            ),
            Write::Delete(alias_key(alias), Some(Cond::eq("open_id", s(open_id)))),
        ];
        match self.table.transact(writes).await? {
            Transacted::Done => {
                tracing::info!(
                    open_id,
                    alias,
                    reason,
                    "account disconnected by the operator"
                );
                Ok(true)
            }
            Transacted::Cancelled(_) => {
                tracing::warn!(
                    open_id,
                    alias,
                    "alias no longer names the account; nothing disconnected"
                );
                Ok(false)
            }
        }
    }
}
