//! The one error type of the TikTok API boundary, and how to react to each error.
//!
//! TikTok reports errors in two shapes: the Content Posting API wraps them in
//! `{"data":…,"error":{"code","message","log_id"}}` and means failure whenever
//! `code != "ok"`, whatever the HTTP status; the OAuth endpoints answer a flat
//! `{"error","error_description","log_id"}`, often with HTTP 200. Both end up
//! here, together with transport failures, and each gets an [`ErrorClass`] that
//! tells the caller what to do next.

use std::fmt;
use std::time::Duration;

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A passing fault (5xx, `internal_error`, 429, network): try again after
    /// [`TikTokError::retry_after`] or a backoff.
    Retryable,
    /// The access token is invalid or expired: refresh it, then retry once.
    NeedsRefresh,
    /// The grant itself is gone or lacks a scope: the creator must connect again.
    NeedsReauthorization,
    /// A 24-hour cap of TikTok's was reached (pending drafts, posts per day,
    /// active creators): waiting it out is the only cure; never hammer it.
    CapReached,
    /// Retrying the same request cannot succeed (bad parameters, spam risk,
    /// banned user, unverified URL, unaudited client, ...).
    Permanent,
}

/// Every `error.code` the Content Posting and v2 APIs document.
///
/// `invalid_param` (the Content Posting tables) and `invalid_params` (the
/// general table and real responses) are one error: both parse to
/// [`ApiErrorCode::InvalidParams`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApiErrorCode {
    /// `access_token_invalid`: the access token is expired or revoked.
    AccessTokenInvalid,
    /// `scope_not_authorized`: the grant lacks a scope the call needs.
    ScopeNotAuthorized,
    /// `scope_permission_missed`: the grant lacks a scope the call needs.
    ScopePermissionMissed,
    /// `rate_limit_exceeded`: too many requests for now.
    RateLimitExceeded,
    /// `internal_error`: TikTok's own fault.
    InternalError,
    /// `invalid_file_upload`: the media's format, size or length is not
    /// accepted.
    InvalidFileUpload,
    /// `invalid_param` or `invalid_params`: a field of the request is wrong.
    InvalidParams,
    /// `app_version_check_failed`: the creator's TikTok app is too old for
    /// photo drafts.
    AppVersionCheckFailed,
    /// `invalid_publish_id`: TikTok does not know the `publish_id`.
    InvalidPublishId,
    /// `token_not_authorized_for_specified_publish_id`: the `publish_id`
    /// belongs to another account.
    TokenNotAuthorizedForSpecifiedPublishId,
    /// `publish_not_cancellable`: too late to cancel the publish.
    PublishNotCancellable,
    /// `spam_risk_too_many_posts`: the account's daily posting cap.
    SpamRiskTooManyPosts,
    /// `spam_risk_too_many_pending_share`: 5 drafts already pending in the
    /// account's inbox within 24 hours.
    SpamRiskTooManyPendingShare,
    /// `spam_risk_user_banned_from_posting`: the account may not post.
    SpamRiskUserBannedFromPosting,
    /// `reached_active_user_cap`: the app's daily cap of active creators.
    ReachedActiveUserCap,
    /// `unaudited_client_can_only_post_to_private_accounts`: until TikTok
    /// audits the app, it posts only privately, to private accounts.
    UnauditedClientCanOnlyPostToPrivateAccounts,
    /// `url_ownership_unverified`: a PULL_FROM_URL address is not under a
    /// prefix verified for the app.
    UrlOwnershipUnverified,
    /// `privacy_level_option_mismatch`: the privacy level is not one the
    /// creator's account offers.
    PrivacyLevelOptionMismatch,
    /// A code the documentation does not list; kept verbatim.
    Other(String),
}

