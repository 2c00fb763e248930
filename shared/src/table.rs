//! The one DynamoDB table every store shares, and its layout.
//!
//! Items are told apart by their key prefixes (`ACCOUNT#…`, `ALIAS#…`,
//! `INVITE#…`, `OAUTHSTATE#…`, `LEASE#…`, `JOB#…`, `DRAFTS#…`, `EVENT#…`);
//! each store owns its prefixes. The
//! table has a TTL attribute for short-lived items (login states, leases,
//! pending-draft slots) and one GSI for "what is not finished yet", sharded
//! by job id and sorted by due time, so the status checker never scans. A
//! second, sparse GSI holds each account's jobs by creation time (the
//! creator's page reads it; see [`crate::jobs::by_account`]). The table's
//! change stream (new and old images) feeds the events function.

use std::collections::HashMap;

use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use crate::aws::describe_sdk_error;

/// How long [`create_table`] waits for a new table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// Epoch seconds after which DynamoDB may delete the item. TTL deletion is
/// lazy (up to days), so readers must check it themselves too.
pub const TTL: &str = "expires_at";
/// The GSI of unfinished work, and its keys.
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// The sparse GSI of each account's jobs, newest last, and its keys.
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
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

#[derive(Debug, thiserror::Error)]
#[error("cannot create table {table}: {detail}")]
pub struct CreateTableError {
    pub table: String,
    pub detail: String,
}

/// Creates the table as `template.yaml` declares it. For the local stack and
/// tests; in AWS the template creates it. A table that exists already is fine.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), CreateTableError> {
    let fail = |detail: String| CreateTableError {
        table: table.to_owned(),
        detail,
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| fail(e.to_string()))
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| fail(e.to_string()))
    };
    let index = |name: &str, pk: &str, sk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| fail(e.to_string()))
    };
    // What the events function reads: every change with both images.
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .attribute_definitions(attr(GSI1_PK)?)
        .attribute_definitions(attr(GSI1_SK)?)
        .attribute_definitions(attr(GSI2_PK)?)
        .attribute_definitions(attr(GSI2_SK)?)
        .global_secondary_indexes(index(GSI1, GSI1_PK, GSI1_SK)?)
        .global_secondary_indexes(index(GSI2, GSI2_PK, GSI2_SK)?)
        .stream_specification(stream)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(err) => return Err(fail(describe_sdk_error(&err))),
    }
    // DynamoDB refuses UpdateTimeToLive while the table is CREATING (moto
    // makes it ACTIVE at once), so wait for ACTIVE first. The waiter polls
    // DescribeTable (first at once, then every 20 s or more); a new
    // on-demand table with one index is usually ACTIVE within a minute.
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(TABLE_ACTIVE_TIMEOUT)
        .await
        .map_err(|err| {
            fail(format!(
                "not ACTIVE within {} s: {}",
                TABLE_ACTIVE_TIMEOUT.as_secs(),
                describe_sdk_error(&err)
            ))
        })?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL)
                .enabled(true)
                .build()
                .map_err(|e| fail(e.to_string()))?,
        )
        .send()
        .await
        .map(|_| ())
        .or_else(|err| {
            // Enabling TTL twice is refused with a validation error; that is
            // the state we want.
            let message = describe_sdk_error(&err);
            if message.contains("already enabled") {
                Ok(())
            } else {
                Err(fail(message))
            }
        })
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
