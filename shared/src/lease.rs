//! Short leases on the shared DynamoDB table: at most one holder per name,
//! taken over by anyone once it expires (a holder that died frees it by
//! itself). Token refreshes take one per account (`tokens#<open_id>`), an
//! upload one per job (`job#<job id>`).
//!
//! Item: `pk = LEASE#<name>`, `sk = LEASE`, `holder` (random per attempt),
//! `expires_at` (epoch seconds, also the table's TTL attribute; TTL deletion
//! is lazy, so the condition checks it itself).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::aws::describe_sdk_error;
use crate::table::{PK, SK, TTL};

pub const LEASE_SK: &str = "LEASE";

#[derive(Debug, thiserror::Error)]
#[error("lease table error: {0}")]
pub struct LeaseError(pub String);

/// Leases in one table.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: Client,
    table: String,
}

impl LeaseTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The partition key of the lease called `name`.
    pub fn lease_pk(name: &str) -> String {
        format!("LEASE#{name}")
    }

    /// A random holder id for one attempt.
    pub fn new_holder() -> String {
        let b: [u8; 16] = rand::random();
        hex::encode(b)
    }

    /// Takes the lease when nobody holds it or the holder's time is up.
    /// `Ok(false)` when someone else holds it.
    pub async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, LeaseError> {
        self.conditional_put(
            name,
            holder,
            ttl,
            now,
            "attribute_not_exists(#pk) OR #exp < :now",
            false,
        )
        .await
    }

    /// Extends a lease this holder still has. `Ok(false)` when it lost it.
    pub async fn renew(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, LeaseError> {
        self.conditional_put(name, holder, ttl, now, "#holder = :holder", true)
            .await
    }

    /// Gives the lease back, if this holder still has it. `Ok(false)` when
    /// it had passed to someone else (or expired and vanished).
    pub async fn release(&self, name: &str, holder: &str) -> Result<bool, LeaseError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(Self::lease_pk(name)))
            .key(SK, AttributeValue::S(LEASE_SK.into()))
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":holder", AttributeValue::S(holder.into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(LeaseError(describe_sdk_error(&err))),
        }
    }

    /// When the lease called `name` ends, if someone holds it at `now`
    /// (strongly consistent; an expired lease TTL has not deleted yet
    /// counts as free). For a caller that found it taken and wants to come
    /// back when it is free.
    pub async fn expires_at(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, LeaseError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(Self::lease_pk(name)))
            .key(SK, AttributeValue::S(LEASE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LeaseError(describe_sdk_error(&e)))?;
        let expires = out
            .item
            .as_ref()
            .and_then(|item| match item.get(TTL) {
                Some(AttributeValue::N(secs)) => secs.parse::<i64>().ok(),
                _ => None,
            })
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
        // `try_acquire` takes a lease only once `expires_at < now`.
        Ok(expires.filter(|at| at.timestamp() >= now.timestamp()))
    }

    async fn conditional_put(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
        condition: &str,
        needs_holder: bool,
    ) -> Result<bool, LeaseError> {
        let now_secs = now.timestamp();
        // Round up, so a lease never ends before its TTL.
        let ttl_secs = i64::try_from(ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
        let expires_at = now_secs.saturating_add(ttl_secs.max(1));
        let mut item: HashMap<String, AttributeValue> = HashMap::new();
        item.insert(PK.into(), AttributeValue::S(Self::lease_pk(name)));
        item.insert(SK.into(), AttributeValue::S(LEASE_SK.into()));
        item.insert("holder".into(), AttributeValue::S(holder.into()));
        item.insert(TTL.into(), AttributeValue::N(expires_at.to_string()));
        item.insert("acquired_at".into(), AttributeValue::S(now.to_rfc3339()));
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        if needs_holder {
            request = request
                .expression_attribute_names("#holder", "holder")
                .expression_attribute_values(":holder", AttributeValue::S(holder.into()));
        } else {
            request = request
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#exp", TTL)
                .expression_attribute_values(":now", AttributeValue::N(now_secs.to_string()));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(LeaseError(describe_sdk_error(&err))),
        }
    }
}
