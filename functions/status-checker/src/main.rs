//! Lambda entry point: build the checker once per cold start, then run it
//! on every scheduled event, stopping before the invocation's deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::aws::{AwsClients, load_config};
use shared::clock::Clock;
use status_checker::checker::RunReport;
use status_checker::config::CheckerConfig;
use status_checker::service::build;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs when Lambda's log format is JSON; never a raw event, even at trace.
    shared::logging::init();
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
            tracing::info!(time_left_ms = left.as_millis() as u64, "check run starting");
            Ok::<RunReport, Error>(checker.run(tokio::time::Instant::now() + left).await)
        },
    ))
    .await
}

/// Time until the invocation's deadline. Lambda sends the deadline as epoch
/// milliseconds; cargo-lambda's emulator sends the timeout itself (e.g.
/// `600000`). A value that cannot be an epoch deadline (before 2001) is read
/// as the time left, so the run behaves the same under both.
fn time_left(deadline_ms: u64) -> Duration {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    if deadline_ms < EPOCH_2001_MS {
        return Duration::from_millis(deadline_ms);
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_from_lambda_and_from_the_emulator() {
        assert_eq!(time_left(600_000), Duration::from_secs(600));
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = time_left(now_ms + 120_000);
        assert!(left > Duration::from_secs(118) && left <= Duration::from_secs(120));
        assert_eq!(time_left(now_ms - 1_000), Duration::ZERO);
    }
}
