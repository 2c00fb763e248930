//! The TikTok HTTP client: OAuth token calls and the Content Posting API.

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::config::{AppCredentials, Endpoints, PkceEncoding};
use super::error::{ApiError, ApiErrorCode, ErrorClass, OAuthError, OAuthErrorCode, TikTokError};
use super::oauth::{self, AuthorizeRequest, OAuthErrorBody, PkceVerifier, TokenResponse, UserInfo};
use super::posting::{
    CreatorInfo, DirectPostInfo, InitResponse, PhotoPost, PhotoPostBody, PublishStatus, SourceInfo,
    VideoSource,
};
use super::upload::UploadHosts;
use crate::backoff::Backoff;
use crate::caption;
use crate::secret::Secret;

const TOKEN_PATH: &str = "/v2/oauth/token/";
const REVOKE_PATH: &str = "/v2/oauth/revoke/";
const USER_INFO_PATH: &str = "/v2/user/info/";
const CREATOR_INFO_PATH: &str = "/v2/post/publish/creator_info/query/";
const INBOX_VIDEO_INIT_PATH: &str = "/v2/post/publish/inbox/video/init/";
const DIRECT_VIDEO_INIT_PATH: &str = "/v2/post/publish/video/init/";
const CONTENT_INIT_PATH: &str = "/v2/post/publish/content/init/";
const STATUS_FETCH_PATH: &str = "/v2/post/publish/status/fetch/";
const CANCEL_PATH: &str = "/v2/post/publish/cancel/";

/// The photo count TikTok accepts in one post.
pub const MAX_PHOTOS: usize = 35;

/// Retries of calls that are safe to repeat (reads). Inits are never retried
/// here: a 5xx may hide an init that happened, and a second init would make
/// a second draft; the job layer decides with the saved `publish_id` in hand.
#[derive(Debug, Clone, Copy)]
pub struct ReadRetry {
    /// Tries in all, the first one included.
    pub attempts: u32,
    /// The wait before each retry ([`crate::backoff`]).
    pub backoff: Backoff,
}

impl Default for ReadRetry {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
        }
    }
}

impl ReadRetry {
    /// No waiting between attempts, for tests.
    pub fn immediate(attempts: u32) -> Self {
        Self {
            attempts,
            backoff: Backoff::none(),
        }
    }

    /// The wait before retry `attempt` (0 for the first). TikTok may ask for
    /// a pause: it is honoured, but a read is not worth holding a Lambda
    /// invocation for longer than [`MAX_READ_RETRY_AFTER`].
    fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        self.backoff.or_asked(attempt, asked, MAX_READ_RETRY_AFTER)
    }
}

/// The longest `Retry-After` a read waits for.
const MAX_READ_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A client for one TikTok app. Cheap to clone; build one per cold start.
#[derive(Debug, Clone)]
pub struct TikTokClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    app: AppCredentials,
    read_retry: ReadRetry,
}

impl TikTokClient {
    /// A client for the app `app`, talking to `endpoints` through `http`
    /// (see [`super::config::http_client`]), with the default read retries.
    pub fn new(http: reqwest::Client, endpoints: Endpoints, app: AppCredentials) -> Self {
        Self {
            http,
            endpoints,
            app,
            read_retry: ReadRetry::default(),
        }
    }

    /// With other retries of read calls than [`ReadRetry::default`].
    pub fn with_read_retry(mut self, retry: ReadRetry) -> Self {
        self.read_retry = retry;
        self
    }

    /// The TikTok hosts (or the simulator's) this client calls.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The app's client key: public, it names the app in every request.
    pub fn client_key(&self) -> &str {
        &self.app.client_key
    }

    /// The URL to send the creator to. `pkce` is always set by this project's
    /// flows; it is optional here for TikTok apps that reject it.
    pub fn authorize_url(
        &self,
        scopes: &[&str],
        redirect_uri: &str,
        state: &str,
        pkce: Option<(&PkceVerifier, PkceEncoding)>,
    ) -> Url {
        oauth::authorize_url(
            &self.endpoints.auth_url,
            &AuthorizeRequest {
                client_key: &self.app.client_key,
                scopes,
                redirect_uri,
                state,
                pkce,
                // Always the consent page, so the creator sees which TikTok
                // account she is connecting (and can switch) instead of
                // TikTok silently reusing whichever account is signed in.
                disable_auto_auth: Some(true),
            },
        )
    }

