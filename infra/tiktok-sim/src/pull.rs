//! PULL_FROM_URL: background downloads of videos and photos, with redirects refused as
//! TikTok does, and the media checks applied to what arrives.

use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::app::{App, lock};
use crate::media_check::{self, MAGIC_LEN, PhotoLimits};
use crate::state::{ImageRecord, PublishKind, PublishStatus, url_without_query};
use crate::video_check;

/// What a finished pull found.
enum PullOutcome {
    Video {
        bytes: u64,
        sha256: String,
        format: &'static str,
    },
    Photos {
        bytes: u64,
        images: Vec<ImageRecord>,
    },
    Failed {
        bytes: u64,
        reason: &'static str,
    },
}

/// Starts the download of a publish in PROCESSING_DOWNLOAD.
pub fn spawn(app: Arc<App>, publish_id: String) {
    let task_app = Arc::clone(&app);
    let task_id = publish_id.clone();
    let mut pulls = lock(&app.pulls);
    let handle = tokio::spawn(async move { run(task_app, task_id).await });
    pulls.insert(publish_id, handle.abort_handle());
}

/// Restarts pulls that a restart interrupted.
pub fn resume_all(app: &Arc<App>) {
    let pending: Vec<String> = app.read(|state| {
        state
            .publishes
            .values()
            .filter(|p| p.status == PublishStatus::ProcessingDownload && !p.media_ready)
            .map(|p| p.publish_id.clone())
            .collect()
    });
    for publish_id in pending {
        spawn(Arc::clone(app), publish_id);
    }
}

async fn run(app: Arc<App>, publish_id: String) {
    let job = app.read(|state| {
        state.publishes.get(&publish_id).map(|p| {
            (
                p.kind,
                p.pull_urls.clone(),
                PhotoLimits {
                    max_width: state.settings.max_photo_width,
                    max_height: state.settings.max_photo_height,
                    max_bytes: state.settings.max_photo_bytes,
                },
                state.settings.max_video_bytes,
                crate::upload::max_duration_secs(state, p),
            )
        })
    });
    let Some((kind, urls, limits, max_video_bytes, max_duration)) = job else {
        return;
    };
    let outcome = match kind {
        PublishKind::Photo => pull_photos(&app.http, &urls, limits).await,
        PublishKind::InboxVideo | PublishKind::DirectVideo => match urls.first() {
            Some(url) => {
                let spool = app.spool_path(&format!("pull-{publish_id}"));
                let outcome =
                    pull_video(&app.http, url, max_video_bytes, &spool, max_duration).await;
                if let Err(e) = tokio::fs::remove_file(&spool).await
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(error = %e, "cannot delete pull spool");
                }
                outcome
            }
            None => PullOutcome::Failed {
                bytes: 0,
                reason: "video_pull_failed",
            },
        },
    };
    app.update(|state| {
        let now = state.now_ms();
        let auto_advance = state.settings.auto_advance;
        let Some(publish) = state.publishes.get_mut(&publish_id) else {
            return;
        };
        // A cancel (or a test moving the publish on) while downloading wins.
        if publish.status != PublishStatus::ProcessingDownload {
            return;
        }
        match outcome {
            PullOutcome::Video {
                bytes,
                sha256,
                format,
            } => {
                publish.downloaded_bytes = Some(bytes);
                publish.sha256 = Some(sha256);
                publish.media_format = Some(format.to_owned());
                publish.media_ready = true;
            }
            PullOutcome::Photos { bytes, images } => {
                publish.downloaded_bytes = Some(bytes);
                publish.images = images;
                publish.media_format = Some("photo".to_owned());
                publish.media_ready = true;
            }
            PullOutcome::Failed { bytes, reason } => {
                publish.downloaded_bytes = Some(bytes);
                publish.set_status(PublishStatus::Failed, Some(reason.to_owned()), now);
            }
        }
        if publish.media_ready && auto_advance {
            let next = publish.ready_status();
            publish.set_status(next, None, now);
        }
        publish.updated_at_ms = now;
    });
    lock(&app.pulls).remove(&publish_id);
}

/// GETs a URL without following redirects; anything but a 2xx is a failed pull.
async fn get(http: &reqwest::Client, url: &str) -> Option<reqwest::Response> {
    match http.get(url).send().await {
        Ok(response) if response.status().is_success() => Some(response),
        Ok(response) => {
            tracing::info!(status = %response.status(), url = %url_without_query(url), "pull refused");
            None
        }
        Err(e) => {
            tracing::info!(error = %e, url = %url_without_query(url), "pull failed");
            None
        }
    }
}

