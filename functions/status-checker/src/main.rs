//! Lambda entry point: build the checker once per cold start, then run it
//! on every scheduled event, stopping before the invocation's deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::aws::{AwsClients, load_config};
use shared::tokens::Clock;
use status_checker::checker::RunReport;
use status_checker::config::CheckerConfig;
use status_checker::service::build;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = load_config().await;
    let aws = AwsClients::from_config(&sdk);
    let config = CheckerConfig::from_env()
        .inspect_err(|err| tracing::error!(error = %err, "status-checker cannot start"))?;
    let checker = build(
        &config,
        &aws,
        aws_sdk_sqs::Client::new(&sdk),
        Clock::system(),
    )
    .await
    .inspect_err(|err| tracing::error!(error = %err, "status-checker cannot start"))?;
    let checker = &checker;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let left = time_left(event.context.deadline);
            Ok::<RunReport, Error>(checker.run(tokio::time::Instant::now() + left).await)
        },
    ))
    .await
}

/// Time until the invocation's deadline (epoch milliseconds).
fn time_left(deadline_ms: u64) -> Duration {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