    /// Exchanges an authorization code. `redirect_uri` must be the one the
    /// authorize URL carried.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&PkceVerifier>,
    ) -> Result<TokenResponse, TikTokError> {
        let mut form = vec![
            ("client_key", self.app.client_key.as_str()),
            ("client_secret", self.app.client_secret.expose()),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.expose()));
        }
        self.token_call(&form, None).await
    }

    /// Trades a refresh token for new tokens. TikTok rotates refresh tokens:
    /// store the returned one at once, atomically, and keep the old one only
    /// when none came back.
    pub async fn refresh_token(
        &self,
        refresh_token: &Secret,
    ) -> Result<TokenResponse, TikTokError> {
        self.refresh_token_call(refresh_token, None).await
    }

    /// [`Self::refresh_token`] given up after `timeout` (a transport error),
    /// whatever the client's own request timeout: the token manager sizes
    /// its refresh lease on this bound.
    pub async fn refresh_token_within(
        &self,
        refresh_token: &Secret,
        timeout: Duration,
    ) -> Result<TokenResponse, TikTokError> {
        self.refresh_token_call(refresh_token, Some(timeout)).await
    }

    async fn refresh_token_call(
        &self,
        refresh_token: &Secret,
        timeout: Option<Duration>,
    ) -> Result<TokenResponse, TikTokError> {
        let form = [
            ("client_key", self.app.client_key.as_str()),
            ("client_secret", self.app.client_secret.expose()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        self.token_call(&form, timeout).await
    }

    /// Revokes the grant behind an access token.
    pub async fn revoke(&self, access_token: &Secret) -> Result<(), TikTokError> {
        let form = [
            ("client_key", self.app.client_key.as_str()),
            ("client_secret", self.app.client_secret.expose()),
            ("token", access_token.expose()),
        ];
        let response = self
            .http
            .post(self.endpoints.api(REVOKE_PATH))
            .header(CACHE_CONTROL, "no-cache")
            .form(&form)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        // Success is an empty body or `{}`; an error is the OAuth shape.
        if let Ok(err) = serde_json::from_slice::<OAuthErrorBody>(&body) {
            return Err(oauth_error(status, err));
        }
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(unexpected(status, &body, None))
        }
    }

    async fn token_call(
        &self,
        form: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<TokenResponse, TikTokError> {
        let mut request = self
            .http
            .post(self.endpoints.api(TOKEN_PATH))
            .header(CACHE_CONTROL, "no-cache")
            .form(form);
        if let Some(timeout) = timeout {
            // Covers the whole exchange, the body included.
            request = request.timeout(timeout);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await?;
        // Judged by the body: TikTok answers OAuth errors with HTTP 200.
        let value: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return Err(unexpected(status, &body, retry_after)),
        };
        let has_error = value
            .get("error")
            .and_then(|e| e.as_str())
            .is_some_and(|e| !e.is_empty());
        if has_error {
            let err: OAuthErrorBody = serde_json::from_value(value)
                .map_err(|e| unexpected_detail(status, format!("bad error body: {e}"), None))?;
            return Err(oauth_error(status, err));
        }
        if value.get("access_token").is_none() {
            return Err(unexpected_detail(
                status,
                "token answer without access_token or error".into(),
                retry_after,
            ));
        }
        let tokens: TokenResponse = serde_json::from_value(value)
            .map_err(|e| unexpected_detail(status, format!("bad token answer: {e}"), None))?;
        tracing::debug!(open_id = %tokens.open_id, expires_in = tokens.expires_in, "tiktok token issued");
        Ok(tokens)
    }

    /// The basic profile (`user.info.basic`): open id, display name, avatar.
    pub async fn user_info(&self, access_token: &Secret) -> Result<UserInfo, TikTokError> {
        #[derive(serde::Deserialize)]
        struct Data {
            #[serde(default)]
            user: UserInfo,
        }
        let mut url = self.endpoints.api(USER_INFO_PATH);
        url.query_pairs_mut()
            .append_pair("fields", "open_id,union_id,avatar_url,display_name");
        let data: Data = self
            .retrying_read(|| async {
                let response = self
                    .http
                    .get(url.clone())
                    .bearer_auth(access_token.expose())
                    .send()
                    .await?;
                parse_envelope(USER_INFO_PATH, response).await
            })
            .await?;
        Ok(data.user)
    }

    /// `creator_info/query`: call it before every direct post, to learn the
    /// privacy levels the creator allows and whether they may post at all.
    pub async fn creator_info(&self, access_token: &Secret) -> Result<CreatorInfo, TikTokError> {
        self.retrying_read(|| self.post_json(CREATOR_INFO_PATH, access_token, None::<&()>))
            .await
    }

    /// Starts an upload to the creator's inbox (a draft). Not retried: see
    /// [`ReadRetry`].
    pub async fn init_inbox_video(
        &self,
        access_token: &Secret,
        source: &VideoSource,
    ) -> Result<InitResponse, TikTokError> {
        check_source(source)?;
        #[derive(Serialize)]
        struct Body<'a> {
            source_info: SourceInfo<'a>,
        }
        self.post_init(
            INBOX_VIDEO_INIT_PATH,
            access_token,
            &Body {
                source_info: source.into(),
            },
            matches!(source, VideoSource::FileUpload(_)),
        )
        .await
    }

    /// Starts a direct post to the feed. Only reached when the deployment
    /// enabled direct posting and the upload asked for it.
    pub async fn init_direct_video(
        &self,
        access_token: &Secret,
        post_info: &DirectPostInfo,
        source: &VideoSource,
    ) -> Result<InitResponse, TikTokError> {
        check_source(source)?;
        if let Some(title) = &post_info.title {
            check_len("title", title, caption::VIDEO_TITLE_MAX)?;
        }
        #[derive(Serialize)]
        struct Body<'a> {
            post_info: &'a DirectPostInfo,
            source_info: SourceInfo<'a>,
        }
        self.post_init(
            DIRECT_VIDEO_INIT_PATH,
            access_token,
            &Body {
                post_info,
                source_info: source.into(),
            },
            matches!(source, VideoSource::FileUpload(_)),
        )
        .await
    }

    /// Starts a photo post (`media_type = PHOTO`, `PULL_FROM_URL`).
    pub async fn init_photo(
        &self,
        access_token: &Secret,
        post: &PhotoPost,
    ) -> Result<InitResponse, TikTokError> {
        if post.photo_images.is_empty() || post.photo_images.len() > MAX_PHOTOS {
            return Err(TikTokError::InvalidRequest(format!(
                "a photo post has 1 to {MAX_PHOTOS} images, not {}",
                post.photo_images.len()
            )));
        }
        if post.photo_cover_index as usize >= post.photo_images.len() {
            return Err(TikTokError::InvalidRequest(format!(
                "photo_cover_index {} is out of range for {} images",
                post.photo_cover_index,
                post.photo_images.len()
            )));
        }
        if let Some(title) = &post.title {
            check_len("title", title, caption::PHOTO_TITLE_MAX)?;
        }
        if let Some(description) = &post.description {
            check_len("description", description, caption::PHOTO_DESCRIPTION_MAX)?;
        }
        if post.post_mode == super::posting::PostMode::DirectPost && post.privacy_level.is_none() {
            return Err(TikTokError::InvalidRequest(
                "a direct photo post needs a privacy level".into(),
            ));
        }
        for url in &post.photo_images {
            check_media_url(url)?;
        }
        self.post_init(
            CONTENT_INIT_PATH,
            access_token,
            &PhotoPostBody::new(post),
            false,
        )
        .await
    }

    /// The state of one publish. Safe to repeat, so passing faults are retried.
    pub async fn fetch_status(
        &self,
        access_token: &Secret,
        publish_id: &str,
    ) -> Result<PublishStatus, TikTokError> {
        #[derive(Serialize)]
        struct Body<'a> {
            publish_id: &'a str,
        }
        let body = Body { publish_id };
        self.retrying_read(|| self.post_json(STATUS_FETCH_PATH, access_token, Some(&body)))
            .await
    }

    /// The state of one publish in exactly one HTTP attempt: no retry on a
    /// 429 or 5xx and no wait for `Retry-After`. For callers that count
    /// every request against TikTok's 30 status requests a minute per token
    /// (the status checker): a retry here would be a request they did not
    /// count, and a wait would hold their run. A failure is theirs to
    /// schedule.
    pub async fn fetch_status_once(
        &self,
        access_token: &Secret,
        publish_id: &str,
    ) -> Result<PublishStatus, TikTokError> {
        #[derive(Serialize)]
        struct Body<'a> {
            publish_id: &'a str,
        }
        self.post_json(STATUS_FETCH_PATH, access_token, Some(&Body { publish_id }))
            .await
    }

    /// Cancels a `PULL_FROM_URL` download that is still in progress (best
    /// effort on TikTok's side).
    pub async fn cancel(&self, access_token: &Secret, publish_id: &str) -> Result<(), TikTokError> {
        #[derive(Serialize)]
        struct Body<'a> {
            publish_id: &'a str,
        }
        let _: serde_json::Value = self
            .post_json(CANCEL_PATH, access_token, Some(&Body { publish_id }))
            .await?;
        Ok(())
    }

    /// Sends an init. A success answer that cannot be used becomes
    /// [`TikTokError::InitUnusable`] (naming the `publish_id` if the answer
    /// has one), never an ordinary unexpected response: TikTok may hold the
    /// publish, and the caller must not take it for a refusal.
    async fn post_init<B: Serialize>(
        &self,
        path: &'static str,
        access_token: &Secret,
        body: &B,
        file_upload: bool,
    ) -> Result<InitResponse, TikTokError> {
        let data: serde_json::Value = match self.post_json(path, access_token, Some(body)).await {
            Ok(data) => data,
            // The body is left out: it may hold the upload URL's token.
            Err(TikTokError::UnexpectedResponse { status, .. }) if (200..300).contains(&status) => {
                return Err(TikTokError::InitUnusable {
                    publish_id: None,
                    detail: format!("{path}: HTTP {status} without TikTok's answer envelope"),
                });
            }
            Err(err) => return Err(err),
        };
        let named = data
            .get("publish_id")
            .and_then(serde_json::Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        let init: InitResponse =
            serde_json::from_value(data).map_err(|e| TikTokError::InitUnusable {
                publish_id: named,
                detail: format!("{path}: data does not match: {e}"),
            })?;
        check_init(&init, file_upload, &self.endpoints().upload_hosts())?;
        Ok(init)
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &'static str,
        access_token: &Secret,
        body: Option<&B>,
    ) -> Result<T, TikTokError> {
        let mut request = self
            .http
            .post(self.endpoints.api(path))
            .bearer_auth(access_token.expose())
            .header(CONTENT_TYPE, "application/json; charset=UTF-8");
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| TikTokError::InvalidRequest(format!("cannot encode body: {e}")))?;
            request = request.body(bytes);
        }
        let response = request.send().await?;
        parse_envelope(path, response).await
    }

    async fn retrying_read<T, F, Fut>(&self, mut call: F) -> Result<T, TikTokError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, TikTokError>>,
    {
        let attempts = self.read_retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if e.class() == ErrorClass::Retryable && attempt + 1 < attempts => {
                    let delay = self.read_retry.delay(attempt, e.retry_after());
                    tracing::warn!(error = %e, attempt, delay_ms = delay.as_millis() as u64, "retrying a TikTok read");
                    crate::backoff::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Decodes `{"data":…,"error":{"code","message","log_id"}}`. Failure is any
/// `error.code` other than `ok`, whatever the HTTP status.
async fn parse_envelope<T: DeserializeOwned>(
    path: &'static str,
    response: reqwest::Response,
) -> Result<T, TikTokError> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        data: Option<serde_json::Value>,
        #[serde(default)]
        error: Option<ErrorBody>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default, alias = "logid")]
        log_id: Option<String>,
    }

    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = response.bytes().await?;
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(_) => return Err(unexpected(status, &body, retry_after)),
    };
    let error = envelope.error.unwrap_or(ErrorBody {
        code: String::new(),
        message: String::new(),
        log_id: None,
    });
    if error.code != "ok" {
        if error.code.is_empty() {
            return Err(unexpected(status, &body, retry_after));
        }
        let err = ApiError {
            http_status: status,
            code: ApiErrorCode::parse(&error.code),
            message: error.message,
            log_id: error.log_id,
            retry_after,
        };
        tracing::info!(endpoint = path, http_status = status, code = %err.code, log_id = err.log_id.as_deref().unwrap_or(""), "tiktok api error");
        return Err(TikTokError::Api(err));
    }
    if !(200..300).contains(&status) {
        return Err(unexpected(status, &body, retry_after));
    }
    tracing::debug!(
        endpoint = path,
        log_id = error.log_id.as_deref().unwrap_or(""),
        "tiktok api ok"
    );
    let data = envelope
        .data
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    serde_json::from_value(data)
        .map_err(|e| unexpected_detail(status, format!("{path}: data does not match: {e}"), None))
}

