//! The status checker's tests (its run against local AWS and the TikTok
//! simulator, and its real binary under the Lambda emulator), as one test
//! binary instead of one per file.
//!
//! The log capture follow_up uses (`tiktok_drafts_tests::capture_logs`)
//! installs the process's one global subscriber once; it now also sees
//! lambda_binary's logs, which only widens what its no-token checks search.

mod follow_up;
mod lambda_binary;
