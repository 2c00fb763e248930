//! Login Kit v2: the scripted authorize page, the token endpoint (code and refresh grants),
//! revoke, and `/v2/user/info/`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::{self, ApiError, LoggedErrorCode};
use crate::app::App;
use crate::config::{PkceEncoding, PkceMode, Settings};
use crate::rate_limit::Bucket;
use crate::state::{
    AuthCode, AuthorizeScript, Grant, KNOWN_SCOPES, PublishStatus, State, TokenRecord, new_log_id,
    random_token, sha256_hex,
};

/// A flat OAuth error, `{error, error_description, log_id}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    pub status: StatusCode,
}

impl OAuthError {
    fn new(settings: &Settings, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            status: StatusCode::from_u16(settings.oauth_error_status).unwrap_or(StatusCode::OK),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.error,
            "error_description": self.description,
            "log_id": new_log_id(chrono::Utc::now().timestamp_millis()),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .extensions_mut()
            .insert(LoggedErrorCode(self.error.to_owned()));
        response
    }
}

/// The token endpoint's success body.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub open_id: String,
    pub refresh_expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
    pub token_type: &'static str,
}

/// Creates a grant with fresh tokens (used by the code exchange and by `/_sim/tokens`).
pub fn mint_grant(
    state: &mut State,
    open_id: &str,
    client_key: &str,
    scopes: Vec<String>,
) -> TokenResponse {
    let id = state.next_number();
    let grant = Grant {
        id,
        open_id: open_id.to_owned(),
        client_key: client_key.to_owned(),
        scopes,
    };
    let scope = grant.scopes.join(",");
    state.grants.insert(id, grant);
    let now = state.now_ms();
    let access_ttl = state.settings.access_token_ttl_secs;
    let refresh_ttl = state.settings.refresh_token_ttl_secs;
    let access_token = new_access_token(state, id, now);
    let refresh_token = format!("rft.{}", random_token(60));
    state.refresh_tokens.insert(
        sha256_hex(refresh_token.as_bytes()),
        TokenRecord {
            grant_id: id,
            expires_at_ms: now + refresh_ttl * 1000,
        },
    );
    TokenResponse {
        access_token,
        expires_in: access_ttl,
        open_id: open_id.to_owned(),
        refresh_expires_in: refresh_ttl,
        refresh_token,
        scope,
        token_type: "Bearer",
    }
}

fn new_access_token(state: &mut State, grant_id: u64, now: i64) -> String {
    let token = format!("act.{}", random_token(60));
    state.access_tokens.insert(
        sha256_hex(token.as_bytes()),
        TokenRecord {
            grant_id,
            expires_at_ms: now + state.settings.access_token_ttl_secs * 1000,
        },
    );
    token
}

fn bad_page(message: &str) -> Response {
    let page = format!(
        "<!doctype html><title>TikTok simulator: authorization error</title><p>{}</p>",
        html_escape(message)
    );
    let mut response = (StatusCode::BAD_REQUEST, Html(page)).into_response();
    response
        .extensions_mut()
        .insert(LoggedErrorCode("invalid_request".to_owned()));
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Builds `redirect_uri?...` with the given query pairs.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return bad_page("redirect_uri is not a valid URL"),
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    // Redirect::to answers 303; TikTok's page uses a plain 302.
    *response.status_mut() = StatusCode::FOUND;
    if let Some((_, error)) = pairs.iter().find(|(k, _)| *k == "error") {
        response
            .extensions_mut()
            .insert(LoggedErrorCode((*error).to_owned()));
    }
    response
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect_with(redirect_uri, &pairs)
}

fn is_valid_challenge(challenge: &str, encoding: PkceEncoding) -> bool {
    let hex = challenge.len() == 64
        && challenge
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let b64 = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match encoding {
        PkceEncoding::Hex => hex,
        PkceEncoding::Base64url => b64,
        PkceEncoding::Either => hex || b64,
    }
}

/// `GET /v2/auth/authorize/`: checks the request, then "logs in" the next scripted user.
pub async fn authorize(
    AxState(app): AxState<Arc<App>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    app.update(|st| authorize_in(st, &params))
}

