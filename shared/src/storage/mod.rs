//! Storage: where the bytes come from and where converted media goes.
//!
//! - [`source`]: byte ranges of a video, from a local file or memory, behind
//!   the [`ChunkSource`] trait the chunked upload reads through;
//! - [`s3`]: an S3 object pinned to one version, a [`ChunkSource`] too;
//! - [`media_folder`]: the `media/` prefix TikTok pulls converted photos and
//!   video copies from, and how things are named and written there.
//!
//! Nothing here knows TikTok: the TikTok client reads sources, not the
//! other way round.

pub mod media_folder;
pub mod s3;
pub mod source;

pub use s3::{Pin, S3Object, StorageError};
pub use source::{BytesSource, ChunkSource, FileSource, SourceError};
