//! Reading what reaches an EventBridge bus on the local stack: a rule that
//! sends every event of one `source` to an SQS queue, and the queue drained.
//! How the events function's test and the demo see the events it publishes.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

pub struct BusTap {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl BusTap {
    /// Makes the bus `bus` (unless it exists), a queue, and a rule on the
    /// bus that sends every event from `source` to the queue.
    pub async fn new(sdk: &aws_config::SdkConfig, bus: &str, source: &str) -> Result<Self, String> {
        let fail = |what: &str, e: String| format!("{what}: {e}");
        let eventbridge = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        if let Err(err) = eventbridge.create_event_bus().name(bus).send().await
            && !err
                .as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception())
        {
            return Err(fail(
                "create the event bus",
                shared::aws::describe_sdk_error(&err),
            ));
        }
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{bus}-tap"))
            .send()
            .await
            .map_err(|e| fail("create the tap queue", shared::aws::describe_sdk_error(&e)))?
            .queue_url
            .unwrap_or_default();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| fail("read the tap queue", shared::aws::describe_sdk_error(&e)))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_default();
        eventbridge
            .put_rule()
            .name("tap")
            .event_bus_name(bus)
            .event_pattern(json!({"source": [source]}).to_string())
            .send()
            .await
            .map_err(|e| fail("put the tap rule", shared::aws::describe_sdk_error(&e)))?;
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("tap-queue")
            .arn(queue_arn)
            .build()
            .map_err(|e| fail("the tap target", e.to_string()))?;
        eventbridge
            .put_targets()
            .rule("tap")
            .event_bus_name(bus)
            .targets(target)
            .send()
            .await
            .map_err(|e| fail("put the tap target", shared::aws::describe_sdk_error(&e)))?;
        Ok(Self { sqs, queue_url })
    }

    /// Every event that reached the queue since the last call, oldest first
    /// as far as SQS keeps order.
    pub async fn drain(&self) -> Result<Vec<Value>, String> {
        let mut events = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "read the tap queue: {}",
                        shared::aws::describe_sdk_error(&e)
                    )
                })?;
            let messages = received.messages();
            if messages.is_empty() {
                return Ok(events);
            }
            for message in messages {
                let body = message.body().unwrap_or_default();
                events.push(
                    serde_json::from_str(body)
                        .map_err(|e| format!("an event that is not JSON ({e}): {body}"))?,
                );
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "delete from the tap queue: {}",
                            shared::aws::describe_sdk_error(&e)
                        )
                    })?;
            }
        }
    }
}
