//! The upload function: S3 `ObjectCreated` (through SQS) to a TikTok draft.
//!
//! It keeps what is S3-event specific; the upload itself (claim, lease,
//! account, slot, token, init once, send or hand over) is the shared use
//! case, [`shared::forward`], which the CLI runs too. [`events`] finds the
//! objects an event names, [`keys`] says what each key asks for, `object`
//! opens the version an event named, [`video`] and [`slideshow`] add what
//! is S3-specific about each kind (captions from metadata or a sidecar,
//! direct posts asked for in metadata, the server-side copy TikTok pulls,
//! manifests and their images), and [`service`] ties them together for one
//! invocation (the SQS batch, redelivery, the Lambda error).

pub mod config;
pub mod events;
pub mod keys;
mod object;
pub mod service;
pub mod slideshow;
pub mod video;
