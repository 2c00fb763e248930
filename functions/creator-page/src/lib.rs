//! The creator's page: `GET /creator/<token>` on the deployment's HTTP API.
//!
//! `tiktok-drafts link --account alice` makes the link; the creator opens it
//! on her phone and sees her uploads of the last 30 days, newest first,
//! where each stands in plain words, and the caption of each inbox video
//! with a Copy button (TikTok leaves it out of inbox videos). A small,
//! server-rendered page: no framework, one request, readable without
//! JavaScript.
//!
//! - [`service`]: the request: the signed link, the account, one page of
//!   jobs, the headers;
//! - [`page`]: the HTML, every value escaped;
//! - [`assets`]: the inline style and script, allowed by their hashes.

pub mod assets;
pub mod config;
pub mod page;
pub mod service;

pub use config::PageConfig;
pub use service::PageService;
