//! TikTok HTTP client: OAuth (Login Kit v2), the Content Posting endpoints and
//! the chunked FILE_UPLOAD transfer.

pub mod chunk_plan;
pub mod client;
pub mod config;
pub mod error;
pub mod oauth;
pub mod posting;
pub mod upload;

pub use chunk_plan::ChunkPlan;
pub use client::{ReadRetry, TikTokClient};
pub use config::{AppCredentials, Endpoints, PkceEncoding};
pub use error::{ApiErrorCode, ErrorClass, OAuthErrorCode, TikTokError};
pub use posting::{
    CreatorInfo, DirectPostInfo, FailReason, InitResponse, PhotoPost, PostMode, PrivacyLevel,
    PublishState, PublishStatus, VideoSource,
};
