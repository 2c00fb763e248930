//! Logging for the Lambda functions: one setup, called first in every
//! function's `main`.
//!
//! - The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's logging
//!   settings), else `RUST_LOG` (a level or filter directives), else `info`.
//! - JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`; text otherwise, with
//!   colours only when stdout is a terminal (a log file or CloudWatch gets
//!   no ANSI codes).
//! - Whatever the level asked for, the crates that see raw payloads are
//!   capped at `info`: at `trace` the Lambda runtime logs every event as
//!   received (an invitation, a login's code and state, a webhook's body),
//!   the AWS SDK logs requests and responses (a token secret's value), and
//!   the HTTP stack logs headers (a bearer token). A `RUST_LOG=trace` set to
//!   chase a bug must not put those in CloudWatch.

use std::io::IsTerminal as _;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Targets (prefixes) never logged below `info`.
pub const CAPPED_TARGETS: &[&str] = &[
    // lambda_runtime, lambda_runtime_api_client, lambda_http
    "lambda_",
    // aws_smithy_runtime, aws_smithy_http_client, ...; aws_sdk_*, aws_config
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    // hyper, hyper_util
    "hyper",
    "h2",
    "reqwest",
    "rustls",
];

/// The cap on [`CAPPED_TARGETS`]; everything else passes to the level filter.
pub fn payload_cap() -> Targets {
    CAPPED_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, target| targets.with_target(*target, LevelFilter::INFO),
    )
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let level = match level.to_ascii_lowercase() {
        // Lambda's levels include FATAL, which tracing calls error.
        l if l == "fatal" => "error".to_owned(),
        l => l,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_target(false)
            .without_time()
    });
    let text_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .without_time()
            .with_ansi(std::io::stdout().is_terminal())
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(payload_cap())
        .with(json_layer)
        .with(text_layer)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn payload_crates_stay_at_info_whatever_is_asked() {
        let cap = payload_cap();
        for target in [
            "lambda_runtime::layers::api_response",
            "lambda_http",
            "lambda_runtime_api_client",
            "aws_smithy_runtime::client::orchestrator",
            "aws_sdk_secretsmanager",
            "hyper_util::client",
            "reqwest::connect",
        ] {
            assert!(!cap.would_enable(target, &Level::TRACE), "{target}");
            assert!(!cap.would_enable(target, &Level::DEBUG), "{target}");
            assert!(cap.would_enable(target, &Level::INFO), "{target}");
        }
        assert!(cap.would_enable("shared::login", &Level::TRACE));
        assert!(cap.would_enable("oauth_callback", &Level::DEBUG));
    }
}
