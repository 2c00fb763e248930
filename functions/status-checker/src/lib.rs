//! The status checker: on a schedule, follows every unfinished upload at
//! TikTok, retries what failed for a passing reason, releases held uploads
//! as pending-draft slots free up, refreshes tokens before they expire and
//! flags what is stuck.
//!
//! Modules: `config` (environment), `checker` (one run, a file a part of
//! it), `rate_limit`
//! (TikTok's 30 status requests per minute per token, within a run),
//! `status_gate` (the same limit across runs), `upload_path` (sending a job
//! back through the upload queue) and `service` (building it all once per
//! cold start).

pub mod checker;
pub mod config;
pub mod rate_limit;
pub mod service;
pub mod status_gate;
pub mod upload_path;
