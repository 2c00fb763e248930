//! Builds the checker once per cold start.

use shared::accounts::Accounts;
use shared::app_secret::tiktok_client;
use shared::aws::AwsClients;
use shared::clock::Clock;
use shared::jobs::{JobRetryPolicy, Jobs};
use shared::tiktok::client::ReadRetry;
use shared::tokens::TokenManager;

use crate::checker::{Checker, CheckerSettings};
use crate::config::CheckerConfig;
use crate::upload_path::SqsUploadPath;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] shared::tiktok::config::ConfigError),
    #[error(transparent)]
    Client(#[from] shared::app_secret::ClientSetupError),
}

/// The checker a deployment runs: stores on the shared table, tokens in
/// Secrets Manager, releases through the upload queue.
pub async fn build(
    config: &CheckerConfig,
    aws: &AwsClients,
    sqs: aws_sdk_sqs::Client,
    clock: Clock,
) -> Result<Checker, StartupError> {
    // Status reads go out once each (`fetch_status_once`): a failed one is
    // asked again next run. Other reads (creator_info for a username) get
    // one quick retry, never a long wait inside a run that has a deadline.
    let tiktok = tiktok_client(
        &aws.secrets,
        &config.app_secret_id,
        config.endpoints.clone(),
    )
    .await?
    .with_read_retry(ReadRetry {
        attempts: 2,
        backoff: shared::backoff::Backoff::new(
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(1),
        ),
    });
    let tokens =
        TokenManager::for_deployment(aws, tiktok.clone(), &config.secrets_prefix, &config.table)
            .with_clock(clock.clone());
    Ok(Checker::new(
        Jobs::new(aws.dynamodb.clone(), &config.table),
        Accounts::new(aws.dynamodb.clone(), &config.table),
        tokens,
        tiktok,
        SqsUploadPath::new(sqs, &config.upload_queue_url),
        clock,
        JobRetryPolicy::default(),
        CheckerSettings::new(config.interval, config.concurrency),
    ))
}
