//! Photo posts: `POST /v2/post/publish/content/init/`, checked like TikTok checks them
//! and recorded as a publish that pulls its images.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    admit, check_banned, check_direct_post, check_pending_cap, check_verified_url, user_of,
};
use crate::api::{self, ApiError, Caller};
use crate::app::App;
use crate::pull;
use crate::rate_limit::Bucket;
use crate::state::{Publish, PublishKind, PublishStatus, Source, State};

const MAX_PHOTO_TITLE: usize = 90;
const MAX_PHOTO_DESCRIPTION: usize = 4000;
const MAX_PHOTOS: usize = 35;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentInitBody {
    media_type: String,
    post_mode: String,
    post_info: Option<Value>,
    source_info: PhotoSourceInfo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // like VideoPostInfo: serde checks the types, the raw JSON is stored
struct PhotoPostInfo {
    title: Option<String>,
    description: Option<String>,
    privacy_level: Option<String>,
    disable_comment: Option<bool>,
    auto_add_music: Option<bool>,
    brand_content_toggle: Option<bool>,
    brand_organic_toggle: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhotoSourceInfo {
    source: String,
    photo_images: Vec<String>,
    photo_cover_index: i64,
}

/// `POST /v2/post/publish/content/init/` (photo posts).
pub async fn content_init(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The scope depends on post_mode, so it is checked after parsing.
    let caller = admit(
        &app,
        &headers,
        Some(&["video.upload", "video.publish"]),
        Some((Bucket::ContentInit, |s| s.init_per_min)),
    )?;
    let body: ContentInitBody = api::parse_body(&body)?;
    let direct = photo_post_mode(&body)?;
    caller.require_scope(if direct {
        &["video.publish"]
    } else {
        &["video.upload"]
    })?;
    let (raw_post_info, privacy_level) = check_photo_post_info(body.post_info.clone(), direct)?;
    let cover = check_photo_source(&body.source_info)?;
    let photo = PhotoInit {
        direct,
        post_mode: body.post_mode,
        raw_post_info,
        privacy_level,
        photo_images: body.source_info.photo_images,
        cover,
    };
    let publish_id = app.update(|state| record_photo_publish(state, &caller, photo))?;
    pull::spawn(Arc::clone(&app), publish_id.clone());
    Ok(api::ok(Some(json!({"publish_id": publish_id}))))
}

/// A photo init that passed the checks that need no state.
struct PhotoInit {
    direct: bool,
    post_mode: String,
    /// `post_info` as sent (`{}` when absent): what the publish stores.
    raw_post_info: Value,
    /// Given for a direct post, where it is required; `None` for an upload.
    privacy_level: Option<String>,
    photo_images: Vec<String>,
    cover: usize,
}

/// Checks `media_type` and `post_mode`; true for a direct post, false for an upload.
fn photo_post_mode(body: &ContentInitBody) -> Result<bool, ApiError> {
    if body.media_type != "PHOTO" {
        return Err(ApiError::invalid_param("media_type must be PHOTO"));
    }
    match body.post_mode.as_str() {
        "DIRECT_POST" => Ok(true),
        "MEDIA_UPLOAD" => Ok(false),
        other => Err(ApiError::invalid_param(format!(
            "Unknown post_mode: {other}"
        ))),
    }
}

/// Checks a photo post's `post_info` (field types, title and description lengths, a
/// privacy level for a direct post). Gives the raw JSON to store (`{}` when absent) and
/// the privacy level of a direct post.
fn check_photo_post_info(
    post_info: Option<Value>,
    direct: bool,
) -> Result<(Value, Option<String>), ApiError> {
    let raw_post_info = post_info.unwrap_or_else(|| json!({}));
    let post_info: PhotoPostInfo = api::parse_value(raw_post_info.clone(), "post_info")?;
    if post_info
        .title
        .as_deref()
        .is_some_and(|t| api::utf16_len(t) > MAX_PHOTO_TITLE)
    {
        return Err(ApiError::invalid_param(format!(
            "post_info.title is longer than {MAX_PHOTO_TITLE} UTF-16 code units"
        )));
    }
    if post_info
        .description
        .as_deref()
        .is_some_and(|d| api::utf16_len(d) > MAX_PHOTO_DESCRIPTION)
    {
        return Err(ApiError::invalid_param(format!(
            "post_info.description is longer than {MAX_PHOTO_DESCRIPTION} UTF-16 code units"
        )));
    }
    let privacy_level = match (direct, post_info.privacy_level) {
        (true, Some(level)) => Some(level),
        (true, None) => {
            return Err(ApiError::invalid_param(
                "post_info.privacy_level is required for DIRECT_POST",
            ));
        }
        (false, _) => None,
    };
    Ok((raw_post_info, privacy_level))
}

/// Checks a photo post's `source_info`: pulled from URLs, 1 to [`MAX_PHOTOS`] of them, and
/// a cover index among them. Gives the cover index.
fn check_photo_source(source: &PhotoSourceInfo) -> Result<usize, ApiError> {
    if source.source != "PULL_FROM_URL" {
        return Err(ApiError::invalid_param(
            "photo source must be PULL_FROM_URL",
        ));
    }
    let count = source.photo_images.len();
    if !(1..=MAX_PHOTOS).contains(&count) {
        return Err(ApiError::invalid_param(format!(
            "photo_images must hold 1 to {MAX_PHOTOS} URLs"
        )));
    }
    usize::try_from(source.photo_cover_index)
        .ok()
        .filter(|&i| i < count)
        .ok_or_else(|| ApiError::invalid_param("photo_cover_index is out of range"))
}

/// The checks against the state (user, ban, direct-post rules, each URL's prefix, the
/// pending-share cap for an upload), then records the photo publish, downloading.
/// Gives its publish_id.
fn record_photo_publish(
    state: &mut State,
    caller: &Caller,
    photo: PhotoInit,
) -> Result<String, ApiError> {
    let user = user_of(state, caller)?;
    check_banned(&user)?;
    if let Some(level) = &photo.privacy_level {
        check_direct_post(state, &user, level)?;
    }
    for url in &photo.photo_images {
        check_verified_url(&state.settings, url)?;
    }
    if !photo.direct {
        check_pending_cap(state, &user.open_id)?;
    }
    let number = state.next_number();
    let now = state.now_ms();
    let publish_id = format!("p_pub_url~v2.{number}");
    let publish = Publish {
        publish_id: publish_id.clone(),
        open_id: user.open_id.clone(),
        kind: PublishKind::Photo,
        post_mode: photo.post_mode,
        source: Source::PullFromUrl,
        status: PublishStatus::ProcessingDownload,
        fail_reason: None,
        post_info: Some(photo.raw_post_info),
        video_size: None,
        chunk_size: None,
        total_chunk_count: None,
        uploaded_bytes: None,
        downloaded_bytes: Some(0),
        video_url: None,
        pull_urls: photo.photo_images,
        photo_cover_index: u32::try_from(photo.cover).ok(),
        sha256: None,
        media_format: None,
        images: Vec::new(),
        post_ids: Vec::new(),
        upload_id: None,
        media_ready: false,
        created_at_ms: now,
        updated_at_ms: now,
    };
    state.publishes.insert(publish_id.clone(), publish);
    Ok(publish_id)
}
