//! The one way to read and write the table: strongly consistent reads,
//! prefix and index queries, and conditional writes whose refused condition
//! is a plain answer ([`Checked::ConditionFailed`], a cancelled
//! [`Transacted`]), not an error to pick apart. Every store (jobs, accounts,
//! login states, leases, the checker's state) goes through it.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, Put, PutRequest, ReturnValue, TransactWriteItem, WriteRequest,
};

use super::expr::{Cond, Key, Rendered, Update, render_condition};
use super::{GSI1, GSI1_PK, Item, PK, SK};
use crate::aws::describe_sdk_error;

/// The table, as every store reaches it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

/// A failed request (not a refused condition): DynamoDB unreachable,
/// throttled past the SDK's retries, a request it could not take.
#[derive(Debug, Clone, thiserror::Error)]
#[error("table {table}: {detail}")]
pub struct TableError {
    /// The table's name.
    pub table: String,
    /// What went wrong; never an item's values.
    pub detail: String,
}

/// A conditional write: done (with what it returns), or its condition did
/// not hold and nothing was written.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked<T> {
    /// Written.
    Done(T),
    /// The condition did not hold; nothing changed.
    ConditionFailed,
}

/// What a transaction came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transacted {
    /// Every write was made.
    Done,
    /// None was: DynamoDB's reason for each write, in order (`None` for a
    /// write that was fine, `ConditionalCheckFailed`, `TransactionConflict`
    /// when another transaction was writing the same item, ...).
    Cancelled(Vec<String>),
}

impl Transacted {
    /// Whether write `index`'s own condition failed.
    pub fn condition_failed(&self, index: usize) -> bool {
        match self {
            Self::Done => false,
            Self::Cancelled(reasons) => reasons
                .get(index)
                .is_some_and(|r| r == "ConditionalCheckFailed"),
        }
    }

    /// Whether the transaction lost a race: only conditions failed or
    /// another transaction interfered, so reading again and retrying may
    /// succeed.
    pub fn lost_race(&self) -> bool {
        match self {
            Self::Done => false,
            Self::Cancelled(reasons) => {
                !reasons.is_empty()
                    && reasons.iter().all(|r| {
                        matches!(
                            r.as_str(),
                            "None" | "ConditionalCheckFailed" | "TransactionConflict"
                        )
                    })
            }
        }
    }

    /// Whether another transaction was writing one of the items.
    pub fn conflicted(&self) -> bool {
        match self {
            Self::Done => false,
            Self::Cancelled(reasons) => reasons.iter().any(|r| r == "TransactionConflict"),
        }
    }
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Puts the item, if the condition holds.
    Put(Item, Option<Cond>),
    /// Updates the item.
    Update(Key, Update),
    /// Deletes the item, if the condition holds.
    Delete(Key, Option<Cond>),
    /// Writes nothing; the transaction needs the condition to hold.
    Check(Key, Cond),
}

