//! `POST /_sim/publishes/seed`: many publishes at once, for load tests that
//! need thousands of drafts TikTok knows without uploading each one.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::control::{ControlError, parse};
use crate::state::{Publish, PublishKind, PublishStatus, Source};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRequest {
    open_id: String,
    count: u32,
    #[serde(default = "processing")]
    status: PublishStatus,
}

fn processing() -> PublishStatus {
    PublishStatus::ProcessingUpload
}

/// The most publishes one request may make.
const MAX_SEED: u32 = 10_000;

pub async fn seed_publishes(
    AxState(app): AxState<Arc<App>>,
    body: bytes::Bytes,
) -> Result<Response, ControlError> {
    let request: SeedRequest = parse(&body)?;
    if request.count == 0 || request.count > MAX_SEED {
        return Err(ControlError::bad("count must be 1 to 10000"));
    }
    let ids = app.update(|state| {
        if state.user(&request.open_id).is_none() {
            return Err(ControlError::not_found("unknown open_id"));
        }
        let now = state.now_ms();
        let mut ids = Vec::with_capacity(request.count as usize);
        for _ in 0..request.count {
            let publish_id = format!("v_seed~v2.{}", state.next_number());
            state.publishes.insert(
                publish_id.clone(),
                Publish {
                    publish_id: publish_id.clone(),
                    open_id: request.open_id.clone(),
                    kind: PublishKind::InboxVideo,
                    post_mode: "MEDIA_UPLOAD".to_owned(),
                    source: Source::FileUpload,
                    status: request.status,
                    fail_reason: None,
                    post_info: None,
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
                    media_ready: true,
                    created_at_ms: now,
                    updated_at_ms: now,
                },
            );
            ids.push(publish_id);
        }
        Ok(ids)
    })?;
    Ok(Json(json!({ "publish_ids": ids })).into_response())
}
