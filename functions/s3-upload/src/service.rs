//! One invocation: the event's objects, each routed and forwarded.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use shared::app_secret::tiktok_client;
use shared::aws::AwsClients;
use shared::backoff::Backoff;
use shared::clock::Clock;
use shared::forward::{Forwarder, Outcome, Retry};
use shared::tiktok::upload::ChunkRetryPolicy;

use crate::config::UploadConfig;
use crate::events::{EventError, Incoming, ObjectRef, objects_in_message, objects_in_s3_event};
use crate::keys::{Route, UploadKey, manifest_folder_alias, route};

/// Why the function could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] shared::tiktok::config::ConfigError),
    #[error(transparent)]
    Client(#[from] shared::app_secret::ClientSetupError),
    #[error(transparent)]
    Forwarder(#[from] shared::forward::BuildError),
}

/// Why an invocation failed as a whole, as Lambda reports it (`errorType`
/// says which kind; the message says what). An SQS batch never fails as a
/// whole: its messages to retry are reported one by one.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is not one this function takes; delivering it again will
    /// not help.
    #[error(transparent)]
    Event(#[from] EventError),
    /// An object of a direct S3 event should be tried again.
    #[error(transparent)]
    Retry(#[from] Retry),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(err: HandlerError) -> Self {
        let error_type = match &err {
            HandlerError::Event(_) => "UnreadableEvent",
            HandlerError::Retry(_) => "RetryLater",
        };
        Self {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// Everything an invocation needs, built once per cold start.
pub struct UploadService {
    pub(crate) config: UploadConfig,
    pub(crate) forwarder: Forwarder,
    pub(crate) s3: aws_sdk_s3::Client,
    /// Where messages to retry get a short visibility; see
    /// [`UploadService::with_redelivery`].
    redelivery: Option<Redelivery>,
}

/// The upload queue, as the function reaches it to bring retries back soon.
struct Redelivery {
    sqs: aws_sdk_sqs::Client,
    /// `None`: each message's `eventSourceARN` names it.
    queue_url: Option<String>,
    delay: RedeliveryDelay,
}

/// How long a retried message stays away after its `receives`-th delivery,
/// unless the failure says (a slideshow waiting for its images): `base`
/// doubling, at most `cap`. By default 30 s doubling to 10 minutes, so the
/// queue's five deliveries end within about eight minutes, well inside the
/// upload URL's hour and the checker's 30-minute stuck mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeliveryDelay(pub Backoff);

impl Default for RedeliveryDelay {
    fn default() -> Self {
        Self(Backoff::new(
            Duration::from_secs(30),
            Duration::from_secs(600),
        ))
    }
}

impl RedeliveryDelay {
    /// Back at once (tests that check the message returns).
    pub fn immediate() -> Self {
        Self(Backoff::none())
    }

    /// The delay after the `receives`-th delivery (1 for the first). Not
    /// jittered: SQS spreads deliveries already, and the delay is logged.
    pub fn after(&self, receives: u32) -> Duration {
        self.0.step(receives.saturating_sub(1))
    }
}

impl UploadService {
    /// Builds the service for `config`: the TikTok app's credentials are
    /// read once, here.
    pub async fn new(
        config: UploadConfig,
        aws: &AwsClients,
        clock: Clock,
    ) -> Result<Self, StartupError> {
        let tiktok = tiktok_client(
            &aws.secrets,
            &config.app_secret_id,
            config.endpoints.clone(),
        )
        .await?;
        let mut forwarder =
            Forwarder::for_deployment(aws, tiktok, &config.table, &config.secrets_prefix, clock)?;
        forwarder.chunk_size = config.chunk_size;
        Ok(Self {
            config,
            forwarder,
            s3: aws.s3.clone(),
            redelivery: None,
        })
    }

    /// Lets the service set a short visibility on SQS messages to retry,
    /// on `queue_url` (else the queue each message's `eventSourceARN`
    /// names). Without it a retried message comes back only after the
    /// queue's visibility timeout; the Lambda entry point always sets it.
    pub fn with_redelivery(mut self, sqs: aws_sdk_sqs::Client, queue_url: Option<String>) -> Self {
        self.redelivery = Some(Redelivery {
            sqs,
            queue_url,
            delay: RedeliveryDelay::default(),
        });
        self
    }

    /// Other redelivery delays than [`RedeliveryDelay::default`]; only
    /// with [`UploadService::with_redelivery`].
    pub fn with_redelivery_delay(mut self, delay: RedeliveryDelay) -> Self {
        if let Some(redelivery) = &mut self.redelivery {
            redelivery.delay = delay;
        }
        self
    }

    /// Another retry policy for chunk PUTs (tests use one without waits).
    pub fn with_upload_retry(mut self, policy: ChunkRetryPolicy) -> Self {
        // Building the same client again cannot fail where the first one
        // did not; should it, the default policy stays.
        if let Ok(forwarder) = self.forwarder.clone().with_upload_retry(policy) {
            self.forwarder = forwarder;
        }
        self
    }

    /// Handles one object. `Err` means "deliver it again".
    pub async fn handle_object(&self, object: &ObjectRef) -> Result<Option<Outcome>, Retry> {
        let default_account = self.config.default_account.as_deref();
        let folder_is_alias = match manifest_folder_alias(&object.key, default_account) {
            Some(alias) => self
                .forwarder
                .accounts
                .alias_binding(alias)
                .await
                .map_err(|e| shared::forward::retry("look up an alias", e))?
                .is_some(),
            None => false,
        };
        match route(&object.key, default_account, folder_is_alias) {
            Route::Ignore(reason) => {
                tracing::debug!(key = %object.key, reason, "ignored");
                Ok(None)
            }
            Route::Reject(message) => {
                // No account, no job to hang it on: the log is where it shows.
                tracing::warn!(key = %object.key, message = %message, "upload key refused");
                Ok(None)
            }
            Route::Job(UploadKey::Video { account, .. }) => {
                self.forward_video(object, &account).await.map(Some)
            }
            Route::Job(UploadKey::Slideshow { account, .. }) => {
                self.forward_slideshow(object, &account).await.map(Some)
            }
        }
    }

    /// Handles an SQS batch (reporting the messages to retry) or a direct
    /// S3 event (failing the invocation if any object should be retried).
    pub async fn handle_event(
        &self,
        event: serde_json::Value,
    ) -> Result<SqsBatchResponse, HandlerError> {
        let incoming = Incoming::parse(event)?;
        let mut response = SqsBatchResponse::default();
        match incoming {
            Incoming::Sqs(batch) => {
                for message in &batch.records {
                    let id = message.message_id.clone().unwrap_or_default();
                    let objects = match objects_in_message(message) {
                        Ok(o) => o,
                        Err(err) => {
                            // Redelivery cannot fix it; the dead-letter queue
                            // would only hide it. Logged and dropped.
                            tracing::error!(message_id = %id, error = %err, "unreadable message dropped");
                            continue;
                        }
                    };
                    for object in &objects {
                        if let Err(err) = self.handle_object(object).await {
                            tracing::warn!(message_id = %id, key = %object.key, error = %err, "will be retried");
                            self.come_back_soon(message, &err).await;
                            let mut failure = BatchItemFailure::default();
                            failure.item_identifier = id.clone();
                            response.batch_item_failures.push(failure);
                            break;
                        }
                    }
                }
            }
            Incoming::S3(event) => {
                let objects = objects_in_s3_event(&event)?;
                for object in &objects {
                    self.handle_object(object).await?;
                }
            }
        }
        Ok(response)
    }
}

impl UploadService {
    /// Makes a message to retry visible again after a short delay. The
    /// queue's own visibility timeout has to cover the function's longest
    /// run, far longer than a retry should wait (the upload URL lives an
    /// hour, and the checker flags a job with no progress for 30 minutes
    /// as stuck). If this fails, the queue's timeout still brings it back.
    async fn come_back_soon(&self, message: &SqsMessage, err: &Retry) {
        let id = message.message_id.as_deref().unwrap_or_default();
        let Some(redelivery) = &self.redelivery else {
            tracing::warn!(message_id = %id, "no SQS client; the message comes back after the queue's visibility timeout");
            return;
        };
        let Some(receipt) = message.receipt_handle.as_deref() else {
            tracing::warn!(message_id = %id, "no receipt handle; the message comes back after the queue's visibility timeout");
            return;
        };
        let queue_url = redelivery.queue_url.clone().or_else(|| {
            message
                .event_source_arn
                .as_deref()
                .and_then(queue_url_from_arn)
        });
        let Some(queue_url) = queue_url else {
            tracing::warn!(message_id = %id, "no queue URL (UPLOAD_QUEUE_URL or eventSourceARN); the message comes back after the queue's visibility timeout");
            return;
        };
        let receives = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(1);
        let delay = err
            .after
            .unwrap_or_else(|| redelivery.delay.after(receives))
            .min(MAX_VISIBILITY);
        let seconds = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
        match redelivery
            .sqs
            .change_message_visibility()
            .queue_url(&queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(message_id = %id, receives, delay_secs = seconds, "message comes back after a short delay");
            }
            Err(e) => {
                tracing::warn!(message_id = %id, error = %shared::aws::describe_sdk_error(&e), "could not shorten the message's visibility; it comes back after the queue's visibility timeout");
            }
        }
    }
}

/// SQS's longest visibility timeout, 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// The URL of the queue an `eventSourceARN` names
/// (`arn:<partition>:sqs:<region>:<account>:<name>`).
pub fn queue_url_from_arn(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if region.is_empty() || account.is_empty() || name.is_empty() {
        return None;
    }
    let domain = match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_come_back_within_minutes() {
        let delay = RedeliveryDelay::default();
        assert_eq!(delay.after(0), Duration::from_secs(30));
        assert_eq!(delay.after(1), Duration::from_secs(30));
        assert_eq!(delay.after(2), Duration::from_secs(60));
        assert_eq!(delay.after(4), Duration::from_secs(240));
        assert_eq!(delay.after(50), Duration::from_secs(600));
        assert_eq!(RedeliveryDelay::immediate().after(3), Duration::ZERO);
        let total: Duration = (1..5).map(|n| delay.after(n)).sum();
        assert!(total < Duration::from_secs(30 * 60), "{total:?}");
    }

    #[test]
    fn the_queue_url_comes_from_the_event_source_arn() {
        assert_eq!(
            queue_url_from_arn("arn:aws:sqs:us-east-1:123456789012:tiktok-drafts-uploads")
                .as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123456789012/tiktok-drafts-uploads")
        );
        assert_eq!(
            queue_url_from_arn("arn:aws-cn:sqs:cn-north-1:1:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/1/q")
        );
        for bad in [
            "",
            "arn:aws:s3:::bucket",
            "arn:aws:sqs:us-east-1:1",
            "arn:aws:sqs::1:q",
        ] {
            assert_eq!(queue_url_from_arn(bad), None, "{bad}");
        }
    }
}
