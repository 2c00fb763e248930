//! AWS SDK clients built from one shared configuration.
//!
//! The SDK reads `AWS_ENDPOINT_URL` (and the per-service variants) by itself;
//! that is how the same binaries reach moto on loopback in tests and AWS in
//! production. S3 behind an endpoint override needs path-style addressing,
//! because `bucket.127.0.0.1` does not resolve.

use aws_config::{BehaviorVersion, SdkConfig};

/// The three clients every function may need. Build once per cold start.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// S3, with path-style addressing where an endpoint is set (moto).
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB: the one table of jobs, accounts, states and leases.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Secrets Manager: one secret of tokens per account, the app secret.
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    /// Loads region, credentials and endpoint from the environment, as the
    /// Lambda runtime provides them.
    pub async fn from_env() -> Self {
        let config = load_config().await;
        Self::from_config(&config)
    }

    /// The clients of an SDK configuration loaded already (one load serves
    /// these and any other client the function needs).
    pub fn from_config(config: &SdkConfig) -> Self {
        Self {
            s3: s3_client(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

/// The SDK configuration from the environment.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An S3 client; path-style when an endpoint override is set.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let builder =
        aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Formats an SDK error with its code and message: the SDK's own `Display`
/// says only "service error".
pub fn describe_sdk_error<E: std::error::Error>(err: &E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(err).to_string()
}