impl ApiErrorCode {
    /// The variant for TikTok's `error.code` text; unknown codes are
    /// [`ApiErrorCode::Other`].
    pub fn parse(code: &str) -> Self {
        match code {
            "access_token_invalid" => Self::AccessTokenInvalid,
            "scope_not_authorized" => Self::ScopeNotAuthorized,
            "scope_permission_missed" => Self::ScopePermissionMissed,
            "rate_limit_exceeded" => Self::RateLimitExceeded,
            "internal_error" => Self::InternalError,
            "invalid_file_upload" => Self::InvalidFileUpload,
            "invalid_param" | "invalid_params" => Self::InvalidParams,
            "app_version_check_failed" => Self::AppVersionCheckFailed,
            "invalid_publish_id" => Self::InvalidPublishId,
            "token_not_authorized_for_specified_publish_id" => {
                Self::TokenNotAuthorizedForSpecifiedPublishId
            }
            "publish_not_cancellable" => Self::PublishNotCancellable,
            "spam_risk_too_many_posts" => Self::SpamRiskTooManyPosts,
            "spam_risk_too_many_pending_share" => Self::SpamRiskTooManyPendingShare,
            "spam_risk_user_banned_from_posting" => Self::SpamRiskUserBannedFromPosting,
            "reached_active_user_cap" => Self::ReachedActiveUserCap,
            "unaudited_client_can_only_post_to_private_accounts" => {
                Self::UnauditedClientCanOnlyPostToPrivateAccounts
            }
            "url_ownership_unverified" => Self::UrlOwnershipUnverified,
            "privacy_level_option_mismatch" => Self::PrivacyLevelOptionMismatch,
            other => Self::Other(other.to_owned()),
        }
    }

    /// TikTok's code text (`invalid_params` for both spellings).
    pub fn as_str(&self) -> &str {
        match self {
            Self::AccessTokenInvalid => "access_token_invalid",
            Self::ScopeNotAuthorized => "scope_not_authorized",
            Self::ScopePermissionMissed => "scope_permission_missed",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::InternalError => "internal_error",
            Self::InvalidFileUpload => "invalid_file_upload",
            Self::InvalidParams => "invalid_params",
            Self::AppVersionCheckFailed => "app_version_check_failed",
            Self::InvalidPublishId => "invalid_publish_id",
            Self::TokenNotAuthorizedForSpecifiedPublishId => {
                "token_not_authorized_for_specified_publish_id"
            }
            Self::PublishNotCancellable => "publish_not_cancellable",
            Self::SpamRiskTooManyPosts => "spam_risk_too_many_posts",
            Self::SpamRiskTooManyPendingShare => "spam_risk_too_many_pending_share",
            Self::SpamRiskUserBannedFromPosting => "spam_risk_user_banned_from_posting",
            Self::ReachedActiveUserCap => "reached_active_user_cap",
            Self::UnauditedClientCanOnlyPostToPrivateAccounts => {
                "unaudited_client_can_only_post_to_private_accounts"
            }
            Self::UrlOwnershipUnverified => "url_ownership_unverified",
            Self::PrivacyLevelOptionMismatch => "privacy_level_option_mismatch",
            Self::Other(code) => code,
        }
    }

    /// What to do about this code, regardless of the HTTP status.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::RateLimitExceeded | Self::InternalError => ErrorClass::Retryable,
            Self::AccessTokenInvalid => ErrorClass::NeedsRefresh,
            Self::ScopeNotAuthorized | Self::ScopePermissionMissed => {
                ErrorClass::NeedsReauthorization
            }
            Self::SpamRiskTooManyPosts
            | Self::SpamRiskTooManyPendingShare
            | Self::ReachedActiveUserCap => ErrorClass::CapReached,
            Self::InvalidFileUpload
            | Self::InvalidParams
            | Self::AppVersionCheckFailed
            | Self::InvalidPublishId
            | Self::TokenNotAuthorizedForSpecifiedPublishId
            | Self::PublishNotCancellable
            | Self::SpamRiskUserBannedFromPosting
            | Self::UnauditedClientCanOnlyPostToPrivateAccounts
            | Self::UrlOwnershipUnverified
            | Self::PrivacyLevelOptionMismatch
            | Self::Other(_) => ErrorClass::Permanent,
        }
    }

    /// A sentence a creator or operator can act on.
    pub fn human_message(&self) -> &'static str {
        match self {
            // No promise of a refresh here: this sentence also ends up
            // where none follows (a job's error, the CLI). The one place
            // that refreshes says so itself (`tokens::call_with_token`).
            Self::AccessTokenInvalid => "TikTok refused the access token as invalid or expired.",
            Self::ScopeNotAuthorized | Self::ScopePermissionMissed => {
                "The creator did not grant a permission this needs; connect the account again and keep every permission switched on."
            }
            Self::RateLimitExceeded => {
                "TikTok's rate limit for this account was reached; the request will be retried after a pause."
            }
            Self::InternalError => "TikTok had an internal error; the request will be retried.",
            Self::InvalidFileUpload => {
                "TikTok rejected the uploaded file; check the format (MP4, MOV or WebM) and size."
            }
            Self::InvalidParams => {
                "TikTok rejected the request's parameters (for example the chunk plan, a caption that is too long, or a bad field)."
            }
            Self::AppVersionCheckFailed => {
                "The creator's TikTok app is too old for photo drafts; update the app to version 31.8 or later."
            }
            Self::InvalidPublishId => "TikTok does not know this publish id.",
            Self::TokenNotAuthorizedForSpecifiedPublishId => {
                "This publish id belongs to another TikTok account."
            }
            Self::PublishNotCancellable => {
                "The upload can no longer be cancelled (it is nearly done or already processing)."
            }
            Self::SpamRiskTooManyPosts => {
                "The account reached TikTok's daily posting cap; try again in 24 hours or post from the app."
            }
            Self::SpamRiskTooManyPendingShare => {
                "The account already has 5 drafts waiting in its TikTok inbox within 24 hours; the upload waits until a slot frees."
            }
            Self::SpamRiskUserBannedFromPosting => {
                "TikTok has banned this account from posting; nothing can be uploaded for it."
            }
            Self::ReachedActiveUserCap => {
                "The TikTok app reached its daily cap of active creators; try again tomorrow."
            }
            Self::UnauditedClientCanOnlyPostToPrivateAccounts => {
                "The TikTok app is not audited yet: it may only post privately (SELF_ONLY) to private accounts."
            }
            Self::UrlOwnershipUnverified => {
                "The media URL is not under a domain or URL prefix verified for this TikTok app."
            }
            Self::PrivacyLevelOptionMismatch => {
                "The requested privacy level is not one the creator's account allows."
            }
            Self::Other(_) => "TikTok answered with an error this tool does not know.",
        }
    }
}

