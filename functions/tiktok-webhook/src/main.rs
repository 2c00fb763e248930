//! Lambda entry point: build the service once per cold start, then answer
//! each webhook delivery with it.

use lambda_http::{Error, Request, service_fn};
use shared::aws::AwsClients;
use tiktok_webhook::WebhookService;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs when Lambda's log format is JSON; never a raw event, even at trace.
    shared::logging::init();
    let aws = AwsClients::from_env().await;
    let service = WebhookService::from_env(&aws).await.map_err(|err| {
        // Said once, plainly, before the runtime reports the failed init.
        tracing::error!(error = %err, "tiktok-webhook cannot start");
        err
    })?;
    let service = &service;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(service.handle(request).await)
    }))
    .await
}
