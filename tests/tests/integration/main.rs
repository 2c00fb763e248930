//! The project's integration tests against local AWS (moto) and the TikTok
//! simulator, as one test binary: one link of the AWS SDK instead of one per
//! file. Each module was a test binary of its own; run one with
//! `cargo test -p tiktok-drafts-tests --test integration template_policy`.
//!
//! The log capture (`tiktok_drafts_tests::capture_logs`, used by `job_store`
//! and `token_store`) installs the one global subscriber of this process
//! once; it now also sees the other modules' logs, which only widens what
//! their no-secret-in-the-logs checks search.

mod accounts;
mod app_secret;
mod chunk_plan_vs_sim;
mod invites_and_states;
mod job_store;
mod local_aws;
mod template_policy;
mod template_stack;
mod tiktok_oauth;
mod tiktok_posting;
mod tiktok_upload;
mod token_store;
