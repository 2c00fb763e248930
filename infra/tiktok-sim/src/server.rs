//! The HTTP server: routes, and the outer layer that applies scripted faults and writes the
//! request log. Connections are served with hyper directly so that a "reset" fault can drop
//! a connection without sending any response.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use futures::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::api::{LoggedErrorCode, bearer_token};
use crate::app::{App, lock};
use crate::clock::rfc3339;
use crate::faults::FaultAction;
use crate::request_log::{LoggedRequest, redact_query};
use crate::state::sha256_hex;
use crate::{control, oauth, posting, upload};

/// Largest API body that is read into memory (uploads are streamed, not read here).
const MAX_API_BODY: usize = 2 * 1024 * 1024;
/// How much of an upload body a "reset" fault reads before dropping the connection.
const RESET_READ_BYTES: u64 = 256 * 1024;
/// How long shutdown waits for open connections to finish their current request.
const GRACE: Duration = Duration::from_secs(5);

/// Returned by the service to make hyper drop the connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a scripted reset fault")]
pub struct ResetFault;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v2/auth/authorize/", get(oauth::authorize))
        .route("/v2/oauth/token/", post(oauth::token))
        .route("/v2/oauth/revoke/", post(oauth::revoke))
        .route("/v2/user/info/", get(oauth::user_info))
        .route(
            "/v2/post/publish/creator_info/query/",
            post(posting::creator_info),
        )
        .route(
            "/v2/post/publish/inbox/video/init/",
            post(posting::inbox_video_init),
        )
        .route(
            "/v2/post/publish/video/init/",
            post(posting::direct_video_init),
        )
        .route(
            "/v2/post/publish/content/init/",
            post(posting::content_init),
        )
        .route(
            "/v2/post/publish/status/fetch/",
            post(posting::status_fetch),
        )
        .route("/v2/post/publish/cancel/", post(posting::cancel))
        .route("/upload/video/", put(upload::put_chunk))
        .route("/_sim/reset", post(control::reset))
        .route(
            "/_sim/settings",
            get(control::get_settings).put(control::put_settings),
        )
        .route(
            "/_sim/users",
            get(control::list_users).post(control::put_user),
        )
        .route("/_sim/authorize/next", post(control::authorize_next))
        .route("/_sim/tokens", post(control::mint_tokens))
        .route("/_sim/tokens/expire", post(control::expire_token))
        .route(
            "/_sim/users/{open_id}/invalidate_access",
            post(control::invalidate_access),
        )
        .route("/_sim/clock", get(control::get_clock))
        .route("/_sim/clock/advance", post(control::advance_clock))
        .route(
            "/_sim/requests",
            get(control::get_requests).delete(control::clear_requests),
        )
        .route("/_sim/publishes", get(control::list_publishes))
        .route("/_sim/publishes/seed", post(crate::seed::seed_publishes))
        .route("/_sim/publishes/{publish_id}", get(control::get_publish))
        .route(
            "/_sim/publishes/{publish_id}/status",
            post(control::set_publish_status),
        )
        .route(
            "/_sim/users/{open_id}/deauthorize",
            post(control::deauthorize_user),
        )
        .route(
            "/_sim/webhooks",
            get(control::list_webhooks).delete(control::clear_webhooks),
        )
        .route(
            "/_sim/webhooks/{n}/redeliver",
            post(control::redeliver_webhook),
        )
        .route(
            "/_sim/faults",
            get(control::list_faults)
                .post(control::add_fault)
                .delete(control::clear_faults),
        )
        .fallback(not_found)
        .with_state(app)
}

async fn not_found(request: Request<Body>) -> axum::response::Response {
    let mut response = if request.uri().path().starts_with("/v2/") {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": {"code": "not_found", "message": "No such endpoint.", "log_id": ""}})),
        )
            .into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found").into_response()
    };
    response
        .extensions_mut()
        .insert(LoggedErrorCode("not_found".to_owned()));
    response
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn content_type_is(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media_type))
}

