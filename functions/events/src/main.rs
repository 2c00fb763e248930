//! Lambda entry point: build the publisher once per cold start, then hand it
//! every batch of stream records.

use aws_lambda_events::event::dynamodb::Event;
use events::{EventsConfig, EventsService, Publisher};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::aws::load_config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // One setup for every function: no colour codes off a terminal, and the
    // stream records never logged raw, even at trace.
    shared::logging::init();
    let config = EventsConfig::from_env()
        .inspect_err(|err| tracing::error!(error = %err, "events cannot start"))?;
    let sdk = load_config().await;
    let publisher = Publisher::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &config.table,
        aws_sdk_eventbridge::Client::new(&sdk),
        &config.event_bus,
        config.marker_ttl,
    );
    let service = EventsService::new(publisher);
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        service
            .handle(event.payload)
            .await
            .map(|(response, _)| response)
    }))
    .await
}
