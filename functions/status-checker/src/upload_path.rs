//! Sending a job back through the upload path: a message on the upload
//! queue shaped exactly like the S3 notification that started it, so the
//! upload function handles a released job the way it handles a new object
//! (claim finds the job in `claimed`, then slot, token, init).

use aws_sdk_sqs::error::ProvideErrorMetadata as _;
use shared::jobs::{Job, ObjectVersion};

#[derive(Debug, thiserror::Error)]
#[error("cannot send job {job_id} back to the upload queue: {detail}")]
pub struct ResendError {
    pub job_id: String,
    pub detail: String,
}

/// Where released jobs go: the upload queue in SQS.
#[derive(Debug, Clone)]
pub struct SqsUploadPath {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsUploadPath {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            sqs,
            queue_url: queue_url.into(),
        }
    }

    /// Sends `job` back through the upload path.
    pub async fn resend(&self, job: &Job) -> Result<(), ResendError> {
        let body = s3_event_for(job).to_string();
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|err| ResendError {
                job_id: job.id.to_string(),
                detail: format!(
                    "{}: {}",
                    err.code().unwrap_or("error"),
                    err.message()
                        .map_or_else(|| shared::aws::describe_sdk_error(&err), str::to_owned)
                ),
            })?;
        tracing::info!(job_id = %job.id, "job sent back through the upload path");
        Ok(())
    }
}

/// Marks the records the checker writes, for whoever reads the queue.
pub const RELEASE_CONFIGURATION_ID: &str = "tiktok-drafts-release";

/// An S3 `ObjectCreated` event for the job's object. The key is encoded as
/// S3 encodes it (form encoding: `+` for a space), which the upload function
/// decodes.
pub fn s3_event_for(job: &Job) -> serde_json::Value {
    let key: String = url_form_encode(&job.upload.key);
    let mut object = serde_json::json!({
        "key": key,
        "size": job.upload.size,
        "sequencer": "0",
    });
    match &job.upload.version {
        ObjectVersion::VersionId(v) => {
            object["versionId"] = v.clone().into();
        }
        ObjectVersion::ETag(e) => {
            object["eTag"] = e.clone().into();
        }
    }
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "",
            "eventTime": job.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "eventName": "ObjectCreated:Put",
            "userIdentity": { "principalId": "tiktok-drafts-status-checker" },
            "requestParameters": { "sourceIPAddress": "" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": RELEASE_CONFIGURATION_ID,
                "bucket": {
                    "name": job.upload.bucket,
                    "ownerIdentity": { "principalId": "" },
                    "arn": format!("arn:aws:s3:::{}", job.upload.bucket),
                },
                "object": object,
            }
        }]
    })
}

fn url_form_encode(text: &str) -> String {
    // S3 leaves '/' as it is in event keys; the rest like a form.
    text.split('/')
        .map(form_urlencoded_part)
        .collect::<Vec<_>>()
        .join("/")
}

fn form_urlencoded_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        match byte {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_encodes_them() {
        assert_eq!(
            url_form_encode("uploads/alice/holiday clip été+1.mp4"),
            "uploads/alice/holiday+clip+%C3%A9t%C3%A9%2B1.mp4"
        );
    }
}
