//! The upload function: S3 `ObjectCreated` (through SQS) to a TikTok draft.
//!
//! What is here so far is the plain code of its front door: which objects an
//! event names ([`events`]) and what each key asks for ([`keys`]).

pub mod events;
pub mod keys;
