//! The shared library's integration tests (captions, chunk plans, photo
//! conversion, HEIC, the video probe, malformed input), as one test binary
//! instead of one per file. The media tests stay inside a `mod media` of
//! their own, so `cargo test -p tiktok-drafts-shared media` still selects them.

mod caption_props;
mod chunk_plan_props;
mod media_convert;
mod media_heic;
mod media_malformed;
mod media_probe;
