//! The simulator's API over HTTP (plain reqwest calls, no project client), as
//! one test binary instead of one per file; `common` holds the helpers the
//! modules share.

mod common;

mod oauth;
mod posting;
mod pull;
mod seed;
mod upload;
mod video_checks;
mod webhooks;
