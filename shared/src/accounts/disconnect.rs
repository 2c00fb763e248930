//! The operator disconnects an account: it stops being usable and its alias
//! is freed, in one transaction. The account item stays (as `revoked`, with
//! its alias kept as `former_alias`) so that its jobs still name whose they
//! were; the token secret and TikTok's grant are the caller's to end (see
//! `tiktok-drafts disconnect`).

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
use chrono::Utc;

use super::{ACCOUNT_SK, ALIAS_SK, AccountError, AccountState, Accounts, account_pk, alias_pk};
use crate::table::{PK, SK, n, s};

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
        let build = |e: aws_sdk_dynamodb::error::BuildError| AccountError::Store {
            table: self.table.clone(),
            detail: e.to_string(),
        };
        let revoke = Update::builder()
            .table_name(&self.table)
            .key(PK, s(account_pk(open_id)))
            .key(SK, s(ACCOUNT_SK))
            .update_expression(
                "SET #state = :revoked, #state_reason = :reason, #updated_at = :now, #former_alias = :alias REMOVE #alias",
            )
            .condition_expression("#alias = :alias")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#state_reason", "state_reason")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_names("#former_alias", "former_alias")
            .expression_attribute_names("#alias", "alias")
            .expression_attribute_values(":revoked", s(AccountState::Revoked.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .expression_attribute_values(":alias", s(alias))
            .build()
            .map_err(build)?;
        let release = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(alias_pk(alias)))
            .key(SK, s(ALIAS_SK))
            .condition_expression("open_id = :me")
            .expression_attribute_values(":me", s(open_id))
            .build()
            .map_err(build)?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(revoke).build())
            .transact_items(TransactWriteItem::builder().delete(release).build())
            .send()
            .await;
        match written {
            Ok(_) => {
                tracing::info!(
                    open_id,
                    alias,
                    reason,
                    "account disconnected by the operator"
                );
                Ok(true)
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                tracing::warn!(
                    open_id,
                    alias,
                    "alias no longer names the account; nothing disconnected"
                );
                Ok(false)
            }
            Err(err) => Err(self.store_error(&err)),
        }
    }
}
