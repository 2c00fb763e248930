//! The `tiktok-drafts` command against local AWS (moto) and the TikTok
//! simulator, as one test binary (one link of the AWS SDK instead of one per
//! file); `common` is the test deployment the modules share.

mod common;

mod accounts;
mod connect;
mod invite;
mod link;
mod slideshow;
mod upload;
mod upload_probe;
