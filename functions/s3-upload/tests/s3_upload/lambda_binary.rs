//! The real `s3-upload` binary as Lambda runs it: under cargo-lambda's
//! Runtime API emulator, invoked with the SQS batch Lambda's event source
//! mapping sends, reaching moto and the simulator through its environment.

use aws_sdk_s3::primitives::ByteStream;
use shared::accounts::Accounts;
use shared::aws::AwsClients;
use shared::jobs::{JobId, JobStatus, Jobs, ObjectVersion};
use shared::tokens::TokenManager;
use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, connect_account, deployment_stores, fake_mp4, local_aws, sha256_hex,
    unique_name,
};

/// One SQS message holding S3's notification for `key` (form-encoded, as
/// S3 writes it), in the shape of the committed fixture.
fn sqs_batch(bucket: &str, key: &str, size: usize, etag: &str) -> serde_json::Value {
    let encoded: String = key
        .split('/')
        .map(|part| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/");
    let notification = serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T01:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "tiktok-drafts-uploads",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded, "size": size, "eTag": etag, "sequencer": "0055AED6DCD90281E5"}
        }
    }]});
    serde_json::json!({"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": notification.to_string(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795000000000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795000000001"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tiktok-drafts-uploads",
        "awsRegion": "us-east-1"
    }]})
}

/// Local AWS with the deployment's stores and an upload bucket, the
/// simulator, and one connected account.
struct Deployment {
    aws: AwsClients,
    sim: TestSim,
    table: String,
    prefix: String,
    app_secret_id: String,
    bucket: String,
    stored: shared::tokens::StoredTokens,
}

async fn deployment(open_id: &str, alias: &str) -> Deployment {
    let aws = AwsClients::from_config(&local_aws().await);
    let sim = TestSim::start(|_| {}).await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    let bucket = unique_name("uploads");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    sim.seed_user(open_id, serde_json::json!({})).await;
    let stored = connect_account(
        &sim,
        &TokenManager::for_deployment(&aws, sim.client(), &prefix, &table),
        &Accounts::new(aws.dynamodb.clone(), &table),
        open_id,
        alias,
        &["user.info.basic", "video.upload"],
    )
    .await;
    Deployment {
        aws,
        sim,
        table,
        prefix,
        app_secret_id,
        bucket,
        stored,
    }
}

#[tokio::test]
async fn the_binary_forwards_an_sqs_batch_under_the_lambda_emulator() {
    let Deployment {
        aws,
        sim,
        table,
        prefix,
        app_secret_id,
        bucket,
        stored,
    } = deployment("open-bin", "bina").await;

    let key = "uploads/bina/from the runtime é.mp4";
    let video = fake_mp4(25_000_000, 7);
    let put = aws
        .s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from(video.clone()))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();

    let mut function = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_s3-upload")),
        &[
            ("TABLE_NAME", table.clone()),
            ("SECRETS_PREFIX", prefix.clone()),
            ("TIKTOK_APP_SECRET_ID", app_secret_id),
            ("TIKTOK_API_BASE_URL", sim.base_url().to_owned()),
            ("TIKTOK_UPLOAD_BASE_URL", sim.base_url().to_owned()),
            ("CHUNK_SIZE_BYTES", "10000000".into()),
        ],
    )
    .await;
    let batch = sqs_batch(&bucket, key, video.len(), etag.trim_matches('"'));
    let result = function.invoke(&batch).await;
    assert_eq!(
        result.status,
        200,
        "{:?}\n{}",
        result.body,
        function.logs().join("\n")
    );
    assert_eq!(
        result.body,
        serde_json::json!({"batchItemFailures": []}),
        "{}",
        function.logs().join("\n")
    );

    let id = JobId::for_upload(&bucket, key, &ObjectVersion::etag(&etag));
    let job = Jobs::new(aws.dynamodb.clone(), &table)
        .get(&id)
        .await
        .unwrap()
        .expect("the binary recorded the job");
    assert_eq!(job.status, JobStatus::Processing);
    let publish_id = job.publish_id().expect("a publish id").to_owned();
    let record = sim.publish(&publish_id).await;
    assert_eq!(record["sha256"], sha256_hex(&video));
    assert_eq!(
        record["total_chunk_count"], 1,
        "up to 64,000,000 bytes is one chunk"
    );

    // The same message again (SQS delivers at least once): nothing new.
    let again = function.invoke(&batch).await;
    assert_eq!(again.body, serde_json::json!({"batchItemFailures": []}));
    assert_eq!(
        sim.requests("/v2/post/publish/inbox/video/init/")
            .await
            .len(),
        1
    );
    // Logs are JSON lines, as on Lambda, and carry no token.
    let logs = function.logs();
    assert!(
        logs.iter().any(|l| l.contains("\"upload sent\"")),
        "{}",
        logs.join("\n")
    );
    assert!(
        logs.iter()
            .all(|l| !l.contains(stored.access_token.expose()))
    );
    // Nor the upload URL's token, nor a presigned URL's query; the
    // publish_id (no secret) is logged as soon as init returns.
    assert!(
        logs.iter()
            .any(|l| l.contains("TikTok accepted the init") && l.contains(&publish_id)),
        "{}",
        logs.join("\n")
    );
    for secret_part in [
        "upload_token",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
    ] {
        assert!(
            logs.iter().all(|l| !l.contains(secret_part)),
            "a log line carries {secret_part}:\n{}",
            logs.join("\n")
        );
    }
}