/// Streams a video to a spool file through SHA-256, then checks it as
/// TikTok does (container, codec, frame rate, size, duration).
async fn pull_video(
    http: &reqwest::Client,
    url: &str,
    max_bytes: u64,
    spool: &std::path::Path,
    max_duration_secs: u64,
) -> PullOutcome {
    const FAILED: &str = "video_pull_failed";
    let Some(response) = get(http, url).await else {
        return PullOutcome::Failed {
            bytes: 0,
            reason: FAILED,
        };
    };
    let mut file = match tokio::fs::File::create(spool).await {
        Ok(file) => tokio::io::BufWriter::with_capacity(1 << 20, file),
        Err(e) => {
            tracing::error!(error = %e, "cannot open pull spool");
            return PullOutcome::Failed {
                bytes: 0,
                reason: "internal",
            };
        }
    };
    let mut stream = response.bytes_stream();
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return PullOutcome::Failed {
                bytes,
                reason: FAILED,
            };
        };
        bytes += chunk.len() as u64;
        if bytes > max_bytes {
            return PullOutcome::Failed {
                bytes,
                reason: FAILED,
            };
        }
        hasher.update(&chunk);
        if file.write_all(&chunk).await.is_err() {
            return PullOutcome::Failed {
                bytes,
                reason: "internal",
            };
        }
    }
    if file.flush().await.is_err() {
        return PullOutcome::Failed {
            bytes,
            reason: "internal",
        };
    }
    drop(file);
    let path = spool.to_path_buf();
    let verdict = tokio::task::spawn_blocking(move || {
        let facts = video_check::measure(&path)?;
        facts.check(max_duration_secs)?;
        Ok(facts.format)
    })
    .await
    .unwrap_or(Err(video_check::VideoRejection::Format));
    match verdict {
        Ok(format) => PullOutcome::Video {
            bytes,
            sha256: hex::encode(hasher.finalize()),
            format,
        },
        Err(rejection) => PullOutcome::Failed {
            bytes,
            reason: rejection.fail_reason(),
        },
    }
}

/// Downloads and checks each photo in turn; the first problem fails the whole post.
async fn pull_photos(http: &reqwest::Client, urls: &[String], limits: PhotoLimits) -> PullOutcome {
    const FAILED: &str = "photo_pull_failed";
    let mut total: u64 = 0;
    let mut images = Vec::with_capacity(urls.len());
    for url in urls {
        let Some(response) = get(http, url).await else {
            return PullOutcome::Failed {
                bytes: total,
                reason: FAILED,
            };
        };
        let mut stream = response.bytes_stream();
        let mut data: Vec<u8> = Vec::new();
        let mut too_big = false;
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else {
                return PullOutcome::Failed {
                    bytes: total,
                    reason: FAILED,
                };
            };
            total += chunk.len() as u64;
            // Keep only what is needed to judge an oversized image: its first bytes.
            if (data.len() + chunk.len()) as u64 > limits.max_bytes {
                too_big = true;
                if data.len() < MAGIC_LEN {
                    data.extend_from_slice(&chunk[..(MAGIC_LEN - data.len()).min(chunk.len())]);
                }
                continue;
            }
            if !too_big {
                data.extend_from_slice(&chunk);
            }
        }
        if too_big {
            let reason = match media_check::photo_format(&data) {
                Some(_) => media_check::PhotoRejection::Size,
                None => media_check::PhotoRejection::Format,
            };
            return PullOutcome::Failed {
                bytes: total,
                reason: reason.fail_reason(),
            };
        }
        match media_check::check_photo(&data, limits) {
            Ok(info) => images.push(ImageRecord {
                url: url_without_query(url),
                sha256: hex::encode(Sha256::digest(&data)),
                format: info.format.to_owned(),
                width: info.width,
                height: info.height,
                bytes: data.len() as u64,
                exif_orientation: info.exif_orientation,
            }),
            Err(rejection) => {
                return PullOutcome::Failed {
                    bytes: total,
                    reason: rejection.fail_reason(),
                };
            }
        }
    }
    PullOutcome::Photos {
        bytes: total,
        images,
    }
}
