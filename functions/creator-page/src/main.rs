//! Lambda entry point: read the key once per cold start, then answer each
//! request for the creator's page.

use creator_page::{PageConfig, PageService};
use lambda_http::{Error, Request, service_fn};
use shared::aws::load_config;
use shared::invite::SigningKey;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // One setup for every function: no colour codes off a terminal, and the
    // creator link in the path never logged raw, even at trace.
    shared::logging::init();
    let config = PageConfig::from_env()
        .inspect_err(|err| tracing::error!(error = %err, "creator-page cannot start"))?;
    let sdk = load_config().await;
    let key = SigningKey::load(
        &aws_sdk_secretsmanager::Client::new(&sdk),
        &config.key_secret_id,
    )
    .await
    .inspect_err(|err| tracing::error!(error = %err, "creator-page cannot start"))?;
    let service = PageService::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table, key);
    let service = &service;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(service.handle(request).await)
    }))
    .await
}
