//! Lambda entry point: build the service once per cold start, then hand it
//! every SQS batch (or direct S3 event).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use s3_upload::config::UploadConfig;
use s3_upload::service::UploadService;
use shared::aws::{AwsClients, load_config};
use shared::clock::Clock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs when Lambda's log format is JSON; never a raw event, even at trace.
    shared::logging::init();
    let sdk = load_config().await;
    let aws = AwsClients::from_config(&sdk);
    let config = UploadConfig::from_env().inspect_err(|err| {
        tracing::error!(error = %err, "s3-upload cannot start");
    })?;
    let queue_url = s3_upload::config::upload_queue_url(|name| std::env::var(name).ok());
    let service = UploadService::new(config, &aws, Clock::system())
        .await
        .inspect_err(|err| tracing::error!(error = %err, "s3-upload cannot start"))?
        .with_redelivery(aws_sdk_sqs::Client::new(&sdk), queue_url);
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            service.handle_event(event.payload).await
        },
    ))
    .await
}