/// The authorize page under the state lock: checks the app, then the request (errors from
/// here on go back to the redirect URI), takes the next scripted user and issues a code.
fn authorize_in(st: &mut State, params: &HashMap<String, String>) -> Response {
    let get = |k: &str| param(params, k);
    let settings = st.settings.clone();
    let redirect_uri = match check_client(&settings, get("client_key"), get("redirect_uri")) {
        Ok(redirect_uri) => redirect_uri,
        Err(message) => return bad_page(message),
    };
    let Some(csrf_state) = get("state") else {
        return redirect_error(redirect_uri, None, "invalid_request", "state is required.");
    };
    let fail = |error: &str, description: &str| {
        redirect_error(redirect_uri, Some(csrf_state), error, description)
    };
    let requested = match requested_scopes(get("response_type"), get("scope")) {
        Ok(requested) => requested,
        Err((error, description)) => return fail(error, description),
    };
    let stored_challenge = match check_pkce(
        &settings,
        get("code_challenge"),
        get("code_challenge_method"),
    ) {
        Ok(stored_challenge) => stored_challenge,
        Err((error, description)) => return fail(error, description),
    };
    let AuthorizeScript {
        open_id,
        deny,
        grant_scopes,
    } = match next_login(st) {
        Ok(login) => login,
        Err(message) => return bad_page(message),
    };
    if deny {
        return fail(
            "access_denied",
            "The user denied the authorization request.",
        );
    }
    let granted: Vec<String> = requested
        .into_iter()
        .filter(|s| grant_scopes.as_ref().is_none_or(|g| g.contains(s)))
        .collect();
    let code = random_token(64);
    let now = st.now_ms();
    st.codes.insert(
        sha256_hex(code.as_bytes()),
        AuthCode {
            client_key: settings.client_key.clone(),
            redirect_uri: redirect_uri.to_owned(),
            open_id,
            scopes: granted.clone(),
            code_challenge: stored_challenge,
            expires_at_ms: now + settings.code_ttl_secs * 1000,
            used: false,
        },
    );
    let scopes = granted.join(",");
    redirect_with(
        redirect_uri,
        &[("code", &code), ("scopes", &scopes), ("state", csrf_state)],
    )
}

/// A query parameter, with an empty value taken as absent.
fn param<'a>(params: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    params
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The app's part of an authorize request: a known client key and a registered redirect
/// URI. Gives the redirect URI, or what the error page says (nothing may be sent to an
/// unchecked URI).
fn check_client<'a>(
    settings: &Settings,
    client_key: Option<&str>,
    redirect_uri: Option<&'a str>,
) -> Result<&'a str, &'static str> {
    if client_key != Some(settings.client_key.as_str()) {
        return Err("client_key is missing or unknown.");
    }
    let Some(redirect_uri) = redirect_uri else {
        return Err("redirect_uri is missing.");
    };
    if !settings.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err("redirect_uri is not registered for this app.");
    }
    Ok(redirect_uri)
}

/// Checks `response_type` and `scope` and gives the requested scopes, or the OAuth error
/// and its description.
fn requested_scopes(
    response_type: Option<&str>,
    scope: Option<&str>,
) -> Result<Vec<String>, (&'static str, &'static str)> {
    if response_type != Some("code") {
        return Err(("unsupported_response_type", "response_type must be code."));
    }
    let Some(scope) = scope else {
        return Err(("invalid_scope", "scope is required."));
    };
    let requested: Vec<String> = scope.split(',').map(str::to_owned).collect();
    if requested
        .iter()
        .any(|s| !KNOWN_SCOPES.contains(&s.as_str()))
    {
        return Err((
            "invalid_scope",
            "scope holds an unknown scope (the list is comma-separated).",
        ));
    }
    Ok(requested)
}