impl fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a Content Posting or v2 endpoint (`error.code != "ok"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The answer's HTTP status (TikTok sends errors with 200 too).
    pub http_status: u16,
    /// TikTok's `error.code`.
    pub code: ApiErrorCode,
    /// TikTok's own message, as sent.
    pub message: String,
    /// TikTok's id of the request, for its support; `None` when not sent.
    pub log_id: Option<String>,
    /// From a `Retry-After` header, when TikTok sent one.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// What to do about it: a 5xx is retryable whatever its code, otherwise
    /// as the code says ([`ApiErrorCode::class`]).
    pub fn class(&self) -> ErrorClass {
        // A 5xx is a passing fault whatever code came with it.
        if self.http_status >= 500 {
            return ErrorClass::Retryable;
        }
        self.code.class()
    }
}

/// The `error` values of the OAuth endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// `access_denied`: the creator declined the login.
    AccessDenied,
    /// `invalid_client`: the client key or secret is wrong.
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired or
    /// revoked.
    InvalidGrant,
    /// `invalid_request`: a parameter is wrong, often the redirect URI.
    InvalidRequest,
    /// `invalid_scope`: a scope asked for is not enabled for the app.
    InvalidScope,
    /// `unauthorized_client`: the app may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: TikTok does not know the grant type.
    UnsupportedGrantType,
    /// `unsupported_response_type`: TikTok does not know the response type.
    UnsupportedResponseType,
    /// `server_error`: TikTok's own fault.
    ServerError,
    /// `temporarily_unavailable`: TikTok's login is down for now.
    TemporarilyUnavailable,
    /// `non_sandbox_target`: a sandbox app's login by an account that is not
    /// one of its target users.
    NonSandboxTarget,
    /// A code this list does not know; kept verbatim.
    Other(String),
}

impl OAuthErrorCode {
    /// The variant for the `error` text; unknown codes are
    /// [`OAuthErrorCode::Other`].
    pub fn parse(code: &str) -> Self {
        match code {
            "access_denied" => Self::AccessDenied,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "invalid_request" => Self::InvalidRequest,
            "invalid_scope" => Self::InvalidScope,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "non_sandbox_target" => Self::NonSandboxTarget,
            other => Self::Other(other.to_owned()),
        }
    }

    /// TikTok's code text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidScope => "invalid_scope",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::NonSandboxTarget => "non_sandbox_target",
            Self::Other(code) => code,
        }
    }

    /// What to do about this code, regardless of the HTTP status.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::ServerError | Self::TemporarilyUnavailable => ErrorClass::Retryable,
            // A code or refresh token that is bad, expired or revoked: only a
            // new login helps. Also what a denied login or a non-target
            // sandbox user needs.
            Self::InvalidGrant | Self::AccessDenied | Self::NonSandboxTarget => {
                ErrorClass::NeedsReauthorization
            }
            _ => ErrorClass::Permanent,
        }
    }

    /// A sentence a creator or operator can act on.
    pub fn human_message(&self) -> &'static str {
        match self {
            Self::AccessDenied => "The creator declined the TikTok login.",
            Self::InvalidClient => {
                "TikTok did not accept the app's client key or secret; check the app credentials."
            }
            Self::InvalidGrant => {
                "The authorization code or refresh token is invalid, expired or revoked; connect the account again."
            }
            Self::InvalidRequest => {
                "TikTok rejected the login request (often a redirect URI that does not match the app's settings)."
            }
            Self::InvalidScope => "A requested scope is not enabled for the TikTok app.",
            Self::UnauthorizedClient => "The TikTok app is not allowed to use this grant.",
            Self::UnsupportedGrantType => "TikTok does not support this grant type.",
            Self::UnsupportedResponseType => "TikTok does not support this response type.",
            Self::ServerError | Self::TemporarilyUnavailable => {
                "TikTok's login service had a passing problem; try again shortly."
            }
            Self::NonSandboxTarget => {
                "This TikTok account is not a target user of the app's sandbox; add it in the developer portal."
            }
            Self::Other(_) => "TikTok's login answered with an error this tool does not know.",
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from `/v2/oauth/token/` or `/v2/oauth/revoke/`, or from the
/// authorize redirect (`error=` on the callback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The answer's HTTP status (TikTok sends errors with 200 too).
    pub http_status: u16,
    /// TikTok's `error`.
    pub code: OAuthErrorCode,
    /// TikTok's `error_description`, as sent; may be empty.
    pub description: String,
    /// TikTok's id of the request, for its support; `None` when not sent.
    pub log_id: Option<String>,
}

/// The one error type of the TikTok client.
#[derive(Debug, thiserror::Error)]
pub enum TikTokError {
    /// A Content Posting or v2 endpoint answered with an error.
    #[error("TikTok API error {} (HTTP {}): {}{}", .0.code, .0.http_status, .0.code.human_message(), log_suffix(.0.log_id.as_deref()))]
    Api(ApiError),

    /// An OAuth endpoint (or the authorize redirect) answered with an error.
    #[error("TikTok login error {}: {}{}", .0.code, .0.code.human_message(), log_suffix(.0.log_id.as_deref()))]
    OAuth(OAuthError),

    /// The request never got an HTTP answer (connect, reset, timeout).
    /// Built with the URL stripped: an upload URL carries a token.
    #[error("could not reach TikTok: {0}")]
    Transport(#[source] reqwest::Error),

    /// An HTTP answer that is neither success nor a TikTok error body, such as
    /// a gateway's HTML page.
    #[error("unexpected HTTP {status} from TikTok: {detail}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong: the start of the body, or why it did not decode.
        detail: String,
        /// From a `Retry-After` header, when there was one.
        retry_after: Option<Duration>,
    },

    /// The request was refused before it was sent (a caption too long, a bad
    /// URL, ...): a bug or bad input on our side, never retried.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// An init TikTok answered with success (a 2xx, `error.code` `ok` or no
    /// envelope at all) that cannot be used: the data does not decode, the
    /// `publish_id` is empty, or a FILE_UPLOAD answer has no `upload_url`.
    /// TikTok may hold the publish, so it must never be sent again blindly;
    /// `publish_id` is the one the answer named, if any. Never retried.
    #[error("TikTok accepted the init but its answer cannot be used: {detail}")]
    InitUnusable {
        /// The `publish_id` the answer named; `None` when it named none.
        publish_id: Option<String>,
        /// What is wrong with the answer.
        detail: String,
    },
}

fn log_suffix(log_id: Option<&str>) -> String {
    match log_id {
        Some(id) if !id.is_empty() => format!(" (log_id {id})"),
        _ => String::new(),
    }
}

impl TikTokError {
    /// What the caller should do about it: network failures, 5xx, 408 and
    /// 429 are retryable; TikTok's codes as [`ApiError::class`] and
    /// [`OAuthErrorCode::class`] say.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api(e) => e.class(),
            Self::OAuth(e) => {
                if e.http_status >= 500 {
                    ErrorClass::Retryable
                } else {
                    e.code.class()
                }
            }
            Self::Transport(_) => ErrorClass::Retryable,
            Self::UnexpectedResponse { status, .. } => {
                if *status >= 500 || *status == 429 || *status == 408 {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::Permanent
                }
            }
            Self::InvalidRequest(_) | Self::InitUnusable { .. } => ErrorClass::Permanent,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// How long TikTok asked us to wait, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(e) => e.retry_after,
            Self::UnexpectedResponse { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The API error code, when TikTok sent one.
    pub fn api_code(&self) -> Option<&ApiErrorCode> {
        match self {
            Self::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The OAuth error code, when TikTok sent one.
    pub fn oauth_code(&self) -> Option<&OAuthErrorCode> {
        match self {
            Self::OAuth(e) => Some(&e.code),
            _ => None,
        }
    }

    /// A short machine-readable code for job records: TikTok's own code where
    /// there is one.
    pub fn code_str(&self) -> &str {
        match self {
            Self::Api(e) => e.code.as_str(),
            Self::OAuth(e) => e.code.as_str(),
            Self::Transport(_) => "transport_error",
            Self::UnexpectedResponse { .. } => "unexpected_response",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InitUnusable { .. } => "init_unusable",
        }
    }
}

impl From<reqwest::Error> for TikTokError {
    fn from(err: reqwest::Error) -> Self {
        Self::Transport(err.without_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_invalid_params_are_one_error() {
        assert_eq!(
            ApiErrorCode::parse("invalid_param"),
            ApiErrorCode::parse("invalid_params")
        );
        assert_eq!(
            ApiErrorCode::parse("invalid_param").as_str(),
            "invalid_params"
        );
    }

    #[test]
    fn every_documented_code_round_trips_and_is_classified() {
        let table = [
            ("access_token_invalid", ErrorClass::NeedsRefresh),
            ("scope_not_authorized", ErrorClass::NeedsReauthorization),
            ("scope_permission_missed", ErrorClass::NeedsReauthorization),
            ("rate_limit_exceeded", ErrorClass::Retryable),
            ("internal_error", ErrorClass::Retryable),
            ("invalid_file_upload", ErrorClass::Permanent),
            ("invalid_params", ErrorClass::Permanent),
            ("app_version_check_failed", ErrorClass::Permanent),
            ("invalid_publish_id", ErrorClass::Permanent),
            (
                "token_not_authorized_for_specified_publish_id",
                ErrorClass::Permanent,
            ),
            ("publish_not_cancellable", ErrorClass::Permanent),
            ("spam_risk_too_many_posts", ErrorClass::CapReached),
            ("spam_risk_too_many_pending_share", ErrorClass::CapReached),
            ("spam_risk_user_banned_from_posting", ErrorClass::Permanent),
            ("reached_active_user_cap", ErrorClass::CapReached),
            (
                "unaudited_client_can_only_post_to_private_accounts",
                ErrorClass::Permanent,
            ),
            ("url_ownership_unverified", ErrorClass::Permanent),
            ("privacy_level_option_mismatch", ErrorClass::Permanent),
        ];
        for (code, class) in table {
            let parsed = ApiErrorCode::parse(code);
            assert!(!matches!(parsed, ApiErrorCode::Other(_)), "{code} unknown");
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.class(), class, "{code}");
            assert!(!parsed.human_message().is_empty());
            // A sentence never promises what the caller may not do.
            assert!(
                !parsed.human_message().contains("will be refreshed"),
                "{code}"
            );
        }
    }

    #[test]
    fn a_5xx_is_retryable_whatever_the_code() {
        let e = ApiError {
            http_status: 503,
            code: ApiErrorCode::InvalidParams,
            message: String::new(),
            log_id: None,
            retry_after: None,
        };
        assert_eq!(e.class(), ErrorClass::Retryable);
    }

    #[test]
    fn oauth_codes_are_classified() {
        assert_eq!(
            OAuthErrorCode::parse("invalid_grant").class(),
            ErrorClass::NeedsReauthorization
        );
        assert_eq!(
            OAuthErrorCode::parse("temporarily_unavailable").class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            OAuthErrorCode::parse("invalid_client").class(),
            ErrorClass::Permanent
        );
        assert_eq!(OAuthErrorCode::parse("x_y").as_str(), "x_y");
    }

    #[test]
    fn display_names_code_status_and_log_id() {
        let e = TikTokError::Api(ApiError {
            http_status: 403,
            code: ApiErrorCode::SpamRiskTooManyPendingShare,
            message: "too many".into(),
            log_id: Some("2024ABC".into()),
            retry_after: None,
        });
        let text = e.to_string();
        assert!(text.contains("spam_risk_too_many_pending_share"), "{text}");
        assert!(text.contains("HTTP 403"), "{text}");
        assert!(text.contains("2024ABC"), "{text}");
        assert_eq!(e.class(), ErrorClass::CapReached);
    }
}
