//! The control API under `/_sim/`: how tests seed users, script logins, mint tokens, move
//! the clock, read the request log and publishes, and inject faults.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{App, lock};
use crate::clock::rfc3339;
use crate::config::Settings;
use crate::faults::FaultRule;
use crate::oauth;
use crate::posting::status_data;
use crate::state::{
    AuthorizeScript, KNOWN_SCOPES, PRIVATE_PRIVACY_OPTIONS, PUBLIC_PRIVACY_OPTIONS, Publish,
    PublishStatus, User, sha256_hex,
};
use crate::webhooks::{self, RedeliverError};

/// A control-API error: a status and `{"error": "..."}`.
pub struct ControlError(StatusCode, String);

impl ControlError {
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, message.into())
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

type ControlResult = Result<Response, ControlError>;

/// Parses a control body strictly so a typo in a test fails loudly.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::bad(format!("invalid JSON body: {e}")))
}

pub async fn reset(AxState(app): AxState<Arc<App>>) -> Response {
    app.abort_all_pulls();
    let spools: Vec<String> = app.update(|state| {
        let ids = state.uploads.keys().cloned().collect();
        state.reset();
        ids
    });
    for upload_id in spools {
        let _ = tokio::fs::remove_file(app.spool_path(&upload_id)).await;
    }
    lock(&app.rate).clear();
    lock(&app.faults).clear();
    lock(&app.log).clear();
    lock(&app.webhooks).clear();
    Json(json!({})).into_response()
}

pub async fn get_settings(AxState(app): AxState<Arc<App>>) -> Response {
    Json(app.read(|s| s.settings.clone())).into_response()
}