/// A failed invocation reaches the Runtime API with an `errorType` that
/// says which kind of failure it is (not `alloc::string::String`): an event
/// the function does not take, and a direct S3 event whose object should be
/// tried again (a slideshow whose images are not all there yet).
#[tokio::test]
async fn a_failed_invocation_reports_its_kind_to_the_runtime_api() {
    let Deployment {
        aws,
        sim,
        table,
        prefix,
        app_secret_id,
        bucket,
        ..
    } = deployment("open-err", "erra").await;
    let key = "uploads/erra/show/slideshow.json";
    let manifest =
        serde_json::to_vec(&serde_json::json!({"caption": "Late", "images": ["late.png"]}))
            .unwrap();
    let put = aws
        .s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(ByteStream::from(manifest.clone()))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().trim_matches('"').to_owned();

    let mut function = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_s3-upload")),
        &[
            ("TABLE_NAME", table.clone()),
            ("SECRETS_PREFIX", prefix.clone()),
            ("TIKTOK_APP_SECRET_ID", app_secret_id),
            ("TIKTOK_API_BASE_URL", sim.base_url().to_owned()),
            ("TIKTOK_UPLOAD_BASE_URL", sim.base_url().to_owned()),
            ("MEDIA_PRESIGNED_URLS", "true".into()),
        ],
    )
    .await;

    let unreadable = function
        .invoke(&serde_json::json!({"detail-type": "Scheduled Event"}))
        .await;
    assert_eq!(
        unreadable.body["errorType"], "UnreadableEvent",
        "{:?}",
        unreadable.body
    );
    let message = unreadable.body["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("neither an SQS batch nor an S3 event"),
        "{message}"
    );

    // The S3 notification itself, as a direct (asynchronous) invocation
    // gets it: the object must come back, so the invocation fails.
    let batch = sqs_batch(&bucket, key, manifest.len(), &etag);
    let body = batch["Records"][0]["body"].as_str().unwrap();
    let direct: serde_json::Value = serde_json::from_str(body).unwrap();
    let waiting = function.invoke(&direct).await;
    assert_eq!(
        waiting.body["errorType"],
        "RetryLater",
        "{:?}\n{}",
        waiting.body,
        function.logs().join("\n")
    );
    let message = waiting.body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("late.png"), "{message}");
    assert_eq!(
        sim.requests("/v2/post/publish/content/init/").await.len(),
        0,
        "nothing offered before every image is there"
    );
}
