//! The upload function: S3 `ObjectCreated` (through SQS) to a TikTok draft.
//!
//! [`events`] finds the objects an event names, [`keys`] says what each key
//! asks for, [`video`] forwards a video to the creator's inbox, and
//! [`service`] ties them together for one invocation.

pub mod config;
pub mod events;
pub mod keys;
pub mod service;
pub mod video;