/// Checks the PKCE parameters against the simulator's PKCE mode and gives the challenge to
/// store with the code (none when PKCE is off or none was sent), or the OAuth error and
/// its description.
fn check_pkce(
    settings: &Settings,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, (&'static str, &'static str)> {
    match settings.pkce {
        PkceMode::Off => Ok(None),
        PkceMode::Optional | PkceMode::Required => {
            if challenge.is_none() && settings.pkce == PkceMode::Required {
                return Err(("invalid_request", "code_challenge is required."));
            }
            if challenge.is_none() && method.is_some() {
                return Err((
                    "invalid_request",
                    "code_challenge_method without code_challenge.",
                ));
            }
            if let Some(challenge) = challenge {
                if method != Some("S256") {
                    return Err(("invalid_request", "code_challenge_method must be S256."));
                }
                if !is_valid_challenge(challenge, settings.pkce_encoding) {
                    return Err((
                        "invalid_request",
                        "code_challenge is not a SHA-256 digest in the expected encoding.",
                    ));
                }
            }
            Ok(challenge.map(str::to_owned))
        }
    }
}

/// Takes the next scripted login, or with none queued the first user, who allows every
/// requested scope. What the error page says when that user does not exist.
fn next_login(st: &mut State) -> Result<AuthorizeScript, &'static str> {
    let login = match st.authorize_queue.pop_front() {
        Some(script) => script,
        None => match st.users.first() {
            Some(user) => AuthorizeScript {
                open_id: user.open_id.clone(),
                deny: false,
                grant_scopes: None,
            },
            None => {
                return Err("No simulated user exists: POST /_sim/users first.");
            }
        },
    };
    if st.user(&login.open_id).is_none() {
        return Err("The scripted user does not exist.");
    }
    Ok(login)
}

/// Parses a form body; `None` when a field repeats (an ambiguous request).
fn parse_form(body: &[u8]) -> Option<HashMap<String, String>> {
    let mut fields = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if fields.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(fields)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Checks the content type, parses the form and the client credentials.
fn client_form(
    settings: &Settings,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::new(
            settings,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        ));
    }
    let form = parse_form(body)
        .ok_or_else(|| OAuthError::new(settings, "invalid_request", "A form field is repeated."))?;
    match (form.get("client_key"), form.get("client_secret")) {
        (Some(key), Some(secret)) => {
            if *key != settings.client_key || *secret != settings.client_secret {
                return Err(OAuthError::new(
                    settings,
                    "invalid_client",
                    "Client key or secret is incorrect.",
                ));
            }
        }
        _ => {
            return Err(OAuthError::new(
                settings,
                "invalid_request",
                "client_key and client_secret are required in the body.",
            ));
        }
    }
    Ok(form)
}

fn verifier_is_well_formed(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn verifier_matches(verifier: &str, challenge: &str, encoding: PkceEncoding) -> bool {
    let digest = Sha256::digest(verifier.as_bytes());
    let hex = hex::encode(digest) == challenge;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == challenge;
    match encoding {
        PkceEncoding::Hex => hex,
        PkceEncoding::Base64url => b64,
        PkceEncoding::Either => hex || b64,
    }
}

/// `POST /v2/oauth/token/`.
pub async fn token(AxState(app): AxState<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = app.update(|st| {
        let settings = st.settings.clone();
        let form = client_form(&settings, &headers, &body)?;
        let err =
            |error: &'static str, description: &str| OAuthError::new(&settings, error, description);
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => exchange_code(st, &settings, &form),
            Some("refresh_token") => refresh(st, &settings, &form),
            Some(_) => Err(err(
                "unsupported_grant_type",
                "The grant type is not supported.",
            )),
            None => Err(err("invalid_request", "grant_type is required.")),
        }
    });
    match result {
        Ok(tokens) => axum::Json(tokens).into_response(),
        Err(e) => e.into_response(),
    }
}

fn exchange_code(
    st: &mut State,
    settings: &Settings,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    let err =
        |error: &'static str, description: &str| OAuthError::new(settings, error, description);
    let code = form
        .get("code")
        .ok_or_else(|| err("invalid_request", "code is required."))?;
    let now = st.now_ms();
    let key = sha256_hex(code.as_bytes());
    let record = st
        .codes
        .get(&key)
        .cloned()
        .ok_or_else(|| err("invalid_grant", "Authorization code is invalid."))?;
    if record.used {
        return Err(err("invalid_grant", "Authorization code has been used."));
    }
    if record.expires_at_ms <= now {
        return Err(err("invalid_grant", "Authorization code is expired."));
    }
    if record.client_key != settings.client_key {
        return Err(err(
            "invalid_grant",
            "Authorization code was issued to another client.",
        ));
    }
    if form.get("redirect_uri") != Some(&record.redirect_uri) {
        return Err(err(
            "invalid_request",
            "Redirect_uri is not matched with the uri when requesting code.",
        ));
    }
    if settings.pkce != PkceMode::Off
        && let Some(challenge) = &record.code_challenge
    {
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| err("invalid_request", "code_verifier is required."))?;
        if !verifier_is_well_formed(verifier) {
            return Err(err(
                "invalid_request",
                "code_verifier must be 43-128 unreserved characters.",
            ));
        }
        if !verifier_matches(verifier, challenge, settings.pkce_encoding) {
            return Err(err(
                "invalid_grant",
                "code_verifier does not match the code_challenge.",
            ));
        }
    }
    if let Some(stored) = st.codes.get_mut(&key) {
        stored.used = true;
    }
    Ok(mint_grant(
        st,
        &record.open_id,
        &record.client_key,
        record.scopes,
    ))
}

