//! Content Posting API: creator info, the three init endpoints (photo posts in [`photo`]),
//! status fetch and cancel.

use std::sync::Arc;

use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{self, ApiError, Caller, LimitOf};
use crate::app::App;
use crate::chunks::{CHUNK_ERROR_MESSAGE, ChunkPlan};
use crate::config::Settings;
use crate::pull;
use crate::rate_limit::Bucket;
use crate::state::{
    Publish, PublishKind, PublishStatus, Source, State, Upload, User, random_token, sha256_hex,
    url_without_query,
};

mod photo;

pub use photo::content_init;

const MAX_VIDEO_TITLE: usize = 2200;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoSourceInfo {
    source: String,
    video_size: Option<i64>,
    chunk_size: Option<i64>,
    total_chunk_count: Option<i64>,
    video_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxInitBody {
    source_info: VideoSourceInfo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectInitBody {
    post_info: Value,
    source_info: VideoSourceInfo,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields are checked for type by serde; the raw JSON is what is stored
struct VideoPostInfo {
    privacy_level: String,
    title: Option<String>,
    disable_duet: Option<bool>,
    disable_stitch: Option<bool>,
    disable_comment: Option<bool>,
    video_cover_timestamp_ms: Option<i32>,
    brand_content_toggle: Option<bool>,
    brand_organic_toggle: Option<bool>,
    is_aigc: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishIdBody {
    publish_id: String,
}

/// The empty body creator_info takes (absent or `{}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Where a video comes from, after validation.
enum VideoSource {
    File(ChunkPlan),
    Pull(String),
}

fn parse_video_source(info: VideoSourceInfo, settings: &Settings) -> Result<VideoSource, ApiError> {
    match info.source.as_str() {
        "FILE_UPLOAD" => {
            if info.video_url.is_some() {
                return Err(ApiError::invalid_param(
                    "video_url is only for PULL_FROM_URL",
                ));
            }
            let (Some(size), Some(chunk), Some(count)) =
                (info.video_size, info.chunk_size, info.total_chunk_count)
            else {
                return Err(ApiError::invalid_param(
                    "FILE_UPLOAD needs video_size, chunk_size and total_chunk_count",
                ));
            };
            ChunkPlan::validate(size, chunk, count, settings.max_video_bytes)
                .map(VideoSource::File)
                .map_err(|reason| {
                    tracing::debug!(reason, "chunk plan refused");
                    ApiError::invalid_params(CHUNK_ERROR_MESSAGE)
                })
        }
        "PULL_FROM_URL" => {
            if info.video_size.is_some()
                || info.chunk_size.is_some()
                || info.total_chunk_count.is_some()
            {
                return Err(ApiError::invalid_param(
                    "size fields are only for FILE_UPLOAD",
                ));
            }
            let url = info
                .video_url
                .filter(|u| !u.is_empty())
                .ok_or_else(|| ApiError::invalid_param("PULL_FROM_URL needs video_url"))?;
            Ok(VideoSource::Pull(url))
        }
        other => Err(ApiError::invalid_param(format!("Unknown source: {other}"))),
    }
}

/// The URL must start with a verified prefix, use https (unless plain http pulls are
/// allowed for local runs) and name a host, not an IP address.
fn check_verified_url(settings: &Settings, raw: &str) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::forbidden(
            "url_ownership_unverified",
            "The domain or URL prefix of the media URL is not verified for this app.",
        )
    };
    let url = url::Url::parse(raw).map_err(|_| refuse())?;
    let scheme_ok = url.scheme() == "https" || (settings.allow_http_pull && url.scheme() == "http");
    let host_ok = match url.host() {
        Some(url::Host::Domain(_)) => true,
        Some(_) => settings.allow_http_pull,
        None => false,
    };
    let prefix_ok = settings
        .verified_url_prefixes
        .iter()
        .any(|p| !p.is_empty() && raw.starts_with(p.as_str()));
    if scheme_ok && host_ok && prefix_ok {
        Ok(())
    } else {
        Err(refuse())
    }
}

fn check_banned(user: &User) -> Result<(), ApiError> {
    if user.banned {
        return Err(ApiError::forbidden(
            "spam_risk_user_banned_from_posting",
            "The user is banned from posting.",
        ));
    }
    Ok(())
}

/// Direct-post checks: privacy level offered to the creator, unaudited-client rules and
/// the 24 h posting cap.
fn check_direct_post(state: &State, user: &User, privacy_level: &str) -> Result<(), ApiError> {
    if !user
        .privacy_level_options
        .iter()
        .any(|p| p == privacy_level)
    {
        return Err(ApiError::forbidden(
            "privacy_level_option_mismatch",
            "privacy_level is not one of the creator's privacy_level_options.",
        ));
    }
    if state.settings.unaudited && (privacy_level != "SELF_ONLY" || !user.is_private) {
        return Err(ApiError::forbidden(
            "unaudited_client_can_only_post_to_private_accounts",
            "Unaudited clients can only post to a private account, with SELF_ONLY.",
        ));
    }
    if direct_posts_today(state, &user.open_id) >= state.settings.direct_post_cap as usize {
        return Err(ApiError::forbidden(
            "spam_risk_too_many_posts",
            "The user has made too many posts in the last 24 hours.",
        ));
    }
    Ok(())
}

fn direct_posts_today(state: &State, open_id: &str) -> usize {
    let since = state.now_ms() - DAY_MS;
    state
        .publishes
        .values()
        .filter(|p| {
            p.open_id == open_id
                && p.is_direct_post()
                && p.created_at_ms > since
                && p.status != PublishStatus::Failed
        })
        .count()
}

fn check_pending_cap(state: &State, open_id: &str) -> Result<(), ApiError> {
    let since = state.now_ms() - DAY_MS;
    let pending = state
        .publishes
        .values()
        .filter(|p| {
            p.open_id == open_id
                && p.is_inbox_share()
                && p.created_at_ms > since
                && p.status.holds_pending_slot()
        })
        .count();
    if pending >= state.settings.pending_share_cap as usize {
        return Err(ApiError::forbidden(
            "spam_risk_too_many_pending_share",
            "The user has too many pending shares in the last 24 hours.",
        ));
    }
    Ok(())
}

fn user_of(state: &State, caller: &Caller) -> Result<User, ApiError> {
    state
        .user(&caller.open_id)
        .cloned()
        .ok_or_else(ApiError::token_invalid)
}

/// The common start of every POST endpoint: token, scopes known up front, rate limit,
/// content type.
fn admit(
    app: &Arc<App>,
    headers: &HeaderMap,
    scopes: Option<&[&str]>,
    bucket: Option<(Bucket, LimitOf)>,
) -> Result<Caller, ApiError> {
    let caller = api::authenticate(app, headers)?;
    if let Some(scopes) = scopes {
        caller.require_scope(scopes)?;
    }
    if let Some((bucket, limit)) = bucket {
        api::rate_limit(app, &caller, bucket, limit)?;
    }
    api::require_json(headers)?;
    Ok(caller)
}

/// `POST /v2/post/publish/creator_info/query/`.
pub async fn creator_info(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admit(
        &app,
        &headers,
        Some(&["video.publish"]),
        Some((Bucket::CreatorInfo, |s| s.creator_info_per_min)),
    )?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let _: EmptyBody = api::parse_body(&body)?;
    }
    app.read(|state| {
        let user = user_of(state, &caller)?;
        // These come back with HTTP 200, which TikTok calls intentional.
        if user.banned {
            return Err(ApiError::new(
                StatusCode::OK,
                "spam_risk_user_banned_from_posting",
                "The user is banned from posting.",
            ));
        }
        if direct_posts_today(state, &user.open_id) >= state.settings.direct_post_cap as usize {
            return Err(ApiError::new(
                StatusCode::OK,
                "spam_risk_too_many_posts",
                "The user has made too many posts in the last 24 hours.",
            ));
        }
        Ok(api::ok(Some(json!({
            "creator_avatar_url": user.avatar_url,
            "creator_username": user.username,
            "creator_nickname": user.display_name,
            "privacy_level_options": user.privacy_level_options,
            "comment_disabled": user.comment_disabled,
            "duet_disabled": user.duet_disabled,
            "stitch_disabled": user.stitch_disabled,
            "max_video_post_duration_sec": user.max_video_post_duration_sec,
        }))))
    })
}

/// `POST /v2/post/publish/inbox/video/init/`.
pub async fn inbox_video_init(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admit(
        &app,
        &headers,
        Some(&["video.upload"]),
        Some((Bucket::InboxVideoInit, |s| s.init_per_min)),
    )?;
    let body: InboxInitBody = api::parse_body(&body)?;
    video_init(
        &app,
        &caller,
        PublishKind::InboxVideo,
        None,
        body.source_info,
    )
}

/// `POST /v2/post/publish/video/init/`.
pub async fn direct_video_init(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admit(
        &app,
        &headers,
        Some(&["video.publish"]),
        Some((Bucket::DirectVideoInit, |s| s.init_per_min)),
    )?;
    let body: DirectInitBody = api::parse_body(&body)?;
    let post_info: VideoPostInfo = api::parse_value(body.post_info.clone(), "post_info")?;
    if let Some(title) = &post_info.title
        && api::utf16_len(title) > MAX_VIDEO_TITLE
    {
        return Err(ApiError::invalid_param(format!(
            "post_info.title is longer than {MAX_VIDEO_TITLE} UTF-16 code units"
        )));
    }
    video_init(
        &app,
        &caller,
        PublishKind::DirectVideo,
        Some((body.post_info, post_info.privacy_level)),
        body.source_info,
    )
}

/// The shared body of the two video inits: checks the caller and the request against the
/// state, records the publish (and its upload session for a file upload), and starts the
/// download for a pull once the state is saved.
fn video_init(
    app: &Arc<App>,
    caller: &Caller,
    kind: PublishKind,
    post_info: Option<(Value, String)>,
    source_info: VideoSourceInfo,
) -> Result<Response, ApiError> {
    let (response, pull_id) = app.update(|state| {
        let privacy_level = post_info.as_ref().map(|(_, level)| level.as_str());
        let (user, source) = check_video_init(state, caller, kind, privacy_level, source_info)?;
        let number = state.next_number();
        let now = state.now_ms();
        let publish_id = video_publish_id(&source, kind == PublishKind::DirectVideo, number);
        let mut publish = new_video_publish(
            publish_id.clone(),
            user.open_id.clone(),
            kind,
            post_info.map(|(value, _)| value),
            now,
        );
        let mut data = json!({"publish_id": publish_id});
        let mut pull_id = None;
        match source {
            VideoSource::File(plan) => {
                data["upload_url"] = json!(open_upload(app, state, &mut publish, &plan, now));
            }
            VideoSource::Pull(url) => {
                publish.source = Source::PullFromUrl;
                publish.status = PublishStatus::ProcessingDownload;
                publish.downloaded_bytes = Some(0);
                publish.video_url = Some(url_without_query(&url));
                publish.pull_urls = vec![url];
                pull_id = Some(publish_id.clone());
            }
        }
        state.publishes.insert(publish_id, publish);
        Ok::<_, ApiError>((api::ok(Some(data)), pull_id))
    })?;
    if let Some(publish_id) = pull_id {
        pull::spawn(Arc::clone(app), publish_id);
    }
    Ok(response)
}

/// A video init's checks, in the order TikTok makes them: the user, a ban, the source,
/// the direct-post rules (when `privacy_level` is given), a pull URL's prefix, and the
/// pending-share cap for an inbox upload. Gives the user and the validated source.
fn check_video_init(
    state: &State,
    caller: &Caller,
    kind: PublishKind,
    privacy_level: Option<&str>,
    source_info: VideoSourceInfo,
) -> Result<(User, VideoSource), ApiError> {
    let user = user_of(state, caller)?;
    check_banned(&user)?;
    let source = parse_video_source(source_info, &state.settings)?;
    if let Some(privacy_level) = privacy_level {
        check_direct_post(state, &user, privacy_level)?;
    }
    if let VideoSource::Pull(url) = &source {
        check_verified_url(&state.settings, url)?;
    }
    if kind == PublishKind::InboxVideo {
        check_pending_cap(state, &user.open_id)?;
    }
    Ok((user, source))
}

/// A video publish_id in TikTok's shape, which names the flow (inbox or direct) and the
/// source (file or URL).
fn video_publish_id(source: &VideoSource, direct: bool, number: u64) -> String {
    match (source, direct) {
        (VideoSource::File(_), false) => format!("v_inbox_file~v2.{number}"),
        (VideoSource::Pull(_), false) => format!("v_inbox_url~v2.{number}"),
        (VideoSource::File(_), true) => format!("v_pub_file~v2-1.{number}"),
        (VideoSource::Pull(_), true) => format!("v_pub_url~v2.{number}"),
    }
}

/// A new video publish waiting for its file upload; a pull changes the source fields.
fn new_video_publish(
    publish_id: String,
    open_id: String,
    kind: PublishKind,
    post_info: Option<Value>,
    now: i64,
) -> Publish {
    let post_mode = if kind == PublishKind::DirectVideo {
        "DIRECT_POST"
    } else {
        "MEDIA_UPLOAD"
    };
    Publish {
        publish_id,
        open_id,
        kind,
        post_mode: post_mode.to_owned(),
        source: Source::FileUpload,
        status: PublishStatus::ProcessingUpload,
        fail_reason: None,
        post_info,
        video_size: None,
        chunk_size: None,
        total_chunk_count: None,
        uploaded_bytes: None,
        downloaded_bytes: None,
        video_url: None,
        pull_urls: Vec::new(),
        photo_cover_index: None,
        sha256: None,
        media_format: None,
        images: Vec::new(),
        post_ids: Vec::new(),
        upload_id: None,
        media_ready: false,
        created_at_ms: now,
        updated_at_ms: now,
    }
}

/// Opens the upload session for a file upload: records the chunk plan on the publish and
/// the session (with only the token's hash) in the state, and gives the upload URL.
fn open_upload(
    app: &App,
    state: &mut State,
    publish: &mut Publish,
    plan: &ChunkPlan,
    now: i64,
) -> String {
    let upload_id = random_token(32);
    let upload_token = random_token(48);
    publish.video_size = Some(plan.video_size);
    publish.chunk_size = Some(plan.chunk_size);
    publish.total_chunk_count = Some(plan.total_chunk_count);
    publish.uploaded_bytes = Some(0);
    publish.upload_id = Some(upload_id.clone());
    state.uploads.insert(
        upload_id.clone(),
        Upload {
            upload_id: upload_id.clone(),
            upload_token_sha256: sha256_hex(upload_token.as_bytes()),
            publish_id: publish.publish_id.clone(),
            issued_at_ms: now,
            video_size: plan.video_size,
            chunk_size: plan.chunk_size,
            total_chunk_count: plan.total_chunk_count,
            received: 0,
            complete: false,
        },
    );
    let base = match &state.settings.upload_url_host {
        Some(host) => format!("https://{host}"),
        None => app.base_url.clone(),
    };
    format!("{base}/upload/video/?upload_id={upload_id}&upload_token={upload_token}")
}

fn owned_publish(state: &State, caller: &Caller, publish_id: &str) -> Result<Publish, ApiError> {
    let publish = state.publishes.get(publish_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_publish_id",
            "The publish_id does not exist.",
        )
    })?;
    if publish.open_id != caller.open_id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "token_not_authorized_for_specified_publish_id",
            "The access token is not authorized for this publish_id.",
        ));
    }
    Ok(publish.clone())
}

