//! The account item as stored (and as the table's stream carries it): the
//! one reader of account items.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{Account, AccountError, AccountState};
use crate::table::{Item, opt_i64, opt_text, text_list};

/// Reads an account item (as stored, or an image from the table's stream);
/// `key` names it in errors. The one reader of account items.
pub fn account_from_item(key: &str, item: &Item) -> Result<Account, AccountError> {
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

/// A number attribute as a time; `None` when absent or not a time.
pub(super) fn epoch_time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    opt_i64(item, name).and_then(|secs| DateTime::from_timestamp(secs, 0))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::table::{n, s};

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
