//! One S3 object, pinned to the version an event named, as a source of
//! byte ranges for the chunked upload.

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use bytes::Bytes;

use super::source::{ChunkSource, SourceError};
use crate::aws::describe_sdk_error;

/// Why an S3 object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Nothing is at that key now (a delete marker counts as nothing).
    #[error("s3://{bucket}/{key} does not exist")]
    NotFound {
        /// The object's bucket.
        bucket: String,
        /// The object's key.
        key: String,
    },
    /// The version asked for was deleted, or (in an unversioned bucket) the
    /// object was overwritten: what the event named is no longer there, and
    /// waiting will not bring it back.
    #[error("s3://{bucket}/{key} no longer has {version} (overwritten or deleted)")]
    VersionGone {
        /// The object's bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// `version <id>` or `ETag <tag>`, for messages.
        version: String,
    },
    /// Any other failure (permissions, throttling, network); it may pass.
    #[error("cannot read s3://{bucket}/{key}: {detail}")]
    Read {
        /// The object's bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// S3's error, described.
        detail: String,
    },
}

/// One version of one S3 object, read by ranged GETs. Every read is pinned to
/// the version (or, in an unversioned bucket, the ETag) seen when it was
/// opened, so an object overwritten during an upload fails the upload instead
/// of sending TikTok a mix of two files.
#[derive(Debug, Clone)]
pub struct S3Object {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    size: u64,
    version_id: Option<String>,
    e_tag: Option<String>,
    metadata: std::collections::HashMap<String, String>,
}

/// Which version of an object to open: the one an S3 event named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin<'a> {
    /// Whatever is current.
    Current,
    /// This version id (a versioned bucket), even once another version or
    /// a delete marker is on top of it.
    VersionId(&'a str),
    /// This version id while it is still the current one: once the owner
    /// deleted the object (a delete marker) or uploaded another version,
    /// it is gone, not read from the noncurrent version.
    CurrentVersion(&'a str),
    /// The object only while its ETag is this one (an unversioned bucket),
    /// with or without the quotes HeadObject puts around it.
    ETag(&'a str),
}

impl Pin<'_> {
    fn describe(self) -> String {
        match self {
            Pin::Current => "its current version".into(),
            Pin::VersionId(v) => format!("version {v}"),
            Pin::CurrentVersion(v) => format!("version {v} as its current version"),
            Pin::ETag(tag) => format!("ETag {}", tag.trim_matches('"')),
        }
    }
}

impl S3Object {
    /// Looks the current object up (HEAD) and pins its version.
    pub async fn open(
        client: aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
    ) -> Result<Self, StorageError> {
        Self::open_pinned(client, bucket, key, Pin::Current).await
    }

    /// Looks up the version `pin` names (HEAD with its version id, or
    /// `If-Match` on its ETag) and reads only that from then on. A version
    /// that is gone is [`StorageError::VersionGone`], not whatever replaced it.
    pub async fn open_pinned(
        client: aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        pin: Pin<'_>,
    ) -> Result<Self, StorageError> {
        let mut request = client.head_object().bucket(bucket).key(key);
        match pin {
            // The current object is HEADed and compared below: a delete
            // marker on top answers 404.
            Pin::Current | Pin::CurrentVersion(_) => {}
            Pin::VersionId(v) => request = request.version_id(v),
            Pin::ETag(tag) => request = request.if_match(quoted(tag)),
        }
        let head = request.send().await.map_err(|err| {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let not_found =
                status == Some(404) || err.as_service_error().is_some_and(|e| e.is_not_found());
            let version_gone = match pin {
                Pin::Current => false,
                // 404 for a deleted version (or a delete marker's), 412 for
                // an ETag that no longer matches.
                Pin::VersionId(_) | Pin::CurrentVersion(_) | Pin::ETag(_) => {
                    not_found || status == Some(412)
                }
            };
            if version_gone {
                StorageError::VersionGone {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version: pin.describe(),
                }
            } else if not_found {
                StorageError::NotFound {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }
            } else {
                StorageError::Read {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    detail: describe_sdk_error(&err),
                }
            }
        })?;
        if let Pin::CurrentVersion(wanted) = pin
            && head.version_id() != Some(wanted)
        {
            return Err(StorageError::VersionGone {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version: pin.describe(),
            });
        }
        let size = head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| StorageError::Read {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                detail: "HEAD gave no content length".into(),
            })?;
        Ok(Self {
            client,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size,
            // The null version (an unversioned or suspended bucket) is
            // replaced by every overwrite, so it pins nothing: the ETag does.
            version_id: head
                .version_id()
                .filter(|v| !v.is_empty() && *v != "null")
                .map(str::to_owned),
            e_tag: head.e_tag().map(str::to_owned),
            metadata: head.metadata().cloned().unwrap_or_default(),
        })
    }

    /// The object's length in bytes, from HEAD.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The bucket the object is in.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object's key, as given (not URL-encoded).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The version every read is pinned to; `None` in an unversioned (or
    /// suspended) bucket, where the ETag pins the reads instead.
    pub fn version_id(&self) -> Option<&str> {
        self.version_id.as_deref()
    }

    /// The object's ETag as HEAD returned it (quoted); `None` only if S3
    /// sent none.
    pub fn e_tag(&self) -> Option<&str> {
        self.e_tag.as_deref()
    }

    /// The object's user metadata (`x-amz-meta-*`), as HEAD returned it.
    pub fn metadata(&self) -> &std::collections::HashMap<String, String> {
        &self.metadata
    }
}

/// An ETag as `If-Match` wants it: quoted, whether or not it came quoted
/// (S3 events send it bare, HeadObject quoted).
fn quoted(tag: &str) -> String {
    format!("\"{}\"", tag.trim_matches('"'))
}

impl ChunkSource for S3Object {
    async fn read_range(&self, start: u64, end: u64) -> Result<Bytes, SourceError> {
        if start >= end || end > self.size {
            return Err(SourceError::permanent(format!(
                "range {start}..{end} is outside the {}-byte object",
                self.size
            )));
        }
        let mut request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={start}-{}", end - 1));
        if let Some(version) = &self.version_id {
            request = request.version_id(version);
        } else if let Some(tag) = &self.e_tag {
            request = request.if_match(quoted(tag));
        }
        let output = request.send().await.map_err(|err| {
            // 412: the object changed since it was opened; 404: it is gone.
            // Neither passes with time. Throttling and 5xx do.
            let permanent = err.as_service_error().is_some_and(|e| {
                matches!(
                    e.code(),
                    Some("PreconditionFailed" | "NoSuchKey" | "NoSuchVersion" | "InvalidRange")
                )
            }) || err
                .raw_response()
                .is_some_and(|r| matches!(r.status().as_u16(), 403 | 404 | 412 | 416));
            let message = format!("S3 ranged GET failed: {}", describe_sdk_error(&err));
            if permanent {
                SourceError::permanent(message)
            } else {
                SourceError::retryable(message)
            }
        })?;
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| SourceError::retryable(format!("S3 body read failed: {e}")))?
            .into_bytes();
        let expected = end - start;
        if body.len() as u64 != expected {
            return Err(SourceError::retryable(format!(
                "S3 returned {} bytes for a {expected}-byte range",
                body.len()
            )));
        }
        Ok(body)
    }
}