/// The status-fetch `data` object: only the fields that mean something for this publish.
pub fn status_data(publish: &Publish) -> Value {
    let mut data = json!({"status": publish.status});
    if let Some(reason) = &publish.fail_reason {
        data["fail_reason"] = json!(reason);
    }
    match publish.source {
        Source::FileUpload => data["uploaded_bytes"] = json!(publish.uploaded_bytes.unwrap_or(0)),
        Source::PullFromUrl => {
            data["downloaded_bytes"] = json!(publish.downloaded_bytes.unwrap_or(0));
        }
    }
    if !publish.post_ids.is_empty() {
        data["publicaly_available_post_id"] = json!(publish.post_ids);
    }
    data
}

/// `POST /v2/post/publish/status/fetch/`.
pub async fn status_fetch(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admit(
        &app,
        &headers,
        Some(&["video.upload", "video.publish"]),
        Some((Bucket::StatusFetch, |s| s.status_per_min)),
    )?;
    let body: PublishIdBody = api::parse_body(&body)?;
    let publish = app.read(|state| owned_publish(state, &caller, &body.publish_id))?;
    Ok(api::ok(Some(status_data(&publish))))
}

/// `POST /v2/post/publish/cancel/`: only a pull still downloading can be cancelled.
pub async fn cancel(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = admit(
        &app,
        &headers,
        Some(&["video.upload", "video.publish"]),
        None,
    )?;
    let body: PublishIdBody = api::parse_body(&body)?;
    app.update(|state| {
        let publish = owned_publish(state, &caller, &body.publish_id)?;
        if publish.source != Source::PullFromUrl
            || publish.status != PublishStatus::ProcessingDownload
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "publish_not_cancellable",
                "The publish cannot be cancelled in its current state.",
            ));
        }
        let now = state.now_ms();
        if let Some(p) = state.publishes.get_mut(&body.publish_id) {
            p.set_status(
                PublishStatus::Failed,
                Some("publish_cancelled".to_owned()),
                now,
            );
        }
        Ok(())
    })?;
    app.abort_pull(&body.publish_id);
    Ok(api::ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(prefixes: &[&str], allow_http: bool) -> Settings {
        Settings {
            verified_url_prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            allow_http_pull: allow_http,
            ..Settings::default()
        }
    }

    #[test]
    fn verified_urls() {
        let s = settings(&["https://media.example.com/media/"], false);
        assert!(check_verified_url(&s, "https://media.example.com/media/a.mp4").is_ok());
        assert!(check_verified_url(&s, "https://media.example.com/other/a.mp4").is_err());
        assert!(check_verified_url(&s, "https://media.example.com.evil.io/media/a.mp4").is_err());
        let s = settings(&["http://media.example.com/media/"], false);
        assert!(check_verified_url(&s, "http://media.example.com/media/a.mp4").is_err());
        let s = settings(&["https://127.0.0.1/m/"], false);
        assert!(check_verified_url(&s, "https://127.0.0.1/m/a.mp4").is_err());
        let s = settings(&["http://127.0.0.1:9000/bucket/"], true);
        assert!(check_verified_url(&s, "http://127.0.0.1:9000/bucket/a.mp4?sig=1").is_ok());
    }
}
