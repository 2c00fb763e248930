//! Rotated tokens that could not be saved in their secret, kept in the
//! table until a lease holder moves them there.
//!
//! TikTok rotates the refresh token on every refresh: once it has answered,
//! the new refresh token exists only in the refreshing process. When
//! Secrets Manager keeps refusing the save (past
//! [`super::RefreshSettings::save_budget`]), dropping it would cost the
//! creator her connection at the next refresh. It is kept here instead, in
//! the table (another service, so another failure), where the next lease
//! holder of the account looks before it spends a refresh token, moves it
//! into the secret and deletes it. The item lives only that long, and
//! expires by itself with the refresh token.
//!
//! Item: `pk = TOKENS_PENDING#<open_id>`, `sk = PENDING`, `tokens` (the
//! secret's JSON), `kept_at` (RFC 3339, the condition of its deletion),
//! `expires_at` (TTL).

use chrono::{DateTime, TimeDelta, Utc};

use super::{StoredTokens, TokenError};
use crate::table::{Checked, Cond, Item, Key, PK, SK, TTL, Table, n, opt_text, s};

const PENDING_SK: &str = "PENDING";
/// How long a kept token waits when TikTok named no refresh expiry.
const KEEP_AT_MOST: TimeDelta = TimeDelta::days(30);

/// Kept tokens in one table.
#[derive(Debug, Clone)]
pub(super) struct PendingTokens {
    table: Table,
}

impl PendingTokens {
    pub(super) fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    fn key(open_id: &str) -> Key {
        Key::new(format!("TOKENS_PENDING#{open_id}"), PENDING_SK)
    }

    /// Keeps `tokens` until a lease holder moves them into the secret.
    pub(super) async fn keep(&self, tokens: &StoredTokens) -> Result<(), TokenError> {
        let open_id = tokens.open_id.as_str();
        let fail = |detail: String| TokenError::Store {
            open_id: open_id.to_owned(),
            detail,
        };
        let json = serde_json::to_string(tokens)
            .map_err(|e| fail(format!("cannot encode the tokens ({:?})", e.classify())))?;
        let Key { pk, sk } = Self::key(open_id);
        let until = tokens
            .refresh_expires_at
            .unwrap_or(tokens.updated_at + KEEP_AT_MOST);
        let item = Item::from([
            (PK.to_owned(), s(pk)),
            (SK.to_owned(), s(sk)),
            ("tokens".to_owned(), s(json)),
            ("kept_at".to_owned(), s(tokens.updated_at.to_rfc3339())),
            (TTL.to_owned(), n(until.timestamp())),
        ]);
        self.table
            .put(item, None)
            .await
            .map(|_| ())
            .map_err(|e| fail(format!("keeping the tokens in the table: {}", e.detail)))
    }

    /// The kept tokens of `open_id`, if any.
    pub(super) async fn get(&self, open_id: &str) -> Result<Option<StoredTokens>, TokenError> {
        let item = self
            .table
            .get(&Self::key(open_id))
            .await
            .map_err(|e| TokenError::Store {
                open_id: open_id.to_owned(),
                detail: format!("reading kept tokens: {}", e.detail),
            })?;
        let Some(text) = item.as_ref().and_then(|item| opt_text(item, "tokens")) else {
            return Ok(None);
        };
        // As for the secret: never quote the value in an error.
        let tokens: StoredTokens =
            serde_json::from_str(&text).map_err(|e| TokenError::Corrupt {
                open_id: open_id.to_owned(),
                detail: format!("kept tokens are bad JSON ({:?} error)", e.classify()),
            })?;
        Ok(Some(tokens).filter(|t| t.open_id == open_id))
    }

    /// Deletes the kept tokens written at `kept_at`, not newer ones.
    pub(super) async fn clear(&self, open_id: &str, kept_at: DateTime<Utc>) {
        let same = Cond::eq("kept_at", s(kept_at.to_rfc3339()));
        match self.table.delete(&Self::key(open_id), Some(&same)).await {
            Ok(Checked::Done(_)) => tracing::info!(open_id, "kept tokens cleared"),
            Ok(Checked::ConditionFailed) => {}
            Err(err) => {
                tracing::warn!(open_id, error = %err, "could not clear kept tokens; the next holder clears them");
            }
        }
    }
}
