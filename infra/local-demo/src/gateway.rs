//! The HTTP API in front of the login and webhook functions, as the
//! template's API Gateway routes it: each request becomes an HTTP API
//! (payload 2.0) event for the function, and the function's answer becomes
//! the HTTP response. A browser (or TikTok's webhook sender) talks to it as
//! it would to the deployed API.
//!
//! ```text
//! GET  /auth/start       oauth-callback
//! GET  /auth/callback    oauth-callback
//! POST /webhooks/tiktok  tiktok-webhook
//! GET  /creator/{token}  creator-page (on a stack made from the template)
//! ```

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::DemoResult;
use crate::functions::{Functions, invoke};
use tiktok_drafts_tests::events::api_gateway_request;
use tiktok_drafts_tests::http_api::proxy_response;

pub struct Gateway {
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Listens on `127.0.0.1:port` (0: any free port).
    pub async fn bind(port: u16) -> DemoResult<(tokio::net::TcpListener, String)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("listen on 127.0.0.1:{port}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the HTTP API's address: {e}"))?;
        Ok((listener, format!("http://{addr}")))
    }

    pub fn serve(
        listener: tokio::net::TcpListener,
        base_url: String,
        functions: Arc<Functions>,
    ) -> Self {
        let app = Router::new()
            .route("/auth/start", get(login))
            .route("/auth/callback", get(login))
            .route("/webhooks/tiktok", post(webhook))
            .route("/creator/{token}", get(creator_page))
            .with_state(functions);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("local-demo: the HTTP API stopped: {e}");
            }
        });
        Self { base_url, task }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// A run dropped part-way (on a signal) stops serving too, letting go of
/// the functions it holds, whose processes then end.
impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn login(State(functions): State<Arc<Functions>>, request: Request) -> Response {
    forward_bodiless("oauth-callback", &functions.login, request).await
}

async fn creator_page(State(functions): State<Arc<Functions>>, request: Request) -> Response {
    match &functions.page {
        Some(page) => forward_bodiless("creator-page", page, request).await,
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

/// A GET (no body) to `function`.
async fn forward_bodiless(
    name: &str,
    function: &tokio::sync::Mutex<tiktok_drafts_tests::lambda::LambdaFunction>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    forward(
        name,
        function,
        &parts.method,
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        None,
    )
    .await
}

async fn webhook(
    State(functions): State<Arc<Functions>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let path = request.uri().path().to_owned();
    let body = match axum::body::to_bytes(request.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB").into_response(),
    };
    forward(
        "tiktok-webhook",
        &functions.webhook,
        &Method::POST,
        &path,
        "",
        &headers,
        Some(body),
    )
    .await
}

async fn forward(
    name: &str,
    function: &tokio::sync::Mutex<tiktok_drafts_tests::lambda::LambdaFunction>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Option<Bytes>,
) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = body.map(|b| String::from_utf8_lossy(&b).into_owned());
    let event = api_gateway_request(
        method.as_str(),
        path,
        query,
        &headers,
        body.as_deref(),
        chrono::Utc::now(),
    );
    let answer = match invoke(name, function, &event).await {
        Ok(invocation) => invocation.body,
        Err(e) => {
            // API Gateway answers 500 when the integration fails.
            eprintln!("local-demo: {e}");
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
    };
    let response = proxy_response(&answer);
    // The query carries invitations, codes and states, and a creator page's
    // path its link: only the route is shown.
    let shown = if path.starts_with("/creator/") {
        "/creator/{token}"
    } else {
        path
    };
    println!(
        "    HTTP API          {method} {shown} -> {name} -> {}",
        response.status().as_u16()
    );
    response
}
