//! Step 8 (local stack): the events function fed as Lambda's DynamoDB
//! Streams event source mapping feeds it (the table's stream polled,
//! filtered and batched), and the events it published read back from the
//! stack's bus through a rule to an SQS queue. The stream is then read
//! again from its start, as a replay: it must publish nothing new.

use tiktok_drafts_tests::bus::BusTap;
use tiktok_drafts_tests::stream::{MappingSettings, PollSummary, StreamPoller};
use tokio::sync::Mutex;

use crate::DemoResult;
use crate::cli::short_id;
use crate::stack::Stack;
use tiktok_drafts_tests::lambda::LambdaFunction;

/// What reads the stream and the bus; made before the jobs change, so that
/// the bus's rule is there when the first event is put.
pub struct EventsOut {
    poller: StreamPoller,
    tap: BusTap,
}

impl EventsOut {
    /// `None` on a stack made by hand: it has no stream and no bus.
    pub async fn watch(stack: &Stack) -> DemoResult<Option<Self>> {
        let Some(template) = &stack.template else {
            return Ok(None);
        };
        let bus = template
            .output("EventBusName")
            .map_err(|e| format!("the stack's event bus: {e}"))?;
        let (_, function) = template.function_running("events")?;
        let mapping = function
            .events
            .iter()
            .find(|e| e.kind == "DynamoDB")
            .ok_or("the events function has no DynamoDB event")?;
        let batch_size = mapping
            .batch_size
            .and_then(|b| usize::try_from(b).ok())
            .ok_or("the events function's stream has no batch size")?;
        // -1 (retry until the record expires) is a day of retries; here a
        // batch that fails that often is as good as lost.
        let max_retries = mapping
            .maximum_retry_attempts
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(10_000);
        let sdk = shared::aws::load_config().await;
        let tap = BusTap::new(&sdk, bus, events::SOURCE).await?;
        let poller = StreamPoller::for_table(
            &sdk,
            &stack.table,
            MappingSettings {
                batch_size,
                max_retries,
                // The template's filter criteria (a test keeps them equal).
                filters: events::FILTER_PATTERNS
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
            },
        )
        .await?;
        // The mapping's on-failure destination: a batch that keeps failing
        // is recorded there, as Lambda records it.
        let dead_letters = template
            .resources
            .get("EventsDeadLetterQueue")
            .ok_or("the stack has no EventsDeadLetterQueue")?;
        let poller = poller.with_on_failure(stack.sqs.clone(), dead_letters.physical_id.clone());
        Ok(Some(Self { poller, tap }))
    }

    /// Delivers what is new on the stream, prints the events that reached
    /// the bus (one line each: kind, job, status), then replays the stream
    /// and prints what that published (nothing, when events are once).
    pub async fn publish(&mut self, function: &Mutex<LambdaFunction>) -> DemoResult<()> {
        println!(
            "== the table's stream -> events -> EventBridge (as Lambda's event source mapping polls)"
        );
        let mut function = function.lock().await;
        let polled = self.poller.poll(&mut *function).await?;
        print_poll("stream -> events  ", &polled);
        for event in self.tap.drain().await? {
            // Read as the documented schema: an event that does not fit it
            // fails the demo.
            let detail: events::Detail = serde_json::from_value(event["detail"].clone())
                .map_err(|e| format!("an event off the documented schema ({e}): {event}"))?;
            let (job, file) = detail
                .upload
                .as_ref()
                .map_or(("-", "-"), |u| (u.job_id.as_str(), u.file.as_str()));
            println!(
                "    event             {:<22} job {}  status {:<10} {file}",
                detail.kind.as_str(),
                short_id(job),
                detail.status,
            );
        }
        self.poller.rewind();
        let replayed = self.poller.poll(&mut *function).await?;
        print_poll("replay            ", &replayed);
        let again = self.tap.drain().await?;
        println!("    replayed stream   {} new event(s)", again.len());
        Ok(())
    }
}

fn print_poll(what: &str, polled: &PollSummary) {
    println!(
        "    {what}{} record(s) read, {} filtered out, {} invocation(s), {} retried, {} to the dead-letter queue",
        polled.records_read,
        polled.records_filtered_out,
        polled.invocations,
        polled.retried_records,
        polled.batches_discarded
    );
}
