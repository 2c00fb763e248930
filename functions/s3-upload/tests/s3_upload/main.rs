//! The upload function's tests (its event parsing, its handler against local
//! AWS and the TikTok simulator, and its real binary under the Lambda
//! emulator), as one test binary instead of one per file. The event fixtures
//! stay in tests/fixtures/, found through CARGO_MANIFEST_DIR.

mod deployment;
mod events;
mod forward_video;
mod heic_slideshow;
mod lambda_binary;
mod media_inputs;
mod video_probe;
