//! One invocation: the event's objects, each routed and forwarded.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use shared::accounts::Accounts;
use shared::app_secret::tiktok_client;
use shared::aws::AwsClients;
use shared::jobs::{Jobs, RetryPolicy as JobRetryPolicy};
use shared::tiktok::upload::{RetryPolicy, Uploader};
use shared::tokens::{Clock, LeaseTable, TokenManager};

use crate::config::UploadConfig;
use crate::events::{Incoming, ObjectRef, objects_in_message, objects_in_s3_event};
use crate::forwarder::{Forwarder, Outcome, Retry};
use crate::keys::{Route, Upload, route};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] shared::tiktok::config::ConfigError),
    #[error(transparent)]
    Client(#[from] shared::app_secret::ClientSetupError),
    #[error("cannot build the upload HTTP client: {0}")]
    Http(String),
}

pub struct UploadService {
    config: UploadConfig,
    forwarder: Forwarder,
    upload_http: reqwest::Client,
}

/// How long one chunk PUT may take; a whole-request timeout would have to
/// cover the largest chunk on the slowest link.
const CHUNK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl UploadService {
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
        // Chunk PUTs carry megabytes: no whole-request timeout, a generous
        // one per chunk instead.
        let upload_http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StartupError::Http(e.to_string()))?;
        let forwarder = Forwarder {
            s3: aws.s3.clone(),
            jobs: Jobs::new(aws.dynamodb.clone(), &config.table),
            accounts: Accounts::new(aws.dynamodb.clone(), &config.table),
            leases: LeaseTable::new(aws.dynamodb.clone(), &config.table),
            tokens: TokenManager::for_deployment(
                aws,
                tiktok.clone(),
                &config.secrets_prefix,
                &config.table,
            )
            .with_clock(clock.clone()),
            tiktok,
            uploader: Uploader::new(upload_http.clone(), RetryPolicy::default())
                .with_chunk_timeout(CHUNK_TIMEOUT),
            chunk_size: config.chunk_size,
            clock,
            job_retry: JobRetryPolicy::default(),
            media_urls: config.media_urls.clone(),
            image_grace: config.image_grace,
            convert_threads: config.convert_threads,
            video_transfer: config.video_transfer,
            direct_post_enabled: config.direct_post_enabled,
        };
        Ok(Self {
            config,
            forwarder,
            upload_http,
        })
    }

    /// Another retry policy for chunk PUTs (tests use one without waits).
    pub fn with_upload_retry(mut self, policy: RetryPolicy) -> Self {
        self.forwarder.uploader =
            Uploader::new(self.upload_http.clone(), policy).with_chunk_timeout(CHUNK_TIMEOUT);
        self
    }

    /// Handles one object. `Err` means "deliver it again".
    pub async fn handle_object(&self, object: &ObjectRef) -> Result<Option<Outcome>, Retry> {
        match route(&object.key, self.config.default_account.as_deref()) {
            Route::Ignore(reason) => {
                tracing::debug!(key = %object.key, reason, "ignored");
                Ok(None)
            }
            Route::Reject(message) => {
                // No account, no job to hang it on: the log is where it shows.
                tracing::warn!(key = %object.key, message = %message, "upload key refused");
                Ok(None)
            }
            Route::Job(Upload::Video { account, .. }) => self
                .forwarder
                .forward_video(object, &account)
                .await
                .map(Some),
            Route::Job(Upload::Slideshow { account, .. }) => self
                .forwarder
                .forward_slideshow(object, &account)
                .await
                .map(Some),
        }
    }

    /// Handles an SQS batch (reporting the messages to retry) or a direct
    /// S3 event (failing the invocation if any object should be retried).
    pub async fn handle_event(&self, event: serde_json::Value) -> Result<SqsBatchResponse, String> {
        let incoming = Incoming::parse(event).map_err(|e| e.to_string())?;
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
                            let mut failure = BatchItemFailure::default();
                            failure.item_identifier = id.clone();
                            response.batch_item_failures.push(failure);
                            break;
                        }
                    }
                }
            }
            Incoming::S3(event) => {
                let objects = objects_in_s3_event(&event).map_err(|e| e.to_string())?;
                for object in &objects {
                    self.handle_object(object)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(response)
    }
}
