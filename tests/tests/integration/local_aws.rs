//! The local AWS stack works with the real SDK clients: the features the
//! project relies on (ranged GETs, presigned URLs, conditional writes, GSIs,
//! secrets with version stages) behave as on AWS.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use shared::aws::{AwsClients, describe_sdk_error};
use std::time::Duration;
use tiktok_drafts_tests::{fake_mp4, local_aws, sha256_hex, unique_name};

#[tokio::test]
async fn s3_ranged_reads_and_presigned_urls() {
    let aws = AwsClients::from_config(&local_aws().await);
    let bucket = unique_name("bucket");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let body = fake_mp4(1_000_000, 7);
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("uploads/alice/clip one.mp4")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();

    let part = aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key("uploads/alice/clip one.mp4")
        .range("bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_range(), Some("bytes 100-199/1000000"));
    let bytes = part.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], &body[100..200]);

    // Writing only if absent is how idempotent claims on S3 work.
    let again = aws
        .s3
        .put_object()
        .bucket(&bucket)
        .key("uploads/alice/clip one.mp4")
        .if_none_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(again.is_err(), "a second conditional put must fail");

    let presigned = aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key("uploads/alice/clip one.mp4")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let fetched = reqwest::get(presigned.uri()).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(
        sha256_hex(&fetched.bytes().await.unwrap()),
        sha256_hex(&body)
    );
}

#[tokio::test]
async fn dynamodb_conditional_writes_and_gsi_queries() {
    let aws = AwsClients::from_config(&local_aws().await);
    let table = unique_name("table");
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    aws.dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("gsi1")
                .key_schema(key("gsi1pk", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let put = |status: &'static str| {
        aws.dynamodb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("job#1".into()))
            .item("sk", AttributeValue::S("job".into()))
            .item("gsi1pk", AttributeValue::S(status.into()))
            .condition_expression("attribute_not_exists(pk)")
    };
    put("open").send().await.unwrap();
    let second = put("open").send().await.unwrap_err();
    let described = describe_sdk_error(&second);
    assert!(
        described.contains("ConditionalCheckFailed"),
        "expected a conditional check failure, got {described}"
    );

    let found = aws
        .dynamodb
        .query()
        .table_name(&table)
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :s")
        .expression_attribute_values(":s", AttributeValue::S("open".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(found.count(), 1);
}

#[tokio::test]
async fn secrets_manager_versions() {
    let aws = AwsClients::from_config(&local_aws().await);
    let name = unique_name("tiktok-drafts/accounts/open");
    aws.secrets
        .create_secret()
        .name(&name)
        .secret_string(r#"{"v":1}"#)
        .send()
        .await
        .unwrap();
    aws.secrets
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"v":2}"#)
        .client_request_token("00000000-0000-4000-8000-000000000002")
        .send()
        .await
        .unwrap();
    let current = aws
        .secrets
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert_eq!(current.secret_string(), Some(r#"{"v":2}"#));
}

#[tokio::test]
async fn the_project_table_is_created_idempotently() {
    let aws = AwsClients::from_config(&local_aws().await);
    let table = unique_name("drafts");
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .unwrap();
    shared::table::create_table(&aws.dynamodb, &table)
        .await
        .expect("creating it again is fine");
    let described = aws
        .dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let t = described.table().unwrap();
    let mut indexes: Vec<&str> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [shared::table::GSI1, shared::table::GSI2]);
    // The events function reads the change stream with both images.
    let stream = t.stream_specification().expect("the table has a stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
    );
    let ttl = aws
        .dynamodb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.attribute_name()),
        Some(shared::table::TTL)
    );
}
