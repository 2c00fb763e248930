//! The upload function: S3 `ObjectCreated` (through SQS) to a TikTok draft.
//!
//! [`events`] finds the objects an event names, [`keys`] says what each key
//! asks for, [`forwarder`] holds the steps every upload takes, [`video`] and
//! [`slideshow`] forward each kind to the creator's inbox, and [`service`]
//! ties them together for one invocation.

pub mod config;
pub mod events;
pub mod forwarder;
pub mod keys;
pub mod service;
pub mod slideshow;
pub mod video;
