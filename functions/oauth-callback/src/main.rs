//! Lambda entry point: build the service once per cold start, then answer
//! each HTTP request with it.

use lambda_http::{Error, Request, service_fn};
use oauth_callback::LoginService;
use shared::aws::AwsClients;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs when Lambda's log format is JSON; never a raw event, even at trace.
    shared::logging::init();
    let aws = AwsClients::from_env().await;
    let service = LoginService::from_env(&aws).await.map_err(|err| {
        // Said once, plainly, before the runtime reports the failed init.
        tracing::error!(error = %err, "oauth-callback cannot start");
        err
    })?;
    let service = &service;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(service.handle(request).await)
    }))
    .await
}