pub async fn put_settings(AxState(app): AxState<Arc<App>>, body: bytes::Bytes) -> ControlResult {
    let settings: Settings = parse(&body)?;
    if let Some(url) = &settings.webhook_url
        && url::Url::parse(url).is_err()
    {
        return Err(ControlError::bad("webhook_url is not a URL"));
    }
    if StatusCode::from_u16(settings.oauth_error_status).is_err() {
        return Err(ControlError::bad(
            "oauth_error_status is not an HTTP status",
        ));
    }
    if ![403, 404, 405].contains(&settings.expired_upload_status) {
        return Err(ControlError::bad(
            "expired_upload_status must be 403, 404 or 405",
        ));
    }
    if let Some(host) = &settings.upload_url_host
        && url::Url::parse(&format!("https://{host}/")).map_or(true, |u| u.host_str() != Some(host))
    {
        return Err(ControlError::bad(
            "upload_url_host must be a bare host name",
        ));
    }
    if !(1..=crate::request_log::MAX_CAPACITY).contains(&settings.request_log_capacity) {
        return Err(ControlError::bad(
            "request_log_capacity must be 1 to 1000000",
        ));
    }
    lock(&app.log).set_capacity(settings.request_log_capacity);
    app.update(|s| s.settings = settings.clone());
    Ok(Json(settings).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    open_id: String,
    username: String,
    display_name: String,
    #[serde(default)]
    union_id: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
    #[serde(default)]
    privacy_level_options: Option<Vec<String>>,
    #[serde(default)]
    is_private: bool,
    #[serde(default)]
    banned: bool,
    #[serde(default)]
    comment_disabled: bool,
    #[serde(default)]
    duet_disabled: bool,
    #[serde(default)]
    stitch_disabled: bool,
    #[serde(default)]
    max_video_post_duration_sec: Option<i32>,
}

/// `POST /_sim/users`: adds a user, or replaces the one with the same open_id.
pub async fn put_user(AxState(app): AxState<Arc<App>>, body: bytes::Bytes) -> ControlResult {
    let new: NewUser = parse(&body)?;
    if new.open_id.is_empty() {
        return Err(ControlError::bad("open_id must not be empty"));
    }
    let defaults = if new.is_private {
        PRIVATE_PRIVACY_OPTIONS
    } else {
        PUBLIC_PRIVACY_OPTIONS
    };
    let user = User {
        union_id: new
            .union_id
            .unwrap_or_else(|| format!("union-{}", &sha256_hex(new.open_id.as_bytes())[..16])),
        avatar_url: new.avatar_url.unwrap_or_else(|| {
            format!(
                "https://p16-sign.tiktokcdn-us.com/avatar/{}.jpeg",
                new.username
            )
        }),
        privacy_level_options: new
            .privacy_level_options
            .unwrap_or_else(|| defaults.iter().map(|s| (*s).to_owned()).collect()),
        open_id: new.open_id,
        username: new.username,
        display_name: new.display_name,
        is_private: new.is_private,
        banned: new.banned,
        comment_disabled: new.comment_disabled,
        duet_disabled: new.duet_disabled,
        stitch_disabled: new.stitch_disabled,
        max_video_post_duration_sec: new.max_video_post_duration_sec.unwrap_or(600),
    };
    app.update(
        |state| match state.users.iter_mut().find(|u| u.open_id == user.open_id) {
            Some(existing) => *existing = user.clone(),
            None => state.users.push(user.clone()),
        },
    );
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

pub async fn list_users(AxState(app): AxState<Arc<App>>) -> Response {
    Json(app.read(|s| s.users.clone())).into_response()
}

/// `POST /_sim/authorize/next`: queues the answer of the next authorize request.
pub async fn authorize_next(AxState(app): AxState<Arc<App>>, body: bytes::Bytes) -> ControlResult {
    let script: AuthorizeScript = parse(&body)?;
    app.update(|state| {
        if state.user(&script.open_id).is_none() {
            return Err(ControlError::not_found("unknown open_id"));
        }
        state.authorize_queue.push_back(script.clone());
        Ok(Json(json!({"queued": state.authorize_queue.len()})).into_response())
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    open_id: String,
    scopes: Vec<String>,
}

/// `POST /_sim/tokens`: a grant without the browser step.
pub async fn mint_tokens(AxState(app): AxState<Arc<App>>, body: bytes::Bytes) -> ControlResult {
    let request: MintRequest = parse(&body)?;
    if let Some(bad) = request
        .scopes
        .iter()
        .find(|s| !KNOWN_SCOPES.contains(&s.as_str()))
    {
        return Err(ControlError::bad(format!("unknown scope {bad}")));
    }
    app.update(|state| {
        if state.user(&request.open_id).is_none() {
            return Err(ControlError::not_found("unknown open_id"));
        }
        let client_key = state.settings.client_key.clone();
        let tokens =
            oauth::mint_grant(state, &request.open_id, &client_key, request.scopes.clone());
        Ok(Json(tokens).into_response())
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireRequest {
    access_token: String,
}

/// `POST /_sim/tokens/expire`: the access token stops working now.
pub async fn expire_token(AxState(app): AxState<Arc<App>>, body: bytes::Bytes) -> ControlResult {
    let request: ExpireRequest = parse(&body)?;
    app.update(|state| {
        let now = state.now_ms();
        match state
            .access_tokens
            .get_mut(&sha256_hex(request.access_token.as_bytes()))
        {
            Some(record) => {
                record.expires_at_ms = now;
                Ok(Json(json!({})).into_response())
            }
            None => Err(ControlError::not_found("unknown access token")),
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: i64,
}

pub async fn advance_clock(AxState(app): AxState<Arc<App>>, body: bytes::Bytes) -> ControlResult {
    let request: AdvanceRequest = parse(&body)?;
    let now = app.update(|state| {
        state.clock.advance_secs(request.seconds);
        state.now_ms()
    });
    Ok(Json(clock_json(now, app.read(|s| s.clock.offset_ms))).into_response())
}

pub async fn get_clock(AxState(app): AxState<Arc<App>>) -> Response {
    let (now, offset) = app.read(|s| (s.now_ms(), s.clock.offset_ms));
    Json(clock_json(now, offset)).into_response()
}

fn clock_json(now_ms: i64, offset_ms: i64) -> Value {
    json!({"now": rfc3339(now_ms), "now_ms": now_ms, "offset_secs": offset_ms / 1000})
}

pub async fn get_requests(
    AxState(app): AxState<Arc<App>>,
    Query(params): Query<HashMap<String, String>>,
) -> ControlResult {
    let limit = match params.get("limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ControlError::bad("limit must be a number"))?,
        ),
        None => None,
    };
    let entries = lock(&app.log).query(params.get("path_prefix").map(String::as_str), limit);
    Ok(Json(entries).into_response())
}

pub async fn clear_requests(AxState(app): AxState<Arc<App>>) -> Response {
    lock(&app.log).clear();
    Json(json!({})).into_response()
}

fn publish_json(publish: &Publish) -> Value {
    json!({
        "publish_id": publish.publish_id,
        "open_id": publish.open_id,
        "kind": publish.kind,
        "post_mode": publish.post_mode,
        "source": publish.source,
        "status": publish.status,
        "fail_reason": publish.fail_reason,
        "post_info": publish.post_info,
        "video_size": publish.video_size,
        "chunk_size": publish.chunk_size,
        "total_chunk_count": publish.total_chunk_count,
        "uploaded_bytes": publish.uploaded_bytes,
        "downloaded_bytes": publish.downloaded_bytes,
        "video_url": publish.video_url,
        "photo_cover_index": publish.photo_cover_index,
        "sha256": publish.sha256,
        "media_format": publish.media_format,
        "media_ready": publish.media_ready,
        "images": publish.images,
        "post_ids": publish.post_ids,
        "created_at": rfc3339(publish.created_at_ms),
        "updated_at": rfc3339(publish.updated_at_ms),
        "status_fetch_data": status_data(publish),
    })
}

pub async fn list_publishes(AxState(app): AxState<Arc<App>>) -> Response {
    let list: Vec<Value> = app.read(|state| {
        let mut publishes: Vec<&Publish> = state.publishes.values().collect();
        publishes.sort_by_key(|p| p.created_at_ms);
        publishes.into_iter().map(publish_json).collect()
    });
    Json(list).into_response()
}

pub async fn get_publish(
    AxState(app): AxState<Arc<App>>,
    Path(publish_id): Path<String>,
) -> ControlResult {
    app.read(|state| state.publishes.get(&publish_id).map(publish_json))
        .map(|p| Json(p).into_response())
        .ok_or_else(|| ControlError::not_found("unknown publish_id"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetStatusRequest {
    status: PublishStatus,
    #[serde(default)]
    fail_reason: Option<String>,
    #[serde(default)]
    post_ids: Option<Vec<u64>>,
}

/// `POST /_sim/publishes/{id}/status`: moves a publish along its lifecycle.
pub async fn set_publish_status(
    AxState(app): AxState<Arc<App>>,
    Path(publish_id): Path<String>,
    body: bytes::Bytes,
) -> ControlResult {
    let request: SetStatusRequest = parse(&body)?;
    let result = app.update(|state| {
        let now = state.now_ms();
        let publish = state
            .publishes
            .get_mut(&publish_id)
            .ok_or_else(|| ControlError::not_found("unknown publish_id"))?;
        if let Some(ids) = &request.post_ids {
            publish.post_ids = ids.clone();
        }
        // A completed publish without given ids gets one (see Publish::set_status).
        publish.set_status(request.status, request.fail_reason.clone(), now);
        Ok(publish_json(publish))
    });
    if request.status != PublishStatus::ProcessingDownload {
        app.abort_pull(&publish_id);
    }
    result.map(|p| Json(p).into_response())
}

pub async fn add_fault(AxState(app): AxState<Arc<App>>, body: bytes::Bytes) -> ControlResult {
    let rule: FaultRule = parse(&body)?;
    lock(&app.faults).add(rule.clone());
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

pub async fn list_faults(AxState(app): AxState<Arc<App>>) -> Response {
    Json(lock(&app.faults).list()).into_response()
}

pub async fn clear_faults(AxState(app): AxState<Arc<App>>) -> Response {
    lock(&app.faults).clear();
    Json(json!({})).into_response()
}

/// `GET /_sim/webhooks`: every delivery made, oldest first, with what the receiver answered.
pub async fn list_webhooks(AxState(app): AxState<Arc<App>>) -> Response {
    Json(lock(&app.webhooks).list()).into_response()
}

pub async fn clear_webhooks(AxState(app): AxState<Arc<App>>) -> Response {
    lock(&app.webhooks).clear();
    Json(json!({})).into_response()
}

/// `POST /_sim/webhooks/{n}/redeliver`: sends delivery `n` again (same body, signed now).
pub async fn redeliver_webhook(
    AxState(app): AxState<Arc<App>>,
    Path(n): Path<usize>,
) -> ControlResult {
    match webhooks::redeliver(&app, n) {
        Ok(delivery) => Ok((StatusCode::CREATED, Json(delivery)).into_response()),
        Err(e @ RedeliverError::Unknown(_)) => Err(ControlError::not_found(e.to_string())),
        Err(e @ RedeliverError::NoUrl) => Err(ControlError::bad(e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeauthorizeRequest {
    /// TikTok's reason code: 0 unknown, 1 user disconnected, 2 account deleted, 3 age
    /// changed, 4 banned, 5 developer revoked.
    #[serde(default = "user_disconnected")]
    reason: i64,
}

fn user_disconnected() -> i64 {
    1
}

/// `POST /_sim/users/{open_id}/deauthorize`: the user removes the app. Every grant of the
/// user is revoked (its tokens stop working), `authorization.removed` is sent, and the
/// user's publishes still processing fail with `auth_removed` (each sending
/// `post.publish.failed`).
pub async fn deauthorize_user(
    AxState(app): AxState<Arc<App>>,
    Path(open_id): Path<String>,
    body: bytes::Bytes,
) -> ControlResult {
    let request: DeauthorizeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DeauthorizeRequest {
            reason: user_disconnected(),
        }
    } else {
        parse(&body)?
    };
    let removal = app.update(|state| {
        if state.user(&open_id).is_none() {
            return Err(ControlError::not_found("unknown open_id"));
        }
        Ok(oauth::remove_authorization(
            &app,
            state,
            &open_id,
            request.reason,
        ))
    })?;
    for publish_id in &removal.failed_publishes {
        app.abort_pull(publish_id);
    }
    Ok(Json(json!({
        "revoked_grants": removal.revoked_grants,
        "failed_publishes": removal.failed_publishes,
    }))
    .into_response())
}