impl Table {
    /// The table `name`.
    pub fn new(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client, for the few queries that need what this helper does not
    /// offer (read units, page limits and cursors of the job index).
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    /// A failed request, logged once here with what was being done.
    pub fn error(&self, doing: &str, err: &impl std::error::Error) -> TableError {
        let detail = describe_sdk_error(err);
        tracing::error!(table = %self.name, doing, error = %detail, "table request failed");
        TableError {
            table: self.name.clone(),
            detail: format!("{doing}: {detail}"),
        }
    }

    /// The item, if any (strongly consistent).
    pub async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key.attributes()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error("get", &e))?;
        Ok(out.item)
    }

    /// Puts `item` (replacing one with its key) if `when` holds.
    pub async fn put(&self, item: Item, when: Option<&Cond>) -> Result<Checked<()>, TableError> {
        let rendered = when.map(render_condition);
        let mut request = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item));
        if let Some(r) = rendered {
            request = request
                .set_condition_expression(r.condition)
                .set_expression_attribute_names(non_empty(r.names))
                .set_expression_attribute_values(non_empty(r.values));
        }
        match request.send().await {
            Ok(_) => Ok(Checked::Done(())),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Checked::ConditionFailed)
            }
            Err(err) => Err(self.error("put", &err)),
        }
    }

    /// Makes `update` on the item at `key`; returns the item as it is after.
    pub async fn update(&self, key: &Key, update: &Update) -> Result<Checked<Item>, TableError> {
        let r = update.render();
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key.attributes()))
            .update_expression(r.expression)
            .set_condition_expression(r.condition)
            .set_expression_attribute_names(non_empty(r.names))
            .set_expression_attribute_values(non_empty(r.values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Checked::Done(out.attributes.unwrap_or_default())),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Checked::ConditionFailed)
            }
            Err(err) => Err(self.error("update", &err)),
        }
    }

    /// Deletes the item at `key` if `when` holds; returns the item as it
    /// was (`None` when there was none).
    pub async fn delete(
        &self,
        key: &Key,
        when: Option<&Cond>,
    ) -> Result<Checked<Option<Item>>, TableError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key.attributes()))
            .return_values(ReturnValue::AllOld);
        if let Some(r) = when.map(render_condition) {
            request = request
                .set_condition_expression(r.condition)
                .set_expression_attribute_names(non_empty(r.names))
                .set_expression_attribute_values(non_empty(r.values));
        }
        match request.send().await {
            Ok(out) => Ok(Checked::Done(out.attributes.filter(|a| !a.is_empty()))),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Checked::ConditionFailed)
            }
            Err(err) => Err(self.error("delete", &err)),
        }
    }

    /// Makes all of `writes` or none of them.
    pub async fn transact(&self, writes: Vec<Write>) -> Result<Transacted, TableError> {
        let items = writes
            .into_iter()
            .map(|w| self.transact_item(w))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Transacted::Done),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    Ok(Transacted::Cancelled(
                        cancelled
                            .cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_owned())
                            .collect(),
                    ))
                }
                _ => Err(self.error("transaction", &err)),
            },
        }
    }

    fn transact_item(&self, write: Write) -> Result<TransactWriteItem, TableError> {
        let built = match write {
            Write::Put(item, when) => {
                let r = when.as_ref().map(render_condition);
                let put = Put::builder().table_name(&self.name).set_item(Some(item));
                let put = match r {
                    Some(r) => put
                        .set_condition_expression(r.condition)
                        .set_expression_attribute_names(non_empty(r.names))
                        .set_expression_attribute_values(non_empty(r.values)),
                    None => put,
                };
                put.build()
                    .map(|p| TransactWriteItem::builder().put(p).build())
            }
            Write::Update(key, update) => {
                let Rendered {
                    expression,
                    condition,
                    names,
                    values,
                } = update.render();
                aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&self.name)
                    .set_key(Some(key.attributes()))
                    .update_expression(expression)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(non_empty(names))
                    .set_expression_attribute_values(non_empty(values))
                    .build()
                    .map(|u| TransactWriteItem::builder().update(u).build())
            }
            Write::Delete(key, when) => {
                let delete = Delete::builder()
                    .table_name(&self.name)
                    .set_key(Some(key.attributes()));
                let delete = match when.as_ref().map(render_condition) {
                    Some(r) => delete
                        .set_condition_expression(r.condition)
                        .set_expression_attribute_names(non_empty(r.names))
                        .set_expression_attribute_values(non_empty(r.values)),
                    None => delete,
                };
                delete
                    .build()
                    .map(|d| TransactWriteItem::builder().delete(d).build())
            }
            Write::Check(key, cond) => {
                let r = render_condition(&cond);
                ConditionCheck::builder()
                    .table_name(&self.name)
                    .set_key(Some(key.attributes()))
                    .set_condition_expression(r.condition)
                    .set_expression_attribute_names(non_empty(r.names))
                    .set_expression_attribute_values(non_empty(r.values))
                    .build()
                    .map(|c| TransactWriteItem::builder().condition_check(c).build())
            }
        };
        built.map_err(|e| self.error("build a transaction write", &e))
    }

    /// The items of partition `pk` whose sort key starts with `prefix`, in
    /// sort order, strongly consistent; all of them when `limit` is `None`.
    pub async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Item>, TableError> {
        let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", super::s(pk))
                .expression_attribute_values(":prefix", super::s(prefix))
                .consistent_read(true)
                .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.error("query a partition", &e))?;
            items.extend(page.items().iter().cloned());
            if let Some(limit) = limit
                && items.len() >= limit
            {
                items.truncate(limit);
                break;
            }
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Every item of the index partition `partition` (`gsi1pk`), all pages,
    /// eventually consistent (as every index read is).
    pub async fn query_index(&self, partition: &str) -> Result<Vec<Item>, TableError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.name)
                .index_name(GSI1)
                .key_condition_expression("#gpk = :partition")
                .expression_attribute_names("#gpk", GSI1_PK)
                .expression_attribute_values(":partition", super::s(partition))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.error("query the index", &e))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Puts items as they are, 25 a request, unconditionally, sending again
    /// what DynamoDB leaves unprocessed under load (imports and load tests).
    pub async fn put_batch(&self, items: Vec<Item>) -> Result<(), TableError> {
        for chunk in items.chunks(25) {
            let mut pending = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| self.error("build a batch write", &e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for _ in 0..8 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, pending)
                    .send()
                    .await
                    .map_err(|e| self.error("batch write", &e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.name))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(TableError {
                    table: self.name.clone(),
                    detail: format!("{} items left unprocessed", pending.len()),
                });
            }
        }
        Ok(())
    }
}

fn non_empty<K, V>(
    map: std::collections::HashMap<K, V>,
) -> Option<std::collections::HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}
