//! TikTok calls made with an account's access token: the one place where a
//! token TikTok refuses is replaced.
//!
//! An access token can stop working before its `expires_in` (the creator
//! changed her password, TikTok rotated it, a clock is off). TikTok then
//! answers `access_token_invalid` (HTTP 401) to any call. Every call made
//! with an account's token goes through [`TokenManager::call_with_token`]:
//! on such an answer the token is refreshed once under the lease, whatever
//! its stored expiry says, and the call is made once more; a freshly
//! refreshed token refused again means the grant is gone.

use std::future::Future;

use super::{FreshToken, TokenError, TokenManager, TokenStore};
use crate::secret::Secret;
use crate::tiktok::{ApiErrorCode, TikTokError};

/// Why a call made with an account's token did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AuthedCallError {
    /// TikTok answered the call itself with an error.
    #[error(transparent)]
    TikTok(TikTokError),
    /// TikTok refused the token (`refused`) and no token it takes could be
    /// had: the refresh failed (passing, or the grant is gone), or TikTok
    /// refused a freshly refreshed token too (the account is marked
    /// `needs_reconnect`). TikTok did nothing with the call.
    #[error("{error}")]
    Token {
        /// Why no usable token could be had.
        error: TokenError,
        /// TikTok's refusal of the token the call was first made with.
        refused: TikTokError,
    },
}

/// The reason recorded on an account whose freshly refreshed access token
/// TikTok refused.
const REFUSED_FRESH_TOKEN: &str =
    "TikTok refused a freshly refreshed access token (access_token_invalid)";

impl<S: TokenStore + Clone + 'static> TokenManager<S> {
    /// Makes `call` with `token`'s access token. When TikTok refuses the
    /// token itself ([`token_refused`]), the token is refreshed once under
    /// the lease and `call` is made once more with the new one, which
    /// replaces `token` (so a caller that keeps tokens keeps the new one).
    /// A second refusal, of a token refreshed for this very call, marks the
    /// account `needs_reconnect` and is answered with
    /// [`TokenError::NeedsReconnect`].
    pub async fn call_with_token<T, F, Fut>(
        &self,
        token: &mut FreshToken,
        call: F,
    ) -> Result<T, AuthedCallError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, TikTokError>>,
    {
        let open_id = token.open_id.clone();
        let refused = match call(token.access_token.clone()).await {
            Ok(value) => return Ok(value),
            Err(err) if token_refused(&err) => err,
            Err(err) => return Err(AuthedCallError::TikTok(err)),
        };
        tracing::info!(open_id, error = %refused, "TikTok refused the access token before its expiry; refreshing it once");
        *token = match self
            .replace_rejected_token(&open_id, &token.access_token)
            .await
        {
            Ok(fresh) => fresh,
            Err(error) => return Err(AuthedCallError::Token { error, refused }),
        };
        let err = match call(token.access_token.clone()).await {
            Ok(value) => return Ok(value),
            Err(err) if token_refused(&err) => err,
            Err(err) => return Err(AuthedCallError::TikTok(err)),
        };
        // Replaced again meanwhile by another caller: theirs may work; this
        // call is retried later like any passing failure.
        match self.store.load(&open_id).await {
            Ok(Some(stored)) if stored.access_token == token.access_token => {}
            _ => return Err(AuthedCallError::TikTok(err)),
        }
        tracing::warn!(
            open_id,
            "TikTok refused a freshly refreshed access token; the account needs a reconnect"
        );
        Err(AuthedCallError::Token {
            error: self
                .mark_needs_reconnect(&open_id, REFUSED_FRESH_TOKEN)
                .await,
            refused: err,
        })
    }
}

/// TikTok refused the access token itself: `access_token_invalid`, or an
/// HTTP 401 without a code this client knows. A 401 that names another
/// reason (`scope_not_authorized`) is not cured by a refresh.
pub fn token_refused(err: &TikTokError) -> bool {
    match err {
        TikTokError::Api(api) => {
            api.code == ApiErrorCode::AccessTokenInvalid
                || (api.http_status == 401 && matches!(api.code, ApiErrorCode::Other(_)))
        }
        TikTokError::UnexpectedResponse { status, .. } => *status == 401,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiktok::error::ApiError;

    fn api(status: u16, code: &str) -> TikTokError {
        TikTokError::Api(ApiError {
            http_status: status,
            code: ApiErrorCode::parse(code),
            message: String::new(),
            log_id: None,
            retry_after: None,
        })
    }

    #[test]
    fn only_a_refused_token_is_refreshed() {
        assert!(token_refused(&api(401, "access_token_invalid")));
        // TikTok judges by the code, whatever the status.
        assert!(token_refused(&api(200, "access_token_invalid")));
        assert!(token_refused(&api(401, "something_new")));
        assert!(token_refused(&TikTokError::UnexpectedResponse {
            status: 401,
            detail: String::new(),
            retry_after: None,
        }));
        assert!(!token_refused(&api(401, "scope_not_authorized")));
        assert!(!token_refused(&api(429, "rate_limit_exceeded")));
        assert!(!token_refused(&api(400, "invalid_params")));
        assert!(!token_refused(&TikTokError::UnexpectedResponse {
            status: 403,
            detail: String::new(),
            retry_after: None,
        }));
    }
}
