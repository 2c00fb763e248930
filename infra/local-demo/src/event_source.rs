//! What Lambda's SQS event source mapping does for the upload function:
//! receive a batch from the upload queue, invoke the function with it,
//! delete the messages it handled and leave the ones it reports in
//! `batchItemFailures` for a later delivery (they come back when their
//! visibility ends, and go to the dead-letter queue after five).

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::MessageSystemAttributeName;
use shared::aws::describe_sdk_error;

use crate::DemoResult;
use crate::functions::{Functions, invoke};
use crate::stack::Stack;
use tiktok_drafts_tests::events::{SqsRecord, sqs_batch};

/// What one poll did.
#[derive(Debug, Default)]
pub struct Delivered {
    pub messages: usize,
    pub retried: usize,
}

/// Receives and delivers batches until the queue has been empty for a
/// moment and nothing is waiting to come back, or `patience` runs out.
pub async fn drain(
    stack: &Stack,
    functions: &Functions,
    patience: Duration,
) -> DemoResult<Delivered> {
    let until = Instant::now() + patience;
    let mut total = Delivered::default();
    let mut empty_polls = 0;
    while Instant::now() < until {
        let batch = deliver_one_batch(stack, functions).await?;
        total.messages += batch.messages;
        total.retried += batch.retried;
        if batch.messages == 0 {
            empty_polls += 1;
            if empty_polls >= 2 && in_flight(stack).await? == 0 {
                return Ok(total);
            }
        } else {
            empty_polls = 0;
        }
    }
    Err(format!(
        "the upload queue did not drain within {} s",
        patience.as_secs()
    ))
}

async fn deliver_one_batch(stack: &Stack, functions: &Functions) -> DemoResult<Delivered> {
    let received = stack
        .sqs
        .receive_message()
        .queue_url(&stack.queue_url)
        .max_number_of_messages(stack.upload_batch_size)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| format!("receive from the upload queue: {}", describe_sdk_error(&e)))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(Delivered::default());
    }
    let records: Vec<SqsRecord<'_>> = messages
        .iter()
        .map(|m| SqsRecord {
            message_id: m.message_id().unwrap_or_default(),
            receipt_handle: m.receipt_handle().unwrap_or_default(),
            body: m.body().unwrap_or_default(),
            md5_of_body: m.md5_of_body().unwrap_or_default(),
            attributes: serde_json::Value::Object(
                m.attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::String(v.clone())))
                    .collect(),
            ),
        })
        .collect();
    let event = sqs_batch(&stack.queue_arn, &stack.region, &records);
    let answer = invoke("s3-upload", &functions.upload, &event).await?.body;
    let failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    println!(
        "    SQS -> s3-upload  {} message(s), {} to deliver again",
        records.len(),
        failed.len()
    );
    for record in records.iter().filter(|r| !failed.contains(&r.message_id)) {
        stack
            .sqs
            .delete_message()
            .queue_url(&stack.queue_url)
            .receipt_handle(record.receipt_handle)
            .send()
            .await
            .map_err(|e| format!("delete a handled message: {}", describe_sdk_error(&e)))?;
    }
    Ok(Delivered {
        messages: records.len(),
        retried: failed.len(),
    })
}

/// Messages received but neither deleted nor visible again yet.
async fn in_flight(stack: &Stack) -> DemoResult<u64> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&stack.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| format!("read the upload queue: {}", describe_sdk_error(&e)))?;
    let count = |name: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            + count(QueueAttributeName::ApproximateNumberOfMessages),
    )
}
