//! The one DynamoDB table every store shares, and its layout.
//!
//! Items are told apart by their key prefixes (`ACCOUNT#…`, `ALIAS#…`,
//! `INVITE#…`, `OAUTHSTATE#…`, `LEASE#…`, `JOB#…`, `DRAFTS#…`, `EVENT#…`);
//! each store owns its prefixes. The table has a TTL attribute for
//! short-lived items (login states, leases, pending-draft slots) and one GSI
//! for "what is not finished yet", sharded by job id and sorted by due time,
//! so the status checker never scans. A second, sparse GSI holds each
//! account's jobs by creation time (the creator's page reads it; see
//! [`crate::jobs::by_account`]). The table's change stream (new and old
//! images) feeds the events function.
//!
//! Stores reach it through [`Table`] ([`client`]'s reads, queries and
//! conditional writes) and describe their writes as data ([`expr`]'s
//! [`Key`], [`Cond`] and [`Update`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub mod client;
mod create;
pub mod expr;

pub use client::{Checked, Table, TableError, Transacted, Write};
pub use create::{CreateTableError, create_table};
pub use expr::{Cond, Key, Update};

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Epoch seconds after which DynamoDB may delete the item. TTL deletion is
/// lazy (up to days), so readers must check it themselves too.
pub const TTL: &str = "expires_at";
/// The GSI of unfinished work (and of a few other small partitions: the
/// accounts, the held uploads).
pub const GSI1: &str = "gsi1";
/// The GSI's partition key.
pub const GSI1_PK: &str = "gsi1pk";
/// The GSI's sort key.
pub const GSI1_SK: &str = "gsi1sk";
/// The sparse GSI of each account's jobs, newest last.
pub const GSI2: &str = "gsi2";
/// Its partition key (`JOBS#<open_id>`).
pub const GSI2_PK: &str = "gsi2pk";
/// Its sort key (`<created_at>#<job id>`).
pub const GSI2_SK: &str = "gsi2sk";

/// The environment variable that names the table.
pub const TABLE_NAME_VAR: &str = "TABLE_NAME";

/// A DynamoDB item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A number attribute from an unsigned count.
pub(crate) fn n_u64(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A list-of-strings attribute.
pub(crate) fn texts<S: AsRef<str>>(values: &[S]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.as_ref())).collect())
}

/// A number attribute's value, when the item has one by that name.
pub(crate) fn opt_i64(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// A number attribute's value as a count, when the item has one.
pub(crate) fn opt_u64(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// A string attribute's value, when the item has one by that name.
pub(crate) fn opt_text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// A list-of-strings attribute's values; none when the item has no such
/// attribute. `Err` says what is wrong with one that is there.
pub(crate) fn text_list(item: &Item, name: &str) -> Result<Vec<String>, String> {
    match item.get(name) {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(text) => Ok(text.clone()),
                _ => Err(format!("{name} holds a non-string")),
            })
            .collect(),
        Some(_) => Err(format!("{name} is not a list")),
    }
}

/// An item's size as DynamoDB bills it: each attribute's name in UTF-8 bytes
/// plus its value (strings in UTF-8 bytes, numbers about one byte per two
/// digits plus one, lists and maps 3 bytes plus their elements and one per
/// element). Used to report read units, which a local server cannot.
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(s) => s.len() as u64,
        AttributeValue::N(n) => {
            let digits = n.chars().filter(char::is_ascii_digit).count() as u64;
            digits.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() as u64 + value_size(v))
                .sum::<u64>()
        }
        AttributeValue::Ss(set) => set.iter().map(|s| s.len() as u64).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) as u64 + 1).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len() as u64).sum(),
        _ => 0,
    }
}

/// Read units of one eventually consistent Query or Scan that returned
/// `bytes` in all: half a unit per 4 KB, rounded up, at least half a unit.
pub fn eventual_read_units(bytes: u64) -> f64 {
    bytes.div_ceil(4096).max(1) as f64 * 0.5
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        let item = Item::from([
            ("pk".to_owned(), s("JOB#abc")),                    // 2 + 7
            ("n".to_owned(), n(12345)),                         // 1 + 3 + 1
            ("l".to_owned(), AttributeValue::L(vec![s("ab")])), // 1 + 3 + 1 + 2
        ]);
        assert_eq!(item_size(&item), 9 + 5 + 7);
        assert_eq!(eventual_read_units(0), 0.5);
        assert_eq!(eventual_read_units(4096), 0.5);
        assert_eq!(eventual_read_units(4097), 1.0);
    }
}
