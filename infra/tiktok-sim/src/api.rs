//! What all `/v2/` API endpoints share: the `{data, error}` envelope, bearer-token
//! checks, scopes, rate limits and strict JSON bodies.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::app::{App, lock};
use crate::config::Settings;
use crate::rate_limit::Bucket;
use crate::state::{new_log_id, sha256_hex};

/// Error code of a response, put in the response extensions for the request log.
#[derive(Debug, Clone)]
pub struct LoggedErrorCode(pub String);

/// An error answer in TikTok's envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Real error bodies sometimes carry `"data":{}` and sometimes no `data`.
    pub with_data: bool,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            with_data: true,
            retry_after_secs: None,
        }
    }

    pub fn without_data(mut self) -> Self {
        self.with_data = false;
        self
    }

    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_param", message)
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_params", message)
    }

    pub fn token_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "access_token_invalid",
            "The access token is invalid or not found in the request.",
        )
    }

    pub fn forbidden(code: &str, message: impl Into<String>) -> Self {
        // TikTok's captured spam-risk bodies have no `data` at all.
        Self::new(StatusCode::FORBIDDEN, code, message).without_data()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = json!({
            "code": self.code,
            "message": self.message,
            "log_id": new_log_id(chrono::Utc::now().timestamp_millis()),
        });
        let body = if self.with_data {
            json!({"data": {}, "error": error})
        } else {
            json!({"error": error})
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(LoggedErrorCode(self.code));
        response
    }
}

/// A success answer in TikTok's envelope.
pub fn ok(data: Option<Value>) -> Response {
    let error = json!({
        "code": "ok",
        "message": "",
        "log_id": new_log_id(chrono::Utc::now().timestamp_millis()),
    });
    let body = match data {
        Some(data) => json!({"data": data, "error": error}),
        None => json!({"error": error}),
    };
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The user and grant behind a valid bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub open_id: String,
    pub scopes: Vec<String>,
    pub token_sha256: String,
}

impl Caller {
    /// Succeeds when the grant holds at least one of `scopes`.
    pub fn require_scope(&self, scopes: &[&str]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.scopes.iter().any(|g| g == s)) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "scope_not_authorized",
                format!(
                    "The user did not authorize the scope required for completing this request: {}",
                    scopes.join(" or ")
                ),
            ))
        }
    }
}

/// Extracts the token of `Authorization: Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Finds the live grant behind the request's bearer token.
pub fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer_token(headers).ok_or_else(ApiError::token_invalid)?;
    app.read(|state| {
        let grant = state
            .grant_for_access_token(token)
            .ok_or_else(ApiError::token_invalid)?;
        Ok(Caller {
            open_id: grant.open_id.clone(),
            scopes: grant.scopes.clone(),
            token_sha256: sha256_hex(token.as_bytes()),
        })
    })
}

/// Picks an endpoint's per-minute limit out of the settings.
pub type LimitOf = fn(&Settings) -> u32;

/// Counts the call in the caller's window for `bucket`.
pub fn rate_limit(
    app: &Arc<App>,
    caller: &Caller,
    bucket: Bucket,
    limit_of: LimitOf,
) -> Result<(), ApiError> {
    let (limit, with_header, now) = app.read(|s| {
        (
            limit_of(&s.settings),
            s.settings.retry_after_header,
            s.now_ms(),
        )
    });
    match lock(&app.rate).check(&caller.token_sha256, bucket, limit, now) {
        Ok(()) => Ok(()),
        Err(wait_secs) => {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "The API rate limit was exceeded. Please try again later.",
            );
            if with_header {
                error.retry_after_secs = Some(wait_secs);
            }
            Err(error)
        }
    }
}

/// `application/json`, optionally with a UTF-8 charset.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse =
        || ApiError::invalid_params("Content-Type must be application/json; charset=UTF-8");
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refuse)?;
    let mut parts = value.split(';').map(str::trim);
    let media_type = parts.next().unwrap_or_default();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(refuse());
    }
    for param in parts {
        let Some((name, val)) = param.split_once('=') else {
            return Err(refuse());
        };
        let val = val.trim().trim_matches('"');
        if !name.trim().eq_ignore_ascii_case("charset")
            || !(val.eq_ignore_ascii_case("utf-8") || val.eq_ignore_ascii_case("utf8"))
        {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Parses a JSON body strictly: unknown fields, wrong types and missing fields are all
/// `invalid_param`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_param(format!("Invalid request body: {e}")))
}

/// Like [`parse_body`], for a part already parsed as a JSON value.
pub fn parse_value<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::invalid_param(format!("Invalid {what}: {e}")))
}

/// Length as TikTok counts it for captions: UTF-16 code units.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("valid header"),
        );
        h
    }

    #[test]
    fn json_content_types() {
        assert!(require_json(&headers("application/json")).is_ok());
        assert!(require_json(&headers("application/json; charset=UTF-8")).is_ok());
        assert!(require_json(&headers("application/json;charset=utf-8")).is_ok());
        assert!(require_json(&headers("text/plain")).is_err());
        assert!(require_json(&headers("application/json; charset=latin1")).is_err());
        assert!(require_json(&HeaderMap::new()).is_err());
    }

    #[test]
    fn emoji_count_double() {
        assert_eq!(utf16_len("a😀"), 3);
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer act.x"),
        );
        assert_eq!(bearer_token(&h), Some("act.x"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
    }
}