fn refresh(
    st: &mut State,
    settings: &Settings,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    let err =
        |error: &'static str, description: &str| OAuthError::new(settings, error, description);
    let refresh_token = form
        .get("refresh_token")
        .ok_or_else(|| err("invalid_request", "refresh_token is required."))?;
    let now = st.now_ms();
    let key = sha256_hex(refresh_token.as_bytes());
    let record = st
        .refresh_tokens
        .get(&key)
        .cloned()
        .ok_or_else(|| err("invalid_grant", "Refresh token is invalid or expired."))?;
    if record.expires_at_ms <= now {
        return Err(err("invalid_grant", "Refresh token is invalid or expired."));
    }
    let grant = st
        .grants
        .get(&record.grant_id)
        .cloned()
        .ok_or_else(|| err("invalid_grant", "Refresh token is invalid or expired."))?;
    if grant.client_key != settings.client_key {
        return Err(err(
            "invalid_grant",
            "Refresh token was issued to another client.",
        ));
    }
    let access_token = new_access_token(st, grant.id, now);
    let (refresh_token, refresh_expires_at) = if settings.rotate_refresh_tokens {
        st.refresh_tokens.remove(&key);
        let new_token = format!("rft.{}", random_token(60));
        let expires_at_ms = now + settings.refresh_token_ttl_secs * 1000;
        st.refresh_tokens.insert(
            sha256_hex(new_token.as_bytes()),
            TokenRecord {
                grant_id: grant.id,
                expires_at_ms,
            },
        );
        (new_token, expires_at_ms)
    } else {
        (refresh_token.clone(), record.expires_at_ms)
    };
    Ok(TokenResponse {
        access_token,
        expires_in: settings.access_token_ttl_secs,
        open_id: grant.open_id,
        refresh_expires_in: (refresh_expires_at - now) / 1000,
        refresh_token,
        scope: grant.scopes.join(","),
        token_type: "Bearer",
    })
}

/// Removes every access and refresh token of a grant.
pub fn revoke_grant(st: &mut State, grant_id: u64) {
    st.access_tokens.retain(|_, r| r.grant_id != grant_id);
    st.refresh_tokens.retain(|_, r| r.grant_id != grant_id);
    st.grants.remove(&grant_id);
}

/// TikTok's reason code in `authorization.removed` when the app itself revoked.
pub const REASON_DEVELOPER_REVOKED: i64 = 5;

/// What [`remove_authorization`] did.
#[derive(Debug, Default)]
pub struct Removal {
    pub revoked_grants: usize,
    /// Publishes that were still processing and failed with `auth_removed`. Their running
    /// pulls must be stopped once the state lock is released ([`App::abort_pull`]).
    pub failed_publishes: Vec<String>,
}

/// Ends a user's whole authorization of the app: every grant of `open_id` (the tokens of
/// every code exchange, not only one; the simulator serves one app), then `authorization.removed` with
/// `reason` (when a webhook URL is set), then the user's publishes still processing fail
/// with `auth_removed`. Both the user removing the app and the app's revoke end here: the
/// docs say revoke "disconnects your app from the user's TikTok account", and the
/// simulator takes that at its word.
pub fn remove_authorization(app: &App, st: &mut State, open_id: &str, reason: i64) -> Removal {
    let grants: Vec<u64> = st
        .grants
        .values()
        .filter(|g| g.open_id == open_id)
        .map(|g| g.id)
        .collect();
    for id in &grants {
        revoke_grant(st, *id);
    }
    // Sent before the failures the removal causes (queued in App::update afterwards).
    crate::webhooks::enqueue(
        app,
        st,
        vec![crate::webhooks::Event {
            name: "authorization.removed",
            open_id: open_id.to_owned(),
            publish_id: None,
            content: json!({ "reason": reason }),
        }],
    );
    let now = st.now_ms();
    let mut failed = Vec::new();
    for publish in st.publishes.values_mut().filter(|p| {
        p.open_id == open_id
            && matches!(
                p.status,
                PublishStatus::ProcessingUpload | PublishStatus::ProcessingDownload
            )
    }) {
        publish.set_status(PublishStatus::Failed, Some("auth_removed".to_owned()), now);
        failed.push(publish.publish_id.clone());
    }
    Removal {
        revoked_grants: grants.len(),
        failed_publishes: failed,
    }
}

