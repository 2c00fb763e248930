//! The real `status-checker` binary as Lambda runs it: under cargo-lambda's
//! Runtime API emulator, invoked with the event an EventBridge schedule
//! sends.

use shared::accounts::Accounts;
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::jobs::UploadAttempt;
use shared::jobs::{Job, JobKind, JobStatus, Jobs, NewJob, ObjectVersion, PostTarget, Upload};
use shared::tokens::TokenManager;
use tiktok_drafts_tests::lambda::LambdaFunction;
use tiktok_drafts_tests::{
    DeploymentStores, TestSim, connect_account, deployment_stores, local_aws, unique_name,
};

#[tokio::test]
async fn the_binary_runs_on_a_scheduled_event_under_the_lambda_emulator() {
    let sdk = local_aws().await;
    let aws = AwsClients::from_config(&sdk);
    let sim = TestSim::start(|s| s.auto_advance = false).await;
    let DeploymentStores {
        table,
        prefix,
        app_secret_id,
    } = deployment_stores(&aws).await;
    let queue_url = aws_sdk_sqs::Client::new(&sdk)
        .create_queue()
        .queue_name(unique_name("uploads"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sim.seed_user("open-sched", serde_json::json!({})).await;
    connect_account(
        &sim,
        &TokenManager::for_deployment(&aws, sim.client(), &prefix, &table),
        &Accounts::new(aws.dynamodb.clone(), &table),
        "open-sched",
        "sched",
        &["user.info.basic", "video.upload"],
    )
    .await;
    // A draft TikTok has delivered, which the job does not know yet.
    let seeded = sim
        .post(
            "/_sim/publishes/seed",
            serde_json::json!({"open_id": "open-sched", "count": 1, "status": "SEND_TO_USER_INBOX"}),
        )
        .await;
    let publish_id = seeded["publish_ids"][0].as_str().unwrap().to_owned();
    let mut job = Job::new(
        NewJob {
            upload: Upload {
                bucket: "uploads".into(),
                key: "uploads/sched/a.mp4".into(),
                version: ObjectVersion::etag("abc"),
                size: 1000,
            },
            alias: Some("sched".into()),
            open_id: Some("open-sched".into()),
            kind: JobKind::Video,
            post: PostTarget::Draft,
            caption: None,
        },
        Clock::system().now(),
    );
    job.status = JobStatus::Processing;
    job.attempt = UploadAttempt::Pulled { publish_id };
    let jobs = Jobs::new(aws.dynamodb.clone(), &table);
    jobs.put_many(std::slice::from_ref(&job)).await.unwrap();

    let mut function = LambdaFunction::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_status-checker")),
        &[
            ("TABLE_NAME", table.clone()),
            ("SECRETS_PREFIX", prefix),
            ("TIKTOK_APP_SECRET_ID", app_secret_id),
            ("TIKTOK_API_BASE_URL", sim.base_url().to_owned()),
            ("UPLOAD_QUEUE_URL", queue_url),
        ],
    )
    .await;
    let scheduled = serde_json::json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-22T03:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/tiktok-drafts-check"],
        "detail": {}
    });
    let result = function.invoke(&scheduled).await;
    assert_eq!(
        result.status,
        200,
        "{:?}\n{}",
        result.body,
        function.logs().join("\n")
    );
    assert_eq!(
        result.body["jobs_seen"],
        1,
        "{}\n{}",
        result.body,
        function.logs().join("\n")
    );
    assert_eq!(result.body["moved"]["inbox"], 1, "{}", result.body);
    assert_eq!(result.body["stopped_early"], false);
    assert_eq!(
        jobs.get(&job.id).await.unwrap().unwrap().status,
        JobStatus::Inbox
    );
    let logs = function.logs();
    assert!(
        logs.iter().any(|l| l.contains("check run finished")),
        "{}",
        logs.join("\n")
    );
}