/// Handles one request: faults first, then the router, then the log.
async fn handle(
    app: Arc<App>,
    router: Router,
    request: Request<Incoming>,
) -> Result<Response<Body>, ResetFault> {
    let (parts, incoming) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let method = parts.method.as_str().to_owned();
    let mut entry = new_log_entry(&parts);
    let body = Body::new(incoming);

    // Control calls are never faulted, so a test cannot lock itself out.
    let fault = if path.starts_with("/_sim/") {
        None
    } else {
        lock(&app.faults).take(&method, &path)
    };
    let after = AfterRouting::for_fault(fault.as_ref());
    entry.fault = fault.as_ref().map(fault_label);
    match fault {
        Some(FaultAction::Status { status, error_code }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let response = fault_response(&path, status, error_code);
            finish_log(&app, entry, &response);
            return Ok(response);
        }
        Some(FaultAction::Reset) => {
            read_some_then_log(&app, entry, body).await;
            return Err(ResetFault);
        }
        Some(FaultAction::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        // These act on the answer, after the router (see `after`).
        Some(
            FaultAction::OmitField { .. }
            | FaultAction::DropAnswer
            | FaultAction::AnswerLate { .. },
        )
        | None => {}
    }

    let body = match read_api_body(&parts, &path, body, &mut entry).await {
        Ok(body) => body,
        Err(response) => {
            finish_log(&app, entry, &response);
            return Ok(response);
        }
    };
    let request = Request::from_parts(parts, body);
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let response = match &after.omit {
        Some(field) => omit_field(response, field).await,
        None => response,
    };
    finish_log(&app, entry, &response);
    after.deliver(response).await
}

/// The log entry for a request as it arrives: what its line and headers say, with the
/// query redacted and the bearer token only as a short hash. Status, time and body are
/// filled in later.
fn new_log_entry(parts: &axum::http::request::Parts) -> LoggedRequest {
    LoggedRequest {
        seq: 0,
        time: String::new(),
        time_ms: 0,
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(redact_query),
        status: 0,
        error_code: None,
        content_type: header_string(&parts.headers, header::CONTENT_TYPE),
        content_length: header_string(&parts.headers, header::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse().ok()),
        content_range: header_string(&parts.headers, header::CONTENT_RANGE),
        token_sha256: bearer_token(&parts.headers)
            .map(|t| sha256_hex(t.as_bytes())[..16].to_owned()),
        body: None,
        form_fields: None,
        grant_type: None,
        fault: None,
    }
}

/// How the request log names a fault that was applied.
fn fault_label(fault: &FaultAction) -> String {
    match fault {
        FaultAction::Status { status, .. } => format!("status {status}"),
        FaultAction::Reset => "reset".to_owned(),
        FaultAction::Delay { ms } => format!("delay {ms}ms"),
        FaultAction::OmitField { field } => format!("omit_field {field}"),
        FaultAction::DropAnswer => "drop_answer".to_owned(),
        FaultAction::AnswerLate { ms } => format!("answer_late {ms}ms"),
    }
}

/// What a fault still does once the router has answered: leave a field out, send the
/// answer late, or drop it.
struct AfterRouting {
    omit: Option<String>,
    drop_answer: bool,
    answer_late: Option<Duration>,
}

impl AfterRouting {
    /// The part of `fault` that acts on the answer (nothing for the other faults).
    fn for_fault(fault: Option<&FaultAction>) -> Self {
        AfterRouting {
            omit: match fault {
                Some(FaultAction::OmitField { field }) => Some(field.clone()),
                _ => None,
            },
            drop_answer: matches!(fault, Some(FaultAction::DropAnswer)),
            answer_late: match fault {
                Some(FaultAction::AnswerLate { ms }) => Some(Duration::from_millis(*ms)),
                _ => None,
            },
        }
    }

    /// Sends the (already logged) answer: late, dropped, or as it is.
    async fn deliver(self, response: Response<Body>) -> Result<Response<Body>, ResetFault> {
        if let Some(wait) = self.answer_late {
            // Acted on and logged already; only the answer is late.
            tokio::time::sleep(wait).await;
        }
        if self.drop_answer {
            // Acted on and logged with the status it would have had; the line
            // drops before the client reads a byte of it.
            return Err(ResetFault);
        }
        Ok(response)
    }
}

/// For a "reset" fault: reads part of the body first, so the client is mid-send when the
/// line drops, then logs the request.
async fn read_some_then_log(app: &App, entry: LoggedRequest, body: Body) {
    let wanted = entry.content_length.unwrap_or(0).min(RESET_READ_BYTES);
    let mut read: u64 = 0;
    let mut stream = body.into_data_stream();
    while read < wanted {
        match stream.next().await {
            Some(Ok(bytes)) => read += bytes.len() as u64,
            _ => break,
        }
    }
    log_entry(app, entry);
}

/// Reads a small API body (a POST under /v2/) into memory so the log can show it, and
/// gives it back as a new body; uploads and other requests stream through untouched.
/// A body past [`MAX_API_BODY`] is answered 413 instead.
async fn read_api_body(
    parts: &axum::http::request::Parts,
    path: &str,
    body: Body,
    entry: &mut LoggedRequest,
) -> Result<Body, Response<Body>> {
    if !(path.starts_with("/v2/") && parts.method == axum::http::Method::POST) {
        return Ok(body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_API_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response());
        }
    };
    log_api_body(&parts.headers, path, &bytes, entry);
    Ok(Body::from(bytes))
}

