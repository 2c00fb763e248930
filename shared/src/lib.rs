//! The common crate of tiktok-drafts.
//!
//! Everything the Lambda functions, the CLI and the tests share lives here, so
//! that the functions themselves stay thin: the TikTok client ([`tiktok`]),
//! caption rules ([`caption`]), S3 metadata decoding ([`s3_metadata`]), the
//! AWS client set-up ([`aws`]) and the
//! [`Secret`] type that keeps tokens out of logs.

pub mod accounts;
pub mod app_secret;
pub mod aws;
pub mod caption;
pub mod creator_link;
pub mod html;
pub mod invite;
pub mod jobs;
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
