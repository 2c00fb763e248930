//! A local HTTP API in front of function binaries, as API Gateway's HTTP API
//! routes to Lambda: each request becomes a payload 2.0 event for the
//! function whose route prefix it matches, and the function's answer
//! becomes the HTTP response. A browser talks to it as to the deployed API.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::sync::Mutex;

use crate::lambda::LambdaFunction;
use crate::lambda_events::http_api_request;

type Routes = Arc<Vec<(String, Arc<Mutex<LambdaFunction>>)>>;

pub struct HttpApi {
    base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl HttpApi {
    /// Serves on a free loopback port; a request goes to the first route
    /// whose path prefix it starts with, else 404.
    pub async fn serve(routes: Vec<(&str, Arc<Mutex<LambdaFunction>>)>) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("listen on loopback: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("the HTTP API's address: {e}"))?;
        let routes: Routes = Arc::new(
            routes
                .into_iter()
                .map(|(prefix, f)| (prefix.to_owned(), f))
                .collect(),
        );
        let app = Router::new().fallback(forward).with_state(routes);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("the local HTTP API stopped: {e}");
            }
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            task,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl Drop for HttpApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(routes): State<Routes>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let Some((_, function)) = routes.iter().find(|(prefix, _)| path.starts_with(prefix)) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let body = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB").into_response(),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let text = String::from_utf8_lossy(&body);
    let event = http_api_request(
        parts.method.as_str(),
        &path,
        parts.uri.query().unwrap_or(""),
        &headers,
        (!body.is_empty()).then_some(text.as_ref()),
    );
    let answer = match function.lock().await.try_invoke(&event).await {
        Ok(invocation) if invocation.status == 200 => invocation.body,
        Ok(invocation) => {
            eprintln!("the function failed: {}", invocation.body);
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Err(e) => {
            eprintln!("the function failed: {e}");
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
    };
    proxy_response(&answer)
}

/// A Lambda proxy answer (`statusCode`, `headers`, `body`, ...) as an HTTP
/// response.
pub fn proxy_response(answer: &serde_json::Value) -> Response {
    let status = answer["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let text = answer["body"].as_str().unwrap_or("");
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(map) = answer["headers"].as_object() {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                headers.insert(name, value);
            }
        }
    }
    if let Some(map) = answer["multiValueHeaders"].as_object() {
        for (name, values) in map {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            headers.remove(&name);
            for value in values.as_array().into_iter().flatten() {
                if let Some(Ok(value)) = value.as_str().map(HeaderValue::from_str) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        if let Some(Ok(value)) = cookie.as_str().map(HeaderValue::from_str) {
            headers.append(axum::http::header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_answers_become_responses() {
        let response = proxy_response(&serde_json::json!({
            "statusCode": 302,
            "headers": {"location": "https://www.tiktok.com/v2/auth/authorize/?a=1", "cache-control": "no-store"},
            "multiValueHeaders": {"vary": ["origin", "cookie"]},
            "body": "",
            "isBase64Encoded": false,
            "cookies": ["__Host-login=n1; Secure; HttpOnly"]
        }));
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            response.headers()["location"],
            "https://www.tiktok.com/v2/auth/authorize/?a=1"
        );
        let vary: Vec<_> = response.headers().get_all("vary").iter().collect();
        assert_eq!(vary, ["origin", "cookie"]);
        assert_eq!(
            response.headers()["set-cookie"],
            "__Host-login=n1; Secure; HttpOnly"
        );
        let broken = proxy_response(&serde_json::json!({"nothing": true}));
        assert_eq!(broken.status(), StatusCode::BAD_GATEWAY);
    }
}
