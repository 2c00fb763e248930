//! Creating the table as `template.yaml` declares it (the local stack and
//! tests; in AWS the template creates it).

use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use super::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL};
use crate::aws::describe_sdk_error;

/// How long [`create_table`] waits for a new table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Why the table could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create table {table}: {detail}")]
pub struct CreateTableError {
    /// The table's name.
    pub table: String,
    /// What DynamoDB said.
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
