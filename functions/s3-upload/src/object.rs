//! The object an event names: opened at the version the event named, and
//! the job a new upload of it makes.

use shared::forward::{Outcome, Retry, retry};
use shared::jobs::{JobKind, NewJob, ObjectVersion, PostTarget, Upload};
use shared::storage::{Pin, S3Object, StorageError};

use crate::events::ObjectRef;
use crate::service::UploadService;

/// What opening the event's object found.
enum Opened {
    Found(S3Object),
    /// The version the event named is no longer there; says why.
    Gone(String),
}

/// HEADs the version the event named (its version id, else `If-Match` on
/// its ETag), so the claim and every later read are of that version and
/// not of whatever replaced it. A version that is no longer the current
/// one (the owner deleted the object, leaving a delete marker, or uploaded
/// another version) is gone: the owner withdrew it.
async fn open(s3: &aws_sdk_s3::Client, object: &ObjectRef) -> Result<Opened, Retry> {
    let pin = match (&object.version_id, &object.e_tag) {
        (Some(version), _) => Pin::CurrentVersion(version),
        (None, Some(tag)) => Pin::ETag(tag),
        // A hand-made event without either: the current object.
        (None, None) => Pin::Current,
    };
    match S3Object::open_pinned(s3.clone(), &object.bucket, &object.key, pin).await {
        Ok(source) => Ok(Opened::Found(source)),
        Err(err @ (StorageError::NotFound { .. } | StorageError::VersionGone { .. })) => {
            tracing::info!(key = %object.key, error = %err, "the event's object is gone");
            Ok(Opened::Gone(err.to_string()))
        }
        Err(err) => Err(retry("read the object", err)),
    }
}

impl UploadService {
    /// Opens the event's object for a job of `kind`; a version gone since
    /// is handed to the forwarder (which cancels its job, or flags it when
    /// an init may have reached TikTok) and comes back as `Err(outcome)`.
    pub(crate) async fn open_or_gone(
        &self,
        object: &ObjectRef,
        alias: &str,
        kind: JobKind,
    ) -> Result<Result<S3Object, Outcome>, Retry> {
        match open(&self.s3, object).await? {
            Opened::Found(source) => Ok(Ok(source)),
            Opened::Gone(reason) => {
                let spec = JobSpec {
                    alias,
                    kind,
                    post: PostTarget::Draft,
                    caption: None,
                };
                let outcome = self
                    .forwarder
                    .source_gone(spec.of_event(object), reason)
                    .await?;
                Ok(Err(outcome))
            }
        }
    }
}

/// What a new job is, besides its object.
pub(crate) struct JobSpec<'a> {
    pub alias: &'a str,
    pub kind: JobKind,
    pub post: PostTarget,
    pub caption: Option<String>,
}

impl JobSpec<'_> {
    /// The job of the opened object (its version and size as HEAD saw them).
    pub(crate) fn of_object(self, source: &S3Object) -> NewJob {
        self.with(Upload {
            bucket: source.bucket().to_owned(),
            key: source.key().to_owned(),
            version: ObjectVersion::of(source.version_id(), source.e_tag()),
            size: source.size(),
        })
    }

    /// The job of an object that is gone (its version and size as the event
    /// named them).
    pub(crate) fn of_event(self, object: &ObjectRef) -> NewJob {
        self.with(Upload {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            version: ObjectVersion::of(object.version_id.as_deref(), object.e_tag.as_deref()),
            size: object.size.unwrap_or(0),
        })
    }

    fn with(self, upload: Upload) -> NewJob {
        NewJob {
            upload,
            alias: Some(self.alias.to_owned()),
            open_id: None,
            kind: self.kind,
            post: self.post,
            caption: self.caption,
        }
    }
}