fn oauth_error(status: u16, body: OAuthErrorBody) -> TikTokError {
    let err = OAuthError {
        http_status: status,
        code: OAuthErrorCode::parse(&body.error),
        description: body.error_description,
        log_id: body.log_id,
    };
    tracing::info!(http_status = status, code = %err.code, log_id = err.log_id.as_deref().unwrap_or(""), "tiktok oauth error");
    TikTokError::OAuth(err)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn unexpected(status: u16, body: &[u8], retry_after: Option<Duration>) -> TikTokError {
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.chars().take(200).collect();
    unexpected_detail(status, format!("body: {excerpt:?}"), retry_after)
}

fn unexpected_detail(status: u16, detail: String, retry_after: Option<Duration>) -> TikTokError {
    TikTokError::UnexpectedResponse {
        status,
        detail,
        retry_after,
    }
}

fn check_len(field: &str, text: &str, max: usize) -> Result<(), TikTokError> {
    let len = caption::utf16_len(text);
    if len > max {
        return Err(TikTokError::InvalidRequest(format!(
            "{field} is {len} UTF-16 units long; TikTok allows {max}"
        )));
    }
    Ok(())
}

fn check_source(source: &VideoSource) -> Result<(), TikTokError> {
    match source {
        VideoSource::FileUpload(plan) => plan
            .validate()
            .map_err(|e| TikTokError::InvalidRequest(format!("chunk plan: {e}"))),
        VideoSource::PullFromUrl { video_url } => check_media_url(video_url),
    }
}

/// TikTok pulls only absolute http(s) URLs; catch a relative key or a typo
/// before spending an init (6 a minute) on it.
fn check_media_url(raw: &str) -> Result<(), TikTokError> {
    match Url::parse(raw) {
        Ok(url) if url.scheme() == "https" || url.scheme() == "http" => Ok(()),
        _ => Err(TikTokError::InvalidRequest(
            "a media URL must be an absolute https URL under a verified prefix".into(),
        )),
    }
}

fn check_init(
    init: &InitResponse,
    file_upload: bool,
    upload_hosts: &UploadHosts,
) -> Result<(), TikTokError> {
    if init.publish_id.is_empty() {
        return Err(TikTokError::InitUnusable {
            publish_id: None,
            detail: "init answered no publish_id".into(),
        });
    }
    if file_upload && init.upload_url.is_none() {
        return Err(TikTokError::InitUnusable {
            publish_id: Some(init.publish_id.clone()),
            detail: format!(
                "init for FILE_UPLOAD answered no upload_url (publish_id {})",
                init.publish_id
            ),
        });
    }
    // A URL that is not TikTok's would receive the creator's video.
    if let Some(url) = init.upload_url.as_ref().filter(|_| file_upload)
        && let Err(err) = upload_hosts.target(url.expose())
    {
        return Err(TikTokError::InitUnusable {
            publish_id: Some(init.publish_id.clone()),
            detail: format!(
                "init for FILE_UPLOAD answered an upload URL that is refused: {err} (publish_id {})",
                init.publish_id
            ),
        });
    }
    Ok(())
}