/// Puts what the log may show of an API body into `entry`: for OAuth forms (whose values
/// hold secrets) only the field names and the grant type, for the rest the JSON (or the
/// text when it isn't JSON).
fn log_api_body(headers: &HeaderMap, path: &str, bytes: &[u8], entry: &mut LoggedRequest) {
    if path.starts_with("/v2/oauth/") {
        if content_type_is(headers, "application/x-www-form-urlencoded") {
            let fields: Vec<(String, String)> = url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            entry.grant_type = fields
                .iter()
                .find(|(k, _)| k == "grant_type")
                .map(|(_, v)| v.clone());
            entry.form_fields = Some(fields.into_iter().map(|(k, _)| k).collect());
        }
    } else if !bytes.is_empty() {
        entry.body = Some(
            serde_json::from_slice(bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes).into_owned())),
        );
    }
}

/// The answer without `data.<field>`. Only a JSON success answer is changed; anything else
/// (an error the request got anyway) passes as it is.
async fn omit_field(response: Response<Body>, field: &str) -> Response<Body> {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_API_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "answer unreadable").into_response(),
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(data) = value.get_mut("data").and_then(|d| d.as_object_mut()) {
        data.remove(field);
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn fault_response(path: &str, status: StatusCode, error_code: Option<String>) -> Response<Body> {
    let mut response = match (&error_code, path.starts_with("/v2/oauth/")) {
        (Some(code), true) => (
            status,
            axum::Json(
                json!({"error": code, "error_description": "Injected fault.", "log_id": ""}),
            ),
        )
            .into_response(),
        (Some(code), false) => (
            status,
            axum::Json(
                json!({"error": {"code": code, "message": "Injected fault.", "log_id": ""}}),
            ),
        )
            .into_response(),
        (None, _) => (status, "injected fault").into_response(),
    };
    if let Some(code) = error_code {
        response.extensions_mut().insert(LoggedErrorCode(code));
    }
    response
}

fn finish_log(app: &App, mut entry: LoggedRequest, response: &Response<Body>) {
    entry.status = response.status().as_u16();
    entry.error_code = response
        .extensions()
        .get::<LoggedErrorCode>()
        .map(|c| c.0.clone());
    log_entry(app, entry);
}

fn log_entry(app: &App, mut entry: LoggedRequest) {
    let now = app.now_ms();
    entry.time_ms = now;
    entry.time = rfc3339(now);
    lock(&app.log).push(entry);
}

/// Accepts connections until `shutdown` turns true, then lets open connections finish
/// their current request (for at most [`GRACE`]).
pub async fn serve(app: Arc<App>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let router = router(Arc::clone(&app));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let app = Arc::clone(&app);
                let router = router.clone();
                let mut conn_shutdown = shutdown.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(Arc::clone(&app), router.clone(), request)
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        result = conn.as_mut() => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        _ = conn_shutdown.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(GRACE, conn).await;
                        }
                    }
                });
                while connections.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}
