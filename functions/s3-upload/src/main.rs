//! Lambda entry point: build the service once per cold start, then hand it
//! every SQS batch (or direct S3 event).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use s3_upload::config::UploadConfig;
use s3_upload::service::UploadService;
use shared::aws::AwsClients;
use shared::tokens::Clock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let aws = AwsClients::from_env().await;
    let config = UploadConfig::from_env().inspect_err(|err| {
        tracing::error!(error = %err, "s3-upload cannot start");
    })?;
    let service = UploadService::new(config, &aws, Clock::system())
        .await
        .inspect_err(|err| tracing::error!(error = %err, "s3-upload cannot start"))?;
    let service = &service;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            service.handle_event(event.payload).await
        },
    ))
    .await
}