/// `POST /v2/oauth/revoke/`: ends the user's whole authorization of the app (the strict
/// reading of "disconnects your app from the user's TikTok account"): every token of the
/// access token's `open_id` dies, including those of other code exchanges, and
/// `authorization.removed` follows (reason 5, developer revoked).
pub async fn revoke(AxState(app): AxState<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = app.update(|st| {
        let settings = st.settings.clone();
        let form = client_form(&settings, &headers, &body)?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::new(&settings, "invalid_request", "token is required."))?;
        let key = sha256_hex(token.as_bytes());
        if st.refresh_tokens.contains_key(&key) {
            return Err(OAuthError::new(
                &settings,
                "invalid_request",
                "token must be an access token.",
            ));
        }
        // An unknown or already revoked token is not an error (RFC 7009).
        let Some(open_id) = st
            .access_tokens
            .get(&key)
            .and_then(|record| st.grants.get(&record.grant_id))
            .map(|grant| grant.open_id.clone())
        else {
            return Ok(Removal::default());
        };
        Ok(remove_authorization(
            &app,
            st,
            &open_id,
            REASON_DEVELOPER_REVOKED,
        ))
    });
    match result {
        Ok(removal) => {
            for publish_id in &removal.failed_publishes {
                app.abort_pull(publish_id);
            }
            axum::Json(json!({})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /v2/user/info/?fields=...`.
pub async fn user_info(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let caller = api::authenticate(&app, &headers)?;
    caller.require_scope(&["user.info.basic"])?;
    api::rate_limit(&app, &caller, Bucket::UserInfo, |s| s.user_info_per_min)?;
    let fields = params
        .get("fields")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::invalid_params("fields is required"))?;
    let user = app
        .read(|st| st.user(&caller.open_id).cloned())
        .ok_or_else(ApiError::token_invalid)?;
    let mut out = Map::new();
    for field in fields.split(',') {
        let value = match field {
            "open_id" => json!(user.open_id),
            "union_id" => json!(user.union_id),
            "avatar_url" | "avatar_url_100" | "avatar_large_url" => json!(user.avatar_url),
            "display_name" => json!(user.display_name),
            "username" => json!(user.username),
            "bio_description" | "profile_deep_link" | "is_verified" => {
                caller.require_scope(&["user.info.profile"])?;
                match field {
                    "bio_description" => json!(""),
                    "profile_deep_link" => {
                        json!(format!("https://www.tiktok.com/@{}", user.username))
                    }
                    _ => json!(false),
                }
            }
            "follower_count" | "following_count" | "likes_count" | "video_count" => {
                caller.require_scope(&["user.info.stats"])?;
                json!(0)
            }
            other => {
                return Err(ApiError::invalid_params(format!("Unknown field: {other}")));
            }
        };
        out.insert(field.to_owned(), value);
    }
    Ok(api::ok(Some(json!({"user": Value::Object(out)}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_encodings() {
        let verifier = "a".repeat(43);
        let digest = Sha256::digest(verifier.as_bytes());
        let hex = hex::encode(digest);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        assert!(verifier_matches(&verifier, &hex, PkceEncoding::Hex));
        assert!(!verifier_matches(&verifier, &b64, PkceEncoding::Hex));
        assert!(verifier_matches(&verifier, &b64, PkceEncoding::Base64url));
        assert!(verifier_matches(&verifier, &b64, PkceEncoding::Either));
        assert!(is_valid_challenge(&hex, PkceEncoding::Hex));
        assert!(!is_valid_challenge(&hex.to_uppercase(), PkceEncoding::Hex));
        assert!(is_valid_challenge(&b64, PkceEncoding::Either));
    }

    #[test]
    fn verifier_format() {
        assert!(verifier_is_well_formed(&"a-._~".repeat(9)));
        assert!(!verifier_is_well_formed(&"a".repeat(42)));
        assert!(!verifier_is_well_formed(&"a".repeat(129)));
        assert!(!verifier_is_well_formed(&format!("{}+", "a".repeat(43))));
    }
}
