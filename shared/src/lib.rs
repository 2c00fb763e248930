//! The common crate of tiktok-drafts.
//!
//! Everything the Lambda functions, the CLI and the tests share lives here, so
//! that the functions themselves stay thin. One home for each concept:
//!
//! - the upload use case, run by the upload function and the CLI alike:
//!   [`forward`] (claim, lease, slot, token, init once, send or hand over);
//! - TikTok: its HTTP client and API types ([`tiktok`]), the app's client
//!   secret ([`app_secret`]), caption rules ([`caption`]), signed webhook
//!   events ([`webhook`]);
//! - state in the one DynamoDB table: the table itself and its conditional
//!   writes ([`table`]), jobs and their state machine ([`jobs`]), connected
//!   accounts ([`accounts`]), tokens on Secrets Manager ([`tokens`]), leases
//!   ([`lease`]);
//! - connecting an account: invitations ([`invite`]), the login's single-use
//!   states ([`login_state`]) and the login itself ([`login`]);
//! - telling people: signed links to the creator's page ([`creator_link`]),
//!   where an upload stands in plain words ([`plain_words`]), escaping for
//!   server-rendered pages ([`html`]);
//! - media: type detection, conversion and manifests ([`media`]); S3 and the
//!   byte sources an upload reads from ([`storage`]), S3 metadata decoding
//!   ([`s3_metadata`]);
//! - plumbing: the AWS client set-up ([`aws`]), time ([`clock`]), the one
//!   exponential backoff ([`backoff`]), and the [`Secret`] type that keeps
//!   tokens out of logs.

// Every public item of the shared crate is documented, and new ones must be.
#![warn(missing_docs)]

pub mod accounts;
pub mod app_secret;
pub mod aws;
pub mod backoff;
pub mod caption;
pub mod clock;
pub mod creator_link;
pub mod forward;
pub mod html;
pub mod invite;
pub mod jobs;
pub mod lease;
pub mod logging;
pub mod login;
pub mod login_state;
pub mod media;
pub mod plain_words;
pub mod s3_metadata;
pub mod secret;
pub mod storage;
pub mod table;
pub mod tiktok;
pub mod tokens;
pub mod webhook;

pub use secret::Secret;
